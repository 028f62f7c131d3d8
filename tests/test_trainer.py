import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from lrcn_tf.configs.common import TrainConfig
from lrcn_tf.training import optim, trainer


def _linear(seed=0, dropout=0.0):
    keras.utils.set_random_seed(seed)
    x = keras.Input((3,))
    h = keras.layers.Dropout(dropout, seed=seed, name="drop")(x) if dropout else x
    y = keras.layers.Dense(2, name="fc")(h)
    return keras.Model(x, y)


def _mse(model, batch, training):
    x, y = batch
    return keras.ops.mean((keras.ops.cast(model(x, training=training), "float32") - y) ** 2)


def _data(n=8, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x @ rng.normal(size=(3, 2))).astype("float32")  # learnable: a linear map
    return x, y


def test_caffe_sgd_matches_hand_computation():
    """Two steps of clip -> +L2 -> lr*mult -> momentum, against NumPy."""
    cfg = TrainConfig(
        base_lr=0.1,
        momentum=0.9,
        weight_decay=0.01,
        gamma=0.5,
        stepsize=1,
        max_iter=2,
        clip_gradients=1.0,
        batch_size=8,
    )
    w = tf.Variable([[1.0, -2.0]], name="fc/kernel")
    b = tf.Variable([0.5, 0.5], name="fc/bias")
    sgd = optim.CaffeSGD(
        cfg, optim.multipliers_from_rules([("bias", 2.0, 0.0)], default=(1.0, 1.0))
    )
    sgd.build([w, b])
    grads = [np.array([[3.0, 4.0]], "float32"), np.array([0.0, 0.0], "float32")]
    w_np, b_np = w.numpy(), b.numpy()
    v_w, v_b = np.zeros_like(w_np), np.zeros_like(b_np)
    for it in range(2):
        norm = np.sqrt(sum((g**2).sum() for g in grads))  # 5 > clip 1: scale by 1/5
        g_w, g_b = (g * min(1.0, 1.0 / norm) for g in grads)
        g_w = g_w + 0.01 * 1.0 * w_np  # decay_mult 1 on the kernel
        g_b = g_b + 0.01 * 0.0 * b_np  # decay_mult 0 on the bias
        lr = 0.1 * 0.5**it  # step policy, stepsize 1
        v_w = 0.9 * v_w + lr * 1.0 * g_w
        v_b = 0.9 * v_b + lr * 2.0 * g_b
        w_np, b_np = w_np - v_w, b_np - v_b
        returned = sgd.apply([tf.constant(g) for g in grads], [w, b])
        assert float(returned) == pytest.approx(5.0)
    np.testing.assert_allclose(w.numpy(), w_np, rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), b_np, rtol=1e-6)
    assert int(sgd.iterations) == 2


def test_no_clipping_below_threshold_and_fixed_policy():
    cfg = TrainConfig(
        base_lr=0.5, lr_policy="fixed", momentum=0.0, weight_decay=0.0, clip_gradients=10.0
    )
    w = tf.Variable([1.0])
    sgd = optim.CaffeSGD(cfg)
    sgd.build([w])
    sgd.apply([tf.constant([2.0])], [w])
    assert w.numpy()[0] == pytest.approx(1.0 - 0.5 * 2.0)
    assert float(sgd.learning_rate(tf.constant(10**6, tf.int64))) == pytest.approx(0.5)


def _fit(model, steps, ckpt_dir, every=2):
    cfg = TrainConfig(
        base_lr=0.05,
        max_iter=steps,
        stepsize=3,
        gamma=0.5,
        batch_size=4,
        checkpoint_every=every,
        log_every=1,
        clip_gradients=5.0,
    )
    ds = tf.data.Dataset.from_tensor_slices(_data()).shuffle(8, seed=3).batch(4)
    return trainer.fit(model, ds, _mse, cfg, ckpt_dir, description="test")


def test_training_reduces_loss_and_logs(tmp_path):
    model = _linear()
    before = float(_mse(model, _data(), False))
    history = _fit(model, 12, tmp_path / "ckpt", every=4)
    assert history["step"] == 12 and len(history["losses"]) == 12
    assert float(_mse(model, _data(), False)) < 0.5 * before
    assert list((tmp_path / "ckpt" / "tensorboard").iterdir())


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    straight = _linear(seed=5, dropout=0.3)
    _fit(straight, 6, tmp_path / "a")

    first = _linear(seed=5, dropout=0.3)
    _fit(first, 3, tmp_path / "b", every=1)  # "killed" after step 3
    # The same command in a new process: same seeds, and the restore must overwrite whatever
    # the fresh model holds (scrambled here to prove it).
    resumed = _linear(seed=5, dropout=0.3)
    resumed.set_weights(
        [np.random.default_rng(0).normal(size=w.shape) for w in resumed.get_weights()]
    )
    history = _fit(resumed, 6, tmp_path / "b")
    assert history["resumed_from"] == 3
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    again = _fit(resumed, 6, tmp_path / "b")  # finished: returns at once
    assert again["resumed_from"] == 6 and again["losses"] == []


def test_nan_loss_names_the_step(tmp_path):
    model = _linear()

    def bad_loss(model, batch, training):
        return _mse(model, batch, training) * float("nan")

    with pytest.raises(FloatingPointError, match="at step 1"):
        trainer.fit(
            model,
            tf.data.Dataset.from_tensor_slices(_data()).batch(4),
            bad_loss,
            TrainConfig(max_iter=3),
            tmp_path,
        )


def test_frozen_layers_are_not_updated(tmp_path):
    model = _linear()
    model.get_layer("fc").trainable = False
    x = keras.Input((3,))
    full = keras.Model(x, keras.layers.Dense(2, name="head")(model(x)))
    before = model.get_weights()
    cfg = TrainConfig(max_iter=2, base_lr=0.1)
    trainer.fit(full, tf.data.Dataset.from_tensor_slices(_data()).batch(4), _mse, cfg, tmp_path)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_copy_weights_by_name_finds_layers_inside_time_distributed():
    src = _linear(seed=1)
    x = keras.Input((5, 3))
    inner = _linear(seed=2)
    y = keras.layers.TimeDistributed(inner)(x)
    y = keras.layers.LSTM(4, name="lstm")(y)
    dst = keras.Model(x, y)
    assert trainer.copy_weights_by_name(src, dst) == ["fc"]
    np.testing.assert_array_equal(
        inner.get_layer("fc").get_weights()[0], src.get_layer("fc").get_weights()[0]
    )


def test_mixed_float16_step_runs(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _linear()
        history = _fit(model, 2, tmp_path)
        assert history["step"] == 2
        assert model.get_layer("fc").kernel.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mirrored_strategy_on_two_cpu_devices_matches_one_device(tmp_path):
    """Runs in a fresh process: logical devices must be set before TensorFlow starts."""
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import tests.test_trainer as t
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        with strategy.scope():
            mirrored = t._linear(seed=4)
        single = t._linear(seed=4)
        from lrcn_tf.training import trainer
        from lrcn_tf.configs.common import TrainConfig
        cfg = TrainConfig(base_lr=0.05, max_iter=4, batch_size=4, checkpoint_every=2)
        ds = tf.data.Dataset.from_tensor_slices(t._data()).batch(4)
        trainer.fit(mirrored, ds, t._mse, cfg, "{tmp_path}/m", strategy=strategy)
        trainer.fit(single, ds, t._mse, cfg, "{tmp_path}/s")
        for a, b in zip(mirrored.get_weights(), single.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        print("MIRRORED_OK")
    """)
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert "MIRRORED_OK" in res.stdout, res.stderr[-3000:]
