import pytest

from lrcn_tf.configs import ConfigError, build, names
from lrcn_tf.configs import table1 as t1

ROWS = [f"table1/{m}/{d}" for m in t1.MODELS for d in t1.MODALITIES]


def test_every_row_is_registered():
    assert set(ROWS) <= set(names("table1/"))


def test_backbone_names_match_the_models():
    from lrcn_tf.models import backbones

    assert set(t1.BACKBONES) == set(backbones.BACKBONES)


# (stepsize, max_iter, clip_gradients, batch) from reference/original_recipes.md.
PAPER = {
    "table1/single_frame/rgb": (3000, 5000, None, 128),
    "table1/single_frame/flow": (20000, 50000, None, 128),
    "table1/lrcn_fc6/rgb": (10000, 30000, 5.0, 24),
    "table1/lrcn_fc6/flow": (20000, 70000, 15.0, 24),
    "table1/lrcn_fc7/rgb": (10000, 30000, 5.0, 24),
    "table1/lrcn_fc7/flow": (20000, 70000, 15.0, 24),
}


@pytest.mark.parametrize("name", ROWS)
def test_paper_preset_is_the_original_recipe(name):
    cfg = build(name, "paper")
    t = cfg.train
    assert (t.stepsize, t.max_iter, t.clip_gradients, t.batch_size) == PAPER[name]
    assert (t.base_lr, t.momentum, t.weight_decay, t.gamma, t.lr_policy, t.seed) == (
        0.001,
        0.9,
        0.005,
        0.1,
        "step",
        1701,
    )
    assert cfg.backbone == "hybrid_caffenet" and cfg.fc_units == 4096
    assert cfg.crop_size == 227 and cfg.test_crops == 10
    assert (cfg.test_clip_length, cfg.test_stride) == (16, 8)
    assert cfg.train_clip_length == (1 if "single_frame" in name else 16)
    if cfg.is_lrcn:
        assert (cfg.lstm_units, cfg.lstm_input_dropout, cfg.dropout) == (256, 0.9, 0.5)
        assert cfg.init_from_single_frame


@pytest.mark.parametrize("preset", ["smoke", "default"])
def test_embedded_presets_are_small(preset):
    for name in ROWS:
        cfg = build(name, preset)
        assert cfg.backbone == "small_cnn" and cfg.crop_size is None
        assert cfg.train.max_iter <= 500


@pytest.mark.parametrize(
    "override, match",
    [
        ("model=lrcn_fc8", "model 'lrcn_fc8'"),
        ("modality=depth", "modality 'depth'"),
        ("split=4", "split 4"),
        ("backbone=vgg19", "backbone 'vgg19'"),
        ("test_crops=5", "test_crops 5"),
        ("train_clip_length=16", "train_clip_length=1"),
        ("conv_filters=4,8", "conv_filters only applies"),
        ("dropout=1.0", "dropout"),
    ],
)
def test_bad_combinations_fail_at_build(override, match):
    with pytest.raises(ConfigError, match=match):
        build("table1/single_frame/rgb", "paper", [override])


def test_lrcn_needs_time_steps():
    with pytest.raises(ConfigError, match="train_clip_length >= 2"):
        build("table1/lrcn_fc6/flow", "default", ["train_clip_length=1"])
