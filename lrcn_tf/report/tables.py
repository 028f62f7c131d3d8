"""Our numbers in the paper's table shapes, the paper's number beside each, the difference coloured.

A `Group` is one produced table on one dataset with one preset (so a smoke row is never shown
beside a default one). Its rows are the paper's rows of that table, in the paper's order (rows
only the paper has are shown greyed, for context), then rows only we have; its columns are the
paper's metrics, then metrics only we report (METEOR, CIDEr, ROUGE-L). Settings the paper
prints (Table 1: split-1 and the mean of three splits; Table 2: both directions) head the main
table; other settings we ran (Table 1's splits 2 and 3) go to a second table.
"""

from __future__ import annotations

import dataclasses
import html

from lrcn_tf.results import PAPER_DATASET

ROW_NAMES = {
    "single_frame": "Single frame",
    "lrcn_fc6": "LRCN-fc6",
    "lrcn_fc7": "LRCN-fc7",
    "devise": "DeViSE",
    "sdt_rnn": "SDT-RNN",
    "defrag": "DeFrag",
    "m_rnn": "m-RNN",
    "convnet": "ConvNet",
    "lrcn_2f": "LRCN 2f",
    "nn_fc8": "1-NN fc8",
    "nn_fc7": "1-NN fc7",
    "lrcn": "LRCN",
    "treetalk": "TreeTalk",
    "oxfordnet": "OxfordNet",
    "nn": "1-NN",
    "lrcn_fc8": "LRCN fc8",
    "lrcn_ft": "LRCN FT",
    "captions": "Captions",
    "smt_crf_max": "SMT (CRF max)",
    "smt_crf_prob": "SMT (CRF prob)",
    "lstm_enc_dec_crf_max": "LSTM encoder-decoder (CRF max)",
    "lstm_dec_crf_max": "LSTM decoder (CRF max)",
    "lstm_dec_crf_prob": "LSTM decoder (CRF prob)",
}
SETTING_NAMES = {
    "split1": "split-1",
    "split2": "split-2",
    "split3": "split-3",
    "all_splits": "mean of the 3 splits",
    "caption_to_image": "Caption to image",
    "image_to_caption": "Image to caption",
    "test": "test",
    "val": "validation",
    "human_785": "785 images rated by people",
}
METRIC_NAMES = {
    "rgb": "RGB",
    "flow": "Flow",
    "fusion_half": "1/2 RGB + 1/2 flow",
    "fusion_third": "1/3 RGB + 2/3 flow",
    "r1": "R@1",
    "r5": "R@5",
    "r10": "R@10",
    "medr": "Med r",
    "bleu1": "B-1",
    "bleu2": "B-2",
    "bleu3": "B-3",
    "bleu4": "B-4",
    "meteor": "METEOR",
    "cider": "CIDEr",
    "rouge_l": "ROUGE-L",
    "correctness": "Correctness",
    "grammar": "Grammar",
    "relevance": "Relevance",
}
SETTING_ORDER = ["split1", "all_splits", "split2", "split3", "caption_to_image", "image_to_caption"]
METRIC_ORDER = list(METRIC_NAMES)
# Lower is better: retrieval's median rank, Table 4's human rankings.
LOWER_BETTER = {"medr", "correctness", "grammar", "relevance"}
TITLES = {
    "table1": "Table 1: activity recognition (video accuracy, %)",
    "table2": "Table 2: image and caption retrieval",
    "table3": "Table 3: image description (BLEU and other caption metrics)",
    "table4": "Table 4: human evaluation of captions (mean rank, lower is better)",
    "table5": "Table 5: video description (BLEU-4, %)",
}

Key = tuple[str, str, str]  # (row, setting, metric)


def name(kind: dict[str, str], key: str) -> str:
    return kind.get(key, key)


def _order(values, order: list[str]) -> list[str]:
    rank = {k: i for i, k in enumerate(order)}
    return sorted(set(values), key=lambda k: (rank.get(k, len(rank)), k))


