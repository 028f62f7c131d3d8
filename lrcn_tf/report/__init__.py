"""The results report: results/index.html (one self-contained page) and results/REPORT.md.

    from lrcn_tf.report import write_report
    write_report(["results/table1.csv", ...], "results/expected.csv",
                 html_path="results/index.html", markdown_path="results/REPORT.md", workdir="runs")

Per produced table (one per dataset and preset): our numbers in the paper's table shape with
the paper's number and the coloured difference beside each, the plots that answer the table's
question, samples, training curves, and where each row came from (run folder, preset, weights,
commit, package versions). Then the paper's claims, HOLDS / FAILS per dataset. The HTML page
inlines every image (base64) so it opens from disk with no server and no network; the Markdown
version links the same figures, written as PNG files beside it (`figures/`).

Everything comes from the result CSVs; run folders (under `workdir`) add training curves,
per-class accuracy, recall curves and samples where they are on this machine, and the page
says what is missing where they are not.
"""

from __future__ import annotations

import dataclasses
import html
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lrcn_tf import runtime
from lrcn_tf.report import plots, runs, samples
from lrcn_tf.report.claims_view import (
    claims_html,
    claims_md,
    over_seeds_html,
    over_seeds_md,
    read_over_seeds,
)
from lrcn_tf.report.page import STYLE, banner_text
from lrcn_tf.report.tables import (
    METRIC_NAMES,
    ROW_NAMES,
    TITLES,
    Group,
    build_groups,
    group_html,
    group_md,
    name,
    paper_only_tables,
    paper_table_html,
)
from lrcn_tf.results import EXPECTED_COLUMNS, PRODUCED_COLUMNS, read_rows
from lrcn_tf.runtime import write_text_atomic


@dataclasses.dataclass
class Figure:
    file: str  # name of the PNG beside the Markdown (figures/<file>), or an existing file's path
    png: bytes
    caption: str


@dataclasses.dataclass
class Section:
    """One table's part of the report, in both formats."""

    anchor: str
    title: str
    html: list[str] = dataclasses.field(default_factory=list)
    md: list[str] = dataclasses.field(default_factory=list)

    def figure(self, fig: Figure, figures_dir: Path, md_dir: Path) -> None:
        """Inlines the figure's PNG in the page; the Markdown links its file (written into
        figures_dir unless `fig.file` is a path to an existing file)."""
        if Path(fig.file).is_absolute():
            path = Path(fig.file)
        else:
            figures_dir.mkdir(parents=True, exist_ok=True)
            path = figures_dir / fig.file
            path.write_bytes(fig.png)
        uri = samples.png_data_uri(fig.png)
        self.html.append(
            f'<figure><img src="{uri}" alt="{html.escape(fig.caption)}">'
            f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
        )
        rel = os.path.relpath(path, md_dir)
        self.md += [f"![{fig.caption}]({rel})", "", f"_{fig.caption}_", ""]

    def missing(self, what: str) -> None:
        self.html.append(f'<p class="missing">Not shown: {html.escape(what)}</p>')
        self.md += [f"> Not shown: {what}", ""]

    def heading(self, text: str) -> None:
        self.html.append(f"<h3>{html.escape(text)}</h3>")
        self.md += [f"### {text}", ""]


def _rows_of(g: Group, run_id: str) -> list[str]:
    cells = sorted(
        {
            f"{name(ROW_NAMES, k[0])} {k[1]}"
            + ("" if g.table != "table1" else f" {name(METRIC_NAMES, k[2])}")
            for k, v in g.run_ids.items()
            if run_id in runs.split_run_ids(v)
        }
    )
    return cells


