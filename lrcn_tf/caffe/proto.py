"""Reading Caffe's files with protobuf alone: .prototxt nets and solvers, .caffemodel weights.

The message classes come from Caffe's own schema (`_schema.py`, caffe.proto of BVLC Caffe 1.0
compiled to a descriptor), built at import time; no Caffe installation is needed. Both net
formats are read: the current `layer { type: "Convolution" }` (V2) and the old
`layers { type: CONVOLUTION }` (V1, which many released caffemodels use); V1 layers are turned
into V2 ones here (type names, `blobs_lr`/`weight_decay` into `param` blocks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, text_format

from lrcn_tf.caffe._schema import SERIALIZED
from lrcn_tf.errors import UserError


class CaffeError(UserError):
    """A Caffe file that cannot be read or converted; the message is one line naming it."""


def _message_classes():
    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(SERIALIZED).file:
        pool.Add(f)
    try:
        from google.protobuf.message_factory import GetMessageClass
    except ImportError:  # protobuf < 4.22
        from google.protobuf.message_factory import MessageFactory

        GetMessageClass = MessageFactory(pool).GetPrototype  # noqa: N806
    names = ("NetParameter", "SolverParameter", "LayerParameter", "BlobProto", "NetState")
    return {n: GetMessageClass(pool.FindMessageTypeByName(f"caffe.{n}")) for n in names}


_CLASSES = _message_classes()
NetParameter = _CLASSES["NetParameter"]
SolverParameter = _CLASSES["SolverParameter"]
LayerParameter = _CLASSES["LayerParameter"]
BlobProto = _CLASSES["BlobProto"]
NetState = _CLASSES["NetState"]

# V1LayerParameter.LayerType names -> V2 type strings (those a V1 file may hold).
V1_TYPES = {
    "ABSVAL": "AbsVal",
    "ACCURACY": "Accuracy",
    "ARGMAX": "ArgMax",
    "BNLL": "BNLL",
    "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution",
    "DATA": "Data",
    "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise",
    "EXP": "Exp",
    "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss",
    "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN",
    "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN",
    "POOLING": "Pooling",
    "POWER": "Power",
    "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence",
    "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split",
    "SLICE": "Slice",
    "TANH": "TanH",
    "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}

# Parameter sub-messages a V1 layer may carry under the same field name as a V2 layer.
_V1_PARAMS = (
    "accuracy_param",
    "argmax_param",
    "concat_param",
    "contrastive_loss_param",
    "convolution_param",
    "data_param",
    "dropout_param",
    "dummy_data_param",
    "eltwise_param",
    "exp_param",
    "hdf5_data_param",
    "hdf5_output_param",
    "hinge_loss_param",
    "image_data_param",
    "infogain_loss_param",
    "inner_product_param",
    "lrn_param",
    "memory_data_param",
    "mvn_param",
    "pooling_param",
    "power_param",
    "relu_param",
    "sigmoid_param",
    "softmax_param",
    "slice_param",
    "tanh_param",
    "threshold_param",
    "window_data_param",
    "transform_param",
    "loss_param",
)


def _upgrade_v1(v1) -> LayerParameter:
    """A V1LayerParameter as a V2 LayerParameter (name, type, bottoms, tops, params, blobs)."""
    layer = LayerParameter()
    layer.name = v1.name
    type_name = v1.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_number[v1.type].name
    if type_name not in V1_TYPES:
        raise CaffeError(f"layer {v1.name!r}: V1 layer type {type_name} is not supported")
    layer.type = V1_TYPES[type_name]
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    layer.loss_weight.extend(v1.loss_weight)
    layer.blobs.extend(v1.blobs)
    n = max(len(v1.blobs_lr), len(v1.weight_decay), len(v1.param))
    for i in range(n):
        spec = layer.param.add()
        if i < len(v1.param):
            spec.name = v1.param[i]
        if i < len(v1.blobs_lr):
            spec.lr_mult = v1.blobs_lr[i]
        if i < len(v1.weight_decay):
            spec.decay_mult = v1.weight_decay[i]
    for field in _V1_PARAMS:
        if v1.HasField(field):
            getattr(layer, field).CopyFrom(getattr(v1, field))
    return layer


def layers_of(net) -> list:
    """The net's layers as V2 LayerParameters, V1 `layers` upgraded (V2 first if both)."""
    return list(net.layer) + [_upgrade_v1(v1) for v1 in net.layers]


