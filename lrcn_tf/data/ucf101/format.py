"""UCF-101 release format: classInd.txt, the split lists, labels, the prepared folder's files.

The official release (Soomro et al. 2012) ships `ucfTrainTestlist/` with
- `classInd.txt`: `1 ApplyEyeMakeup` ... `101 YoYo`, 1-based, sorted case-insensitively
  (so `Hammering` precedes `HammerThrow`: sorting folder names would swap them);
- `trainlist0N.txt`: `Class/v_Class_gXX_cYY.avi <1-based label>`;
- `testlist0N.txt`: `Class/v_Class_gXX_cYY.avi`;
all with CRLF line ends. Class `HandstandPushups` stores its files as `v_HandStandPushups_...`,
so the class of a line is taken from its folder part, matched case-insensitively.

A folder written by `python -m lrcn_tf.prepare --dataset ucf101` holds `classes.txt`,
`manifest.csv` (SPEC.md), `dataset.json` (what the pipelines read) and `shards/`
(`shards/{rgb,flow}/NAME.tfrecord`, see ucf101_shards.py).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path

from lrcn_tf.errors import UserError
from lrcn_tf.runtime import write_text_atomic

SPLITS = (1, 2, 3)
MANIFEST_COLUMNS = ("video", "label", "class_name", "num_frames", "status")
INFO_FILE = "dataset.json"
FORMAT = "lrcn_tf.ucf101/2"  # 2: one shard file per modality
_GROUP = re.compile(r"_g(\d+)_c(\d+)\.[^./]+$", re.IGNORECASE)


class UCF101FormatError(UserError):
    """A malformed release or prepared file; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    name: str  # as written in the split lists: Class/v_Class_gXX_cYY.avi
    label: int  # 0-based, classInd order
    num_frames: int = 0


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What `dataset.json` of a prepared folder says (see `load_info`)."""

    dataset: str
    classes: tuple[str, ...]
    frame_size: tuple[int, int] | None  # (H, W) when every video has it, else None
    crop_size: int
    flow: str
    fps: float | None
    shards: dict[str, tuple[str, ...]]  # shard name -> video names in it (see shard_file)
    splits: dict[int, dict[str, tuple[str, ...]]]  # split -> {"train"|"test": video names}
    videos: dict[str, VideoInfo]  # the videos prepared with status ok
    synthetic: dict | None

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise UCF101FormatError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise UCF101FormatError(f"{path}: not UTF-8 text ({e})") from None
    # CRLF (release) and LF (edited copies) both accepted; blank lines skipped.
    return [(i, s.strip()) for i, s in enumerate(text.splitlines(), 1) if s.strip()]


def read_class_ind(path: str | Path) -> list[str]:
    """Reads classInd.txt; returns class names, index = 0-based label.

    Raises:
      UCF101FormatError: a line that is not `<n> <Name>`, labels not 1..K in order, or a
        class named twice (case-insensitively).
    """
    path = Path(path)
    names: list[str] = []
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise UCF101FormatError(
                f"{path}:{lineno}: expected '<label> <ClassName>', got {line!r}"
            )
        if int(parts[0]) != len(names) + 1:
            raise UCF101FormatError(
                f"{path}:{lineno}: label {parts[0]} out of order (expected {len(names) + 1})"
            )
        if parts[1].lower() in (n.lower() for n in names):
            raise UCF101FormatError(f"{path}:{lineno}: class {parts[1]!r} listed twice")
        names.append(parts[1])
    if not names:
        raise UCF101FormatError(f"{path}: no classes")
    return names


def video_group(name: str) -> str:
    """The group of a release file name (`gXX`), or `other` for names outside the pattern."""
    m = _GROUP.search(name)
    return f"g{int(m.group(1)):02d}" if m else "other"


def read_split_list(path: str | Path, classes: list[str]) -> list[VideoInfo]:
    """Reads a trainlist0N.txt or testlist0N.txt.

    The label of a line is the classInd index of its folder (case-insensitive). A label
    given on the line (trainlists) must agree with it.

    Raises:
      UCF101FormatError: a path without `Class/` folder, an unknown class, a label that
        disagrees with classInd.txt, or a video listed twice.
    """
    path = Path(path)
    index = {c.lower(): i for i, c in enumerate(classes)}
    out: list[VideoInfo] = []
    seen: set[str] = set()
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) not in (1, 2) or "/" not in parts[0]:
            raise UCF101FormatError(
                f"{path}:{lineno}: expected 'Class/v_Class_gXX_cYY.avi [label]', got {line!r}"
            )
        name = parts[0]
        folder = name.split("/", 1)[0]
        if folder.lower() not in index:
            raise UCF101FormatError(f"{path}:{lineno}: class {folder!r} is not in classInd.txt")
        label = index[folder.lower()]
        if len(parts) == 2:
            if not parts[1].isdigit() or int(parts[1]) - 1 != label:
                raise UCF101FormatError(
                    f"{path}:{lineno}: label {parts[1]} disagrees with classInd.txt "
                    f"({classes[label]} is {label + 1})"
                )
        if name in seen:
            raise UCF101FormatError(f"{path}:{lineno}: {name} listed twice")
        seen.add(name)
        out.append(VideoInfo(name, label))
    return out


def read_splits(
    splits_dir: str | Path, allow_empty: bool = False
) -> tuple[list[str], dict[int, dict[str, list[VideoInfo]]]]:
    """Reads classInd.txt and every train/test list present in `splits_dir`.

    Returns:
      (classes, splits) with splits[n] = {"train": [...], "test": [...]} for each split n
      that has both lists.

    Raises:
      UCF101FormatError: missing classInd.txt, a split with only one of its two lists, no
        split at all, a malformed line (see read_split_list), an empty list (unless
        `allow_empty`: tiny generated datasets) or a video in both lists of one split.
    """
    splits_dir = Path(splits_dir)
    class_ind = splits_dir / "classInd.txt"
    if not class_ind.is_file():
        raise UCF101FormatError(f"{class_ind}: missing (is --splits the ucfTrainTestlist folder?)")
    classes = read_class_ind(class_ind)
    splits: dict[int, dict[str, list[VideoInfo]]] = {}
    for n in SPLITS:
        train, test = splits_dir / f"trainlist0{n}.txt", splits_dir / f"testlist0{n}.txt"
        if train.is_file() != test.is_file():
            missing = test if train.is_file() else train
            raise UCF101FormatError(f"{missing}: missing (split {n} needs both lists)")
        if train.is_file():
            splits[n] = {
                "train": read_split_list(train, classes),
                "test": read_split_list(test, classes),
            }
            _check_split(n, train, test, splits[n], allow_empty)
    if not splits:
        raise UCF101FormatError(f"{splits_dir}: no trainlist0N.txt / testlist0N.txt")
    return classes, splits


def _check_split(
    n: int, train: Path, test: Path, lists: dict[str, list[VideoInfo]], allow_empty: bool
) -> None:
    """Refuses an empty list (unless allow_empty), and a video in both lists of one split."""
    for path, subset in ((train, "train"), (test, "test")):
        if not lists[subset] and not allow_empty:
            raise UCF101FormatError(f"{path}:1: no videos listed (split {n} needs both lists)")
    in_train = {v.name for v in lists["train"]}
    for lineno, line in _lines(test):
        if line.split()[0] in in_train:
            raise UCF101FormatError(
                f"{test}:{lineno}: {line.split()[0]} is also in {train.name} (split {n} would "
                "test on a training video)"
            )


def shard_file(data_dir: str | Path, modality: str, name: str) -> Path:
    """The TFRecord file of one shard (a key of DatasetInfo.shards) and one modality."""
    return Path(data_dir) / "shards" / modality / f"{name}.tfrecord"


def write_manifest(path: str | Path, rows: list[dict]) -> None:
    """Writes manifest.csv (columns of SPEC.md) atomically, sorted by video name."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r["video"]):
        writer.writerow({k: row[k] for k in MANIFEST_COLUMNS})
    write_text_atomic(path, buf.getvalue())


