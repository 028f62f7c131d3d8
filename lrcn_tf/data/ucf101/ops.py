"""Building blocks of the UCF-101 tf.data pipelines: reading shards, drawing clips, decoding,
cropping, mirroring and mean subtraction (used by ucf101_pipeline.py)."""

from __future__ import annotations

import threading
import weakref

import cv2
import keras
import numpy as np
import simplejpeg
import tensorflow as tf

from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.data.ucf101.index import FrameIndex
from lrcn_tf.errors import UserError

# Means of the original (BGR 103.939, 116.779, 123.68) in our RGB channel order.
RGB_MEAN = (123.68, 116.779, 103.939)
RGB_MEAN_DEFECT = (128.68, 116.779, 103.939)  # the original Python data layer's red mean
FLOW_MEAN = (128.0, 128.0, 128.0)
AUTOTUNE = tf.data.AUTOTUNE
_SCRATCH = threading.local()


def decode_rgb_reused(buf, bgr: bool = False) -> np.ndarray | None:
    """A JPEG buffer -> RGB (or BGR) uint8 [H, W, 3] in this thread's reused scratch memory,
    valid until the thread's next call (copy what you keep); None if it does not decode.

    simplejpeg calls libjpeg-turbo's TurboJPEG API, like OpenCV's decoder with the same
    (accurate) IDCT and chroma upsampling, and gives the same pixels. Decoding into memory
    that is already mapped is what makes it faster: a fresh 240x320 frame (225 KiB) is
    above malloc's mmap threshold, so each one costs the kernel a page fault and a page
    clearing per 4 KiB (docs/performance.md has what that costs).
    """
    colorspace = "BGR" if bgr else "RGB"
    scratch = getattr(_SCRATCH, "frame", None)
    if scratch is not None:
        try:
            return simplejpeg.decode_jpeg(buf, colorspace, buffer=scratch)
        except ValueError:
            pass  # not a JPEG, or larger than the scratch memory
    try:
        h, w = simplejpeg.decode_jpeg_header(buf)[:2]
        return simplejpeg.decode_jpeg(buf, colorspace, buffer=_scratch(h * w * 3))
    except ValueError:
        return None


def _scratch(size: int) -> np.ndarray:
    """This thread's scratch memory for decoded frames, grown to at least `size` bytes."""
    scratch = getattr(_SCRATCH, "frame", None)
    if scratch is None or scratch.size < size:
        scratch = _SCRATCH.frame = np.empty(size, np.uint8)
    return scratch


def means(modality: str, caffe_red_mean: bool) -> tuple[float, float, float]:
    if modality == "flow":
        return FLOW_MEAN
    return RGB_MEAN_DEFECT if caffe_red_mean else RGB_MEAN


def normalise(x, mean, scale: float = 1.0):
    """uint8 -> float32, mean subtracted, times `scale`: the one normalisation of every
    UCF-101 path (keras.ops, so it runs in tf.data and in a compiled train step alike).

    Images [..., H, W, C] of a static size are subtracted as rows, each image's H * W * C
    values against the mean tiled to that length: the same values, at half the CPU of
    broadcasting the C means over all axes in TensorFlow (2.6 against 5.5 ms for a batch of
    16 x 16 56x56 frames, docs/performance.md).
    """
    x = keras.ops.cast(x, "float32")
    if None in x.shape[-3:] or len(x.shape) < 4:
        x = x - keras.ops.convert_to_tensor(mean, "float32")
    else:
        h, w, c = x.shape[-3:]
        row = np.tile(np.asarray(mean, np.float32), h * w)
        flat = keras.ops.reshape(x, (-1, h * w * c)) - keras.ops.convert_to_tensor(row)
        x = keras.ops.reshape(flat, keras.ops.shape(x))
    return x * scale if scale != 1.0 else x


def mirror(x, modality: str):
    """Mirrors uint8 images [..., H, W, 3] left-right; flow x (channel 0) becomes 255 - x."""
    x = tf.reverse(x, axis=[-2])
    return invert_flow_x(x) if modality == "flow" else x


