"""The prepared UCF-101 record format and the work of one prepare worker: videos -> a shard.

One TFRecord record per video, a `tf.train.SequenceExample`:
- context: `video` (bytes, the split-list name), `label` (int64, 0-based), `num_frames`,
  `num_flow`, `height`, `width` (int64), `fps` (float, frames per second of the stored frames);
- feature lists: `rgb` (one JPEG per frame, RGB) and, unless flow is `none`, `flow` (one
  JPEG flow image per pair of consecutive frames: num_flow = num_frames - 1).

A shard is written under a temp name, its manifest rows go to `<shard>.json`, and only then
is it renamed to its final `.tfrecord` name: a shard with its final name is complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import cv2
import numpy as np

from lrcn_tf.data.flow import flow_images
from lrcn_tf.data.video import VideoError, decode_video

CONTEXT_INT_KEYS = ("label", "num_frames", "num_flow", "height", "width")
MODALITIES = ("rgb", "flow")


@dataclasses.dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs to write one shard."""

    path: str  # final .tfrecord path
    videos: tuple[tuple[str, int, str], ...]  # (name, label, class_name)
    src: str  # the UCF-101 folder
    fps: float | None
    flow: str
    min_size: tuple[int, int] | None
    jpeg_quality: int


def sidecar(path: str | Path) -> Path:
    """The manifest-rows file that goes with a shard."""
    return Path(str(path)[: -len(".tfrecord")] + ".json")


def shard_done(path: str | Path) -> bool:
    """A shard is finished when both its .tfrecord and its .json exist under final names."""
    return Path(path).is_file() and sidecar(path).is_file()


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VideoError("JPEG encoding failed")
    return buf.tobytes()


def video_example(name: str, label: int, frames: np.ndarray, flows: np.ndarray | None, fps: float, quality: int):
    """Builds the SequenceExample of one video (frames and flows uint8 RGB)."""
    import tensorflow as tf

    def ints(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    def jpegs(images):
        return tf.train.FeatureList(
            feature=[tf.train.Feature(bytes_list=tf.train.BytesList(value=[encode_jpeg(i, quality)])) for i in images]
        )

    n, h, w = frames.shape[:3]
    context = {
        "video": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
        "label": ints(label),
        "num_frames": ints(n),
        "num_flow": ints(0 if flows is None else len(flows)),
        "height": ints(h),
        "width": ints(w),
        "fps": tf.train.Feature(float_list=tf.train.FloatList(value=[fps])),
    }
    lists = {"rgb": jpegs(frames)}
    if flows is not None:
        lists["flow"] = jpegs(flows)
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context), feature_lists=tf.train.FeatureLists(feature_list=lists)
    )


def write_shard(task: ShardTask) -> list[dict]:
    """Decodes, computes flow for and writes every video of one shard.

    A video that fails (missing, empty, corrupt, truncated, too short for flow) is left out
    of the shard and gets its reason as `status`; the others are written.

    Returns:
      One manifest row per video (video, label, class_name, num_frames, status, height, width).
    """
    import tensorflow as tf

    rows = []
    tmp = f"{task.path}.{os.getpid()}.tmp"
    with tf.io.TFRecordWriter(tmp) as writer:
        for name, label, class_name in task.videos:
            row = {"video": name, "label": label, "class_name": class_name, "num_frames": 0, "height": 0, "width": 0}
            try:
                frames, native = decode_video(Path(task.src) / name, task.fps, task.min_size)
                flows = None
                if task.flow != "none":
                    if len(frames) < 2:
                        raise VideoError(f"{len(frames)} frame: too short for flow")
                    flows = flow_images(frames, task.flow)
                ex = video_example(name, label, frames, flows, float(task.fps or native), task.jpeg_quality)
                writer.write(ex.SerializeToString())
                row.update(num_frames=len(frames), height=frames.shape[1], width=frames.shape[2], status="ok")
            except VideoError as e:
                row["status"] = str(e)
            except Exception as e:  # noqa: BLE001 - one bad video must not stop the run
                row["status"] = f"error: {type(e).__name__}: {e}".replace("\n", " ")[:160]
            rows.append(row)
    side = sidecar(task.path)
    side_tmp = side.with_name(side.name + f".{os.getpid()}.tmp")
    side_tmp.write_text(json.dumps(rows, indent=0) + "\n")
    os.replace(side_tmp, side)  # rows first, then the shard: a final-named shard has its rows
    os.replace(tmp, task.path)
    return rows
