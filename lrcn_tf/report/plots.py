"""The report's figures, each answering one of the paper's questions; PNG bytes out.

Every function draws with matplotlib's Agg backend (no display) and returns the PNG, which the
report writes beside REPORT.md and inlines into index.html.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from lrcn_tf.report.tables import METRIC_NAMES, ROW_NAMES, SETTING_NAMES, Group, name

_COLOURS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _paper_label(g: Group) -> str:
    return f"paper ({g.paper_dataset}{', not comparable' if g.synthetic else ''})"


def table1_bars(g: Group) -> bytes:
    """Model x input grouped bars (mean of the splits we ran), each split a dot, and the
    paper's split-1 (x) and mean of 3 splits (diamond) as markers."""
    plt = _plt()
    models = [m for m in ("single_frame", "lrcn_fc6", "lrcn_fc7") if any(k[0] == m for k in g.ours)]
    models += sorted({k[0] for k in g.ours} - set(models))
    inputs = [m for m in g.metrics() if any(k[2] == m for k in g.ours)]
    splits = sorted({k[1] for k in g.ours if k[1].startswith("split")})
    fig, ax = plt.subplots(figsize=(max(6.5, 1.9 * len(models) + 2), 4.4))
    width = 0.8 / max(1, len(inputs))
    for j, metric in enumerate(inputs):
        xs, heights = [], []
        for i, model in enumerate(models):
            vals = [g.ours[(model, s, metric)] for s in splits if (model, s, metric) in g.ours]
            if not vals:
                continue
            x = i - 0.4 + width * (j + 0.5)
            xs.append(x)
            heights.append(float(np.mean(vals)))
            ax.scatter([x] * len(vals), vals, s=12, color="black", zorder=3, linewidths=0)
            for setting, marker, size in (("split1", "x", 40), ("all_splits", "D", 28)):
                p = g.paper.get((model, setting, metric))
                if p is not None:
                    ax.scatter(x, p, marker=marker, s=size, color="#b00", zorder=4)
        ax.bar(
            xs,
            heights,
            width * 0.92,
            color=_COLOURS[j % len(_COLOURS)],
            alpha=0.85,
            label=name(METRIC_NAMES, metric),
        )
    ax.scatter([], [], s=12, color="black", label=f"each split ({', '.join(splits)})")
    if g.paper:
        ax.scatter([], [], marker="x", color="#b00", label=_paper_label(g) + ", split-1")
        ax.scatter([], [], marker="D", s=20, color="#b00", label=_paper_label(g) + ", mean of 3")
    ax.set_xticks(range(len(models)), [name(ROW_NAMES, m) for m in models])
    ax.set_ylabel("video accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Table 1 on {g.dataset} ({g.preset}): bars are the mean over the splits run")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.09))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def per_class(
    classes: Sequence[str], accuracy: Mapping[str, np.ndarray], counts: np.ndarray, title: str
) -> bytes:
    """Per-class accuracy of two or more models, classes sorted by the gain of the last over
    the first (which classes does LRCN help?). Over 30 classes, the 15 largest gains and losses."""
    plt = _plt()
    names = list(accuracy)
    gain = accuracy[names[-1]] - accuracy[names[0]]
    order = np.argsort(-gain, kind="stable")
    if len(order) > 30:
        order = np.concatenate([order[:15], order[-15:]])
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(order) + 1.4))
    h = 0.8 / len(names)
    ys = np.arange(len(order))
    for j, n in enumerate(names):
        ax.barh(
            ys - 0.4 + h * (j + 0.5),
            accuracy[n][order],
            h,
            label=n,
            color=_COLOURS[j % len(_COLOURS)],
        )
    labels = [f"{classes[c]} ({int(counts[c])}) {gain[c]:+.0f}" for c in order]
    ax.set_yticks(ys, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("per-class video accuracy (%)   [label: class (test videos) gain]")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def confusion(classes: Sequence[str], matrix: np.ndarray, title: str) -> bytes:
    """Row-normalised confusion matrix (rows: true class, columns: predicted)."""
    plt = _plt()
    m = np.asarray(matrix, dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    size = min(9.0, 2.5 + 0.38 * n)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        ax.set_xticks(range(n), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(n), classes, fontsize=7)
        for i in range(n):
            for j in range(n):
                if m[i, j]:
                    ax.text(
                        j,
                        i,
                        int(m[i, j]),
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, label="fraction of the true class")
    fig.tight_layout()
    return _png(fig)


def table2_recall(g: Group, curves: Mapping[str, tuple[np.ndarray, np.ndarray]] | None) -> bytes:
    """Recall@K against K for both directions: our curve (every K, from the saved score
    matrix when the run folder is here; else our R@1/5/10), the paper's rows as markers."""
    plt = _plt()
    directions = ["caption_to_image", "image_to_caption"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, d in zip(axes, directions):
        rows = sorted({k[0] for k in g.ours if k[1] == d})
        for j, row in enumerate(rows):
            colour = _COLOURS[j % len(_COLOURS)]
            if curves and d in curves:
                ks, rec = curves[d]
                ax.plot(ks, rec, color=colour, label=f"ours {name(ROW_NAMES, row)} (every K)")
            pts = [(k, g.ours.get((row, d, f"r{k}"))) for k in (1, 5, 10)]
            pts = [(k, v) for k, v in pts if v is not None]
            ax.plot(*zip(*pts), "o", color=colour, label=f"ours {name(ROW_NAMES, row)} R@1/5/10")
        for j, row in enumerate(r for r in g.paper_rows if (r, d, "r1") in g.paper):
            pts = [
                (k, g.paper[(row, d, f"r{k}")]) for k in (1, 5, 10) if (row, d, f"r{k}") in g.paper
            ]
            own = row in rows
            ax.plot(
                *zip(*pts),
                "--D" if own else ":",
                color="#b00" if own else "grey",
                alpha=1 if own else 0.5,
                markersize=4 if own else 2,
                label=f"paper {name(ROW_NAMES, row)}" if own or j == 0 else None,
            )
        ax.set_xscale("log")
        ax.set_xlabel("K (log scale)")
        ax.set_title(name(SETTING_NAMES, d))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("Recall@K (%)")
    axes[0].set_ylim(0, 100)
    fig.suptitle(
        f"Table 2 on {g.dataset} ({g.preset}); {_paper_label(g)}: grey dotted = the paper's "
        "other models",
        fontsize=9,
    )
    fig.tight_layout()
    return _png(fig)


def table3_metrics(g: Group) -> bytes:
    """BLEU-1..4 as one group per model, then METEOR, CIDEr and ROUGE-L each on its own axis
    (CIDEr's scale is about five times BLEU's); the paper's BLEU as red markers."""
    plt = _plt()
    rows = [r for r in g.paper_rows if any(k[0] == r for k in g.ours)]
    rows += sorted({k[0] for k in g.ours} - set(rows))
    others = [m for m in ("meteor", "cider", "rouge_l") if any(k[2] == m for k in g.ours)]
    fig, axes = plt.subplots(
        1,
        1 + len(others),
        figsize=(4.5 + 2.2 * len(others), 4),
        gridspec_kw={"width_ratios": [3] + [1] * len(others)},
        squeeze=False,
    )
    axes = axes[0]
    bleu = ["bleu1", "bleu2", "bleu3", "bleu4"]
    width = 0.8 / max(1, len(rows))
    setting = next(iter({k[1] for k in g.ours}), "test")
    for j, row in enumerate(rows):
        xs = np.arange(4) - 0.4 + width * (j + 0.5)
        ys = [g.ours.get((row, setting, m), np.nan) for m in bleu]
        axes[0].bar(
            xs, ys, width * 0.92, color=_COLOURS[j % len(_COLOURS)], label=name(ROW_NAMES, row)
        )
        ps = [g.paper.get((row, setting, m)) for m in bleu]
        if any(p is not None for p in ps):
            axes[0].scatter(
                xs,
                [np.nan if p is None else p for p in ps],
                marker="D",
                s=22,
                color="#b00",
                zorder=3,
            )
    if g.paper:
        axes[0].scatter([], [], marker="D", s=22, color="#b00", label=_paper_label(g))
    axes[0].set_xticks(range(4), [name(METRIC_NAMES, m) for m in bleu])
    axes[0].set_ylabel("score (%)")
    axes[0].legend(fontsize=7)
    axes[0].grid(axis="y", alpha=0.3)
    for ax, metric in zip(axes[1:], others):
        vals = [g.ours.get((row, setting, metric), np.nan) for row in rows]
        ax.bar(
            range(len(rows)), vals, color=[_COLOURS[j % len(_COLOURS)] for j in range(len(rows))]
        )
        ax.set_xticks(
            range(len(rows)),
            [name(ROW_NAMES, r) for r in rows],
            rotation=45,
            ha="right",
            fontsize=7,
        )
        for x, v in enumerate(vals):
            if np.isnan(v):
                ax.text(x, 0, "not\ncomputed", ha="center", va="bottom", fontsize=6, color="grey")
        ax.set_title(name(METRIC_NAMES, metric), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Table 3 on {g.dataset} ({g.preset})", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def bars_with_paper(g: Group, metric: str, ylabel: str, title: str) -> bytes:
    """One bar per row for `metric` (ours and the paper's side by side; paper-only rows too)."""
    plt = _plt()
    setting = next(iter(sorted({k[1] for k in g.ours if k[2] == metric})), "test")
    rows = [
        r for r in g.paper_rows if (r, setting, metric) in g.paper or (r, setting, metric) in g.ours
    ]
    rows += sorted({k[0] for k in g.ours if k[2] == metric} - set(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(rows) + 1.5), 4.2))
    xs = np.arange(len(rows))
    ours = [g.ours.get((r, setting, metric), np.nan) for r in rows]
    paper = [g.paper.get((r, setting, metric), np.nan) for r in rows]
    ax.bar(xs - 0.2, ours, 0.4, label=f"ours ({g.dataset}, {g.preset})", color=_COLOURS[0])
    ax.bar(xs + 0.2, paper, 0.4, label=_paper_label(g), color="#b55", alpha=0.7)
    for x, v in zip(xs, ours):
        if not np.isnan(v):
            ax.text(x - 0.2, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
    for x, v in zip(xs, paper):
        if not np.isnan(v):
            ax.text(x + 0.2, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7, color="#733")
    ax.set_xticks(xs, [name(ROW_NAMES, r) for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, max(np.nanmax(ours + paper + [1.0]) * 1.15, 10))
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def training_curves(curves: Sequence[tuple[str, Mapping]], title: str) -> bytes:
    """Loss and learning rate against step for every trained run.

    Args:
      curves: (label, {tag: (steps, values)}) per run and stage; tags `loss`, `learning_rate`.
        Labels ending in " splitN" share a colour per what comes before and take the Nth line
        style, so Table 1's 18 runs read as 6 colours x 3 styles.
      title: the figure's title.
    """
    plt = _plt()
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = ["-", "--", ":", "-."]
    colours: dict[str, str] = {}
    for label, scalars in curves:
        stem, _, split = label.rpartition(" split")
        if not (stem and split.isdigit()):
            stem, split = label, "1"
        colour = colours.setdefault(stem, _COLOURS[len(colours) % len(_COLOURS)])
        ls = styles[(int(split) - 1) % len(styles)]
        if "loss" in scalars:
            ax_loss.plot(*scalars["loss"], ls, color=colour, label=label, linewidth=1)
        if "learning_rate" in scalars:
            ax_lr.plot(*scalars["learning_rate"], ls, color=colour, linewidth=1)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss (logged every log_every steps)")
    ax_loss.set_yscale("log")
    ax_loss.grid(alpha=0.3)
    ax_lr.set_xlabel("step")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_yscale("log")
    ax_lr.grid(alpha=0.3)
    fig.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def image_strip(rows: Sequence[tuple[str, Sequence[np.ndarray]]], title: str) -> bytes:
    """Rows of images (e.g. a video's frames then its flow), each row with a label on the left."""
    plt = _plt()
    cols = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(
        len(rows), cols, figsize=(1.5 * cols + 1.2, 1.35 * len(rows)), squeeze=False
    )
    for i, (label, images) in enumerate(rows):
        for j in range(cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(images):
                ax.imshow(images[j])
            else:
                ax.axis("off")
        axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _png(fig)
