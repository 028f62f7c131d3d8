"""tf.data pipelines on a tiny synthetic_ucf101 made by lrcn_tf.data.embedded.ensure_ucf101."""

import re

import cv2
import numpy as np
import pytest
import tensorflow as tf

from lrcn_tf.data.embedded import ensure_ucf101
from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.data.ucf101 import ops
from lrcn_tf.data.ucf101 import pipeline as up
from tests.test_ucf101_index import one_video_index

TINY = dict(num_classes=2, num_groups=25, clips_per_group=1, workers=1, progress=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ensure_ucf101(tmp_path_factory.mktemp("syn") / "synthetic_ucf101", **TINY)


def test_ensure_is_atomic_and_idempotent(data):
    assert not data.with_name(data.name + ".partial").exists()
    info = ucf101.load_info(data)
    assert (
        info.dataset == "synthetic_ucf101" and info.frame_size == (60, 80) and info.crop_size == 56
    )
    assert info.classes == ("Slowing", "SlowThenFast")
    stamp = (data / "dataset.json").stat().st_mtime_ns
    assert ensure_ucf101(data, **TINY) == data
    assert (data / "dataset.json").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="delete it or use another folder"):
        ensure_ucf101(data, **{**TINY, "seed": 1})


@pytest.mark.parametrize(
    "n,starts",
    [
        (1, [0]),
        (5, [0]),
        (16, [0]),
        (17, [0, 1]),
        (24, [0, 8]),
        (25, [0, 8, 9]),
        (32, [0, 8, 16]),
        (41, [0, 8, 16, 24, 25]),
    ],
)
def test_test_clip_starts(n, starts):
    assert up.test_clip_starts(n) == starts


def test_tf_clip_starts_match_numpy():
    for n in range(1, 50):
        got = ops.clip_starts_tf(tf.constant(n), 16, 8).numpy().tolist()
        assert got == up.test_clip_starts(n), n