def read_manifest(path: str | Path) -> list[dict]:
    """Reads manifest.csv; `label` and `num_frames` as ints."""
    path = Path(path)
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
    except OSError as e:
        raise UCF101FormatError(f"{path}: cannot read: {e.strerror or e}") from None
    for i, row in enumerate(rows, 2):
        try:
            row["label"], row["num_frames"] = int(row["label"]), int(row["num_frames"])
        except (KeyError, TypeError, ValueError):
            raise UCF101FormatError(f"{path}:{i}: bad row {row}") from None
    return rows


def load_info(data_dir: str | Path) -> DatasetInfo:
    """Reads a prepared folder's dataset.json (written last by prepare: present = complete).

    Raises:
      UCF101FormatError: no dataset.json (prepare did not finish), or another format.
    """
    path = Path(data_dir) / INFO_FILE
    if not path.is_file():
        raise UCF101FormatError(
            f"{path}: missing; {data_dir} is not a finished `python -m lrcn_tf.prepare "
            "--dataset ucf101` output (rerun the same command to finish it)"
        )
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UCF101FormatError(f"{path}:{e.lineno}: bad JSON: {e.msg}") from None
    if d.get("format") != FORMAT:
        raise UCF101FormatError(f"{path}: format {d.get('format')!r}, expected {FORMAT!r}")
    videos = {v: VideoInfo(v, label, n) for v, label, n in d["videos"]}
    return DatasetInfo(
        dataset=d["dataset"],
        classes=tuple(d["classes"]),
        frame_size=tuple(d["frame_size"]) if d["frame_size"] else None,
        crop_size=int(d["crop_size"]),
        flow=d["flow"],
        fps=d["fps"],
        shards={k: tuple(v) for k, v in d["shards"].items()},
        splits={int(k): {s: tuple(v) for s, v in sv.items()} for k, sv in d["splits"].items()},
        videos=videos,
        synthetic=d.get("synthetic"),
    )


def split_videos(data_dir: str | Path, split: int, subset: str) -> list[VideoInfo]:
    """The videos of one split's train or test list that were prepared with status ok.

    The order is the list's order; `video_index` in the test pipeline indexes this list.
    """
    info = load_info(data_dir)
    return _split_videos(info, split, subset)


def _split_videos(info: DatasetInfo, split: int, subset: str) -> list[VideoInfo]:
    if subset not in ("train", "test"):
        raise ValueError(f"subset {subset!r}: use 'train' or 'test'")
    if split not in info.splits:
        raise ValueError(f"split {split}: this folder has splits {sorted(info.splits)}")
    return [info.videos[v] for v in info.splits[split][subset] if v in info.videos]
