r"""Our numbers beside the paper's, the paper's claims, and the embedded regression check.

    python -m reproduce.compare                      # every results/table*.csv present
    python -m reproduce.compare --produced /tmp/ci/table1.csv --strict

With no produced CSV it prints the paper's Tables 1-5 from results/expected.csv and checks the
claims on the paper's own numbers. For each produced row it prints the paper's value for the
same key (an embedded `synthetic_*` dataset is set beside its real counterpart, for context
only: those numbers are not comparable), and the embedded golden value with its tolerance.

Writes results/comparison.csv. Exit status: 0 ok; 1 a golden (regression) row is outside its
tolerance (or, with --strict, absent from a produced CSV of the same table, dataset and
preset); 2 an unreadable or malformed input, named with its line.
"""

from __future__ import annotations

import csv
import glob
import io
import re
import sys

from absl import flags

from lrcn_tf import cli
from lrcn_tf.evaluation import claims
from lrcn_tf.results import (
    EXPECTED_COLUMNS,
    EXPECTED_CSV,
    KEY,
    PAPER_DATASET,
    PAPER_DATASETS,
    PRODUCED_COLUMNS,
    TABLES,
    ResultsError,
    check_known,
    read_rows,
    rows_for_preset,
)
from lrcn_tf.runtime import write_text_atomic

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "produced", None, "Produced CSVs (default: every results/table[1-5].csv present; empty: none)."
)
flags.DEFINE_string(
    "expected", str(EXPECTED_CSV), "Paper and golden values (default: the repository's)."
)
flags.DEFINE_string("output", "results/comparison.csv", "Where to write the comparison.")
flags.DEFINE_list("tables", None, "Only these tables (e.g. table1,table5).")
flags.DEFINE_bool("strict", False, "A golden row absent from a produced CSV is a regression.")


_DISCLAIMER = (
    "NOTE: synthetic_* datasets are small generated stand-ins that exercise the real loaders "
    "and pipeline; their numbers are NOT comparable to the paper's."
)


def golden_preset(source: str) -> str:
    """The preset a golden row was produced with, read from its `source` command."""
    m = re.search(r"--preset[= ](\w+)", source)
    return m.group(1) if m else "default"


def compare(expected: list[dict], produced: list[dict], strict: bool = False):
    """Joins produced rows with paper and golden rows.

    Returns:
      (comparison rows as dicts, number of regressions).
    """
    by_key = {tuple(r[k] for k in KEY): r for r in expected}
    out, regressions = [], 0
    seen = set()
    for r in produced:
        key = tuple(r[k] for k in KEY)
        seen.add(key + (r.get("preset", ""),))
        paper_ds = PAPER_DATASET.get(r["dataset"], r["dataset"])
        paper = by_key.get(key[:4] + (paper_ds,)) if paper_ds in PAPER_DATASETS else None
        golden = by_key.get(key) if r["dataset"] not in PAPER_DATASETS else None
        status = ""
        if golden is not None and golden.get("tolerance", "") != "":
            if r.get("preset") and r["preset"] != golden_preset(golden["source"]):
                status = f"golden is for --preset {golden_preset(golden['source'])}"
            elif abs(r["value"] - golden["value"]) <= golden["tolerance"] + 1e-9:
                status = "OK"
            else:
                status = "REGRESSION"
                regressions += 1
        out.append(
            {
                **{k: r[k] for k in KEY},
                "preset": r.get("preset", ""),
                "ours": r["value"],
                "paper": paper["value"] if paper else "",
                "diff_vs_paper": r["value"] - paper["value"] if paper else "",
                "golden": golden["value"] if golden else "",
                "tolerance": golden["tolerance"] if golden else "",
                "status": status,
                "run_id": r.get("run_id", ""),
            }
        )
    if strict:
        produced_groups = {(r["table"], r["dataset"], r.get("preset", "")) for r in produced}
        for g in expected:
            group = (g["table"], g["dataset"], golden_preset(g["source"]))
            key = tuple(g[k] for k in KEY)
            missing = key + (group[2],) not in seen
            if g.get("tolerance", "") != "" and group in produced_groups and missing:
                regressions += 1
                out.append(
                    {
                        **{k: g[k] for k in KEY},
                        "preset": group[2],
                        "ours": "",
                        "paper": "",
                        "diff_vs_paper": "",
                        "golden": g["value"],
                        "tolerance": g["tolerance"],
                        "status": "MISSING",
                        "run_id": "",
                    }
                )
    return out, regressions


