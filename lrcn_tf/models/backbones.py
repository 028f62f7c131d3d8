"""Image backbones as Keras 3 functional models: frame -> fc7 features (or fc8 logits).

Every backbone is built by a function with the same keyword API and returns a `keras.Model`
whose layers are named as in Caffe, so any feature is reachable by name:

    net = caffenet((227, 227, 3), include_top=True)      # fc8: 1000 logits
    fc7 = features(net, "relu7")                         # frame -> post-ReLU fc7, shares weights
    trunk = build("hybrid_caffenet", (227, 227, 3), dropout=0.5)

| function | what it is |
|---|---|
| `hybrid_caffenet` | the activity-recognition net of LRCN (CaffeNet/ZF hybrid, grouped convs) |
| `caffenet` | the Caffe reference model (AlexNet with pooling before LRN), used for captioning |
| `alexnet` | AlexNet proper (LRN before pooling) |
| `small_cnn` | a few conv layers for the embedded data and CPUs |
| `vgg16`, `resnet50` | `keras.applications` trunks with our own fc6/fc7 on top |

Layer names: `conv1..conv5`, `pool*`, `norm*` (LRN), `fc6` and `fc7` (Dense, before the ReLU),
`relu6`/`relu7` (what Caffe's in-place ReLU leaves in the fc6/fc7 blobs), `drop6`/`drop7`
(when `dropout` is set) and `fc8` (when `include_top`). The model's output is the last of
these. Inputs are preprocessed frames (float, mean subtracted, in the channel order the
weights expect; Caffe and `keras.applications` "caffe" mode both use BGR minus
103.939/116.779/123.68). Only `keras.layers` and `keras.ops`: runs on every Keras backend.

`weights`: None (Caffe's fillers, or Keras' for `small_cnn`), a `.weights.h5` file written by
`model.save_weights` of the same backbone, or an `.npz` holding one array per variable path
("conv1/kernel", "conv1/bias", ...) in Keras layout (kernels HWIO, per group for grouped
convolutions). `vgg16`/`resnet50` also take "imagenet" (downloaded by Keras).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

Shape = Sequence[int]


@keras.saving.register_keras_serializable(package="lrcn_tf")
class LRN(layers.Layer):
    """Caffe's cross-channel local response normalisation (`norm_region: ACROSS_CHANNELS`).

    out = x / (k + alpha / n * sum_{c' within n/2 of c} x_{c'}^2) ** beta. Caffe divides alpha
    by the window size n; tf.nn.local_response_normalization does not, hence this layer (it
    also runs on every Keras backend).
    """

    def __init__(self, local_size=5, alpha=1e-4, beta=0.75, k=1.0, **kwargs):
        super().__init__(**kwargs)
        if local_size % 2 != 1:
            raise ValueError(f"LRN local_size must be odd, got {local_size}")
        self.local_size, self.alpha, self.beta, self.k = local_size, alpha, beta, k

    def call(self, x):
        # The window sums as one matmul with a 0/1 band matrix (channels x channels): one
        # library kernel instead of local_size slices of a padded copy; and scale ** 0.75 as
        # two square roots (each correctly rounded; rsqrt is not) instead of exp/log
        # (docs/performance.md).
        channels = x.shape[-1]
        offset = np.subtract.outer(np.arange(channels), np.arange(channels))
        band = ops.cast(np.abs(offset) <= self.local_size // 2, x.dtype)
        window = ops.matmul(ops.square(x), band)
        scale = self.k + (self.alpha / self.local_size) * window
        if self.beta == 0.75:  # Caffe's default: scale ** 0.75 without exp/log
            root = ops.sqrt(scale)
            return x / (root * ops.sqrt(root))
        return x / ops.power(scale, self.beta)

    def get_config(self):
        return {
            **super().get_config(),
            "local_size": self.local_size,
            "alpha": self.alpha,
            "beta": self.beta,
            "k": self.k,
        }


@keras.saving.register_keras_serializable(package="lrcn_tf")
class GroupedConv2D(layers.Conv2D):
    """`Conv2D(groups=g)` computed as g convolutions on channel slices, then concatenated.

    Same kernel (kh, kw, in/g, out), weights and outputs as Keras' grouped Conv2D, which
    TensorFlow's CPU kernels support but run slowly backwards (docs/performance.md).
    It is also what Caffe does (one convolution per group).
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1:
            return super().convolution_op(inputs, kernel)
        pieces = zip(
            ops.split(inputs, self.groups, axis=-1), ops.split(kernel, self.groups, axis=-1)
        )
        return ops.concatenate(
            [
                ops.conv(
                    x,
                    k,
                    strides=list(self.strides),
                    padding=self.padding,
                    dilation_rate=self.dilation_rate,
                    data_format=self.data_format,
                )
                for x, k in pieces
            ],
            axis=-1,
        )


