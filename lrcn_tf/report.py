"""results/REPORT.md: every produced table beside the paper's, the claims, and one plot per table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lrcn_tf.evaluation import claims
from lrcn_tf.results import EXPECTED_COLUMNS, KEY, PAPER_DATASET, PRODUCED_COLUMNS, read_rows
from lrcn_tf.runtime import write_text_atomic

_NOTE = (
    "> Rows on `synthetic_*` datasets come from small generated stand-ins that exercise the real "
    "loaders and pipelines on a CPU. **They are not comparable to the paper's numbers**; the "
    "paper column is shown for context only."
)


def _plot(table: str, rows: list[dict], paper: dict, path: Path, paper_ds: str) -> bool:
    """Grouped bars, ours vs the paper's, one bar pair per (row, setting, metric)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['row']}\n{r['setting']}\n{r['metric']}" for r in rows]
    ours = [r["value"] for r in rows]
    theirs = [paper.get(tuple(r[k] for k in KEY[:4]), float("nan")) for r in rows]
    width = max(6.0, 0.55 * len(rows))
    fig, ax = plt.subplots(figsize=(width, 4.2))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], ours, 0.4, label=f"ours ({rows[0]['dataset']})")
    synthetic = rows[0]["dataset"] != paper_ds
    label = f"paper ({paper_ds}{', not comparable' if synthetic else ''})"
    ax.bar([x + 0.2 for x in xs], theirs, 0.4, label=label, alpha=0.6)
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_title(f"{table} on {rows[0]['dataset']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(
    produced_paths: Sequence[str | Path], expected_path: str | Path, out: str | Path
) -> Path:
    """Writes the Markdown report (and its PNG plots beside it); returns its path."""
    out = Path(out)
    expected = read_rows(expected_path, EXPECTED_COLUMNS)
    produced = []
    for p in produced_paths:
        produced += read_rows(p, PRODUCED_COLUMNS[:6])
    lines = ["# lrcn-tf results", "", _NOTE, ""]
    for table in sorted({r["table"] for r in produced}):
        for ds in sorted({r["dataset"] for r in produced if r["table"] == table}):
            rows = [r for r in produced if r["table"] == table and r["dataset"] == ds]
            paper_ds = PAPER_DATASET.get(ds, ds)
            paper = {
                tuple(r[k] for k in KEY[:4]): r["value"]
                for r in expected
                if r["table"] == table
                and r["dataset"] == paper_ds
                and r["source"].startswith("paper")
            }
            lines += [
                f"## {table} on {ds}",
                "",
                "| row | setting | metric | ours | paper | run |",
                "|---|---|---|---:|---:|---|",
            ]
            for r in rows:
                p = paper.get(tuple(r[k] for k in KEY[:4]))
                lines.append(
                    f"| {r['row']} | {r['setting']} | {r['metric']} | {r['value']:.2f} | "
                    f"{'' if p is None else f'{p:.2f}'} | {r.get('run_id', '')} |"
                )
            png = out.with_name(f"{table}_{ds}.png")
            _plot(table, rows, paper, png, paper_ds)
            lines += ["", f"![{table} on {ds}]({png.name})", ""]
    lines += [
        "## Claims of the paper",
        "",
        "| dataset | claim | verdict | detail |",
        "|---|---|---|---|",
    ]
    for ds, values in sorted(claims.values_by_dataset(produced).items()):
        present = {k[0] for k in values}
        for claim_id, _, verdict, why in claims.evaluate(values, present):
            lines.append(f"| {ds} | {claim_id} | {verdict} | {why} |")
    write_text_atomic(out, "\n".join(lines) + "\n")
    return out
