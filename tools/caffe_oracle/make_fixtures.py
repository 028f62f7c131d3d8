"""Runs the authors' nets in real Caffe and writes the parity fixtures (tests/fixtures/caffe/).

    bash ../shared/caffe_oracle/build.sh /opt/caffe                  # once: BVLC Caffe 1.0, CPU
    PYTHONPATH=/opt/caffe/src/python GLOG_minloglevel=2 /usr/bin/python3 \\
        tools/caffe_oracle/make_fixtures.py [--out tests/fixtures/caffe] [--orig DIR]

Runs under the Python pycaffe was built for (Debian's python3 with numpy 1.x), not the
project's venv; it needs only pycaffe and numpy, and exchanges .prototxt/.caffemodel/.npz
files with the tests.

For each net it takes the authors' prototxt (../shared/reference/original_code/), keeps every
layer's type, order, kernel, stride, pad, group, pooling and LRN parameters and the 227x227
input, and narrows the widths (`WIDTHS`) and the batch; then it draws seeded random weights,
scaled layer by layer on the fixture's own inputs so that activations keep Caffe-like
magnitudes (LRN does something) and the probabilities are far from uniform, saves them as a
.caffemodel, runs Caffe forward and records the inputs and the blobs:

- `single_frame`: deploy_singleFrame.prototxt, 2 frames;
- `lrcn`: deploy_lstm.prototxt, 4 time steps x 2 streams, time-major (row t*2 + n) as Caffe
  holds them, stream 1 reset (clip marker 0) at t = 2;
- `captioner_2f`, `captioner_2u`, `captioner_1u`: coco_caption/lrcn.prototxt in its factored
  2-layer, unfactored 2-layer and unfactored 1-layer stages as a deploy net (the data layers
  become inputs: image, cont_sentence, input_sentence; a Softmax "probs" on "predict"), 2
  images x 5 words, stream 1 restarting a sentence at t = 3; plus, for 2f, the greedy caption
  of each image from lrcn_word_to_preds.deploy.prototxt narrowed the same way, word by word
  as the authors' captioner.py does (previous word 0 = EOS first, cont 0 then 1).

And three iterations of the authors' solvers on the narrowed training nets (data layers
replaced by inputs holding one fixed batch, every dropout ratio 0; `stepsize` 2 so that the
step policy changes the rate within the three steps): `singleFrame_solver_RGB`,
`lstm_solver_RGB` (clip_gradients 5) and `lrcn_solver` (the factored captioner,
freeze-convnet, clip_gradients 10): the weights before the first step and after each step,
the raw gradients and loss of each step (a forward/backward pass on the same weights just
before `solver.step(1)`, which repeats it), and the global gradient norm (float32 and float64).

Everything is deterministic (seeded numpy; Caffe CPU); `manifest.json` records what was run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ORIG = ROOT.parent / "shared" / "reference" / "original_code"

# Narrowed widths: num_output per layer name (Embed: (input_dim, num_output)).
HYBRID = {"conv1": 4, "conv2": 16, "conv3": 16, "conv4": 16, "conv5": 16, "fc6": 32, "fc7": 32}
WIDTHS = {
    "single_frame": {**HYBRID, "fc8-ucf": 11},
    "lrcn": {**HYBRID, "lstm1": 16, "fc8-final": 11},
    "captioner": {
        **{k: v for k, v in HYBRID.items()},
        "fc8": 24,
        "embedding": (30, 20),
        "lstm1": 24,
        "lstm2": 24,
        "predict": 30,
    },
}
# Target standard deviation of each layer's output (before its ReLU) on the fixture inputs.
TARGET_STD = {
    "conv1": 40.0,
    "conv2": 30.0,
    "conv3": 20.0,
    "conv4": 20.0,
    "conv5": 20.0,
    "fc6": 10.0,
    "fc7": 5.0,
    "fc8": 2.0,
    "fc8-ucf": 4.0,
    "fc8-final": 4.0,
    "predict": 4.0,
}
FRAMES, STEPS, STREAMS, WORDS, IMAGES = 2, 4, 2, 5, 2
MEAN_BGR = (104.0, 117.0, 123.0)
CAPTION_STAGES = {
    "captioner_2f": ("factored", "2-layer"),
    "captioner_2u": ("unfactored", "2-layer"),
    "captioner_1u": ("unfactored", "1-layer"),
}
GREEDY_MAX_LENGTH = 10
SOLVERS = True  # --full turns the solver runs off


def _caffe():
    import caffe
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    caffe.set_mode_cpu()
    return caffe, caffe_pb2, text_format


def read_net(path: Path):
    caffe, caffe_pb2, text_format = _caffe()
    text = path.read_text()
    # lisa-caffe's `transform_param { flow: ... }` is not in BVLC Caffe's schema.
    text = re.sub(r"^\s*flow:.*$", "", text, flags=re.M)
    net = caffe_pb2.NetParameter()
    text_format.Merge(text, net)
    return net


def write(msg, path: Path):
    _, _, text_format = _caffe()
    path.write_text(text_format.MessageToString(msg))


def narrow(net, widths: dict, time_steps: int, streams: int):
    """Sets the widths of named layers and the Reshape layers' (T, N[, D]) dims, in place."""
    for layer in net.layer:
        w = widths.get(layer.name)
        if w is not None:
            if layer.type == "Convolution":
                layer.convolution_param.num_output = w
            elif layer.type == "InnerProduct":
                layer.inner_product_param.num_output = w
            elif layer.type == "LSTM":
                layer.recurrent_param.num_output = w
            elif layer.type == "Embed":
                layer.embed_param.input_dim, layer.embed_param.num_output = w
        if layer.type == "Reshape":
            dims = layer.reshape_param.shape.dim
            new = [time_steps, streams] + ([widths.get("fc6", dims[2])] if len(dims) == 3 else [])
            del dims[:]
            dims.extend(new)
    return net