def caffe_max_pool(x, size: int, stride: int, name: str):
    """Max pooling with Caffe's output size, ceil((H - size) / stride) + 1.

    Keras rounds down; Caffe rounds up (e.g. 13x13 instead of 12x12 after conv2 of the hybrid
    net). We pad the bottom/right edge with zeros first: every pooled layer here follows a
    ReLU, so zero padding gives the same maxima as Caffe's implicit -inf padding.
    """
    h, w = x.shape[1], x.shape[2]
    pads = []
    for n in (h, w):
        out = math.ceil(max(n - size, 0) / stride) + 1
        pads.append(max((out - 1) * stride + size - n, 0))
    if any(pads):
        x = layers.ZeroPadding2D(((0, pads[0]), (0, pads[1])), name=f"{name}_pad")(x)
    return layers.MaxPooling2D(size, stride, name=name)(x)


def _gauss(std: float):
    return keras.initializers.RandomNormal(stddev=std)


def _const(value: float):
    return keras.initializers.Constant(value)


def _conv(x, filters, kernel, stride=1, pad=0, groups=1, bias=0.0, name=""):
    """Caffe convolution (explicit symmetric padding, gaussian 0.01 weights) + ReLU."""
    if pad:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    x = GroupedConv2D(
        filters,
        kernel,
        strides=stride,
        groups=groups,
        kernel_initializer=_gauss(0.01),
        bias_initializer=_const(bias),
        name=name,
    )(x)
    return layers.ReLU(name=name.replace("conv", "relu"))(x)


def _fc_head(x, fc_units, dropout, include_top, classes, fc_std=0.005, fc_bias=1.0):
    """fc6 -> relu6 [-> drop6] -> fc7 -> relu7 [-> drop7] [-> fc8], named as in Caffe."""
    x = layers.Flatten(name="flatten")(x) if len(x.shape) > 2 else x
    for i in (6, 7):
        x = layers.Dense(
            fc_units,
            kernel_initializer=_gauss(fc_std) if fc_std else "glorot_uniform",
            bias_initializer=_const(fc_bias),
            name=f"fc{i}",
        )(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"drop{i}")(x)
    if include_top:
        x = layers.Dense(classes, kernel_initializer=_gauss(0.01), name="fc8")(x)
    return x


def hybrid_caffenet(
    input_shape: Shape = (227, 227, 3),
    *,
    weights: str | None = None,
    dropout: float | None = 0.5,
    include_top: bool = False,
    classes: int = 1000,
    fc_units: int = 4096,
    filters: Sequence[int] = (96, 384, 512, 512, 384),
    name: str = "hybrid_caffenet",
) -> keras.Model:
    """The CaffeNet/ZF hybrid that LRCN used for activity recognition (paper Sec. 4).

    conv1 96 7x7/2 -> pool 3/2 -> LRN; conv2 384 5x5/2 group 2 -> pool 3/2 -> LRN; conv3 512
    3x3 pad 1; conv4 512 3x3 pad 1 group 2; conv5 384 3x3 pad 1 group 2 -> pool 3/2; fc6, fc7
    4096 (as in lisa-caffe-public `examples/LRCN_activity_recognition`). 227x227 -> 6x6x384.
    Random fillers as that net's prototxt (`train_test_singleFrame_RGB.prototxt`): every
    conv and fc weight gaussian std 0.01, every bias 0.1 (not CaffeNet's). `filters`
    (conv1..conv5 widths) narrows it, as the Caffe-parity fixtures do.
    """
    f = tuple(filters)
    inp = keras.Input(tuple(input_shape), name="frame")
    x = _conv(inp, f[0], 7, stride=2, bias=0.1, name="conv1")
    x = LRN(name="norm1")(caffe_max_pool(x, 3, 2, "pool1"))
    x = _conv(x, f[1], 5, stride=2, groups=2, bias=0.1, name="conv2")
    x = LRN(name="norm2")(caffe_max_pool(x, 3, 2, "pool2"))
    x = _conv(x, f[2], 3, pad=1, bias=0.1, name="conv3")
    x = _conv(x, f[3], 3, pad=1, groups=2, bias=0.1, name="conv4")
    x = _conv(x, f[4], 3, pad=1, groups=2, bias=0.1, name="conv5")
    x = caffe_max_pool(x, 3, 2, "pool5")
    x = _fc_head(x, fc_units, dropout, include_top, classes, fc_std=0.01, fc_bias=0.1)
    return _finish(keras.Model(inp, x, name=name), weights)