def _trained_runs(g: Group, workdir: Path) -> list[tuple[str, runs.RunFolder]]:
    """(label, run) for each run whose training made this group's numbers."""
    seen, out = set(), []
    for key in sorted(g.run_ids):
        if key[1] == "all_splits" or key[2].startswith("fusion"):
            continue
        for run_id in runs.split_run_ids(g.run_ids[key]):
            run = runs.load_run(workdir, run_id)
            if run.exists and run.config.get("captioner_run"):
                run = runs.load_run(workdir, run.config["captioner_run"])
            if run.run_id in seen:
                continue
            seen.add(run.run_id)
            label = name(ROW_NAMES, key[0])
            if g.table == "table1":
                label += f" {key[2]} {key[1]}"
            elif g.table in ("table2", "table3"):
                label = "LRCN captioner"
            out.append((label, run))
    return out


def _provenance(g: Group, workdir: Path, html_dir: Path, md_dir: Path, sec: Section) -> None:
    ids = sorted({r for v in g.run_ids.values() for r in runs.split_run_ids(v)})
    trs, md = [], ["| run folder | rows | weights | commit | versions |", "|---|---|---|---|---|"]
    for run_id in ids:
        run = runs.load_run(workdir, run_id)
        href = os.path.relpath(run.path, html_dir)
        md_href = os.path.relpath(run.path, md_dir)
        versions = ", ".join(
            f"{k} {run.versions[k]}"
            for k in ("tensorflow", "keras", "numpy", "python")
            if k in run.versions
        )
        full = "; ".join(f"{k} {v}" for k, v in sorted(run.versions.items()))
        where = "" if run.exists else " (not on this machine)"
        rows = "; ".join(_rows_of(g, run_id))
        trs.append(
            f'<tr><td><a href="{html.escape(href)}/">{html.escape(run_id)}</a>{where}</td>'
            f"<td>{html.escape(rows)}</td><td>{html.escape(runs.weights_source(run))}</td>"
            f"<td><code>{html.escape(run.commit[:12] or '?')}</code></td>"
            f'<td title="{html.escape(full)}">{html.escape(versions or "?")}</td></tr>'
        )
        md.append(
            f"| [{run_id}]({md_href}/){where} | {rows} | {runs.weights_source(run)} | "
            f"`{run.commit[:12] or '?'}` | {versions or '?'} |"
        )
    sec.html.append(
        f"<details><summary>Provenance: {len(ids)} run folder(s) under "
        f"{html.escape(str(workdir))}/, preset {html.escape(g.preset)}</summary>"
        '<table class="prov"><thead><tr><th>run folder</th><th>rows</th><th>weights</th>'
        f"<th>commit</th><th>versions</th></tr></thead><tbody>{''.join(trs)}</tbody></table>"
        "</details>"
    )
    sec.md += [
        f"<details><summary>Provenance: {len(ids)} run folder(s), preset {g.preset}</summary>",
        "",
        *md,
        "",
        "</details>",
        "",
    ]


def _curves(g: Group, workdir: Path, sec: Section, figures_dir: Path, md_dir: Path) -> None:
    trained = _trained_runs(g, workdir)
    curves = []
    for label, run in trained:
        stages = runs.training_curves(run)
        for stage, scalars in stages.items():
            suffix = "" if stage == "ckpt" else f" ({stage.removeprefix('ckpt_')})"
            curves.append((label + suffix, scalars))
    absent = [run.run_id for _, run in trained if not runs.training_curves(run)]
    if curves:
        sec.heading("Training curves")
        sec.figure(
            Figure(
                f"{g.anchor}_training.png",
                plots.training_curves(
                    curves,
                    f"{TITLES[g.table].split(':')[0]} on {g.dataset} "
                    f"({g.preset}): loss and learning rate per step",
                ),
                f"Training loss and learning rate against step: {len(curves)} curve(s) from "
                f"{len(trained)} run folder(s)",
            ),
            figures_dir,
            md_dir,
        )
    if absent:
        sec.missing(
            f"training curves of {len(absent)} run(s) whose run folder (with its TensorBoard "
            f"log) is not under {workdir}: {', '.join(absent[:4])}{' ...' if len(absent) > 4 else ''}"
        )


