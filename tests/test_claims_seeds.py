"""reproduce.claims: the paper's claims judged over seeds (mean margin, 95% interval, held)."""

import csv
import math
import sys

import pytest

from reproduce import claims as rc


def _rows(fc6_rgb, fc7_rgb, fc6_flow, fc7_flow):
    def row(r, m, v):
        return {
            "table": "table1",
            "row": r,
            "setting": "split1",
            "metric": m,
            "dataset": "synthetic_ucf101",
            "value": v,
            "run_id": "x",
            "preset": "default",
        }

    return [
        row("lrcn_fc6", "rgb", fc6_rgb),
        row("lrcn_fc7", "rgb", fc7_rgb),
        row("lrcn_fc6", "flow", fc6_flow),
        row("lrcn_fc7", "flow", fc7_flow),
    ]


def test_margin_interval_and_seeds_held():
    # t1_fc6_beats_fc7's margin per seed: min(fc6 - fc7 over rgb, flow) = 2, -1, 5.
    by_seed = {1: _rows(12, 10, 50, 40), 2: _rows(20, 21, 50, 40), 3: _rows(30, 20, 45, 40)}
    (claim,) = [r for r in rc.judge(by_seed) if r["claim"] == "t1_fc6_beats_fc7"]
    assert claim["seeds"] == 3 and claim["seeds_held"] == 2
    assert claim["verdict"] == "2 of 3 seeds"
    mean, sd = 2.0, math.sqrt(((2 - 2) ** 2 + (-1 - 2) ** 2 + (5 - 2) ** 2) / 2)
    half = 4.30 * sd / math.sqrt(3)  # t(0.975, 2 degrees of freedom)
    assert claim["margin_mean"] == pytest.approx(mean)
    assert claim["margin_low"] == pytest.approx(mean - half, abs=1e-3)
    assert claim["margin_high"] == pytest.approx(mean + half, abs=1e-3)
    # Claims whose rows were not run are left out.
    assert {r["claim"] for r in rc.judge(by_seed)} == {"t1_fc6_beats_fc7"}


def test_runs_each_table_per_seed_and_writes_the_claims(tmp_path, monkeypatch):
    from absl import flags

    calls = []

    def fake_run(cmd, check):
        out = next(c.split("=", 1)[1] for c in cmd if c.startswith("--output="))
        seed = int(next(c.split("=", 1)[1] for c in cmd if c.startswith("--seed=")))
        calls.append(cmd)
        with open(out, "w", newline="") as f:
            w = csv.DictWriter(f, list(_rows(0, 0, 0, 0)[0]))
            w.writeheader()
            w.writerows(_rows(10 + seed % 3, 10, 30, 20))
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(rc.subprocess, "run", fake_run)
    output = tmp_path / "claims.csv"
    flags.FLAGS(
        [
            sys.argv[0],
            "--seeds=3",
            f"--workdir={tmp_path}",
            f"--output={output}",
            "--set=train.max_iter=5",
        ]
    )
    try:
        assert rc.main([sys.argv[0]]) == 0
    finally:
        flags.FLAGS.unparse_flags()
    assert [c[c.index("-m") + 1] for c in calls] == ["reproduce.table1"] * 3
    assert [c for c in calls[0] if c.startswith(("--seed", "--split", "--set"))] == [
        "--seed=1701",
        "--set=train.max_iter=5",
        "--split=all",
    ]
    with open(output) as f:
        (row,) = list(csv.DictReader(f))
    # margins: seed 1701 -> 10 + 0 - 10 = 0 (holds: >=), 1702 -> 1, 1703 -> 2
    assert row["claim"] == "t1_fc6_beats_fc7" and row["seeds_held"] == "3"
    assert float(row["margin_mean"]) == pytest.approx(1.0)
