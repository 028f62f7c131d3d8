"""tf.data pipelines over prepared UCF-101 shards: training clips and frames, test clips.

Recipe (reference/original_recipes.md, Activity recognition):
- training clips: 16 consecutive frames from a uniform random start, one random crop and one
  random mirror per clip; a mirrored flow image has its x channel inverted (255 - x);
- test: clips of 16 frames every 8 frames, the last clip being the final 16 frames; the
  centre crop or 10 crops (4 corners + centre, and their mirrors);
- mean subtraction: 103.939, 116.779, 123.68 for B, G, R (frames here are RGB, so the means
  are applied in R, G, B order as 123.68, 116.779, 103.939); flow: 128 everywhere.

Only the JPEGs a training clip uses are decoded, and only its crop window of each
(`decode_and_crop_jpeg`). Shards are read with a parallel interleave, maps are autotuned,
and batches prefetched. Two switches reproduce the original code's known defects for
ablation (off by default): `crop_only_when_mirroring` (unmirrored clips are squashed to the
crop size instead of cropped) and `caffe_red_mean` (red mean 128.68, as its Python layer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from lrcn_tf.data import ucf101

RGB_MEAN = (123.68, 116.779, 103.939)
RGB_MEAN_DEFECT = (128.68, 116.779, 103.939)  # the original Python data layer's red mean
FLOW_MEAN = (128.0, 128.0, 128.0)
AUTOTUNE = tf.data.AUTOTUNE


def test_clip_starts(num_frames: int, clip_length: int = 16, stride: int = 8) -> list[int]:
    """Start frames of the test clips: 0, stride, ... and a last clip ending at the last frame.

    A video shorter than a clip gets one clip at 0 (its frames then repeat the last one).
    """
    if num_frames <= clip_length:
        return [0]
    starts = list(range(0, num_frames - clip_length + 1, stride))
    if starts[-1] != num_frames - clip_length:
        starts.append(num_frames - clip_length)
    return starts


def _clip_starts_tf(n, clip_length: int, stride: int):
    last = tf.maximum(n - clip_length, 0)
    starts = tf.range(0, last + 1, stride)
    return tf.cond(starts[-1] < last, lambda: tf.concat([starts, [last]], 0), lambda: starts)


def _means(modality: str, caffe_red_mean: bool):
    if modality == "flow":
        return tf.constant(FLOW_MEAN, tf.float32)
    return tf.constant(RGB_MEAN_DEFECT if caffe_red_mean else RGB_MEAN, tf.float32)


def _mirror(x, modality: str):
    """Mirrors uint8 images [..., H, W, 3] left-right; flow x (channel 0) becomes 255 - x."""
    x = tf.reverse(x, axis=[-2])
    if modality == "flow":
        x = tf.concat([255 - x[..., :1], x[..., 1:]], axis=-1)
    return x


def _normalise(x, mean, scale: float):
    x = tf.cast(x, tf.float32) - mean
    return x * scale if scale != 1.0 else x


class _Source:
    """The prepared folder's records for one split and subset, and a name -> index table."""

    def __init__(self, data_dir, split: int, subset: str, modality: str):
        if modality not in ("rgb", "flow"):
            raise ValueError(f"modality {modality!r}: use 'rgb' or 'flow'")
        self.info = ucf101.load_info(data_dir)
        if modality == "flow" and self.info.flow == "none":
            raise ValueError(f"{data_dir} was prepared with --flow none; no flow images")
        self.videos = ucf101._split_videos(self.info, split, subset)
        if not self.videos:
            raise ValueError(f"{data_dir}: split {split} has no prepared {subset} videos")
        names = {v.name for v in self.videos}
        self.shards = sorted(s for s, vids in self.info.shards.items() if names & set(vids))
        self.files = [str(Path(data_dir) / s) for s in self.shards]
        self.mixed = any(v not in names for s in self.shards for v in self.info.shards[s])
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([v.name for v in self.videos]), tf.range(len(self.videos), dtype=tf.int32)
            ),
            default_value=-1,
        )
        self.modality = modality

    def records(self, shuffle: bool, seed: int | None, repeat: bool):
        files = tf.data.Dataset.from_tensor_slices(self.files)
        if shuffle:
            files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            files = files.repeat()
        ds = files.interleave(
            tf.data.TFRecordDataset, cycle_length=min(len(self.files), 16), num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
        ds = ds.map(self._parse, num_parallel_calls=AUTOTUNE)
        if self.mixed:  # a shard also holds videos of the other subset or failed lists
            ds = ds.filter(lambda r: r["index"] >= 0)
        return ds

    def _parse(self, serialized):
        context, lists = tf.io.parse_single_sequence_example(
            serialized,
            context_features={
                "video": tf.io.FixedLenFeature([], tf.string),
                "label": tf.io.FixedLenFeature([], tf.int64),
                "height": tf.io.FixedLenFeature([], tf.int64),
                "width": tf.io.FixedLenFeature([], tf.int64),
            },
            sequence_features={self.modality: tf.io.FixedLenSequenceFeature([], tf.string)},
        )
        return {
            "jpegs": lists[self.modality],
            "label": tf.cast(context["label"], tf.int32),
            "index": self.table.lookup(context["video"]),
            "hw": tf.cast(tf.stack([context["height"], context["width"]]), tf.int32),
        }


def _seeded(ds, seed: int | None):
    """Pairs each element with a [2] int64 seed from a seeded stream (deterministic per seed)."""
    seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)
    return tf.data.Dataset.zip((ds, seeds))


