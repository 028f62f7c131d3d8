"""TV-L1 optical flow in `keras.ops`, batched over frame pairs (runs on the accelerator).

The scheme is the one of OpenCV's `cv2.optflow.DualTVL1OpticalFlow` (Zach, Pock and Bischof
2007, "A duality based approach for realtime TV-L1 optical flow", in the formulation of
Sanchez Perez, Meinhardt-Llopis and Facciolo, IPOL 2013), with the same parameters and
defaults, so that `prepare --flow tvl1_accel` gives the flow `--flow tvl1` gives, only batched
and on whatever device the Keras backend uses (a GPU when TensorFlow or JAX sees one):

- a pyramid of `nscales` levels, each `scale_step` times the size of the one below
  (bilinear resizing with OpenCV's pixel-centre convention and rounded sizes; a level
  smaller than 16 pixels ends the pyramid), solved from the coarsest level, the flow
  upsampled (bilinear) and divided by `scale_step` for the next;
- at each level, `warps` times: the second image and its centred gradient are warped by the
  current flow (bicubic, a = -0.75, zero outside the image: OpenCV 5's `remap` with float
  maps, which samples at the exact position), the data term is linearised around the flow, and
  up to `outer_iterations` x `inner_iterations` primal-dual iterations run: the thresholding
  step (v), the primal step u = v + theta div(p), the dual step
  p = (p + tau/theta grad u) / (1 + tau/theta |grad u|), a 5x5 median filter of u at the
  start of each outer iteration; a pair stops when the squared change of u summed over its
  pixels is at most epsilon^2 x pixels (each pair of a batch stops on its own).

Intensities are the grayscale frames in 0..255 (as OpenCV's for 8-bit input). Differences
to OpenCV come from float summation order and the convergence test landing one iteration
apart; tests/test_flow_tvl1.py measures them against OpenCV on known motion.
"""

from __future__ import annotations

import dataclasses

import numpy as np

CUBIC_A = -0.75  # OpenCV's bicubic kernel
MIN_LEVEL_SIZE = 16  # a pyramid level with a side under 16 pixels is not used


@dataclasses.dataclass(frozen=True)
class TVL1Params:
    """The parameters of OpenCV's DualTVL1OpticalFlow, with its defaults (gamma fixed at 0)."""

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    median_filtering: int = 5

    def validate(self) -> None:
        if not (self.tau > 0 and self.lambda_ > 0 and self.theta > 0 and self.epsilon > 0):
            raise ValueError("tau, lambda, theta and epsilon must be > 0")
        if min(self.nscales, self.warps, self.inner_iterations, self.outer_iterations) < 1:
            raise ValueError("nscales, warps and the iteration counts must be >= 1")
        if not 0 < self.scale_step < 1:
            raise ValueError(f"scale_step {self.scale_step}: must be in (0, 1)")
        if self.median_filtering not in (0, 1, 3, 5):
            raise ValueError(f"median_filtering {self.median_filtering}: use 0, 1, 3 or 5")


def pyramid_sizes(h: int, w: int, params: TVL1Params = TVL1Params()) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level, finest first, as OpenCV computes them."""
    sizes = [(h, w)]
    for _ in range(1, params.nscales):
        ph, pw = sizes[-1]
        # cv::resize with a scale factor: size = round(size * factor) (round half to even).
        nh, nw = int(np.rint(ph * params.scale_step)), int(np.rint(pw * params.scale_step))
        if nh < MIN_LEVEL_SIZE or nw < MIN_LEVEL_SIZE:
            break
        sizes.append((nh, nw))
    return sizes


def _linear_taps(n_in: int, n_out: int, scale: float):
    """Indices and weights of OpenCV's bilinear resize along one axis (edge clamped).

    `scale` is input pixels per output pixel (OpenCV: 1/fx when a factor is given, else
    n_in / n_out)."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.int32)
    frac = (pos - i0).astype(np.float32)
    i1 = np.minimum(i0 + 1, n_in - 1).astype(np.int32)
    return i0, i1, frac


def _cubic_weights(t):
    """OpenCV's cubic convolution weights for taps -1, 0, 1, 2 at fraction t (array)."""
    a = CUBIC_A
    t1 = t + 1.0
    w0 = ((a * t1 - 5.0 * a) * t1 + 8.0 * a) * t1 - 4.0 * a
    w1 = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    s = 1.0 - t
    w2 = ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0
    w3 = 1.0 - w0 - w1 - w2
    return w0, w1, w2, w3


