"""Video decoding: timestamp gaps are filled as a constant-rate extraction would; real damage stays."""

import av
import numpy as np
import pytest

from lrcn_tf.data import video


def _avi_with_gap(path, n_before=10, gap=2, n_after=10, size=(48, 64)):
    """A constant-rate XVID AVI whose index declares `gap` frame slots with no picture."""
    from fractions import Fraction

    h, w = size
    with av.open(str(path), "w", format="avi") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.codec_tag = "XVID"
        s.bit_rate = 2_000_000
        slots = list(range(n_before)) + list(range(n_before + gap, n_before + gap + n_after))
        for i, pts in enumerate(slots):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 10 * i, np.uint8), "rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 25)
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def test_timestamp_gaps_repeat_the_previous_frame(tmp_path):
    path = _avi_with_gap(tmp_path / "gap.avi")
    with av.open(str(path)) as c:
        declared = c.streams.video[0].frames
        decoded = sum(1 for _ in c.decode(video=0))
    assert (declared, decoded) == (22, 20)  # the index declares 22 frames, 20 decode
    frames, fps = video.decode_video(path, min_size=None)
    assert fps == 25 and len(frames) == 22
    means = frames.mean(axis=(1, 2, 3))
    # slots 10 and 11 have no picture: they repeat slot 9 (brightness 90), as ffmpeg's
    # constant-rate extraction does; slot 12 is the next picture (100).
    np.testing.assert_allclose(means[8:13], [80, 90, 90, 90, 100], atol=3)
    # Resampling by time sees the same 22 slots.
    assert len(video.decode_video(path, fps=25, min_size=None)[0]) == 22
    # A file cut short is still truncated (real damage).
    whole = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole[: len(whole) * 8 // 10])
    with pytest.raises(video.VideoError, match="truncated: decoded 9 of 22"):
        video.decode_video(cut, min_size=None)


def test_fill_gaps_leaves_regular_or_irregular_timing_alone():
    frames = [np.full((1,), i) for i in range(4)]
    assert video.fill_gaps(frames, [0.0, 0.04, 0.08, 0.12], 25.0)[0] == frames
    irregular = [0.0, 0.04, 0.041, 0.12]  # two frames in one slot: not filled
    assert video.fill_gaps(frames, irregular, 25.0)[0] == frames
    filled, times = video.fill_gaps(frames, [0.0, 0.04, 0.16, 0.2], 25.0)
    assert [int(f[0]) for f in filled] == [0, 1, 1, 1, 2, 3]
    np.testing.assert_allclose(times, [0.0, 0.04, 0.08, 0.12, 0.16, 0.2])
