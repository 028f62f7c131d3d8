"""Table 3 configs: image description with LRCN captioners and the 1-NN baselines.

Names: `table3/lrcn` (= the factored two-layer LRCN_2f, the public `lrcn.prototxt`, the model
of Tables 2 and 3) and `table3/lrcn_1u`, `table3/lrcn_2u`, `table3/lrcn_2f`, `table3/lrcn_4f`
(the variants of the paper's Figure 6 and of the journal version). Each config also holds the
image encoder and the nearest-neighbour baselines' settings, which use the same encoder.

    python -m reproduce.table3                                   # default preset, embedded data
    python -m reproduce.table3 --dataset coco2014 --data_dir DIR --preset paper

Presets
- `paper`: the original recipe (reference/original_recipes.md, Image description): CaffeNet
  fc8 (1000-d) of a 227 crop of the 256x256 image, mean 104/117/123, mirroring; embedding and
  LSTMs of 1000 (uniform +-0.08), softmax with loss weight 20, 20 time steps, 100 captions a
  batch; SGD momentum 0.9, no weight decay, step policy gamma 0.5, seed 1701, two stages:
      CNN frozen (fc8 trained)       lr 0.01  step 20000 iters 110000 clip 10
      CNN fine-tuned (x0.1 / x0.2)   lr 0.001 step 20000 iters 50000  clip 25
  fc8 at lr_mult 0.1 / 0.2 in both stages and the word predictor's bias at 2 (lrcn.prototxt);
  COCO training on train2014 only (no Karpathy restval: `--set train_restval=true` adds it);
  greedy decoding (beam 1), at most 50 words. The ImageNet CaffeNet weights are not public in
  a Keras format: pass converted ones with `--set encoder.weights=FILE.npz` (see
  lrcn_tf.models.backbones); without them the CNN starts from Caffe's random fillers, which
  the paper did not do.
- `default`: the embedded synthetic data on 2 CPU cores in under 10 minutes: the small CNN
  (pre-trained on a generated classification task, our ImageNet stand-in), 56x56 crops of the
  64x64 images, LSTMs of 128, a few hundred SGD steps a stage. Not comparable to the paper.
- `smoke`: a minute or two, for tests and the CI regression.
"""

from __future__ import annotations

import dataclasses

from lrcn_tf.configs.common import TrainConfig
from lrcn_tf.configs.registry import PRESETS, ConfigError, register