class TVL1:
    """Batched TV-L1 flow: `TVL1()(prev, nxt)` with uint8/float [B, H, W] grayscale arrays.

    Returns float32 [B, H, W, 2] flow (x, y in pixels) from `prev` to `nxt`, as
    `cv2.optflow.DualTVL1OpticalFlow_create().calc(prev, nxt, None)` does for each pair.
    The computation is compiled once per (batch, height, width) (XLA on TensorFlow, jit on
    JAX) and runs on the backend's default device.
    """

    def __init__(self, params: TVL1Params = TVL1Params(), jit: bool | str = True):
        params.validate()
        _gpu_memory_growth()
        self.params = params
        self.jit = jit
        self._compiled = {}

    def __call__(self, prev, nxt) -> np.ndarray:
        prev, nxt = np.asarray(prev), np.asarray(nxt)
        if prev.shape != nxt.shape or prev.ndim != 3:
            raise ValueError(f"prev/nxt shapes {prev.shape}, {nxt.shape}: use equal [B, H, W]")
        b, h, w = prev.shape
        if min(h, w) < 3:
            raise ValueError(f"frames {h}x{w}: TV-L1 needs at least 3x3 pixels")
        fn = self._compiled.get((b, h, w))
        if fn is None:
            fn = self._compiled[(b, h, w)] = self._compile(h, w)
        out = fn(prev.astype(np.float32), nxt.astype(np.float32))
        return np.asarray(out)

    def _compile(self, h: int, w: int):
        import keras

        def run(i0, i1):
            return self.flow(i0, i1, h, w)

        if not self.jit:
            return run
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            return tf.function(run, jit_compile=self.jit != "graph", autograph=False)
        if backend == "jax":
            import jax

            return jax.jit(run)
        return run

    # ---- the algorithm, in keras.ops ------------------------------------------------------

    def flow(self, i0, i1, h: int, w: int):
        """TV-L1 flow of float [B, H, W] images (0..255) -> [B, H, W, 2] (keras.ops)."""
        from keras import ops

        p = self.params
        sizes = pyramid_sizes(h, w, p)
        i0s, i1s = [ops.convert_to_tensor(i0)], [ops.convert_to_tensor(i1)]
        for s in range(1, len(sizes)):
            scale = 1.0 / p.scale_step  # OpenCV: size from the factor, taps from 1/factor
            i0s.append(_resize(i0s[-1], sizes[s - 1], sizes[s], scale, scale))
            i1s.append(_resize(i1s[-1], sizes[s - 1], sizes[s], scale, scale))
        b = ops.shape(i0)[0]
        ch, cw = sizes[-1]
        u1 = ops.zeros((b, ch, cw), "float32")
        u2 = ops.zeros((b, ch, cw), "float32")
        for s in range(len(sizes) - 1, -1, -1):
            u1, u2 = self._one_scale(i0s[s], i1s[s], u1, u2, sizes[s])
            if s == 0:
                break
            (sh, sw), (th, tw) = sizes[s], sizes[s - 1]
            u1 = _resize(u1, (sh, sw), (th, tw), sh / th, sw / tw) / p.scale_step
            u2 = _resize(u2, (sh, sw), (th, tw), sh / th, sw / tw) / p.scale_step
        return ops.stack([u1, u2], axis=-1)

    def _one_scale(self, i0, i1, u1, u2, size):
        from keras import ops

        p = self.params
        h, w = size
        scaled_eps = np.float32(p.epsilon * p.epsilon * h * w)
        l_t = np.float32(p.lambda_ * p.theta)
        taut = np.float32(p.tau / p.theta)
        theta = np.float32(p.theta)
        tiny = np.float32(np.finfo(np.float32).eps)
        i1x, i1y = _centered_gradient(i1)
        b = ops.shape(i0)[0]
        zeros = ops.zeros_like(i0)
        total = p.outer_iterations * p.inner_iterations
        median = p.median_filtering if p.median_filtering > 1 else 0

        def inner(i, active, u1, u2, p11, p12, p21, p22, i1wx, i1wy, grad, rho_c):
            keep = active[:, None, None]
            if median:

                def filtered():
                    return (
                        ops.where(keep, _median(u1, median), u1),
                        ops.where(keep, _median(u2, median), u2),
                    )

                u1, u2 = ops.cond(i % p.inner_iterations == 0, filtered, lambda: (u1, u2))
            rho = rho_c + i1wx * u1 + i1wy * u2
            low, high = rho < -l_t * grad, rho > l_t * grad
            fi = ops.where(grad > tiny, -rho / ops.where(grad > tiny, grad, 1.0), 0.0)
            d1 = ops.where(low, l_t * i1wx, ops.where(high, -l_t * i1wx, fi * i1wx))
            d2 = ops.where(low, l_t * i1wy, ops.where(high, -l_t * i1wy, fi * i1wy))
            n1 = u1 + d1 + theta * _divergence(p11, p12)
            n2 = u2 + d2 + theta * _divergence(p21, p22)
            error = ops.sum(ops.square(n1 - u1) + ops.square(n2 - u2), axis=(1, 2))
            u1x, u1y = _forward_gradient(n1)
            u2x, u2y = _forward_gradient(n2)
            ng1 = 1.0 + taut * ops.sqrt(u1x * u1x + u1y * u1y)
            ng2 = 1.0 + taut * ops.sqrt(u2x * u2x + u2y * u2y)
            return (
                i + 1,
                ops.logical_and(active, error > scaled_eps),
                ops.where(keep, n1, u1),
                ops.where(keep, n2, u2),
                ops.where(keep, (p11 + taut * u1x) / ng1, p11),
                ops.where(keep, (p12 + taut * u1y) / ng1, p12),
                ops.where(keep, (p21 + taut * u2x) / ng2, p21),
                ops.where(keep, (p22 + taut * u2y) / ng2, p22),
                i1wx,
                i1wy,
                grad,
                rho_c,
            )

        def inner_cond(i, active, *_):
            return ops.logical_and(i < total, ops.any(active))

        def warp(k, u1, u2, p11, p12, p21, p22):
            i1w, i1wx, i1wy = _warp_cubic([i1, i1x, i1y], u1, u2, h, w)
            grad = i1wx * i1wx + i1wy * i1wy
            rho_c = i1w - i1wx * u1 - i1wy * u2 - i0
            start = (ops.convert_to_tensor(0, "int32"), ops.ones((b,), "bool"))
            state = start + (u1, u2, p11, p12, p21, p22, i1wx, i1wy, grad, rho_c)
            state = ops.while_loop(inner_cond, inner, state)
            return (k + 1,) + tuple(state[2:8])

        state = (ops.convert_to_tensor(0, "int32"), u1, u2, zeros, zeros, zeros, zeros)
        state = ops.while_loop(lambda k, *_: k < p.warps, warp, state)
        u1, u2 = state[1], state[2]
        return u1, u2