def _fmt(x) -> str:
    if x == "" or x is None:
        return "-"
    return (
        f"{x:+.2f}"
        if isinstance(x, float) and x < 0
        else f"{x:.2f}"
        if isinstance(x, float)
        else str(x)
    )


def _print_table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [header] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for i, row in enumerate(cells):
        print(
            "  "
            + "  ".join(
                c.ljust(w) if j < 4 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))
            )
        )
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))


def print_report(expected: list[dict], comparison: list[dict], datasets: dict[str, dict]) -> None:
    """Prints the paper's tables (no produced rows) or ours beside the paper, then the claims."""
    tables = sorted({r["table"] for r in comparison} or {r["table"] for r in expected})
    for table in tables:
        ours = [r for r in comparison if r["table"] == table]
        if ours:
            for ds in sorted({r["dataset"] for r in ours}):
                rows = [
                    [
                        r["row"],
                        r["setting"],
                        r["metric"],
                        r["status"] or "",
                        r["ours"],
                        r["paper"],
                        r["diff_vs_paper"],
                        r["golden"],
                        r["tolerance"],
                    ]
                    for r in ours
                    if r["dataset"] == ds
                ]
                _print_table(
                    f"{table} on {ds} (paper column: {PAPER_DATASET.get(ds, ds)})",
                    [
                        "row",
                        "setting",
                        "metric",
                        "status",
                        "ours",
                        "paper",
                        "diff",
                        "golden",
                        "tol",
                    ],
                    rows,
                )
        else:
            paper = [r for r in expected if r["table"] == table and r["dataset"] in PAPER_DATASETS]
            rows = [[r["row"], r["setting"], r["metric"], r["dataset"], r["value"]] for r in paper]
            _print_table(
                f"{table} (paper, {paper[0]['source'] if paper else ''})",
                ["row", "setting", "metric", "dataset", "paper"],
                rows,
            )
    print("\nClaims of the paper")
    for ds, values in sorted(datasets.items()):
        present = {k[0] for k in values}
        for claim_id, statement, verdict, why in claims.evaluate(values, present):
            print(f"  {verdict:5s}  {ds:18s} {claim_id:34s} {statement}  [{why}]")
    if any(ds.startswith("synthetic_") for ds in datasets):
        print("\n" + _DISCLAIMER)


def _values_by_dataset_and_preset(rows: list[dict]) -> dict:
    """Claims are judged on one preset's rows at a time: {"dataset" or "dataset [preset]":
    values}, the preset named when the rows hold more than one."""
    presets = sorted({r.get("preset", "") for r in rows})
    out = {}
    for preset in presets:
        for ds, values in claims.values_by_dataset(rows_for_preset(rows, preset)).items():
            out[f"{ds} [{preset}]" if len(presets) > 1 else ds] = values
    return out


def main(argv):
    del argv
    try:
        expected = read_rows(FLAGS.expected, EXPECTED_COLUMNS)
        # --produced= (empty) means none: print the paper alone.
        paths = FLAGS.produced
        if paths is None:
            paths = sorted(glob.glob("results/table[1-5].csv"))
        produced = []
        for p in paths:
            rows = read_rows(p, PRODUCED_COLUMNS[:6])
            if not rows:
                raise ResultsError(f"{p}: no rows (a header only); nothing to compare")
            for r in rows:
                check_known(r, p)
            produced += rows
        unknown = [t for t in FLAGS.tables or () if t not in TABLES]
        if unknown:
            raise ResultsError(
                f"--tables: unknown {', '.join(unknown)} (known: {', '.join(TABLES)})"
            )
    except ResultsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if FLAGS.tables:
        expected = [r for r in expected if r["table"] in FLAGS.tables]
        produced = [r for r in produced if r["table"] in FLAGS.tables]
    comparison, regressions = compare(expected, produced, FLAGS.strict)
    datasets = _values_by_dataset_and_preset(produced)
    if not produced:
        datasets = claims.values_by_dataset(r for r in expected if r["dataset"] in PAPER_DATASETS)
    print_report(expected, comparison, datasets)
    if comparison:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(comparison[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(comparison)
        write_text_atomic(FLAGS.output, buf.getvalue())
        print(f"\nwrote {FLAGS.output} ({len(comparison)} rows)")
    if regressions:
        print(
            f"\n{regressions} embedded regression row(s) outside tolerance or missing",
            file=sys.stderr,
        )
        return 1
    return 0


def run() -> None:
    cli.run(main)


if __name__ == "__main__":
    run()
