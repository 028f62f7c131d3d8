"""LRCN sentence decoder: a fixed conditioning vector + the previous words -> the next word.

Paper Section 5 (image description) and Figure 6 / Appendix (variants), reference/
original_recipes.md (Image description). At every time step the bottom LSTM reads the embedded
previous word; the conditioning vector (an image's fc8, or a video's CRF output in Table 5) is
concatenated onto the input of one LSTM at *every* step:

- factored ("2f", "4f"): the first LSTM sees only words, the vector enters the second LSTM;
- unfactored ("1u", "2u"): the vector enters the first LSTM.

Further LSTMs read the one below; the top one feeds a softmax over the vocabulary. Weights are
uniform in +-`init_scale` (0.08 in the original) and biases 0 (Caffe's LSTM has no forget-gate
bias of 1, so `unit_forget_bias=False`). Layer names are fixed ("embedding", "lstm1".."lstmN",
"predict") so that weights copy by name between models and stages.

The decoder splits into separately callable parts built from its own layers (weights shared):
`word_model` (the word-only part: embedding, plus lstm1 when factored), `conditioned_model`
(the rest, given the word part's output and the vector) and `step_model` (one time step with
explicit LSTM states, used by `lrcn_tf.models.decoding`). Retrieval (Table 2) runs `word_model`
once per caption and `conditioned_model` per (caption, image) pair.
"""

from __future__ import annotations

import re

import keras
from keras import layers, ops

from lrcn_tf.data.text import IGNORE

LOSS_WEIGHT = 20.0  # the original SoftmaxWithLoss had loss_weight: 20


@keras.saving.register_keras_serializable(package="lrcn_tf")
class ConcatOverTime(layers.Layer):
    """Concatenates one vector per sequence onto every time step: (B,T,F), (B,D) -> (B,T,F+D).

    The original LSTM layer took the image as a "static input" with its own weight matrix,
    which is the same as concatenating it onto every step's input.
    """

    def call(self, sequence, vector):
        vector = ops.cast(vector, sequence.dtype)
        tiled = ops.repeat(ops.expand_dims(vector, 1), ops.shape(sequence)[1], axis=1)
        return ops.concatenate([sequence, tiled], axis=-1)

    def compute_output_shape(self, sequence_shape, vector_shape):
        return (*sequence_shape[:-1], sequence_shape[-1] + vector_shape[-1])


class _CellStep(layers.Layer):
    """One step of an existing LSTM layer's cell (shared weights) under a unique layer name."""

    def __init__(self, lstm: layers.LSTM, **kwargs):
        super().__init__(**kwargs)
        self.lstm = lstm

    def call(self, x, h, c):
        _, (h, c) = self.lstm.cell(x, [h, c])
        return h, c


def _uniform(scale: float, seed: int | None):
    return keras.initializers.RandomUniform(-scale, scale, seed=seed)


def cond_layer_index(factored: bool) -> int:
    """The 1-based LSTM that receives the conditioning vector."""
    return 2 if factored else 1