def _caffenet_like(
    input_shape,
    weights,
    dropout,
    include_top,
    classes,
    fc_units,
    name,
    lrn_first,
    filters=(96, 256, 384, 384, 256),
):
    f = tuple(filters)
    inp = keras.Input(tuple(input_shape), name="image")

    def pool_norm(x, i):
        if lrn_first:  # AlexNet: LRN, then pooling
            return caffe_max_pool(LRN(name=f"norm{i}")(x), 3, 2, f"pool{i}")
        return LRN(name=f"norm{i}")(caffe_max_pool(x, 3, 2, f"pool{i}"))  # CaffeNet

    x = pool_norm(_conv(inp, f[0], 11, stride=4, name="conv1"), 1)
    x = pool_norm(_conv(x, f[1], 5, pad=2, groups=2, bias=1.0, name="conv2"), 2)
    x = _conv(x, f[2], 3, pad=1, name="conv3")
    x = _conv(x, f[3], 3, pad=1, groups=2, bias=1.0, name="conv4")
    x = _conv(x, f[4], 3, pad=1, groups=2, bias=1.0, name="conv5")
    x = caffe_max_pool(x, 3, 2, "pool5")
    x = _fc_head(x, fc_units, dropout, include_top, classes)
    return _finish(keras.Model(inp, x, name=name), weights)


def caffenet(
    input_shape: Shape = (227, 227, 3),
    *,
    weights: str | None = None,
    dropout: float | None = 0.5,
    include_top: bool = True,
    classes: int = 1000,
    fc_units: int = 4096,
    filters: Sequence[int] = (96, 256, 384, 384, 256),
    name: str = "caffenet",
) -> keras.Model:
    """BVLC's CaffeNet reference model (`bvlc_reference_caffenet`): AlexNet, pooling before LRN.

    conv1 96 11x11/4 -> pool -> LRN; conv2 256 5x5 pad 2 group 2 -> pool -> LRN; conv3 384;
    conv4 384 group 2; conv5 256 group 2 -> pool; fc6, fc7 4096; fc8 `classes` logits.
    `filters` (conv1..conv5 widths) narrows it, as the Caffe-parity fixtures do.
    """
    return _caffenet_like(
        input_shape, weights, dropout, include_top, classes, fc_units, name, False, filters
    )


def alexnet(
    input_shape: Shape = (227, 227, 3),
    *,
    weights: str | None = None,
    dropout: float | None = 0.5,
    include_top: bool = True,
    classes: int = 1000,
    fc_units: int = 4096,
    name: str = "alexnet",
) -> keras.Model:
    """AlexNet as in Krizhevsky et al. 2012 (`bvlc_alexnet`): LRN before pooling."""
    return _caffenet_like(input_shape, weights, dropout, include_top, classes, fc_units, name, True)


