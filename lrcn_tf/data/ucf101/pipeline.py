"""tf.data pipelines over prepared UCF-101 shards: training clips and frames, test clips.

Recipe (reference/original_recipes.md, Activity recognition):
- training clips: 16 consecutive frames from a uniform random start, one random crop and one
  random mirror per clip; a mirrored flow image has its x channel inverted (255 - x);
- test: clips of 16 frames every 8 frames, the last clip being the final 16 frames; the
  centre crop or 10 crops (4 corners + centre, and their mirrors);
- mean subtraction: 103.939, 116.779, 123.68 for B, G, R (frames here are RGB, so the means
  are applied in R, G, B order as 123.68, 116.779, 103.939); flow: 128 everywhere.

Training reads and decodes only the JPEGs a clip uses: each pass shuffles the split's video
numbers, a batch of them draws its starts, crops and mirrors in the graph, and the frames'
JPEGs are read where they lie in the shard files (ucf101_index.FrameIndex, memory-mapped; no
whole-video records are read or parsed). simplejpeg decodes a whole batch per call
(ucf101_ops.decode_clips_host, or decode_whole_host for Table 1's path) into reused,
aligned buffers that TensorFlow takes without a copy; batches are decoded in parallel
(autotuned) and two are prefetched. The test clips read whole records with a parallel
interleave, since every frame is used.

Outputs: float32 clips (default); `normalised=False`: uint8 clips (cropped, mirrored) for
`normalise` in the train step; `normalised=False, crop_on_host=False` (Table 1): whole uint8
frames decoded straight into the batch plus each clip's draw, for `crop_and_normalise` in the
train step, on the accelerator. All three give the same values. Two switches reproduce the
original code's known defects for ablation (off by default): `crop_only_when_mirroring`
(unmirrored clips are squashed to the crop size instead of cropped) and `caffe_red_mean`
(red mean 128.68, as its Python data layer); `test_clips` has the original test script's
(`unsorted_frames`, `flow_mirror`, `caffe_red_mean`) and its clip starts
(`final_clip_twice`). Frames stay RGB here; `to_channel_order` gives the model Caffe's BGR.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from lrcn_tf.data.ucf101 import ops
from lrcn_tf.data.ucf101.ops import AUTOTUNE, FLOW_MEAN, RGB_MEAN, RGB_MEAN_DEFECT  # noqa: F401

FLOW_MIRROR = ("invert", "keep", "script")  # test_clips(flow_mirror=...)
ORIGINAL_FRAME_BATCH = 16  # frames a batch in the original single-frame test script
UNSORTED_SEED = 1701  # test_clips(unsorted_frames=True): the frame order's seed
CHANNEL_ORDERS = ("rgb", "bgr")


def to_channel_order(x, order: str):
    """Normalised frames [..., 3] of the pipelines (RGB; flow: x, y, magnitude) -> the
    model's input order: "rgb" as they are, "bgr" reversed (Caffe's order: the original nets
    saw BGR frames, and flow with x in channel 2 and the magnitude in channel 0)."""
    if order not in CHANNEL_ORDERS:
        raise ValueError(f"channel order {order!r}: use one of {CHANNEL_ORDERS}")
    return keras.ops.flip(x, axis=-1) if order == "bgr" else x


# Training batches kept ready: the decode map already runs up to one batch per core ahead.
# An autotuned prefetch grows each time a consumer drains it (tf.data deepens it up to its
# RAM budget): at 240x320 past ucf101_ops.OutputBuffers' pool, where every new batch then
# costs a page fault per 4 KiB (docs/performance.md). The training pipelines also turn
# tf.data's autotuning off: its background thread made dropping an iterator at the end of
# training wait for that thread's current sleep (2-14 s after about half of the embedded
# Table 1's rows); without it the map keeps its starting parallelism, one call per core.
PREFETCH = 2


def normalise(x, modality: str, *, scale: float = 1.0, caffe_red_mean: bool = False):
    """uint8 clips or frames of `train_clips(..., normalised=False)` -> float32, mean
    subtracted and scaled, with keras.ops (so it runs inside a compiled train step, on the
    accelerator, on any Keras backend). Equals the host path value for value."""
    return ops.normalise(x, ops.means(modality, caffe_red_mean), scale)


def crop_and_normalise(
    frames,
    crops,
    crop: int,
    modality: str,
    *,
    scale: float = 1.0,
    caffe_red_mean: bool = False,
    mirror: bool = True,
):
    """Whole uint8 frames of `train_clips(..., crop_on_host=False)` ([B, T, H, W, 3], or
    [B, H, W, 3] from train_frames) and their crops [B, 3] = (y, x, mirrored) -> float32
    [B, (T,) crop, crop, 3]: cropped, mirrored (flow x -> 255 - x), mean subtracted and
    scaled, with keras.ops (in a compiled train step, on the accelerator, on any Keras
    backend). Equals the host path (`normalised=True`) value for value.

    The batch size must be static (the training pipelines drop the last partial batch): each
    clip's window is one dynamic slice of a static size, and a clip whose flag is set is
    reversed in a conditional (the others are not touched). `mirror=False` says that no flag
    is set (the pipelines clear them when they do not mirror): no conditional at all.
    """
    x = keras.ops.convert_to_tensor(frames)
    single = len(x.shape) == 4
    if single:
        x = x[:, None]
    b, t = x.shape[:2]
    if b is None or t is None:
        raise ValueError(f"crop_and_normalise needs static batch and clip sizes, got {x.shape}")
    crops = keras.ops.cast(crops, "int32")
    zero = keras.ops.zeros((), "int32")

    def flipped(w):  # [T, crop, crop, 3] left-right
        w = keras.ops.flip(w, axis=2)
        return ops.invert_flow_x(w) if modality == "flow" else w

    def window(i):
        w = keras.ops.slice(x[i], [zero, crops[i, 0], crops[i, 1], zero], (t, crop, crop, 3))
        if not mirror:
            return w
        return keras.ops.cond(crops[i, 2] > 0, lambda: flipped(w), lambda: w)

    x = keras.ops.stack([window(i) for i in range(b)])
    x = normalise(x, modality, scale=scale, caffe_red_mean=caffe_red_mean)
    return x[:, 0] if single else x


def test_clip_starts(
    num_frames: int, clip_length: int = 16, stride: int = 8, final_clip_twice: bool = False
) -> list[int]:
    """Start frames of the test clips: 0, stride, ... and a last clip ending at the last frame.

    A video shorter than a clip gets one clip at 0 (its frames then repeat the last one).
    `final_clip_twice`: the original script's rule (`classify_video.py`): a clip at every
    start in range(0, num_frames, stride), each one that would reach the end replaced by the
    final clip, so that (with stride 8 and 16 frames) the final clip is averaged twice.
    """
    last = max(num_frames - clip_length, 0)
    if final_clip_twice:
        return [i if i + clip_length < num_frames else last for i in range(0, num_frames, stride)]
    if num_frames <= clip_length:
        return [0]
    starts = list(range(0, num_frames - clip_length + 1, stride))
    if starts[-1] != num_frames - clip_length:
        starts.append(num_frames - clip_length)
    return starts


def _training(
    src,
    sample,
    draws,
    *,
    per_video=1,
    batch_size,
    crop,
    seed,
    repeat,
    scale,
    squash,
    caffe_red_mean,
    mirror=True,
    normalised=True,
    crop_on_host=True,
    shard=None,
):
    """videos (each `per_video` times a pass, shuffled) -> batch -> draw -> read and decode.

    `sample(r, u)` maps a batch's videos r ({"length", "hw", "label"}, each [B, ...]) and
    uniforms u [B, draws] to (frame numbers [B, T], crop parameters [B, 3], labels [B]).
    Only the drawn frames' JPEGs are read (`FrameIndex`) and decoded. With `shard` (part,
    parts), every batch is drawn whole (numbers only, the same on every worker) and only its
    rows [part * B / parts, (part + 1) * B / parts) are read and decoded.
    """
    if shard is not None:
        part, parts = shard
        if batch_size % parts or not 0 <= part < parts:
            raise ValueError(f"shard {shard}: a batch of {batch_size} does not split in {parts}")
        rows = slice(part * (batch_size // parts), (part + 1) * (batch_size // parts))
    if not crop_on_host:
        bad = {"normalised=True": normalised, "crop_only_when_mirroring=True": squash}
        if any(bad.values()):
            raise ValueError(
                f"crop_on_host=False (uint8 whole frames, cropped by `crop_and_normalise` on "
                f"the accelerator) does not go with {', '.join(k for k, v in bad.items() if v)}"
            )
    index = src.frame_index()
    mean = ops.means(src.modality, caffe_red_mean)
    base = 0 if seed is None else seed
    count = len(index.names)
    videos = {
        "length": tf.constant(index.counts, tf.int32),
        "hw": tf.constant(index.hw, tf.int32),
        "label": tf.constant([v.label for v in src.videos], tf.int32),
    }

    if not crop_on_host:
        cache = ops.decoded_frames()  # here, not while `draw` is traced: a bad size is one line
        sizes = sorted({tuple(hw) for hw in index.hw.tolist()})
        if len(sizes) > 1:
            raise ValueError(
                f"{src.data_dir}: the videos have frame sizes {sizes[:4]}; crop_on_host=False "
                "batches whole frames, which needs one size (prepare with --min_size, or crop "
                "on the host)"
            )

    def draw(i, element):
        v = tf.cast(element % count, tf.int32)  # element e of a pass is video e % count
        # Stateless draws keyed by (seed, batch number): the same seed, the same stream.
        u = tf.random.stateless_uniform([tf.shape(v)[0], draws], tf.stack([base, i]))
        frames, params, labels = sample({k: tf.gather(x, v) for k, x in videos.items()}, u)
        if shard is not None:  # this worker's rows of the global batch
            v, frames, params, labels = v[rows], frames[rows], params[rows], labels[rows]
        if not mirror:  # clear the mirror flag (column 2 of the crop parameters)
            params = params * tf.constant([1, 1, 0], params.dtype)
        if not crop_on_host:
            return ops.decode_whole_host(index, v, frames, sizes[0], cache), params, labels
        x = ops.decode_clips_host(
            index, v, frames, params, crop, src.modality, squash, mean, scale, normalised
        )
        return x, labels

    # A full shuffle of the videos each pass: the buffer holds numbers only. No per-element
    # map before batching: tf.data would run it in parallel, a thread hand-off per clip.
    ds = tf.data.Dataset.range(count * per_video).shuffle(
        count * per_video, seed=seed, reshuffle_each_iteration=True
    )
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True).enumerate()
    ds = ds.map(draw, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(PREFETCH).with_options(training_options())


def training_options() -> tf.data.Options:
    """The training pipelines' options: no autotuning (PREFETCH says why), and iterator
    checkpoints that hold positions, not the prefetched batches (`fit` saves the iterator
    every `checkpoint_every` steps; a restored pipeline redraws the same batches)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_symbolic_checkpoint = True
    return options