def widths_of(net) -> dict:
    """{layer: num_output} (Embed: [input_dim, num_output]) of a net, for the manifest."""
    out = {}
    for layer in net.layer:
        if layer.type == "Convolution":
            out[layer.name] = layer.convolution_param.num_output
        elif layer.type == "InnerProduct":
            out[layer.name] = layer.inner_product_param.num_output
        elif layer.type == "LSTM":
            out[layer.name] = layer.recurrent_param.num_output
        elif layer.type == "Embed":
            out[layer.name] = [layer.embed_param.input_dim, layer.embed_param.num_output]
    return out


def _rule_ok(rule, phase, stages):
    if rule.HasField("phase") and rule.phase != phase:
        return False
    if any(s not in stages for s in rule.stage):
        return False
    return not any(s in stages for s in rule.not_stage)


def select(net, phase: int, stages) -> None:
    """Keeps the layers of a NetState and drops their include/exclude rules, in place."""
    kept = []
    for layer in net.layer:
        if layer.include:
            ok = any(_rule_ok(r, phase, stages) for r in layer.include)
        else:
            ok = not any(_rule_ok(r, phase, stages) for r in layer.exclude)
        if ok:
            del layer.include[:]
            del layer.exclude[:]
            kept.append(layer)
    del net.layer[:]
    net.layer.extend(kept)


DATA_TYPES = {"ImageData", "HDF5Data", "Python", "Data", "Silence"}


def with_inputs(net, inputs: dict, drop_types=DATA_TYPES):
    """Replaces data layers by declared inputs {name: shape}."""
    layers = [layer for layer in net.layer if layer.type not in drop_types]
    del net.layer[:]
    net.layer.extend(layers)
    del net.input[:]
    del net.input_dim[:]
    del net.input_shape[:]
    for name, shape in inputs.items():
        net.input.append(name)
        net.input_shape.add().dim.extend(shape)


def zero_dropout(net):
    for layer in net.layer:
        if layer.type == "Dropout":
            layer.dropout_param.dropout_ratio = 0.0


# -- inputs ------------------------------------------------------------------------------------


