"""Video decoding with PyAV (its bundled FFmpeg), and writing the release's XVID AVIs.

tensorflow-io's FFmpeg ops do not load with TF 2.21 (README, "Why not tensorflow-io"), so
frames are decoded here, in the prepare workers, and stored as JPEGs.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np

# The original resized frames to 240x320 (H x W) when they were smaller (all UCF-101 videos
# are 320x240, so this is a no-op on the real data).
ORIGINAL_MIN_SIZE = (240, 320)


class VideoError(Exception):
    """A video that cannot be used; str() is the short reason written to manifest.csv."""


def decode_video(
    path: str | Path,
    fps: float | None = None,
    min_size: tuple[int, int] | None = ORIGINAL_MIN_SIZE,
    max_missing: float = 0.02,
) -> tuple[np.ndarray, float]:
    """Decodes every frame of a video as RGB.

    Args:
      path: the video file.
      fps: resample to this rate by timestamps (each output time takes the latest frame
        shown at that time, as FFmpeg's fps filter does, so raising the rate duplicates
        frames); None keeps the native rate.
      min_size: (H, W); frames smaller in either dimension are resized to exactly this
        (the original's rule). None keeps the decoded size.
      max_missing: fraction of the frames the container declares that may fail to decode
        before the video counts as truncated (at least one frame is always allowed).

    Timestamp gaps (a constant-rate file whose index declares frame slots with no picture:
    dropped-frame chunks, XVID N-VOPs, capture gaps) are filled by repeating the previous
    frame, as a constant-rate extraction with FFmpeg does, before the truncation check; so
    such a video is complete, and `truncated` is kept for real damage (a file cut short).

    Returns:
      (frames uint8 [N, H, W, 3], native frames per second).

    Raises:
      VideoError: missing, empty, unreadable, corrupt, truncated or frameless video.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoError("missing")
    if os.path.getsize(path) == 0:
        raise VideoError("empty file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise VideoError(f"unreadable: {_short(e)}") from None
    with container:
        if not container.streams.video:
            raise VideoError("no video stream")
        stream = container.streams.video[0]
        native = float(stream.average_rate or stream.guessed_rate or 25.0)
        declared = int(stream.frames or 0)
        frames, times = [], []
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                t = frame.time if frame.time is not None else len(times) / native
                times.append(t)
        except av.FFmpegError as e:
            raise VideoError(f"corrupt after {len(frames)} frames: {_short(e)}") from None
    if not frames:
        raise VideoError("no frames decoded")
    frames, times = fill_gaps(frames, times, native)
    if declared and declared - len(frames) > max(1, max_missing * declared):
        raise VideoError(f"truncated: decoded {len(frames)} of {declared} frames")
    if fps:
        frames = _resample(frames, np.asarray(times) - times[0], float(fps))
    video = np.stack(frames)
    if min_size is not None:
        video = _resize_if_smaller(video, min_size)
    return video, native


def fill_gaps(frames: list, times: list[float], rate: float) -> tuple[list, list[float]]:
    """Repeats the previous frame in the frame slots that timestamps skip (constant rate).

    Each frame's slot is round((t - t0) * rate); a slot with no frame shows the last frame
    before it. Timestamps that are not strictly increasing by slot (variable-rate or damaged
    timing) are left as they are.

    Returns:
      (frames, times), one per slot from the first frame to the last.
    """
    if len(frames) < 2 or rate <= 0:
        return frames, times
    t = np.asarray(times, np.float64) - times[0]
    slots = np.round(t * rate).astype(np.int64)
    if slots[-1] == len(frames) - 1 or np.any(np.diff(slots) <= 0):
        return frames, times
    idx = np.searchsorted(slots, np.arange(slots[-1] + 1), side="right") - 1
    return [frames[i] for i in idx], list(times[0] + np.arange(slots[-1] + 1) / rate)


def _short(e: Exception) -> str:
    return str(e).replace("\n", " ").replace(",", ";")[:120]


def _resample(frames: list[np.ndarray], times: np.ndarray, fps: float) -> list[np.ndarray]:
    duration = times[-1] + (times[-1] / max(len(times) - 1, 1) if len(times) > 1 else 1 / fps)
    n_out = max(1, int(round(duration * fps)))
    out_times = np.arange(n_out) / fps
    # The frame shown at time t is the last one whose timestamp is <= t.
    idx = np.clip(np.searchsorted(times, out_times + 1e-6, side="right") - 1, 0, len(frames) - 1)
    return [frames[i] for i in idx]


def _resize_if_smaller(video: np.ndarray, min_size: tuple[int, int]) -> np.ndarray:
    h, w = video.shape[1:3]
    if h >= min_size[0] and w >= min_size[1]:
        return video
    return np.stack(
        [cv2.resize(f, (min_size[1], min_size[0]), interpolation=cv2.INTER_LINEAR) for f in video]
    )


def write_video(path: str | Path, frames: np.ndarray, fps: int = 25, bit_rate: int = 0) -> None:
    """Writes RGB frames as an XVID (MPEG-4 part 2) AVI, the UCF-101 release's format.

    Args:
      path: the .avi file (written through a temp name and renamed).
      frames: uint8 [N, H, W, 3], H and W even.
      fps: frame rate.
      bit_rate: bits per second; 0 = about 6 bits a pixel, high enough that compression
        barely moves the optical flow.
    """
    path = Path(path)
    n, h, w = frames.shape[:3]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with av.open(str(tmp), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.codec_tag = "XVID"  # what the release's AVIs declare
        stream.bit_rate = bit_rate or int(6 * w * h * fps)
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())
    os.replace(tmp, path)
