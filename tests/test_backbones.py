import numpy as np
import pytest
import tensorflow as tf

from lrcn_tf.models import backbones


def _lrn_by_hand(x, n=5, alpha=1e-4, beta=0.75, k=1.0):
    out = np.empty_like(x)
    c = x.shape[-1]
    for i in range(c):
        lo, hi = max(0, i - n // 2), min(c, i + n // 2 + 1)
        s = (x[..., lo:hi] ** 2).sum(-1)
        out[..., i] = x[..., i] / (k + alpha / n * s) ** beta
    return out


def test_lrn_matches_caffe_formula():
    x = np.random.default_rng(0).normal(scale=30.0, size=(2, 3, 4, 7)).astype("float32")
    got = np.asarray(backbones.LRN()(x))
    np.testing.assert_allclose(got, _lrn_by_hand(x.astype("float64")), rtol=1e-5)
    # Large alpha so the normalisation matters; check the window at the channel edges.
    got = np.asarray(backbones.LRN(local_size=3, alpha=1.0, beta=0.5, k=2.0)(x))
    want = _lrn_by_hand(x.astype("float64"), n=3, alpha=1.0, beta=0.5, k=2.0)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("size, out", [(111, 55), (26, 13), (13, 6), (3, 1)])
def test_pooling_rounds_up_like_caffe(size, out):
    import keras

    inp = keras.Input((size, size, 2))
    y = backbones.caffe_max_pool(inp, 3, 2, "pool")
    assert y.shape[1:3] == (out, out)


def test_caffe_pool_pads_with_zeros_after_relu():
    import keras

    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    inp = keras.Input((4, 4, 1))
    model = keras.Model(inp, backbones.caffe_max_pool(inp, 3, 2, "pool"))
    # Caffe: ceil((4 - 3) / 2) + 1 = 2 outputs per side; the last window is clipped.
    np.testing.assert_array_equal(np.asarray(model(x))[0, :, :, 0], [[10, 11], [14, 15]])


def test_hybrid_caffenet_is_the_lrcn_activity_net():
    net = backbones.hybrid_caffenet((227, 227, 3))
    assert net.get_layer("pool5").output.shape[1:] == (6, 6, 384)
    assert net.get_layer("conv2").kernel.shape == (5, 5, 48, 384)  # group 2
    assert net.get_layer("conv4").kernel.shape == (3, 3, 256, 512)
    assert net.get_layer("conv5").kernel.shape == (3, 3, 256, 384)
    assert net.get_layer("fc6").kernel.shape == (6 * 6 * 384, 4096)
    assert net.output.shape[1:] == (4096,)
    assert net.layers[-1].name == "drop7"


def test_caffenet_has_bvlc_reference_parameter_count():
    net = backbones.caffenet((227, 227, 3))
    assert net.count_params() == 60_965_224  # bvlc_reference_caffenet
    assert net.output.shape[1:] == (1000,) and net.layers[-1].name == "fc8"
    alex = backbones.alexnet((227, 227, 3))
    assert alex.count_params() == 60_965_224
    names = [ly.name for ly in alex.layers]
    assert names.index("norm1") < names.index("pool1")  # AlexNet: LRN before pooling
    names = [ly.name for ly in net.layers]
    assert names.index("pool1") < names.index("norm1")  # CaffeNet: pooling before LRN


def test_grouped_conv_equals_keras_grouped_conv():
    import keras

    x = tf.constant(np.random.default_rng(0).normal(size=(2, 9, 9, 8)).astype("float32"))
    ours = backbones.GroupedConv2D(6, 3, strides=2, groups=2)
    ref = keras.layers.Conv2D(6, 3, strides=2, groups=2)
    ours.build(x.shape)
    ref.build(x.shape)
    ref.set_weights(ours.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        a, b = ours(x), ref(x)
        la, lb = tf.reduce_sum(a**2), tf.reduce_sum(b**2)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for ga, gb in zip(tape.gradient(la, ours.weights), tape.gradient(lb, ref.weights)):
        np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=1e-4)
    assert ours.kernel.shape == (3, 3, 4, 6)


def test_grouped_convolution_trains_on_cpu():
    net = backbones.hybrid_caffenet((67, 67, 3), fc_units=8, dropout=None)
    x = np.random.default_rng(0).normal(size=(2, 67, 67, 3)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(net(x, training=True))
    grads = tape.gradient(loss, net.trainable_variables)
    assert all(g is not None for g in grads)
    assert float(tf.linalg.global_norm(grads)) > 0


def test_features_reach_fc6_and_fc7_by_name():
    net = backbones.small_cnn((32, 32, 3), fc_units=12, filters=(4, 8))
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype("float32")
    fc6 = backbones.features(net, "fc6")
    relu7 = backbones.features(net, "relu7")
    assert fc6(x).shape == (3, 12) and relu7(x).shape == (3, 12)
    assert np.all(np.asarray(relu7(x)) >= 0)
    # The sub-model shares the backbone's weights.
    assert fc6.get_layer("fc6").kernel is net.get_layer("fc6").kernel
    with pytest.raises(ValueError, match="no layer 'fc9'"):
        backbones.features(net, "fc9")


def test_include_top_and_unknown_backbone():
    net = backbones.build("small_cnn", (32, 32, 3), include_top=True, classes=7, filters=(4,))
    assert net.output.shape[1:] == (7,)
    with pytest.raises(ValueError, match="unknown backbone 'nope'"):
        backbones.build("nope", (32, 32, 3))


@pytest.mark.parametrize("fmt", ["weights.h5", "npz"])
def test_weights_round_trip(tmp_path, fmt):
    a = backbones.small_cnn((32, 32, 3), fc_units=6, filters=(4, 8))
    path = tmp_path / f"w.{fmt}"
    if fmt == "npz":
        backbones.save_npz(a, path)
    else:
        a.save_weights(str(path))
    b = backbones.small_cnn((32, 32, 3), fc_units=6, filters=(4, 8), weights=str(path))
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(np.asarray(va), np.asarray(vb))


def test_bad_weights_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        backbones.small_cnn((32, 32, 3), weights=str(tmp_path / "missing.npz"))
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"conv1/kernel": np.zeros((1, 1))})
    with pytest.raises(ValueError, match="bad.npz.*conv1/kernel.*shape"):
        backbones.small_cnn((32, 32, 3), weights=str(bad))
    other = tmp_path / "w.txt"
    other.write_text("x")
    with pytest.raises(ValueError, match="use a .weights.h5 or .npz"):
        backbones.small_cnn((32, 32, 3), weights=str(other))


@pytest.mark.parametrize("name", ["vgg16", "resnet50"])
def test_keras_applications_backbones_without_download(name):
    net = backbones.build(name, (32, 32, 3), weights=None, fc_units=16)
    assert net.get_layer("fc6").output.shape[1:] == (16,)
    assert net.output.shape[1:] == (16,)
