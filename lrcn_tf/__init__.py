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
