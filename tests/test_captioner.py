import keras
import numpy as np
import pytest
from keras import ops

from lrcn_tf.models import captioner

V, D, E, H = 13, 5, 6, 7
VARIANTS = [(1, False), (2, False), (2, True), (4, True)]


def _decoder(num_layers, factored, **kw):
    return captioner.build_decoder(
        V, D, num_layers=num_layers, factored=factored, embed_dim=E, hidden=H, seed=3, **kw
    )


def _inputs(b=3, t=4, seed=0):
    rng = np.random.default_rng(seed)
    cond = ops.convert_to_tensor(rng.normal(size=(b, D)).astype("float32"))
    words = ops.convert_to_tensor(rng.integers(0, V, (b, t)).astype("int32"))
    return cond, words


@pytest.mark.parametrize("num_layers, factored", VARIANTS)
def test_parts_and_steps_reproduce_the_full_decoder(num_layers, factored):
    dec = _decoder(num_layers, factored)
    cond, words = _inputs()
    full = ops.convert_to_numpy(dec({"cond": cond, "words": words}))
    assert full.shape == (3, 4, V) and full.dtype == np.float32
    assert captioner.decoder_structure(dec) == (num_layers, factored)
    parts = captioner.conditioned_model(dec)([captioner.word_model(dec)(words), cond])
    np.testing.assert_allclose(ops.convert_to_numpy(parts), full, atol=1e-6)
    step = captioner.step_model(dec)
    states = [ops.zeros((3, H))] * (2 * num_layers)
    outs = []
    for t in range(4):
        logits, *states = step([words[:, t], cond, *states])
        outs.append(ops.convert_to_numpy(logits))
    np.testing.assert_allclose(np.stack(outs, 1), full, atol=1e-5)
    # the parts share the decoder's variables, none of their own
    assert {id(v) for v in step.weights} <= {id(v) for v in dec.weights}


def test_factored_first_lstm_never_sees_the_vector():
    dec = _decoder(2, True)
    cond, words = _inputs()
    wm = captioner.word_model(dec)
    assert [x.name for x in wm.layers[1:]] == ["embedding", "lstm1"]
    assert wm.output.shape[-1] == H
    other = ops.convert_to_tensor(np.ones((3, D), "float32") * 5)
    a = ops.convert_to_numpy(dec({"cond": cond, "words": words}))
    b = ops.convert_to_numpy(dec({"cond": other, "words": words}))
    assert not np.allclose(a, b)  # the image matters, through LSTM 2
    assert captioner.word_model(_decoder(2, False)).output.shape[-1] == E  # unfactored: embedding


def test_initialisation_follows_the_recipe():
    dec = captioner.build_decoder(50, 10, num_layers=2, embed_dim=40, hidden=30, seed=1)
    for v in dec.weights:
        w = ops.convert_to_numpy(v)
        if v.path.endswith("bias"):
            assert np.all(w == 0), v.path  # Caffe's LSTM: no forget-gate bias of 1
        else:
            assert np.abs(w).max() <= 0.08 + 1e-7 and w.std() > 0.03, v.path


@pytest.mark.parametrize(
    "kw", [dict(num_layers=1, factored=True), dict(num_layers=5, factored=True)]
)
def test_invalid_variants_are_refused(kw):
    with pytest.raises(ValueError):
        captioner.build_decoder(V, D, **kw)


def test_loss_is_weighted_mean_over_valid_steps():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4)).astype("float32")
    targets = np.array([[1, 0, -1], [3, -1, -1]], "int32")
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -20 * np.mean([logp[0, 0, 1], logp[0, 1, 0], logp[1, 0, 3]])
    got = float(
        captioner.caption_loss(ops.convert_to_tensor(logits), ops.convert_to_tensor(targets))
    )
    assert got == pytest.approx(expected, rel=1e-5)
    assert float(captioner.caption_loss(logits, np.full((2, 3), -1, "int32"))) == 0.0


def test_image_captioner_and_loss_fn_train_end_to_end():
    enc = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(D, name="fc8")],
        name="enc",
    )
    dec = _decoder(2, True)
    model = captioner.build_image_captioner(enc, dec)
    images = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    words = np.array([[0, 4, 5], [0, 6, 0]], "int32")
    targets = np.array([[4, 5, 0], [6, 0, -1]], "int32")
    batch = (
        {"image": ops.convert_to_tensor(images), "words": ops.convert_to_tensor(words)},
        targets,
    )
    loss = captioner.make_loss_fn()(model, batch, True)
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert {"enc/fc8/kernel", "predict/kernel"} <= {v.path for v in model.trainable_variables}
