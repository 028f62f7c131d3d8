"""The prepared UCF-101 record format and the work of one prepare worker: videos -> a shard.

A shard `NAME` (e.g. `g08-00000-of-00001`) is one TFRecord file per modality,
`shards/rgb/NAME.tfrecord` and, unless flow is `none`, `shards/flow/NAME.tfrecord` (a
reader of one modality never reads the other's bytes), plus `shards/NAME.json` with the
manifest rows of its videos. One record per video, a `tf.train.SequenceExample`:
- context: `video` (bytes, the split-list name), `label` (int64, 0-based), `num_frames`,
  `num_flow`, `height`, `width` (int64), `fps` (float, frames per second of the stored frames);
- feature list `rgb` (one JPEG per frame, RGB) or `flow` (one JPEG flow image per pair of
  consecutive frames: num_flow = num_frames - 1).

Each file gets an index beside it, `NAME.index.npz` (ucf101_index: where each JPEG lies in
the file, so training reads only the frames of a clip). The files are written under temp
names, then their indexes, then the .json, then the files are renamed: a shard is complete
when its .json and all its files exist under their final names (an index that is missing or
does not match its file is rebuilt when the shard is read).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import cv2
import numpy as np

from lrcn_tf.data.flow import flow_images
from lrcn_tf.data.ucf101.format import shard_file
from lrcn_tf.data.ucf101.index import IndexBuilder, index_file, record_spans, write_index
from lrcn_tf.data.video import VideoError, decode_video
from lrcn_tf.errors import UserError

MODALITIES = ("rgb", "flow")


class PrepareError(UserError):
    """Bad input or a folder that cannot be resumed; the message says what to do (raised by
    prepare.py and by its Beam runner, beam.py, which both import this module)."""


@dataclasses.dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs to write one shard."""

    out: str  # the prepared folder
    name: str  # shard name, e.g. g08-00000-of-00001
    videos: tuple[tuple[str, int, str], ...]  # (name, label, class_name)
    src: str  # the UCF-101 folder
    fps: float | None
    flow: str
    min_size: tuple[int, int] | None
    jpeg_quality: int


def modalities(flow: str) -> tuple[str, ...]:
    return ("rgb",) if flow == "none" else MODALITIES


def sidecar(out: str | Path, name: str) -> Path:
    """The manifest-rows file of a shard."""
    return Path(out) / "shards" / f"{name}.json"


def shard_done(out: str | Path, name: str, flow: str) -> bool:
    """Whether a shard is complete: its .json and every modality's file exist."""
    files = [shard_file(out, m, name) for m in modalities(flow)]
    return sidecar(out, name).is_file() and all(f.is_file() for f in files)


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise VideoError("JPEG encoding failed")
    return buf.tobytes()


def video_example(
    name: str,
    label: int,
    images: np.ndarray,
    modality: str,
    num_frames: int,
    fps: float,
    quality: int,
):
    """Builds the SequenceExample of one video and one modality (images uint8 RGB)."""
    import tensorflow as tf

    def ints(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    h, w = images.shape[1:3]
    context = {
        "video": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
        "label": ints(label),
        "num_frames": ints(num_frames),
        "num_flow": ints(max(num_frames - 1, 0)),
        "height": ints(h),
        "width": ints(w),
        "fps": tf.train.Feature(float_list=tf.train.FloatList(value=[fps])),
    }
    jpegs = tf.train.FeatureList(
        feature=[
            tf.train.Feature(bytes_list=tf.train.BytesList(value=[encode_jpeg(i, quality)]))
            for i in images
        ]
    )
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list={modality: jpegs}),
    )


def write_shard(task: ShardTask) -> list[dict]:
    """Decodes, computes flow for and writes every video of one shard.

    A video that fails (missing, empty, corrupt, truncated, too short for flow) is left out
    of the shard and gets its reason as `status`; the others are written.

    Returns:
      One manifest row per video (video, label, class_name, num_frames, status, height, width).
    """
    return write_records(task, (video_records(task, video) for video in task.videos))


def video_records(task: ShardTask, video: tuple[str, int, str]) -> tuple[dict, dict]:
    """The work on one video of a shard: (manifest row, {modality: serialized record}).

    The records are empty when the video failed; the row's `status` says why."""
    name, label, class_name = video
    row = {
        "video": name,
        "label": label,
        "class_name": class_name,
        "num_frames": 0,
        "height": 0,
        "width": 0,
    }
    records = {}
    try:
        frames, native = decode_video(Path(task.src) / name, task.fps, task.min_size)
        images = {"rgb": frames}
        if task.flow != "none":
            if len(frames) < 2:
                raise VideoError(f"{len(frames)} frame: too short for flow")
            images["flow"] = flow_images(frames, task.flow)
        fps = float(task.fps or native)
        records = {
            m: video_example(
                name, label, x, m, len(frames), fps, task.jpeg_quality
            ).SerializeToString(deterministic=True)  # map keys sorted: same bytes anywhere
            for m, x in images.items()
        }
        row.update(
            num_frames=len(frames), height=frames.shape[1], width=frames.shape[2], status="ok"
        )
    except VideoError as e:
        row["status"] = str(e)
        records = {}
    except Exception as e:  # noqa: BLE001 - one bad video must not stop the run
        row["status"] = f"error: {type(e).__name__}: {e}".replace("\n", " ")[:160]
        records = {}
    return row, records


def write_records(task: ShardTask, results) -> list[dict]:
    """Writes one shard from its videos' `video_records` results, in the shard's order.

    `results` may be a generator (one video in memory at a time). Returns the rows."""
    import tensorflow as tf

    rows = []
    finals = {m: shard_file(task.out, m, task.name) for m in modalities(task.flow)}
    tmps = {m: f.with_name(f"{f.name}.{os.getpid()}.tmp") for m, f in finals.items()}
    writers, indexes = {}, {m: IndexBuilder(m) for m in finals}
    for m, tmp in tmps.items():
        tmp.parent.mkdir(parents=True, exist_ok=True)
        writers[m] = tf.io.TFRecordWriter(str(tmp))
    try:
        for row, records in results:
            spans = {m: record_spans(r, m) for m, r in records.items()}
            for m, record in records.items():
                writers[m].write(record)
                indexes[m].append(len(record), spans[m])
            rows.append(row)
    finally:
        for w in writers.values():
            w.close()
    for m, index in indexes.items():
        if index.position == tmps[m].stat().st_size:  # else rebuilt from the file when read
            write_index(index_file(finals[m]), index.arrays())
    side = sidecar(task.out, task.name)
    side_tmp = side.with_name(side.name + f".{os.getpid()}.tmp")
    side_tmp.write_text(json.dumps(rows, indent=0) + "\n")
    os.replace(side_tmp, side)  # rows first, then the files: see shard_done
    for m in finals:
        os.replace(tmps[m], finals[m])
    return rows