@pytest.mark.parametrize("modality,lo,hi", [("rgb", -123.68, 255 - 103.939), ("flow", -128, 127)])
def test_train_clips_shapes_ranges_and_determinism(data, modality, lo, hi):
    x, y = next(iter(up.train_clips(data, 1, modality, batch_size=4, seed=5)))
    assert x.shape == (4, 16, 56, 56, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert lo - 1e-3 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= hi + 1e-3
    assert set(y.numpy()) <= {0, 1}
    # The same seed gives the same stream (each new dataset's first pass; a second pass over
    # one dataset object is reshuffled, as an epoch should be).
    again = [b[0].numpy() for b in up.train_clips(data, 1, modality, batch_size=4, seed=5).take(2)]
    np.testing.assert_array_equal(again[0], x.numpy())
    assert not np.array_equal(again[1], again[0])
    other = next(iter(up.train_clips(data, 1, modality, batch_size=4, seed=6)))[0].numpy()
    assert not np.array_equal(other, again[0])


def test_defect_switches(data):
    base = next(iter(up.train_clips(data, 1, "rgb", batch_size=8, seed=2)))[0].numpy()
    red = next(iter(up.train_clips(data, 1, "rgb", batch_size=8, seed=2, caffe_red_mean=True)))[
        0
    ].numpy()
    np.testing.assert_allclose(base[..., 0] - red[..., 0], 5.0, atol=1e-4)
    np.testing.assert_array_equal(base[..., 1:], red[..., 1:])
    squash = next(
        iter(up.train_clips(data, 1, "rgb", batch_size=8, seed=2, crop_only_when_mirroring=True))
    )[0].numpy()
    same = [np.array_equal(a, b) for a, b in zip(base, squash)]
    assert any(same) and not all(same)  # mirrored clips are cropped as before; the others squashed


def test_train_frames(data):
    x, y = next(iter(up.train_frames(data, 2, "flow", batch_size=6, frames_per_video=2)))
    assert x.shape == (6, 56, 56, 3) and y.shape == (6,)


def test_test_clips_cover_every_video_with_the_protocols_clips(data):
    videos = ucf101.split_videos(data, 3, "test")
    clips = {}
    for b in up.test_clips(data, 3, "flow", batch_size=5):
        assert b["clips"].shape[1:] == (1, 16, 56, 56, 3)
        for i, k in zip(b["video_index"].numpy(), b["clip_index"].numpy()):
            clips.setdefault(int(i), []).append(int(k))
    assert sorted(clips) == list(range(len(videos)))
    for i, v in enumerate(videos):
        assert clips[i] == list(range(len(up.test_clip_starts(v.num_frames - 1))))


def test_ten_crops_centre_and_flow_mirrors(data):
    one = next(iter(up.test_clips(data, 1, "flow", crops="ten")))
    centre = next(iter(up.test_clips(data, 1, "flow")))
    c = one["clips"].numpy()
    assert c.shape == (10, 16, 56, 56, 3)
    np.testing.assert_array_equal(c[4], centre["clips"].numpy()[0])
    for i in range(5):  # mirrored crop: flipped, x inverted: (255 - x) - 128 = -(x - 128) - 1
        np.testing.assert_array_equal(c[5 + i][..., 0], -c[i][:, :, ::-1, 0] - 1)
        np.testing.assert_array_equal(c[5 + i][..., 1:], c[i][:, :, ::-1, 1:])


@pytest.mark.parametrize(
    "modality,crops,flow_mirror",
    [("rgb", "center", "invert"), ("flow", "ten", "invert"), ("flow", "ten", "keep")],
)
def test_per_video_matches_per_clip(data, modality, crops, flow_mirror):
    """A video's clips cropped all at once equal its clips cropped one by one."""
    kw = dict(crops=crops, flow_mirror=flow_mirror)
    whole = next(iter(up.test_clips(data, 2, modality, per_video=True, **kw)))
    parts = [
        e
        for e in up.test_clips(data, 2, modality, **kw)
        if int(e["video_index"]) == int(whole["video_index"])
    ]
    assert whole["clips"].shape[0] == len(parts)
    np.testing.assert_array_equal(
        whole["clips"].numpy(), np.stack([p["clips"].numpy() for p in parts])
    )


def test_videos_per_element_merges_consecutive_videos(data):
    videos = list(up.test_clips(data, 2, "rgb", per_video=True))
    merged = list(up.test_clips(data, 2, "rgb", per_video=True, videos_per_element=3))
    assert len(videos) > 3 and len(merged) == -(-len(videos) // 3)
    for i, m in enumerate(merged):
        group = videos[3 * i : 3 * i + 3]
        np.testing.assert_array_equal(
            m["clips"].numpy(), np.concatenate([v["clips"].numpy() for v in group])
        )
        for key in ("label", "video_index"):  # one per clip now
            want = np.concatenate([np.repeat(v[key].numpy(), len(v["clips"])) for v in group])
            np.testing.assert_array_equal(m[key].numpy(), want)


def test_bad_arguments_are_named(data):
    with pytest.raises(ValueError, match="modality 'depth'"):
        up.train_clips(data, 1, "depth")
    with pytest.raises(ValueError, match="crops 'five'"):
        up.test_clips(data, 1, "rgb", crops="five")
    with pytest.raises(ucf101.UCF101FormatError, match="not a finished"):
        up.train_clips(data / "nowhere", 1, "rgb")


def test_video_scores_average_per_video():
    s = up.video_scores([0, 0, 2], np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8]]), 3)
    np.testing.assert_allclose(s[0], [0.5, 0.5])
    np.testing.assert_allclose(s[2], [0.2, 0.8])
    assert np.isnan(s[1]).all()