def frames(rng, n):
    """n BGR uint8 'images' (smooth blobs + noise) and their mean-subtracted float32 data."""
    yy, xx = np.mgrid[0:227, 0:227] / 227.0
    imgs = []
    for _ in range(n):
        img = np.zeros((227, 227, 3))
        for c in range(3):
            for _ in range(3):
                cy, cx, s = rng.uniform(0, 1, 3)
                img[..., c] += rng.uniform(-1, 1) * np.exp(
                    -((yy - cy) ** 2 + (xx - cx) ** 2) / (0.02 + 0.1 * s)
                )
        # Noise of 3 levels: texture everywhere, yet the committed pixels compress well.
        img = 128 + 90 * img / (np.abs(img).max() + 1e-6) + 10 * rng.randint(-1, 2, img.shape)
        imgs.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    pixels = np.stack(imgs)  # (n, H, W, 3) BGR
    data = (pixels.astype(np.float32) - np.float32(MEAN_BGR)).transpose(0, 3, 1, 2)
    return pixels, np.ascontiguousarray(data)


# -- weights -----------------------------------------------------------------------------------


def init_weights(net, rng, feed):
    """Seeded weights, scaled in layer order so each output has its TARGET_STD on `feed`."""
    names = list(net._layer_names)
    for i, name in enumerate(names):
        layer = net.layers[i]
        if not len(layer.blobs):
            continue
        blobs = layer.blobs
        if layer.type in ("Convolution", "InnerProduct"):
            blobs[0].data[...] = rng.standard_normal(blobs[0].data.shape)
            if len(blobs) > 1:
                blobs[1].data[...] = 0.2 * rng.standard_normal(blobs[1].data.shape)
            out = net.forward(end=name, **feed)
            top = net.top_names[name][0]
            std = float(net.blobs[top].data.std())
            scale = TARGET_STD.get(name, 1.0) / max(std, 1e-12)
            for b in blobs:
                b.data[...] *= scale
        elif layer.type == "LSTM":
            bottoms = net.bottom_names[name]
            net.forward(end=names[i - 1], **feed)
            x = net.blobs[bottoms[0]].data
            w_x = blobs[0].data
            w_x[...] = rng.standard_normal(w_x.shape) * 1.5 / np.sqrt(w_x.shape[1] * np.mean(x**2))
            blobs[1].data[...] = 0.5 * rng.standard_normal(blobs[1].data.shape)
            if len(blobs) == 4:
                s = net.blobs[bottoms[2]].data
                w_s = blobs[2].data
                w_s[...] = (
                    rng.standard_normal(w_s.shape) * 1.0 / np.sqrt(w_s.shape[1] * np.mean(s**2))
                )
            w_h = blobs[-1].data
            w_h[...] = rng.standard_normal(w_h.shape) * 1.5 / np.sqrt(w_h.shape[1])
        elif layer.type == "Embed":
            blobs[0].data[...] = rng.standard_normal(blobs[0].data.shape)
        else:
            raise SystemExit(f"no initialiser for layer {name} ({layer.type})")
    return out


def params(net) -> dict:
    return {
        f"{name}/{i}": np.array(b.data, np.float32)
        for name, blobs in net.params.items()
        for i, b in enumerate(blobs)
    }


def grads(net) -> dict:
    return {
        f"{name}/{i}": np.array(b.diff, np.float32)
        for name, blobs in net.params.items()
        for i, b in enumerate(blobs)
    }


SPATIAL_ROWS = 1  # image blobs (N, C, H, W): only the first row is stored (size)


def blobs_of(net, skip) -> dict:
    out = {}
    for name, blob in net.blobs.items():
        if name in skip or re.search(r"_split_\d+$", name):  # Caffe's own Split copies
            continue
        a = np.array(blob.data, np.float32)
        if a.ndim == 4 and a.shape[2] > 1:
            a = a[:SPATIAL_ROWS]
        out[f"blob/{name}"] = a
    return out


# -- nets --------------------------------------------------------------------------------------


