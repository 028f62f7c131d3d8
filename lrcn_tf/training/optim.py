"""Caffe's SGD solver, step for step, for any Keras 3 model on the TensorFlow backend.

Keras' SGD differs from Caffe's in ways that change the numbers of a reproduction: its
`weight_decay` is decoupled (applied to the weights, not added to the gradient), it has no
per-layer learning-rate multipliers, and its `global_clipnorm` clips after nothing else has been
added. Caffe's `SGDSolver::ApplyUpdate` does, for every parameter w with gradient g:

    g <- g * min(1, clip_gradients / ||all gradients||_2)       (ClipGradients, if set)
    g <- g + weight_decay * decay_mult * w                        (Regularize, L2)
    v <- momentum * v + lr(iter) * lr_mult * g                    (ComputeUpdateValue)
    w <- w - v                                                    (Update)

and that is what `CaffeSGD.apply` computes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import tensorflow as tf

from lrcn_tf.configs.common import TrainConfig

Multipliers = Callable[[str], tuple[float, float]]


def multipliers_from_rules(
    rules: Sequence[tuple[str, float, float]], default: tuple[float, float] = (1.0, 1.0)
) -> Multipliers:
    """Caffe's per-layer `lr_mult` / `decay_mult`, chosen by regex on the variable path.

    Args:
      rules: (regex, lr_mult, decay_mult); the first regex that `re.search`es the variable's
        path (e.g. "lstm/lstm_cell/kernel") wins.
      default: the multipliers of a variable that no rule matches.

    Returns:
      A function from variable path to (lr_mult, decay_mult).
    """
    compiled = [(re.compile(p), float(lr), float(decay)) for p, lr, decay in rules]

    def lookup(path: str) -> tuple[float, float]:
        for pattern, lr, decay in compiled:
            if pattern.search(path):
                return lr, decay
        return default

    return lookup


def variable_path(v) -> str:
    """A Keras 3 variable's path ("layer/sublayer/name"), or a tf.Variable's name."""
    return getattr(v, "path", None) or v.name.split(":")[0]


class CaffeSGD(tf.Module):
    """SGD with momentum, L2 weight decay, global-norm clipping and per-variable multipliers.

    State (momentum buffers and the iteration counter) are tf.Variables, so a
    tf.train.Checkpoint that holds this module restores training exactly.
    """

    def __init__(self, cfg: TrainConfig, multipliers: Multipliers | None = None, name="caffe_sgd"):
        super().__init__(name=name)
        self.cfg = cfg
        self._multipliers = multipliers or (lambda path: (1.0, 1.0))
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.momenta: list[tf.Variable] = []
        self._lr_mults: list[float] = []
        self._decay_mults: list[float] = []

    def build(self, variables: Sequence) -> None:
        """Creates one momentum buffer per variable (call under the strategy's scope)."""
        self.momenta = [
            tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=f"momentum_{i}")
            for i, v in enumerate(variables)
        ]
        mults = [self._multipliers(variable_path(v)) for v in variables]
        self._lr_mults = [m[0] for m in mults]
        self._decay_mults = [m[1] for m in mults]

    def learning_rate(self, iteration) -> tf.Tensor:
        """Caffe's `step` policy: base_lr * gamma ^ floor(iter / stepsize); or `fixed`."""
        base = tf.constant(self.cfg.base_lr, tf.float32)
        if self.cfg.lr_policy == "fixed":
            return base
        steps = tf.cast(iteration // self.cfg.stepsize, tf.float32)
        return base * tf.pow(tf.constant(self.cfg.gamma, tf.float32), steps)

    def clip(self, grads: Sequence[tf.Tensor]) -> tuple[list[tf.Tensor], tf.Tensor]:
        """Caffe's ClipGradients: scale all gradients by clip / norm when the global norm exceeds clip."""
        norm = tf.linalg.global_norm(grads)
        if self.cfg.clip_gradients is None:
            return list(grads), norm
        clip = tf.constant(self.cfg.clip_gradients, norm.dtype)
        scale = tf.where(norm > clip, clip / norm, tf.ones_like(norm))
        return [g * tf.cast(scale, g.dtype) for g in grads], norm

    def apply(self, grads: Sequence, variables: Sequence) -> tf.Tensor:
        """One solver iteration; returns the global gradient norm before clipping."""
        if len(self.momenta) != len(variables):
            raise ValueError(
                f"CaffeSGD was built for {len(self.momenta)} variables, got {len(variables)}"
            )
        grads = [
            tf.zeros(v.shape, v.dtype) if g is None else tf.convert_to_tensor(g)
            for g, v in zip(grads, variables)
        ]
        grads, norm = self.clip(grads)
        lr = self.learning_rate(self.iterations)
        decay = self.cfg.weight_decay
        for g, v, m, lr_mult, decay_mult in zip(
            grads, variables, self.momenta, self._lr_mults, self._decay_mults
        ):
            w = tf.convert_to_tensor(v)
            if decay and decay_mult:
                g = g + (decay * decay_mult) * w
            m.assign(self.cfg.momentum * m + (lr * lr_mult) * g)
            v.assign_sub(tf.convert_to_tensor(m))
        self.iterations.assign_add(1)
        return norm
