"""Video description from CRF outputs (paper Section 6, Figure 10): the three LSTM models of Table 5.

(b) and (c) are the image-description decoder (`lrcn_tf.models.captioner.build_decoder`) with
the CRF vector instead of the image feature, fed at every step: the one-hot MAP labels (CRF
max) or the concatenated distributions (CRF prob). Nothing here is specific to them.

(a) is an encoder-decoder (Sutskever et al. 2014, which the paper follows): an encoder LSTM
stack reads the MAP labels as a word sequence ("cut knife carrot null cutting board"), and its
final (h, c) per layer become the initial states of a decoder that sees nothing else of the
video, so it must remember the whole input. The decoder is the captioner's own decoder built
with an empty (0-wide) conditioning vector, and its layers are called here with initial
states, so training, the loss and decoding (`CaptionGenerator(..., initial_states=...)`) are
the captioning code's. "We use the same two-layer LSTM for encoding and decoding" is read as
the same architecture (two layers of the same width), with separate weights as in Sutskever et
al.: OUR READING, the paper does not say whether the weights are shared.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from lrcn_tf.models import captioner, decoding

INIT_SCALE = 0.08  # uniform +-0.08 as the captioner's weights


def build_crf_decoder(
    vocab_size: int,
    input_dim: int,
    num_layers: int = 2,
    embed_dim: int = 1000,
    hidden: int = 1000,
    factored: bool = False,
    dropout: float = 0.0,
    seed: int | None = None,
) -> keras.Model:
    """(b)/(c): the captioner's decoder fed a CRF vector (`input_dim` wide) at every step.

    Returns:
      {"cond": (B, input_dim), "words": (B, T)} -> logits (B, T, vocab_size).
    """
    return captioner.build_decoder(
        vocab_size,
        input_dim,
        num_layers=num_layers,
        factored=factored,
        embed_dim=embed_dim,
        hidden=hidden,
        init_scale=INIT_SCALE,
        dropout=dropout,
        seed=seed,
        name="crf_decoder",
    )


def build_encoder_decoder(
    source_vocab_size: int,
    vocab_size: int,
    num_layers: int = 2,
    embed_dim: int = 1000,
    hidden: int = 1000,
    dropout: float = 0.0,
    seed: int | None = None,
) -> tuple[keras.Model, keras.Model, keras.Model]:
    """(a): encoder LSTMs over the MAP label words, whose final states start the decoder.

    Args:
      source_vocab_size: ids of the label words (0 = padding, masked).
      vocab_size: sentence vocabulary.
      num_layers, embed_dim, hidden: both stacks have these sizes.
      dropout: dropout on every LSTM output in training (encoder and decoder).
      seed: initialiser seed.

    Returns:
      (model, encoder, decoder): `model` maps {"source": (B, S), "words": (B, T)} to logits
      (B, T, V) for training; `encoder` maps source ids to the initial states
      [h1, c1, ..., hN, cN] of `decoder`, the captioner decoder (0-wide conditioning vector)
      that `lrcn_tf.models.decoding.CaptionGenerator` runs. All three share weights.
    """
    decoder = captioner.build_decoder(
        vocab_size,
        0,  # no fixed input: the decoder knows the video only through its initial state
        num_layers=num_layers,
        factored=False,
        embed_dim=embed_dim,
        hidden=hidden,
        init_scale=INIT_SCALE,
        dropout=dropout,
        seed=seed,
        name="decoder",
    )
    seeds = (
        iter(range(10_000, 11_000)) if seed is None else iter(range(seed + 10_000, seed + 11_000))
    )

    def init():
        return keras.initializers.RandomUniform(-INIT_SCALE, INIT_SCALE, seed=next(seeds))

    source = keras.Input((None,), dtype="int32", name="source")
    x = layers.Embedding(
        source_vocab_size,
        embed_dim,
        mask_zero=True,
        embeddings_initializer=init(),
        name="source_embedding",
    )(source)
    states = []
    for k in range(1, num_layers + 1):
        x, h, c = layers.LSTM(
            hidden,
            return_sequences=True,
            return_state=True,
            kernel_initializer=init(),
            recurrent_initializer=init(),
            bias_initializer="zeros",
            unit_forget_bias=False,  # as the captioner: Caffe's LSTM has no forget bias of 1
            name=f"encoder_lstm{k}",
        )(x)
        states += [h, c]
        if dropout > 0:
            x = layers.Dropout(dropout, seed=next(seeds), name=f"encoder_lstm{k}_dropout")(x)
    encoder = keras.Model(source, states, name="encoder")

    # The decoder's own layers, run from the encoder's states (its cond_into_lstm1 layer
    # concatenates a 0-wide vector, so it is skipped here: lstm1 reads the word embedding).
    words = keras.Input((None,), dtype="int32", name="words")
    enc_states = encoder(source)
    y = decoder.get_layer("embedding")(words)
    for k in range(1, num_layers + 1):
        y = decoder.get_layer(f"lstm{k}")(y, initial_state=enc_states[2 * k - 2 : 2 * k])
        if dropout > 0:
            y = decoder.get_layer(f"lstm{k}_dropout")(y)
    logits = decoder.get_layer("predict")(y)
    model = keras.Model({"source": source, "words": words}, logits, name="encoder_decoder")
    return model, encoder, decoder


def empty_cond(n: int) -> np.ndarray:
    """The (n, 0) conditioning input of the encoder-decoder's decoder."""
    return np.zeros((n, 0), np.float32)


def describe(
    decoder: keras.Model,
    vocab,
    inputs: np.ndarray,
    encoder: keras.Model | None = None,
    beam_size: int = 1,
    max_length: int = 50,
    batch_size: int = 128,
) -> list[str]:
    """Sentences for a batch of segments with the captioning code's beam search (1 = greedy).

    Args:
      decoder: from `build_crf_decoder`, or the decoder of `build_encoder_decoder`.
      vocab: the sentence `lrcn_tf.data.text.Vocabulary`.
      inputs: CRF vectors (N, D) for a CRF decoder; MAP label word ids (N, S) with `encoder`.
      encoder: the encoder of `build_encoder_decoder`, or None for a CRF decoder.
      beam_size, max_length: decoding settings (the authors used 1 and 50).
      batch_size: segments decoded together.

    Returns:
      One sentence per row of `inputs`.
    """
    gen = decoding.CaptionGenerator(decoder, max_length=max_length)
    if encoder is None:
        out = gen.beam_search(inputs, beam_size=beam_size, batch_size=batch_size)
    else:
        states = encoder.predict(inputs, batch_size=batch_size, verbose=0)
        out = gen.beam_search(
            empty_cond(len(inputs)),
            beam_size=beam_size,
            batch_size=batch_size,
            initial_states=states,
        )
    return [vocab.decode(tokens) for tokens in out.tokens]