def read_prototxt(path: str | Path, message=None):
    """Parses a text-format .prototxt into a NetParameter (or `message`, e.g. a solver)."""
    path = Path(path)
    if not path.is_file():
        raise CaffeError(f"{path}: no such file")
    msg = NetParameter() if message is None else message
    try:
        text_format.Merge(path.read_text(), msg)
    except text_format.ParseError as e:
        raise CaffeError(f"{path}: not a Caffe prototxt ({e})") from None
    return msg


def read_solver(path: str | Path):
    """Parses a solver .prototxt into a SolverParameter."""
    return read_prototxt(path, SolverParameter())


def read_caffemodel(path: str | Path):
    """Parses a binary .caffemodel (a NetParameter with blobs) into a NetParameter."""
    path = Path(path)
    if not path.is_file():
        raise CaffeError(f"{path}: no such file")
    net = NetParameter()
    try:
        net.ParseFromString(path.read_bytes())
    except Exception as e:  # google.protobuf.message.DecodeError and friends
        raise CaffeError(f"{path}: not a binary caffemodel ({type(e).__name__}: {e})") from None
    if not net.layer and not net.layers:
        raise CaffeError(f"{path}: no layers in it (is it a caffemodel?)")
    return net


def blob_array(blob) -> np.ndarray:
    """A BlobProto's data as a float32 array of its shape (legacy num/channels/... if no shape)."""
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:
        shape = (blob.num, blob.channels, blob.height, blob.width)
    data = blob.data if len(blob.data) else blob.double_data
    arr = np.asarray(data, np.float32)
    if arr.size != int(np.prod(shape)):
        raise CaffeError(f"a blob of shape {shape} holds {arr.size} values")
    return arr.reshape(shape)


def weights_of(net) -> dict[str, list[np.ndarray]]:
    """{layer name: [its blobs as float32 arrays]} for every layer of a caffemodel with blobs."""
    out = {}
    for layer in layers_of(net):
        if len(layer.blobs):
            try:
                out[layer.name] = [blob_array(b) for b in layer.blobs]
            except CaffeError as e:
                raise CaffeError(f"layer {layer.name!r}: {e}") from None
    return out


def read_weights(path: str | Path) -> dict[str, list[np.ndarray]]:
    """{layer name: [blobs]} of a .caffemodel (see weights_of)."""
    return weights_of(read_caffemodel(path))


def _meets_rule(rule, phase: int, level: int, stages: set[str]) -> bool:
    if rule.HasField("phase") and rule.phase != phase:
        return False
    if rule.HasField("min_level") and level < rule.min_level:
        return False
    if rule.HasField("max_level") and level > rule.max_level:
        return False
    if any(s not in stages for s in rule.stage):
        return False
    return not any(s in stages for s in rule.not_stage)


def filter_layers(net, phase: str = "TEST", stages=(), level: int = 0) -> list:
    """The layers Caffe instantiates for a NetState (Net::FilterNet's include/exclude rules)."""
    phase_id = {"TRAIN": 0, "TEST": 1}[phase.upper()]
    stages = set(stages)
    kept = []
    for layer in layers_of(net):
        if layer.include:
            keep = any(_meets_rule(r, phase_id, level, stages) for r in layer.include)
        else:
            keep = not any(_meets_rule(r, phase_id, level, stages) for r in layer.exclude)
        if keep:
            kept.append(layer)
    return kept


def net_inputs(net) -> dict[str, tuple[int, ...]]:
    """{name: shape} of the net's declared inputs (`input` + `input_dim`/`input_shape`)."""
    names = list(net.input)
    if not names:
        return {}
    if len(net.input_shape):
        shapes = [tuple(int(d) for d in s.dim) for s in net.input_shape]
    else:
        dims = [int(d) for d in net.input_dim]
        shapes = [tuple(dims[4 * i : 4 * i + 4]) for i in range(len(dims) // 4)]
    if len(shapes) != len(names):
        raise CaffeError(f"net declares {len(names)} inputs but {len(shapes)} input shapes")
    return dict(zip(names, shapes))