class ShardSource:
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
        shards = sorted(s for s, vids in self.info.shards.items() if names & set(vids))
        self.files = [str(ucf101.shard_file(data_dir, modality, s)) for s in shards]
        self.mixed = any(v not in names for s in shards for v in self.info.shards[s])
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([v.name for v in self.videos]),
                tf.range(len(self.videos), dtype=tf.int32),
            ),
            default_value=-1,
        )
        self.modality, self.data_dir = modality, data_dir

    def frame_index(self):
        """Where each of this split's videos' JPEGs lies in the shard files (for training)."""
        names = [v.name for v in self.videos]
        return FrameIndex(self.data_dir, self.info.shards, names, self.modality)

    def _serialized(self, shuffle: bool, seed: int | None, repeat: bool):
        files = tf.data.Dataset.from_tensor_slices(self.files)
        if shuffle:
            files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            files = files.repeat()
        return files.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(self.files), 8),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )

    def _features(self):
        context = {
            "video": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "height": tf.io.FixedLenFeature([], tf.int64),
            "width": tf.io.FixedLenFeature([], tf.int64),
        }
        # Only this modality's feature list is materialised; the other is skipped.
        return context, {self.modality: tf.io.FixedLenSequenceFeature([], tf.string)}

    def records(self, shuffle: bool, seed: int | None, repeat: bool):
        """Parsed records: {"jpegs": string [N], "label", "index", "hw": int32 [2]}."""
        ds = self._serialized(shuffle, seed, repeat).map(self._parse, num_parallel_calls=AUTOTUNE)
        if self.mixed:  # a shard also holds videos of the other subset
            ds = ds.filter(lambda r: r["index"] >= 0)
        return ds

    def _parse(self, serialized):
        context, lists = tf.io.parse_single_sequence_example(serialized, *self._features())
        return {
            "jpegs": lists[self.modality],
            "label": tf.cast(context["label"], tf.int32),
            "index": self.table.lookup(context["video"]),
            "hw": tf.cast(tf.stack([context["height"], context["width"]]), tf.int32),
        }


def uniform_int(u, k):
    """floor(u * k) for u in [0, 1): an int in [0, k) (elementwise)."""
    return tf.minimum(tf.cast(u * tf.cast(k, tf.float32), tf.int32), k - 1)


def draw_crops(u, hw, crop: int):
    """Crop corners and mirror flags from uniforms u [..., 3]: int32 [..., 3] = (y, x, mirrored)."""
    y = uniform_int(u[..., 0], hw[..., 0] - crop + 1)
    x = uniform_int(u[..., 1], hw[..., 1] - crop + 1)
    return tf.stack([y, x, tf.cast(u[..., 2] < 0.5, tf.int32)], axis=-1)


def aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
    """np.empty whose data starts on an `align`-byte boundary.

    TensorFlow takes over an aligned numpy buffer returned by tf.numpy_function; an
    unaligned one (numpy's large allocations sit 16 bytes past a page) is copied, which
    for a batch of float clips costs about as much as cropping it.
    """
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + align, np.uint8)
    offset = -raw.ctypes.data % align
    return raw[offset : offset + size].view(dtype).reshape(shape)


class OutputBuffers:
    """Aligned output arrays for tf.numpy_function, reused once TensorFlow has let go of them.

    TensorFlow takes over an aligned array without copying it and holds a reference to it
    until the tensor dies. A fresh array of megabytes per batch costs the kernel a page fault
    and a page clearing for every 4 KiB (docs/performance.md). Each
    call hands out a new view of a pooled buffer and keeps only a weak reference to the view:
    once the view is gone, no tensor can reach the buffer, and the next call reuses it. At
    most `limit` buffers and `max_bytes` are kept (a deep prefetch of float32 clips at
    240x320, 237 MB a batch, would otherwise pin gigabytes).
    """

    def __init__(self, limit: int = 16, max_bytes: int = 1 << 30):
        self._lock = threading.Lock()
        self._slots: list[tuple[np.ndarray, weakref.ref]] = []
        self._limit, self._max_bytes = limit, max_bytes

    def empty(self, shape, dtype) -> np.ndarray:
        shape, dtype = tuple(shape), np.dtype(dtype)
        with self._lock:
            for i, (base, ref) in enumerate(self._slots):
                if ref() is None and base.shape == shape and base.dtype == dtype:
                    view = base.view()
                    self._slots[i] = (base, weakref.ref(view))
                    return view
            base = aligned_empty(shape, dtype)
            view = base.view()
            kept = sum(b.nbytes for b, _ in self._slots) + base.nbytes
            if len(self._slots) < self._limit and kept <= self._max_bytes:
                self._slots.append((base, weakref.ref(view)))  # beyond: plain arrays
            return view