def activity(out: Path, orig: Path, kind: str, manifest: dict):
    caffe, caffe_pb2, _ = _caffe()
    rng = np.random.RandomState({"single_frame": 1, "lrcn": 2}[kind])
    lrcn = kind == "lrcn"
    deploy_src = orig / ("deploy_lstm.prototxt" if lrcn else "deploy_singleFrame.prototxt")
    net = narrow(read_net(deploy_src), WIDTHS[kind], STEPS, STREAMS)
    n = STEPS * STREAMS if lrcn else FRAMES
    inputs = {"data": [n, 3, 227, 227]}
    if lrcn:
        inputs["clip_markers"] = [n, 1, 1, 1]
    with_inputs(net, inputs)
    net.name = f"{net.name}_narrow"
    deploy = out / f"{kind}.deploy.prototxt"
    write(net, deploy)
    pixels, data = frames(rng, n)
    feed = {"data": data}
    record = {"pixels_bgr": pixels, "mean_bgr": np.float32(MEAN_BGR)}
    if lrcn:
        cont = np.ones((STEPS, STREAMS), np.float32)
        cont[0, :] = 0
        cont[2, 1] = 0  # stream 1 starts a new clip at t = 2
        feed["clip_markers"] = cont.reshape(n, 1, 1, 1)
        record["clip_markers"] = cont
    cnet = caffe.Net(str(deploy), caffe.TEST)
    init_weights(cnet, rng, feed)
    model = out / f"{kind}.caffemodel"
    cnet.save(str(model))
    cnet.forward(**feed)
    record.update(blobs_of(cnet, set(feed)))
    probs = record["blob/probs"]
    np.savez_compressed(out / f"{kind}.npz", **record)
    manifest[kind] = {
        "prototxt": deploy_src.name,
        "widths": widths_of(net),
        "max_prob_mean": float(probs.max(-1).mean()),
        "blobs": {k[5:]: list(v.shape) for k, v in record.items() if k.startswith("blob/")},
    }
    # -- three solver iterations on the narrowed training net --
    train_src = orig / (
        "train_test_lstm_RGB.prototxt" if lrcn else "train_test_singleFrame_RGB.prototxt"
    )
    train = narrow(read_net(train_src), WIDTHS[kind], STEPS, STREAMS)
    tin = {"data": [n, 3, 227, 227], "label": [n]}
    if lrcn:
        tin["clip_markers"] = [n, 1, 1, 1]
    with_inputs(train, tin, DATA_TYPES | {"Accuracy"})
    zero_dropout(train)
    labels = rng.randint(0, 11, size=STREAMS if lrcn else n)
    label = np.tile(labels, STEPS) if lrcn else labels  # time-major: row t*N + n
    tfeed = {**feed, "label": label.astype(np.float32)}
    if lrcn:  # training clips all start at t = 0 (no reset inside the batch)
        cont = np.ones((STEPS, STREAMS), np.float32)
        cont[0, :] = 0
        tfeed["clip_markers"] = cont.reshape(n, 1, 1, 1)
    solver_src = orig / ("lstm_solver_RGB.prototxt" if lrcn else "singleFrame_solver_RGB.prototxt")
    if SOLVERS:
        run_solver(out, kind, train, solver_src, model, tfeed, (), manifest)