# ---- building blocks (keras.ops; arrays [B, H, W]) ------------------------------------------


def _resize(x, src_size, dst_size, scale_y: float, scale_x: float):
    """OpenCV's INTER_LINEAR resize of [B, H, W] float images (separable: rows, then columns)."""
    from keras import ops

    (sh, sw), (dh, dw) = src_size, dst_size
    x0, x1, fx = _linear_taps(sw, dw, scale_x)
    y0, y1, fy = _linear_taps(sh, dh, scale_y)
    rows = ops.take(x, x0, axis=2) * (1.0 - fx) + ops.take(x, x1, axis=2) * fx
    fy = fy[:, None]
    return ops.take(rows, y0, axis=1) * (1.0 - fy) + ops.take(rows, y1, axis=1) * fy


def _shift_cat(parts, axis):
    from keras import ops

    return ops.concatenate(parts, axis=axis)


def _centered_gradient(x):
    """0.5 * (x[+1] - x[-1]) along x and y, with the edge pixel repeated outside."""
    dx = 0.5 * (
        _shift_cat([x[:, :, 1:], x[:, :, -1:]], 2) - _shift_cat([x[:, :, :1], x[:, :, :-1]], 2)
    )
    dy = 0.5 * (_shift_cat([x[:, 1:], x[:, -1:]], 1) - _shift_cat([x[:, :1], x[:, :-1]], 1))
    return dx, dy


def _forward_gradient(x):
    """x[+1] - x along x and y, zero in the last column / row."""
    from keras import ops

    dx = _shift_cat([x[:, :, 1:] - x[:, :, :-1], ops.zeros_like(x[:, :, :1])], 2)
    dy = _shift_cat([x[:, 1:] - x[:, :-1], ops.zeros_like(x[:, :1])], 1)
    return dx, dy


