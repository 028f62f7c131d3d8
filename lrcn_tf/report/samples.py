"""What the report takes from rows' saved outputs: per-class accuracy, recall curves, samples.

Each function returns None (and the report says what is missing) when the run folder or the
prepared dataset it needs is not on this machine.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

import numpy as np

from lrcn_tf.report.runs import load_run
from lrcn_tf.report.tables import Group

# --- Table 1 ---------------------------------------------------------------------------------


def table1_scores(g: Group, workdir: Path, model: str, metric: str, split: str):
    """(labels, scores) of one Table 1 cell from its run folder(s): the row's scores.npz, or
    the RGB and flow rows' scores fused with the fusion's weight. None if not here."""
    from lrcn_tf.evaluation import activity as ev

    def scores(m: str):
        run = load_run(workdir, g.run_ids.get((model, split, m), ""))
        path = run.file("scores.npz")
        return ev.load_scores(path) if run.exists and path.is_file() else None

    if metric in ev.FUSION_WEIGHTS:
        rgb, flow = scores("rgb"), scores("flow")
        if rgb is None or flow is None:
            return None
        r, f, labels = ev.aligned(rgb, flow)
        return labels, ev.fuse(r, f, ev.FUSION_WEIGHTS[metric])
    s = scores(metric)
    return None if s is None else (s["labels"], s["scores"])


def best_cell(g: Group, prefix: str = "") -> tuple[str, str]:
    """(model, input) with the highest accuracy among rows starting with `prefix`, on the mean
    of 3 splits if present, else split-1; ("", "") if there is none."""
    setting = "all_splits" if any(k[1] == "all_splits" for k in g.ours) else "split1"
    cells = {
        (k[0], k[2]): v for k, v in g.ours.items() if k[1] == setting and k[0].startswith(prefix)
    }
    return max(cells, key=lambda c: (cells[c], c)) if cells else ("", "")


def table1_classes(g: Group, workdir: Path) -> list[str] | None:
    """Class names from the dataset folder the runs used (its dataset.json)."""
    for run_id in g.run_ids.values():
        run = load_run(workdir, run_id.split("+")[0])
        data_dir = run.config.get("data_dir")
        if data_dir:
            try:
                return list(json.loads((Path(data_dir) / "dataset.json").read_text())["classes"])
            except (OSError, ValueError, KeyError):
                return None
    return None


def table1_per_class(g: Group, workdir: Path, models: list[str], metric: str):
    """Per-class accuracy of `models` on one input, pooled over the test videos of every split
    run (each split's videos counted once). Returns (accuracy {model: (K,)}, counts (K,),
    confusion of the last model (K, K), splits used) or None."""
    splits = sorted({k[1] for k in g.ours if k[1].startswith("split")})
    acc, counts, conf, used = {}, None, None, []
    for split in splits:
        got = [table1_scores(g, workdir, m, metric, split) for m in models]
        if any(x is None for x in got):
            continue
        used.append(split)
        for m, (labels, scores) in zip(models, got):
            k = scores.shape[1]
            correct = np.bincount(labels, weights=np.argmax(scores, 1) == labels, minlength=k)
            acc[m] = acc.get(m, 0) + correct
        labels, scores = got[-1]
        k = scores.shape[1]
        n = np.bincount(labels, minlength=k)
        counts = n if counts is None else counts + n
        c = np.zeros((k, k), np.int64)
        np.add.at(c, (labels, np.argmax(scores, 1)), 1)
        conf = c if conf is None else conf + c
    if not used:
        return None
    return {m: 100.0 * a / np.maximum(counts, 1) for m, a in acc.items()}, counts, conf, used


def _jpeg_array(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def table1_strip(
    g: Group, workdir: Path, model: str, metric: str, videos: int = 4, frames: int = 4
):
    """A few split-1 test videos: `frames` RGB frames and flow images each, with the true class
    and `model`'s prediction on `metric` (two right and two wrong where there are).

    Returns [(label, [images])] rows for plots.image_strip, or None.
    """
    got = table1_scores(g, workdir, model, metric, "split1")
    if got is None:
        return None
    labels, scores = got
    run = load_run(workdir, g.run_ids.get((model, "split1", "rgb"), ""))
    data_dir = run.config.get("data_dir")
    if not data_dir or not (Path(data_dir) / "dataset.json").is_file():
        return None
    from lrcn_tf.data.ucf101 import format as ucf101
    from lrcn_tf.data.ucf101.index import FrameIndex

    info = ucf101.load_info(data_dir)
    test = ucf101.split_videos(data_dir, 1, "test")
    if len(test) != len(labels):
        return None
    pred = np.argmax(scores, 1)
    right = [i for i in range(len(test)) if pred[i] == labels[i]]
    wrong = [i for i in range(len(test)) if pred[i] != labels[i]]
    step_r, step_w = max(1, len(right) // 2), max(1, len(wrong) // 2)
    chosen = (right[::step_r][: videos // 2] + wrong[::step_w][: videos - videos // 2])[:videos]
    rows = []
    modalities = ["rgb"] + (["flow"] if info.flow != "none" else [])
    for i in chosen:
        v = test[i]
        per = []
        for modality in modalities:
            index = FrameIndex(data_dir, info.shards, [v.name], modality)
            n = int(index.counts[0])
            picks = np.linspace(0, n - 1, frames).round().astype(int)
            per += [_jpeg_array(b) for b in index.jpegs([0], [picks])[0]]
        mark = "right" if pred[i] == labels[i] else "WRONG"
        label = (
            f"{Path(v.name).stem}\ntrue: {info.classes[labels[i]]}\n"
            f"predicted: {info.classes[pred[i]]} ({mark})"
        )
        rows.append((label, per))
    return rows, modalities


# --- Table 2 ---------------------------------------------------------------------------------


def table2_curves(g: Group, workdir: Path):
    """Recall@K for every K in both directions from the row's saved score matrix, or None."""
    run_ids = {v for k, v in g.run_ids.items()}
    for run_id in sorted(run_ids):
        run = load_run(workdir, run_id)
        split = run.config.get("config", {}).get("split", "test") if run.exists else "test"
        lp, ci = run.file(f"log_p_{split}.npy"), run.file(f"caption_image_{split}.npy")
        if not (run.exists and lp.is_file() and ci.is_file()):
            continue
        from lrcn_tf.evaluation.retrieval import retrieval_ranks

        c2i, i2c = retrieval_ranks(np.load(lp, mmap_mode="r"), np.load(ci))
        out = {}
        for d, ranks in (("caption_to_image", c2i), ("image_to_caption", i2c)):
            n = int(ranks.max()) + 2
            ks = np.unique(np.geomspace(1, max(n, 2), 60).round().astype(int))
            out[d] = (ks, np.array([100.0 * np.mean(ranks < k) for k in ks]))
        return out
    return None