@pytest.mark.parametrize("kw", [{}, {"normalised": False, "crop_on_host": False}])
def test_iterator_checkpoint_resumes_the_stream(data, tmp_path, kw):
    """The trainer checkpoints the dataset iterator (shuffled video numbers, batch count,
    prefetched batches); decoding in Python must not prevent it. A pass is 9 batches of 4
    here (36 videos), so the restored stream also crosses into a reshuffled pass."""
    it = iter(up.train_clips(data, 1, "flow", batch_size=4, seed=9, **kw))
    next(it)
    ckpt = tf.train.Checkpoint(iterator=it)
    path = ckpt.save(str(tmp_path / "it"))
    expected = [next(it) for _ in range(12)]
    ckpt.restore(path)
    again = [next(it) for _ in range(12)]
    for a, b in zip(again, expected):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_mirror_switch_only_drops_the_mirroring(data):
    """Same seed, same draws: with mirror=False every clip is the unmirrored twin of the clip
    drawn with mirroring on (synthetic_ucf101 needs this: it has mirror-image class pairs)."""
    kw = dict(batch_size=8, seed=2)
    on = next(iter(up.train_clips(data, 1, "rgb", **kw)))
    off = next(iter(up.train_clips(data, 1, "rgb", mirror=False, **kw)))
    np.testing.assert_array_equal(on[1].numpy(), off[1].numpy())
    kinds = []
    for a, b in zip(on[0].numpy(), off[0].numpy()):
        if np.array_equal(a, b):
            kinds.append("same")
        else:
            np.testing.assert_allclose(a, b[:, :, ::-1, :], atol=1e-5)
            kinds.append("mirrored")
    assert set(kinds) == {"same", "mirrored"}


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_uint8_clips_normalised_in_the_step_equal_the_float_path(data, modality):
    """normalised=False ships uint8 (crop, mirror, flow x inverted); `normalise` then gives
    the host path's float32 exactly, for any scale (both compute in float32)."""
    for scale, red in ((1.0, False), (1 / 64, True), (0.37, False)):
        kw = dict(batch_size=6, seed=4, scale=scale, caffe_red_mean=red)
        a = next(iter(up.train_clips(data, 1, modality, **kw)))
        b = next(iter(up.train_clips(data, 1, modality, normalised=False, **kw)))
        assert b[0].dtype == tf.uint8
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
        got = np.asarray(up.normalise(b[0], modality, scale=scale, caffe_red_mean=red))
        np.testing.assert_array_equal(got, a[0].numpy())
    frames = next(iter(up.train_frames(data, 1, modality, batch_size=5, normalised=False)))
    assert frames[0].shape == (5, 56, 56, 3) and frames[0].dtype == tf.uint8


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_crop_on_the_accelerator_equals_the_host_path(data, modality):
    """crop_on_host=False ships whole uint8 frames and the draws; `crop_and_normalise` then
    gives the host path's float32 (crop, mirror, flow x inverted, mean, scale)."""
    for scale, red in ((1.0, False), (1 / 64, True)):
        kw = dict(seed=4, scale=scale, caffe_red_mean=red)
        a = next(iter(up.train_clips(data, 1, modality, batch_size=6, **kw)))
        x, crops, y = next(
            iter(
                up.train_clips(
                    data, 1, modality, batch_size=6, normalised=False, crop_on_host=False, **kw
                )
            )
        )
        assert x.shape == (6, 16, 60, 80, 3) and x.dtype == tf.uint8
        assert set(crops.numpy()[:, 2]) == {0, 1}  # both mirrored and plain clips
        np.testing.assert_array_equal(y.numpy(), a[1].numpy())
        got = up.crop_and_normalise(x, crops, 56, modality, scale=scale, caffe_red_mean=red)
        np.testing.assert_array_equal(np.asarray(got), a[0].numpy())
    a = next(iter(up.train_frames(data, 2, modality, batch_size=5, frames_per_video=2)))
    x, crops, y = next(
        iter(
            up.train_frames(
                data,
                2,
                modality,
                batch_size=5,
                frames_per_video=2,
                normalised=False,
                crop_on_host=False,
            )
        )
    )
    assert x.shape == (5, 60, 80, 3)
    np.testing.assert_array_equal(
        np.asarray(up.crop_and_normalise(x, crops, 56, modality)), a[0].numpy()
    )


def test_crop_on_the_accelerator_refuses_what_it_cannot_do(data):
    for kw, named in (
        ({}, "normalised=True"),
        ({"normalised": False, "crop_only_when_mirroring": True}, "crop_only_when_mirroring=True"),
    ):
        with pytest.raises(ValueError, match=f"does not go with {re.escape(named)}"):
            up.train_clips(data, 1, "rgb", crop_on_host=False, **kw)


