"""Config sections shared by every table: the Caffe SGD recipe."""

from __future__ import annotations

import dataclasses

from lrcn_tf.configs.registry import ConfigError


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Caffe's SGD solver, as the original `solver.prototxt` files state it.

    Caffe semantics (not Keras defaults): weight decay is an L2 term added to the gradient
    before momentum; `clip_gradients` rescales all gradients when their global L2 norm
    exceeds it; the step policy multiplies the rate by `gamma` every `stepsize` iterations.
    """

    base_lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.005
    lr_policy: str = "step"
    gamma: float = 0.1
    stepsize: int = 10000
    max_iter: int = 30000
    clip_gradients: float | None = None
    batch_size: int = 24
    seed: int = 1701
    checkpoint_every: int = 1000
    log_every: int = 20

    def validate(self) -> None:
        if self.lr_policy not in ("step", "fixed"):
            raise ConfigError(f"train.lr_policy {self.lr_policy!r}: use 'step' or 'fixed'")
        if self.base_lr <= 0 or self.max_iter <= 0 or self.batch_size <= 0:
            raise ConfigError("train.base_lr, train.max_iter and train.batch_size must be > 0")
        if self.lr_policy == "step" and self.stepsize <= 0:
            raise ConfigError("train.stepsize must be > 0 with the step policy")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"train.momentum {self.momentum} is outside [0, 1)")
        if self.weight_decay < 0:
            raise ConfigError("train.weight_decay must be >= 0")
        if self.clip_gradients is not None and self.clip_gradients <= 0:
            raise ConfigError("train.clip_gradients must be > 0 (or None for no clipping)")
        if self.checkpoint_every <= 0 or self.log_every <= 0:
            raise ConfigError("train.checkpoint_every and train.log_every must be > 0")
