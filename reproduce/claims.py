r"""The paper's claims judged over seeds: run tables with N seeds, report each claim's margin.

    python -m reproduce.claims --seeds 3                       # Table 1, default preset, 3 seeds
    python -m reproduce.claims --tables table1,table5 --seeds 5 --preset smoke

For each seed (`--first_seed`, +1, ...) every table named is run as its own program
(`python -m reproduce.tableN --seed S --preset P --workdir W --output W/claims/tableN_seedS.csv`;
Table 1 with `--split all`, or `--table1_split`), so a seed that finished is found again in the workdir and a killed
run resumes. `--seed` reseeds training only (the data are the same). Then every claim of the
paper on those tables is judged on each seed, and the program prints and writes to `--output`
one line per claim: the seeds it holds in, and its margin (the tightest comparison of the
claim, left minus right: positive where it holds) as a mean over the seeds with a 95%
t-interval. One seed that fails by a fraction of a point is noise until the interval says
otherwise.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

from lrcn_tf.report import claims_view
from lrcn_tf.results import PRODUCED_COLUMNS, read_rows
from lrcn_tf.runtime import write_text_atomic

FLAGS = flags.FLAGS
TABLES = ("table1", "table2", "table3", "table5")
flags.DEFINE_list("tables", ["table1"], f"Tables to run, from {', '.join(TABLES)}.")
flags.DEFINE_integer("seeds", 3, "How many seeds.")
flags.DEFINE_integer("first_seed", 1701, "The first seed (the recipe's); then +1, +2, ...")
flags.DEFINE_enum("preset", "default", ["smoke", "default", "paper"], "Preset of every run.")
flags.DEFINE_string("workdir", "runs", "Run folders; per-seed CSVs go to WORKDIR/claims/.")
flags.DEFINE_string("output", "results/claims_seeds.csv", "The claims over seeds (CSV).")
flags.DEFINE_multi_string("set", [], "Config overrides passed to every table (--set).")
flags.DEFINE_list("extra", [], "More flags passed to every table program, e.g. --dataset=...")
flags.DEFINE_enum("table1_split", "all", ["1", "2", "3", "all"], "Table 1's --split.")


def seed_csv(workdir: Path, table: str, seed: int) -> Path:
    return workdir / "claims" / f"{table}_seed{seed}.csv"


def run_table(table: str, seed: int, workdir: Path) -> Path:
    """Runs one table for one seed (a subprocess); returns its CSV."""
    out = seed_csv(workdir, table, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        f"reproduce.{table}",
        f"--seed={seed}",
        f"--preset={FLAGS.preset}",
        f"--workdir={workdir}",
        f"--output={out}",
        "--nocompare",
        *(f"--set={s}" for s in FLAGS.set),
        *FLAGS.extra,
    ]
    if table == "table1":
        cmd.append(f"--split={FLAGS.table1_split}")
    if table == "table5":
        cmd.append("--decoder=all")
    print(" ".join(cmd), flush=True)
    start = time.time()
    status = subprocess.run(cmd, check=False).returncode
    if status != 0:
        raise app.UsageError(f"{table} with seed {seed} failed (exit status {status}); see above")
    print(f"{table} seed {seed}: {time.time() - start:.0f} s", flush=True)
    return out


def judge(rows_by_seed: dict[int, list[dict]]) -> list[dict]:
    """Claim verdicts over the seeds' rows (`claims_view.verdicts`), as flat CSV rows; claims
    whose rows were not run are left out."""
    rows = [dict(r, seed=str(seed)) for seed, rs in rows_by_seed.items() for r in rs]
    return [_flat(v, rows_by_seed) for v in claims_view.verdicts(rows) if v["verdict"] != "N/A"]


def _flat(v: dict, rows_by_seed: dict[int, list[dict]]) -> dict:
    from lrcn_tf.evaluation import claims

    held = 0
    for rs in rows_by_seed.values():
        values = claims.values_by_dataset(rs).get(v["dataset"], {})
        fn = claims.CLAIMS[v["claim"]][1]
        held += fn(values)[0] == claims.HOLDS
    mean, lo, hi = v["interval"] if v["interval"] else (float("nan"),) * 3
    return {
        "dataset": v["dataset"],
        "preset": v["preset"],
        "claim": v["claim"],
        "statement": v["statement"],
        "verdict": v["verdict"],
        "seeds": v["seeds"],
        "seeds_held": held,
        "margin_mean": round(mean, 4),
        "margin_low": round(lo, 4),
        "margin_high": round(hi, 4),
        "comparisons": v["why"],
    }


def write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, claims_view.SEED_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, buf.getvalue())


def print_table(rows: list[dict]) -> None:
    print(f"{'claim':34} {'held':>6}  {'margin mean [95% interval]':30} verdict")
    for r in rows:
        span = f"{r['margin_mean']:+.2f} [{r['margin_low']:+.2f}, {r['margin_high']:+.2f}]"
        print(f"{r['claim']:34} {r['seeds_held']:>2} of {r['seeds']:<2} {span:30} {r['verdict']}")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    bad = [t for t in FLAGS.tables if t not in TABLES]
    if bad or not FLAGS.tables:
        raise app.UsageError(f"--tables={','.join(FLAGS.tables)}: choose from {', '.join(TABLES)}")
    if FLAGS.seeds < 2:
        raise app.UsageError(f"--seeds={FLAGS.seeds}: an interval needs at least 2 seeds")
    workdir = Path(FLAGS.workdir)
    start = time.time()
    rows_by_seed: dict[int, list[dict]] = {}
    for seed in range(FLAGS.first_seed, FLAGS.first_seed + FLAGS.seeds):
        for table in FLAGS.tables:
            out = run_table(table, seed, workdir)
            rows_by_seed.setdefault(seed, []).extend(read_rows(out, PRODUCED_COLUMNS[:6]))
    rows = judge(rows_by_seed)
    write_csv(Path(FLAGS.output), rows)
    print_table(rows)
    print(f"wrote {FLAGS.output} after {time.time() - start:.0f} s ({FLAGS.seeds} seeds)")
    return 0


if __name__ == "__main__":
    app.run(main)
