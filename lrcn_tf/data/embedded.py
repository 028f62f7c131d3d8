"""Makes sure an embedded (generated) dataset exists, prepared, in a folder: generate, then prepare.

The one place that knows both halves of each embedded dataset: the generators in
`data/<dataset>/synthetic.py` write the raw release format and never import a preparer; the
preparers in `data/<dataset>/prepare.py` read any release and never import a generator. Each
`ensure_*` here works in a side folder renamed into place when complete, so a killed call never
leaves a folder that looks finished, and returns at once when the folder is already there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from lrcn_tf.data import folders
from lrcn_tf.data.captions import format as captions
from lrcn_tf.data.captions import prepare as captions_prepare
from lrcn_tf.data.captions import synthetic as synthetic_captions
from lrcn_tf.data.tacos import format as tacos
from lrcn_tf.data.tacos import prepare as tacos_prepare
from lrcn_tf.data.tacos import synthetic as synthetic_tacos
from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.data.ucf101 import prepare as ucf101_prepare
from lrcn_tf.data.ucf101 import synthetic as synthetic_ucf101

# -- synthetic_ucf101 (Table 1) ---------------------------------------------------------------


def ensure_ucf101(
    out_dir: str | Path,
    *,
    num_classes: int = 12,
    num_groups: int = 25,
    clips_per_group: tuple[int, int] | int = (1, 2),
    seed: int = 0,
    flow: str = "farneback",
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Generates and prepares synthetic_ucf101 into `out_dir` unless it is already there.

    The work happens in `<out_dir>.partial` (resumed if a killed call left one) and is renamed
    to `out_dir` when complete, so `out_dir` never holds half a dataset.

    Returns:
      `out_dir`, a folder the pipelines of lrcn_tf.data.ucf101.pipeline read.

    Raises:
      ValueError: `out_dir` exists but holds another dataset or other parameters.
    """
    if isinstance(clips_per_group, int):
        clips_per_group = (clips_per_group, clips_per_group)
    spec = synthetic_ucf101.SyntheticSpec(
        num_classes=num_classes,
        num_groups=num_groups,
        clips_per_group=tuple(clips_per_group),
        seed=seed,
    )
    spec.validate()
    out_dir = Path(out_dir)
    wanted = json.loads(json.dumps(dataclasses.asdict(spec)))
    if out_dir.exists() and _older_format(out_dir):
        folders.adopt_cached(out_dir, "synthetic_ucf101")
        folders.remove_owned(out_dir, "synthetic_ucf101")  # ours, an older version: remake it
    if out_dir.exists():
        info = ucf101.load_info(out_dir)
        if info.synthetic != wanted or info.flow != flow:
            raise folders.DataFolderError(
                f"{out_dir} holds {info.dataset} made with {info.synthetic} (flow {info.flow}), not "
                f"{wanted} (flow {flow}); delete it or use another folder"
            )
        return out_dir
    partial = out_dir.with_name(out_dir.name + ".partial")
    folders.adopt_cached(partial, "synthetic_ucf101")
    kwargs = dict(flow=flow, workers=workers or os.cpu_count() or 1, progress=progress)
    try:
        summary = prepare_synthetic_ucf101(partial, spec, **kwargs)  # resumes a killed call's work
    except ValueError:  # a killed call with other parameters left it: ours to redo
        if folders.owner(partial) is None:
            raise  # not ours (the claim refused it): left as it is
        folders.remove_owned(partial, "synthetic_ucf101")
        summary = prepare_synthetic_ucf101(partial, spec, **kwargs)
    if summary["failed"]:  # generated videos never fail unless something is broken
        raise RuntimeError(f"synthetic_ucf101: {summary['text']}")
    os.replace(partial, out_dir)
    return out_dir


def _older_format(out_dir: Path) -> bool:
    try:
        d = json.loads((out_dir / ucf101.INFO_FILE).read_text())
    except (OSError, ValueError):
        return False
    return d.get("dataset") == "synthetic_ucf101" and d.get("format") != ucf101.FORMAT


