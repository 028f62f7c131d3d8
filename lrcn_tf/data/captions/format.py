"""COCO 2014 and Flickr30k captions: raw-format loaders, the prepared format, tf.data pipelines.

Raw formats read here:
- the Karpathy split files `dataset_coco.json` / `dataset_flickr30k.json`: `images[]` with
  `filename`, optional `filepath` (COCO: train2014 / val2014), `split` (train, val, test and,
  for COCO, restval), `sentences[].raw` and `.tokens`, and `cocoid` (COCO) or `imgid`;
- COCO's own `captions_*.json`: `images[].id/file_name`, `annotations[].image_id/caption`.
A file name that resolves outside the image folder (`..`, an absolute path, a symlink out) is
refused with the JSON file and entry named.

Prepared format (written by `lrcn_tf.data.captions.prepare`, see `python -m lrcn_tf.prepare`):
`info.json`, `vocabulary.txt` (`lrcn_tf.data.text.Vocabulary`), `{split}.json` (one entry per
image, TFRecord order: image_id, filename, raw captions, token ids), `references_{split}.json`
(COCO captions format) and TFRecord shards `{split}-NNNNN-of-NNNNN.tfrecord`, one Example per
image: `image/encoded` (JPEG), `image/id`, `caption/ids` (all captions' ids, concatenated) and
`caption/lengths`.

Pipelines: `train_pairs` yields one element per (image, caption) pair, as the original
sequence generator did (an image appears once per caption), with a random crop and mirror;
`eval_images` yields each image once, centre crop. Pixels: BGR minus the Caffe mean
(104, 117, 123), times `pixel_scale` (1 for CaffeNet; smaller for the small CNN trained from
scratch).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from lrcn_tf.data import text
from lrcn_tf.errors import UserError

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
KARPATHY_SPLITS = ("train", "val", "test", "restval")
# Images per split of Karpathy's split files (Flickr8k: the official 6000/1000/1000).
KARPATHY_SIZES = {
    "flickr8k": {"train": 6000, "val": 1000, "test": 1000},
    "coco2014": {"train": 82783, "val": 5000, "test": 5000, "restval": 30504},
}
CAFFE_MEAN_BGR = (104.0, 117.0, 123.0)  # the captioning prototxts' mean_value


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    """One image of a raw caption dataset."""

    image_id: int
    filename: str  # relative to the image folder, as the JSON names it
    path: Path  # resolved full path
    split: str
    captions: tuple[str, ...]
    tokens: tuple[tuple[str, ...], ...] | None = None  # Karpathy's own tokens, when given


@dataclasses.dataclass(frozen=True)
class PreparedImage:
    """One image of a prepared split (from `{split}.json`)."""

    image_id: int
    filename: str
    captions: list[str]
    token_ids: list[list[int]]


@dataclasses.dataclass(frozen=True)
class CaptionDatasetInfo:
    dataset: str
    vocab: text.Vocabulary
    image_size: int | None  # square side of stored images; None = kept as they came
    splits: dict[str, int]
    data_dir: Path


class CaptionDataError(UserError):
    """A malformed raw or prepared caption dataset; the message names the file and entry."""


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise CaptionDataError(f"{path}: cannot read: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise CaptionDataError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None


def split_size_note(dataset: str, records: list[ImageRecord]) -> str | None:
    """A note when a Karpathy file's split sizes are not the known ones for `dataset` (a
    different or edited file: the numbers are then not the usual benchmark's), else None."""
    want = KARPATHY_SIZES.get(dataset)
    if want is None:
        return None
    have: dict[str, int] = {}
    for r in records:
        have[r.split] = have.get(r.split, 0) + 1
    if {k: v for k, v in have.items() if v} == want:
        return None
    show = ", ".join(f"{k} {have.get(k, 0)}" for k in want)
    return f"split sizes {show}; Karpathy's {dataset} file has " + ", ".join(
        f"{k} {v}" for k, v in want.items()
    )