def test_crop_and_normalise_by_hand():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 2, 9, 11, 3), np.uint8)
    crops = np.array([[0, 0, 0], [2, 4, 1], [1, 3, 1]], np.int32)
    got = np.asarray(up.crop_and_normalise(x, crops, 7, "flow", scale=0.5))
    for i, (y0, x0, flip) in enumerate(crops):
        want = x[i, :, y0 : y0 + 7, x0 : x0 + 7].astype(np.float32)
        if flip:
            want = want[:, :, ::-1]
            want[..., 0] = 255 - want[..., 0]
        np.testing.assert_array_equal(got[i], (want - 128) * 0.5)
    rgb = np.asarray(up.crop_and_normalise(x[:, 0], crops, 7, "rgb"))  # frames [B, H, W, 3]
    np.testing.assert_allclose(rgb[1], x[1, 0, 2:9, 4:11][:, ::-1] - np.float32(up.RGB_MEAN))


def test_output_buffers_are_aligned_and_reused_only_once_released():
    pool = ops.OutputBuffers(limit=2)
    a = pool.empty((3, 5), np.float32)
    b = pool.empty((3, 5), np.float32)
    assert a.ctypes.data % 64 == 0 and b.ctypes.data % 64 == 0
    assert a.ctypes.data != b.ctypes.data  # a is alive: not handed out again
    address = a.ctypes.data
    del a
    c = pool.empty((3, 5), np.float32)
    assert c.ctypes.data == address  # released: reused
    assert pool.empty((3, 5), np.uint8).ctypes.data not in (address, b.ctypes.data)
    d = pool.empty((3, 5), np.float32)  # the pool is full and busy: a plain new array
    assert d.ctypes.data not in (c.ctypes.data, b.ctypes.data)
    small = ops.OutputBuffers(max_bytes=100)  # 60 bytes kept; a second would pass 100
    held = [small.empty((15,), np.float32) for _ in range(3)]
    assert len(small._slots) == 1 and len({h.ctypes.data for h in held}) == 3


def test_recycled_batches_are_never_overwritten_while_held(data):
    """TensorFlow holds the pooled arrays without copying them; batches kept by the caller
    must keep their values while the pipeline goes on producing."""
    it = iter(up.train_clips(data, 1, "flow", batch_size=4, seed=3, normalised=False))
    held = [next(it)[0] for _ in range(4)]
    copies = [h.numpy().copy() for h in held]
    for _ in range(24):
        next(it)
    for h, c in zip(held, copies):
        np.testing.assert_array_equal(h.numpy(), c)


def _jpeg(h, w, seed):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)
    return np.frombuffer(tf.io.encode_jpeg(img).numpy(), np.uint8)


def _cv2_rgb(buf):
    """An independent reference decode: cv2.imdecode (libjpeg-turbo, accurate IDCT) to RGB."""
    return cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR_RGB)