def prepare_synthetic_ucf101(out, spec, **kwargs) -> dict:
    """Generates synthetic_ucf101 into `out`/raw (resumable), then prepares it into `out`."""
    ucf101_prepare.claim_folder(out, "synthetic_ucf101")  # before writing raw/ into it
    src, splits = synthetic_ucf101.generate(
        Path(out) / "raw", spec, progress=kwargs.get("progress", True)
    )
    kwargs.setdefault("min_size", None)  # keep the small frames: that is the point of the data
    return ucf101_prepare.prepare(
        src, splits, out, dataset="synthetic_ucf101", synthetic=spec, **kwargs
    )


# -- synthetic_coco2014 / synthetic_flickr30k (Tables 2-4) ------------------------------------


def ensure_captions(
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
    if dataset not in captions_prepare.SYNTHETIC:
        raise ValueError(f"{dataset!r} is not one of {captions_prepare.SYNTHETIC}")
    data_dir = Path(data_dir)
    sizes = dict(synthetic_captions.DEFAULT_SIZES if sizes is None else sizes)
    params = {
        "dataset": dataset,
        "sizes": sizes,
        "seed": seed,
        "image_size": image_size,
        "generator_version": 1,
    }
    info_path = data_dir / "info.json"
    if info_path.exists():
        have = json.loads(info_path.read_text()).get("source", {}).get("generated")
        if have != params:
            raise folders.DataFolderError(
                f"{data_dir} holds {dataset} made with {have}, not {params}; use another "
                "--data_dir or delete it"
            )
        return data_dir
    captions_prepare.check_replaceable(data_dir)
    work = data_dir.with_name(data_dir.name + ".generating")
    captions_prepare.remove_ours(work)
    folders.mark_owned(work, dataset)
    karpathy, image_root = synthetic_captions.write_dataset(
        work / "raw", dataset, sizes, image_size, seed
    )
    records = captions.load_karpathy(karpathy, image_root)
    captions_prepare.prepare(
        records, work / "prepared", dataset, {"generated": params}, image_size=None
    )
    os.replace(work / "raw", work / "prepared" / "raw")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if data_dir.exists():
        data_dir.rmdir()  # empty (checked above)
    os.replace(work / "prepared", data_dir)
    captions_prepare.remove_ours(work)
    return data_dir


# -- synthetic_tacos (Table 5) -------------------------------------------------------------------


def ensure_tacos(data_dir: str | Path, seed: int = synthetic_tacos.DEFAULT_SEED) -> Path:
    """Generates and prepares `synthetic_tacos` into `data_dir` unless it is already complete.

    Work happens in a sibling temp folder (marked as lrcn_tf's) that is renamed into place at
    the end, so a killed run never leaves a half dataset that a later run would accept. An
    existing `data_dir` is only ever replaced when lrcn_tf made it (lrcn_tf.data.folders).
    """
    data_dir = Path(data_dir)
    if (data_dir / tacos.MANIFEST).exists():
        return data_dir
    if data_dir.exists() and any(data_dir.iterdir()):
        folders.adopt_cached(data_dir, "synthetic_tacos")
        folders.remove_owned(data_dir, "synthetic_tacos")  # raises for anything not ours
    tmp = data_dir.with_name(f".{data_dir.name}.{os.getpid()}.tmp")
    folders.remove_owned(tmp)
    folders.mark_owned(tmp, "synthetic_tacos")
    try:
        raw = synthetic_tacos.generate(tmp / "raw" / "synthetic_tacos.jsonl", seed)
        tacos_prepare.prepare(raw, tmp, dataset="synthetic_tacos")
        try:
            os.replace(tmp, data_dir)  # onto an empty folder or none
        except OSError:
            if not (data_dir / tacos.MANIFEST).exists():
                raise
            # Another process finished the same (deterministic) dataset first: use theirs.
    finally:
        if folders.owner(tmp) is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return data_dir


# -- any embedded dataset ------------------------------------------------------------------------


def ensure(dataset: str, folder: str | Path) -> Path:
    """Generates and prepares the embedded `dataset` into `folder` unless it is there.

    `folder` is the cache's (`$LRCN_DATA_DIR/<dataset>`): the programs never generate into a
    `--data_dir` the user gave (that folder is only read).
    """
    if dataset == "synthetic_ucf101":
        return ensure_ucf101(folder)
    if dataset == "synthetic_tacos":
        return ensure_tacos(folder)
    if dataset in captions_prepare.SYNTHETIC:
        return ensure_captions(folder, dataset)
    raise folders.DataFolderError(f"{dataset} is not an embedded dataset; give --data_dir")
