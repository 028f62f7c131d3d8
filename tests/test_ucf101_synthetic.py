"""synthetic_ucf101: each class moves as documented, pair partners share their per-frame
motions (only the order differs), and rendering is deterministic."""

import json
import math

import numpy as np
import pytest

from lrcn_tf.data import embedded, folders
from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.data.ucf101 import synthetic as syn
from lrcn_tf.data.ucf101.motion import (
    CLASS_MOTIONS,
    MAX_SPEED,
    ZOOM,
    Geometry,
    sample_motion,
)

GEOM = Geometry(height=60, width=80, radius=10.0, margin=2.0)


def _motions(cls, count=300, n=36):
    rng = np.random.default_rng(sum(map(ord, cls)))
    return [sample_motion(cls, n, GEOM, rng) for _ in range(count)]


def _velocity(m):
    return np.diff(m[:, :2], axis=0)


def test_every_class_has_a_motion_and_pairs_cover_all():
    assert set(CLASS_MOTIONS) == set(syn.ALL_CLASSES) and len(syn.ALL_CLASSES) == 12


@pytest.mark.parametrize("cls", syn.ALL_CLASSES)
def test_objects_stay_in_the_frame_and_below_the_speed_limit(cls):
    for m in _motions(cls, count=50):
        reach = GEOM.radius * m[:, 2]
        assert (m[:, 0] - reach >= GEOM.margin - 1e-6).all() and (
            m[:, 0] + reach <= 80 - GEOM.margin + 1e-6
        ).all()
        assert (m[:, 1] - reach >= GEOM.margin - 1e-6).all() and (
            m[:, 1] + reach <= 60 - GEOM.margin + 1e-6
        ).all()
        assert np.linalg.norm(_velocity(m), axis=1).max() <= MAX_SPEED + 1e-6
        assert ZOOM[0] - 1e-6 <= m[:, 2].min() and m[:, 2].max() <= ZOOM[1] + 1e-6


def _signs(values):
    s = np.sign(values[np.abs(values) > 1e-9])
    return s[0], s[-1]


def test_motion_directions_over_time():
    for m in _motions("LeftThenRight", 20):
        assert _signs(_velocity(m)[:, 0]) == (-1, 1)
    for m in _motions("DownThenUp", 20):  # image y points down
        assert _signs(_velocity(m)[:, 1]) == (1, -1)
    for m in _motions("GrowThenShrink", 20):
        assert _signs(np.diff(m[:, 2])) == (1, -1)
    for m in _motions("SpinClockwise", 20):  # OpenCV angles: counter-clockwise positive
        assert (np.diff(m[:, 3]) < 0).all()
    for m in _motions("SlowThenFast", 20):
        speed = np.linalg.norm(_velocity(m), axis=1)
        assert (np.diff(speed) > 0).all()
    for m in _motions("CircleClockwise", 20):
        v = _velocity(m)
        cross = v[:-1, 0] * v[1:, 1] - v[:-1, 1] * v[1:, 0]
        assert (cross > 0).all()  # velocity turns clockwise on the screen (y down)


