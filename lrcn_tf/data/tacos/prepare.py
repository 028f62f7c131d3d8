"""Prepares a TACoS multi-level JSON-lines file into the folder `PreparedTACoS` reads.

`prepare` writes the three Table 5 inputs of every segment, the vocabularies and, last,
`manifest.json` (see `lrcn_tf.data.tacos.format` for the format).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lrcn_tf.data import folders, text
from lrcn_tf.data.tacos.format import (
    LEVELS,
    MANIFEST,
    SLOTS,
    SPLITS,
    VERSION,
    Segment,
    TACoSFormatError,
    crf_prob_encoding,
    map_label_words,
    pad_ids,
    read_jsonl,
    source_vocabulary,
    stack_crf,
)
from lrcn_tf.runtime import write_text_atomic

# --- prepare ----------------------------------------------------------------------------------


def prepare(
    src: str | Path,
    out: str | Path,
    dataset: str = "tacos_multilevel",
    min_count: int = text.MIN_COUNT,
    max_words: int = text.MAX_WORDS,
    levels: Sequence[str] = ("detailed",),
) -> dict:
    """Reads a TACoS JSON-lines file and writes the prepared folder (see the module docstring).

    Args:
      src: the JSON-lines file.
      out: the output folder (created); `manifest.json` is written last, so a folder without
        it is incomplete.
      dataset: the dataset name recorded in the manifest.
      min_count: vocabulary threshold (5 in the original).
      max_words: caption truncation (20 in the original).
      levels: the description levels kept (LEVELS; segments without one are "detailed").

    Returns:
      The manifest.

    Raises:
      TACoSFormatError: a malformed input line, or no training segment.
    """
    corpus = read_jsonl(src)
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise TACoSFormatError(f"levels {list(levels)}: choose from {list(LEVELS)}")
    have = {lv: sum(g.level == lv for g in corpus.segments) for lv in LEVELS}
    segments = [g for g in corpus.segments if g.level in levels]
    if not segments:
        raise TACoSFormatError(
            f"{src}: no segment at level(s) {list(levels)}; the file has "
            + ", ".join(f"{lv} {n}" for lv, n in have.items() if n)
        )
    out = Path(out)
    try:
        folders.claim(out, dataset)  # never writes into (or unlinks from) someone else's folder
    except folders.DataFolderError as e:
        raise TACoSFormatError(str(e)) from None
    (out / MANIFEST).unlink(missing_ok=True)  # the folder is incomplete until the end
    by_split = {s: [g for g in segments if g.split == s] for s in SPLITS}
    if not by_split["train"]:
        raise TACoSFormatError(f"{src}: no segment has split 'train'; the vocabulary needs one")
    train_tokens = [text.tokenize(x) for g in by_split["train"] for x in g.sentences]
    vocab = text.Vocabulary.build(train_tokens, min_count)
    src_vocab = source_vocabulary(corpus.labels)
    vocab.save(out / "vocabulary.txt")
    src_vocab.save(out / "source_vocabulary.txt")
    counts, accuracy = {}, {}
    for split, segs in by_split.items():
        if not segs:
            continue
        crf = stack_crf(segs)
        source = pad_ids([src_vocab.encode(w) for w in map_label_words(crf, corpus.labels)])
        seg_index, inputs, targets = [], [], []
        for i, g in enumerate(segs):
            for x in g.sentences:
                inp, tgt = text.time_steps(vocab.encode(text.tokenize(x)), max_words)
                seg_index.append(i)
                inputs.append(inp)
                targets.append(tgt)
        tmp = out / f".{split}.npz.tmp"
        with open(tmp, "wb") as f:
            np.savez(
                f,
                ids=np.array([g.id for g in segs]),
                crf=crf_prob_encoding(crf),
                source=source,
                caption_segment=np.array(seg_index, np.int32),
                caption_input=np.stack(inputs),
                caption_target=np.stack(targets),
            )
        tmp.replace(out / f"{split}.npz")
        refs = {g.id: list(g.sentences) for g in segs}
        write_text_atomic(out / f"{split}_references.json", json.dumps(refs, indent=1) + "\n")
        counts[split] = {"segments": len(segs), "sentences": len(seg_index)}
        if all(g.gold is not None for g in segs):
            accuracy[split] = map_accuracy(segs, corpus.labels)
    manifest = {
        "dataset": dataset,
        "format_version": VERSION,
        "source_file": _relative_to(Path(src).resolve(), out.resolve()),
        "labels": {s: list(corpus.labels[s]) for s in SLOTS},
        "slot_sizes": [len(corpus.labels[s]) for s in SLOTS],
        "counts": counts,
        "map_accuracy": accuracy,
        "vocabulary_size": len(vocab),
        "source_vocabulary_size": len(src_vocab),
        "min_count": min_count,
        "max_words": max_words,
        "levels": list(levels),
        "segments_per_level": {lv: n for lv, n in have.items() if n},
        "ignored_fields": corpus.ignored,
    }
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def map_accuracy(segments: Sequence[Segment], labels: Mapping[str, Sequence[str]]) -> dict:
    """Per slot, the fraction of segments whose MAP label is the gold label."""
    out = {}
    for slot in SLOTS:
        hits = [g.crf[slot].argmax() == labels[slot].index(g.gold[slot]) for g in segments]
        out[slot] = float(np.mean(hits))
    return out


def _relative_to(path: Path, folder: Path) -> str:
    """`path` relative to `folder` when inside it (the folder may be renamed), else absolute."""
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)
