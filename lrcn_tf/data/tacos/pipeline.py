"""A prepared TACoS folder in memory (`PreparedTACoS`) and its tf.data training pipeline."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from lrcn_tf.data import text
from lrcn_tf.data.tacos.format import ENCODINGS, MANIFEST, crf_max_encoding, split_slots

# --- loading ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SplitData:
    """One prepared split: per-segment inputs and references, per-sentence caption time steps."""

    ids: list[str]
    crf: np.ndarray  # (N, D) concatenated distributions
    source: np.ndarray  # (N, S) MAP label word ids, 0-padded
    caption_segment: np.ndarray  # (M,) segment index of each training sentence
    caption_input: np.ndarray  # (M, T)
    caption_target: np.ndarray  # (M, T)
    references: dict[str, list[str]]


class PreparedTACoS:
    """A folder written by `prepare`.

    Args:
      path: the folder.

    Raises:
      FileNotFoundError: the folder has no manifest (not prepared, or preparation was killed).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.exists():
            raise FileNotFoundError(
                f"{manifest} not found: prepare the data with `python -m lrcn_tf.prepare "
                f"--dataset tacos_multilevel --src FILE.jsonl --out {self.path}`"
            )
        self.manifest = json.loads(manifest.read_text())
        self.labels = {s: tuple(v) for s, v in self.manifest["labels"].items()}
        self.slot_sizes = tuple(self.manifest["slot_sizes"])
        self.vocab = text.Vocabulary.load(self.path / "vocabulary.txt")
        self.source_vocab = text.Vocabulary.load(self.path / "source_vocabulary.txt")

    def split(self, name: str) -> SplitData:
        """Loads split `name` ("train", "val" or "test")."""
        npz = self.path / f"{name}.npz"
        if not npz.exists():
            raise FileNotFoundError(f"{npz} not found: the input file had no {name!r} segments")
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
        refs = json.loads((self.path / f"{name}_references.json").read_text())
        return SplitData(
            ids=[str(i) for i in arrays["ids"]],
            crf=arrays["crf"],
            source=arrays["source"],
            caption_segment=arrays["caption_segment"],
            caption_input=arrays["caption_input"],
            caption_target=arrays["caption_target"],
            references=refs,
        )

    def inputs(self, data: SplitData, encoding: str) -> np.ndarray:
        """The model input of every segment: `crf_max`/`crf_prob` (N, D) float32 or `map_words` ids."""
        if encoding == "crf_prob":
            return data.crf.astype(np.float32)
        if encoding == "crf_max":
            return crf_max_encoding(split_slots(data.crf, self.slot_sizes))
        if encoding == "map_words":
            return data.source
        raise ValueError(f"encoding {encoding!r}: choose one of {ENCODINGS}")


def caption_dataset(
    data: PreparedTACoS, split: SplitData, encoding: str, batch_size: int, seed: int
):
    """Shuffled training batches `({"cond" or "source": ..., "words": ...}, targets)`.

    One element per reference sentence (a segment with 4 sentences appears 4 times an epoch,
    as an image with 5 captions does in image description). `crf_max`/`crf_prob` give the
    decoder's "cond" (B, D); `map_words` gives the encoder's "source" ids (B, S). Only caption
    indices go through the shuffle buffer, so the checkpointed iterator stays small.
    """
    import tensorflow as tf

    per_segment = data.inputs(split, encoding)
    key = "source" if encoding == "map_words" else "cond"
    x = tf.constant(per_segment[split.caption_segment])
    words = tf.constant(split.caption_input)
    targets = tf.constant(split.caption_target)
    n = len(split.caption_segment)
    if n < batch_size:
        raise ValueError(f"{n} training sentences is fewer than one batch of {batch_size}")

    def gather(idx):
        return {key: tf.gather(x, idx), "words": tf.gather(words, idx)}, tf.gather(targets, idx)

    ds = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=True).map(gather).prefetch(2)
