"""Keras 3 layers that compute what Caffe's layers compute (keras.ops only; any backend).

Registered as serializable (package "lrcn_tf"), so a converted `.keras` file loads with
`keras.models.load_model` once `lrcn_tf` is imported. Caffe's LRN and grouped convolution are
`lrcn_tf.models.backbones.LRN` and `GroupedConv2D`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers, ops


def _register(cls):
    return keras.saving.register_keras_serializable(package="lrcn_tf")(cls)


@_register
class CaffeMaxPool2D(layers.Layer):
    """Caffe's MAX pooling, channels-last: output size ceil((H + 2 pad - k) / s) + 1.

    Caffe rounds up (13x13 where Keras gives 12x12) and drops a last window that would start
    in the bottom/right padding; padded cells never win the max (they hold the lowest float).
    """

    def __init__(self, kernel=(3, 3), stride=(2, 2), pad=(0, 0), **kwargs):
        super().__init__(**kwargs)
        self.kernel, self.stride, self.pad = tuple(kernel), tuple(stride), tuple(pad)

    @staticmethod
    def out_size(n: int, k: int, s: int, p: int) -> int:
        out = int(math.ceil((n + 2 * p - k) / s)) + 1
        if p and (out - 1) * s >= n + p:
            out -= 1
        return out

    def call(self, x):
        pads = [[0, 0]]
        for axis in (1, 2):
            n, k, s, p = (
                x.shape[axis],
                self.kernel[axis - 1],
                self.stride[axis - 1],
                self.pad[axis - 1],
            )
            out = self.out_size(n, k, s, p)
            pads.append([p, max((out - 1) * s + k - n - p, 0)])
        pads.append([0, 0])
        if any(a or b for a, b in pads):
            x = ops.pad(x, pads, constant_values=(-3.0e38))
        return ops.max_pool(x, self.kernel, self.stride, padding="valid")

    def compute_output_shape(self, shape):
        h = self.out_size(shape[1], self.kernel[0], self.stride[0], self.pad[0])
        w = self.out_size(shape[2], self.kernel[1], self.stride[1], self.pad[1])
        return (shape[0], h, w, shape[3])

    def get_config(self):
        return {
            **super().get_config(),
            "kernel": self.kernel,
            "stride": self.stride,
            "pad": self.pad,
        }


@_register
class FoldTime(layers.Layer):
    """(N, T, ...) -> (N*T, ...): clips into Caffe's batch of frames (row n*T + t)."""

    def call(self, x):
        return ops.reshape(x, (-1, *x.shape[2:]))

    def compute_output_shape(self, shape):
        return (None, *shape[2:])


@_register
class UnfoldTime(layers.Layer):
    """(N*T, ...) -> (N, T, ...), N and T taken from a reference tensor (N, T, ...)."""

    def call(self, x, reference):
        shape = ops.shape(reference)
        return ops.reshape(x, (shape[0], shape[1], *x.shape[1:]))

    def compute_output_shape(self, x_shape, reference_shape):
        return (reference_shape[0], reference_shape[1], *x_shape[1:])


@_register
class ClipStartMarkers(layers.Layer):
    """Clip markers for clips that start at t = 0: (N, T, ...) -> (N, T) of 0 at t=0, else 1."""

    def call(self, clips):
        shape = ops.shape(clips)
        steps = ops.arange(shape[1])
        markers = ops.cast(steps > 0, self.compute_dtype)
        return ops.broadcast_to(markers[None, :], (shape[0], shape[1]))

    def compute_output_shape(self, shape):
        return (shape[0], shape[1])


