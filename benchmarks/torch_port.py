"""A PyTorch port of the Table 1 nets, written for `bench_vs_pytorch.py` only.

The same layers, shapes and parameter counts as `lrcn_tf.models.activity` built from a Table 1
config: the small CNN (TensorFlow "same" padding, floor pooling) or the hybrid CaffeNet
(grouped convolutions, Caffe's ceil pooling, cross-channel LRN), fc6/fc7, and either the
single-frame classifier or LRCN-fc6 (dropout -> LSTM -> dropout -> classifier). `load_keras`
copies a Keras model's weights into it (layouts converted) so both compute the same logits.
Needs `torch` (`pip install lrcn-tf[bench]`); the library never imports this module.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) of one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SmallCNN(nn.Module):
    """`backbones.small_cnn`: conv 5x5/2 then 3x3 convs, each + ReLU + 2x2 max pool; fc6, fc7."""

    def __init__(self, size, filters, fc_units, dropout, lstm_after_fc6):
        super().__init__()
        self.convs, self.pads = nn.ModuleList(), []
        channels = 3
        for i, f in enumerate(filters):
            k, s = (5, 2) if i == 0 else (3, 1)
            self.convs.append(nn.Conv2d(channels, f, k, s))
            lo, hi = _same_pad(size, k, s)
            self.pads.append((lo, hi, lo, hi))
            size = math.ceil(size / s) // 2
            channels = f
        self.flat_shape = (size, size, channels)
        self.fc6 = nn.Linear(size * size * channels, fc_units)
        self.fc7 = None if lstm_after_fc6 else nn.Linear(fc_units, fc_units)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        for conv, pad in zip(self.convs, self.pads):
            x = F.max_pool2d(F.relu(conv(F.pad(x, pad))), 2)
        return _fc_head(self, x)

    def keras_layers(self):
        return [(f"conv{i + 1}", c) for i, c in enumerate(self.convs)]


class HybridCaffeNet(nn.Module):
    """`backbones.hybrid_caffenet`: the CaffeNet/ZF hybrid of LRCN, 227x227 -> 6x6x384."""

    def __init__(self, size, fc_units, dropout, lstm_after_fc6):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 7, 2)
        self.conv2 = nn.Conv2d(96, 384, 5, 2, groups=2)
        self.conv3 = nn.Conv2d(384, 512, 3, 1, 1)
        self.conv4 = nn.Conv2d(512, 512, 3, 1, 1, groups=2)
        self.conv5 = nn.Conv2d(512, 384, 3, 1, 1, groups=2)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)  # Caffe rounds the output size up
        self.norm = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)  # alpha / n as Caffe

        def conv(n, k):
            return (n - k) // 2 + 1

        def pool(n):
            return math.ceil((n - 3) / 2) + 1

        size = pool(pool(conv(pool(conv(size, 7)), 5)))  # conv3..5 keep the size
        self.flat_shape = (size, size, 384)
        self.fc6 = nn.Linear(size * size * 384, fc_units)
        self.fc7 = None if lstm_after_fc6 else nn.Linear(fc_units, fc_units)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = self.norm(self.pool(F.relu(self.conv1(x))))
        x = self.norm(self.pool(F.relu(self.conv2(x))))
        x = F.relu(self.conv3(x))
        x = F.relu(self.conv4(x))
        x = self.pool(F.relu(self.conv5(x)))
        return _fc_head(self, x)

    def keras_layers(self):
        return [(f"conv{i}", getattr(self, f"conv{i}")) for i in range(1, 6)]


def _fc_head(net, x):
    x = F.relu(net.fc6(torch.flatten(x, 1)))
    if net.fc7 is None:  # LRCN-fc6: the trunk ends at relu6
        return x
    return net.drop(F.relu(net.fc7(net.drop(x))))


class Table1Net(nn.Module):
    """clips (B, T, 3, H, W) -> logits (B, T, K): single frame, or LRCN-fc6."""

    def __init__(self, cfg, num_classes: int, size: int):
        super().__init__()
        lrcn = cfg.model == "lrcn_fc6"
        if cfg.model not in ("single_frame", "lrcn_fc6"):
            raise ValueError(f"the port has single_frame and lrcn_fc6, not {cfg.model}")
        if cfg.backbone == "small_cnn":
            self.cnn = SmallCNN(size, cfg.conv_filters, cfg.fc_units, cfg.dropout, lrcn)
        elif cfg.backbone == "hybrid_caffenet":
            self.cnn = HybridCaffeNet(size, cfg.fc_units, cfg.dropout, lrcn)
        else:
            raise ValueError(f"the port has small_cnn and hybrid_caffenet, not {cfg.backbone}")
        self.lstm = nn.LSTM(cfg.fc_units, cfg.lstm_units, batch_first=True) if lrcn else None
        if lrcn:
            self.lstm_input_dropout = nn.Dropout(cfg.lstm_input_dropout)
            self.lstm_dropout = nn.Dropout(0.5)
        self.classifier = nn.Linear(cfg.lstm_units if lrcn else cfg.fc_units, num_classes)

    def forward(self, clips):
        b, t = clips.shape[:2]
        x = self.cnn(clips.flatten(0, 1)).unflatten(0, (b, t))
        if self.lstm is not None:
            x, _ = self.lstm(self.lstm_input_dropout(x))
            x = self.lstm_dropout(x)
        return self.classifier(x)

    def keras_paths(self) -> dict[str, str]:
        """torch parameter name -> the Keras variable path it was copied from (for the
        Caffe lr/decay multipliers); bias_hh, which Keras does not have, maps to the LSTM bias."""
        out = {}
        for name, _ in self.named_parameters():
            parts = name.split(".")
            if parts[0] == "cnn":
                layer = parts[1] if parts[1] != "convs" else f"conv{int(parts[2]) + 1}"
                out[name] = f"{layer}/{'kernel' if parts[-1] == 'weight' else 'bias'}"
            elif parts[0] == "lstm":
                kind = {"weight_ih_l0": "kernel", "weight_hh_l0": "recurrent_kernel"}
                out[name] = f"lstm/lstm_cell/{kind.get(parts[1], 'bias')}"
            else:
                out[name] = f"classifier/{'kernel' if parts[-1] == 'weight' else 'bias'}"
        return out


@torch.no_grad()
def load_keras(net: Table1Net, model) -> None:
    """Copies the Keras model's weights into `net` (HWIO -> OIHW kernels, fc6 rows from
    (h, w, c) to (c, h, w) order, Dense kernels transposed, the LSTM's one bias as bias_ih)."""
    cnn = model.get_layer("cnn").layer

    def put(param, value):
        value = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        if tuple(param.shape) != tuple(value.shape):
            raise ValueError(f"shape {tuple(value.shape)} for a {tuple(param.shape)} parameter")
        param.copy_(value)

    for name, conv in net.cnn.keras_layers():
        kernel, bias = (np.asarray(w) for w in cnn.get_layer(name).get_weights())
        put(conv.weight, kernel.transpose(3, 2, 0, 1))
        put(conv.bias, bias)
    kernel, bias = cnn.get_layer("fc6").get_weights()
    h, w, c = net.cnn.flat_shape
    put(
        net.cnn.fc6.weight, kernel.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, h * w * c)
    )
    put(net.cnn.fc6.bias, bias)
    if net.cnn.fc7 is not None:
        kernel, bias = cnn.get_layer("fc7").get_weights()
        put(net.cnn.fc7.weight, kernel.T)
        put(net.cnn.fc7.bias, bias)
    if net.lstm is not None:
        kernel, recurrent, bias = model.get_layer("lstm").get_weights()
        put(net.lstm.weight_ih_l0, kernel.T)  # gate order i, f, c(g), o in both
        put(net.lstm.weight_hh_l0, recurrent.T)
        put(net.lstm.bias_ih_l0, bias)
        put(net.lstm.bias_hh_l0, np.zeros_like(bias))
    kernel, bias = model.get_layer("classifier").get_weights()
    put(net.classifier.weight, kernel.T)
    put(net.classifier.bias, bias)