# --- Table 3 ---------------------------------------------------------------------------------


def table3_cards(results_dir: Path, dataset: str, limit: int = 12) -> str | None:
    """The caption cards of results/table3_samples_<dataset>.html (written by reproduce.table3):
    the grid's first `limit` cards, as HTML. None if the page is not there."""
    page = results_dir / f"table3_samples_{dataset}.html"
    try:
        text = page.read_text()
    except OSError:
        return None
    cards = re.findall(r'<div class="card">.*?</ul></div>', text, flags=re.S)
    if not cards:
        return None
    return f'<div class="grid">{"".join(cards[:limit])}</div>'


# --- Table 5 ---------------------------------------------------------------------------------


def table5_segments(g: Group, workdir: Path, limit: int = 5) -> tuple[str, list[str]] | None:
    """A few test segments: their reference sentences and each row's sentence, as (HTML,
    Markdown lines)."""
    rows = sorted({k[0] for k in g.ours})
    predictions, data_dir, split = {}, None, "test"
    for row in rows:
        run = load_run(workdir, next(v for k, v in g.run_ids.items() if k[0] == row))
        split = run.config.get("config", {}).get("eval_split", "test")
        path = run.file(f"predictions_{split}.json")
        if run.exists and path.is_file():
            predictions[row] = json.loads(path.read_text())
            data_dir = data_dir or run.config.get("data_dir")
    if not predictions or not data_dir:
        return None
    try:
        refs = json.loads((Path(data_dir) / f"{split}_references.json").read_text())
    except (OSError, ValueError):
        return None
    from lrcn_tf.report.tables import ROW_NAMES, name

    ids = sorted(set.intersection(*(set(p) for p in predictions.values())) & set(refs))
    picks = ids[:: max(1, len(ids) // limit)][:limit]
    cards, md = [], []
    for sid in picks:
        md.append(f"- segment `{sid}`")
        md += [f"  - **{name(ROW_NAMES, r)}**: {p.get(sid, '')}" for r, p in predictions.items()]
        md += [f"  - reference: {r}" for r in refs[sid][:2]]
        gens = "".join(
            f'<div class="gen"><b>{html.escape(name(ROW_NAMES, r))}</b> '
            f"{html.escape(str(p.get(sid, '')))}</div>"
            for r, p in predictions.items()
        )
        ref = "".join(f"<li>{html.escape(r)}</li>" for r in refs[sid])
        cards.append(
            f'<div class="card wide"><div>segment {html.escape(str(sid))}</div>{gens}'
            f"<div>references:</div><ul>{ref}</ul></div>"
        )
    return f'<div class="grid">{"".join(cards)}</div>', md


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
