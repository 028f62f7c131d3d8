"""Prepared folders: what a folder holds, whether lrcn_tf made it, and safe clean-up.

Every prepared folder records its dataset name and format version in the file its loader
reads first (`describe`): `dataset.json` (UCF-101), `info.json` (captions), `manifest.json`
(TACoS). `check_prepared` compares that record with what a program was asked for, so a
synthetic folder can never produce rows labelled with a real dataset, and a TACoS folder handed
to Table 1 is named as such.

A folder lrcn_tf creates for its own work (a generated dataset in the cache, a `.partial`
folder) carries the marker file `OWNER_FILE`, naming the owner and the dataset. Clean-up
(`remove_owned`) deletes a folder only when it carries that marker, so no flag or path can make
the project delete data it did not write.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from lrcn_tf.errors import UserError

OWNER_FILE = ".lrcn_tf_owner.json"
OWNER = "lrcn_tf"

# kind -> (descriptor file, the prepare command that makes such a folder)
KINDS = {
    "ucf101": "dataset.json",
    "captions": "info.json",
    "tacos": "manifest.json",
}
DATASET_KIND = {
    "ucf101": "ucf101",
    "synthetic_ucf101": "ucf101",
    "coco2014": "captions",
    "flickr30k": "captions",
    "flickr8k": "captions",
    "synthetic_coco2014": "captions",
    "synthetic_flickr30k": "captions",
    "tacos_multilevel": "tacos",
    "synthetic_tacos": "tacos",
}


class DataFolderError(UserError):
    """A folder that is not what was asked for, or that lrcn_tf may not delete (one line)."""


def mark_owned(folder: str | Path, dataset: str) -> Path:
    """Creates `folder` if needed and marks it as made by lrcn_tf for `dataset`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / OWNER_FILE
    if not marker.exists():
        tmp = folder / f".{OWNER_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"owner": OWNER, "dataset": dataset}) + "\n")
        os.replace(tmp, marker)
    return folder