def _divergence(px, py):
    """Backward-difference divergence, the negative adjoint of `_forward_gradient`'s
    interior (zero outside the first row / column, as OpenCV's)."""
    from keras import ops

    dx = px - _shift_cat([ops.zeros_like(px[:, :, :1]), px[:, :, :-1]], 2)
    dy = py - _shift_cat([ops.zeros_like(py[:, :1]), py[:, :-1]], 1)
    return dx + dy


def _median(x, k: int):
    """k x k median filter with the edge pixels repeated outside (OpenCV's medianBlur).

    Forgetful selection with compare-exchanges (elementwise min/max, no sort): keep
    (k*k+1)/2 + 1 of the window's values, move the smallest and the largest to the ends and
    drop both (neither can be the median), add the next value, and repeat; the last one
    standing is the median."""
    from keras import ops

    h, w = x.shape[1], x.shape[2]
    r = k // 2
    rows = np.clip(np.arange(-r, h + r), 0, h - 1)
    cols = np.clip(np.arange(-r, w + r), 0, w - 1)
    padded = ops.take(ops.take(x, rows, axis=1), cols, axis=2)
    window = [padded[:, dy : dy + h, dx : dx + w] for dy in range(k) for dx in range(k)]
    n = len(window)
    live, rest = window[: n // 2 + 2], window[n // 2 + 2 :]
    while len(live) > 1:
        for j in range(len(live) - 1, 0, -1):  # the smallest to live[0]
            live[j - 1], live[j] = (
                ops.minimum(live[j - 1], live[j]),
                ops.maximum(live[j - 1], live[j]),
            )
        for j in range(1, len(live) - 1):  # the largest of the others to live[-1]
            live[j], live[j + 1] = (
                ops.minimum(live[j], live[j + 1]),
                ops.maximum(live[j], live[j + 1]),
            )
        live = live[1:-1] + rest[:1]
        rest = rest[1:]
    return live[0]


def _warp_cubic(images, u1, u2, h: int, w: int):
    """Samples each [B, H, W] image at (x + u1, y + u2): OpenCV's remap with INTER_CUBIC.

    Taps outside the image count as zero (BORDER_CONSTANT)."""
    from keras import ops

    b = ops.shape(u1)[0]
    gx = np.arange(w, dtype=np.float32)[None, None, :]
    gy = np.arange(h, dtype=np.float32)[None, :, None]
    px, py = gx + u1, gy + u2
    ix, iy = ops.floor(px), ops.floor(py)
    wx, wy = _cubic_weights(px - ix), _cubic_weights(py - iy)
    ix = ops.cast(ix, "int32")
    iy = ops.cast(iy, "int32")
    stacked = ops.reshape(ops.stack(images, axis=-1), (-1, len(images)))  # [B*H*W, C]
    base = ops.reshape(ops.arange(b, dtype="int32") * (h * w), (-1, 1, 1))
    out = 0.0
    for j in range(4):
        yj = iy + (j - 1)
        y_ok = ops.logical_and(yj >= 0, yj < h)
        yc = ops.clip(yj, 0, h - 1)
        row = 0.0
        for i in range(4):
            xi = ix + (i - 1)
            ok = ops.logical_and(y_ok, ops.logical_and(xi >= 0, xi < w))
            idx = base + yc * w + ops.clip(xi, 0, w - 1)
            tap = ops.take(stacked, ops.reshape(idx, (-1,)), axis=0)
            tap = ops.reshape(tap, (b, h, w, len(images)))
            weight = ops.where(ok, wx[i], ops.zeros_like(wx[i]))
            row = row + tap * weight[..., None]
        out = out + row * wy[j][..., None]
    return [out[..., c] for c in range(len(images))]


def _gpu_memory_growth() -> None:
    """Lets several prepare workers share a GPU (TensorFlow otherwise takes all its memory)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError):  # already initialised: keep its setting
            pass


def max_batch_for(h: int, w: int, budget_bytes: float = 1.5e9) -> int:
    """A batch size that keeps the solver's arrays (about 40 floats a pixel) within a budget."""
    return max(1, int(budget_bytes // (40 * 4 * h * w)))


def default_batch() -> int:
    """Frame pairs per batch: 32 on an accelerator, 8 on the CPU."""
    try:
        import tensorflow as tf

        return 32 if tf.config.list_physical_devices("GPU") else 8
    except Exception:  # noqa: BLE001 - no TensorFlow: the JAX backend's device decides
        return 8