@pytest.mark.parametrize(
    "pair,feature",
    [
        (("LeftThenRight", "RightThenLeft"), lambda m: _velocity(m)[:, 0]),
        (("UpThenDown", "DownThenUp"), lambda m: _velocity(m)[:, 1]),
        (("GrowThenShrink", "ShrinkThenGrow"), lambda m: np.diff(np.log(m[:, 2]))),
        (("SlowThenFast", "Slowing"), lambda m: np.linalg.norm(_velocity(m), axis=1)),
        (("CircleClockwise", "CircleCounterclockwise"), lambda m: np.hypot(*_velocity(m).T)),
    ],
)
def test_pair_partners_share_the_per_frame_motion_distribution(pair, feature):
    """One flow image cannot tell the partners apart: pooled per-frame motions match."""
    a = np.concatenate([feature(m) for m in _motions(pair[0])])
    b = np.concatenate([feature(m) for m in _motions(pair[1])])
    # Signed motions are bimodal (+v and -v), so compare the share of each sign and the
    # distribution of sizes; 300 videos each, tolerances a few standard errors wide.
    assert abs(np.mean(a > 0) - np.mean(b > 0)) < 0.04
    q = np.linspace(0.05, 0.95, 19)
    spread = np.quantile(np.abs(a), 0.95) - np.quantile(np.abs(a), 0.05)
    np.testing.assert_allclose(
        np.quantile(np.abs(a), q), np.quantile(np.abs(b), q), atol=0.1 * spread
    )
    # ... while their order differs: the first half of the video moves differently.
    first_a = np.concatenate([feature(m)[: len(m) // 3] for m in _motions(pair[0])])
    first_b = np.concatenate([feature(m)[: len(m) // 3] for m in _motions(pair[1])])
    if pair[0].startswith("Circle"):
        return  # the circle pair differs in turning sense, tested above
    assert abs(first_a.mean() - first_b.mean()) > 0.3 * spread


def test_rendering_is_deterministic_and_seeded():
    spec = syn.SyntheticSpec(num_classes=2)
    a = syn.render_video(spec, "Slowing", 3, 1)
    assert a.dtype == np.uint8 and a.shape[1:] == (60, 80, 3) and 24 <= len(a) <= 48
    np.testing.assert_array_equal(a, syn.render_video(spec, "Slowing", 3, 1))
    b = syn.render_video(syn.SyntheticSpec(num_classes=2, seed=1), "Slowing", 3, 1)
    assert a.shape != b.shape or not np.array_equal(a, b)
    big = syn.render_video(syn.SyntheticSpec(num_classes=2, height=120, width=160), "Slowing", 3, 1)
    assert big.shape[1:] == (120, 160, 3)


def test_plan_and_spec_validation():
    spec = syn.SyntheticSpec()
    plan = syn.video_plan(spec)
    assert 12 * 25 <= len(plan) <= 12 * 25 * 2 and len(set(plan)) == len(plan)
    assert (
        syn.file_name("CircleCounterclockwise", 3, 2)
        == "CircleCounterclockwise/v_CircleCounterClockwise_g03_c02.avi"
    )
    for bad in (dict(num_classes=3), dict(num_groups=0), dict(height=61), dict(frames=(1, 4))):
        with pytest.raises(ValueError):
            syn.SyntheticSpec(**bad).validate()
    assert math.isclose(syn.SCENE_TIE, 0.3)


def test_ensure_redoes_a_partial_folder_left_with_other_parameters(tmp_path):
    small = dict(num_classes=2, num_groups=8, clips_per_group=1)
    stale = syn.SyntheticSpec(num_classes=2, num_groups=8, clips_per_group=(1, 1), seed=7)
    syn.generate(tmp_path / "d.partial" / "raw", stale, progress=False)  # a killed other call
    # Without lrcn_tf's owner marker the folder is not ours: refused, and left as it is.
    with pytest.raises(ValueError, match="not an lrcn_tf synthetic_ucf101 folder"):
        embedded.ensure_ucf101(tmp_path / "d", **small, workers=1, progress=False)
    assert (tmp_path / "d.partial" / "raw" / "synthetic.json").exists()
    folders.mark_owned(tmp_path / "d.partial", "synthetic_ucf101")  # as a killed call leaves it
    out = embedded.ensure_ucf101(tmp_path / "d", **small, workers=1, progress=False)
    assert out == tmp_path / "d" and not (tmp_path / "d.partial").exists()
    assert '"seed": 0' in (out / "raw" / "synthetic.json").read_text()
    with pytest.raises(ValueError, match="generated with"):
        syn.generate(out / "raw", stale, progress=False)
    # A cache folder written by an older version of the format is remade, not misread.
    info = json.loads((out / "dataset.json").read_text())
    (out / "dataset.json").write_text(json.dumps({**info, "format": "lrcn_tf.ucf101/1"}))
    embedded.ensure_ucf101(out, **small, workers=1, progress=False)
    assert json.loads((out / "dataset.json").read_text())["format"] == ucf101.FORMAT