def test_reused_scratch_grows_and_bad_jpegs_give_none():
    """decode_rgb_reused decodes into one scratch array per thread: a larger frame grows it,
    a smaller one reuses it, and what does not decode gives None (as cv2.imdecode does)."""
    import threading

    results = {}

    def run():  # a thread of its own: a fresh scratch
        small, big = _jpeg(8, 16, 0), _jpeg(24, 32, 1)
        a = ops.decode_rgb_reused(small).copy()
        b = ops.decode_rgb_reused(big)
        results["grown"] = ops._SCRATCH.frame.size
        results["views"] = b.ctypes.data == ops._SCRATCH.frame.ctypes.data
        c = ops.decode_rgb_reused(small)
        results["kept"] = ops._SCRATCH.frame.size
        results["equal"] = np.array_equal(a, c) and np.array_equal(c, _cv2_rgb(small))
        results["bad"] = [
            ops.decode_rgb_reused(x) for x in (np.zeros(50, np.uint8), big[: len(big) // 2])
        ]

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert results["grown"] == 24 * 32 * 3 and results["kept"] == 24 * 32 * 3
    assert results["views"] and results["equal"]
    assert results["bad"] == [None, None]


@pytest.mark.parametrize("flip", [0, 1])
def test_undecodable_or_wrong_size_frames_are_named(flip, tmp_path):
    good, small, big = (_jpeg(h, w, 0).tobytes() for h, w in ((60, 80), (40, 40), (120, 160)))
    index = one_video_index(tmp_path, [good, b"garbage", small, big])
    videos, params = np.array([0]), np.array([[0, 0, flip]], np.int32)
    empty = ops.OutputBuffers().empty

    def clip(frames, crop=56):
        return ops._clips_uint8(
            index, videos, np.array([frames]), params, crop, False, False, empty
        )

    assert clip([0, 0]).shape == (1, 2, 56, 56, 3)
    where = r"A/v_A_g01_c01.avi \(in .*s0.tfrecord\), frame"
    with pytest.raises(ValueError, match=where + " 1: not a decodable JPEG"):
        clip([0, 1])
    with pytest.raises(
        ValueError, match=where + " 2: 40x40 pixels, but the video's record says 60x80"
    ):
        clip([0, 2])
    with pytest.raises(
        ValueError, match=where + " 3: 120x160 pixels, but the video's record says 60x80"
    ):
        clip([3, 0])
    with pytest.raises(ValueError, match=where + " 0: 60x80 pixels, too small for a 64x64 crop"):
        clip([0, 0], crop=64)

    def whole(frames):  # crop_on_host=False: whole frames decoded straight into the batch
        return ops._clips_whole(index, videos, np.array([frames]), (60, 80), empty)

    assert whole([0, 0]).shape == (1, 2, 60, 80, 3)
    np.testing.assert_array_equal(whole([0])[0, 0], _cv2_rgb(good))
    with pytest.raises(ValueError, match=where + " 1: not a decodable JPEG"):
        whole([0, 1])
    for k, size in ((2, "40x40"), (3, "120x160")):
        with pytest.raises(
            ValueError, match=f"{where} {k}: {size} pixels, but the video's record says 60x80"
        ):
            whole([0, k])


def test_decoded_frames_give_the_decoders_bytes_and_keep_whole_files_only(data, monkeypatch):
    """Frames copied from `DecodedFrames` equal fresh decodes; a shard file is kept whole or
    not at all (within the budget), and a bad LRCN_FRAME_CACHE_MB is named."""
    src = ops.ShardSource(data, 1, "train", "rgb")
    index = src.frame_index()
    rng = np.random.default_rng(0)
    videos = rng.integers(0, len(index.names), 6).astype(np.int32)
    frames = np.stack([rng.integers(0, index.counts[v] - 4) + np.arange(4) for v in videos])
    empty = ops.OutputBuffers().empty
    hw = tuple(index.hw[0])
    fresh = ops._clips_whole(index, videos, frames, hw, empty).copy()
    cache = ops.DecodedFrames(sum(index.decoded_bytes))
    first = ops._clips_whole(index, videos, frames, hw, empty, cache).copy()  # decodes, keeps
    kept = len(cache._frames)
    assert kept == len({(v, f) for v, row in zip(videos, frames) for f in row})
    second = ops._clips_whole(index, videos, frames, hw, empty, cache)  # copies
    np.testing.assert_array_equal(first, fresh)
    np.testing.assert_array_equal(second, fresh)
    assert len(cache._frames) == kept
    # Room for one file less than all of them: the last file asked for is not admitted.
    small = ops.DecodedFrames(sum(index.decoded_bytes) - min(index.decoded_bytes))
    keys = [index.file_keys[f] for f in range(len(index.files))]
    assert [small.admit(k, n) for k, n in zip(keys, index.decoded_bytes)][:-1] == [True] * (
        len(keys) - 1
    )
    assert not small.admit(keys[-1], index.decoded_bytes[-1])
    assert small.admit(keys[0], index.decoded_bytes[0])  # an admitted file stays admitted
    off = ops.DecodedFrames(0)
    np.testing.assert_array_equal(ops._clips_whole(index, videos, frames, hw, empty, off), fresh)
    assert not off._frames
    monkeypatch.setenv("LRCN_FRAME_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="LRCN_FRAME_CACHE_MB='lots'"):
        ops._cache_size()
    monkeypatch.setenv("LRCN_FRAME_CACHE_MB", "0.5")
    assert ops._cache_size() == 1 << 19


def test_crop_and_normalise_without_mirroring_skips_only_what_is_not_asked():
    """mirror=False (every flag clear, as the pipelines make them without mirroring) gives the
    values of the conditional path."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (4, 3, 9, 11, 3), np.uint8)
    crops = np.array([[0, 0, 0], [2, 4, 0], [1, 3, 0], [2, 0, 0]], np.int32)
    for modality in ("rgb", "flow"):
        a = up.crop_and_normalise(x, crops, 7, modality, scale=0.25)
        b = up.crop_and_normalise(x, crops, 7, modality, scale=0.25, mirror=False)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
