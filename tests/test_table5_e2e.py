"""End to end: `python -m reproduce.table5` on synthetic_tacos (slow: opt in with -m slow)."""

import os
import subprocess
import sys

import pytest

from lrcn_tf.results import PRODUCED_COLUMNS, read_rows


@pytest.mark.slow
def test_table5_runs_every_row_and_writes_the_csv(tmp_path):
    out = tmp_path / "table5.csv"
    cmd = [
        sys.executable,
        "-m",
        "reproduce.table5",
        "--decoder=all",
        "--preset=smoke",
        "--set=train.max_iter=30",
        f"--workdir={tmp_path / 'runs'}",
        f"--output={out}",
        "--nocompare",
    ]
    env = {**os.environ, "LRCN_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_rows(out, PRODUCED_COLUMNS)
    assert sorted(r["row"] for r in rows) == [
        "lstm_dec_crf_max",
        "lstm_dec_crf_prob",
        "lstm_enc_dec_crf_max",
    ]
    assert all(r["dataset"] == "synthetic_tacos" and r["setting"] == "test" for r in rows)
    assert (tmp_path / "data" / "synthetic_tacos" / "manifest.json").exists()
    for r in rows:
        assert (tmp_path / "runs" / r["run_id"] / "predictions_test.json").exists()
