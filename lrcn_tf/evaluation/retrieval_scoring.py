"""log P(caption | image) of every test caption under every test image, batched (Table 2).

The authors' scorer (reference/original_recipes.md, Retrieval): for caption c = w_1..w_n and
image i, `log_p(c|i) = sum_t log max(1e-12, P(w_t | EOS, w_1..w_{t-1}, i))`, the begin token
(EOS) fed first and no end-of-sentence term. `lrcn_tf.evaluation.retrieval.retrieval_metrics`
turns the resulting (captions, images) matrix into R@K and median ranks.

Two ways to compute it, both batched over (caption chunk x image chunk) blocks of pairs, so
memory is bounded by the chunk sizes whatever the test size (Flickr30k: 5,000 x 1,000, COCO
5k: 25,000 x 5,000 pairs; only the output matrix grows, and `out` may be a memory map):

- `factored` (default): the decoder is split where the image enters. Everything below that
  LSTM sees only words (`captioner.word_model`: the embedding and, in a factored model,
  lstm1), so it runs once per caption. The image LSTM's input projection splits as
  `[x_t, v] @ K = x_t @ K_x + v @ K_v`: `x_t @ K_x + b` is computed once per caption and
  `v @ K_v` once per image (what Caffe's LSTM did with its "static input"), so a (caption,
  image) pair only pays for the recurrences and the softmax. Every caption starts with the
  begin token, so step 0 depends on the image alone and runs once per image. The per-step
  loop keeps one (pairs, vocabulary) slice of logits alive, not (pairs, steps, vocabulary).
- `naive`: the full decoder on every pair (the words repeated for every image), for the
  benchmark and as a cross-check. Both agree within float32 round-off (tested to 1e-4).

Captions are sorted by length before chunking so a chunk carries little padding; padded
steps are never counted. The factored path's pairwise part (recurrences, softmax) runs in
float32 even under a mixed-precision policy (a retrieval score sums ~20 log-probabilities;
half precision would blur near-ties); the word part and the naive path run at the policy's
precision.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops
from tqdm import tqdm

from lrcn_tf.data.text import EOS, IGNORE
from lrcn_tf.models import captioner

LOG_FLOOR = math.log(1e-12)  # log max(1e-12, p): the original clamped word probabilities
METHODS = ("factored", "naive")


def _compile(fn, signature):
    """tf.function on TensorFlow, jax.jit on JAX.

    `signature` lists the arguments as (shape, dtype) with None for sizes that vary (chunk
    sizes, caption lengths), nested like the arguments: TensorFlow then traces once.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def spec(arg):
            if isinstance(arg, list):
                return [spec(a) for a in arg]
            return tf.TensorSpec(*arg)

        return tf.function(fn, input_signature=[spec(a) for a in signature])
    if backend == "jax":
        import jax

        return jax.jit(fn)
    return fn


