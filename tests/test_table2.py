"""Table 2: the config (Table 3's LRCN_2f, nested) and the entry point."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrcn_tf import configs
from lrcn_tf.configs import PRESETS, ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("preset", PRESETS)
def test_config_nests_table3_lrcn_2f(preset):
    cfg = configs.build("table2/lrcn_2f", preset)
    # The captioner is defined once, by Table 3 (same preset), so its run folder is shared.
    assert cfg.captioner == configs.build("table3/lrcn_2f", preset)
    assert (cfg.captioner.num_layers, cfg.captioner.factored) == (2, True)
    assert cfg.row == "lrcn_2f" and cfg.split == "test" and cfg.method == "factored"


def test_overrides_reach_the_captioner():
    cfg = configs.build("table2/lrcn_2f", "smoke", ["captioner.stage1.max_iter=7", "image_chunk=5"])
    assert cfg.captioner.stage1.max_iter == 7 and cfg.image_chunk == 5


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["captioner.variant=2u", "captioner.factored=false"], "retrieval uses LRCN_2f"),
        (["split=train"], "split 'train'"),
        (["method=fast"], "method 'fast'"),
        (["caption_chunk=0"], "must be >= 1"),
    ],
)
def test_invalid_configs_are_refused(overrides, match):
    with pytest.raises(ConfigError, match=match):
        configs.build("table2/lrcn_2f", "smoke", overrides)


def test_captioner_run_folder_is_table3s(tmp_path):
    # reproduce.table2 reuses the lrcn_2f that reproduce.table3 trained: same run folder.
    from lrcn_tf.configs import build
    from lrcn_tf.tasks.captioning import training_run

    for preset in ("smoke", "default"):
        t3 = training_run(build("table3/lrcn_2f", preset), tmp_path, "synthetic_flickr30k")
        t2 = training_run(
            build("table2/lrcn_2f", preset).captioner, tmp_path, "synthetic_flickr30k"
        )
        assert t2.id == t3.id
    base = training_run(build("table3/lrcn_2f", "smoke"), tmp_path, "synthetic_flickr30k")
    other = training_run(
        build("table3/lrcn_2f", "smoke", ["beam_size=3"]), tmp_path, "synthetic_flickr30k"
    )
    assert other.id == base.id  # decoding-only fields do not change the training run


def _run(tmp_path, *args, timeout=900):
    env = dict(os.environ, LRCN_DATA_DIR=str(tmp_path / "data"), TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [
        sys.executable,
        "-m",
        "reproduce.table2",
        f"--workdir={tmp_path / 'runs'}",
        f"--output={tmp_path / 'table2.csv'}",
        "--nocompare",
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_bad_override_is_named_before_any_work(tmp_path):
    proc = _run(tmp_path, "--set", "captioner.nope=1", timeout=300)
    assert proc.returncode != 0
    assert "has no field 'nope'" in proc.stderr
    assert not (tmp_path / "data").exists()  # failed before generating the dataset


@pytest.mark.slow
def test_smoke_run_writes_rows_and_reuses_the_captioner(tmp_path):
    first = _run(tmp_path, "--preset=smoke")
    assert first.returncode == 0, first.stderr[-3000:]
    with open(tmp_path / "table2.csv") as f:
        rows = list(csv.DictReader(f))
    keys = {(r["row"], r["setting"], r["metric"], r["dataset"]) for r in rows}
    assert keys == {
        ("lrcn_2f", s, m, "synthetic_flickr30k")
        for s in ("caption_to_image", "image_to_caption")
        for m in ("r1", "r5", "r10", "medr")
    }
    run_dirs = sorted((tmp_path / "runs").glob("table2-*"))
    assert len(run_dirs) == 1 and (run_dirs[0] / "log_p_test.npy").exists()
    assert "(new: training)" in first.stdout
    # The second run finds the trained captioner in Table 3's folder and scores it again.
    second = _run(tmp_path, "--preset=smoke")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "(found: its checkpoints are reused)" in second.stdout
    with open(tmp_path / "table2.csv") as f:
        again = {(r["setting"], r["metric"]): r["value"] for r in csv.DictReader(f)}
    assert again == {(r["setting"], r["metric"]): r["value"] for r in rows}
