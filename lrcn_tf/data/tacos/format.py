r"""TACoS multilevel for video description (Table 5): the JSON-lines input and the encodings.

The CRF outputs of TACoS multilevel were distributed by the dataset's authors in a format that
is not public here, so we define our own input format (docs/tacos_format.md): one JSON object
a line, a header with the label vocabulary of each slot, then one segment a line with its
per-slot CRF distributions, reference sentences and split.

    python -m lrcn_tf.prepare --dataset tacos_multilevel --src tacos.jsonl --out DIR
    python -m lrcn_tf.prepare --dataset synthetic_tacos --out DIR

The three inputs of Table 5 are computed from the distributions (`crf_max_encoding`,
`crf_prob_encoding`, `map_label_words`). Sentences follow the image-description text rules
(lrcn_tf.data.text): the vocabulary is built from the training split's sentences only.

Prepared folder: `manifest.json` (labels, counts, the CRF's MAP accuracy when the input has
gold tuples), `vocabulary.txt` (sentence words), `source_vocabulary.txt` (the words of the
labels, read by the encoder-decoder), and per split `<split>.npz` (segment ids, concatenated
CRF probabilities, MAP label word ids, caption time steps) and `<split>_references.json`,
written by `lrcn_tf.data.tacos.prepare` and read by `lrcn_tf.data.tacos.pipeline`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from lrcn_tf.data import text
from lrcn_tf.errors import UserError

SLOTS = ("activity", "tool", "object", "source", "target")
SPLITS = ("train", "val", "test")
FORMAT = "tacos_multilevel"
VERSION = 1
MANIFEST = "manifest.json"
ENCODINGS = ("crf_max", "crf_prob", "map_words")
_SEGMENT_KEYS = {
    "id", "video", "start", "end", "split", "crf", "sentences", "gold", "level", "fps", "frames",
}  # fmt: skip
_HEADER_KEYS = {"format", "version", "labels"}
# The description levels of TACoS multilevel (Rohrbach et al. 2014): detailed (sentences
# aligned to segments), short (3-5 sentences a video), a single sentence a video.
LEVELS = ("detailed", "short", "single_sentence")
_SUM_TOLERANCE = 1e-2  # distributions must sum to 1 within this; then they are renormalised


class TACoSFormatError(UserError):
    """A malformed TACoS JSON-lines file; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class Segment:
    """One video segment: its CRF distributions (slot -> probabilities) and references."""

    id: str
    video: str
    start: float
    end: float
    split: str
    crf: dict[str, np.ndarray]
    sentences: tuple[str, ...]
    gold: dict[str, str] | None = None
    level: str = "detailed"  # LEVELS
    fps: float | None = None  # the video's frame rate, when given
    frames: tuple[int, int] | None = None  # first and last frame of the segment, when given


@dataclasses.dataclass(frozen=True)
class Corpus:
    """A parsed file: the label vocabulary of every slot and the segments in file order.

    `ignored` counts the lines of every unknown field that was skipped (a field whose name is
    close to a known one is an error instead: it is more likely a misspelling)."""

    labels: dict[str, tuple[str, ...]]
    segments: list[Segment]
    ignored: dict[str, int] = dataclasses.field(default_factory=dict)


# --- parsing ----------------------------------------------------------------------------------


def read_lines(path: str | Path, encoding: str = "utf-8") -> list[str]:
    """The lines of a text file; an unreadable file is a TACoSFormatError naming it."""
    try:
        return Path(path).read_text(encoding=encoding).splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TACoSFormatError(
            f"{path}: cannot read: {getattr(e, 'strerror', None) or e}"
        ) from None


def read_jsonl(path: str | Path) -> Corpus:
    """Reads and validates a TACoS JSON-lines file (docs/tacos_format.md).

    Raises:
      TACoSFormatError: unreadable file or a malformed line, named as `path:line: why`.
    """
    return parse_lines(read_lines(path), str(path))