def _crop_decode(jpegs, hw, crop: int, seed, modality: str, crop_only_when_mirroring: bool):
    """Decodes a static-length vector of JPEGs with one random crop and one random mirror."""
    s = tf.random.experimental.stateless_split(seed, 3)
    mirror = tf.random.stateless_uniform([], s[0]) < 0.5
    y = tf.random.stateless_uniform([], s[1], 0, hw[0] - crop + 1, tf.int32)
    x = tf.random.stateless_uniform([], s[2], 0, hw[1] - crop + 1, tf.int32)
    count = jpegs.shape[0]

    def cropped():
        window = tf.stack([y, x, crop, crop])
        return tf.stack([tf.io.decode_and_crop_jpeg(jpegs[i], window, channels=3) for i in range(count)])

    def squashed():  # the original's defect: no crop unless mirrored, the frame is resized
        full = tf.stack([tf.io.decode_jpeg(jpegs[i], channels=3) for i in range(count)])
        return tf.cast(tf.round(tf.image.resize(full, [crop, crop])), tf.uint8)

    if crop_only_when_mirroring:
        clip = tf.cond(mirror, cropped, squashed)
    else:
        clip = cropped()
    clip = tf.cond(mirror, lambda: _mirror(clip, modality), lambda: clip)
    return tf.ensure_shape(clip, [count, crop, crop, 3])