def _frames(index, videos, frames, params, crop: int, squash: bool):
    """Decodes clips frame by frame with simplejpeg, reading each JPEG where it lies in its
    shard (`index`, a ucf101_index.FrameIndex).

    Yields (clip, frame, rows, mirrored): `rows` is the crop window (or, for the squash
    defect, the whole frame resized) as uint8 [crop, 3 * crop], one row of bytes per pixel
    row. A mirrored frame is decoded as BGR: reversing each row's bytes then reverses the
    pixel order and turns BGR into RGB in one pass (`_mirror`), about three times faster
    than mirroring RGB pixels. `rows` may point into the decoder's scratch memory: the
    caller copies it before asking for the next frame.

    simplejpeg decodes each frame of a clip into the same scratch memory, so the crop window
    is cut once per clip and the loop does little else: at 60x80 the Python in it, run
    while holding the GIL, is what keeps the decoding threads from running side by side.
    """
    datas, clip_spans = index.clips(videos, frames)
    hws = index.hw[videos].tolist()  # the batch's videos only: this runs once a batch
    for i, (video, (y, x, flip)) in enumerate(zip(videos.tolist(), params.tolist())):
        data, spans, (h, w) = datas[i], clip_spans[i], hws[i]
        if h < y + crop or w < x + crop:
            raise ValueError(
                f"{index.where(video, int(frames[i][0]))}: {h}x{w} pixels, too small for a "
                f"{crop}x{crop} crop at ({y}, {x})"
            )
        if not squash:
            scratch, colorspace = _scratch(h * w * 3), "BGR" if flip else "RGB"
            window = scratch[: h * w * 3].reshape(h, 3 * w)[y : y + crop, 3 * x : 3 * (x + crop)]
            for k, (begin, end) in enumerate(spans):
                try:
                    img = simplejpeg.decode_jpeg(data[begin:end], colorspace, buffer=scratch)
                except ValueError:  # not a JPEG, or larger than the video's frame size
                    img = decode_rgb_reused(data[begin:end])
                if img is None or img.shape[0] != h or img.shape[1] != w:
                    raise _bad_frame(index, video, int(frames[i][k]), img, (h, w))
                yield i, k, window, flip
            continue
        for k, (begin, end) in enumerate(spans):  # the squash defect: whole frames
            img = decode_rgb_reused(data[begin:end], flip)
            if img is None or img.shape[0] != h or img.shape[1] != w:
                raise _bad_frame(index, video, int(frames[i][k]), img, (h, w))
            if squash and not flip:  # the original's defect: resize the whole frame
                img = cv2.resize(img, (crop, crop), interpolation=cv2.INTER_LINEAR)
                yield i, k, img.reshape(crop, 3 * crop), flip
                continue
            yield i, k, img.reshape(h, 3 * w)[y : y + crop, 3 * x : 3 * (x + crop)], flip


def _bad_frame(index, video: int, frame: int, img, hw) -> ValueError:
    where = index.where(video, frame)
    if img is None:
        return ValueError(f"{where}: not a decodable JPEG")
    h, w = img.shape[:2]
    return ValueError(f"{where}: {h}x{w} pixels, but the video's record says {hw[0]}x{hw[1]}")


def _mirror(rows, dst=None):
    """The BGR byte rows of `_frames` -> the RGB rows mirrored (into `dst` if given)."""
    return cv2.flip(rows, 1, dst=dst)


def _clips_uint8(index, videos, frames, params, crop, flow, squash, empty):
    """Clips (videos [B], frame numbers [B, T], each clip's (y, x, mirrored) [B, 3]) -> uint8
    [B, T, crop, crop, 3]: cropped
    and mirrored (flow x = 255 - x when mirrored); the mean is subtracted later, on the
    accelerator (`normalise`), so the host writes and ships a quarter of the bytes."""
    out = empty((*frames.shape, crop, crop, 3), np.uint8)
    rows_out = out.reshape(*frames.shape, crop, 3 * crop)
    invert_x = (255.0, 0.0, 0.0, 0.0)  # |x - 255| = 255 - x; |v - 0| = v
    for i, k, rows, flip in _frames(index, videos, frames, params, crop, squash):
        if flip:
            _mirror(rows, rows_out[i, k])
            if flow:
                cv2.absdiff(out[i, k], invert_x, dst=out[i, k])
        else:
            np.copyto(rows_out[i, k], rows)
    return out


def _clips_float(index, videos, frames, params, crop, flow, squash, mean, scale, empty):
    """The clips of `_clips_uint8` -> float32, mean subtracted and scaled on the host: the
    same values as `normalise` gives on the accelerator (float32 arithmetic throughout)."""
    clips = _clips_uint8(index, videos, frames, params, crop, flow, squash, np.empty)
    out = empty(clips.shape, np.float32)
    np.subtract(clips, mean, out=out, dtype=np.float32)
    if scale != 1.0:
        np.multiply(out, np.float32(scale), out=out)
    return out