def small_cnn(
    input_shape: Shape = (56, 56, 3),
    *,
    weights: str | None = None,
    dropout: float | None = 0.5,
    include_top: bool = False,
    classes: int = 1000,
    fc_units: int = 128,
    filters: Sequence[int] = (16, 32, 64),
    name: str = "small_cnn",
) -> keras.Model:
    """A small CaffeNet-shaped net for the embedded data on CPUs (not in the paper).

    conv1 5x5/2 (like the hybrid net's strided conv1), then 3x3 convs; ReLU and 2x2 max
    pooling after each; then fc6 -> fc7. He-initialised because it is trained from scratch
    (Caffe's gaussian 0.01 fillers assume ImageNet pre-training or a much longer schedule).
    56x56 input, default filters: about 2.8 M multiply-adds per frame.
    """
    inp = keras.Input(tuple(input_shape), name="frame")
    x = inp
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(
            f,
            5 if i == 1 else 3,
            strides=2 if i == 1 else 1,
            padding="same",
            kernel_initializer="he_normal",
            name=f"conv{i}",
        )(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = _fc_head(x, fc_units, dropout, include_top, classes, fc_std=None, fc_bias=0.0)
    return _finish(keras.Model(inp, x, name=name), weights)


def _applications(
    app_fn, flatten, input_shape, weights, dropout, include_top, classes, fc_units, name
):
    """A keras.applications trunk (as a nested model) with our fc6/fc7[/fc8] on top."""
    use_imagenet = weights == "imagenet"
    local = None if use_imagenet else weights
    if use_imagenet:
        try:
            trunk = app_fn(include_top=False, weights="imagenet", input_shape=tuple(input_shape))
        except Exception as e:  # no network, bad cache, ...
            raise RuntimeError(
                f"{name}: could not get the ImageNet weights ({e}); pass weights=None or a "
                "local .weights.h5 file instead"
            ) from e
    else:
        trunk = app_fn(include_top=False, weights=None, input_shape=tuple(input_shape))
    inp = keras.Input(tuple(input_shape), name="image")
    x = trunk(inp)
    x = layers.Flatten(name="flatten")(x) if flatten else layers.GlobalAveragePooling2D()(x)
    x = _fc_head(x, fc_units, dropout, include_top, classes, fc_std=None, fc_bias=0.0)
    model = keras.Model(inp, x, name=name)
    if use_imagenet and flatten and tuple(input_shape) == (224, 224, 3):
        _vgg_fc_from_imagenet(model)
    return _finish(model, local)


def _vgg_fc_from_imagenet(model: keras.Model) -> None:
    """VGG16's ImageNet fc1/fc2 become our fc6/fc7 when the input is 224x224 (same shapes)."""
    ref = keras.applications.VGG16(include_top=True, weights="imagenet")
    for ours, theirs in (("fc6", "fc1"), ("fc7", "fc2")):
        src = ref.get_layer(theirs).get_weights()
        if [w.shape for w in src] == [tuple(w.shape) for w in model.get_layer(ours).weights]:
            model.get_layer(ours).set_weights(src)


def vgg16(
    input_shape: Shape = (224, 224, 3),
    *,
    weights: str | None = "imagenet",
    dropout: float | None = 0.5,
    include_top: bool = False,
    classes: int = 1000,
    fc_units: int = 4096,
    name: str = "vgg16",
) -> keras.Model:
    """VGG16 conv layers from keras.applications; fc6/fc7 are VGG's fc1/fc2 at 224x224 with
    ImageNet weights, otherwise newly initialised. A deviation from the paper (it used the
    hybrid CaffeNet), offered as a stronger modern trunk."""
    app = keras.applications.VGG16
    return _applications(
        app, True, input_shape, weights, dropout, include_top, classes, fc_units, name
    )


def resnet50(
    input_shape: Shape = (224, 224, 3),
    *,
    weights: str | None = "imagenet",
    dropout: float | None = 0.5,
    include_top: bool = False,
    classes: int = 1000,
    fc_units: int = 1024,
    name: str = "resnet50",
) -> keras.Model:
    """ResNet50 from keras.applications, global average pooled, then new fc6/fc7 (ResNet has
    no fully connected layers to reuse). A deviation from the paper, like `vgg16`."""
    app = keras.applications.ResNet50
    return _applications(
        app, False, input_shape, weights, dropout, include_top, classes, fc_units, name
    )


BACKBONES: dict[str, Callable[..., keras.Model]] = {
    "hybrid_caffenet": hybrid_caffenet,
    "caffenet": caffenet,
    "alexnet": alexnet,
    "small_cnn": small_cnn,
    "vgg16": vgg16,
    "resnet50": resnet50,
}


def build(name: str, input_shape: Shape, **kwargs) -> keras.Model:
    """Builds the backbone `name` (a key of BACKBONES) with the keyword arguments above."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name](input_shape, **kwargs)


def features(backbone: keras.Model, layer: str = "relu7", name: str | None = None) -> keras.Model:
    """The sub-model from the backbone's input to `layer`'s output (weights shared)."""
    try:
        out = backbone.get_layer(layer).output
    except ValueError:
        names = [x.name for x in backbone.layers]
        raise ValueError(f"{backbone.name} has no layer {layer!r}; layers: {names}") from None
    return keras.Model(backbone.input, out, name=name or f"{backbone.name}_{layer}")


def _finish(model: keras.Model, weights: str | None) -> keras.Model:
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: keras.Model, path: str | Path) -> None:
    """Loads a `.weights.h5` file (Keras' own format), an `.npz` keyed by variable path, or a
    Caffe `.caffemodel` (a path, or a released model's name: `lrcn_tf.caffe.resolve_weights`),
    matched by layer name (`lrcn_tf.caffe.load_into`).

    Raises:
      FileNotFoundError: no such file.
      ValueError: an unknown format, or an `.npz` that lacks a variable or has a wrong shape
        (the message names the file and the variable).
    """
    path = Path(path)
    if path.suffix in ("", ".caffemodel"):
        from lrcn_tf.caffe import project  # not the package: its builder imports this module

        project.load_into(model, project.resolve_weights(path))
        return
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights {path}: no such file")
    if path.name.endswith(".weights.h5"):
        model.load_weights(str(path))
        return
    if path.suffix != ".npz":
        raise ValueError(f"backbone weights {path}: use a .weights.h5 or .npz file")
    with np.load(path) as arrays:
        for v in model.weights:
            if v.path not in arrays:
                raise ValueError(f"backbone weights {path}: no array for {v.path!r}")
            value = arrays[v.path]
            if tuple(value.shape) != tuple(v.shape):
                raise ValueError(
                    f"backbone weights {path}: {v.path!r} has shape {value.shape}, "
                    f"the model needs {tuple(v.shape)}"
                )
            v.assign(value)


def save_npz(model: keras.Model, path: str | Path) -> None:
    """Writes every variable of `model` to an `.npz` keyed by variable path (see load_weights)."""
    np.savez(path, **{v.path: keras.ops.convert_to_numpy(v) for v in model.weights})
