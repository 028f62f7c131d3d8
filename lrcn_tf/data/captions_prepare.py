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
as the original) and stored as JPEGs. Karpathy's `restval` images join `train` (the usual
practice; `--restval val` or `drop` otherwise). The output is written into `DIR.partial` and
renamed to DIR when complete, so a killed run never leaves a folder that looks finished.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lrcn_tf.data import captions, folders, synthetic_captions, text
from lrcn_tf.runtime import write_text_atomic

IMAGES_PER_SHARD = 1000
SYNTHETIC = ("synthetic_coco2014", "synthetic_flickr30k")


def define_prepare_flags() -> None:
    """Flags of `python -m lrcn_tf.prepare` for the caption datasets."""
    from absl import flags

    flags.DEFINE_string("karpathy_json", None, "Karpathy split file (dataset_coco.json, ...).")
    flags.DEFINE_string("images", None, "Image folder the JSON's file names are relative to.")
    flags.DEFINE_multi_string(
        "coco_captions", [], "SPLIT:CAPTIONS_JSON:IMAGE_SUBFOLDER (COCO's own files), repeatable."
    )
    flags.DEFINE_enum(
        "tokenizer", "original", ["original", "karpathy"], "Tokenisation of captions."
    )
    flags.DEFINE_integer("min_count", text.MIN_COUNT, "Least training count of a vocabulary word.")
    flags.DEFINE_integer("image_size", None, "Square size images are stored at (0: as they are). "
                         "Default: 256 for real data, 0 for synthetic.")  # fmt: skip
    flags.DEFINE_enum(
        "restval", "train", ["train", "val", "drop"], "Where Karpathy's restval goes."
    )
    flags.DEFINE_integer("synthetic_seed", 0, "synthetic_*: generation seed.")
    flags.DEFINE_string(
        "synthetic_sizes", "train=600,val=50,test=100", "synthetic_*: images per split."
    )


def _parse_sizes(spec: str) -> dict[str, int]:
    try:
        sizes = {k.strip(): int(v) for k, v in (p.split("=") for p in spec.split(",") if p.strip())}
    except ValueError:
        raise ValueError(f"--synthetic_sizes {spec!r}: use train=N,val=N,test=N") from None
    if set(sizes) - set(captions.SPLITS) or sizes.get("train", 0) <= 0 or sizes.get("test", 0) <= 0:
        raise ValueError(
            f"--synthetic_sizes {spec!r}: train and test must be > 0; splits {captions.SPLITS}"
        )
    return sizes