def build_decoder(
    vocab_size: int,
    cond_dim: int,
    num_layers: int = 2,
    factored: bool = True,
    embed_dim: int = 1000,
    hidden: int = 1000,
    init_scale: float = 0.08,
    dropout: float = 0.0,
    seed: int | None = None,
    name: str = "lrcn_decoder",
) -> keras.Model:
    """The LRCN sentence decoder as a functional model.

    Args:
      vocab_size: output classes (ids of `lrcn_tf.data.text.Vocabulary`, EOS = 0).
      cond_dim: width of the conditioning vector (1000 for CaffeNet fc8).
      num_layers: LSTMs in the stack (1 to 4).
      factored: the vector enters LSTM 2 (factored) or LSTM 1 (unfactored).
      embed_dim, hidden: word-embedding and LSTM widths (1000 and 1000 in the original).
      init_scale: weights uniform in +-init_scale (0.08).
      dropout: dropout on every LSTM's output in training (0 in the original).
      seed: initialiser seed.
      name: model name.

    Returns:
      A model with inputs {"cond": (B, cond_dim) float, "words": (B, T) int} (words = EOS then
      the caption) and output float32 logits (B, T, vocab_size).
    """
    if not 1 <= num_layers <= 4:
        raise ValueError(f"num_layers={num_layers}: the LRCN variants use 1 to 4 LSTMs")
    if factored and num_layers < 2:
        raise ValueError("a factored decoder needs at least 2 LSTMs (the first sees only words)")
    cond = keras.Input((cond_dim,), name="cond")
    words = keras.Input((None,), dtype="int32", name="words")
    seeds = iter(range(1000)) if seed is None else iter(range(seed, seed + 1000))

    def init():
        return _uniform(init_scale, None if seed is None else next(seeds))

    x = layers.Embedding(vocab_size, embed_dim, embeddings_initializer=init(), name="embedding")(
        words
    )
    for k in range(1, num_layers + 1):
        if k == cond_layer_index(factored):
            x = ConcatOverTime(name=f"cond_into_lstm{k}")(x, cond)
        x = layers.LSTM(
            hidden,
            return_sequences=True,
            kernel_initializer=init(),
            recurrent_initializer=init(),
            bias_initializer="zeros",
            unit_forget_bias=False,
            name=f"lstm{k}",
        )(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"lstm{k}_dropout")(x)
    # float32 logits under a mixed precision policy: the softmax and loss stay accurate.
    logits = layers.Dense(
        vocab_size,
        kernel_initializer=init(),
        bias_initializer="zeros",
        dtype="float32",
        name="predict",
    )(x)
    return keras.Model({"cond": cond, "words": words}, logits, name=name)


def decoder_structure(decoder: keras.Model) -> tuple[int, bool]:
    """(num_layers, factored) of a model made by `build_decoder`."""
    names = [layer.name for layer in decoder.layers]
    num_layers = sum(1 for n in names if re.fullmatch(r"lstm\d", n))
    if num_layers == 0 or "embedding" not in names or "predict" not in names:
        raise ValueError(f"{decoder.name} is not an LRCN decoder (layers: {names})")
    return num_layers, "cond_into_lstm2" in names


def word_model(decoder: keras.Model) -> keras.Model:
    """The word-only part: words (B, T) -> features (B, T, F), weights shared with `decoder`.

    Factored: embedding then lstm1 (the part that never sees the vector). Unfactored: the
    embedding only.
    """
    _, factored = decoder_structure(decoder)
    words = keras.Input((None,), dtype="int32", name="words")
    x = decoder.get_layer("embedding")(words)
    if factored:
        x = decoder.get_layer("lstm1")(x)
    return keras.Model(words, x, name=f"{decoder.name}_words")


def conditioned_model(decoder: keras.Model) -> keras.Model:
    """The rest: [word features (B, T, F), cond (B, D)] -> logits (B, T, V), shared weights."""
    num_layers, factored = decoder_structure(decoder)
    first = cond_layer_index(factored)
    feat_dim = decoder.get_layer("lstm1" if factored else "embedding").output.shape[-1]
    cond_dim = decoder.get_layer(f"cond_into_lstm{first}").input[1].shape[-1]
    feats = keras.Input((None, feat_dim), name="word_features")
    cond = keras.Input((cond_dim,), name="cond")
    x = decoder.get_layer(f"cond_into_lstm{first}")(feats, cond)
    for k in range(first, num_layers + 1):
        x = decoder.get_layer(f"lstm{k}")(x)
    logits = decoder.get_layer("predict")(x)
    return keras.Model([feats, cond], logits, name=f"{decoder.name}_conditioned")