def caption_steps(token_ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Decoder inputs and scored targets of captions, padded to the longest.

    Args:
      token_ids: one list of word ids per caption (no EOS), as `Vocabulary.encode` gives.

    Returns:
      (inputs, targets), int32 (C, T), T = the longest caption (at least 1): inputs =
      [EOS, w_1, .., w_{n-1}] padded with EOS, targets = [w_1, .., w_n] padded with IGNORE.
      Unlike training data (`text.time_steps`) there is no EOS target: the original scorer
      summed the caption's words only.
    """
    lengths = [len(t) for t in token_ids]
    steps = max([1, *lengths])
    inputs = np.full((len(token_ids), steps), EOS, dtype=np.int32)
    targets = np.full((len(token_ids), steps), IGNORE, dtype=np.int32)
    for row, ids in enumerate(token_ids):
        if ids:
            inputs[row, 1 : len(ids)] = ids[:-1]
            targets[row, : len(ids)] = ids
    return inputs, targets


def _word_log_probs(logits, targets):
    """Clamped log P(target) per row from (N, V) logits and (N,) targets; 0 where IGNORE."""
    valid = ops.not_equal(targets, IGNORE)
    safe = ops.where(valid, targets, 0)
    picked = ops.take_along_axis(logits, ops.expand_dims(safe, -1), axis=-1)[:, 0]
    log_p = ops.maximum(picked - ops.logsumexp(logits, axis=-1), LOG_FLOOR)
    return ops.where(valid, log_p, 0.0)


class _Factored:
    """Word part once per caption, image part once per image, recurrences per pair."""

    def __init__(self, decoder: keras.Model):
        num_layers, factored = captioner.decoder_structure(decoder)
        first = captioner.cond_layer_index(factored)
        self.word_model = captioner.word_model(decoder)
        self.cells = [decoder.get_layer(f"lstm{k}").cell for k in range(first, num_layers + 1)]
        self.feat_dim = self.word_model.output.shape[-1]
        self.predict = decoder.get_layer("predict")
        proj, vocab = 4 * self.cells[0].units, self.predict.units
        cond_dim = decoder.input["cond"].shape[-1]
        states = [((None, cell.units), "float32") for cell in self.cells for _ in "hc"]
        self._captions = _compile(self._caption_fn, [((None, None), "int32")])
        self._images = _compile(self._image_fn, [((None, cond_dim), "float32")])
        self._pairs = _compile(
            self._pair_fn,
            [
                ((None, None, proj), "float32"),
                ((None, None), "int32"),
                ((None, proj), "float32"),
                states,
                ((None, vocab), "float32"),
            ],
        )

    def _weights(self):
        f32 = lambda v: ops.cast(v, "float32")  # noqa: E731
        kernels = [f32(cell.kernel) for cell in self.cells]
        recurrent = [f32(cell.recurrent_kernel) for cell in self.cells]
        biases = [f32(cell.bias) for cell in self.cells]
        return kernels, recurrent, biases, f32(self.predict.kernel), f32(self.predict.bias)

    def _word_proj(self, words):
        # The word half of the conditioned LSTM's input projection, bias included: (C, T, 4H).
        kernels, _, biases, _, _ = self._weights()
        feats = ops.cast(self.word_model(words), "float32")
        return ops.matmul(feats, kernels[0][: self.feat_dim]) + biases[0]

    def _step(self, z, states):
        """One time step of the conditioned LSTMs from the first one's input projection `z`.

        Returns the new [h, c, ...] and the logits. Gates as Keras' LSTMCell (order i, f, c, o).
        """
        kernels, recurrent, biases, w_out, b_out = self._weights()
        new_states, x = [], None
        for k, cell in enumerate(self.cells):
            h, c = states[2 * k], states[2 * k + 1]
            if k > 0:
                z = ops.matmul(x, kernels[k]) + biases[k]  # x: the output of the LSTM below
            z_i, z_f, z_c, z_o = ops.split(z + ops.matmul(h, recurrent[k]), 4, axis=-1)
            act, rec = cell.activation, cell.recurrent_activation
            c = rec(z_f) * c + rec(z_i) * act(z_c)
            x = rec(z_o) * act(c)
            new_states += [x, c]
        return new_states, ops.matmul(x, w_out) + b_out

    def _caption_fn(self, words):
        return self._word_proj(words)

    def _image_fn(self, cond):
        # Every caption starts with the begin token, so the first step does not depend on the
        # caption: run it once per image. Returns the image half of the projection (I, 4H),
        # the states after step 0 and log P(first word | image) (I, V).
        kernels = self._weights()[0]
        image_proj = ops.matmul(ops.cast(cond, "float32"), kernels[0][self.feat_dim :])
        begin = self._word_proj(ops.full((1, 1), EOS, "int32"))[:, 0]
        states = [
            ops.zeros((ops.shape(cond)[0], cell.units), "float32")
            for cell in self.cells
            for _ in "hc"
        ]
        states, logits = self._step(begin + image_proj, states)
        return image_proj, states, logits - ops.logsumexp(logits, axis=-1, keepdims=True)

    def _pair_fn(self, word_proj, targets, image_proj, states, first_log_p):
        n_cap, n_img = ops.shape(word_proj)[0], ops.shape(image_proj)[0]
        pairs = n_cap * n_img  # pair (c, i) is row c * n_img + i
        # Step 0 came from the image part: (C, I) clamped log-probabilities of the first words.
        first = targets[:, 0]
        picked = ops.transpose(ops.take(first_log_p, ops.maximum(first, 0), axis=1))
        total = ops.where(
            ops.not_equal(first, IGNORE)[:, None], ops.maximum(picked, LOG_FLOOR), 0.0
        )
        states = [ops.tile(s, (n_cap, 1)) for s in states]

        def step(t, carry):
            states, total = carry
            z = ops.take(word_proj, t, axis=1)[:, None, :] + image_proj[None, :, :]
            states, logits = self._step(ops.reshape(z, (pairs, -1)), states)
            tgt = ops.reshape(
                ops.repeat(ops.take(targets, t, axis=1)[:, None], n_img, axis=1), (pairs,)
            )
            return states, total + _word_log_probs(logits, tgt)

        steps = ops.shape(word_proj)[1]
        _, total = ops.fori_loop(1, steps, step, (states, ops.reshape(total, (pairs,))))
        return ops.reshape(total, (n_cap, n_img))

    def captions(self, inputs, targets):
        return self._captions(ops.convert_to_tensor(inputs)), ops.convert_to_tensor(targets)

    def images(self, features):
        return self._images(ops.convert_to_tensor(features))

    def pairs(self, caption_state, image_state):
        word_proj, targets = caption_state
        return self._pairs(word_proj, targets, *image_state)


class _Naive:
    """The full decoder on every (caption, image) pair."""

    def __init__(self, decoder: keras.Model):
        # A weak reference: the scorer is cached under the decoder as a weak key (_SCORERS).
        self.decoder = weakref.ref(decoder)
        cond_dim = decoder.input["cond"].shape[-1]
        self._pairs = _compile(
            self._pair_fn,
            [((None, None), "int32"), ((None, None), "int32"), ((None, cond_dim), "float32")],
        )

    def _pair_fn(self, words, targets, cond):
        n_cap, steps = ops.shape(words)[0], ops.shape(words)[1]
        n_img = ops.shape(cond)[0]
        pairs = n_cap * n_img
        # Pair (c, i) is row c * n_img + i, as in the factored path.
        logits = self.decoder()(
            {
                "cond": ops.tile(cond, (n_cap, 1)),
                "words": ops.repeat(words, n_img, axis=0),
            },
            training=False,
        )
        logits = ops.reshape(ops.cast(logits, "float32"), (pairs * steps, -1))
        tgt = ops.reshape(ops.repeat(targets, n_img, axis=0), (pairs * steps,))
        per_step = ops.reshape(_word_log_probs(logits, tgt), (n_cap, n_img, steps))
        return ops.sum(per_step, axis=-1)

    def captions(self, inputs, targets):
        return ops.convert_to_tensor(inputs), ops.convert_to_tensor(targets)

    def images(self, features):
        return ops.convert_to_tensor(features)

    def pairs(self, caption_state, image_state):
        words, targets = caption_state
        return self._pairs(words, targets, image_state)


# Scorers of a decoder, kept while it lives: their compiled functions are traced once, not
# on every call of `caption_log_probs`.
_SCORERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _scorer(decoder: keras.Model, method: str):
    per_decoder = _SCORERS.setdefault(decoder, {})
    if method not in per_decoder:
        per_decoder[method] = _Factored(decoder) if method == "factored" else _Naive(decoder)
    return per_decoder[method]


def _check(decoder, token_ids, features, caption_chunk, image_chunk, method, out):
    if method not in METHODS:
        raise ValueError(f"method {method!r}: choose one of {METHODS}")
    if caption_chunk < 1 or image_chunk < 1:
        raise ValueError(f"caption_chunk={caption_chunk}, image_chunk={image_chunk} must be >= 1")
    if len(token_ids) == 0:
        raise ValueError("no captions to score")
    features = np.asarray(features, dtype=np.float32)
    cond_dim = decoder.input["cond"].shape[-1]
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] != cond_dim:
        raise ValueError(
            f"image_features must be (num_images, {cond_dim}) for this decoder, "
            f"got {features.shape}"
        )
    vocab_size = decoder.get_layer("predict").units
    for row, ids in enumerate(token_ids):
        if any(not 0 <= int(w) < vocab_size for w in ids):
            raise ValueError(f"caption {row} has a word id outside [0, {vocab_size}): {list(ids)}")
    shape = (len(token_ids), features.shape[0])
    if out is not None and tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
    return features


def caption_log_probs(
    decoder: keras.Model,
    token_ids: Sequence[Sequence[int]],
    image_features,
    *,
    method: str = "factored",
    caption_chunk: int = 128,
    image_chunk: int = 32,
    out: np.ndarray | None = None,
    progress: bool = True,
    description: str = "retrieval scores",
) -> np.ndarray:
    """`log_p[c, i]` = log P(caption c | image i) for every caption and image.

    Args:
      decoder: an LRCN decoder from `captioner.build_decoder` (factored or not; the factored
        path exploits whatever part of it sees only words).
      token_ids: one word-id list per caption (no EOS; `Vocabulary.encode` of the tokens).
      image_features: (num_images, cond_dim) conditioning vectors (the images' fc8).
      method: "factored" (shared word part; default) or "naive" (full decoder per pair).
      caption_chunk, image_chunk: a block of caption_chunk x image_chunk pairs is scored at
        once; memory grows with their product (times the vocabulary size), not the test size.
      out: optional (num_captions, num_images) float32 array or memory map to fill.
      progress: show a tqdm bar counting pairs.
      description: the bar's label.

    Returns:
      (num_captions, num_images) float32 log-probabilities (`out` when given).

    Raises:
      ValueError: unknown method, bad chunk sizes, no captions, features of the wrong shape,
        a word id outside the vocabulary or `out` of the wrong shape.
    """
    features = _check(decoder, token_ids, image_features, caption_chunk, image_chunk, method, out)
    n_captions, n_images = len(token_ids), features.shape[0]
    if out is None:
        out = np.empty((n_captions, n_images), dtype=np.float32)
    scorer = _scorer(decoder, method)
    # Longest first: a chunk pads to its own longest caption, and the first chunk's
    # compile sees the largest shapes.
    order = np.argsort([-len(t) for t in token_ids], kind="stable")
    image_states = [
        scorer.images(features[start : start + image_chunk])
        for start in range(0, n_images, image_chunk)
    ]
    with tqdm(
        total=n_captions * n_images,
        desc=description,
        unit="pair",
        unit_scale=True,
        disable=not progress,
    ) as bar:
        for start in range(0, n_captions, caption_chunk):
            rows = order[start : start + caption_chunk]
            caption_state = scorer.captions(*caption_steps([token_ids[r] for r in rows]))
            block = np.empty((len(rows), n_images), dtype=np.float32)
            for j, image_state in enumerate(image_states):
                scores = ops.convert_to_numpy(scorer.pairs(caption_state, image_state))
                block[:, j * image_chunk : j * image_chunk + scores.shape[1]] = scores
                bar.update(scores.size)
            out[rows] = block
    return out
