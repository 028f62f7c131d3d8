"""Optical flow between consecutive frames and the LRCN flow-image encoding.

The original used Brox et al. (2004) flow, which OpenCV only offers on CUDA
(`cv2.cuda.BroxOpticalFlow`). Deviation: we compute Farneback flow (default, fast) or TV-L1
(`cv2.optflow`, closer to Brox's variational flow, ~100x slower) on the CPU, or the same
TV-L1 written in keras.ops (`tvl1_accel`, flow_tvl1.py: batches of frame pairs on whatever
device the Keras backend uses, a GPU when there is one). The encoding is
the original's: per pixel `x*16+128`, `y*16+128`, `magnitude*16+128`, clipped to [0, 255]
(rounded to the nearest integer), stored as a 3-channel JPEG.
"""

from __future__ import annotations

import cv2
import numpy as np

FLOW_METHODS = ("farneback", "tvl1", "tvl1_accel", "none")
FLOW_SCALE = 16.0
FLOW_CENTER = 128.0


def encode_flow(flow: np.ndarray) -> np.ndarray:
    """Encodes a flow field [H, W, 2] (x, y in pixels) as a uint8 flow image [H, W, 3]."""
    x, y = flow[..., 0], flow[..., 1]
    mag = np.sqrt(x * x + y * y)
    img = np.stack([x, y, mag], axis=-1) * FLOW_SCALE + FLOW_CENTER
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def decode_flow(img: np.ndarray) -> np.ndarray:
    """Inverts `encode_flow` for x and y (within the clipping range): [H, W, 3] -> [H, W, 2]."""
    return (img[..., :2].astype(np.float32) - FLOW_CENTER) / FLOW_SCALE


class FlowComputer:
    """Flow between grayscale frames with one method; reuses its solver object.

    `computer(prev, nxt)` gives one [H, W, 2] flow; `computer.batch(prevs, nxts)` gives
    [N, H, W, 2] for lists of frames (one call per `batch_size` pairs for tvl1_accel, whose
    compiled function is kept per frame size; the last batch is padded to the same size).
    """

    def __init__(self, method: str = "farneback", batch_size: int | None = None):
        if method not in ("farneback", "tvl1", "tvl1_accel"):
            raise ValueError(f"flow method {method!r}: use farneback, tvl1 or tvl1_accel")
        self.method = method
        self._tvl1 = cv2.optflow.DualTVL1OpticalFlow_create() if method == "tvl1" else None
        self._accel = None
        if method == "tvl1_accel":
            from lrcn_tf.data.flow_tvl1 import TVL1, default_batch

            self._accel = _shared_accel(TVL1)
            self.batch_size = batch_size or default_batch()

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        if self._accel is not None:
            return self._accel(prev[None], nxt[None])[0]
        if self._tvl1 is not None:
            return self._tvl1.calc(prev, nxt, None)
        # OpenCV's sample parameters: 3-level pyramid (scale 0.5), 15 px window, 3
        # iterations, polynomial neighbourhood 5 with sigma 1.2.
        return cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def batch(self, prevs: list[np.ndarray], nxts: list[np.ndarray]) -> list[np.ndarray]:
        if self._accel is None:
            return [self(a, b) for a, b in zip(prevs, nxts)]
        out, n, size = [], len(prevs), self.batch_size
        for i in range(0, n, size):
            a, b = list(prevs[i : i + size]), list(nxts[i : i + size])
            real = len(a)
            a += [a[-1]] * (size - real)  # one compiled shape per frame size
            b += [b[-1]] * (size - real)
            out.extend(self._accel(np.stack(a), np.stack(b))[:real])
        return out


_ACCEL = {}


def _shared_accel(factory):
    """One TVL1 solver per process, so its compiled functions are reused across videos."""
    if "solver" not in _ACCEL:
        _ACCEL["solver"] = factory()
    return _ACCEL["solver"]


def flow_images(frames: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Flow images between consecutive frames: N RGB frames -> N-1 encoded flow images.

    Duplicate frames: a frame identical to the one before carries no new sample (frame-rate
    conversion or a dropped frame repeated by the encoder), and flow across it would read
    as a sudden stop (all-128 images, a problem users of the original code hit). So each run
    of identical frames is bridged: the flow from the last distinct frame to the next one is
    divided by the number of steps between them and used for every step of the run. A run
    at the very end (no next distinct frame) repeats the last flow; a video whose frames
    are all identical gets zero flow.

    Args:
      frames: uint8 [N, H, W, 3] RGB.
      method: farneback, tvl1 or tvl1_accel.

    Returns:
      uint8 [N-1, H, W, 3] flow images (x, y, magnitude).
    """
    n, h, w = frames.shape[:3]
    if n < 2:
        return np.zeros((0, h, w, 3), np.uint8)
    compute = FlowComputer(method)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    # Distinct frames: the first, and each one that differs from its predecessor.
    keys = [0] + [i for i in range(1, n) if not np.array_equal(frames[i], frames[i - 1])]
    out = np.empty((n - 1, h, w, 3), np.uint8)
    last = encode_flow(np.zeros((h, w, 2), np.float32))
    steps = list(zip(keys, keys[1:]))
    flows = compute.batch([gray[a] for a, _ in steps], [gray[b] for _, b in steps])
    for (a, b), f in zip(steps, flows):
        last = encode_flow(f / (b - a))
        out[a:b] = last
    out[keys[-1] :] = last  # trailing duplicates (or a frozen video)
    return out
