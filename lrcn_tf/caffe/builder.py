"""A Caffe deploy net (prototxt) as a Keras 3 functional model, with its caffemodel's weights.

Caffe blobs are NCHW and its recurrent blobs time-major (T, N, ...); the Keras model is
channels-last and batch-major. Every blob is tracked with its Caffe shape and a layout that
says how its axes map onto the Keras tensor's:

- "image": Caffe (B, C, H, W) <-> Keras (B, H, W, C);
- "seq": Caffe (T, N, ...) <-> Keras (N, T, ...) (LSTM inputs and outputs, words, markers);
- "flat": the same axes in both (B, D).

A net whose Reshape layers split the frame batch into (T, N, ...) (the LRCN deploy net: 160
frames -> 16 steps x 10 streams) is a clip net: its frame input becomes (N, T, H, W, C), the
frames are folded into Caffe's batch inside the model (`FoldTime`) and unfolded at that
Reshape; its clip-marker input becomes (N, T), or is made inside the model (0 at t = 0, then
1) when `clip_markers=False`. InnerProduct on an image blob flattens in Caffe's C, H, W
order: the kernel rows are permuted once when loading, so the model flattens channels-last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

from lrcn_tf.caffe import proto
from lrcn_tf.caffe.layers import (
    CaffeEmbed,
    CaffeLSTM,
    CaffeMaxPool2D,
    CaffeSlice,
    ClipStartMarkers,
    FoldTime,
    UnfoldTime,
)
from lrcn_tf.caffe.proto import CaffeError
from lrcn_tf.models.backbones import LRN, GroupedConv2D

_SKIPPED = {"Silence"}
_TRAINING_ONLY = {
    "Data",
    "ImageData",
    "HDF5Data",
    "WindowData",
    "MemoryData",
    "DummyData",
    "Python",
    "SoftmaxWithLoss",
    "EuclideanLoss",
    "Accuracy",
    "HingeLoss",
    "SigmoidCrossEntropyLoss",
    "InfogainLoss",
    "MultinomialLogisticLoss",
    "ContrastiveLoss",
}


@dataclasses.dataclass
class Blob:
    tensor: object  # a KerasTensor
    shape: tuple[int, ...]  # Caffe's shape (with the prototxt's batch sizes)
    layout: str  # "image", "seq" or "flat"
    folded: bool = False  # batch rows are clip frames, n*T + t (clip nets only)

    def keras_axis(self, axis: int) -> int:
        axis = axis + len(self.shape) if axis < 0 else axis
        if self.layout == "image":
            return {0: 0, 1: 3, 2: 1, 3: 2}[axis]
        if self.layout == "seq":
            return {0: 1, 1: 0}.get(axis, axis)
        return axis


@dataclasses.dataclass
class Converted:
    """What `build` made: the model, every blob's final Keras tensor and the weight plan."""

    model: keras.Model
    blobs: dict[str, Blob]
    plan: list[tuple[str, keras.layers.Layer, str, dict]]  # (caffe layer, layer, kind, meta)
    inputs: dict[str, keras.KerasTensor]
    outputs: list[str]


def _pair(repeated, h, w, default):
    """Caffe's kernel/stride/pad: a repeated field (1 or 2 values) or the _h/_w fields."""
    if h or w:
        return int(h), int(w)
    vals = list(repeated)
    if not vals:
        return default, default
    return (int(vals[0]), int(vals[0])) if len(vals) == 1 else (int(vals[0]), int(vals[1]))


def _conv_out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def _keras_name(name: str) -> str:
    return name.replace("/", "_")


def _time_split(net_layers, inputs) -> tuple[int, int] | None:
    """(T, N) of the first Reshape that splits an input's batch into time x streams, or None."""
    batches = {s[0] for s in inputs.values() if len(s) == 4}
    for layer in net_layers:
        if layer.type == "Reshape":
            dims = [int(d) for d in layer.reshape_param.shape.dim]
            if len(dims) >= 2 and dims[0] > 0 and dims[1] > 0 and dims[0] * dims[1] in batches:
                return dims[0], dims[1]
    return None


