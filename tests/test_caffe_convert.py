"""Converted Caffe nets (lrcn_tf.caffe) against what real Caffe computed (tests/fixtures/caffe).

The fixtures are the authors' deploy nets narrowed (same layer types, order, kernels,
strides, groups, pooling and LRN; 227x227 input) with seeded weights, run in BVLC Caffe 1.0 by
tools/caffe_oracle/make_fixtures.py. No Caffe is needed here.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lrcn_tf import caffe
from lrcn_tf.caffe import proto
from tests import caffe_fixture as fx

KINDS = ("single_frame", "lrcn", "captioner_2f", "captioner_2u", "captioner_1u", "misc")


def _inputs(kind: str, record: dict, converted) -> list:
    if kind == "single_frame":
        return fx.nhwc(fx.data(record))
    if kind == "misc":  # layer types the authors' nets do not use (see make_fixtures.misc)
        return fx.nhwc(record["input"])
    if kind == "lrcn":
        return [fx.clips(fx.data(record)), record["clip_markers"].T]
    by_name = {
        "data": fx.nhwc(fx.data(record)),
        "cont_sentence": record["cont_sentence"].T,
        "input_sentence": record["input_sentence"].T.astype(np.int32),
    }
    return [by_name[n] for n in converted.inputs]


def _convert(kind: str, **kwargs):
    net = proto.read_prototxt(fx.path(f"{kind}.deploy.prototxt"))
    return caffe.build(net, caffe.read_weights(fx.path(f"{kind}.caffemodel")), **kwargs)


@pytest.mark.parametrize("kind", KINDS)
def test_converted_net_equals_caffe_blob_by_blob(kind):
    record = fx.load(f"{kind}.npz")
    converted = _convert(kind)
    names = [k[len("blob/") :] for k in record if k.startswith("blob/")]
    assert "probs" in names and len(names) >= 8, names
    model = caffe.blob_model(converted, names)
    ours = model(_inputs(kind, record, converted))
    for name in names:
        theirs, mine = fx.caffe_blob_as_keras(
            converted.blobs[name], record[f"blob/{name}"], np.asarray(ours[name]), kind == "lrcn"
        )
        fx.assert_blob_close(name, mine, theirs)
    # The fixture is not trivial: probabilities far from uniform (5x the uniform 1/K, or 0.5).
    probs = record["blob/probs"]
    assert probs.max(-1).mean() > min(0.5, 5 / probs.shape[-1])


def test_lrcn_clip_markers_matter_and_default_markers_start_clips():
    record = fx.load("lrcn.npz")
    theirs = np.swapaxes(record["blob/probs"], 0, 1)  # (N, T, K)
    # Caffe's stream 1 restarts at t = 2 (clip marker 0).
    assert record["clip_markers"][2, 1] == 0
    model = caffe.convert(
        fx.path("lrcn.deploy.prototxt"), fx.path("lrcn.caffemodel"), clip_markers=False
    )
    assert len(model.inputs) == 1
    ours = np.asarray(model(fx.clips(fx.data(record))))
    np.testing.assert_allclose(ours[0], theirs[0], atol=1e-4)  # no reset: identical
    np.testing.assert_allclose(ours[1, :2], theirs[1, :2], atol=1e-4)
    assert np.abs(ours[1, 2:] - theirs[1, 2:]).max() > 1e-3  # the reset changed Caffe's


def test_converted_word_to_preds_greedy_caption_equals_caffe():
    record = fx.load("captioner_2f.npz")
    model = caffe.convert(
        fx.path("captioner_2f.word_to_preds.prototxt"), fx.path("captioner_2f.caffemodel")
    )
    expected = record["greedy_tokens"]
    tokens = fx.greedy_stateless(model, record["blob/fc8"], expected.shape[1])
    np.testing.assert_array_equal(tokens, expected)
    assert (expected[:, 1] >= 0).all(), "fixture captions should have more than one word"


def test_cli_writes_keras_file_that_loads_after_import_lrcn_tf(tmp_path):
    from lrcn_tf import convert_caffe

    out = convert_caffe.run(
        str(fx.path("lrcn.deploy.prototxt")),
        str(fx.path("lrcn.caffemodel")),
        str(tmp_path / "m.keras"),
    )
    record = fx.load("lrcn.npz")
    np.save(tmp_path / "frames.npy", fx.clips(fx.data(record)))
    np.save(tmp_path / "markers.npy", record["clip_markers"].T)
    code = (
        "import sys, numpy as np, lrcn_tf, keras\n"
        f"m = keras.models.load_model({str(out)!r})\n"
        f"p = m([np.load({str(tmp_path / 'frames.npy')!r}), np.load({str(tmp_path / 'markers.npy')!r})])\n"
        f"np.save({str(tmp_path / 'probs.npy')!r}, np.asarray(p))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    probs = np.load(tmp_path / "probs.npy")
    np.testing.assert_allclose(probs, np.swapaxes(record["blob/probs"], 0, 1), atol=1e-4)
    # An existing file is not overwritten without --overwrite.
    with pytest.raises(caffe.CaffeError, match="already exists"):
        convert_caffe.run(
            str(fx.path("lrcn.deploy.prototxt")), str(fx.path("lrcn.caffemodel")), str(out)
        )


def test_cli_bad_input_is_one_error_line(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lrcn_tf.convert_caffe",
            f"--prototxt={fx.path('lrcn.deploy.prototxt')}",
            f"--caffemodel={tmp_path / 'missing.caffemodel'}",
            f"--out={tmp_path / 'x.keras'}",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "missing.caffemodel" in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.keras").exists()


def test_v1_caffemodel_reads_like_v2(tmp_path):
    """The old `layers` format (V1 type enums, 4-D legacy blob shapes) gives the same weights."""
    v2 = proto.read_caffemodel(fx.path("single_frame.caffemodel"))
    v1 = proto.NetParameter()
    v1.name = v2.name
    enum = {v: k for k, v in proto.V1_TYPES.items()}
    type_field = v1.layers.add().DESCRIPTOR.fields_by_name["type"].enum_type
    del v1.layers[:]
    for layer in v2.layer:
        if layer.type not in enum:  # the Input layer Caffe writes for declared inputs
            continue
        old = v1.layers.add()
        old.name = layer.name
        old.type = type_field.values_by_name[enum[layer.type]].number
        old.bottom.extend(layer.bottom)
        old.top.extend(layer.top)
        for blob in layer.blobs:
            arr = proto.blob_array(blob)
            legacy = old.blobs.add()
            shape = (1,) * (4 - arr.ndim) + arr.shape
            legacy.num, legacy.channels, legacy.height, legacy.width = shape
            legacy.data.extend(arr.ravel().tolist())
    path = tmp_path / "v1.caffemodel"
    path.write_bytes(v1.SerializeToString())
    record = fx.load("single_frame.npz")
    model = caffe.convert(fx.path("single_frame.deploy.prototxt"), path)
    np.testing.assert_allclose(
        np.asarray(model(fx.nhwc(fx.data(record)))), record["blob/probs"], atol=1e-4
    )


def test_errors_name_the_layer(tmp_path):
    text = fx.path("single_frame.deploy.prototxt").read_text()
    bad = tmp_path / "bad.prototxt"
    bad.write_text(text.replace('type: "LRN"', 'type: "BatchNorm"', 1))
    with pytest.raises(caffe.CaffeError, match=r"layer 'norm1': layer type BatchNorm"):
        caffe.convert(bad, fx.path("single_frame.caffemodel"))
    # A caffemodel of another net (the LRCN one has no fc7): the layer is named.
    with pytest.raises(caffe.CaffeError, match=r"layer 'fc7': not in the caffemodel"):
        caffe.convert(fx.path("single_frame.deploy.prototxt"), fx.path("lrcn.caffemodel"))
    with pytest.raises(caffe.CaffeError, match="not a binary caffemodel|no layers"):
        caffe.convert(fx.path("single_frame.deploy.prototxt"), fx.path("lrcn.npz"))
    with pytest.raises(caffe.CaffeError, match="training net"):
        caffe.convert(fx.path("lrcn.train.prototxt"), None, phase="TRAIN")
