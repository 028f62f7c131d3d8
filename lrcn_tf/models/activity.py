"""Table 1's models: the single-frame baseline and LRCN-fc6 / LRCN-fc7 (paper Sec. 4).

Both take clips `(batch, time, height, width, channels)` with any number of time steps and
return logits `(batch, time, classes)`: a prediction at every step, which evaluation turns
into softmax probabilities and averages over the video. The CNN runs on every frame inside a
`TimeDistributed` (named "cnn"; `FoldedTimeDistributed`, which runs it once on all B x T
frames), so the same backbone layers (conv1 ... fc7) appear in every model and
`trainer.copy_weights_by_name` carries the trained single-frame CNN into LRCN.

    single-frame: cnn(conv1..fc6 -> relu -> drop 0.5 -> fc7 -> relu -> drop 0.5) -> classifier
    LRCN-fc6:     cnn(conv1..fc6 -> relu) -> drop 0.9 -> LSTM(256) -> drop 0.5 -> classifier
    LRCN-fc7:     cnn(conv1..fc6 -> relu -> drop 0.5 -> fc7 -> relu) -> drop 0.9 -> LSTM ...

Dropouts follow lisa-caffe-public's `train_test_singleFrame_*` and `train_test_lstm_*`
prototxts; LRCN-fc7 had no public prototxt, so it keeps the single-frame net's drop6 and
puts the same 0.9 dropout before its LSTM as LRCN-fc6 does (our choice).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import keras
from keras import layers, ops

from lrcn_tf.models import backbones

MODELS = ("single_frame", "lrcn_fc6", "lrcn_fc7")

# Caffe's per-layer multipliers (lr_mult, decay_mult) in the original prototxts, matched on
# Keras variable paths ("conv1/kernel", "lstm/lstm_cell/bias", "classifier/bias"): the new
# classifier learns 10x (weights) / 20x (biases) faster; CNN biases use CaffeNet's 2x with no
# decay; the LSTM layer has no `param` blocks there, so all its blobs get (1, 1).
MULTIPLIER_RULES = (
    (r"^classifier/kernel$", 10.0, 1.0),
    (r"^classifier/bias$", 20.0, 0.0),
    (r"^lstm/", 1.0, 1.0),
    (r"/bias$", 2.0, 0.0),
)


@keras.saving.register_keras_serializable(package="lrcn_tf")
class FoldedTimeDistributed(layers.TimeDistributed):
    """`TimeDistributed` that folds time into the batch: one call of the wrapped layer on
    (B * T, ...) frames instead of Keras' T calls on (B, ...) slices (its Python loop over a
    static time axis, with a transpose of the whole clip before and after).

    The wrapped layer must treat the samples of a batch independently, as a CNN does (the same
    outputs per frame). Dropout layers inside it still draw one mask per time step, in time
    order, as the unfolded wrapper made them do: a seeded run trains on the same masks.
    Only keras.ops: runs on every Keras backend.
    """

    def call(self, inputs, training=None, mask=None):
        steps = inputs.shape[1]
        dropouts = [
            ly
            for ly in self.layer._flatten_layers(include_self=False)
            if isinstance(ly, layers.Dropout) and ly.rate > 0
        ]
        if mask is not None or (training and dropouts and steps is None):
            return super().call(inputs, training=training, mask=mask)
        shape = ops.shape(inputs)
        folded = ops.reshape(inputs, (-1, *inputs.shape[2:]))
        kwargs = {"training": training} if self.layer._call_has_training_arg else {}
        per_step = dropouts if training and steps > 1 else []
        try:
            for ly in per_step:
                ly.call = functools.partial(_dropout_per_step, ly, steps)
            y = self.layer.call(folded, **kwargs)
        finally:
            for ly in per_step:
                del ly.call  # back to the class's call
        return ops.reshape(y, (shape[0], shape[1], *y.shape[1:]))


def _dropout_per_step(layer: layers.Dropout, steps: int, inputs, training=False):
    """`layer`'s dropout on folded (B * T, ...) inputs, one draw of `layer`'s seed generator
    per time step on its (B, ...) slice, t = 0 .. T - 1."""
    if not training:
        return inputs
    x = ops.reshape(inputs, (-1, steps, *inputs.shape[1:]))
    masked = [
        keras.random.dropout(x[:, t], layer.rate, layer.noise_shape, seed=layer.seed_generator)
        for t in range(steps)
    ]
    return ops.reshape(ops.stack(masked, axis=1), ops.shape(inputs))


def _clip_input(input_shape: Sequence[int], clip_length: int | None) -> keras.KerasTensor:
    return keras.Input((clip_length, *input_shape), name="clip")


def _classifier(x, num_classes: int):
    # float32 logits even under a mixed_float16 policy: the softmax and loss stay accurate.
    return layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        dtype="float32",
        name="classifier",
    )(x)


def single_frame(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    backbone: str = "hybrid_caffenet",
    backbone_kwargs: dict | None = None,
    dropout: float = 0.5,
    clip_length: int | None = None,
    name: str = "single_frame",
) -> keras.Model:
    """The baseline: every frame classified on its own by the CNN (paper Sec. 4).

    Args:
      input_shape: one frame, (height, width, channels).
      num_classes: 101 for UCF-101.
      backbone: a name of `backbones.BACKBONES`.
      backbone_kwargs: extra keyword arguments of the backbone (weights, fc_units, ...).
      dropout: after fc6 and fc7.
      clip_length: fixed time steps, or None for any.
      name: the model's name.

    Returns:
      clips (B, T, H, W, C) -> logits (B, T, num_classes).
    """
    bb = backbones.build(
        backbone, input_shape, dropout=dropout, include_top=False, **(backbone_kwargs or {})
    )
    clip = _clip_input(input_shape, clip_length)
    x = FoldedTimeDistributed(bb, name="cnn")(clip)
    return keras.Model(clip, _classifier(x, num_classes), name=name)


def lrcn(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    lstm_after: str = "fc6",
    backbone: str = "hybrid_caffenet",
    backbone_kwargs: dict | None = None,
    lstm_units: int = 256,
    lstm_input_dropout: float = 0.9,
    lstm_output_dropout: float = 0.5,
    lstm_init: float = 0.01,
    fc_dropout: float = 0.5,
    clip_length: int | None = None,
    name: str | None = None,
) -> keras.Model:
    """LRCN for activity recognition: CNN features of each frame -> LSTM -> class per step.

    Args:
      input_shape: one frame, (height, width, channels).
      num_classes: 101 for UCF-101.
      lstm_after: "fc6" or "fc7", where the CNN ends and the LSTM starts.
      backbone: a name of `backbones.BACKBONES`.
      backbone_kwargs: extra keyword arguments of the backbone.
      lstm_units: 256 in the paper.
      lstm_input_dropout: dropout on the CNN features fed to the LSTM (0.9 originally).
      lstm_output_dropout: dropout on the LSTM output (0.5 originally).
      lstm_init: the LSTM weights are uniform in +-lstm_init (0.01 originally).
      fc_dropout: dropout after fc6 inside the CNN (LRCN-fc7 only).
      clip_length: fixed time steps, or None for any.
      name: the model's name (default "lrcn_<lstm_after>").

    Returns:
      clips (B, T, H, W, C) -> logits (B, T, num_classes).
    """
    if lstm_after not in ("fc6", "fc7"):
        raise ValueError(f"lstm_after must be 'fc6' or 'fc7', got {lstm_after!r}")
    bb = backbones.build(
        backbone, input_shape, dropout=fc_dropout, include_top=False, **(backbone_kwargs or {})
    )
    trunk = backbones.features(bb, "relu6" if lstm_after == "fc6" else "relu7", name=bb.name)
    clip = _clip_input(input_shape, clip_length)
    x = FoldedTimeDistributed(trunk, name="cnn")(clip)
    x = layers.Dropout(lstm_input_dropout, name="lstm_input_dropout")(x)
    # Caffe's LSTM filler: uniform +-0.01 for all weights, every bias 0 (also the forget gate's).
    init = keras.initializers.RandomUniform(-lstm_init, lstm_init)
    x = layers.LSTM(
        lstm_units,
        return_sequences=True,
        kernel_initializer=init,
        recurrent_initializer=init,
        bias_initializer="zeros",
        unit_forget_bias=False,
        name="lstm",
    )(x)
    x = layers.Dropout(lstm_output_dropout, name="lstm_dropout")(x)
    return keras.Model(clip, _classifier(x, num_classes), name=name or f"lrcn_{lstm_after}")


def build(model: str, input_shape: Sequence[int], num_classes: int, **kwargs) -> keras.Model:
    """`single_frame`, `lrcn_fc6` or `lrcn_fc7` by name (kwargs as in those functions)."""
    if model == "single_frame":
        return single_frame(input_shape, num_classes, **kwargs)
    if model in ("lrcn_fc6", "lrcn_fc7"):
        return lrcn(input_shape, num_classes, lstm_after=model[-3:], **kwargs)
    raise ValueError(f"unknown Table 1 model {model!r}; choose one of {', '.join(MODELS)}")


def per_step_loss(logits, labels):
    """Softmax cross-entropy at every time step, averaged over clips and steps.

    Caffe's SoftmaxWithLoss on the (T x N) blob normalises by the number of predictions, so
    every step counts equally; the single-frame model's frames count the same way.

    Args:
      logits: (B, T, K).
      labels: (B,) class of each clip (the same at every step).
    """
    steps = ops.shape(logits)[1]
    labels = ops.repeat(ops.expand_dims(ops.cast(labels, "int32"), 1), steps, axis=1)
    losses = keras.losses.sparse_categorical_crossentropy(
        labels, ops.cast(logits, "float32"), from_logits=True
    )
    return ops.mean(losses)