def _table1(g, workdir, results_dir, sec, figures_dir, md_dir) -> None:
    sec.figure(
        Figure(
            f"{g.anchor}_bars.png",
            plots.table1_bars(g),
            "Model x input: bars the mean over the splits run, dots each split, red markers "
            "the paper",
        ),
        figures_dir,
        md_dir,
    )
    sweep = results_dir / "table1_fusion_sweep.png"
    if sweep.is_file():
        sec.figure(
            Figure(
                str(sweep.resolve()),
                sweep.read_bytes(),
                "Fusion p * RGB + (1 - p) * flow against p (written by reproduce.table1 for "
                "its last run)",
            ),
            figures_dir,
            md_dir,
        )
    # Which classes does LRCN help: the best LRCN cell against the single-frame model on the
    # same input (or the best cell alone when one of the two was not run).
    model, metric = (
        samples.best_cell(g, "lrcn")
        if any(k[0].startswith("lrcn") for k in g.ours)
        else samples.best_cell(g)
    )
    base = "single_frame"
    models = [base, model] if (base, "split1", metric) in g.ours and model != base else [model]
    per = samples.table1_per_class(g, workdir, models, metric)
    classes = samples.table1_classes(g, workdir)
    if per is None:
        sec.missing(
            "per-class accuracy and the confusion matrix: they are computed from each row's "
            f"saved per-video scores (scores.npz in its run folder), not under {workdir}"
        )
    else:
        acc, counts, conf, used = per
        classes = classes or [f"class {i}" for i in range(len(counts))]
        labelled = {name(ROW_NAMES, m): acc[m] for m in models}
        sec.heading("Which classes does LRCN help?")
        sec.figure(
            Figure(
                f"{g.anchor}_per_class.png",
                plots.per_class(
                    classes,
                    labelled,
                    counts,
                    f"Per-class accuracy, {name(METRIC_NAMES, metric)}, {', '.join(used)} pooled",
                ),
                f"Per-class accuracy of {name(ROW_NAMES, model)} on {name(METRIC_NAMES, metric)} "
                f"(its best input) and of the single-frame model on the same input, sorted by "
                "LRCN's gain",
            ),
            figures_dir,
            md_dir,
        )
        sec.figure(
            Figure(
                f"{g.anchor}_confusion.png",
                plots.confusion(
                    classes,
                    conf,
                    f"{name(ROW_NAMES, model)} {name(METRIC_NAMES, metric)}: "
                    f"confusion, {', '.join(used)} pooled",
                ),
                f"Confusion matrix of {name(ROW_NAMES, model)} on {name(METRIC_NAMES, metric)}",
            ),
            figures_dir,
            md_dir,
        )
    strip = samples.table1_strip(g, workdir, model, metric)
    if strip is None:
        sec.missing(
            "test-video frames with predictions: they need the best row's split-1 run folder "
            "and the prepared dataset it names"
        )
    else:
        rows, modalities = strip
        sec.heading("Test videos")
        sec.figure(
            Figure(
                f"{g.anchor}_videos.png",
                plots.image_strip(
                    rows,
                    f"split-1 test videos: {len(rows[0][1]) // len(modalities)} "
                    f"frames each of {' then '.join(modalities)}; prediction of "
                    f"{name(ROW_NAMES, model)} on {name(METRIC_NAMES, metric)}",
                ),
                "Frames and flow images of a few split-1 test videos, true and predicted class",
            ),
            figures_dir,
            md_dir,
        )


def _table2(g, workdir, results_dir, sec, figures_dir, md_dir) -> None:
    curves = samples.table2_curves(g, workdir)
    sec.figure(
        Figure(
            f"{g.anchor}_recall.png",
            plots.table2_recall(g, curves),
            "Recall@K in both directions"
            + ("" if curves else " (our R@1/5/10 only: the saved score matrix is not here)"),
        ),
        figures_dir,
        md_dir,
    )