def captioner(out: Path, orig: Path, kind: str, manifest: dict):
    caffe, caffe_pb2, _ = _caffe()
    rng = np.random.RandomState({"captioner_2f": 3, "captioner_2u": 4, "captioner_1u": 5}[kind])
    stages = CAPTION_STAGES[kind]
    src = orig / "coco_caption" / "lrcn.prototxt"
    net = narrow(read_net(src), WIDTHS["captioner"], WORDS, IMAGES)
    select(net, 1, set(stages))
    inputs = {
        "data": [IMAGES, 3, 227, 227],
        "cont_sentence": [WORDS, IMAGES],
        "input_sentence": [WORDS, IMAGES],
    }
    with_inputs(net, inputs, DATA_TYPES | {"SoftmaxWithLoss", "Accuracy"})
    probs = net.layer.add()
    probs.name, probs.type = "probs", "Softmax"
    probs.bottom.append("predict")
    probs.top.append("probs")
    probs.softmax_param.axis = 2
    net.name = f"{net.name}_{kind[-2:]}_narrow"
    deploy = out / f"{kind}.deploy.prototxt"
    write(net, deploy)
    pixels, data = frames(rng, IMAGES)
    vocab = widths_of(net)["predict"]
    words = rng.randint(1, vocab, size=(WORDS, IMAGES)).astype(np.float32)
    cont = np.ones((WORDS, IMAGES), np.float32)
    cont[0, :] = 0
    cont[3, 1] = 0  # stream 1 starts a new sentence at t = 3
    words[0, :] = 0
    words[3, 1] = 0  # which begins with EOS as every sentence does
    feed = {"data": data, "cont_sentence": cont, "input_sentence": words}
    cnet = caffe.Net(str(deploy), caffe.TEST)
    init_weights(cnet, rng, feed)
    model = out / f"{kind}.caffemodel"
    cnet.save(str(model))
    cnet.forward(**feed)
    record = {"pixels_bgr": pixels, "mean_bgr": np.float32(MEAN_BGR)}
    record.update({k: v for k, v in feed.items() if k != "data"})
    record.update(blobs_of(cnet, set(feed)))
    info = {
        "prototxt": f"coco_caption/lrcn.prototxt stages {list(stages)}",
        "widths": widths_of(net),
        "max_prob_mean": float(record["blob/probs"].max(-1).mean()),
        "blobs": {k[5:]: list(v.shape) for k, v in record.items() if k.startswith("blob/")},
    }
    if kind == "captioner_2f":
        tokens = greedy(out, orig, model, record["blob/fc8"])
        record["greedy_tokens"] = tokens
        info["greedy_tokens"] = tokens.tolist()
    np.savez_compressed(out / f"{kind}.npz", **record)
    manifest[kind] = info
    if kind == "captioner_2f" and SOLVERS:
        train = narrow(read_net(src), WIDTHS["captioner"], WORDS, IMAGES)
        tin = {**inputs, "target_sentence": [WORDS, IMAGES]}
        with_inputs(train, tin, DATA_TYPES | {"Accuracy"})
        zero_dropout(train)
        target = np.zeros((WORDS, IMAGES), np.float32)
        target[:-1] = words[1:]
        target[-1, 0] = 0
        target[-1, 1] = -1  # ignore_label: a padded step
        cont_train = np.ones((WORDS, IMAGES), np.float32)
        cont_train[0, :] = 0  # one sentence per stream in the training batch
        tfeed = {**feed, "cont_sentence": cont_train, "target_sentence": target}
        solver_src = orig / "coco_caption" / "lrcn_solver.prototxt"
        run_solver(out, kind, train, solver_src, model, tfeed, None, manifest)


def greedy(out: Path, orig: Path, model: Path, features: np.ndarray) -> np.ndarray:
    """Greedy captions from the narrowed lrcn_word_to_preds.deploy.prototxt, word by word."""
    caffe, _, _ = _caffe()
    net = narrow(
        read_net(orig / "coco_caption" / "lrcn_word_to_preds.deploy.prototxt"),
        WIDTHS["captioner"],
        1,
        IMAGES,
    )
    n = features.shape[0]
    with_inputs(
        net,
        {"cont_sentence": [1, n], "input_sentence": [1, n], "image_features": list(features.shape)},
    )
    net.name = f"{net.name}_narrow"
    path = out / "captioner_2f.word_to_preds.prototxt"
    write(net, path)
    cnet = caffe.Net(str(path), caffe.TEST, weights=str(model))
    tokens = np.full((n, GREEDY_MAX_LENGTH), -1, np.int64)
    prev = np.zeros((1, n), np.float32)
    done = np.zeros(n, bool)
    for t in range(GREEDY_MAX_LENGTH):
        cont = np.full((1, n), 0.0 if t == 0 else 1.0, np.float32)
        cnet.forward(cont_sentence=cont, input_sentence=prev, image_features=features)
        word = cnet.blobs["probs"].data[0].argmax(-1)
        for i in range(n):
            if not done[i]:
                tokens[i, t] = word[i]
                done[i] = word[i] == 0
        prev = word[None].astype(np.float32)
        if done.all():
            break
    return tokens


