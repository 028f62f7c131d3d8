"""The project's own Keras models with weights from a caffemodel, matched by layer name.

The backbones name their layers as Caffe does (conv1 ... fc8), the captioner's decoder too
(embedding, lstm1, lstm2, predict); Table 1's models call their classifier "classifier" and
their LSTM "lstm", which take the caffemodel's fc8-ucf / fc8-final and lstm1. Per layer:

- Conv2D (grouped too): Caffe (O, I/g, kh, kw) -> Keras (kh, kw, I/g, O);
- Dense: (out, in) -> (in, out); a Dense that reads a Flatten of an (H, W, C) map gets its
  rows permuted from Caffe's C, H, W flatten order to Keras' H, W, C;
- Embedding: the same (vocabulary, width) table;
- keras.layers.LSTM: Caffe's [W_xc, b_c, (W_xc_x_static), W_hc] in gate order i, f, o, g
  -> kernel, recurrent_kernel, bias in Keras' order i, f, c (= g), o. A static input (the
  captioner's image feature, which our decoder concatenates after the word features) adds
  its rows below W_xc's.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from lrcn_tf.caffe.proto import CaffeError, read_weights

# Keras layer name -> Caffe layer names it may take, in order of preference.
ALIASES = {
    "classifier": ("fc8-ucf", "fc8-final", "classifier"),
    "lstm": ("lstm1", "lstm"),
}


def _leaf_layers(model) -> list:
    """Every layer with weights in `model`, looking into nested models and TimeDistributed."""
    seen, out = set(), []

    def walk(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        inner = getattr(layer, "layer", None)  # TimeDistributed, Bidirectional-like wrappers
        if isinstance(layer, keras.layers.TimeDistributed) and inner is not None:
            walk(inner)
        elif hasattr(layer, "layers") and layer.layers:
            for sub in layer.layers:
                walk(sub)
        elif layer.weights:
            out.append(layer)

    walk(model)
    return out


def _gate_order(w: np.ndarray, axis: int = -1) -> np.ndarray:
    """Caffe's gate blocks i, f, o, g -> Keras' i, f, c (= g), o along `axis`."""
    i, f, o, g = np.split(w, 4, axis=axis)
    return np.concatenate([i, f, g, o], axis=axis)


def _flatten_source(layer):
    """The (H, W, C) shape a Dense's Flatten input had, or None."""
    try:
        src = layer.input._keras_history.operation
    except (AttributeError, ValueError):
        return None
    if isinstance(src, keras.layers.Flatten):
        shape = src.input.shape
        if len(shape) == 4:
            return tuple(int(d) for d in shape[1:])
    return None


def caffe_to_keras(layer, blobs: list[np.ndarray], where: str) -> list[np.ndarray]:
    """One Caffe layer's blobs as `layer.get_weights()` values."""
    current = [np.asarray(w) for w in layer.get_weights()]

    def check(values):
        if len(values) != len(current) or any(v.shape != c.shape for v, c in zip(values, current)):
            got = [v.shape for v in values]
            need = [c.shape for c in current]
            raise CaffeError(
                f"{where}: caffemodel gives shapes {got}, the Keras layer needs {need}"
            )
        return [np.ascontiguousarray(v, np.float32) for v in values]

    if isinstance(layer, keras.layers.Conv2D):
        w = blobs[0]
        if w.ndim != 4:
            raise CaffeError(f"{where}: not a convolution blob (shape {w.shape})")
        return check([w.transpose(2, 3, 1, 0), *blobs[1:]])
    if isinstance(layer, keras.layers.Dense):
        w = (
            blobs[0].reshape(blobs[0].shape[-2], blobs[0].shape[-1])
            if blobs[0].ndim > 2
            else blobs[0]
        )
        hwc = _flatten_source(layer)
        if hwc is not None:
            h, wd, c = hwc
            if w.shape[1] != h * wd * c:
                raise CaffeError(f"{where}: fc weight of shape {w.shape} for a {hwc} map")
            w = w.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        bias = [b.reshape(-1) for b in blobs[1:]]
        return check([w.T, *bias])
    if isinstance(layer, keras.layers.Embedding):
        return check([blobs[0]])
    if isinstance(layer, keras.layers.LSTM):
        if len(blobs) not in (3, 4):
            raise CaffeError(
                f"{where}: an LSTM has 3 or 4 blobs, the caffemodel gives {len(blobs)}"
            )
        w_x, b = blobs[0], blobs[1]
        if len(blobs) == 4:
            w_x = np.concatenate([w_x, blobs[2]], axis=1)  # [word features, static input]
        w_h = blobs[-1]
        return check([_gate_order(w_x.T), _gate_order(w_h.T), _gate_order(b)])
    raise CaffeError(f"{where}: no Caffe conversion for Keras layer type {type(layer).__name__}")