def _table3(g, workdir, results_dir, sec, figures_dir, md_dir) -> None:
    sec.figure(
        Figure(
            f"{g.anchor}_metrics.png",
            plots.table3_metrics(g),
            "BLEU-1..4 per model (red: the paper), then METEOR, CIDEr, ROUGE-L on their own axes",
        ),
        figures_dir,
        md_dir,
    )
    cards = samples.table3_cards(results_dir, g.dataset)
    page = f"table3_samples_{g.dataset}.html"
    if cards:
        sec.heading("Sample captions")
        sec.html.append(cards)
        sec.md += [f"Sample captions: [{page}]({page}) (and in index.html).", ""]
    else:
        sec.missing(f"sample captions ({page}, written by reproduce.table3, is not there)")


def _table5(g, workdir, results_dir, sec, figures_dir, md_dir) -> None:
    sec.figure(
        Figure(
            f"{g.anchor}_bleu4.png",
            plots.bars_with_paper(
                g, "bleu4", "BLEU-4 (%)", f"Table 5 on {g.dataset} ({g.preset}) and the paper"
            ),
            "BLEU-4 per approach, ours and the paper's (SMT rows: the paper only)",
        ),
        figures_dir,
        md_dir,
    )
    segs = samples.table5_segments(g, workdir)
    if segs:
        sec.heading("Sample segments")
        sec.html.append(segs[0])
        sec.md += [*segs[1], ""]
    else:
        sec.missing("sample segments (the rows' run folders or the prepared dataset are not here)")


_EXTRAS = {"table1": _table1, "table2": _table2, "table3": _table3, "table5": _table5}


def _section(g, workdir, results_dir, figures_dir, html_dir, md_dir) -> Section:
    sec = Section(g.anchor, g.title())
    if g.synthetic:
        sec.html.append(f'<p class="banner">{html.escape(banner_text(g))}</p>')
        sec.md += [f"> ⚠️ {banner_text(g)}", ""]
    sec.html.append(f"<p class='caption'>{html.escape(g.caption())}</p>{group_html(g)}")
    sec.md += group_md(g)
    extra = _EXTRAS.get(g.table)
    if extra is not None:
        _guarded(sec, "plots and samples", extra, g, workdir, results_dir, sec, figures_dir, md_dir)
    else:
        metric = g.metrics()[0]
        sec.figure(
            Figure(
                f"{g.anchor}.png",
                plots.bars_with_paper(g, metric, metric, g.caption()),
                f"{metric}: ours and the paper's",
            ),
            figures_dir,
            md_dir,
        )
    _guarded(sec, "training curves", _curves, g, workdir, sec, figures_dir, md_dir)
    _provenance(g, workdir, html_dir, md_dir, sec)
    return sec


def _guarded(sec: Section, what: str, fn, *args) -> None:
    """Runs one part of a section that reads run folders or datasets; if it fails, the page
    says so (and stderr names the error) instead of the whole report being lost: the tables,
    which come from the CSVs alone, are still written."""
    try:
        fn(*args)
    except Exception as e:  # a malformed run folder or dataset must not cost the report
        message = f"{sec.title}: {what} could not be drawn: {type(e).__name__}: {e}"
        print(f"warning: {message}", file=sys.stderr)
        sec.missing(message)