@dataclasses.dataclass
class Group:
    """One produced table on one dataset and preset, with the paper's numbers for the same keys."""

    table: str
    dataset: str
    preset: str
    ours: dict[Key, float]
    run_ids: dict[Key, str]
    paper: dict[Key, float]  # the paper's numbers on paper_dataset
    paper_rows: list[str]  # the paper's rows of this table, in its order

    @property
    def paper_dataset(self) -> str:
        return PAPER_DATASET.get(self.dataset, self.dataset)

    @property
    def synthetic(self) -> bool:
        return self.dataset.startswith("synthetic_")

    @property
    def anchor(self) -> str:
        return f"{self.table}-{self.dataset}-{self.preset}"

    def title(self) -> str:
        return (
            f"{TITLES.get(self.table, self.table).split(' (')[0]} · {self.dataset} · {self.preset}"
        )

    def caption(self) -> str:
        vs = (
            f"beside the paper's numbers on {self.paper_dataset}"
            if self.paper
            else "(the paper has no numbers for this table on this dataset)"
        )
        return f"{TITLES.get(self.table, self.table)}, ours on {self.dataset}, preset {self.preset}, {vs}"

    def metrics(self) -> list[str]:
        return _order([k[2] for k in self.ours] + [k[2] for k in self.paper], METRIC_ORDER)

    def settings(self) -> tuple[list[str], list[str]]:
        """(settings the paper prints, settings only we ran)."""
        theirs = {k[1] for k in self.paper}
        ours = {k[1] for k in self.ours}
        return _order(theirs, SETTING_ORDER), _order(ours - theirs, SETTING_ORDER)

    def rows(self, setting: str) -> list[str]:
        theirs = [r for r in self.paper_rows if any(k[:2] == (r, setting) for k in self.paper)]
        known = {r: i for i, r in enumerate([*self.paper_rows, *ROW_NAMES])}
        ours = {k[0] for k in self.ours if k[1] == setting} - set(theirs)
        return theirs + sorted(ours, key=lambda r: (known.get(r, len(known)), r))


def build_groups(produced: list[dict], expected: list[dict]) -> list[Group]:
    """One Group per (table, dataset, preset) of the produced rows, in table order."""
    groups: dict[tuple[str, str, str], Group] = {}
    for r in produced:
        gk = (r["table"], r["dataset"], r.get("preset", "") or "?")
        if gk not in groups:
            paper_ds = PAPER_DATASET.get(r["dataset"], r["dataset"])
            paper_rows = [
                e for e in expected if e["table"] == r["table"] and e["source"].startswith("paper")
            ]
            groups[gk] = Group(
                table=r["table"],
                dataset=r["dataset"],
                preset=gk[2],
                ours={},
                run_ids={},
                paper={
                    (e["row"], e["setting"], e["metric"]): e["value"]
                    for e in paper_rows
                    if e["dataset"] == paper_ds
                },
                paper_rows=list(dict.fromkeys(e["row"] for e in paper_rows)),
            )
        key = (r["row"], r["setting"], r["metric"])
        groups[gk].ours[key] = float(r["value"])
        groups[gk].run_ids[key] = r.get("run_id", "")
    return [groups[k] for k in sorted(groups)]


def paper_only_tables(produced: list[dict], expected: list[dict]) -> list[str]:
    """Tables the paper has that no produced CSV fills (Table 4 needs people)."""
    ours = {r["table"] for r in produced}
    theirs = {e["table"] for e in expected if e["source"].startswith("paper")}
    return sorted(theirs - ours)


# --- cells -----------------------------------------------------------------------------------


def fmt(x: float | None, metric: str = "") -> str:
    if x is None:
        return "—"
    return f"{x:.1f}" if metric == "medr" else f"{x:.2f}"


def diff_colour(d: float, metric: str) -> str:
    """A background for a difference: green where ours is better, red where worse, stronger
    with the size of the gap (full at 25 points)."""
    better = d < 0 if metric in LOWER_BETTER else d > 0
    if abs(d) < 0.005:
        return "rgba(128,128,128,0.15)"
    alpha = 0.15 + 0.6 * min(abs(d) / 25.0, 1.0)
    return f"rgba(40,160,60,{alpha:.2f})" if better else f"rgba(215,50,40,{alpha:.2f})"


def _html_cell(ours: float | None, paper: float | None, metric: str) -> str:
    if ours is None and paper is None:
        return "<td></td>"
    if ours is None:
        return f'<td class="paperonly"><span class="paper">{fmt(paper, metric)}</span></td>'
    parts = [f'<span class="ours">{fmt(ours, metric)}</span>']
    if paper is not None:
        d = ours - paper
        parts.append(f'<span class="paper" title="the paper">{fmt(paper, metric)}</span>')
        parts.append(
            f'<span class="diff" style="background:{diff_colour(d, metric)}" '
            f'title="ours minus the paper">{d:+.2f}</span>'
        )
    return f"<td>{''.join(parts)}</td>"