def load_into(
    model: keras.Model,
    caffemodel,
    *,
    require_all: bool = True,
    names: dict[str, str] | None = None,
) -> dict[str, str]:
    """Sets `model`'s weights from a caffemodel, layer by layer by name.

    Args:
      model: a project model (Table 1's single_frame / lrcn_*, a backbone, a captioner).
      caffemodel: a .caffemodel path, or {caffe layer name: blobs} already read.
      require_all: raise if a Keras layer with weights finds no Caffe layer (else skip it).
      names: extra {keras layer name: caffe layer name} matches.

    Returns:
      {keras layer name: caffe layer name} of the layers set.

    Raises:
      CaffeError: a missing layer (with require_all) or a shape that does not fit, naming it.
    """
    weights = caffemodel if isinstance(caffemodel, dict) else read_weights(caffemodel)
    source = "caffemodel" if isinstance(caffemodel, dict) else str(caffemodel)
    loaded, missing = {}, []
    for layer in _leaf_layers(model):
        candidates = ((names or {}).get(layer.name),) + ALIASES.get(layer.name, (layer.name,))
        caffe_name = next((c for c in candidates if c and c in weights), None)
        if caffe_name is None:
            missing.append(layer.name)
            continue
        where = f"{source}: layer {caffe_name!r} -> {layer.name!r}"
        layer.set_weights(caffe_to_keras(layer, weights[caffe_name], where))
        loaded[layer.name] = caffe_name
    if missing and require_all:
        raise CaffeError(
            f"{source}: no weights for layer(s) {', '.join(missing)} (the caffemodel has "
            f"{', '.join(list(weights)[:12])})"
        )
    return loaded


WEIGHTS_ENV = "LRCN_CAFFE_DIR"


def weights_dirs() -> list[Path]:
    """Where a caffemodel named without a path is looked for."""
    from lrcn_tf import runtime

    dirs = [Path(os.environ[WEIGHTS_ENV]).expanduser()] if os.environ.get(WEIGHTS_ENV) else []
    return dirs + [runtime.data_dir() / "caffe", Path.cwd()]


def resolve_weights(name_or_path) -> Path:
    """A caffemodel file from a path, or from a released model's name (e.g.
    "caffe_imagenet_hyb2_wr_rc_solver_sqrt_iter_310000") looked up as NAME or NAME.caffemodel
    in $LRCN_CAFFE_DIR, $LRCN_DATA_DIR/caffe (or ~/.cache/lrcn_tf/caffe) and the current folder.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if path.parent != Path(".") or path.suffix not in ("", ".caffemodel"):
        raise CaffeError(f"{path}: no such file")
    dirs = weights_dirs()
    for d in dirs:
        for candidate in (d / path.name, d / f"{path.name}.caffemodel"):
            if candidate.is_file():
                return candidate
    raise CaffeError(
        f"caffemodel {path.name!r}: not found in {', '.join(str(d) for d in dirs)} (download "
        "it as docs/parity.md says, or pass a path)"
    )