def train_clips(
    data_dir, split: int, modality: str, *, clip_length: int = 16, batch_size: int = 24,
    crop_size: int | None = None, seed: int | None = 1701, shuffle_buffer: int = 256,
    repeat: bool = True, scale: float = 1.0, crop_only_when_mirroring: bool = False,
    caffe_red_mean: bool = False,
) -> tf.data.Dataset:
    """Training clips of one split for the LRCN models.

    Args:
      data_dir: a folder written by `python -m lrcn_tf.prepare --dataset ucf101` (or
        synthetic_ucf101).
      split: 1, 2 or 3.
      modality: "rgb" or "flow".
      clip_length: frames per clip (16 in the paper). Videos shorter than that repeat
        their last frame.
      batch_size: clips per batch (24 in the original); batches are always full.
      crop_size: crop side; None = the folder's default (227 for 240x320 frames).
      seed: seeds file order, shuffling, starts, crops and mirrors; the same seed gives the
        same stream.
      shuffle_buffer: clips (as encoded JPEGs) in the shuffle buffer.
      repeat: repeat forever (one clip per video per pass); False = one pass.
      scale: multiplies the mean-subtracted values (1.0 = the original range).
      crop_only_when_mirroring: reproduce the original's defect (squash unmirrored clips).
      caffe_red_mean: reproduce the original Python layer's red mean of 128.68.

    Returns:
      Dataset of (float32 [B, T, crop, crop, 3], int32 [B]).
    """
    src = _Source(data_dir, split, "train", modality)
    crop = crop_size or src.info.crop_size
    mean = _means(modality, caffe_red_mean)

    def sample(r, seed):
        s = tf.random.experimental.stateless_split(seed, 2)
        n = tf.shape(r["jpegs"])[0]
        start = tf.random.stateless_uniform([], s[0], 0, tf.maximum(n - clip_length, 0) + 1, tf.int32)
        idx = tf.minimum(start + tf.range(clip_length), n - 1)
        jpegs = tf.ensure_shape(tf.gather(r["jpegs"], idx), [clip_length])
        return jpegs, r["hw"], r["label"], s[1]

    def decode(jpegs, hw, label, seed):
        clip = _crop_decode(jpegs, hw, crop, seed, modality, crop_only_when_mirroring)
        return _normalise(clip, mean, scale), label

    ds = _seeded(src.records(shuffle=True, seed=seed, repeat=repeat), seed)
    ds = ds.map(sample, num_parallel_calls=AUTOTUNE)
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(decode, num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def train_frames(
    data_dir, split: int, modality: str, *, batch_size: int = 128, crop_size: int | None = None,
    seed: int | None = 1701, shuffle_buffer: int = 1024, repeat: bool = True, scale: float = 1.0,
    frames_per_video: int = 1, crop_only_when_mirroring: bool = False, caffe_red_mean: bool = False,
) -> tf.data.Dataset:
    """Training frames of one split for the single-frame model (each frame its own crop/mirror).

    Args are those of `train_clips`; `frames_per_video` frames are drawn uniformly (with
    replacement) from each video per pass.

    Returns:
      Dataset of (float32 [B, crop, crop, 3], int32 [B]).
    """
    src = _Source(data_dir, split, "train", modality)
    crop = crop_size or src.info.crop_size
    mean = _means(modality, caffe_red_mean)

    def sample(r, seed):
        s = tf.random.experimental.stateless_split(seed, 2)
        n = tf.shape(r["jpegs"])[0]
        idx = tf.random.stateless_uniform([frames_per_video], s[0], 0, n, tf.int32)
        seeds = tf.random.experimental.stateless_split(s[1], frames_per_video)
        k = frames_per_video
        return tf.gather(r["jpegs"], idx)[:, None], tf.tile(r["hw"][None], [k, 1]), tf.fill([k], r["label"]), seeds

    def decode(jpegs, hw, label, seed):
        frame = _crop_decode(tf.ensure_shape(jpegs, [1]), hw, crop, seed, modality, crop_only_when_mirroring)
        return _normalise(frame[0], mean, scale), label

    ds = _seeded(src.records(shuffle=True, seed=seed, repeat=repeat), seed)
    ds = ds.map(sample, num_parallel_calls=AUTOTUNE).unbatch()
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(decode, num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def _test_crops(clip, crop: int, crops: str, modality: str):
    """[T, H, W, 3] uint8 -> [C, T, crop, crop, 3]: centre, or 4 corners + centre + mirrors."""
    h, w = tf.shape(clip)[1], tf.shape(clip)[2]
    cy, cx = (h - crop) // 2, (w - crop) // 2
    if crops == "center":
        corners = [(cy, cx)]
    else:
        corners = [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop), (cy, cx)]
    out = [clip[:, y : y + crop, x : x + crop] for y, x in corners]
    if crops == "ten":
        out += [_mirror(c, modality) for c in out]
    return tf.stack(out)


def test_clips(
    data_dir, split: int, modality: str, *, clip_length: int = 16, stride: int = 8,
    crops: str = "center", crop_size: int | None = None, batch_size: int | None = None,
    per_video: bool = False, scale: float = 1.0, caffe_red_mean: bool = False,
) -> tf.data.Dataset:
    """The test protocol's clips of one split (in shard order), each with its video's index.

    Args:
      data_dir, split, modality, crop_size, scale, caffe_red_mean: as in `train_clips`.
      clip_length, stride: clips start every `stride` frames; the last clip ends at the
        video's last frame (`test_clip_starts`).
      crops: "center" (1 crop) or "ten" (4 corners + centre, then the same mirrored).
      batch_size: batch the per-clip elements (the last batch may be smaller); None = no.
      per_video: one element per video instead of per clip (small data only: all clips
        and crops of a video in one tensor).

    Returns:
      per clip: {"clips": float32 [C, T, crop, crop, 3], "label": int32, "video_index":
      int32, "clip_index": int32} (a leading batch dimension when batched); per video:
      {"clips": float32 [N, C, T, crop, crop, 3], "label", "video_index"}. `video_index`
      indexes `ucf101.split_videos(data_dir, split, "test")`.
    """
    if crops not in ("center", "ten"):
        raise ValueError(f"crops {crops!r}: use 'center' or 'ten'")
    src = _Source(data_dir, split, "test", modality)
    crop = crop_size or src.info.crop_size
    mean = _means(modality, caffe_red_mean)
    num_crops = 1 if crops == "center" else 10

    def decode_video(r):
        frames = tf.map_fn(
            lambda j: tf.io.decode_jpeg(j, channels=3), r["jpegs"],
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
        )
        n = tf.shape(frames)[0]
        starts = _clip_starts_tf(n, clip_length, stride)
        idx = tf.minimum(starts[:, None] + tf.range(clip_length)[None], n - 1)
        return frames, idx, r["label"], r["index"]

    def clip_at(frames, idx, k):
        c = _test_crops(tf.gather(frames, idx[k]), crop, crops, modality)
        return tf.ensure_shape(c, [num_crops, clip_length, crop, crop, 3])

    def expand(frames, idx, label, index):
        ks = tf.range(tf.shape(idx)[0])
        return tf.data.Dataset.from_tensor_slices(ks).map(
            lambda k: {"clips": clip_at(frames, idx, k), "label": label, "video_index": index, "clip_index": k}
        )

    def whole(frames, idx, label, index):
        clips = tf.map_fn(lambda k: clip_at(frames, idx, k), tf.range(tf.shape(idx)[0]),
                          fn_output_signature=tf.uint8)
        return {"clips": _normalise(clips, mean, scale), "label": label, "video_index": index}

    ds = src.records(shuffle=False, seed=None, repeat=False).map(decode_video, num_parallel_calls=AUTOTUNE)
    if per_video:
        return ds.map(whole, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    ds = ds.flat_map(expand).map(
        lambda e: {**e, "clips": _normalise(e["clips"], mean, scale)}, num_parallel_calls=AUTOTUNE
    )
    if batch_size:
        ds = ds.batch(batch_size)
    return ds.prefetch(AUTOTUNE)


def video_scores(video_index, scores, num_videos: int) -> np.ndarray:
    """Mean of `scores` rows per video: [M] indices, [M, K] scores -> [num_videos, K] (NaN if unseen)."""
    video_index, scores = np.asarray(video_index), np.asarray(scores, np.float64)
    total = np.zeros((num_videos, scores.shape[1]))
    count = np.zeros(num_videos)
    np.add.at(total, video_index, scores)
    np.add.at(count, video_index, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count[:, None]
