import keras
import numpy as np
import pytest

from lrcn_tf.models import activity
from lrcn_tf.training import optim, trainer

SMALL = {"backbone": "small_cnn", "backbone_kwargs": {"fc_units": 16, "filters": (4, 8)}}


def _models(num_classes=5):
    return {
        "single_frame": activity.build("single_frame", (32, 32, 3), num_classes, **SMALL),
        "lrcn_fc6": activity.build("lrcn_fc6", (32, 32, 3), num_classes, lstm_units=8, **SMALL),
        "lrcn_fc7": activity.build("lrcn_fc7", (32, 32, 3), num_classes, lstm_units=8, **SMALL),
    }


@pytest.mark.parametrize("steps", [1, 3, 16, 23])
def test_a_prediction_at_every_step_for_any_clip_length(steps):
    x = np.random.default_rng(0).normal(size=(2, steps, 32, 32, 3)).astype("float32")
    for name, model in _models().items():
        assert model(x).shape == (2, steps, 5), name


def test_single_frame_scores_frames_independently():
    model = _models()["single_frame"]
    x = np.random.default_rng(1).normal(size=(1, 4, 32, 32, 3)).astype("float32")
    whole = np.asarray(model(x))
    one = np.asarray(model(x[:, 2:3]))
    np.testing.assert_allclose(whole[:, 2:3], one, rtol=1e-5, atol=1e-6)


def test_lrcn_depends_on_earlier_frames():
    model = _models()["lrcn_fc6"]
    x = np.random.default_rng(2).normal(size=(1, 4, 32, 32, 3)).astype("float32")
    y = x.copy()
    y[:, 0] = 0.0
    a, b = np.asarray(model(x)), np.asarray(model(y))
    assert not np.allclose(a[:, 3], b[:, 3])  # the last step saw the changed first frame


def test_lstm_sits_after_fc6_or_fc7_with_the_original_dropouts():
    m = _models()
    fc6, fc7 = m["lrcn_fc6"], m["lrcn_fc7"]
    assert fc6.get_layer("lstm").input.shape[-1] == 16
    assert "fc7" not in [ly.name for ly in fc6.get_layer("cnn").layer.layers]
    assert "fc7" in [ly.name for ly in fc7.get_layer("cnn").layer.layers]
    assert fc6.get_layer("lstm_input_dropout").rate == 0.9
    assert fc6.get_layer("lstm_dropout").rate == 0.5
    sf_layers = [ly.name for ly in m["single_frame"].get_layer("cnn").layer.layers]
    assert sf_layers[-1] == "drop7"
    lstm = fc6.get_layer("lstm")
    assert np.abs(np.asarray(lstm.cell.kernel)).max() <= 0.01
    assert np.all(np.asarray(lstm.cell.bias) == 0)  # Caffe: forget-gate bias 0 too


def test_lrcn_copies_the_single_frame_cnn():
    m = _models()
    copied6 = trainer.copy_weights_by_name(m["single_frame"], m["lrcn_fc6"])
    copied7 = trainer.copy_weights_by_name(m["single_frame"], m["lrcn_fc7"])
    assert sorted(copied6) == ["conv1", "conv2", "fc6"]
    assert sorted(copied7) == ["conv1", "conv2", "fc6", "fc7"]
    np.testing.assert_array_equal(
        np.asarray(m["lrcn_fc7"].get_layer("cnn").layer.get_layer("fc7").kernel),
        np.asarray(m["single_frame"].get_layer("cnn").layer.get_layer("fc7").kernel),
    )


def test_per_step_loss_by_hand():
    logits = np.array([[[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], dtype="float32")  # (1, 3, 2)
    labels = np.array([1])
    p = np.exp(logits[0]) / np.exp(logits[0]).sum(-1, keepdims=True)
    want = -np.log(p[:, 1]).mean()
    assert float(activity.per_step_loss(logits, labels)) == pytest.approx(want, rel=1e-6)


def test_multipliers_follow_caffe():
    mults = optim.multipliers_from_rules(activity.MULTIPLIER_RULES)
    model = _models()["lrcn_fc6"]
    got = {v.path: mults(v.path) for v in model.trainable_variables}
    assert got["classifier/kernel"] == (10.0, 1.0)
    assert got["classifier/bias"] == (20.0, 0.0)
    assert got["conv1/kernel"] == (1.0, 1.0) and got["conv1/bias"] == (2.0, 0.0)
    assert got["fc6/bias"] == (2.0, 0.0)
    assert got["lstm/lstm_cell/bias"] == (1.0, 1.0)
    assert got["lstm/lstm_cell/recurrent_kernel"] == (1.0, 1.0)


def test_logits_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = activity.build("lrcn_fc6", (32, 32, 3), 3, lstm_units=4, **SMALL)
        out = model(np.zeros((1, 2, 32, 32, 3), "float32"))
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        assert model.get_layer("lstm").compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="unknown Table 1 model 'lrcn_fc8'"):
        activity.build("lrcn_fc8", (32, 32, 3), 3, **SMALL)


def _unfolded(model):
    """The same model with Keras' own TimeDistributed (a loop over time steps) as the "cnn"."""
    inner = model.get_layer("cnn").layer
    clip = keras.Input(model.input.shape[1:])
    x = keras.layers.TimeDistributed(inner, name="cnn")(clip)
    for layer in model.layers[2:]:
        x = layer(x)
    return keras.Model(clip, x)


@pytest.mark.parametrize("name", ["single_frame", "lrcn_fc6", "lrcn_fc7"])
def test_folding_time_into_the_batch_changes_no_output_or_gradient(name):
    model = _models()[name]
    assert isinstance(model.get_layer("cnn"), keras.layers.TimeDistributed)
    loop = _unfolded(model)  # shares every layer (and weight) with `model`
    x = np.random.default_rng(3).normal(size=(3, 5, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(loop(x)), rtol=1e-6, atol=1e-6)

    import tensorflow as tf

    y = np.array([0, 1, 2])

    def grads(m):
        with tf.GradientTape() as tape:
            loss = activity.per_step_loss(m(x, training=False), y)
        return [np.asarray(g) for g in tape.gradient(loss, m.trainable_variables)]

    for a, b in zip(grads(model), grads(loop)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_folded_model_saves_and_reloads(tmp_path):
    model = _models()["lrcn_fc6"]
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)
    assert isinstance(again.get_layer("cnn"), activity.FoldedTimeDistributed)
    x = np.random.default_rng(4).normal(size=(1, 3, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["single_frame", "lrcn_fc7"])
def test_folded_dropout_draws_the_masks_of_the_loop(name):
    # The CNN's own dropouts (drop6/drop7) must see the same random stream folded as they did
    # time step by time step, so that a seeded training run is unchanged.
    model = _models()[name]
    loop = _unfolded(model)
    seeds = [
        ly.seed_generator.state for ly in model._flatten_layers() if hasattr(ly, "seed_generator")
    ]
    start = [np.asarray(s) for s in seeds]
    x = np.random.default_rng(5).normal(size=(2, 4, 32, 32, 3)).astype("float32")
    cnn = model.get_layer("cnn")
    folded = np.asarray(cnn(x, training=True))
    for s, v in zip(seeds, start):
        s.assign(v)
    looped = np.asarray(loop.get_layer("cnn")(x, training=True))
    np.testing.assert_array_equal(folded != 0, looped != 0)
    np.testing.assert_allclose(folded, looped, rtol=1e-6, atol=1e-6)
    assert (folded == 0).any() and not (folded == 0).all()