def train_clips(
    data_dir,
    split: int,
    modality: str,
    *,
    clip_length: int = 16,
    batch_size: int = 24,
    crop_size: int | None = None,
    seed: int | None = 1701,
    repeat: bool = True,
    scale: float = 1.0,
    crop_only_when_mirroring: bool = False,
    caffe_red_mean: bool = False,
    mirror: bool = True,
    normalised: bool = True,
    crop_on_host: bool = True,
    shard: tuple[int, int] | None = None,
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
      seed: seeds the order of the videos (shuffled anew each pass), starts, crops and
        mirrors; the same seed gives the same stream.
      repeat: repeat forever (one clip per video per pass); False = one pass (the last
        partial batch dropped).
      scale: multiplies the mean-subtracted values (1.0 = the original range).
      crop_only_when_mirroring: reproduce the original's defect (squash unmirrored clips).
      caffe_red_mean: reproduce the original Python layer's red mean of 128.68.
      mirror: the recipe's random mirror (p = 0.5). Turn it off only for data whose classes
        are not mirror-invariant (synthetic_ucf101 has mirror-image class pairs).
      normalised: True: float32, mean subtracted and scaled on the host. False: the same
        clips as uint8 (cropped, mirrored, flow x inverted), a quarter of the bytes to write
        and to copy to the accelerator; `normalise(x, modality, ...)` with the same `scale`
        and `caffe_red_mean`, in the train step, then gives exactly the float32 values.
      crop_on_host: False (with normalised=False): the host only decodes, straight into
        the batch, and yields whole frames with each clip's crop and mirror draw;
        `crop_and_normalise` in the train step, on the accelerator, then gives exactly the
        float32 values. The host then spends less CPU a frame and keeps its cores busier
        (docs/performance.md); every video must have the same frame size.
      shard: (part, parts): one worker's share of every batch (training across machines):
        the batches are drawn whole and only rows [part * B / parts, (part + 1) * B / parts)
        are read and decoded, so the parts together are exactly the unsharded batches.

    Returns:
      Dataset of (float32 or uint8 [B, T, crop, crop, 3], int32 [B]); with
      crop_on_host=False, of (uint8 [B, T, H, W, 3], int32 crops [B, 3] = (y, x, mirrored),
      int32 [B]).
    """
    src = ops.ShardSource(data_dir, split, "train", modality)
    crop = crop_size or src.info.crop_size

    def sample(r, u):
        n = r["length"]
        start = ops.uniform_int(u[:, 0], tf.maximum(n - clip_length, 0) + 1)
        idx = tf.minimum(start[:, None] + tf.range(clip_length)[None], n[:, None] - 1)
        return idx, ops.draw_crops(u[:, 1:4], r["hw"], crop), r["label"]

    return _training(
        src,
        sample,
        4,
        batch_size=batch_size,
        crop=crop,
        seed=seed,
        repeat=repeat,
        scale=scale,
        squash=crop_only_when_mirroring,
        caffe_red_mean=caffe_red_mean,
        mirror=mirror,
        normalised=normalised,
        crop_on_host=crop_on_host,
        shard=shard,
    )


def train_frames(
    data_dir,
    split: int,
    modality: str,
    *,
    batch_size: int = 128,
    crop_size: int | None = None,
    seed: int | None = 1701,
    repeat: bool = True,
    scale: float = 1.0,
    frames_per_video: int = 1,
    crop_only_when_mirroring: bool = False,
    caffe_red_mean: bool = False,
    mirror: bool = True,
    normalised: bool = True,
    crop_on_host: bool = True,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Training frames of one split for the single-frame model (each frame its own crop/mirror).

    Args are those of `train_clips`; each pass draws `frames_per_video` frames uniformly
    (with replacement) from each video, each as its own element of the shuffled pass.

    Returns:
      Dataset of (float32 or uint8 [B, crop, crop, 3], int32 [B]); with crop_on_host=False,
      of (uint8 [B, H, W, 3], int32 crops [B, 3], int32 [B]).
    """
    src = ops.ShardSource(data_dir, split, "train", modality)
    crop = crop_size or src.info.crop_size
    if frames_per_video < 1:
        raise ValueError(f"frames_per_video {frames_per_video}: must be >= 1")

    def sample(r, u):
        idx = ops.uniform_int(u[:, :1], r["length"][:, None])  # [B, 1]
        return idx, ops.draw_crops(u[:, 1:4], r["hw"], crop), r["label"]

    ds = _training(
        src,
        sample,
        4,
        per_video=frames_per_video,
        batch_size=batch_size,
        crop=crop,
        seed=seed,
        repeat=repeat,
        scale=scale,
        squash=crop_only_when_mirroring,
        caffe_red_mean=caffe_red_mean,
        mirror=mirror,
        normalised=normalised,
        crop_on_host=crop_on_host,
        shard=shard,
    )
    return ds.map(lambda x, *rest: (x[:, 0], *rest))


def test_clips(
    data_dir,
    split: int,
    modality: str,
    *,
    clip_length: int = 16,
    stride: int = 8,
    crops: str = "center",
    crop_size: int | None = None,
    batch_size: int | None = None,
    per_video: bool = False,
    videos_per_element: int = 1,
    scale: float = 1.0,
    caffe_red_mean: bool = False,
    mirror: bool = True,
    final_clip_twice: bool = False,
    unsorted_frames: bool = False,
    flow_mirror: str = "invert",
) -> tf.data.Dataset:
    """The test protocol's clips of one split (in shard order), each with its video's index.

    Args:
      data_dir, split, modality, crop_size, scale, caffe_red_mean: as in `train_clips`.
      clip_length, stride: clips start every `stride` frames; the last clip ends at the
        video's last frame (`test_clip_starts`). clip_length=1, stride=1: every frame once
        (the original single-frame test).
      crops: "center" (1 crop) or "ten" (4 corners + centre, then the same mirrored).
      batch_size: batch the per-clip elements (the last batch may be smaller); None = no.
      per_video: one element per video instead of per clip (small data only: all clips
        and crops of a video in one tensor).
      videos_per_element: with `per_video`, the clips of this many consecutive videos in one
        element, in the per-clip format ("label" and "video_index" per clip), put together
        by tf.data (in its threads, ahead of the model) for one forward pass.
      final_clip_twice: the original script's clip starts (`test_clip_starts`).
      unsorted_frames: the original script's defect: it took a video's frames from an
        unsorted glob, in directory order. Here: a fixed pseudo-random order per video
        (seeded by its index), the worst case of that order.
      flow_mirror: "invert" (a mirrored flow crop has x -> 255 - x: correct); the original
        script's defects: "keep" (its LRCN test leaves x of mirrored crops as it is),
        "script" (its single-frame test, clip_length=1 and stride=1 only: in every batch of
        16 frames, `1 - x` on crops [5:] of the 10 x 16, i.e. on every crop of all frames but
        the batch's first, unmirrored ones included).

    Returns:
      per clip: {"clips": float32 [C, T, crop, crop, 3], "label": int32, "video_index":
      int32, "clip_index": int32} (a leading batch dimension when batched); per video:
      {"clips": float32 [N, C, T, crop, crop, 3], "label", "video_index"} (with
      `videos_per_element` > 1: the N clips of those videos, "label" and "video_index" [N]). `video_index`
      indexes `ucf101.split_videos(data_dir, split, "test")`.
    """
    if crops not in ("center", "ten"):
        raise ValueError(f"crops {crops!r}: use 'center' or 'ten'")
    if flow_mirror not in FLOW_MIRROR:
        raise ValueError(f"flow_mirror {flow_mirror!r}: use one of {FLOW_MIRROR}")
    if flow_mirror == "script" and (clip_length, stride) != (1, 1):
        raise ValueError("flow_mirror='script' is the single-frame test's: clip_length=1, stride=1")
    src = ops.ShardSource(data_dir, split, "test", modality)
    crop = crop_size or src.info.crop_size
    mean = ops.means(modality, caffe_red_mean)
    num_crops = 1 if crops == "center" else 10
    script_invert = flow_mirror == "script" and modality == "flow" and crops == "ten"

    def decode(r):
        frames = ops.decode_video(r["jpegs"])  # every frame is in some clip
        n = tf.shape(frames)[0]
        if unsorted_frames:
            u = tf.random.stateless_uniform([n], tf.stack([UNSORTED_SEED, r["index"]]))
            frames = tf.gather(frames, tf.argsort(u))
        starts = ops.clip_starts_tf(n, clip_length, stride, final_clip_twice)
        idx = tf.minimum(starts[:, None] + tf.range(clip_length)[None], n - 1)
        return frames, idx, r["label"], r["index"]

    def clip_at(frames, idx, k):
        c = ops.test_crops(tf.gather(frames, idx[k]), crop, crops, modality, flow_mirror != "keep")
        if script_invert:  # crops [5:] of each 16-frame batch: all of frames 1..15
            first = tf.math.floormod(tf.cast(k, tf.int32), ORIGINAL_FRAME_BATCH) == 0
            wrong = tf.concat([ops.invert_flow_x(c[:5]), c[5:]], 0)
            c = tf.cond(first, lambda: c, lambda: wrong)
        return tf.ensure_shape(c, [num_crops, clip_length, crop, crop, 3])

    def expand(frames, idx, label, index):
        return tf.data.Dataset.range(tf.cast(tf.shape(idx)[0], tf.int64)).map(
            lambda k: {
                "clips": clip_at(frames, idx, k),
                "label": label,
                "video_index": index,
                "clip_index": tf.cast(k, tf.int32),
            }
        )

    def whole(frames, idx, label, index):
        if script_invert:  # the defect depends on each clip's position: one clip at a time
            ks = tf.range(tf.shape(idx)[0])
            clips = tf.map_fn(lambda k: clip_at(frames, idx, k), ks, fn_output_signature=tf.uint8)
        else:  # all clips at once (the same values, no loop)
            clips = ops.test_crops(
                tf.gather(frames, idx), crop, crops, modality, flow_mirror != "keep"
            )
            clips = tf.ensure_shape(clips, [None, num_crops, clip_length, crop, crop, 3])
        return {"clips": ops.normalise(clips, mean, scale), "label": label, "video_index": index}

    ds = src.records(shuffle=False, seed=None, repeat=False).map(
        decode, num_parallel_calls=AUTOTUNE
    )
    if per_video:
        ds = ds.map(whole, num_parallel_calls=AUTOTUNE)
        if videos_per_element > 1:
            ds = ds.ragged_batch(videos_per_element).map(_merge_videos)
        return ds.prefetch(AUTOTUNE)
    ds = ds.flat_map(expand)
    if batch_size:
        ds = ds.batch(batch_size)
    return ds.map(lambda e: {**e, "clips": ops.normalise(e["clips"], mean, scale)}).prefetch(
        AUTOTUNE
    )


def _merge_videos(e):
    """A ragged batch of per-video elements -> one element of all their clips, per clip."""
    clips = e["clips"]
    per_clip = clips.row_lengths()
    return {
        "clips": clips.values,
        "label": tf.repeat(e["label"], per_clip),
        "video_index": tf.repeat(e["video_index"], per_clip),
    }


def video_scores(video_index, scores, num_videos: int) -> np.ndarray:
    """Mean of `scores` rows per video: [M] indices, [M, K] scores -> [num_videos, K] (NaN if unseen)."""
    video_index, scores = np.asarray(video_index), np.asarray(scores, np.float64)
    total = np.zeros((num_videos, scores.shape[1]))
    count = np.zeros(num_videos)
    np.add.at(total, video_index, scores)
    np.add.at(count, video_index, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count[:, None]
