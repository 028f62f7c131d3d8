"""lrcn-tf: Long-term Recurrent Convolutional Networks (Donahue et al., CVPR 2015) in Keras 3."""

__version__ = "0.1.0"

# -- Public API: the config registry (no Keras, no TensorFlow) and the model builders, imported
# on first use (PEP 562), so that `import lrcn_tf.configs` stays light.
#
#     cfg = lrcn_tf.build_config("table1/lrcn_fc6/rgb", "default")
#     model = lrcn_tf.build_activity_model("lrcn_fc6", (227, 227, 3), 101)

from lrcn_tf.configs import PRESETS  # noqa: E402
from lrcn_tf.configs import build as build_config  # noqa: E402
from lrcn_tf.configs import names as config_names  # noqa: E402

_MODEL_BUILDERS = {
    "build_activity_model": ("lrcn_tf.models.activity", "build"),
    "build_backbone": ("lrcn_tf.models.backbones", "build"),
    "build_caption_decoder": ("lrcn_tf.models.captioner", "build_decoder"),
    "build_image_captioner": ("lrcn_tf.models.captioner", "build_image_captioner"),
    "build_crf_decoder": ("lrcn_tf.models.video_description", "build_crf_decoder"),
    "build_encoder_decoder": ("lrcn_tf.models.video_description", "build_encoder_decoder"),
    "CaptionGenerator": ("lrcn_tf.models.decoding", "CaptionGenerator"),
}


def __getattr__(name: str):
    if name in _MODEL_BUILDERS:
        import importlib

        module, attribute = _MODEL_BUILDERS[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'lrcn_tf' has no attribute {name!r}")


__all__ = ["PRESETS", "__version__", "build_config", "config_names", *_MODEL_BUILDERS]