VARIANTS = {"1u": (1, False), "2u": (2, False), "2f": (2, True), "4f": (4, True)}
# lrcn_tf.models.backbones.BACKBONES names usable as an image encoder (configs import no Keras).
ENCODERS = ("caffenet", "alexnet", "small_cnn", "vgg16", "resnet50")
NN_DISTANCES = ("cosine", "euclidean")


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """The image front end: a backbone up to fc8, its input and its (pre-)training."""

    backbone: str = "caffenet"
    weights: str | None = None  # a backbones weights file (.weights.h5 / .npz) or "imagenet"
    fc_units: int = 4096
    conv_filters: tuple[int, ...] = ()  # small_cnn only
    classes: int = 1000  # fc8 width (1000 ImageNet classes in the original)
    dropout: float = 0.5
    crop_size: int = 227
    resize: int | None = None  # squash stored images to this first (None: as prepared, 256)
    pixel_scale: float = 1.0  # multiplies BGR-minus-mean pixels (1 = Caffe's range)
    # Pre-training on the generated classification task, our stand-in for ImageNet
    # (synthetic data and the small CNN only): pretext_train.max_iter steps on pretext_images.
    pretext: bool = False
    pretext_images: int = 0
    pretext_train: TrainConfig = TrainConfig()

    def validate(self) -> None:
        if self.backbone not in ENCODERS:
            raise ConfigError(
                f"encoder.backbone {self.backbone!r}: choose from {', '.join(ENCODERS)}"
            )
        if self.conv_filters and self.backbone != "small_cnn":
            raise ConfigError("encoder.conv_filters only applies to backbone small_cnn")
        if self.crop_size < 1 or self.classes < 1 or self.fc_units < 1:
            raise ConfigError("encoder.crop_size, classes and fc_units must be >= 1")
        if self.resize is not None and self.resize < self.crop_size:
            raise ConfigError(
                f"encoder.resize {self.resize} is smaller than crop_size {self.crop_size}"
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError("encoder.dropout must be in [0, 1)")
        if self.pretext and self.pretext_images < 1:
            raise ConfigError("encoder.pretext_images must be >= 1 with encoder.pretext")
        if self.pretext and self.backbone != "small_cnn":
            raise ConfigError("pretext pre-training is for the small CNN on synthetic data")


@dataclasses.dataclass(frozen=True)
class Table3Config:
    """An LRCN captioner, its two training stages, decoding, and the 1-NN baselines."""

    variant: str = "2f"
    num_layers: int = 2
    factored: bool = True
    embed_dim: int = 1000
    hidden: int = 1000
    init_scale: float = 0.08
    dropout: float = 0.0
    loss_weight: float = 20.0
    max_words: int = 20
    mirror: bool = True  # random horizontal flips of training images
    encoder: EncoderConfig = EncoderConfig()
    stage1: TrainConfig = TrainConfig()  # CNN frozen except fc8
    finetune: bool = True  # run stage 2
    stage2: TrainConfig = TrainConfig()  # CNN fine-tuned with the multipliers below
    # (weights, biases) multipliers: fc8 in stage 1 (the rest of the CNN frozen), every CNN
    # layer in stage 2; the original's lrcn.prototxt has 0.1 / 0.2 for fc8 in both stages.
    fc8_lr_mult: tuple[float, float] = (0.1, 0.2)
    cnn_lr_mult: tuple[float, float] = (0.1, 0.2)
    predict_bias_lr_mult: float = 2.0  # the word predictor's bias (lrcn.prototxt: 2)
    # Train on Karpathy's restval images too (COCO val2014 images outside val and test; a
    # later convention): the original trained on train2014 only.
    train_restval: bool = False
    beam_size: int = 1
    max_length: int = 50
    eval_batch: int = 64
    nn_distance: str = "cosine"

    def validate(self) -> None:
        if VARIANTS.get(self.variant) != (self.num_layers, self.factored):
            raise ConfigError(
                f"variant {self.variant!r} must match num_layers={self.num_layers}, "
                f"factored={self.factored}: {VARIANTS}"
            )
        if min(self.embed_dim, self.hidden, self.max_words, self.max_length, self.eval_batch) < 1:
            raise ConfigError("embed_dim, hidden, max_words, max_length, eval_batch must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError("dropout must be in [0, 1)")
        if self.init_scale <= 0 or self.loss_weight <= 0:
            raise ConfigError("init_scale and loss_weight must be > 0")
        if self.beam_size < 1:
            raise ConfigError("beam_size must be >= 1")
        if len(self.fc8_lr_mult) != 2 or len(self.cnn_lr_mult) != 2:
            raise ConfigError("fc8_lr_mult and cnn_lr_mult are (weights, biases) pairs")
        if min(*self.fc8_lr_mult, *self.cnn_lr_mult, self.predict_bias_lr_mult) < 0:
            raise ConfigError("fc8_lr_mult, cnn_lr_mult and predict_bias_lr_mult must be >= 0")
        if self.nn_distance not in NN_DISTANCES:
            raise ConfigError(f"nn_distance {self.nn_distance!r}: choose from {NN_DISTANCES}")


def _solver(lr, max_iter, clip, *, stepsize, checkpoint_every, log_every):
    """The captioning solvers' form (lrcn_solver / lrcn_finetune_solver): momentum 0.9, no
    weight decay, the rate halved every `stepsize` steps, gradients clipped at `clip`, batches
    of 100 captions."""
    return TrainConfig(
        base_lr=lr,
        momentum=0.9,
        weight_decay=0.0,
        lr_policy="step",
        gamma=0.5,
        stepsize=stepsize,
        max_iter=max_iter,
        clip_gradients=clip,
        batch_size=100,
        seed=1701,
        checkpoint_every=checkpoint_every,
        log_every=log_every,
    )


def _paper(variant: str) -> Table3Config:
    def solver(lr, max_iter, clip):
        return _solver(lr, max_iter, clip, stepsize=20000, checkpoint_every=2000, log_every=100)

    layers, factored = VARIANTS[variant]
    return Table3Config(
        variant=variant,
        num_layers=layers,
        factored=factored,
        encoder=EncoderConfig(backbone="caffenet", crop_size=227, resize=256),
        stage1=solver(0.01, 110000, 10.0),
        stage2=solver(0.001, 50000, 25.0),
    )


def _embedded(variant: str, smoke: bool) -> Table3Config:
    # The small CNN and LSTMs are trained on a few thousand captions on a CPU, so widths and
    # step counts are small; the solver keeps the original's form (momentum 0.9, no decay,
    # gamma 0.5 steps, clipping, loss weight 20, two stages with x0.1/x0.2 CNN multipliers,
    # stage 2 at a tenth of stage 1's rate).
    def solver(lr, max_iter, stepsize, clip):
        return _solver(lr, max_iter, clip, stepsize=stepsize, checkpoint_every=100, log_every=20)

    pretext = TrainConfig(
        base_lr=0.01,
        momentum=0.9,
        weight_decay=0.0005,
        lr_policy="step",
        gamma=0.1,
        stepsize=200 if smoke else 2000,
        max_iter=300 if smoke else 3000,
        batch_size=64,
        seed=1701,
        checkpoint_every=200,
        log_every=20,
    )
    layers, factored = VARIANTS[variant]
    encoder = EncoderConfig(
        backbone="small_cnn",
        fc_units=64 if smoke else 128,
        conv_filters=(8, 16, 32) if smoke else (16, 32, 64),
        classes=35,  # (shape, colour) pairs of the generated pretext task
        crop_size=56,
        pixel_scale=1 / 64,
        pretext=True,
        pretext_images=2000 if smoke else 6000,
        pretext_train=pretext,
    )
    return Table3Config(
        variant=variant,
        num_layers=layers,
        factored=factored,
        embed_dim=64 if smoke else 128,
        hidden=64 if smoke else 128,
        encoder=encoder,
        # 0.03 (not the original 0.01) chosen on the val split: 0.01 is too slow for a few
        # thousand steps, 0.1 diverges. Stage 2 keeps the original's tenth of stage 1.
        stage1=solver(0.03, 300 if smoke else 2000, 200 if smoke else 1000, 10.0),
        stage2=solver(0.003, 100 if smoke else 500, 50 if smoke else 250, 25.0),
        # Deviation: no mirroring. The generated captions say "left" and "right", which a
        # mirrored image contradicts (real captions rarely depend on it).
        mirror=False,
        max_length=30,
        # Kept from before the audit (the goldens were taken with them; not re-tuned): fc8
        # at CaffeNet's 1 / 2 in stage 1, the word predictor's bias at 1.
        fc8_lr_mult=(1.0, 2.0),
        predict_bias_lr_mult=1.0,
    )


def _factory(variant: str, preset: str) -> Table3Config:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}")
    if preset == "paper":
        return _paper(variant)
    return _embedded(variant, smoke=preset == "smoke")


def _register_all() -> None:
    register("table3/lrcn")(lambda preset: _factory("2f", preset))
    for v in VARIANTS:
        register(f"table3/lrcn_{v}")(lambda preset, v=v: _factory(v, preset))


_register_all()