def parse_lines(lines: Iterable[str], source: str = "<input>") -> Corpus:
    """Parses the lines of a TACoS JSON-lines file; blank lines are skipped.

    Args:
      lines: the file's lines (the first non-blank one is the header).
      source: the name used in error messages.

    Returns:
      The corpus, with distributions renormalised to sum to exactly 1.

    Raises:
      TACoSFormatError: `source:line: why` for the first malformed line.
    """
    labels = None
    segments: list[Segment] = []
    first_line: dict[str, int] = {}
    ignored: dict[str, int] = {}
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue

        def fail(why: str, line_no=line_no):
            raise TACoSFormatError(f"{source}:{line_no}: {why}")

        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            fail(f"not valid JSON ({e.msg} at column {e.colno})")
        if not isinstance(obj, dict):
            fail(f"expected a JSON object, got {type(obj).__name__}")
        for key in _unknown(obj, _HEADER_KEYS if labels is None else _SEGMENT_KEYS, fail):
            ignored[key] = ignored.get(key, 0) + 1
        if labels is None:
            labels = _parse_header(obj, fail)
            continue
        seg = _parse_segment(obj, labels, fail)
        if seg.id in first_line:
            fail(f"duplicate segment id {seg.id!r} (first on line {first_line[seg.id]})")
        first_line[seg.id] = line_no
        segments.append(seg)
    if labels is None:
        raise TACoSFormatError(f"{source}: empty file, expected a header line")
    if not segments:
        raise TACoSFormatError(f"{source}: a header but no segment lines")
    return Corpus(labels, segments, ignored)


def _unknown(obj: dict, known: set[str], fail) -> list[str]:
    """The unknown fields of a line, to be skipped and reported; one whose name is close to a
    known field's is an error (a misspelt field would otherwise be lost silently)."""
    unknown = sorted(set(obj) - known)
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        if close:
            fail(f"unknown field {key!r} (did you mean {close[0]!r}?); fields: {sorted(known)}")
    return unknown


def _parse_header(obj: dict, fail) -> dict[str, tuple[str, ...]]:
    if obj.get("format") != FORMAT:
        fail(
            f'the first line must be the header {{"format": "{FORMAT}", "version": 1, "labels": ...}}'
        )
    if obj.get("version") != VERSION:
        fail(
            f"format version {obj.get('version')!r} is not supported (this reader reads {VERSION})"
        )
    labels = obj.get("labels")
    if not isinstance(labels, dict) or set(labels) != set(SLOTS):
        got = sorted(labels) if isinstance(labels, dict) else type(labels).__name__
        fail(f"header 'labels' must map exactly the slots {list(SLOTS)} to label lists, got {got}")
    out = {}
    for slot in SLOTS:
        names = labels[slot]
        if not isinstance(names, list) or not names:
            fail(f"labels of slot {slot!r} must be a non-empty list of strings")
        if not all(isinstance(n, str) and text.tokenize(n) for n in names):
            fail(f"labels of slot {slot!r} must be strings with at least one word")
        if len(set(names)) != len(names):
            fail(f"labels of slot {slot!r} are not unique")
        out[slot] = tuple(names)
    return out


