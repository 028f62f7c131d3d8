"""The project's own models (lrcn_tf.models) with caffemodel weights against real Caffe.

Table 1's single-frame and LRCN-fc6 models and the captioners (2f, 2u, 1u) are built narrowed
like the fixtures, take the fixture's caffemodel through `lrcn_tf.caffe.load_into`, and must
give Caffe's probabilities (and the captioner Caffe's greedy caption). They take Caffe's BGR
frames, as the paper preset's pipeline gives them (`channel_order="bgr"`).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lrcn_tf import caffe
from lrcn_tf.models import backbones
from lrcn_tf.models.decoding import CaptionGenerator
from tests import caffe_fixture as fx


def _softmax(logits):
    return np.asarray(keras.ops.softmax(keras.ops.convert_to_tensor(logits), axis=-1))


def test_single_frame_model_with_caffe_weights_equals_caffe():
    record = fx.load("single_frame.npz")
    model = fx.project_single_frame()
    loaded = caffe.load_into(model, fx.path("single_frame.caffemodel"))
    assert loaded["classifier"] == "fc8-ucf" and loaded["fc6"] == "fc6"
    probs = _softmax(model(fx.nhwc(fx.data(record))[:, None]))[:, 0]
    fx.assert_blob_close("probs", probs, record["blob/probs"])
    # fc6 after its ReLU, through the backbone's own layers (C,H,W flatten order handled).
    cnn = model.get_layer("cnn").layer
    relu6 = backbones.features(cnn, "relu6")(fx.nhwc(fx.data(record)))
    fx.assert_blob_close("fc6", relu6, record["blob/fc6"])


def test_lrcn_fc6_model_with_caffe_weights_equals_caffe():
    record = fx.load("lrcn.npz")
    model = fx.project_lrcn()
    loaded = caffe.load_into(model, fx.path("lrcn.caffemodel"))
    assert loaded["lstm"] == "lstm1" and loaded["classifier"] == "fc8-final"
    theirs = np.swapaxes(record["blob/probs"], 0, 1)  # (N, T, K)
    clips = fx.nhwc(
        fx.data(record)
        .reshape(fx.STEPS, fx.STREAMS, 3, 227, 227)
        .swapaxes(0, 1)
        .reshape(-1, 3, 227, 227)
    )
    clips = clips.reshape(fx.STREAMS, fx.STEPS, 227, 227, 3)
    probs = _softmax(model(clips))
    # Stream 0 runs unbroken; stream 1 restarts (clip marker 0) at t = 2: our model starts
    # every clip afresh, so its two pieces are two clips.
    fx.assert_blob_close("probs", probs[0], theirs[0])
    fx.assert_blob_close("probs", probs[1, :2], theirs[1, :2])
    second = _softmax(model(clips[1:, 2:]))[0]
    fx.assert_blob_close("probs", second, theirs[1, 2:])


def test_paper_preset_feeds_bgr():
    from lrcn_tf.configs import build

    assert build("table1/lrcn_fc6/rgb", "paper").channel_order == "bgr"
    assert build("table1/lrcn_fc6/rgb", "default").channel_order == "rgb"


@pytest.mark.parametrize("kind", ["captioner_2f", "captioner_2u", "captioner_1u"])
def test_captioner_with_caffe_weights_equals_caffe(kind):
    record = fx.load(f"{kind}.npz")
    model, encoder, decoder = fx.project_captioner(kind)
    caffe.load_into(model, fx.path(f"{kind}.caffemodel"))
    images = fx.nhwc(fx.data(record))  # the captioning pipeline feeds BGR
    words = record["input_sentence"].T.astype(np.int32)  # (N, T)
    theirs = np.swapaxes(record["blob/probs"], 0, 1)
    fx.assert_blob_close("fc8", encoder(images), record["blob/fc8"])
    probs = _softmax(model({"image": images, "words": words}))
    # Teacher forcing. Stream 1 starts a new sentence at t = 3 (cont 0): a separate sequence.
    fx.assert_blob_close("probs", probs[0], theirs[0])
    fx.assert_blob_close("probs", probs[1, :3], theirs[1, :3])
    second = _softmax(model({"image": images[1:], "words": words[1:, 3:]}))[0]
    fx.assert_blob_close("probs", second, theirs[1, 3:])
    if kind == "captioner_2f":
        expected = record["greedy_tokens"]
        gen = CaptionGenerator(decoder, max_length=expected.shape[1], jit_compile=False)
        got = gen.greedy(np.asarray(encoder(images))).tokens
        want = [[int(w) for w in row if w > 0] for row in expected]
        assert got == want


def test_backbone_weights_by_released_name(tmp_path, monkeypatch):
    """`backbone_weights=<name>` (the paper preset's ImageNet start) finds NAME.caffemodel in
    $LRCN_CAFFE_DIR and loads conv1 ... fc7 by name; the rest of the caffemodel is ignored."""
    import shutil

    record = fx.load("single_frame.npz")
    shutil.copy(fx.path("single_frame.caffemodel"), tmp_path / "hybrid_test_iter_1.caffemodel")
    monkeypatch.setenv("LRCN_CAFFE_DIR", str(tmp_path))
    w = fx.MANIFEST["single_frame"]["widths"]
    filters = tuple(w[f"conv{i}"] for i in range(1, 6))
    net = backbones.build(
        "hybrid_caffenet",
        (227, 227, 3),
        weights="hybrid_test_iter_1",
        filters=filters,
        fc_units=w["fc6"],
        dropout=None,
    )
    fc7 = net(fx.nhwc(fx.data(record)))
    fx.assert_blob_close("fc7", fc7, record["blob/fc7"])
    with pytest.raises(caffe.CaffeError, match="not found in"):
        backbones.build(
            "hybrid_caffenet", (227, 227, 3), weights="no_such_model", filters=filters, fc_units=8
        )
