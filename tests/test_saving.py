"""Every public model survives `model.save("x.keras")` and `keras.models.load_model`: the
reloaded model gives the same outputs (keras-hub's saving test, on tiny shapes).

The step-wise decoders that `lrcn_tf.models.decoding.CaptionGenerator` derives from a saved
decoder (`captioner.step_model`, ...) are internal: they are rebuilt from the reloaded
decoder, never saved.
"""

import keras
import numpy as np
import pytest

from lrcn_tf.models import activity, backbones, captioner, video_description

SMALL = {"backbone": "small_cnn", "backbone_kwargs": {"fc_units": 16, "filters": (4, 8)}}
RNG = np.random.default_rng(0)
WORDS = RNG.integers(0, 11, size=(2, 5)).astype("int32")


def _clips():
    return RNG.normal(size=(2, 3, 32, 32, 3)).astype("float32")


def _single_frame():
    return activity.build("single_frame", (32, 32, 3), 5, **SMALL), _clips()


def _lrcn_fc6():
    return activity.build("lrcn_fc6", (32, 32, 3), 5, lstm_units=8, **SMALL), _clips()


def _lrcn_fc7():
    return activity.build("lrcn_fc7", (32, 32, 3), 5, lstm_units=8, **SMALL), _clips()


def _caffe_layers():
    # The hybrid CaffeNet's own layers (grouped convolution, Caffe's LRN and pooling) on a
    # tiny input: the full net at 227x227 is too large for the fast tests.
    x = inputs = keras.Input((12, 12, 4))
    x = backbones.GroupedConv2D(8, 3, groups=2, name="conv")(x)
    x = backbones.LRN(name="norm")(x)
    x = backbones.caffe_max_pool(x, 3, 2, name="pool")
    x = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    return keras.Model(inputs, x), RNG.normal(size=(2, 12, 12, 4)).astype("float32")


def _small_cnn():
    model = backbones.build(
        "small_cnn", (32, 32, 3), include_top=True, classes=6, fc_units=16, filters=(4, 8)
    )
    return model, RNG.normal(size=(2, 32, 32, 3)).astype("float32")


def _caption_decoder():
    model = captioner.build_decoder(11, 6, embed_dim=8, hidden=8, seed=1)
    return model, {"cond": RNG.normal(size=(2, 6)).astype("float32"), "words": WORDS}


def _image_captioner():
    encoder = backbones.build(
        "small_cnn", (32, 32, 3), include_top=True, classes=6, fc_units=16, filters=(4, 8)
    )
    decoder = captioner.build_decoder(11, 6, embed_dim=8, hidden=8, seed=1)
    image = RNG.normal(size=(2, 32, 32, 3)).astype("float32")
    return captioner.build_image_captioner(encoder, decoder), {"image": image, "words": WORDS}


def _crf_decoder():
    model = video_description.build_crf_decoder(11, 7, embed_dim=8, hidden=8, seed=1)
    return model, {"cond": RNG.normal(size=(2, 7)).astype("float32"), "words": WORDS}


def _encoder_decoder():
    model, _, _ = video_description.build_encoder_decoder(9, 11, embed_dim=8, hidden=8, seed=1)
    source = RNG.integers(1, 9, size=(2, 4)).astype("int32")
    return model, {"source": source, "words": WORDS}


MODELS = {
    "single_frame": _single_frame,
    "lrcn_fc6": _lrcn_fc6,
    "lrcn_fc7": _lrcn_fc7,
    "caffe_layers": _caffe_layers,
    "small_cnn": _small_cnn,
    "caption_decoder": _caption_decoder,
    "image_captioner": _image_captioner,
    "crf_decoder": _crf_decoder,
    "encoder_decoder": _encoder_decoder,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_saved_model_reloads_with_identical_outputs(name, tmp_path):
    model, x = MODELS[name]()
    want = np.asarray(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(np.asarray(reloaded(x, training=False)), want)
    assert [w.shape for w in reloaded.weights] == [w.shape for w in model.weights]