def _parse_segment(obj: dict, labels: dict[str, tuple[str, ...]], fail) -> Segment:
    for key in ("video", "start", "end", "split", "crf", "sentences"):
        if key not in obj:
            fail(f"missing field {key!r}")
    video = obj["video"]
    if not isinstance(video, str) or not video:
        fail("'video' must be a non-empty string")
    start, end = obj["start"], obj["end"]
    for name, v in (("start", start), ("end", end)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            fail(f"{name!r} must be a number, got {v!r}")
    if end < start:
        fail(f"'end' {end} is before 'start' {start}")
    if obj["split"] not in SPLITS:
        fail(f"'split' {obj['split']!r} is not one of {list(SPLITS)}")
    seg_id = obj.get("id", f"{video}:{start}-{end}")
    if not isinstance(seg_id, str) or not seg_id:
        fail("'id' must be a non-empty string")
    crf = obj["crf"]
    if not isinstance(crf, dict) or set(crf) != set(SLOTS):
        got = sorted(crf) if isinstance(crf, dict) else type(crf).__name__
        fail(f"'crf' must map exactly the slots {list(SLOTS)} to probability lists, got {got}")
    dists = {slot: _parse_distribution(crf[slot], slot, len(labels[slot]), fail) for slot in SLOTS}
    sentences = obj["sentences"]
    if (
        not isinstance(sentences, list)
        or not sentences
        or not all(isinstance(s, str) and text.tokenize(s) for s in sentences)
    ):
        fail("'sentences' must be a non-empty list of sentences with at least one word each")
    gold = obj.get("gold")
    if gold is not None:
        if not isinstance(gold, dict) or set(gold) != set(SLOTS):
            fail(f"'gold' must map exactly the slots {list(SLOTS)} to labels")
        for slot, label in gold.items():
            if label not in labels[slot]:
                fail(f"gold {slot} {label!r} is not a label of that slot")
    level = obj.get("level", "detailed")
    if level not in LEVELS:
        fail(f"'level' {level!r} is not one of {list(LEVELS)}")
    fps = obj.get("fps")
    if fps is not None and (
        isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps < math.inf
    ):
        fail(f"'fps' must be a positive number, got {fps!r}")
    frames = obj.get("frames")
    if frames is not None:
        if (
            not isinstance(frames, list)
            or len(frames) != 2
            or not all(isinstance(f, int) and not isinstance(f, bool) and f >= 0 for f in frames)
            or frames[1] < frames[0]
        ):
            fail(f"'frames' must be [first, last], whole numbers, first <= last; got {frames!r}")
        frames = (frames[0], frames[1])
    return Segment(
        seg_id,
        video,
        start,
        end,
        obj["split"],
        dists,
        tuple(sentences),
        gold,
        level,
        None if fps is None else float(fps),
        frames,
    )


def _parse_distribution(values, slot: str, size: int, fail) -> np.ndarray:
    if not isinstance(values, list) or len(values) != size:
        n = len(values) if isinstance(values, list) else type(values).__name__
        fail(f"crf {slot!r} must be a list of {size} probabilities (one per label), got {n}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        fail(f"crf {slot!r} holds a value that is not a number")
    p = np.asarray(values, np.float64)
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        fail(f"crf {slot!r} holds a negative or non-finite probability")
    total = float(p.sum())
    if abs(total - 1.0) > _SUM_TOLERANCE:
        fail(f"crf {slot!r} sums to {total:.4f}, not 1 (tolerance {_SUM_TOLERANCE})")
    return (p / total).astype(np.float32)


# --- the three inputs of Table 5 --------------------------------------------------------------


def stack_crf(segments: Sequence[Segment]) -> dict[str, np.ndarray]:
    """Per slot, the (num_segments, num_labels) matrix of the segments' distributions."""
    return {slot: np.stack([s.crf[slot] for s in segments]) for slot in SLOTS}


def split_slots(concatenated: np.ndarray, slot_sizes: Sequence[int]) -> dict[str, np.ndarray]:
    """Inverse of `crf_prob_encoding`: (N, sum of sizes) -> slot -> (N, size)."""
    bounds = np.cumsum([0, *slot_sizes])
    if concatenated.shape[-1] != bounds[-1]:
        raise ValueError(f"{concatenated.shape[-1]} columns where the slots have {bounds[-1]}")
    return {slot: concatenated[:, bounds[i] : bounds[i + 1]] for i, slot in enumerate(SLOTS)}


def crf_prob_encoding(crf: Mapping[str, np.ndarray]) -> np.ndarray:
    """(c) CRF prob: the per-slot distributions concatenated in slot order, (N, D) float32."""
    return np.concatenate([np.asarray(crf[s], np.float32) for s in SLOTS], axis=-1)


def crf_max_encoding(crf: Mapping[str, np.ndarray]) -> np.ndarray:
    """(b) CRF max: the one-hot MAP label of every slot, concatenated, (N, D) float32.

    Ties go to the first label in the slot's vocabulary (numpy's argmax).
    """
    parts = []
    for s in SLOTS:
        p = np.asarray(crf[s])
        parts.append(np.eye(p.shape[-1], dtype=np.float32)[p.argmax(-1)])
    return np.concatenate(parts, axis=-1)


def map_label_words(
    crf: Mapping[str, np.ndarray], labels: Mapping[str, Sequence[str]]
) -> list[list[str]]:
    """(a) The MAP labels as a word sequence (slot order, labels tokenised by the text rules).

    E.g. <cut, knife, carrot, NULL, cutting board> -> "cut knife carrot null cutting board".
    Empty slots ("NULL") stay in the sequence as a word: the encoder sees which slot is empty.
    """
    num = len(next(iter(crf.values())))
    words: list[list[str]] = [[] for _ in range(num)]
    for s in SLOTS:
        tokens = [text.tokenize(label) for label in labels[s]]
        for i, k in enumerate(np.asarray(crf[s]).argmax(-1)):
            words[i].extend(tokens[k])
    return words


def source_vocabulary(labels: Mapping[str, Sequence[str]]) -> text.Vocabulary:
    """The encoder's vocabulary: every word of every label, sorted (no frequency threshold)."""
    return text.Vocabulary(sorted({w for s in SLOTS for n in labels[s] for w in text.tokenize(n)}))


def pad_ids(seqs: Sequence[Sequence[int]], length: int | None = None) -> np.ndarray:
    """Right-pads id sequences with 0 (EOS, masked by the encoder) into an (N, length) int32 array."""
    length = length or max(1, max((len(s) for s in seqs), default=1))
    out = np.zeros((len(seqs), length), np.int32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s[:length]
    return out
