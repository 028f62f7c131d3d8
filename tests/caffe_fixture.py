"""The Caffe fixtures (tests/fixtures/caffe/, made by tools/caffe_oracle/make_fixtures.py in
real BVLC Caffe) and the layout changes between Caffe's blobs and our Keras tensors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

# LRCN_CAFFE_FIXTURES points the same tests at other fixtures (the full-size ones of
# `pytest -m caffe`, made in a temporary folder).
DIR = Path(os.environ.get("LRCN_CAFFE_FIXTURES") or Path(__file__).parent / "fixtures" / "caffe")
MANIFEST = json.loads((DIR / "manifest.json").read_text())
STEPS, STREAMS = 4, 2  # the lrcn fixture: 4 time steps x 2 streams, time-major in Caffe
ROWS = 1  # image blobs keep their first row in the fixture


def path(name: str) -> Path:
    return DIR / name


def load(name: str) -> dict[str, np.ndarray]:
    with np.load(DIR / name) as f:
        return {k: f[k] for k in f.files}


def data(record: dict, prefix: str = "") -> np.ndarray:
    """Caffe's `data` blob (N, C, H, W): the fixture's uint8 BGR pixels minus the mean."""
    pixels = record[f"{prefix}pixels_bgr"].astype(np.float32)
    return np.ascontiguousarray((pixels - record[f"{prefix}mean_bgr"]).transpose(0, 3, 1, 2))


def nhwc(data: np.ndarray) -> np.ndarray:
    """Caffe (N, C, H, W) -> (N, H, W, C)."""
    return np.ascontiguousarray(data.transpose(0, 2, 3, 1))


def clips(data: np.ndarray, steps: int = STEPS, streams: int = STREAMS) -> np.ndarray:
    """Caffe's time-major frames (T*N, C, H, W) -> clips (N, T, H, W, C)."""
    c, h, w = data.shape[1:]
    return np.ascontiguousarray(data.reshape(steps, streams, c, h, w).transpose(1, 0, 3, 4, 2))


def caffe_blob_as_keras(blob, caffe_value: np.ndarray, ours: np.ndarray, clip: bool):
    """(Caffe's stored blob, ours) in the same layout, for a `builder.Blob` description."""
    if blob.layout == "seq":
        return np.swapaxes(caffe_value, 0, 1), ours
    if blob.layout == "image":
        theirs = caffe_value.transpose(0, 2, 3, 1)
        return theirs, ours[: len(theirs)]  # row 0: (t=0, n=0) in both layouts
    if clip and blob.folded:  # (T*N, D) time-major -> (N*T, D) batch-major
        d = caffe_value.shape[1:]
        value = caffe_value.reshape(STEPS, STREAMS, *d).swapaxes(0, 1).reshape(-1, *d)
        return value, ours
    return caffe_value, ours


def assert_blob_close(name: str, ours, theirs, probs_atol: float = 1e-4) -> float:
    """Probabilities within 1e-4 absolute; other blobs within 1e-4 of their own scale
    (max |value|, at least 1): float32 sums of hundreds of terms of magnitude ~100 differ
    in the last bits between Caffe's BLAS and TensorFlow's kernels. Returns the max error."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} != Caffe's {theirs.shape}"
    err = float(np.abs(ours - theirs).max())
    tol = probs_atol if name == "probs" else 1e-4 * max(1.0, float(np.abs(theirs).max()))
    assert err <= tol, f"blob {name}: max |ours - Caffe| = {err:.3g} > {tol:.3g}"
    return err


def caffe_weights(record: dict, prefix: str) -> dict[str, list[np.ndarray]]:
    """{layer: [blobs]} from a solver record's '<prefix>/<layer>/<i>' arrays."""
    out: dict[str, dict[int, np.ndarray]] = {}
    for key, value in record.items():
        if key.startswith(prefix + "/"):
            layer, i = key[len(prefix) + 1 :].rsplit("/", 1)
            out.setdefault(layer, {})[int(i)] = value
    return {k: [v[i] for i in sorted(v)] for k, v in out.items()}


def greedy_stateless(model, features: np.ndarray, max_length: int) -> np.ndarray:
    """Greedy decoding with a converted (stateless) word_to_preds net, as the authors'
    captioner.py runs it: rerun the prefix (cont 0 at t = 0, then 1), take the most probable
    word; (N, max_length) word ids, -1 after a sequence's EOS (0, written)."""
    n = len(features)
    words = np.zeros((n, 1), np.int32)
    tokens = np.full((n, max_length), -1)
    done = np.zeros(n, bool)
    for t in range(max_length):
        cont = np.ones(words.shape, np.float32)
        cont[:, 0] = 0
        probs = np.asarray(model([cont, words, features]))[:, -1]
        word = probs.argmax(-1)
        tokens[~done, t] = word[~done]
        done |= word == 0
        if done.all():
            break
        words = np.concatenate([words, word[:, None].astype(np.int32)], axis=1)
    return tokens


# -- the project's own models, narrowed like the fixtures ----------------------------------------


def _widths(kind: str) -> dict:
    return MANIFEST[kind]["widths"]


def _filters(kind: str) -> tuple[int, ...]:
    return tuple(_widths(kind)[f"conv{i}"] for i in range(1, 6))


def project_single_frame():
    from lrcn_tf.models import activity

    w = _widths("single_frame")
    kwargs = {"filters": _filters("single_frame"), "fc_units": w["fc6"]}
    return activity.single_frame((227, 227, 3), w["fc8-ucf"], backbone_kwargs=kwargs, dropout=0.0)


def project_lrcn():
    from lrcn_tf.models import activity

    w = _widths("lrcn")
    return activity.lrcn(
        (227, 227, 3),
        w["fc8-final"],
        backbone_kwargs={"filters": _filters("lrcn"), "fc_units": w["fc6"]},
        lstm_units=w["lstm1"],
        lstm_input_dropout=0.0,
        lstm_output_dropout=0.0,
        fc_dropout=0.0,
    )


def project_captioner(kind: str):
    """(image captioner, encoder, decoder) shaped like the captioner_<2f|2u|1u> fixture."""
    from lrcn_tf.models import backbones, captioner

    w = _widths(kind)
    encoder = backbones.caffenet(
        (227, 227, 3), dropout=None, classes=w["fc8"], fc_units=w["fc6"], filters=_filters(kind)
    )
    layers, factored = {"2f": (2, True), "2u": (2, False), "1u": (1, False)}[kind[-2:]]
    vocab, embed = w["embedding"]
    decoder = captioner.build_decoder(
        vocab, w["fc8"], num_layers=layers, factored=factored, embed_dim=embed, hidden=w["lstm1"]
    )
    return captioner.build_image_captioner(encoder, decoder), encoder, decoder
