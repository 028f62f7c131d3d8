r"""Turns a raw dataset into the project's training format.

    python -m lrcn_tf.prepare --dataset ucf101 --src UCF-101 --splits ucfTrainTestlist --out DIR
    python -m lrcn_tf.prepare --dataset synthetic_ucf101 --out DIR
    python -m lrcn_tf.prepare --dataset coco2014 --karpathy_json dataset_coco.json \
        --images COCO_ROOT --out DIR             # COCO_ROOT holds train2014/ and val2014/
    python -m lrcn_tf.prepare --dataset tacos_multilevel --src tacos.jsonl --out DIR
    python -m lrcn_tf.prepare --dataset NAME --helpfull      # that dataset's own flags

The flags of each dataset family are defined here (the library under `lrcn_tf/data` takes plain
arguments); the family is picked from `--dataset` before the flags are parsed, so `--help`
shows the flags of the dataset named. The work itself is `lrcn_tf.data.<dataset>.prepare`
(real releases) and `lrcn_tf.data.embedded` (the generated stand-ins).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from absl import app, flags

from lrcn_tf import cli
from lrcn_tf.data import embedded, flow, folders, text, video
from lrcn_tf.data.captions import format as captions
from lrcn_tf.data.captions import prepare as captions_prepare
from lrcn_tf.data.tacos import prepare as tacos_prepare
from lrcn_tf.data.tacos import synthetic as synthetic_tacos
from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.data.ucf101 import prepare as ucf101_prepare
from lrcn_tf.data.ucf101 import synthetic as synthetic_ucf101

# -- UCF-101 -------------------------------------------------------------------------------------


def _ucf101_flags() -> None:
    """Flags of `python -m lrcn_tf.prepare --dataset ucf101|synthetic_ucf101`."""
    flags.DEFINE_string("src", None, "ucf101: the UCF-101 folder (<Class>/v_*.avi).")
    flags.DEFINE_string(
        "splits", None, "ucf101: the ucfTrainTestlist folder (classInd.txt, lists)."
    )
    flags.DEFINE_float(
        "fps", None, "Resample videos to this rate; default: each video's native rate."
    )
    flags.DEFINE_enum(
        "flow",
        "farneback",
        list(flow.FLOW_METHODS),
        "Optical flow method (original: Brox, GPU only).",
    )
    flags.DEFINE_integer("workers", os.cpu_count() or 1, "Worker processes.")
    flags.DEFINE_enum(
        "runner",
        "local",
        ["local", "beam"],
        "ucf101: local (a process pool) or beam (an Apache Beam pipeline: pip install "
        "'lrcn-tf[beam]'; docs/scaling.md).",
    )
    flags.DEFINE_string(
        "beam_options",
        None,
        "--runner beam: Beam pipeline options in one quoted string, e.g. "
        "'--runner=FlinkRunner --flink_master=HOST:8081'. Default: Beam's local runner with "
        "--workers processes.",
    )
    flags.DEFINE_integer(
        "videos_per_shard", 64, "Videos per TFRecord shard (shards never mix groups)."
    )
    flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality of stored frames and flow images.")
    flags.DEFINE_string(
        "min_size",
        None,
        "HxW: frames smaller than this are resized to it (original: 240x320); 'none' keeps sizes. "
        "Default: 240x320 for ucf101, none for synthetic_ucf101.",
    )
    flags.DEFINE_bool("allow_failures", False, "Exit 0 even if some videos failed.")
    flags.DEFINE_integer("num_classes", 12, "synthetic_ucf101: classes (even, 2-12).")
    flags.DEFINE_integer("num_groups", 25, "synthetic_ucf101: groups (gXX) per class.")
    flags.DEFINE_integer("synthetic_seed", 0, "synthetic_ucf101: generation seed.")


def _parse_size(text: str | None, default):
    if text is None:
        return default
    if text.lower() == "none":
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ucf101_prepare.PrepareError(
            f"--min_size {text!r}: use HxW, e.g. 240x320, or none"
        ) from None
    return h, w


def _ucf101_main(argv) -> int:
    """`--dataset ucf101|synthetic_ucf101`; returns the exit status (2: bad input)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        return run_ucf101(flags.FLAGS)
    except (ucf101_prepare.PrepareError, ucf101.UCF101FormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run_ucf101(f) -> int:
    """Does what the flags (any object with the flags' attributes) ask; returns the exit status."""
    common = dict(
        fps=f.fps,
        flow=f.flow,
        workers=f.workers,
        videos_per_shard=f.videos_per_shard,
        jpeg_quality=f.jpeg_quality,
        runner=getattr(f, "runner", "local"),  # flag objects from before --runner
        beam_options=getattr(f, "beam_options", None),
    )
    if f.dataset == "synthetic_ucf101":
        if f.src or f.splits:
            raise ucf101_prepare.PrepareError(
                "--src/--splits are for --dataset ucf101; synthetic_ucf101 makes its own"
            )
        spec = synthetic_ucf101.SyntheticSpec(
            num_classes=f.num_classes, num_groups=f.num_groups, seed=f.synthetic_seed
        )
        try:
            spec.validate()
        except ValueError as e:
            raise ucf101_prepare.PrepareError(f"synthetic_ucf101: {e}") from None
        summary = embedded.prepare_synthetic_ucf101(
            f.out, spec, min_size=_parse_size(f.min_size, None), **common
        )
    else:
        if not f.src or not f.splits:
            raise ucf101_prepare.PrepareError(
                "--dataset ucf101 needs --src (UCF-101 folder) and --splits (ucfTrainTestlist)"
            )
        summary = ucf101_prepare.prepare(
            f.src,
            f.splits,
            f.out,
            min_size=_parse_size(f.min_size, video.ORIGINAL_MIN_SIZE),
            **common,
        )
    print(summary["text"])
    return 1 if summary["failed"] and not f.allow_failures else 0


# -- captions (COCO 2014, Flickr30k) ------------------------------------------------------------


def _captions_flags() -> None:
    """Flags of `python -m lrcn_tf.prepare` for the caption datasets."""
    flags.DEFINE_string("karpathy_json", None, "Karpathy split file (dataset_coco.json, ...).")
    flags.DEFINE_string("images", None, "Image folder the JSON's file names are relative to.")
    flags.DEFINE_multi_string(
        "coco_captions", [], "SPLIT:CAPTIONS_JSON:IMAGE_SUBFOLDER (COCO's own files), repeatable."
    )
    flags.DEFINE_enum(
        "tokenizer", "original", ["original", "karpathy"], "Tokenisation of captions."
    )
    flags.DEFINE_integer("min_count", text.MIN_COUNT, "Least training count of a vocabulary word.")
    flags.DEFINE_integer(
        "image_size",
        None,
        "Square size images are stored at (0: as they are). "
        "Default: 256 for real data, 0 for synthetic.",
    )
    flags.DEFINE_enum(
        "restval",
        "keep",
        ["keep", "train", "val", "drop"],
        "Where Karpathy's restval goes "
        "(keep: a split of its own, outside the vocabulary and, in the paper preset, training).",
    )
    flags.DEFINE_integer("synthetic_seed", 0, "synthetic_*: generation seed.")
    flags.DEFINE_bool(
        "allow_failures", False, "Exit 0 even if some images failed (they are in manifest.csv)."
    )
    flags.DEFINE_string(
        "synthetic_sizes", "train=600,val=50,test=100", "synthetic_*: images per split."
    )


def _parse_sizes(spec: str) -> dict[str, int]:
    try:
        sizes = {k.strip(): int(v) for k, v in (p.split("=") for p in spec.split(",") if p.strip())}
    except ValueError:
        raise flags.ValidationError(
            f"--synthetic_sizes {spec!r}: use train=N,val=N,test=N"
        ) from None
    if set(sizes) - set(captions.SPLITS) or sizes.get("train", 0) <= 0 or sizes.get("test", 0) <= 0:
        raise flags.ValidationError(
            f"--synthetic_sizes {spec!r}: train and test must be > 0; splits {captions.SPLITS}"
        )
    return sizes


def _captions_main(argv) -> int:
    """`--dataset coco2014|flickr30k|flickr8k|synthetic_coco2014|synthetic_flickr30k`."""
    f = flags.FLAGS
    if len(argv) > 1:
        raise flags.Error(f"unexpected arguments: {argv[1:]}")
    if f.dataset in captions_prepare.SYNTHETIC:
        out = embedded.ensure_captions(
            f.out, f.dataset, sizes=_parse_sizes(f.synthetic_sizes), seed=f.synthetic_seed
        )
        print(f"{f.dataset} ready in {out}")
        return 0
    if not f.images:
        raise flags.ValidationError(f"--dataset {f.dataset} needs --images (the image folder)")
    if bool(f.karpathy_json) == bool(f.coco_captions):
        raise flags.ValidationError("give either --karpathy_json or --coco_captions")
    if f.dataset == "flickr8k" and not f.karpathy_json:
        raise flags.ValidationError(
            "--dataset flickr8k needs --karpathy_json dataset_flickr8k.json"
        )
    if f.karpathy_json:
        records = captions.load_karpathy(f.karpathy_json, f.images)
        source = {"karpathy_json": str(f.karpathy_json)}
        note = captions.split_size_note(f.dataset, records)
        if note:
            print(f"note: {f.karpathy_json}: {note}")
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
    captions_prepare.prepare(
        records,
        f.out,
        f.dataset,
        source,
        image_size=size or None,
        min_count=f.min_count,
        tokenizer=f.tokenizer,
        restval=f.restval,
    )
    print(captions_prepare.summary(f.out, f.dataset))
    return 1 if captions_prepare.failures(f.out) and not f.allow_failures else 0


# -- TACoS multilevel ---------------------------------------------------------------------------


def _tacos_flags() -> None:
    """Flags of `python -m lrcn_tf.prepare --dataset {tacos_multilevel,synthetic_tacos}`."""
    flags.DEFINE_string(
        "src", None, "tacos_multilevel: the JSON-lines file (docs/tacos_format.md)."
    )
    flags.DEFINE_integer("min_count", text.MIN_COUNT, "Keep words seen this often in training.")
    flags.DEFINE_integer("max_words", text.MAX_WORDS, "Truncate captions to this many words.")
    flags.DEFINE_list(
        "levels",
        ["detailed"],
        "tacos_multilevel: description levels kept (detailed, short, single_sentence).",
    )
    flags.DEFINE_integer("synthetic_seed", None, "synthetic_tacos: generator seed (default 2015).")


def _tacos_main(argv: list[str]) -> None:
    """Entry of `python -m lrcn_tf.prepare` for TACoS (the flags above plus --dataset, --out)."""
    del argv
    f = flags.FLAGS
    out = Path(f.out)
    if f.dataset == "synthetic_tacos":
        if f.src:
            raise app.UsageError("--src is for tacos_multilevel; synthetic_tacos is generated")
        seed = synthetic_tacos.DEFAULT_SEED if f.synthetic_seed is None else f.synthetic_seed
        folders.claim(out, f.dataset)  # before writing raw/ into it
        src = synthetic_tacos.generate(out / "raw" / "synthetic_tacos.jsonl", seed)
    else:
        if not f.src:
            raise app.UsageError("--dataset tacos_multilevel needs --src FILE.jsonl")
        src = Path(f.src)
    manifest = tacos_prepare.prepare(src, out, f.dataset, f.min_count, f.max_words, f.levels)
    print(f"prepared {f.dataset} into {out}: {json.dumps(manifest['counts'])}")
    if manifest["ignored_fields"]:
        print(f"note: {src}: unknown fields skipped (lines): {manifest['ignored_fields']}")
    for split, acc in manifest["map_accuracy"].items():
        print(f"  CRF MAP accuracy ({split}): " + ", ".join(f"{s} {a:.3f}" for s, a in acc.items()))


FAMILIES = {
    "ucf101": (_ucf101_flags, _ucf101_main),
    "captions": (_captions_flags, _captions_main),
    "tacos": (_tacos_flags, _tacos_main),
}
PREPARERS = folders.DATASET_KIND  # dataset -> its family above


def _dataset_from_argv(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith("--dataset="):
            return arg.split("=", 1)[1]
        if arg == "--dataset" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def main() -> None:
    dataset = _dataset_from_argv(sys.argv[1:])
    flags.DEFINE_enum("dataset", None, sorted(PREPARERS), "Which dataset to prepare.")
    flags.DEFINE_string("out", None, "Output folder.")
    flags.mark_flags_as_required(["dataset", "out"])
    if dataset in PREPARERS:
        define_flags, family_main = FAMILIES[PREPARERS[dataset]]
        define_flags()
        cli.run(family_main)  # a user error: one `error:` line, exit 2
    else:
        cli.run(lambda argv: None)  # the missing or unknown --dataset is named


if __name__ == "__main__":
    main()