def _input_kind(name: str, shape, net_layers, clip: tuple[int, int] | None) -> tuple[str, bool]:
    """(layout, integer?) of a net input, from how the first layer that reads it uses it."""
    for layer in net_layers:
        if name in layer.bottom:
            i = list(layer.bottom).index(name)
            if layer.type == "Embed":
                return "seq", True
            if layer.type == "LSTM" or layer.type == "RNN":
                return ("flat", False) if i == 2 else ("seq", False)
            break
    if clip is not None and shape[0] == clip[0] * clip[1]:
        return ("image" if len(shape) == 4 and max(shape[1:]) > 1 else "folded"), False
    return ("image", False) if len(shape) == 4 else ("flat", False)


def build(
    net,
    weights: dict[str, list[np.ndarray]] | None = None,
    *,
    phase: str = "TEST",
    stages: Sequence[str] = (),
    clip_markers: bool = True,
    name: str | None = None,
) -> Converted:
    """Builds the Keras model of a NetParameter (from `proto.read_prototxt`).

    Args:
      net: the deploy net (inputs declared with `input`/`input_dim`/`input_shape`/Input).
      weights: {layer name: blobs} (`proto.read_weights`); None leaves Keras' initial values.
      phase, stages: the NetState whose layers are kept (Caffe's include/exclude rules).
      clip_markers: clip nets only: take the markers as a second input (N, T) (True) or make
        them inside the model, 0 at t = 0 and 1 after (False).
      name: the model's name (default: the net's).

    Raises:
      CaffeError: a layer type or parameter this converter does not handle, or weights that
        do not fit the prototxt; the message names the layer.
    """
    net_layers = proto.filter_layers(net, phase, stages)
    input_shapes = dict(proto.net_inputs(net))
    for layer in net_layers:
        if layer.type == "Input":
            shapes = [tuple(int(d) for d in s.dim) for s in layer.input_param.shape]
            if len(shapes) == 1:
                shapes = shapes * len(layer.top)
            input_shapes.update(zip(layer.top, shapes))
    if not input_shapes:
        raise CaffeError(
            "the net declares no inputs (input/input_dim, input_shape or Input layers): "
            "convert a deploy prototxt, not a training one"
        )
    clip = _time_split(net_layers, input_shapes)
    blobs: dict[str, Blob] = {}
    keras_inputs: dict[str, keras.KerasTensor] = {}
    frames_ref = None
    for in_name, shape in input_shapes.items():
        layout, integer = _input_kind(in_name, shape, net_layers, clip)
        dtype = "int32" if integer else "float32"
        kname = _keras_name(in_name)
        if layout == "image":
            keras_shape = (shape[2], shape[3], shape[1])
            if clip is not None and shape[0] == clip[0] * clip[1]:
                x = keras.Input((None, *keras_shape), name=kname, dtype=dtype)
                keras_inputs[in_name] = x
                frames_ref = x
                blobs[in_name] = Blob(FoldTime(name=f"{kname}_fold")(x), shape, "image", True)
            else:
                x = keras.Input(keras_shape, name=kname, dtype=dtype)
                keras_inputs[in_name] = x
                blobs[in_name] = Blob(x, shape, "image")
        elif layout == "folded":  # per-frame scalars (clip markers): (N, T) in Keras
            blobs[in_name] = Blob(None, shape, "folded", True)
        elif layout == "seq":
            x = keras.Input((None, *shape[2:]), name=kname, dtype=dtype)
            keras_inputs[in_name] = x
            blobs[in_name] = Blob(x, shape, "seq")
        else:
            x = keras.Input(tuple(shape[1:]), name=kname, dtype=dtype)
            keras_inputs[in_name] = x
            blobs[in_name] = Blob(x, shape, "flat")
    for in_name, blob in blobs.items():
        if blob.layout == "folded":
            if frames_ref is None:
                raise CaffeError(f"input {in_name!r}: per-frame input without a frame input")
            if clip_markers:
                x = keras.Input((None,), name=_keras_name(in_name))
                keras_inputs[in_name] = x
            else:
                x = ClipStartMarkers(name=f"{_keras_name(in_name)}_start")(frames_ref)
            blob.tensor = x

    plan = []
    consumed: set[str] = set()
    produced: list[str] = []
    for layer in net_layers:
        if layer.type in ("Input",) or layer.type in _SKIPPED:
            consumed.update(layer.bottom)
            continue
        if layer.type in _TRAINING_ONLY:
            raise CaffeError(
                f"layer {layer.name!r}: type {layer.type} belongs to a training net; convert "
                "a deploy prototxt (inputs declared, no data or loss layers)"
            )
        for b in layer.bottom:
            if b not in blobs:
                raise CaffeError(
                    f"layer {layer.name!r}: bottom blob {b!r} is not produced before it"
                )
        bottoms = [blobs[b] for b in layer.bottom]
        consumed.update(layer.bottom)
        tops = _LAYERS.get(layer.type)
        if tops is None:
            raise CaffeError(f"layer {layer.name!r}: layer type {layer.type} is not supported")
        try:
            outs = tops(layer, bottoms, plan, frames_ref)
        except CaffeError:
            raise
        except Exception as e:  # a Keras shape error, etc.: name the layer
            raise CaffeError(f"layer {layer.name!r} ({layer.type}): {e}".splitlines()[0]) from None
        if len(outs) != len(layer.top):
            raise CaffeError(
                f"layer {layer.name!r}: expected {len(outs)} tops, got {len(layer.top)}"
            )
        for top, blob in zip(layer.top, outs):
            blobs[top] = blob
            produced.append(top)
    outputs = []
    for top in produced:
        if top not in outputs and not _used_after(net_layers, top):
            outputs.append(top)
    if not outputs:
        raise CaffeError("the net has no output blob")
    model = keras.Model(
        list(keras_inputs.values()) if len(keras_inputs) > 1 else next(iter(keras_inputs.values())),
        [blobs[o].tensor for o in outputs] if len(outputs) > 1 else blobs[outputs[0]].tensor,
        name=_keras_name(name or net.name or "caffe_net"),
    )
    converted = Converted(model, blobs, plan, keras_inputs, outputs)
    if weights is not None:
        load_weights(converted, weights)
    return converted


