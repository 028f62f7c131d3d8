"""Fault test: SIGKILL `prepare` and a Table 1 smoke run at random moments, rerun, and check the
shards, manifest and result CSV equal an uninterrupted run's (slow: opt in with -m slow)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lrcn_tf.results import PRODUCED_COLUMNS, read_rows

ROOT = Path(__file__).resolve().parents[1]
KILLS = 3  # moments per program, drawn from a fixed seed
PREPARE = ["--dataset=synthetic_ucf101", "--num_classes=2", "--num_groups=10", "--workers=1"]
TABLE1 = ["--split=1", "--preset=smoke", "--inputs=rgb", "--models=single_frame", "--nocompare"]


def _env(tmp_path):
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "LRCN_DATA_DIR": str(tmp_path / "cache"),
    }


def _start(module, args, env):
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _finish(module, args, env) -> float:
    start = time.time()
    proc = _start(module, args, env)
    _, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0, err.decode()[-3000:]
    return time.time() - start


def _kill_at(module, args, env, seconds: float) -> bool:
    """Starts the program, SIGKILLs its process group after `seconds`; True if it was killed."""
    proc = _start(module, args, env)
    try:
        proc.wait(timeout=seconds)
        return False  # finished first
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def _records(path: Path) -> list:
    """A shard's records, parsed: protobuf map fields (the context) serialise in no fixed
    order, so two writes of the same record may differ in bytes but not in content."""
    import tensorflow as tf

    return [
        tf.train.SequenceExample.FromString(r)
        for r in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()
    ]


def _prepared(out: Path) -> dict:
    """What must not depend on kills: every shard's records, manifest.csv, dataset.json."""
    files = sorted((out / "shards").glob("*/*.tfrecord"))
    return {
        "manifest": (out / "manifest.csv").read_text(),
        "info": json.loads((out / "dataset.json").read_text()),
        "shards": {str(f.relative_to(out)): _records(f) for f in files},
    }


@pytest.mark.slow
def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path):
    env = _env(tmp_path)
    rng = np.random.default_rng(15)
    ref = tmp_path / "ref"
    took = _finish("lrcn_tf.prepare", [*PREPARE, f"--out={ref}"], env)
    want = _prepared(ref)
    assert len(want["shards"]) >= 2
    killed = 0
    for i, t in enumerate(sorted(rng.uniform(0.2, 0.9, KILLS) * took)):
        out = tmp_path / f"p{i}"
        killed += _kill_at("lrcn_tf.prepare", [*PREPARE, f"--out={out}"], env, t)
        _finish("lrcn_tf.prepare", [*PREPARE, f"--out={out}"], env)
        assert _prepared(out) == want, f"prepare killed after {t:.1f} s"
    assert killed >= 2  # the kills landed while it ran

    def table1(name):
        return [
            *TABLE1,
            f"--data_dir={ref}",
            f"--workdir={tmp_path / name}",
            f"--output={tmp_path / name / 'table1.csv'}",
        ]

    took = _finish("reproduce.table1", table1("t_ref"), env)
    want = {
        tuple(r[k] for k in PRODUCED_COLUMNS): r["line"]
        for r in read_rows(tmp_path / "t_ref" / "table1.csv", PRODUCED_COLUMNS)
    }
    killed = 0
    for i, t in enumerate(sorted(rng.uniform(0.3, 0.9, KILLS - 1) * took)):
        killed += _kill_at("reproduce.table1", table1(f"t{i}"), env, t)
        _finish("reproduce.table1", table1(f"t{i}"), env)
        got = read_rows(tmp_path / f"t{i}" / "table1.csv", PRODUCED_COLUMNS)
        assert {tuple(r[k] for k in PRODUCED_COLUMNS): r["line"] for r in got} == want, (
            f"table1 killed after {t:.1f} s"
        )
    assert killed >= 1