def decode_clips_host(
    index,
    videos,
    frames,
    params,
    crop: int,
    modality: str,
    squash: bool,
    mean,
    scale,
    normalised=True,
):
    """A batch of clips decoded in Python by simplejpeg, their JPEGs read where they lie in
    the shards (`index`, a FrameIndex): videos int32 [B], frame numbers int32 [B, T], crops
    [B, 3] -> [B, T, c, c, 3], float32 mean-subtracted and scaled, or (normalised=False)
    uint8 for `normalise` to finish on the accelerator.

    One tf.numpy_function call per batch keeps the per-frame overhead small; the decoder
    (libjpeg-turbo with SIMD) releases the GIL, so batches decode in parallel. The function
    only reads finished shard files, so it is declared stateless and iterators that use it
    can be checkpointed.
    """
    flow, empty = modality == "flow", OutputBuffers().empty
    if normalised:
        mean = np.asarray(mean, np.float32)

        def fn(v, f, p):
            return _clips_float(index, v, f, p, crop, flow, squash, mean, scale, empty)
    else:

        def fn(v, f, p):
            return _clips_uint8(index, v, f, p, crop, flow, squash, empty)

    dtype = tf.float32 if normalised else tf.uint8
    out = tf.numpy_function(fn, [videos, frames, params], dtype, stateful=False)
    return tf.ensure_shape(out, [*frames.shape, crop, crop, 3])


class DecodedFrames:
    """Decoded frames kept for the rest of the process, a shard file's frames or none of them.

    Training draws each frame of the embedded data about ten times per model and Table 1
    trains 18 models on the same videos, so every decode after a frame's first is wasted
    work. A shard file is admitted when all of its frames, decoded, fit in what is left of
    `max_bytes` (`LRCN_FRAME_CACHE_MB`, default 1024; 0 turns the cache off): the embedded
    synthetic_ucf101 (about 270 MB a modality) fits, real UCF-101 (hundreds of GB) does not
    and is decoded every time as before. A frame is stored the first time it is decoded, as
    the decoder wrote it, so a cached frame has the same bytes a fresh decode gives.
    Threads share it: a dict's get and set are atomic, and two threads that decode the same
    frame at once store the same bytes.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes, self.reserved = max_bytes, 0
        self._admitted: set = set()
        self._frames: dict = {}
        self._lock = threading.Lock()

    def admit(self, key, decoded_bytes: int) -> bool:
        """Whether the frames of the shard file `key` are kept (decided once per file)."""
        with self._lock:
            if key in self._admitted:
                return True
            if self.reserved + decoded_bytes > self.max_bytes:
                return False
            self._admitted.add(key)
            self.reserved += decoded_bytes
            return True

    def get(self, key):
        return self._frames.get(key)

    def put(self, key, frame: np.ndarray) -> None:
        self._frames[key] = frame.copy()


def _cache_size() -> int:
    import os

    value = os.environ.get("LRCN_FRAME_CACHE_MB", "1024")
    try:
        megabytes = float(value)
    except ValueError:
        raise UserError(f"LRCN_FRAME_CACHE_MB={value!r}: give a number of megabytes") from None
    return int(max(megabytes, 0.0) * (1 << 20))


_DECODED: DecodedFrames | None = None


def decoded_frames() -> DecodedFrames:
    """The process's `DecodedFrames` (sized by LRCN_FRAME_CACHE_MB when first asked for)."""
    global _DECODED
    if _DECODED is None:
        _DECODED = DecodedFrames(_cache_size())
    return _DECODED