@_register
class CaffeEmbed(layers.Layer):
    """Caffe's Embed: word ids (any shape, int or float) -> rows of a (input_dim, units) table."""

    def __init__(self, input_dim: int, units: int, use_bias: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.units, self.use_bias = int(input_dim), int(units), bool(use_bias)

    def build(self, shape):
        self.embeddings = self.add_weight(shape=(self.input_dim, self.units), name="embeddings")
        self.bias = self.add_weight(shape=(self.units,), name="bias") if self.use_bias else None

    def call(self, ids):
        y = ops.take(self.embeddings, ops.cast(ids, "int32"), axis=0)
        return y + self.bias if self.use_bias else y

    def compute_output_shape(self, shape):
        return (*shape, self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "units": self.units,
            "use_bias": self.use_bias,
        }


@_register
class CaffeLSTM(layers.Layer):
    """Caffe's LSTM layer (BVLC Caffe 1.0 and lisa-caffe), batch-major.

    Inputs: x (N, T, D), cont (N, T) and optionally a static input (N, S) fed at every step.
    Weights in Caffe's gate order i, f, o, g: kernel (D, 4H) = W_xc^T, bias (4H) = b_c,
    static_kernel (S, 4H) = W_xc_x_static^T, recurrent_kernel (H, 4H) = W_hc^T. At step t:

        a = x_t W_xc^T + b_c [+ s W_static^T] + (cont_t h_{t-1}) W_hc^T
        i, f, o = sigmoid(a_i, a_f, a_o); g = tanh(a_g)
        c_t = cont_t f c_{t-1} + i g;  h_t = o tanh(c_t)

    The state starts at zero in every call (Caffe carries it over between forward calls
    unless cont is 0, so the two agree when each sequence starts with cont = 0).
    Returns h (N, T, H).
    """

    def __init__(self, units: int, static_input: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units, self.static_input = int(units), bool(static_input)

    def build(self, x_shape, cont_shape=None, static_shape=None):
        h = self.units
        self.kernel = self.add_weight(shape=(x_shape[-1], 4 * h), name="kernel")
        self.bias = self.add_weight(shape=(4 * h,), name="bias", initializer="zeros")
        if self.static_input:
            self.static_kernel = self.add_weight(
                shape=(static_shape[-1], 4 * h), name="static_kernel"
            )
        self.recurrent_kernel = self.add_weight(shape=(h, 4 * h), name="recurrent_kernel")

    def call(self, x, cont, static=None):
        h_units = self.units
        pre = ops.matmul(x, self.kernel) + self.bias  # (N, T, 4H)
        if self.static_input:
            pre = pre + ops.expand_dims(ops.matmul(static, self.static_kernel), 1)
        pre = ops.transpose(pre, (1, 0, 2))  # (T, N, 4H)
        cont = ops.transpose(ops.cast(cont, pre.dtype), (1, 0))[..., None]  # (T, N, 1)
        batch = ops.shape(pre)[1]
        state = ops.zeros((batch, 2 * h_units), pre.dtype)  # [h, c]: one tensor carried

        def step(state, inputs):
            h, c = state[:, :h_units], state[:, h_units:]
            a_t, m = inputs
            a = a_t + ops.matmul(h * m, self.recurrent_kernel)
            i = ops.sigmoid(a[:, :h_units])
            f = ops.sigmoid(a[:, h_units : 2 * h_units])
            o = ops.sigmoid(a[:, 2 * h_units : 3 * h_units])
            g = ops.tanh(a[:, 3 * h_units :])
            c = m * f * c + i * g
            state = ops.concatenate([o * ops.tanh(c), c], axis=-1)
            return state, state  # (Keras' TF scan wants outputs shaped like the carry)

        _, states = ops.scan(step, state, (pre, cont))
        hs = states[..., :h_units]
        return ops.transpose(hs, (1, 0, 2))

    def compute_output_shape(self, x_shape, cont_shape=None, static_shape=None):
        return (*x_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "static_input": self.static_input}


@_register
class ReverseChannels(layers.Layer):
    """Reverses the last axis: RGB <-> BGR (and flow x, y, magnitude <-> magnitude, y, x)."""

    def call(self, x):
        return ops.flip(x, axis=-1)


@_register
class CaffeSlice(layers.Layer):
    """Caffe's Slice: splits one axis at the given points."""

    def __init__(self, axis: int, points: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.axis, self.points = int(axis), [int(p) for p in points]

    def call(self, x):
        return ops.split(x, self.points, axis=self.axis)

    def compute_output_shape(self, shape):
        bounds = [0, *self.points, shape[self.axis]]
        out = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            s = list(shape)
            s[self.axis] = b - a
            out.append(tuple(s))
        return out

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "points": self.points}