def _used_after(net_layers, top: str) -> bool:
    """Whether some layer reads `top` after the last layer that writes it (Caffe's net outputs)."""
    last_write = max(i for i, layer in enumerate(net_layers) if top in layer.top)
    return any(top in layer.bottom for layer in net_layers[last_write + 1 :])


# -- layers ------------------------------------------------------------------------------------


def _one(layer, bottoms, n=1):
    if len(bottoms) != n:
        raise CaffeError(f"layer {layer.name!r}: expected {n} bottom blob(s), got {len(bottoms)}")
    return bottoms[0]


def _convolution(layer, bottoms, plan, _):
    b = _one(layer, bottoms)
    p = layer.convolution_param
    if b.layout != "image":
        raise CaffeError(f"layer {layer.name!r}: Convolution needs an image (N, C, H, W) bottom")
    if any(d != 1 for d in p.dilation) or p.axis != 1:
        raise CaffeError(f"layer {layer.name!r}: dilation and axis != 1 are not supported")
    kh, kw = _pair(p.kernel_size, p.kernel_h, p.kernel_w, 0)
    sh, sw = _pair(p.stride, p.stride_h, p.stride_w, 1)
    ph, pw = _pair(p.pad, p.pad_h, p.pad_w, 0)
    if not kh or not kw:
        raise CaffeError(f"layer {layer.name!r}: no kernel_size")
    n, c, h, w = b.shape
    group, out = int(p.group), int(p.num_output)
    if c % group or out % group:
        raise CaffeError(
            f"layer {layer.name!r}: {c} inputs / {out} outputs not divisible by group {group}"
        )
    x = b.tensor
    name = _keras_name(layer.name)
    if ph or pw:
        x = layers.ZeroPadding2D((ph, pw), name=f"{name}_pad")(x)
    conv = GroupedConv2D(
        out, (kh, kw), strides=(sh, sw), groups=group, use_bias=p.bias_term, name=name
    )
    y = conv(x)
    shape = (n, out, _conv_out(h, kh, sh, ph), _conv_out(w, kw, sw, pw))
    expect = [(out, c // group, kh, kw)] + ([(out,)] if p.bias_term else [])
    plan.append((layer.name, conv, "conv", {"expect": expect}))
    return [Blob(y, shape, "image", b.folded)]


def _pooling(layer, bottoms, plan, _):
    b = _one(layer, bottoms)
    p = layer.pooling_param
    if b.layout != "image":
        raise CaffeError(f"layer {layer.name!r}: Pooling needs an image bottom")
    if p.global_pooling:
        raise CaffeError(f"layer {layer.name!r}: global_pooling is not supported")
    kh, kw = _pair([p.kernel_size] if p.HasField("kernel_size") else [], p.kernel_h, p.kernel_w, 0)
    sh, sw = _pair([p.stride] if p.HasField("stride") else [], p.stride_h, p.stride_w, 1)
    ph, pw = _pair([p.pad] if p.HasField("pad") else [], p.pad_h, p.pad_w, 0)
    n, c, h, w = b.shape
    oh, ow = CaffeMaxPool2D.out_size(h, kh, sh, ph), CaffeMaxPool2D.out_size(w, kw, sw, pw)
    name = _keras_name(layer.name)
    if p.pool == 0:  # MAX
        y = CaffeMaxPool2D((kh, kw), (sh, sw), (ph, pw), name=name)(b.tensor)
    elif p.pool == 1:  # AVE: only where no window overhangs (Caffe's padded-area divisor)
        if ph or pw or (oh - 1) * sh + kh != h or (ow - 1) * sw + kw != w:
            raise CaffeError(
                f"layer {layer.name!r}: AVE pooling with padding or overhang is not supported"
            )
        y = layers.AveragePooling2D((kh, kw), (sh, sw), name=name)(b.tensor)
    else:
        raise CaffeError(f"layer {layer.name!r}: STOCHASTIC pooling is not supported")
    return [Blob(y, (n, c, oh, ow), "image", b.folded)]


def _lrn(layer, bottoms, plan, _):
    b = _one(layer, bottoms)
    p = layer.lrn_param
    if p.norm_region != 0 or b.layout != "image":
        raise CaffeError(f"layer {layer.name!r}: only ACROSS_CHANNELS LRN on an image is supported")
    y = LRN(
        int(p.local_size), float(p.alpha), float(p.beta), float(p.k), name=_keras_name(layer.name)
    )(b.tensor)
    return [dataclasses.replace(b, tensor=y)]


def _relu(layer, bottoms, plan, _):
    b = _one(layer, bottoms)
    slope = float(layer.relu_param.negative_slope)
    y = layers.ReLU(negative_slope=slope, name=_keras_name(layer.name))(b.tensor)
    return [dataclasses.replace(b, tensor=y)]


def _activation(kind):
    def make(layer, bottoms, plan, _):
        b = _one(layer, bottoms)
        y = layers.Activation(kind, name=_keras_name(layer.name))(b.tensor)
        return [dataclasses.replace(b, tensor=y)]

    return make


def _dropout(layer, bottoms, plan, _):
    b = _one(layer, bottoms)
    rate = float(layer.dropout_param.dropout_ratio)
    y = layers.Dropout(rate, name=_keras_name(layer.name))(b.tensor)
    return [dataclasses.replace(b, tensor=y)]


def _inner_product(layer, bottoms, plan, _):
    b = _one(layer, bottoms)
    p = layer.inner_product_param
    axis = p.axis + len(b.shape) if p.axis < 0 else p.axis
    out = int(p.num_output)
    name = _keras_name(layer.name)
    meta = {}
    x = b.tensor
    if b.layout == "image" and axis == 1:
        n, c, h, w = b.shape
        x = layers.Flatten(name=f"{name}_flatten")(x)
        meta["chw"] = (c, h, w)
        shape, layout = (n, out), "flat"
    elif axis == len(b.shape) - 1 and b.layout in ("flat", "seq"):
        shape, layout = (*b.shape[:-1], out), b.layout
    else:
        raise CaffeError(
            f"layer {layer.name!r}: InnerProduct axis {p.axis} on a {b.layout} blob of shape "
            f"{b.shape} is not supported"
        )
    fan_in = int(np.prod(b.shape[axis:]))
    dense = layers.Dense(out, use_bias=p.bias_term, name=name)
    y = dense(x)
    meta["transpose"] = bool(p.transpose)
    meta["expect"] = [(fan_in, out) if p.transpose else (out, fan_in)] + (
        [(out,)] if p.bias_term else []
    )
    plan.append((layer.name, dense, "ip", meta))
    return [Blob(y, shape, layout, b.folded)]


def _reshape(layer, bottoms, plan, frames_ref):
    b = _one(layer, bottoms)
    p = layer.reshape_param
    if p.axis != 0 or p.num_axes != -1:
        raise CaffeError(f"layer {layer.name!r}: Reshape with axis/num_axes is not supported")
    dims = [int(d) for d in p.shape.dim]
    dims = [b.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    if dims.count(-1) == 1:
        known = int(np.prod([d for d in dims if d != -1]))
        dims[dims.index(-1)] = int(np.prod(b.shape)) // known
    if int(np.prod(dims)) != int(np.prod(b.shape)):
        raise CaffeError(f"layer {layer.name!r}: cannot reshape {b.shape} to {tuple(dims)}")
    name = _keras_name(layer.name)
    if b.folded and len(dims) >= 2 and dims[0] * dims[1] == b.shape[0]:
        # Caffe: (T*N, ...) time-major -> (T, N, ...); here (N*T, ...) -> (N, T, ...).
        if b.layout == "folded":
            if len(dims) != 2:
                raise CaffeError(f"layer {layer.name!r}: per-frame markers must reshape to (T, N)")
            return [Blob(b.tensor, tuple(dims), "seq")]
        rest = dims[2:]
        per_item = b.shape[1:]
        if b.layout == "image" and list(rest) != list(per_item):
            raise CaffeError(
                f"layer {layer.name!r}: reshaping image blobs across time is not supported"
            )
        if int(np.prod(rest)) != int(np.prod(per_item)) or (
            b.layout == "flat" and list(rest) != list(per_item)
        ):
            raise CaffeError(
                f"layer {layer.name!r}: only (T, N, same per-frame shape) time splits are supported"
            )
        y = UnfoldTime(name=name)(b.tensor, frames_ref)
        return [Blob(y, tuple(dims), "seq" if b.layout == "flat" else "image")]
    if b.layout in ("flat", "seq") and dims[: 2 if b.layout == "seq" else 1] == list(
        b.shape[: 2 if b.layout == "seq" else 1]
    ):
        lead = 2 if b.layout == "seq" else 1
        y = layers.Reshape(tuple(dims[lead:]), name=name)(b.tensor) if lead == 1 else b.tensor
        if lead == 2 and list(dims[2:]) != list(b.shape[2:]):
            raise CaffeError(
                f"layer {layer.name!r}: reshaping the features of a sequence is not supported"
            )
        return [Blob(y, tuple(dims), b.layout, b.folded)]
    raise CaffeError(
        f"layer {layer.name!r}: Reshape of {b.shape} to {tuple(dims)} is not supported"
    )


def _flatten(layer, bottoms, plan, _):
    b = _one(layer, bottoms)
    p = layer.flatten_param
    if p.axis != 1 or p.end_axis != -1:
        raise CaffeError(f"layer {layer.name!r}: Flatten with axis/end_axis is not supported")
    name = _keras_name(layer.name)
    x = b.tensor
    if b.layout == "image":  # Caffe flattens C, H, W
        x = layers.Permute((3, 1, 2), name=f"{name}_chw")(x)
    y = layers.Flatten(name=name)(x)
    return [Blob(y, (b.shape[0], int(np.prod(b.shape[1:]))), "flat", b.folded)]


def _softmax(layer, bottoms, plan, _):
    b = _one(layer, bottoms)
    axis = b.keras_axis(int(layer.softmax_param.axis))
    y = layers.Softmax(axis=axis, name=_keras_name(layer.name))(b.tensor)
    return [dataclasses.replace(b, tensor=y)]


def _same_layout(layer, bottoms):
    if len({(b.layout, b.folded) for b in bottoms}) != 1:
        raise CaffeError(f"layer {layer.name!r}: bottoms of different kinds")
    return bottoms[0]


def _concat(layer, bottoms, plan, _):
    b = _same_layout(layer, bottoms)
    p = layer.concat_param
    axis = int(p.concat_dim) if p.HasField("concat_dim") else int(p.axis)
    axis = axis + len(b.shape) if axis < 0 else axis
    y = layers.Concatenate(axis=b.keras_axis(axis), name=_keras_name(layer.name))(
        [x.tensor for x in bottoms]
    )
    shape = list(b.shape)
    shape[axis] = sum(x.shape[axis] for x in bottoms)
    return [Blob(y, tuple(shape), b.layout, b.folded)]


def _slice(layer, bottoms, plan, _):
    b = _one(layer, bottoms)
    p = layer.slice_param
    axis = int(p.slice_dim) if p.HasField("slice_dim") else int(p.axis)
    axis = axis + len(b.shape) if axis < 0 else axis
    size = b.shape[axis]
    points = [int(x) for x in p.slice_point]
    if not points:
        n = len(layer.top)
        if size % n:
            raise CaffeError(f"layer {layer.name!r}: cannot slice {size} into {n} equal parts")
        points = [size // n * i for i in range(1, n)]
    outs = CaffeSlice(b.keras_axis(axis), points, name=_keras_name(layer.name))(b.tensor)
    bounds = [0, *points, size]
    blobs = []
    for t, lo, hi in zip(outs, bounds[:-1], bounds[1:]):
        shape = list(b.shape)
        shape[axis] = hi - lo
        blobs.append(Blob(t, tuple(shape), b.layout, b.folded))
    return blobs


def _eltwise(layer, bottoms, plan, _):
    b = _same_layout(layer, bottoms)
    p = layer.eltwise_param
    name = _keras_name(layer.name)
    xs = [x.tensor for x in bottoms]
    if p.operation == 1:  # SUM
        coeffs = list(p.coeff) or [1.0] * len(xs)
        if any(c != 1.0 for c in coeffs):
            xs = [
                layers.Rescaling(float(c), name=f"{name}_coeff{i}")(x)
                for i, (c, x) in enumerate(zip(coeffs, xs))
            ]
        y = layers.Add(name=name)(xs)
    elif p.operation == 0:
        y = layers.Multiply(name=name)(xs)
    else:
        y = layers.Maximum(name=name)(xs)
    return [dataclasses.replace(b, tensor=y)]


def _split(layer, bottoms, plan, _):
    b = _one(layer, bottoms)
    return [b] * len(layer.top)


def _lstm(layer, bottoms, plan, _):
    p = layer.recurrent_param
    if p.expose_hidden:
        raise CaffeError(f"layer {layer.name!r}: expose_hidden is not supported")
    if len(bottoms) not in (2, 3):
        raise CaffeError(f"layer {layer.name!r}: LSTM needs x, cont [, static input] bottoms")
    x, cont = bottoms[0], bottoms[1]
    static = bottoms[2] if len(bottoms) == 3 else None
    if x.layout != "seq" or cont.layout != "seq" or len(cont.shape) != 2:
        raise CaffeError(f"layer {layer.name!r}: LSTM needs (T, N, ...) x and (T, N) cont blobs")
    if len(x.shape) != 3:
        raise CaffeError(f"layer {layer.name!r}: LSTM input must be (T, N, D), got {x.shape}")
    h = int(p.num_output)
    name = _keras_name(layer.name)
    lstm = CaffeLSTM(h, static_input=static is not None, name=name)
    args = [x.tensor, cont.tensor] + ([static.tensor] if static is not None else [])
    y = lstm(*args)
    d = x.shape[2]
    expect = [(4 * h, d), (4 * h,)]
    if static is not None:
        expect.append((4 * h, int(np.prod(static.shape[1:]))))
    expect.append((4 * h, h))
    plan.append((layer.name, lstm, "lstm", {"expect": expect}))
    return [Blob(y, (x.shape[0], x.shape[1], h), "seq")]


def _embed(layer, bottoms, plan, _):
    b = _one(layer, bottoms)
    p = layer.embed_param
    emb = CaffeEmbed(int(p.input_dim), int(p.num_output), p.bias_term, name=_keras_name(layer.name))
    y = emb(b.tensor)
    expect = [(int(p.input_dim), int(p.num_output))] + (
        [(int(p.num_output),)] if p.bias_term else []
    )
    plan.append((layer.name, emb, "embed", {"expect": expect}))
    return [Blob(y, (*b.shape, int(p.num_output)), b.layout, b.folded)]


_LAYERS = {
    "Convolution": _convolution,
    "Pooling": _pooling,
    "LRN": _lrn,
    "ReLU": _relu,
    "TanH": _activation("tanh"),
    "Sigmoid": _activation("sigmoid"),
    "Dropout": _dropout,
    "InnerProduct": _inner_product,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Softmax": _softmax,
    "Concat": _concat,
    "Slice": _slice,
    "Eltwise": _eltwise,
    "Split": _split,
    "LSTM": _lstm,
    "Embed": _embed,
}


# -- weights -----------------------------------------------------------------------------------


def fit_blob(blob: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A caffemodel blob in the shape the prototxt implies (V1 blobs are 4-D: (1, 1, out, in))."""
    if tuple(blob.shape) == tuple(shape):
        return blob
    squeezed = tuple(blob.shape)
    while len(squeezed) > len(shape) and squeezed[0] == 1:
        squeezed = squeezed[1:]
    if squeezed == tuple(shape):
        return blob.reshape(shape)
    raise CaffeError(
        f"{where}: caffemodel blob has shape {tuple(blob.shape)}, the prototxt needs {tuple(shape)}"
    )


def keras_weights(kind: str, blobs: list[np.ndarray], meta: dict, where: str) -> list[np.ndarray]:
    """Caffe blobs of one layer -> the Keras weights of the converted layer (in its order)."""
    expect = meta["expect"]
    if len(blobs) != len(expect):
        raise CaffeError(
            f"{where}: caffemodel has {len(blobs)} blobs, the prototxt needs {len(expect)}"
        )
    blobs = [fit_blob(b, s, where) for b, s in zip(blobs, expect)]
    if kind == "conv":
        return [blobs[0].transpose(2, 3, 1, 0), *blobs[1:]]
    if kind == "ip":
        w = blobs[0] if meta["transpose"] else blobs[0].T  # (in, out)
        if "chw" in meta:
            c, h, wd = meta["chw"]
            w = w.reshape(c, h, wd, -1).transpose(1, 2, 0, 3).reshape(c * h * wd, -1)
        return [w, *blobs[1:]]
    if kind == "embed":
        return blobs
    if kind == "lstm":
        return [b.T if b.ndim == 2 else b for b in blobs]
    raise CaffeError(f"{where}: unknown weight kind {kind}")


def load_weights(converted: Converted, weights: dict[str, list[np.ndarray]]) -> None:
    """Sets every planned layer's weights from {caffe layer name: blobs}."""
    for caffe_name, layer, kind, meta in converted.plan:
        where = f"layer {caffe_name!r}"
        if caffe_name not in weights:
            raise CaffeError(f"{where}: not in the caffemodel (it has {_some(weights)})")
        values = keras_weights(kind, weights[caffe_name], meta, where)
        current = layer.get_weights()
        for v, c in zip(values, current):
            if tuple(v.shape) != tuple(c.shape):
                raise CaffeError(f"{where}: weight of shape {v.shape} where Keras has {c.shape}")
        layer.set_weights([np.ascontiguousarray(v, np.float32) for v in values])


def _some(weights) -> str:
    names = list(weights)
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else "no layers"