def _clips_whole(index, videos, frames, hw, empty, cache: DecodedFrames | None = None):
    """Clips (videos [B], frame numbers [B, T]) -> their whole frames, uint8 [B, T, H, W, 3]
    (hw = (H, W), every video's size): each frame decoded straight into the output, so the
    host does nothing else per frame (crop and mirror follow on the accelerator), or copied
    from `cache` when it holds it (and stored there after decoding when its file is admitted)."""
    h, w = hw
    out = empty((*frames.shape, h, w, 3), np.uint8)
    flat = out.reshape(-1, h * w * 3)
    datas, clip_spans = index.clips(videos, frames)
    files = index.file_of[np.asarray(videos)].tolist()
    j = 0
    for i, (data, spans) in enumerate(zip(datas, clip_spans)):
        key = index.file_keys[files[i]]
        keep = cache is not None and cache.admit(key, index.decoded_bytes[files[i]])
        for k, (begin, end) in enumerate(spans):
            if keep:
                frame = cache.get((key, begin))
                if frame is not None:
                    np.copyto(flat[j], frame)
                    j += 1
                    continue
            try:
                img = simplejpeg.decode_jpeg(data[begin:end], "RGB", buffer=flat[j])
            except ValueError:  # not a JPEG, or larger than H x W: find out which
                img = decode_rgb_reused(data[begin:end])
            if img is None or img.shape[0] != h or img.shape[1] != w:
                raise _bad_frame(index, int(videos[i]), int(frames[i][k]), img, (h, w))
            if keep:
                cache.put((key, begin), flat[j])
            j += 1
    return out


def decode_whole_host(index, videos, frames, hw, cache: DecodedFrames | None = None):
    """A batch of clips' whole frames, decoded in Python by simplejpeg straight into the
    batch (or copied from `cache`, e.g. the process's `decoded_frames()`): videos int32 [B],
    frame numbers int32 [B, T] -> uint8 [B, T, H, W, 3]."""
    empty = OutputBuffers().empty

    def fn(v, f):
        return _clips_whole(index, v, f, hw, empty, cache)

    out = tf.numpy_function(fn, [videos, frames], tf.uint8, stateful=False)
    return tf.ensure_shape(out, [*frames.shape, *hw, 3])


def _decode_all(jpegs, decode) -> np.ndarray:
    """[N] JPEG strings -> uint8 [N, H, W, 3], each frame copied once into the output (the
    decoder's own memory may be reused)."""
    out = None
    for k, j in enumerate(jpegs):
        img = decode(j)
        if img is None:
            raise ValueError(f"frame {k} of the video: not a decodable JPEG")
        if out is None:
            out = np.empty((len(jpegs), *img.shape), np.uint8)
        elif img.shape != out.shape[1:]:
            raise ValueError(f"frame {k} of the video: {img.shape}, frame 0: {out.shape[1:]}")
        out[k] = img
    return out


def decode_video(jpegs):
    """All frames of a video (simplejpeg): [N] strings -> uint8 [N, H, W, 3]."""
    out = tf.numpy_function(
        lambda j: _decode_all(j, decode_rgb_reused), [jpegs], tf.uint8, stateful=False
    )
    return tf.ensure_shape(out, [None, None, None, 3])


def clip_starts_tf(n, clip_length: int, stride: int, final_clip_twice: bool = False):
    """TF twin of ucf101_pipeline.test_clip_starts."""
    last = tf.maximum(n - clip_length, 0)
    if final_clip_twice:  # the original script: every start in range(0, n, stride), those
        starts = tf.range(0, n, stride)  # that would run past the end moved to the last clip
        return tf.where(starts + clip_length < n, starts, last)
    starts = tf.range(0, last + 1, stride)
    return tf.cond(starts[-1] < last, lambda: tf.concat([starts, [last]], 0), lambda: starts)


def invert_flow_x(x):
    """uint8 flow images [..., 3] with x (channel 0) -> 255 - x, the other channels kept: what
    mirroring does to a flow image (x -> -x), exact in uint8. The one tensor version (the
    host paths write the same values with OpenCV while they copy)."""
    inverted = keras.ops.convert_to_tensor(255, "uint8") - x[..., :1]
    return keras.ops.concatenate([inverted, x[..., 1:]], axis=-1)


def test_crops(clip, crop: int, crops: str, modality: str, invert_mirrored_flow: bool = True):
    """[..., T, H, W, 3] uint8 -> [..., C, T, crop, crop, 3]: centre, or 4 corners + centre +
    mirrors (a clip, or several clips at once).

    `invert_mirrored_flow=False` reproduces the original LRCN test script's defect: mirrored
    flow crops keep their x channel (a mirrored flow image should have x -> 255 - x).
    """
    h, w = tf.shape(clip)[-3], tf.shape(clip)[-2]
    cy, cx = (h - crop) // 2, (w - crop) // 2
    if crops == "center":
        corners = [(cy, cx)]
    else:
        corners = [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop), (cy, cx)]
    out = [clip[..., y : y + crop, x : x + crop, :] for y, x in corners]
    if crops == "ten":
        flip_modality = modality if invert_mirrored_flow else "rgb"
        out += [mirror(c, flip_modality) for c in out]
    return tf.stack(out, axis=-5)