def caffe_sgd(net: Table1Net, train_cfg, rules) -> torch.optim.SGD:
    """torch SGD with Caffe's solver terms: momentum, L2 in the gradient, per-parameter
    lr/decay multipliers from the same regex rules as the Keras model (torch's momentum form
    v = m v + g, w -= lr v equals Caffe's v = m v + lr g, w -= v at a constant lr)."""
    paths = net.keras_paths()
    groups = []
    for name, p in net.named_parameters():
        lr_mult, decay_mult = next(
            ((lr, d) for pat, lr, d in rules if re.search(pat, paths[name])), (1.0, 1.0)
        )
        if name.endswith("bias_hh_l0"):  # not a Keras variable; Keras' one bias stands for it
            lr_mult, decay_mult = 1.0, 1.0
        groups.append(
            {
                "params": [p],
                "lr": train_cfg.base_lr * lr_mult,
                "weight_decay": train_cfg.weight_decay * decay_mult,
            }
        )
    return torch.optim.SGD(groups, lr=train_cfg.base_lr, momentum=train_cfg.momentum)


def train_step(net, optimizer, clips, labels, clip_norm):
    """One step: per-step softmax loss (every frame's prediction counts), backward, global
    gradient clipping as Caffe's (if set), SGD update; returns the loss tensor."""
    optimizer.zero_grad(set_to_none=True)
    logits = net(clips)
    t = logits.shape[1]
    loss = F.cross_entropy(logits.flatten(0, 1), labels.repeat_interleave(t))
    loss.backward()
    if clip_norm:
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip_norm)
    optimizer.step()
    return loss.detach()


def video_probabilities(net, clips, lengths) -> list[np.ndarray]:
    """The test protocol for a group of videos: the logits of all their clips and crops (the
    group's (sum N_i, T, ...) batch, made before the call as Table 1's tf.data makes ours) in
    one pass, softmax, mean over each video's N_i clips and crops and the frames -> [(K,)]
    per video."""
    with torch.inference_mode():
        probs = torch.softmax(net(clips), dim=-1)
        return [p.mean(dim=(0, 1)).numpy() for p in probs.split(list(lengths))]