def write_report(
    produced_paths: Sequence[str | Path],
    expected_path: str | Path,
    *,
    html_path: str | Path = "results/index.html",
    markdown_path: str | Path = "results/REPORT.md",
    workdir: str | Path = "runs",
    figures_dir: str | Path | None = None,
) -> tuple[Path, Path]:
    """Writes index.html and REPORT.md (and the figures beside the Markdown).

    Args:
      produced_paths: result CSVs (results/table1.csv ...).
      expected_path: results/expected.csv (the paper's numbers and the goldens).
      html_path, markdown_path: the two outputs (written atomically).
      workdir: where the rows' run folders are.
      figures_dir: the PNGs the Markdown links (default: `figures/` beside it).

    Returns:
      (html path, markdown path).

    Raises:
      ResultsError: a CSV cannot be read (the message names the file and line).
    """
    html_path, md_path, workdir = Path(html_path), Path(markdown_path), Path(workdir)
    figures_dir = Path(figures_dir) if figures_dir else md_path.parent / "figures"
    expected = read_rows(expected_path, EXPECTED_COLUMNS)
    produced, sources = [], []
    for p in produced_paths:
        rows = read_rows(p, PRODUCED_COLUMNS[:6])
        produced += rows
        sources.append(f"{Path(p).name} ({len(rows)} rows)")
    results_dir = Path(produced_paths[0]).parent if produced_paths else md_path.parent
    groups = build_groups(produced, expected)
    sections = [
        _section(g, workdir, results_dir, figures_dir, html_path.parent, md_path.parent)
        for g in groups
    ]
    for table in paper_only_tables(produced, expected):
        sec = Section(f"{table}-paper", TITLES.get(table, table) + " (the paper only)")
        why = (
            "Its numbers come from people ranking captions: `python -m reproduce.table4` "
            "exports the ranking kit; no produced rows."
            if table == "table4"
            else "No produced rows."
        )
        sec.html.append(f"<p>{html.escape(why)}</p>{paper_table_html(table, expected)}")
        sec.md += [why, ""]
        sections.append(sec)
    commit = runtime.git_commit(Path(__file__).parent)
    seeds_csv = results_dir / "claims_seeds.csv"
    seeds = read_over_seeds(seeds_csv)
    claims = Section("claims", "The paper's claims")
    claims.html.append(claims_html(produced))
    claims.md += claims_md(produced) + [""]
    if seeds:
        claims.html.append(over_seeds_html(seeds, seeds_csv.name))
        claims.md += over_seeds_md(seeds, seeds_csv.name)
    sections.append(claims)
    _write_html(html_path, sections, groups, sources, commit)
    _write_md(md_path, sections, groups, sources, commit)
    return html_path, md_path


def _intro(groups: list[Group], sources: list[str], commit: str) -> tuple[str, str]:
    synthetic = sorted({g.dataset for g in groups if g.synthetic})
    text = (
        f"Built by `python -m reproduce.report` from {', '.join(sources) or 'no result CSVs'} "
        f"and results/expected.csv, at commit {commit[:12]}."
    )
    warn = (
        "Rows on synthetic_* datasets ("
        + ", ".join(synthetic)
        + ") come from small generated stand-ins that exercise the real loaders and pipelines "
        "on a CPU. Their numbers are NOT comparable to the paper's; the paper's numbers are "
        "shown beside them for context only."
        if synthetic
        else ""
    )
    return text, warn


def _write_html(path, sections, groups, sources, commit) -> None:
    text, warn = _intro(groups, sources, commit)
    toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    body = [
        "<h1>lrcn-tf results</h1>",
        f"<p>{html.escape(text)}</p>",
        f'<p class="banner">{html.escape(warn)}</p>' if warn else "",
        f"<nav><ul>{toc}</ul></nav>",
    ]
    for s in sections:
        body.append(
            f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{"".join(s.html)}</section>'
        )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>lrcn-tf results</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    write_text_atomic(path, page)


def _write_md(path, sections, groups, sources, commit) -> None:
    text, warn = _intro(groups, sources, commit)
    lines = [
        "# lrcn-tf results",
        "",
        text,
        "",
        "The same report as one page with samples: [index.html](index.html) (open it from disk).",
        "",
    ]
    if warn:
        lines += [f"> ⚠️ {warn}", ""]
    for s in sections:
        lines += [f"## {s.title}", "", *s.md]
    write_text_atomic(path, "\n".join(lines) + "\n")
