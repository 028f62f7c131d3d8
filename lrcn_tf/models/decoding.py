"""Caption generation from an LRCN decoder: greedy, beam search and sampling, batched.

All beams of all sequences in a batch advance together: one compiled step runs the decoder's
`step_model` on (batch x beam) rows, takes the top `beam_size` continuations of each sequence
over all (beam, word) pairs, and reorders the LSTM states, in `keras.ops` only (compiled with
`tf.function` on TensorFlow, `jax.jit` on JAX). A Python loop calls it once per time step and
stops when every beam of every sequence has ended or `max_length` words were written.

Beam search ranks hypotheses by the sum of word log-probabilities (no length normalisation),
as the authors' captioner did; a beam that has emitted EOS keeps its score and is carried
along unchanged. Greedy decoding is beam search with one beam (the authors' evaluation setting,
with a maximum length of 50). Ties between equal scores go to the lower (beam, word) index,
so a batch gives the same captions as decoding its sequences one at a time.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from lrcn_tf.data.text import EOS
from lrcn_tf.models.captioner import decoder_structure, step_model

_NEG = -1e9  # a score no real hypothesis reaches (not -inf: -inf - -inf is NaN)


@dataclasses.dataclass
class Generated:
    """Decoded word ids (no EOS), one list per input row, and their log-probabilities."""

    tokens: list[list[int]]
    log_probs: np.ndarray


def _compile(fn, jit_compile: bool):
    """tf.function (XLA-compiled if `jit_compile`) on TensorFlow, jax.jit on JAX."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True, jit_compile=jit_compile)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    return fn


