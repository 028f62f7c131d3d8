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
from pathlib import Path

from lrcn_tf.data import text
from lrcn_tf.errors import UserError

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
KARPATHY_SPLITS = ("train", "val", "test", "restval")
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


def shard_files(data_dir: str | Path, split: str) -> list[str]:
    files = sorted(str(p) for p in Path(data_dir).glob(f"{split}-*-of-*.tfrecord"))
    if not files:
        raise CaptionDataError(f"{data_dir}: no {split}-*.tfrecord shards")
    return files


def _parse(serialized):
    import tensorflow as tf

    ex = tf.io.parse_single_example(
        serialized,
        {
            "image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/id": tf.io.FixedLenFeature([], tf.int64),
            "caption/ids": tf.io.VarLenFeature(tf.int64),
            "caption/lengths": tf.io.VarLenFeature(tf.int64),
        },
    )
    ids = tf.sparse.to_dense(ex["caption/ids"])
    lengths = tf.sparse.to_dense(ex["caption/lengths"])
    return ex["image/encoded"], ex["image/id"], tf.RaggedTensor.from_row_lengths(ids, lengths)


def time_steps_tf(ids, max_words: int = text.MAX_WORDS):
    """`lrcn_tf.data.text.time_steps` in TensorFlow: (input, target), each (max_words,) int32."""
    import tensorflow as tf

    ids = tf.cast(ids[:max_words], tf.int32)
    n = tf.shape(ids)[0]
    inp = tf.concat([[text.EOS], ids[: max_words - 1]], 0)
    inp = tf.pad(inp, [[0, max_words - tf.shape(inp)[0]]], constant_values=text.EOS)
    tgt = tf.concat([ids, tf.fill([tf.minimum(1, max_words - n)], text.EOS)], 0)
    tgt = tf.pad(tgt, [[0, max_words - tf.shape(tgt)[0]]], constant_values=text.IGNORE)
    return tf.ensure_shape(inp, [max_words]), tf.ensure_shape(tgt, [max_words])


def preprocess_image(
    jpeg,
    crop_size: int,
    train: bool,
    resize: int | None = None,
    pixel_scale: float = 1.0,
    mirror: bool = True,
    seed=None,
):
    """JPEG bytes -> float32 (crop_size, crop_size, 3); see `preprocess_array`."""
    import tensorflow as tf

    img = tf.io.decode_jpeg(jpeg, channels=3)
    return preprocess_array(img, crop_size, train, resize, pixel_scale, mirror, seed)


def preprocess_array(
    img,
    crop_size: int,
    train: bool,
    resize: int | None = None,
    pixel_scale: float = 1.0,
    mirror: bool = True,
    seed=None,
):
    """RGB uint8 image -> float32 (crop_size, crop_size, 3), BGR minus the Caffe mean, x scale.

    Training: a random crop and (if `mirror`) a random horizontal flip, as the original;
    evaluation: the centre crop. `resize` first squashes the image to resize x resize (the
    original's 256), if given. `seed` (int64 (2,)) makes the random ops stateless, which a
    checkpointed tf.data iterator needs.
    """
    import tensorflow as tf

    img = tf.cast(img, tf.float32)
    if resize:
        img = tf.image.resize(img, [resize, resize], antialias=True)
    if train:
        if seed is None:
            img = tf.image.random_crop(img, [crop_size, crop_size, 3])
            img = tf.image.random_flip_left_right(img) if mirror else img
        else:
            img = tf.image.stateless_random_crop(img, [crop_size, crop_size, 3], seed)
            if mirror:
                img = tf.image.stateless_random_flip_left_right(img, seed + [0, 1])
    else:
        h, w = tf.shape(img)[0], tf.shape(img)[1]
        top, left = (h - crop_size) // 2, (w - crop_size) // 2
        img = img[top : top + crop_size, left : left + crop_size]
    img = img[..., ::-1] - tf.constant(CAFFE_MEAN_BGR, tf.float32)
    return tf.ensure_shape(img * pixel_scale, [crop_size, crop_size, 3])


def train_pairs(
    data_dir: str | Path,
    batch_size: int,
    crop_size: int,
    *,
    split: str = "train",
    resize: int | None = None,
    pixel_scale: float = 1.0,
    mirror: bool = True,
    max_words: int = text.MAX_WORDS,
    seed: int = 1701,
    shuffle_buffer: int = 4096,
    cache: bool = False,
    repeat: bool = True,
):
    """(image, caption) pairs: ({"image": (B,S,S,3), "words": (B,T)}, targets (B,T)).

    Args:
      data_dir: a prepared folder.
      batch_size: pairs per batch (100 in the original); incomplete last batches are dropped.
      crop_size: square crop (227 for CaffeNet).
      split: which split to read.
      resize: squash images to this size first (None: as stored).
      pixel_scale: multiplies the mean-subtracted pixels.
      mirror: random horizontal flips (the original's augmentation).
      max_words: time steps T (20).
      seed: shuffling and augmentation seed.
      shuffle_buffer: pairs in the shuffle buffer.
      cache: keep the encoded images in memory (small datasets).
      repeat: repeat forever (the trainer counts steps).
    """
    import tensorflow as tf

    files = shard_files(data_dir, split)
    ds = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)))
    ds = ds.map(_parse, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if repeat:
        ds = ds.repeat()

    def pairs(jpeg, image_id, caps):
        n = caps.nrows()
        return tf.data.Dataset.zip(
            tf.data.Dataset.from_tensors(jpeg).repeat(n), tf.data.Dataset.from_tensor_slices(caps)
        )

    ds = ds.flat_map(pairs).shuffle(shuffle_buffer, seed=seed)
    # One stateless seed per pair: random crops and flips without stateful ops, so the trainer
    # can checkpoint the iterator and a resumed run sees the same batches.
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=seed).batch(2))

    def make(pair, op_seed):
        jpeg, ids = pair
        image = preprocess_image(jpeg, crop_size, True, resize, pixel_scale, mirror, op_seed)
        inp, tgt = time_steps_tf(ids, max_words)
        return {"image": image, "words": inp}, tgt

    ds = ds.map(make, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_images(
    data_dir: str | Path,
    split: str,
    batch_size: int,
    crop_size: int,
    *,
    resize: int | None = None,
    pixel_scale: float = 1.0,
):
    """Each image of `split` once, in TFRecord order: (images (B,S,S,3), image ids (B,))."""
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(shard_files(data_dir, split)).map(
        _parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    ds = ds.map(
        lambda jpeg, image_id, caps: (
            preprocess_image(jpeg, crop_size, False, resize, pixel_scale),
            image_id,
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def read_jpegs(data_dir: str | Path, split: str) -> dict[int, bytes]:
    """{image_id: JPEG bytes} of a split (for sample pages)."""
    import tensorflow as tf

    out = {}
    for jpeg, image_id, _ in tf.data.TFRecordDataset(shard_files(data_dir, split)).map(_parse):
        out[int(image_id)] = bytes(jpeg.numpy())
    return out