def run_solver(out, kind, train, solver_src: Path, model: Path, feed, _stages, manifest):
    """Three SGD iterations of the authors' solver (stepsize 2) on the narrowed train net."""
    caffe, caffe_pb2, text_format = _caffe()
    train_path = out / f"{kind}.train.prototxt"
    write(train, train_path)
    solver = caffe_pb2.SolverParameter()
    text_format.Merge(solver_src.read_text(), solver)
    for field in (
        "test_iter",
        "test_state",
        "test_interval",
        "snapshot",
        "snapshot_prefix",
        "device_id",
        "display",
        "average_loss",
    ):
        solver.ClearField(field)
    solver.net = train_path.name
    solver.stepsize = 2
    solver.max_iter = 3
    solver.solver_mode = caffe_pb2.SolverParameter.CPU
    solver_path = out / f"{kind}.solver.prototxt"
    write(solver, solver_path)
    with tempfile.TemporaryDirectory() as tmp:
        run_copy = caffe_pb2.SolverParameter()
        run_copy.CopyFrom(solver)
        run_copy.net = str(train_path)
        tmp_solver = Path(tmp) / "solver.prototxt"
        write(run_copy, tmp_solver)
        sgd = caffe.SGDSolver(str(tmp_solver))
    sgd.net.copy_from(str(model))
    for name, value in feed.items():
        sgd.net.blobs[name].data[...] = value.reshape(sgd.net.blobs[name].data.shape)
    # The frames are the forward fixture's (`<kind>.npz` pixels_bgr); the rest is stored here.
    record = {f"input/{k}": v for k, v in feed.items() if k != "data"}
    norms = []
    for step in range(3):
        if step == 0:  # later steps start from the previous step's "after"
            for k, v in params(sgd.net).items():
                record[f"step0/before/{k}"] = v
        for blobs in sgd.net.params.values():
            for b in blobs:
                b.diff[...] = 0
        loss = sgd.net.forward()
        sgd.net.backward()
        g = grads(sgd.net)
        norm32 = np.sqrt(
            np.float32(sum(np.float32(np.dot(v.ravel(), v.ravel())) for v in g.values()))
        )
        norm64 = float(
            np.sqrt(sum(np.dot(v.ravel().astype(np.float64), v.ravel()) for v in g.values()))
        )
        record[f"step{step}/loss"] = np.float32(next(iter(loss.values())))
        record[f"step{step}/norm32"] = np.float32(norm32)
        for k, v in g.items():
            record[f"step{step}/grad/{k}"] = v
        norms.append((float(norm32), norm64))
        sgd.step(1)
        for k, v in params(sgd.net).items():
            record[f"step{step}/after/{k}"] = v
    np.savez_compressed(out / f"{kind}.solver.npz", **record)
    manifest[f"{kind}.solver"] = {
        "solver": solver_src.name,
        "clip_gradients": solver.clip_gradients if solver.HasField("clip_gradients") else None,
        "grad_norms_float32_float64": norms,
        "losses": [float(record[f"step{s}/loss"]) for s in range(3)],
    }


