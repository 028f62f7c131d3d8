"""The public API of `lrcn_tf`: the config registry and the model builders."""

import subprocess
import sys

import pytest

import lrcn_tf


def test_import_lrcn_tf_loads_neither_keras_nor_tensorflow():
    code = "import sys, lrcn_tf; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_config_registry_is_exported():
    assert "table1/lrcn_fc6/rgb" in lrcn_tf.config_names()
    cfg = lrcn_tf.build_config("table1/lrcn_fc6/rgb", "smoke")
    assert cfg.model == "lrcn_fc6"
    assert lrcn_tf.PRESETS == ("smoke", "default", "paper")


@pytest.mark.parametrize("name", sorted(lrcn_tf._MODEL_BUILDERS))
def test_model_builders_are_exported(name):
    module, attribute = lrcn_tf._MODEL_BUILDERS[name]
    assert getattr(lrcn_tf, name) is getattr(__import__(module, fromlist=[attribute]), attribute)
    assert name in lrcn_tf.__all__


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lrcn_tf.nope  # noqa: B018