def step_model(decoder: keras.Model) -> keras.Model:
    """One decoding step with explicit states, sharing the decoder's weights.

    Inputs: [previous word (B,) int, cond (B, D), h1, c1, ..., hN, cN]; outputs:
    [logits (B, V) float32, h1', c1', ..., hN', cN'].
    """
    num_layers, factored = decoder_structure(decoder)
    first = cond_layer_index(factored)
    hidden = decoder.get_layer("lstm1").cell.units
    cond_dim = decoder.get_layer(f"cond_into_lstm{first}").input[1].shape[-1]
    prev = keras.Input((), dtype="int32", name="prev_word")
    cond = keras.Input((cond_dim,), name="cond")
    states = [
        keras.Input((hidden,), name=f"{s}{k}") for k in range(1, num_layers + 1) for s in "hc"
    ]
    x = decoder.get_layer("embedding")(prev)
    new_states = []
    for k in range(1, num_layers + 1):
        if k == first:
            x = layers.Concatenate(name=f"step_cond_into_lstm{k}")([x, ops.cast(cond, x.dtype)])
        step = _CellStep(decoder.get_layer(f"lstm{k}"), name=f"step_lstm{k}")
        h, c = step(x, states[2 * k - 2], states[2 * k - 1])
        new_states += [h, c]
        x = h
    logits = decoder.get_layer("predict")(x)
    return keras.Model([prev, cond, *states], [logits, *new_states], name=f"{decoder.name}_step")


def caption_loss(logits, targets, loss_weight: float = LOSS_WEIGHT):
    """Softmax cross-entropy over non-padded steps, times the loss weight.

    As Caffe's SoftmaxWithLoss with ignore_label -1 and normalize: true: the sum over valid
    steps divided by their number, then scaled by loss_weight (20), which scales the gradient.

    Args:
      logits: (B, T, V) float.
      targets: (B, T) int, IGNORE (-1) where padded.
    """
    total, count = caption_loss_terms(logits, targets, loss_weight)
    return total / ops.maximum(count, 1.0)


def caption_loss_terms(logits, targets, loss_weight: float = LOSS_WEIGHT):
    """(loss_weight x the summed cross-entropy of the valid steps, their number): a batch
    split over replicas is normalised by the count of the whole batch (`trainer.fit`)."""
    targets = ops.cast(targets, "int32")
    valid = ops.not_equal(targets, IGNORE)
    safe = ops.where(valid, targets, 0)
    ce = keras.losses.sparse_categorical_crossentropy(
        safe, ops.cast(logits, "float32"), from_logits=True
    )
    valid = ops.cast(valid, "float32")
    return loss_weight * ops.sum(ce * valid), ops.sum(valid)


def make_loss_fn(loss_weight: float = LOSS_WEIGHT):
    """A `loss_fn(model, batch, training)` for `lrcn_tf.training.trainer.fit`.

    `batch` is (inputs, targets): inputs as the model takes them (a dict), targets (B, T).
    """

    def loss_fn(model, batch, training):
        inputs, targets = batch
        return caption_loss(model(inputs, training=training), targets, loss_weight)

    def terms(model, batch, training):
        inputs, targets = batch
        return caption_loss_terms(model(inputs, training=training), targets, loss_weight)

    loss_fn.terms = terms  # across replicas: the global count normalises (trainer.fit)
    return loss_fn


def build_image_captioner(
    encoder: keras.Model, decoder: keras.Model, name: str = "lrcn"
) -> keras.Model:
    """Image encoder (front end) + decoder: {"image", "words"} -> logits (B, T, V).

    Args:
      encoder: a model from an image batch to one feature vector per image (fc8).
      decoder: a model from `build_decoder` whose cond_dim is the encoder's output width.
    """
    image = keras.Input(encoder.input_shape[1:], name="image")
    words = keras.Input((None,), dtype="int32", name="words")
    feature = encoder(image)
    logits = decoder({"cond": feature, "words": words})
    return keras.Model({"image": image, "words": words}, logits, name=name)
