import dataclasses
import json
import subprocess
import sys

import pytest

from lrcn_tf.configs import PRESETS, ConfigError, apply_overrides, build, names, registry
from lrcn_tf.configs.common import TrainConfig


def test_every_trained_table_has_named_row_configs():
    assert {name.split("/")[0] for name in names()} >= {"table1", "table2", "table3", "table5"}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", names())
def test_registered_config_builds_frozen_and_serialisable(name, preset):
    cfg = build(name, preset)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, dataclasses.fields(cfg)[0].name, None)
    record = registry.to_dict(cfg)
    assert json.loads(json.dumps(record)) == record  # what run folders record and hash
    assert build(name, preset) == cfg  # the same name and preset, the same config


def test_configs_import_neither_keras_nor_tensorflow():
    code = "import sys, lrcn_tf.configs; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_name_and_preset_are_named():
    with pytest.raises(ConfigError, match="unknown config 'nope'"):
        build("nope")
    name = names()[0]
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        build(name, "huge")


@dataclasses.dataclass(frozen=True)
class _Toy:
    train: TrainConfig = TrainConfig()
    layers: tuple[int, ...] = (1, 2)
    mode: str = "a"
    flag: bool = False


def test_overrides_parse_by_type():
    cfg = apply_overrides(
        _Toy(),
        ["train.base_lr=0.5", "train.clip_gradients=none", "layers=3,4,5", "flag=true", "mode=b"],
    )
    assert cfg.train.base_lr == 0.5 and cfg.train.clip_gradients is None
    assert cfg.layers == (3, 4, 5) and cfg.flag is True and cfg.mode == "b"
    assert apply_overrides(cfg, ["train.clip_gradients=15"]).train.clip_gradients == 15.0


@pytest.mark.parametrize(
    "override, match",
    [
        ("train.nope=1", "has no field 'nope'"),
        ("train.max_iter=ten", "cannot read 'ten' as int"),
        ("flag=maybe", "cannot read 'maybe' as bool"),
        ("no_equals_sign", "not of the form field=value"),
        ("mode.x=1", "is not a config section"),
    ],
)
def test_bad_overrides_are_named(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(_Toy(), [override])


def test_invalid_train_combination_fails_at_build():
    cfg = apply_overrides(_Toy(), ["train.stepsize=0"])
    with pytest.raises(ConfigError, match="stepsize"):
        registry.validate(cfg)
