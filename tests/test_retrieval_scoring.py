"""log P(caption | image) scoring for Table 2 against a direct per-pair computation."""

import functools
import math

import keras
import numpy as np
import pytest

from lrcn_tf.evaluation.retrieval_scoring import LOG_FLOOR, caption_log_probs, caption_steps
from lrcn_tf.models import captioner

V, D = 17, 6
CAPTIONS = [[3, 4, 5], [7, 2, 9, 11, 4, 6, 8], [12], [], [5, 5, 16, 2, 3], [1, 10]]


def _decoder(num_layers=2, factored=True, seed=3):
    # A large init scale so that word probabilities differ a lot between images.
    return captioner.build_decoder(
        V,
        D,
        num_layers=num_layers,
        factored=factored,
        embed_dim=8,
        hidden=12,
        init_scale=0.4,
        seed=seed,
    )


def _features(n=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32)


def _direct(decoder, captions, features, eos_term=False):
    """Every pair through the full decoder in one call, float64 log-softmax, the original's
    clamp; (captions, images). Words are right-padded: the LSTMs are causal, so padding
    after a caption cannot change its steps."""
    steps = max(len(ids) for ids in captions) + 1
    words = np.zeros((len(captions), len(features), steps), np.int32)
    for c, ids in enumerate(captions):
        words[c, :, 1 : len(ids) + 1] = ids  # [EOS, w1, .., wn]: the EOS-term step included
    cond = np.broadcast_to(features[None], (len(captions), *features.shape))
    logits = decoder(
        {
            "cond": keras.ops.convert_to_tensor(cond.reshape(-1, D)),
            "words": keras.ops.convert_to_tensor(words.reshape(-1, steps)),
        }
    )
    logits = np.asarray(logits, np.float64).reshape(len(captions), len(features), steps, V)
    top = logits.max(-1, keepdims=True)
    log_p = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    out = np.zeros((len(captions), len(features)))
    for c, ids in enumerate(captions):
        for t, w in enumerate(ids):
            out[c] += np.maximum(math.log(1e-12), log_p[c, :, t, w])
        if eos_term:  # what the original did NOT add: P(EOS | whole caption, image)
            out[c] += log_p[c, :, len(ids), 0]
    return out


@functools.cache
def _decoder_and_reference(num_layers, factored):
    """A shared decoder (never modified) and its direct scores of CAPTIONS x _features()."""
    decoder = _decoder(num_layers, factored)
    features = _features()
    return decoder, _direct(decoder, CAPTIONS, features)


@pytest.mark.parametrize(
    "num_layers, factored, method",
    [(2, True, "factored"), (2, True, "naive"), (1, False, "factored"), (3, True, "factored")],
)
def test_matches_direct_per_pair_scores(num_layers, factored, method):
    decoder, reference = _decoder_and_reference(num_layers, factored)
    features = _features()
    # Chunks (4 captions x 2 images) that divide neither 6 captions nor 5 images.
    got = caption_log_probs(
        decoder, CAPTIONS, features, method=method, caption_chunk=4, image_chunk=2, progress=False
    )
    assert got.shape == (len(CAPTIONS), 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference, atol=1e-4, rtol=0)
    assert np.all(got[3] == 0.0)  # an empty caption has no word to score
    assert np.ptp(got[0]) > 0.1  # the image matters (the test can tell images apart)


@pytest.mark.parametrize("caption_chunk, image_chunk", [(1, 1), (5, 3), (100, 100)])
def test_chunk_sizes_do_not_change_scores(caption_chunk, image_chunk):
    decoder, reference = _decoder_and_reference(2, True)
    got = caption_log_probs(
        decoder,
        CAPTIONS,
        _features(),
        caption_chunk=caption_chunk,
        image_chunk=image_chunk,
        progress=False,
    )
    np.testing.assert_allclose(got, reference, atol=1e-4, rtol=0)


def test_near_zero_word_probability_is_clamped_to_1e_minus_12():
    decoder = _decoder()
    predict = decoder.get_layer("predict")
    bias = np.zeros(V, np.float32)
    bias[13] = -1e4  # P(word 13) ~ exp(-1e4) = 0 in float32 under every image
    predict.bias.assign(bias)
    features = _features(3)
    for method in ("factored", "naive"):
        got = caption_log_probs(
            decoder, [[13], [4, 13], [4]], features, method=method, progress=False
        )
        np.testing.assert_allclose(got[0], LOG_FLOOR, atol=1e-4)
        # The clamped word adds exactly log(1e-12) to the rest of the caption.
        np.testing.assert_allclose(got[1], got[2] + LOG_FLOOR, atol=1e-4)
    assert LOG_FLOOR == pytest.approx(math.log(1e-12))


def test_no_end_of_sentence_term():
    decoder, reference = _decoder_and_reference(2, True)
    features = _features()
    got = caption_log_probs(decoder, CAPTIONS, features, progress=False)
    np.testing.assert_allclose(got, reference, atol=1e-4, rtol=0)
    with_eos = _direct(decoder, CAPTIONS, features, eos_term=True)
    assert np.all(np.abs(got - with_eos) > 1e-2)


def test_padding_is_not_counted():
    decoder = _decoder_and_reference(2, True)[0]
    features = _features(4)
    short = [[3, 4]]
    alone = caption_log_probs(decoder, short, features, progress=False)
    # In one chunk with a caption three times as long: padded to its length.
    padded = caption_log_probs(decoder, [[3, 4], [5, 6, 7, 8, 9, 10]], features, progress=False)
    np.testing.assert_allclose(padded[0], alone[0], atol=1e-5)


def test_caption_steps_feed_begin_token_and_pad():
    inputs, targets = caption_steps([[5, 6, 7], [8], []])
    np.testing.assert_array_equal(inputs, [[0, 5, 6], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(targets, [[5, 6, 7], [8, -1, -1], [-1, -1, -1]])
    inputs, targets = caption_steps([[]])
    assert inputs.shape == targets.shape == (1, 1) and targets[0, 0] == -1


def test_fills_the_given_output_array():
    decoder = _decoder_and_reference(2, True)[0]
    out = np.full((len(CAPTIONS), 5), np.nan, np.float32)
    got = caption_log_probs(decoder, CAPTIONS, _features(), out=out, progress=False)
    assert got is out and np.isfinite(out).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(token_ids=[[1, 99]]), "word id outside"),
        (dict(image_features=np.zeros((3, D + 1), np.float32)), r"must be \(num_images, 6\)"),
        (dict(token_ids=[]), "no captions"),
        (dict(method="fast"), "method 'fast'"),
        (dict(caption_chunk=0), "must be >= 1"),
        (dict(out=np.zeros((2, 2), np.float32)), "out has shape"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    args = dict(token_ids=[[1, 2]], image_features=_features(3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        caption_log_probs(_decoder_and_reference(2, True)[0], progress=False, **args)