MISC_NET = """
name: "misc_layers"
input: "data"
input_shape { dim: 2 dim: 3 dim: 19 dim: 19 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 6 kernel_h: 3 kernel_w: 5 stride: 2 pad_h: 1 pad_w: 2 } }
layer { name: "leaky" type: "ReLU" bottom: "conv" top: "conv" relu_param { negative_slope: 0.1 } }
layer { name: "slice" type: "Slice" bottom: "conv" top: "a" top: "b" top: "c"
  slice_param { axis: 1 slice_point: 2 slice_point: 4 } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum"
  eltwise_param { operation: SUM coeff: 1.5 coeff: -0.5 } }
layer { name: "prod" type: "Eltwise" bottom: "b" bottom: "c" top: "prod" eltwise_param { operation: PROD } }
layer { name: "max" type: "Eltwise" bottom: "a" bottom: "c" top: "max" eltwise_param { operation: MAX } }
layer { name: "tanh" type: "TanH" bottom: "prod" top: "tanh" }
layer { name: "cat" type: "Concat" bottom: "sum" bottom: "tanh" bottom: "max" top: "cat" concat_param { axis: 1 } }
layer { name: "pool_pad" type: "Pooling" bottom: "cat" top: "pool_pad"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool_ave" type: "Pooling" bottom: "cat" top: "pool_ave"
  pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "norm" type: "LRN" bottom: "pool_pad" top: "norm" lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 k: 2 } }
layer { name: "flat" type: "Flatten" bottom: "norm" top: "flat" }
layer { name: "flat_ave" type: "Flatten" bottom: "pool_ave" top: "flat_ave" }
layer { name: "flats" type: "Concat" bottom: "flat" bottom: "flat_ave" top: "flats" }
layer { name: "ip" type: "InnerProduct" bottom: "flats" top: "ip" inner_product_param { num_output: 7 } }
layer { name: "sig" type: "Sigmoid" bottom: "ip" top: "sig" }
layer { name: "ip2" type: "InnerProduct" bottom: "sig" top: "ip2" inner_product_param { num_output: 5 } }
layer { name: "probs" type: "Softmax" bottom: "ip2" top: "probs" }
"""


def misc(out: Path, manifest: dict):
    """Layer types and parameters the authors' nets do not use but the converter handles:
    rectangular kernels and pads, leaky ReLU, Slice, Eltwise SUM (coefficients)/PROD/MAX,
    TanH, Sigmoid, Concat, padded MAX and AVE pooling, LRN with k, Flatten."""
    caffe, _, _ = _caffe()
    rng = np.random.RandomState(6)
    deploy = out / "misc.deploy.prototxt"
    deploy.write_text(MISC_NET.lstrip())
    net = caffe.Net(str(deploy), caffe.TEST)
    for blobs in net.params.values():
        for b in blobs:
            b.data[...] = rng.standard_normal(b.data.shape)
    data = rng.uniform(-2, 2, net.blobs["data"].data.shape).astype(np.float32)
    net.save(str(out / "misc.caffemodel"))
    net.forward(data=data)
    record = {"input": data, **blobs_of(net, {"data"})}
    np.savez_compressed(out / "misc.npz", **record)
    manifest["misc"] = {"max_prob_mean": float(record["blob/probs"].max(-1).mean())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "tests" / "fixtures" / "caffe"))
    p.add_argument("--orig", default=str(ORIG), help="the authors' original_code folder")
    p.add_argument("--only", nargs="*", help="a subset of: single_frame lrcn captioner_2f ...")
    p.add_argument(
        "--full",
        action="store_true",
        help="the authors' widths (full size; only the batch is small) and no solver runs: "
        "for the opt-in `pytest -m caffe` test, not for committing (hundreds of MB)",
    )
    args = p.parse_args(argv)
    if args.full:
        global SOLVERS
        SOLVERS = False
        for w in WIDTHS.values():
            w.clear()
    out, orig = Path(args.out), Path(args.orig)
    if not (orig / "deploy_lstm.prototxt").is_file():
        print(f"error: --orig {orig}: no deploy_lstm.prototxt there", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    caffe, _, _ = _caffe()
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    start = time.time()
    for kind in ("single_frame", "lrcn", *CAPTION_STAGES, "misc"):
        if args.only and kind not in args.only:
            continue
        t0 = time.time()
        if kind == "misc":
            misc(out, manifest)
        elif kind.startswith("captioner"):
            captioner(out, orig, kind, manifest)
        else:
            activity(out, orig, kind, manifest)
        print(f"{kind}: {time.time() - t0:.1f} s", flush=True)
    manifest["generated_by"] = "tools/caffe_oracle/make_fixtures.py" + (
        " --full" if args.full else ""
    )
    if not args.only:
        manifest["seconds"] = round(time.time() - start, 1)
    manifest["caffe"] = f"BVLC Caffe {caffe.__version__} (commit 9b891540, CPU)"
    manifest["numpy"] = np.__version__
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"done in {time.time() - start:.1f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
