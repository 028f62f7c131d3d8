import itertools

import numpy as np
import pytest
from keras import ops

from lrcn_tf.models import captioner
from lrcn_tf.models.decoding import CaptionGenerator

V, D, L = 5, 4, 4


@pytest.fixture(scope="module")
def model():
    dec = captioner.build_decoder(V, D, num_layers=2, embed_dim=8, hidden=8, init_scale=0.8, seed=3)
    bias = ops.convert_to_numpy(dec.get_layer("predict").bias)
    bias[0] = -1.0  # make EOS less likely so that captions have a few words
    dec.get_layer("predict").bias.assign(bias)
    cond = np.random.default_rng(0).normal(size=(6, D)).astype("float32") * 2
    return dec, cond


def _log_probs(dec, cond_row, prefix):
    words = ops.convert_to_tensor(np.array([[0, *prefix]], "int32"))
    c = ops.convert_to_tensor(cond_row[None])
    return ops.convert_to_numpy(ops.log_softmax(dec({"cond": c, "words": words}), axis=-1))[0]


def _scores(dec, cond_row, seqs):
    """Sum of log-probs of each sequence (+ EOS if shorter than L), as beam search scores it;
    all sequences in one model call."""
    words = np.zeros((len(seqs), L), "int32")
    targets = np.full((len(seqs), L), -1)
    for i, s in enumerate(seqs):
        words[i, 1 : len(s[: L - 1]) + 1] = s[: L - 1]
        t = list(s) + ([0] if len(s) < L else [])
        targets[i, : len(t)] = t
    c = ops.convert_to_tensor(np.repeat(cond_row[None], len(seqs), 0))
    lp = ops.convert_to_numpy(
        ops.log_softmax(dec({"cond": c, "words": ops.convert_to_tensor(words)}), axis=-1)
    )
    picked = np.take_along_axis(lp, np.maximum(targets, 0)[..., None], -1)[..., 0]
    return np.where(targets >= 0, picked, 0.0).sum(1)


def test_greedy_is_argmax_word_by_word(model):
    dec, cond = model
    out = CaptionGenerator(dec, max_length=L).greedy(cond)
    for i in range(len(cond)):
        seq = []
        while len(seq) < L:
            w = int(np.argmax(_log_probs(dec, cond[i], seq)[len(seq)]))
            if w == 0:
                break
            seq.append(w)
        assert out.tokens[i] == seq
        assert out.log_probs[i] == pytest.approx(_scores(dec, cond[i], [seq])[0], abs=1e-4)


def test_wide_beam_finds_the_most_probable_caption(model):
    dec, cond = model
    # every caption of up to L words over V-1 words, scored by the full model
    cands = [list(s) for n in range(L + 1) for s in itertools.product(range(1, V), repeat=n)]
    out = CaptionGenerator(dec, max_length=L).beam_search(
        cond[:3], beam_size=(V - 1) ** (L - 1) + 1
    )
    for i in range(3):
        scores = _scores(dec, cond[i], cands)
        assert out.tokens[i] == cands[int(np.argmax(scores))]
        assert out.log_probs[i] == pytest.approx(max(scores), abs=1e-4)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_batched_beam_search_equals_one_image_at_a_time(model, beam_size):
    dec, cond = model
    gen = CaptionGenerator(dec, max_length=L)
    batched = gen.beam_search(cond, beam_size=beam_size, batch_size=4)  # two batches: 4 + 2
    single = [
        gen.beam_search(cond[i : i + 1], beam_size=beam_size).tokens[0] for i in range(len(cond))
    ]
    assert batched.tokens == single
    greedy = gen.greedy(cond).log_probs
    assert np.all(batched.log_probs >= greedy - 1e-5)  # a wider beam never scores worse


def test_sampling_is_seeded_and_cold_sampling_is_greedy(model):
    dec, cond = model
    gen = CaptionGenerator(dec, max_length=L)
    a = gen.sample(cond, temperature=1.0, seed=7)
    assert a.tokens == gen.sample(cond, temperature=1.0, seed=7).tokens
    assert all(len(t) <= L and 0 not in t for t in a.tokens)
    assert gen.sample(cond, temperature=1e-4, seed=1).tokens == gen.greedy(cond).tokens
    many = [tuple(t) for s in range(5) for t in gen.sample(cond, temperature=2.0, seed=s).tokens]
    assert len(set(many)) > len(cond)  # warm sampling varies
    with pytest.raises(ValueError):
        gen.sample(cond, temperature=0)


def test_generate_dispatches_and_rejects_unknown_methods(model):
    dec, cond = model
    gen = CaptionGenerator(dec, max_length=L)
    assert gen.generate(cond, "greedy").tokens == gen.greedy(cond).tokens
    assert gen.generate(cond, "beam", beam_size=2).tokens == gen.beam_search(cond, 2).tokens
    with pytest.raises(ValueError, match="method"):
        gen.generate(cond, "nucleus")
