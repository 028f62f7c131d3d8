"""Table 1 end to end on a tiny generated UCF-101: train, resume, evaluate, fuse, mirrored."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lrcn_tf.configs import build
from lrcn_tf.evaluation import activity as ev

FAST = [
    "train.max_iter=4",
    "train.checkpoint_every=2",
    "train.batch_size=4",
    "pretext_images=64",
    "pretext_train.max_iter=4",
    "pretext_train.stepsize=2",
    "pretext_train.checkpoint_every=2",
]


@pytest.fixture(scope="module")
def data_dir(two_class_ucf101):
    return two_class_ucf101


def _row(name, data_dir, workdir, init=None, extra=()):
    from lrcn_tf.tasks import activity as task
    from lrcn_tf.tasks.base import Data

    cfg = build(name, "smoke", [*FAST, *extra])
    return task.run_row(cfg, Data("synthetic_ucf101", data_dir), workdir, init=init)


def _tensorboard_tags(row) -> set[str]:
    import tensorflow as tf

    tags = set()
    for events in (row.run_dir / "ckpt" / "tensorboard").glob("events.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            tags |= {v.tag for v in event.summary.value}
    return tags


def test_rows_train_evaluate_fuse_and_are_reused(data_dir, tmp_path):
    from lrcn_tf.tasks import activity as task

    rows = {}
    for modality in ("rgb", "flow"):
        sf = _row(f"table1/single_frame/{modality}", data_dir, tmp_path)
        rows[modality] = sf
        assert sf.weights_path.exists() and sf.keras_path.exists()
        assert {"loss", "steps_per_second", "eval/video_accuracy"} <= _tensorboard_tags(sf)
        saved = ev.load_scores(sf.scores_path)
        assert len(saved["videos"]) == 14  # 2 classes x 7 test groups
        np.testing.assert_allclose(saved["scores"].sum(axis=1), 1.0, rtol=1e-5)
        assert sf.accuracy == pytest.approx(ev.accuracy(saved["scores"], saved["labels"]))
        assert sf.values == {("single_frame", "split1", modality): sf.accuracy}
    lrcn = _row("table1/lrcn_fc6/rgb", data_dir, tmp_path, init=rows["rgb"])
    assert lrcn.run_id != rows["rgb"].run_id and lrcn.scores_path.exists()
    with pytest.raises(ValueError, match="pass init="):
        _row("table1/lrcn_fc7/rgb", data_dir, tmp_path)

    # The same row again: the saved scores are reused, nothing is retrained.
    mtime = rows["rgb"].weights_path.stat().st_mtime_ns
    again = _row("table1/single_frame/rgb", data_dir, tmp_path)
    assert again.run_id == rows["rgb"].run_id and again.accuracy == rows["rgb"].accuracy
    assert rows["rgb"].weights_path.stat().st_mtime_ns == mtime

    fused = task.fuse_rows(rows["rgb"], rows["flow"], tmp_path)
    r = ev.load_scores(rows["rgb"].scores_path)
    f = ev.load_scores(rows["flow"].scores_path)
    want = ev.accuracy((r["scores"] + 2 * f["scores"]) / 3, r["labels"])
    assert fused.values[("single_frame", "split1", "fusion_third")] == pytest.approx(want)
    assert fused.sweep[0] == pytest.approx(rows["flow"].accuracy)
    assert fused.sweep[-1] == pytest.approx(rows["rgb"].accuracy)
    assert (fused.run_dir / "fusion_sweep.png").exists()


def test_killed_training_resumes_from_its_checkpoint(data_dir, tmp_path):
    from lrcn_tf.tasks import activity as task

    cfg = build("table1/single_frame/flow", "smoke", FAST)
    # "Killed" after step 2: a run with max_iter 2 leaves the checkpoint of step 2 behind.
    short = build("table1/single_frame/flow", "smoke", [*FAST, "train.max_iter=2"])
    task.train(short, data_dir, tmp_path / "ckpt")
    model, history = task.train(cfg, data_dir, tmp_path / "ckpt")
    assert history["resumed_from"] == 2 and history["step"] == 4
    straight, _ = task.train(cfg, data_dir, tmp_path / "other")
    # Bitwise: the iterator's checkpoint is symbolic (positions, no buffered batches), and
    # the restored pipeline redraws exactly the batches an uninterrupted run sees.
    for a, b in zip(model.weights, straight.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


MIRRORED = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from lrcn_tf.configs import build
    from lrcn_tf.tasks import activity as task
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    cfg = build("table1/lrcn_fc6/rgb", "smoke",
                ["train.max_iter=2", "train.batch_size=4", "train_clip_length=4"])
    model, history = task.train(cfg, sys.argv[1], sys.argv[2], strategy=strategy)
    assert history["step"] == 2, history
    print("replicas", strategy.num_replicas_in_sync, "loss", history["losses"][-1][1])
    """
)


def test_mirrored_strategy_on_two_cpu_devices(data_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(data_dir), str(tmp_path / "ckpt")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "replicas 2 loss" in proc.stdout


def test_grouped_evaluation_equals_one_video_at_a_time(data_dir):
    """`evaluate` sends VIDEOS_PER_CALL videos a forward pass, put together by tf.data and
    given to the model as tensors: the scores equal those of one video a call, from numpy."""
    from lrcn_tf.data.ucf101 import pipeline as up
    from lrcn_tf.tasks import activity as task

    cfg = build("table1/lrcn_fc6/rgb", "smoke", FAST)
    assert cfg.eval_per_video and task.VIDEOS_PER_CALL > 1
    model = task.build_model(cfg, 2, task.crop_size(cfg, data_dir))
    names, labels, scores = task.evaluate(model, cfg, data_dir)
    assert len(names) > task.VIDEOS_PER_CALL  # more than one group
    one = up.test_clips(
        data_dir,
        cfg.split,
        cfg.modality,
        crop_size=task.crop_size(cfg, data_dir),
        per_video=True,
        scale=cfg.input_scale,
        **cfg.test_protocol,
    )
    want, want_labels = ev.evaluate_videos(
        task.predictor(model, cfg.channel_order),
        one.as_numpy_iterator(),
        len(names),
        2,
        progress=False,
    )
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(scores, want, rtol=1e-6)