class CaptionGenerator:
    """Generates captions from conditioning vectors with a trained decoder.

    Args:
      decoder: a model made by `lrcn_tf.models.captioner.build_decoder` (weights shared).
      max_length: the most words a caption may have (50 in the authors' evaluation).
      jit_compile: XLA-compile the step on TensorFlow (fuses its few dozen small ops; one
        compilation per batch shape; docs/performance.md has the measured speed-up).
    """

    def __init__(self, decoder: keras.Model, max_length: int = 50, jit_compile: bool = True):
        self.num_layers, _ = decoder_structure(decoder)
        self.hidden = decoder.get_layer("lstm1").cell.units
        self.vocab_size = decoder.get_layer("predict").units
        self.step = step_model(decoder)
        self.max_length = int(max_length)
        self.jit_compile = jit_compile
        self._beam_steps: dict[int, object] = {}
        self._sample_step = _compile(self._sample_fn, jit_compile)

    # -- beam search ---------------------------------------------------------------------------

    def beam_search(
        self, cond, beam_size: int = 1, batch_size: int = 64, initial_states=None
    ) -> Generated:
        """The highest-scoring caption of each row of `cond` (B, D); beam_size 1 is greedy.

        Rows are decoded `batch_size` at a time (all beams of a batch in one compiled step).
        `initial_states` ([h1, c1, ..., hN, cN], each (B, hidden)) start the LSTMs instead of
        zeros: an encoder-decoder's encoder states (Table 5 (a)).
        """
        if beam_size < 1:
            raise ValueError(f"beam_size={beam_size} must be >= 1")
        cond = np.asarray(cond, np.float32)
        tokens, scores = [], []
        for start in range(0, len(cond), batch_size):
            init = None
            if initial_states is not None:
                init = [
                    np.asarray(x, np.float32)[start : start + batch_size] for x in initial_states
                ]
            t, s = self._beam_batch(cond[start : start + batch_size], beam_size, init)
            tokens += t
            scores.append(s)
        return Generated(tokens, np.concatenate(scores) if scores else np.zeros(0, np.float32))

    def greedy(self, cond, batch_size: int = 64) -> Generated:
        """Greedy decoding: the most probable word at every step."""
        return self.beam_search(cond, beam_size=1, batch_size=batch_size)

    def _beam_batch(self, cond: np.ndarray, k: int, initial_states=None):
        if k not in self._beam_steps:
            self._beam_steps[k] = _compile(self._beam_fn, self.jit_compile)
        step = self._beam_steps[k]
        b, length = len(cond), self.max_length
        cond_rep = ops.convert_to_tensor(np.repeat(cond, k, axis=0))
        states = [ops.zeros((b * k, self.hidden)) for _ in range(2 * self.num_layers)]
        if initial_states is not None:
            states = [ops.convert_to_tensor(np.repeat(x, k, axis=0)) for x in initial_states]
        # Only beam 0 is live at t=0, so the first top-k picks k different words.
        init = np.full((b, k), _NEG, np.float32)
        init[:, 0] = 0.0
        carry = (
            ops.full((b * k,), EOS, "int32"),  # previous word: EOS is the begin token
            ops.convert_to_tensor(init),  # scores
            ops.zeros((b, k), "bool"),  # finished
            ops.zeros((b, k, length), "int32"),  # tokens
            states,
        )
        for t in range(length):
            carry = step(ops.convert_to_tensor(t, "int32"), cond_rep, *carry)
            if bool(ops.convert_to_numpy(ops.all(carry[2]))):
                break
        scores, tokens = ops.convert_to_numpy(carry[1]), ops.convert_to_numpy(carry[3])
        # Beams are kept sorted by score, best first (top_k order).
        return [_strip(row) for row in tokens[:, 0]], scores[:, 0]

    def _beam_fn(self, t, cond_rep, prev, scores, finished, tokens, states):
        b, k = ops.shape(scores)[0], ops.shape(scores)[1]
        vocab = self.vocab_size
        logits, *new_states = self.step([prev, cond_rep, *states], training=False)
        logp = ops.reshape(ops.log_softmax(ops.cast(logits, "float32"), axis=-1), (b, k, vocab))
        # A finished beam may only "emit" EOS again at no cost: its score stays as it was.
        eos_only = ops.where(ops.arange(vocab) == EOS, 0.0, _NEG)
        logp = ops.where(finished[..., None], eos_only[None, None, :], logp)
        total = ops.reshape(scores[..., None] + logp, (b, k * vocab))
        top_scores, top_idx = ops.top_k(total, k, sorted=True)
        beam = top_idx // vocab
        word = ops.cast(top_idx % vocab, "int32")
        rows = ops.reshape(ops.arange(b)[:, None] * k + beam, (-1,))
        new_states = [ops.take(s, rows, axis=0) for s in new_states]
        was_finished = ops.take_along_axis(finished, beam, axis=1)
        tokens = ops.take(ops.reshape(tokens, (b * k, -1)), rows, axis=0)
        tokens = ops.reshape(tokens, (b, k, -1))
        write = ops.arange(ops.shape(tokens)[2]) == t
        tokens = ops.where(write[None, None, :], word[..., None], tokens)
        finished = ops.logical_or(was_finished, word == EOS)
        return ops.reshape(word, (-1,)), top_scores, finished, tokens, new_states

    # -- sampling ------------------------------------------------------------------------------

    def sample(
        self, cond, temperature: float = 1.0, seed: int = 0, batch_size: int = 64
    ) -> Generated:
        """One caption per row drawn from softmax(logits / temperature), word by word."""
        if temperature <= 0:
            raise ValueError(f"temperature={temperature} must be > 0 (greedy is beam_size 1)")
        cond = np.asarray(cond, np.float32)
        gen = keras.random.SeedGenerator(seed)
        tokens, scores = [], []
        for start in range(0, len(cond), batch_size):
            c = ops.convert_to_tensor(cond[start : start + batch_size])
            b = ops.shape(c)[0]
            carry = (
                ops.full((b,), EOS, "int32"),
                ops.zeros((b,)),
                ops.zeros((b,), "bool"),
                ops.zeros((b, self.max_length), "int32"),
                [ops.zeros((b, self.hidden)) for _ in range(2 * self.num_layers)],
            )
            temp = ops.convert_to_tensor(float(temperature))
            for t in range(self.max_length):
                # Gumbel-max sampling, the noise drawn outside the compiled step: a stateful
                # seed generator cannot live inside tf.function / jax.jit.
                u = keras.random.uniform((b, self.vocab_size), 1e-12, 1.0, seed=gen)
                gumbel = -ops.log(-ops.log(u))
                carry = self._sample_step(
                    ops.convert_to_tensor(t, "int32"), c, temp, gumbel, *carry
                )
                if bool(ops.convert_to_numpy(ops.all(carry[2]))):
                    break
            tokens += [_strip(row) for row in ops.convert_to_numpy(carry[3])]
            scores.append(ops.convert_to_numpy(carry[1]))
        return Generated(tokens, np.concatenate(scores) if scores else np.zeros(0, np.float32))

    def _sample_fn(self, t, cond, temperature, gumbel, prev, scores, finished, tokens, states):
        logits, *new_states = self.step([prev, cond, *states], training=False)
        logp_all = ops.log_softmax(ops.cast(logits, "float32") / temperature, axis=-1)
        word = ops.cast(ops.argmax(logp_all + gumbel, axis=-1), "int32")
        logp = ops.take_along_axis(logp_all, word[:, None], axis=1)[:, 0]
        word = ops.where(finished, EOS, word)
        scores = scores + ops.where(finished, 0.0, logp)
        write = ops.arange(ops.shape(tokens)[1]) == t
        tokens = ops.where(write[None, :], word[:, None], tokens)
        return word, scores, ops.logical_or(finished, word == EOS), tokens, new_states

    def generate(
        self,
        cond,
        method: str = "beam",
        beam_size: int = 1,
        temperature: float = 1.0,
        seed: int = 0,
        batch_size: int = 64,
    ) -> Generated:
        """`beam` (beam_size 1 = greedy), `greedy` or `sample`."""
        if method in ("beam", "greedy"):
            return self.beam_search(cond, 1 if method == "greedy" else beam_size, batch_size)
        if method == "sample":
            return self.sample(cond, temperature, seed, batch_size)
        raise ValueError(f"method {method!r}: use 'beam', 'greedy' or 'sample'")


def _strip(row) -> list[int]:
    """Word ids up to (not including) the first EOS."""
    out = []
    for w in row:
        if int(w) == EOS:
            break
        out.append(int(w))
    return out