def safe_image_path(image_root: Path, relative: str, where: str) -> Path:
    """`image_root / relative`, refused if it resolves outside `image_root`."""
    if not isinstance(relative, str) or not relative:
        raise CaptionDataError(f"{where}: missing or empty file name")
    root = Path(image_root).resolve()
    path = (root / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(root):
        raise CaptionDataError(f"{where}: file name {relative!r} escapes the image folder {root}")
    return path


def _field(entry: dict, key: str, kind, where: str):
    if not isinstance(entry, dict) or key not in entry:
        raise CaptionDataError(f"{where}: missing {key!r}")
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CaptionDataError(f"{where}: {key!r} should be {getattr(kind, '__name__', kind)}")
    return value


def load_karpathy(json_path: str | Path, image_root: str | Path) -> list[ImageRecord]:
    """Reads a Karpathy split file (dataset_coco.json, dataset_flickr30k.json).

    Args:
      json_path: the JSON file.
      image_root: the folder that `filepath/filename` (COCO) or `filename` (Flickr30k) is in.

    Returns:
      One ImageRecord per image, in file order; `split` as written (restval included).

    Raises:
      CaptionDataError: unreadable or malformed JSON, an unknown split, a duplicate id, an
        image without captions, or a file name escaping `image_root`; named by entry.
    """
    json_path = Path(json_path)
    data = _read_json(json_path)
    images = _field(data, "images", list, str(json_path))
    out, seen = [], {}
    for i, entry in enumerate(images):
        where = f"{json_path}: images[{i}]"
        filename = _field(entry, "filename", str, where)
        rel = f"{entry['filepath']}/{filename}" if entry.get("filepath") else filename
        split = _field(entry, "split", str, where)
        if split not in KARPATHY_SPLITS:
            raise CaptionDataError(f"{where}: split {split!r} is not one of {KARPATHY_SPLITS}")
        sentences = _field(entry, "sentences", list, where)
        if not sentences:
            raise CaptionDataError(f"{where}: no sentences")
        raws = tuple(
            _field(s, "raw", str, f"{where}.sentences[{j}]") for j, s in enumerate(sentences)
        )
        tokens = None
        if all(isinstance(s.get("tokens"), list) for s in sentences):
            tokens = tuple(tuple(str(t) for t in s["tokens"]) for s in sentences)
        image_id = entry.get("cocoid", entry.get("imgid", i))
        if not isinstance(image_id, int):
            raise CaptionDataError(f"{where}: cocoid/imgid should be an integer")
        if image_id in seen:
            raise CaptionDataError(f"{where}: image id {image_id} repeats images[{seen[image_id]}]")
        seen[image_id] = i
        path = safe_image_path(Path(image_root), rel, where)
        out.append(ImageRecord(image_id, rel, path, split, raws, tokens))
    return out


def load_coco_captions(
    json_path: str | Path, image_root: str | Path, split: str = "train"
) -> list[ImageRecord]:
    """Reads COCO's own captions_*.json; every image gets `split`.

    Args:
      json_path: e.g. annotations/captions_train2014.json.
      image_root: the folder holding its `file_name`s (e.g. train2014/).
      split: the split to assign (train, val or test).

    Returns:
      One ImageRecord per image that has captions, in `images` order.
    """
    json_path = Path(json_path)
    data = _read_json(json_path)
    images = _field(data, "images", list, str(json_path))
    annotations = _field(data, "annotations", list, str(json_path))
    caps: dict[int, list[str]] = {}
    for j, ann in enumerate(annotations):
        where = f"{json_path}: annotations[{j}]"
        caps.setdefault(_field(ann, "image_id", int, where), []).append(
            _field(ann, "caption", str, where)
        )
    out, seen = [], set()
    for i, entry in enumerate(images):
        where = f"{json_path}: images[{i}]"
        image_id = _field(entry, "id", int, where)
        filename = _field(entry, "file_name", str, where)
        if image_id in seen:
            raise CaptionDataError(f"{where}: image id {image_id} appears twice")
        seen.add(image_id)
        if image_id not in caps:
            continue  # COCO lists a few images without captions in some files
        path = safe_image_path(Path(image_root), filename, where)
        out.append(ImageRecord(image_id, filename, path, split, tuple(caps[image_id])))
    missing = sorted(set(caps) - seen)
    if missing:
        raise CaptionDataError(
            f"{json_path}: annotations name image ids not in images: {missing[:5]}"
        )
    return out


# -- prepared folders -------------------------------------------------------------------------


def load_info(data_dir: str | Path) -> CaptionDatasetInfo:
    """The prepared folder's info.json and vocabulary (raises naming the folder if absent)."""
    data_dir = Path(data_dir)
    if not (data_dir / "info.json").exists():
        raise CaptionDataError(
            f"{data_dir}: no info.json; prepare it with `python -m lrcn_tf.prepare --dataset "
            "coco2014|flickr30k ... --out DIR`"
        )
    info = _read_json(data_dir / "info.json")
    if info.get("format_version") != FORMAT_VERSION or info.get("kind") != "captions":
        raise CaptionDataError(
            f"{data_dir}/info.json: not a caption dataset of format {FORMAT_VERSION}"
        )
    vocab = text.Vocabulary.load(data_dir / "vocabulary.txt")
    return CaptionDatasetInfo(
        info["dataset"], vocab, info.get("image_size"), info["splits"], data_dir
    )


def load_split(data_dir: str | Path, split: str) -> list[PreparedImage]:
    """The images of a prepared split, in TFRecord order, with raw captions and token ids."""
    path = Path(data_dir) / f"{split}.json"
    entries = _read_json(path)
    return [
        PreparedImage(int(e["image_id"]), e["filename"], list(e["captions"]), e["token_ids"])
        for e in entries
    ]


def references(data_dir: str | Path, split: str = "test") -> dict[int, list[str]]:
    """{image_id: raw reference captions} of a prepared split (for score_captions)."""
    return {p.image_id: p.captions for p in load_split(data_dir, split)}


def shard_files(data_dir: str | Path, split: str | Sequence[str]) -> list[str]:
    """The TFRecord shards of a split (or of several: ("train", "restval"))."""
    files = []
    for name in [split] if isinstance(split, str) else split:
        found = sorted(str(p) for p in Path(data_dir).glob(f"{name}-*-of-*.tfrecord"))
        if not found:
            raise CaptionDataError(f"{data_dir}: no {name}-*.tfrecord shards")
        files += found
    return files