def owner(folder: str | Path) -> dict | None:
    """The marker of a folder lrcn_tf made ({"owner", "dataset"}), or None."""
    try:
        d = json.loads((Path(folder) / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) and d.get("owner") == OWNER else None


def remove_owned(folder: str | Path, dataset: str | None = None) -> None:
    """Deletes `folder` if lrcn_tf made it (for `dataset`, when given); absent is fine.

    Raises:
      DataFolderError: the folder exists without the marker (or marked for another dataset):
        it is left as it is.
    """
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return
    mark = owner(folder) if folder.is_dir() and not folder.is_symlink() else None
    if mark is None or (dataset is not None and mark.get("dataset") != dataset):
        raise DataFolderError(
            f"{folder}: exists and was not made by lrcn_tf"
            + (f" for {dataset}" if dataset else "")
            + " (no owner marker); refusing to delete it: move it away or choose another folder"
        )
    shutil.rmtree(folder)


def describe(folder: str | Path) -> dict | None:
    """What a prepared folder says it holds: {"kind", "dataset", "version", "file"}, or None.

    `version` is the format recorded by the folder's own writer (UCF-101's `format` string,
    the captions' and TACoS' `format_version`).
    """
    folder = Path(folder)
    for kind, name in KINDS.items():
        path = folder / name
        if not path.is_file():
            continue
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(d, dict):
            continue
        if kind == "ucf101" and "format" in d:
            return {"kind": kind, "dataset": d.get("dataset"), "version": d["format"], "file": path}
        if kind == "captions" and d.get("kind") == "captions":
            version = d.get("format_version")
            return {"kind": kind, "dataset": d.get("dataset"), "version": version, "file": path}
        if kind == "tacos" and "slot_sizes" in d:
            version = d.get("format_version")
            return {"kind": kind, "dataset": d.get("dataset"), "version": version, "file": path}
    return None


def prepare_command(dataset: str, folder: str | Path) -> str:
    return f"python -m lrcn_tf.prepare --dataset {dataset} ... --out {folder}"


def check_prepared(folder: str | Path, dataset: str, table: str = "", flag: str = "--data_dir"):
    """Checks that `folder` is a finished prepared folder of `dataset`.

    Args:
      folder: the folder.
      dataset: the dataset asked for (--dataset).
      table: who asks (e.g. "table1"), named in the message.
      flag: the flag the folder came from, named in the message.

    Returns:
      `describe(folder)`.

    Raises:
      DataFolderError: one line naming the folder, what it holds and what was expected.
    """
    folder = Path(folder)
    want_kind = DATASET_KIND.get(dataset)
    for_whom = f" for {table}" if table else ""
    where = f"{flag} {folder}" if flag else str(folder)
    if not folder.is_dir():
        raise DataFolderError(f"{where}: no such folder; {prepare_command(dataset, folder)}")
    d = describe(folder)
    if d is None:
        begun = _begun(folder)
        if begun:
            raise DataFolderError(
                f"{where}: an unfinished `lrcn_tf.prepare --dataset {begun}` output; rerun the "
                "same prepare command to finish it"
            )
        raise DataFolderError(
            f"{where}: not a prepared folder (no {', '.join(KINDS.values())}); expected "
            f"{dataset}{for_whom}: {prepare_command(dataset, folder)}"
        )
    if d["kind"] != want_kind or d["dataset"] != dataset:
        raise DataFolderError(
            f"{where} holds {d['dataset']} ({d['kind']} format {d['version']}, {d['file'].name}), "
            f"expected {dataset}{for_whom}"
        )
    return d


def _begun(folder: Path) -> str | None:
    """The dataset of an unfinished UCF-101 prepare (prepare.json written, dataset.json not)."""
    try:
        d = json.loads((folder / "prepare.json").read_text())
    except (OSError, ValueError):
        return None
    return d.get("dataset") if isinstance(d, dict) else None


def claim(folder: str | Path, dataset: str, flag: str = "--out") -> Path:
    """Makes `folder` lrcn_tf's output folder for `dataset`, or checks that it already is.

    A new or empty folder gets the owner marker; a folder marked for `dataset`, or an older
    output of the same dataset (its descriptor or begun prepare says so), is accepted as it is
    (resumed or replaced by its writer). Anything else is refused, so a prepare never writes
    into a folder of someone else's files.

    Raises:
      DataFolderError: a file, a folder marked for another dataset, or a non-empty folder
        lrcn_tf did not make.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataFolderError(f"{flag} {folder}: is a file, not a folder")
    if not folder.exists() or not any(folder.iterdir()):
        return mark_owned(folder, dataset)
    mark = owner(folder)
    if mark is not None:
        if mark.get("dataset") != dataset:
            raise DataFolderError(
                f"{flag} {folder}: made by lrcn_tf for {mark.get('dataset')}, not {dataset}; "
                "choose another folder"
            )
        return folder
    d = describe(folder)
    if (d is not None and d["dataset"] == dataset) or _begun(folder) == dataset:
        return folder
    raise DataFolderError(
        f"{flag} {folder}: not empty and not an lrcn_tf {dataset} folder; refusing to write "
        "into it (choose a new or empty folder)"
    )


def adopt_cached(folder: str | Path, dataset: str) -> None:
    """Marks a cache folder an older lrcn_tf made (no marker yet) as ours, so it can be remade.

    Only a folder directly in the cache ($LRCN_DATA_DIR) whose own files say it holds
    `dataset` is adopted; anything else keeps having no marker (and so is never deleted).
    """
    from lrcn_tf import runtime

    folder = Path(folder)
    if not folder.is_dir() or owner(folder) is not None:
        return
    if folder.resolve().parent != runtime.data_dir().resolve():
        return
    d = describe(folder)
    if (d is not None and d["dataset"] == dataset) or _begun(folder) == dataset:
        mark_owned(folder, dataset)
