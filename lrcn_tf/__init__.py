"""lrcn-tf: Long-term Recurrent Convolutional Networks (Donahue et al., CVPR 2015) in Keras 3.

Importing lrcn_tf registers its custom Keras layers (so `keras.models.load_model` opens the
project's and the Caffe converter's `.keras` files) as soon as Keras is imported, without
importing Keras itself: `import lrcn_tf.configs` stays light.
"""

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# Modules that define the registered (serializable) layers.
_LAYER_MODULES = ("lrcn_tf.models.backbones", "lrcn_tf.models.captioner", "lrcn_tf.caffe.layers")


def register_keras_layers() -> None:
    """Imports the modules whose layers are registered with Keras' serialization."""
    for name in _LAYER_MODULES:
        importlib.import_module(name)


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Runs `register_keras_layers` right after the first `import keras` finishes."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            register_keras_layers()

        spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    register_keras_layers()
elif not any(isinstance(f, _AfterKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterKeras())


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
