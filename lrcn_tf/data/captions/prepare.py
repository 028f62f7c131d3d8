r"""`python -m lrcn_tf.prepare --dataset {coco2014,flickr30k,synthetic_*}`: captions -> TFRecords.

    python -m lrcn_tf.prepare --dataset coco2014 --karpathy_json dataset_coco.json \
        --images COCO_ROOT --out DIR             # COCO_ROOT holds train2014/ and val2014/
    python -m lrcn_tf.prepare --dataset flickr30k --karpathy_json dataset_flickr30k.json \
        --images flickr30k-images --out DIR
    python -m lrcn_tf.prepare --dataset coco2014 --images COCO_ROOT --out DIR \
        --coco_captions train:annotations/captions_train2014.json:train2014 \
        --coco_captions test:annotations/captions_val2014.json:val2014   # COCO's own files
    python -m lrcn_tf.prepare --dataset synthetic_coco2014 --out DIR   # generate, then prepare

Captions are tokenised with the original rule (`lrcn_tf.data.text`; `--tokenizer karpathy`
uses the split file's own tokens instead), the vocabulary is built from the training captions
(count >= `--min_count`, 5 in the original) and images are squashed to `--image_size` (256,
as the original) and stored as JPEGs. Karpathy's `restval` images (COCO val2014 images
outside val and test) are kept as a split of their own, `restval`, outside the vocabulary
(the original trained on train2014 only; a config's `train_restval` adds them to training);
`--restval train` merges them into `train` instead (the later convention), `val` or `drop`. The output is written into `DIR.partial` and
renamed to DIR when complete, so a killed run never leaves a folder that looks finished.
An image that cannot be read (missing, not an image) is left out and recorded in DIR/manifest.csv
with its reason, as UCF-101's videos are; the rest finish, and `info.json` counts the failed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lrcn_tf.data import folders, text
from lrcn_tf.data.captions import format as captions
from lrcn_tf.runtime import write_text_atomic

IMAGES_PER_SHARD = 1000
MANIFEST = "manifest.csv"  # every listed image: image_id, split, filename, status ("ok" or why not)
MANIFEST_COLUMNS = ("image_id", "split", "filename", "status")
SYNTHETIC = ("synthetic_coco2014", "synthetic_flickr30k")


def _tokens(record: captions.ImageRecord, tokenizer: str) -> list[list[str]]:
    if tokenizer == "original":
        return [text.tokenize(c) for c in record.captions]
    if record.tokens is None:
        raise captions.CaptionDataError(
            f"--tokenizer karpathy: image {record.filename} has no 'tokens' (COCO files have none)"
        )
    return [list(t) for t in record.tokens]


def _image_bytes(record: captions.ImageRecord, image_size: int | None) -> bytes:
    import cv2

    data = record.path.read_bytes() if record.path.exists() else None
    if data is None:
        raise captions.CaptionDataError(f"{record.path}: image file missing ({record.filename})")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise captions.CaptionDataError(f"{record.path}: not a readable image")
    if image_size and img.shape[:2] != (image_size, image_size):
        # The original squashed every image to 256x256 (aspect ratio not kept).
        img = cv2.resize(img, (image_size, image_size), interpolation=cv2.INTER_AREA)
    elif data[:2] == b"\xff\xd8":
        return data  # already a JPEG of the right size: stored as it is
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise captions.CaptionDataError(f"{record.path}: could not re-encode")
    return enc.tobytes()


def prepare(
    records: list[captions.ImageRecord],
    out_dir: str | Path,
    dataset: str,
    source: dict,
    image_size: int | None = 256,
    min_count: int = text.MIN_COUNT,
    tokenizer: str = "original",
    restval: str = "keep",
) -> Path:
    """Writes the prepared folder (see `lrcn_tf.data.captions.format`) atomically.

    Args:
      records: images from `captions.load_karpathy` or `load_coco_captions`.
      out_dir: the folder to create (written as `out_dir.partial`, then renamed).
      dataset: the dataset name stored in info.json.
      source: where the records came from (stored in info.json).
      image_size: squash images to this square size; None keeps them as they are.
      min_count: vocabulary threshold.
      tokenizer: "original" (lrcn_tf.data.text.tokenize) or "karpathy" (the JSON's tokens).
      restval: "keep" (a split of its own, outside the vocabulary), "train", "val" or "drop"
        for Karpathy's restval images.
    """
    import tensorflow as tf

    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    remove_ours(partial)  # a killed run's; anything else there is refused, never deleted
    folders.mark_owned(partial, dataset)
    by_split: dict[str, list] = {s: [] for s in captions.SPLITS}
    for r in records:
        split = r.split if restval == "keep" or r.split != "restval" else restval
        if split != "drop":  # "restval" (kept) only when there are such images
            by_split.setdefault(split, []).append((r, _tokens(r, tokenizer)))
    if not by_split["train"]:
        raise captions.CaptionDataError(f"{dataset}: no training images")
    vocab = text.Vocabulary.build((t for _, toks in by_split["train"] for t in toks), min_count)
    vocab.save(partial / "vocabulary.txt")
    counts, manifest = {}, []
    for split, items in by_split.items():
        counts[split] = 0
        if not items:
            continue
        shards = max(1, math.ceil(len(items) / IMAGES_PER_SHARD))
        entries, refs = [], {"images": [], "annotations": []}
        bar = tqdm(total=len(items), desc=f"{dataset} {split}", leave=False)
        for k in range(shards):
            name = partial / f"{split}-{k:05d}-of-{shards:05d}.tfrecord"
            with tf.io.TFRecordWriter(str(name)) as writer:
                for r, toks in items[k::shards]:
                    bar.update()
                    try:
                        jpeg = _image_bytes(r, image_size)
                    except captions.CaptionDataError as e:  # recorded; the others go on
                        manifest.append((r.image_id, split, r.filename, _reason(e, r)))
                        continue
                    manifest.append((r.image_id, split, r.filename, "ok"))
                    counts[split] += 1
                    ids = [vocab.encode(t) for t in toks]
                    writer.write(_example(r, jpeg, ids))
                    entries.append(
                        {
                            "image_id": r.image_id,
                            "filename": r.filename,
                            "captions": list(r.captions),
                            "token_ids": ids,
                        }
                    )
                    refs["images"].append({"id": r.image_id, "file_name": r.filename})
                    refs["annotations"] += [
                        {"image_id": r.image_id, "id": len(refs["annotations"]) + j, "caption": c}
                        for j, c in enumerate(r.captions)
                    ]
        bar.close()
        (partial / f"{split}.json").write_text(json.dumps(entries))
        refs.update(
            type="captions", info={"description": f"{dataset} {split} references"}, licenses=[]
        )
        (partial / f"references_{split}.json").write_text(json.dumps(refs))
    if not counts["train"]:
        raise captions.CaptionDataError(
            f"{dataset}: every training image failed, e.g. {manifest[0][2]}: {manifest[0][3]}"
        )
    _write_manifest(partial / MANIFEST, manifest)
    failed = sum(m[3] != "ok" for m in manifest)
    info = {
        "kind": "captions",
        "format_version": captions.FORMAT_VERSION,
        "dataset": dataset,
        "image_size": image_size,
        "splits": counts,
        "failed": failed,
        "vocab_size": len(vocab),
        "min_count": min_count,
        "max_words": text.MAX_WORDS,
        "tokenizer": tokenizer,
        "restval": restval,
        "source": source,
    }
    write_text_atomic(partial / "info.json", json.dumps(info, indent=2) + "\n")
    if out_dir.exists() and any(out_dir.iterdir()):
        remove_ours(out_dir)  # a caption folder lrcn_tf made (checked above)
    os.replace(partial, out_dir)
    return out_dir


def _reason(e: Exception, record: captions.ImageRecord) -> str:
    """The short reason of a failed image (the message without its path)."""
    why = str(e).replace(f"{record.path}: ", "").replace(f" ({record.filename})", "")
    return " ".join(why.split())[:160]


def _write_manifest(path: Path, rows: list[tuple]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def failures(out_dir: str | Path) -> dict[str, str]:
    """{filename: reason} of the images a prepared folder's manifest.csv records as failed."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {r["filename"]: r["status"] for r in csv.DictReader(f) if r["status"] != "ok"}


def summary(out_dir: str | Path, dataset: str) -> str:
    """What a prepare did: images ok, failed, and the first reasons."""
    info = json.loads((Path(out_dir) / "info.json").read_text())
    failed = failures(out_dir)
    ok = sum(info["splits"].values())
    lines = [f"{dataset} prepared in {out_dir}: {ok} images ok, {len(failed)} failed"]
    lines += [f"  {name}: {why}" for name, why in sorted(failed.items())[:20]]
    if len(failed) > 20:
        lines.append(f"  ... {len(failed) - 20} more in {Path(out_dir) / MANIFEST}")
    return "\n".join(lines)


def remove_ours(folder: Path) -> None:
    """Deletes `folder` if lrcn_tf made it (owner marker); else a CaptionDataError."""
    try:
        folders.remove_owned(folder)
    except folders.DataFolderError as e:
        raise captions.CaptionDataError(str(e)) from None


def check_replaceable(out_dir: Path) -> None:
    """Refuses to replace a non-empty folder unless lrcn_tf made it as a caption dataset."""
    if out_dir.exists() and not out_dir.is_dir():
        raise captions.CaptionDataError(f"--out {out_dir}: is a file, not a folder")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    d = folders.describe(out_dir)
    if d is None or d["kind"] != "captions" or folders.owner(out_dir) is None:
        raise captions.CaptionDataError(
            f"--out {out_dir} exists and is not a caption dataset lrcn_tf prepared (no owner "
            "marker); refusing to replace it: choose a new or empty folder"
        )


def _example(record: captions.ImageRecord, jpeg: bytes, ids: list[list[int]]) -> bytes:
    import tensorflow as tf

    feats = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg])),
        "image/id": tf.train.Feature(int64_list=tf.train.Int64List(value=[record.image_id])),
        "image/filename": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[record.filename.encode()])
        ),
        "caption/ids": tf.train.Feature(
            int64_list=tf.train.Int64List(value=[i for c in ids for i in c])
        ),
        "caption/lengths": tf.train.Feature(
            int64_list=tf.train.Int64List(value=[len(c) for c in ids])
        ),
    }
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()