def prepare_main(argv) -> int:
    """Entry point called by `lrcn_tf.prepare`."""
    from absl import flags

    f = flags.FLAGS
    if len(argv) > 1:
        raise flags.Error(f"unexpected arguments: {argv[1:]}")
    if f.dataset in SYNTHETIC:
        out = ensure_synthetic(
            f.out, f.dataset, sizes=_parse_sizes(f.synthetic_sizes), seed=f.synthetic_seed
        )
        print(f"{f.dataset} ready in {out}")
        return 0
    if not f.images:
        raise flags.ValidationError(f"--dataset {f.dataset} needs --images (the image folder)")
    if bool(f.karpathy_json) == bool(f.coco_captions):
        raise flags.ValidationError("give either --karpathy_json or --coco_captions")
    if f.karpathy_json:
        records = captions.load_karpathy(f.karpathy_json, f.images)
        source = {"karpathy_json": str(f.karpathy_json)}
    else:
        records = []
        for spec in f.coco_captions:
            parts = spec.split(":")
            if len(parts) != 3 or parts[0] not in captions.SPLITS:
                raise flags.ValidationError(
                    f"--coco_captions {spec!r}: use SPLIT:JSON:IMAGE_SUBFOLDER, SPLIT in {captions.SPLITS}"
                )
            root = captions.safe_image_path(Path(f.images), parts[2], f"--coco_captions {spec}")
            records += captions.load_coco_captions(parts[1], root, parts[0])
        source = {"coco_captions": list(f.coco_captions)}
    size = 256 if f.image_size is None else f.image_size
    prepare(records, f.out, f.dataset, source, image_size=size or None, min_count=f.min_count,
            tokenizer=f.tokenizer, restval=f.restval)  # fmt: skip
    print(f"{f.dataset} prepared in {f.out}")
    return 0


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
    restval: str = "train",
) -> Path:
    """Writes the prepared folder (see `lrcn_tf.data.captions`) atomically.

    Args:
      records: images from `captions.load_karpathy` or `load_coco_captions`.
      out_dir: the folder to create (written as `out_dir.partial`, then renamed).
      dataset: the dataset name stored in info.json.
      source: where the records came from (stored in info.json).
      image_size: squash images to this square size; None keeps them as they are.
      min_count: vocabulary threshold.
      tokenizer: "original" (lrcn_tf.data.text.tokenize) or "karpathy" (the JSON's tokens).
      restval: "train", "val" or "drop" for Karpathy's restval images.
    """
    import tensorflow as tf

    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    _remove_ours(partial)  # a killed run's; anything else there is refused, never deleted
    folders.mark_owned(partial, dataset)
    by_split: dict[str, list] = {s: [] for s in captions.SPLITS}
    for r in records:
        split = restval if r.split == "restval" else r.split
        if split != "drop":
            by_split[split].append((r, _tokens(r, tokenizer)))
    if not by_split["train"]:
        raise captions.CaptionDataError(f"{dataset}: no training images")
    vocab = text.Vocabulary.build((t for _, toks in by_split["train"] for t in toks), min_count)
    vocab.save(partial / "vocabulary.txt")
    counts = {}
    for split, items in by_split.items():
        counts[split] = len(items)
        if not items:
            continue
        shards = max(1, math.ceil(len(items) / IMAGES_PER_SHARD))
        entries, refs = [], {"images": [], "annotations": []}
        bar = tqdm(total=len(items), desc=f"{dataset} {split}", leave=False)
        for k in range(shards):
            name = partial / f"{split}-{k:05d}-of-{shards:05d}.tfrecord"
            with tf.io.TFRecordWriter(str(name)) as writer:
                for r, toks in items[k::shards]:
                    ids = [vocab.encode(t) for t in toks]
                    writer.write(_example(r, _image_bytes(r, image_size), ids))
                    entries.append({"image_id": r.image_id, "filename": r.filename,
                                    "captions": list(r.captions), "token_ids": ids})  # fmt: skip
                    refs["images"].append({"id": r.image_id, "file_name": r.filename})
                    refs["annotations"] += [
                        {"image_id": r.image_id, "id": len(refs["annotations"]) + j, "caption": c}
                        for j, c in enumerate(r.captions)
                    ]
                    bar.update()
        bar.close()
        (partial / f"{split}.json").write_text(json.dumps(entries))
        refs.update(
            type="captions", info={"description": f"{dataset} {split} references"}, licenses=[]
        )
        (partial / f"references_{split}.json").write_text(json.dumps(refs))
    info = {"kind": "captions", "format_version": captions.FORMAT_VERSION, "dataset": dataset,
            "image_size": image_size, "splits": counts, "vocab_size": len(vocab),
            "min_count": min_count, "max_words": text.MAX_WORDS, "tokenizer": tokenizer,
            "restval": restval, "source": source}  # fmt: skip
    write_text_atomic(partial / "info.json", json.dumps(info, indent=2) + "\n")
    if out_dir.exists() and any(out_dir.iterdir()):
        _remove_ours(out_dir)  # a caption folder lrcn_tf made (checked above)
    os.replace(partial, out_dir)
    return out_dir


def _remove_ours(folder: Path) -> None:
    try:
        folders.remove_owned(folder)
    except folders.DataFolderError as e:
        raise captions.CaptionDataError(str(e)) from None


def _check_replaceable(out_dir: Path) -> None:
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
        "image/filename": tf.train.Feature(bytes_list=tf.train.BytesList(value=[record.filename.encode()])),
        "caption/ids": tf.train.Feature(int64_list=tf.train.Int64List(value=[i for c in ids for i in c])),
        "caption/lengths": tf.train.Feature(int64_list=tf.train.Int64List(value=[len(c) for c in ids])),
    }  # fmt: skip
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def ensure_synthetic(
    data_dir: str | Path,
    dataset: str,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    image_size: int = 64,
) -> Path:
    """Generates (JPEGs + Karpathy JSON + COCO JSONs) and prepares an embedded dataset.

    Nothing happens if `data_dir` already holds it with the same generation parameters; a
    folder made with other parameters raises ValueError. The raw files stay in `data_dir/raw`.
    Generation and preparation happen in `data_dir.partial` and are renamed when complete.
    """
    if dataset not in SYNTHETIC:
        raise ValueError(f"{dataset!r} is not one of {SYNTHETIC}")
    data_dir = Path(data_dir)
    sizes = dict(synthetic_captions.DEFAULT_SIZES if sizes is None else sizes)
    params = {"dataset": dataset, "sizes": sizes, "seed": seed, "image_size": image_size,
              "generator_version": 1}  # fmt: skip
    info_path = data_dir / "info.json"
    if info_path.exists():
        have = json.loads(info_path.read_text()).get("source", {}).get("generated")
        if have != params:
            raise ValueError(
                f"{data_dir} holds {dataset} made with {have}, not {params}; use another "
                "--data_dir or delete it"
            )
        return data_dir
    _check_replaceable(data_dir)
    work = data_dir.with_name(data_dir.name + ".generating")
    _remove_ours(work)
    folders.mark_owned(work, dataset)
    karpathy, image_root = synthetic_captions.write_dataset(
        work / "raw", dataset, sizes, image_size, seed
    )
    records = captions.load_karpathy(karpathy, image_root)
    prepare(records, work / "prepared", dataset, {"generated": params}, image_size=None)
    os.replace(work / "raw", work / "prepared" / "raw")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if data_dir.exists():
        data_dir.rmdir()  # empty (checked above)
    os.replace(work / "prepared", data_dir)
    _remove_ours(work)
    return data_dir
