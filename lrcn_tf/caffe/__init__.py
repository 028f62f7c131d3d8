"""Caffe interoperability: read the authors' prototxts and caffemodels, convert them to Keras.

    import lrcn_tf.caffe as caffe
    model = caffe.convert("deploy_lstm.prototxt", "model.caffemodel")   # -> keras.Model
    probs = model([frames, clip_markers])       # frames (N, T, 227, 227, 3): BGR, mean subtracted

    caffe.load_into(project_model, "model.caffemodel")   # the project's own models, by layer name

Needs only protobuf (Caffe's schema ships in `_schema.py`). Input contract of converted nets:
exactly what Caffe's `data` blob holds, channels-last: BGR, mean-subtracted float32. See
docs/parity.md for what is proven equal to real Caffe and how.
"""

from __future__ import annotations

from pathlib import Path

from lrcn_tf.caffe.proto import CaffeError, read_caffemodel, read_prototxt, read_weights

__all__ = [
    "CaffeError",
    "build",
    "convert",
    "load_into",
    "read_caffemodel",
    "read_prototxt",
    "read_weights",
    "resolve_weights",
]


def build(*args, **kwargs):
    """`lrcn_tf.caffe.builder.build` (imports Keras on first use)."""
    from lrcn_tf.caffe.builder import build as _build

    return _build(*args, **kwargs)


def convert(
    prototxt: str | Path,
    caffemodel: str | Path | None,
    *,
    clip_markers: bool = True,
    phase: str = "TEST",
    stages=(),
    blobs=None,
):
    """A deploy prototxt and its caffemodel as a Keras model (weights loaded).

    Args:
      prototxt: the deploy net (inputs declared; no data or loss layers).
      caffemodel: its weights (V1 or V2 format); None keeps random initial weights.
      clip_markers: LRCN (clip) nets: a second input of clip markers (N, T) (True), or
        markers made inside the model, 0 at t = 0 and 1 after (False).
      phase, stages: the NetState that selects layers (include/exclude rules).
      blobs: Caffe blob names: return a model whose output is {name: tensor} for them
        (Keras layouts: images NHWC, sequences (N, T, ...)), e.g. to compare blob by blob.

    Returns:
      keras.Model. Single-frame nets: (N, H, W, 3) -> (N, classes); clip nets:
      (N, T, H, W, 3) [, (N, T)] -> (N, T, classes); others: one input per Caffe input.

    Raises:
      CaffeError: unreadable files, unsupported layers, weights that do not fit (one line,
        naming the file or layer).
    """
    net = read_prototxt(prototxt)
    weights = read_weights(caffemodel) if caffemodel is not None else None
    converted = build(net, weights, phase=phase, stages=stages, clip_markers=clip_markers)
    if blobs is None:
        return converted.model
    return blob_model(converted, blobs)


def blob_model(converted, names):
    """A model from the converted net's inputs to {blob name: its final value}."""
    import keras

    missing = [n for n in names if n not in converted.blobs]
    if missing:
        raise CaffeError(f"no blob named {missing[0]!r} in the net")
    return keras.Model(
        converted.model.inputs if len(converted.model.inputs) > 1 else converted.model.inputs[0],
        {n: converted.blobs[n].tensor for n in names},
    )


def load_into(model, caffemodel, **kwargs):
    """`lrcn_tf.caffe.project.load_into`: the project's models take caffemodel weights."""
    from lrcn_tf.caffe.project import load_into as _load_into

    return _load_into(model, caffemodel, **kwargs)


def resolve_weights(name_or_path):
    """`lrcn_tf.caffe.project.resolve_weights`: a caffemodel file from a name or path."""
    from lrcn_tf.caffe.project import resolve_weights as _resolve

    return _resolve(name_or_path)