def _md_cell(ours: float | None, paper: float | None, metric: str) -> str:
    if ours is None:
        return "" if paper is None else f"_({fmt(paper, metric)})_"
    if paper is None:
        return f"**{fmt(ours, metric)}**"
    d = ours - paper
    better = d < 0 if metric in LOWER_BETTER else d > 0
    sign = "🟢" if better else ("⚪" if abs(d) < 0.005 else "🔴")
    return f"**{fmt(ours, metric)}** ({fmt(paper, metric)}, {sign} {d:+.2f})"


def _table_html(g: Group, settings: list[str], with_paper: bool) -> str:
    metrics = g.metrics()
    head = "".join(f"<th>{html.escape(name(METRIC_NAMES, m))}</th>" for m in metrics)
    body = []
    for s in settings:
        if len(settings) > 1 or s not in ("test",):
            body.append(
                f'<tr class="group"><th colspan="{len(metrics) + 1}">'
                f"{html.escape(name(SETTING_NAMES, s))}</th></tr>"
            )
        for row in g.rows(s):
            cells = "".join(
                _html_cell(
                    g.ours.get((row, s, m)), g.paper.get((row, s, m)) if with_paper else None, m
                )
                for m in metrics
            )
            ours_row = any((row, s, m) in g.ours for m in metrics)
            cls = "" if ours_row else ' class="paperrow"'
            label = html.escape(name(ROW_NAMES, row)) + ("" if ours_row else " <i>(paper)</i>")
            body.append(f"<tr{cls}><th>{label}</th>{cells}</tr>")
    return (
        f'<table class="results"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def group_html(g: Group) -> str:
    """The group's table(s) as HTML: the paper's settings, then ours only."""
    main, extra = g.settings()
    out = []
    if main:
        out.append(_table_html(g, main, True))
    if extra:
        out.append(
            "<p class='sub'>Settings the paper does not print (no paper column):</p>"
            + _table_html(g, extra, False)
        )
    return "".join(out)


def _table_md(g: Group, settings: list[str], with_paper: bool) -> list[str]:
    metrics = g.metrics()
    lines = [
        "| | " + " | ".join(name(METRIC_NAMES, m) for m in metrics) + " |",
        "|---|" + "---:|" * len(metrics),
    ]
    for s in settings:
        if len(settings) > 1 or s != "test":
            lines.append(f"| _{name(SETTING_NAMES, s)}_ |" + " |" * len(metrics))
        for row in g.rows(s):
            ours_row = any((row, s, m) in g.ours for m in metrics)
            label = name(ROW_NAMES, row) + ("" if ours_row else " (paper)")
            cells = [
                _md_cell(
                    g.ours.get((row, s, m)), g.paper.get((row, s, m)) if with_paper else None, m
                )
                for m in metrics
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def group_md(g: Group) -> list[str]:
    main, extra = g.settings()
    lines = []
    if main:
        lines += [
            "Each cell: **ours** (the paper's number, 🟢 ours better / 🔴 ours worse, and ours "
            "minus the paper; for Med r lower is better). _(x)_: a row only the paper has.",
            "",
            *_table_md(g, main, True),
            "",
        ]
    if extra:
        lines += ["Settings the paper does not print:", "", *_table_md(g, extra, False), ""]
    return lines


def paper_table_html(table: str, expected: list[dict]) -> str:
    """A table only the paper fills (no produced rows), in its shape, per dataset."""
    out = []
    for ds in dict.fromkeys(
        e["dataset"] for e in expected if e["table"] == table and e["source"].startswith("paper")
    ):
        rows = [e for e in expected if e["table"] == table and e["dataset"] == ds]
        paper = {(e["row"], e["setting"], e["metric"]): e["value"] for e in rows}
        g = Group(table, ds, "paper", {}, {}, paper, list(dict.fromkeys(e["row"] for e in rows)))
        out.append(f"<p class='sub'>The paper, on {html.escape(ds)}:</p>" + group_html(g))
    return "".join(out)
