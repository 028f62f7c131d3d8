"""Retrieval metrics (Table 2 protocol) on hand-made score matrices, ties included."""

import numpy as np
import pytest

from lrcn_tf.evaluation import retrieval
from lrcn_tf.evaluation.retrieval import (
    RetrievalError,
    recall_metrics,
    retrieval_metrics,
    retrieval_ranks,
)


def _reference_ranks(log_p, caption_image):
    """Slow, literal version: sort descending, wrong items first among equals, first correct."""
    s = retrieval.normalise_rows(log_p)
    n_c, n_i = s.shape
    c2i = []
    for c in range(n_c):
        correct = np.arange(n_i) == caption_image[c]
        # lexsort: last key is primary; descending score, then correct items after wrong ones.
        order = np.lexsort((correct, -s[c]))
        c2i.append(int(np.flatnonzero(correct[order])[0]))
    i2c = []
    for i in range(n_i):
        correct = caption_image == i
        order = np.lexsort((correct, -s[:, i]))
        i2c.append(int(np.flatnonzero(correct[order])[0]))
    return np.array(c2i), np.array(i2c)


def test_normalisation_decides_image_to_caption():
    # Caption 1 is improbable under every image but much more so under image 0 than 1.
    # Raw scores: image 1 prefers caption 0 (-3 > -9), rank 1. Normalised per caption
    # (x - log(mean(exp(row)))): caption 0 at image 1 = -3 - log((e^-1 + e^-3)/2) = -1.434,
    # caption 1 at image 1 = -9 - log((e^-10 + e^-9)/2) = +0.380, so caption 1 wins: rank 0.
    log_p = np.array([[-1.0, -3.0], [-10.0, -9.0]])
    own = np.array([0, 1])
    norm = retrieval.normalise_rows(log_p)
    np.testing.assert_allclose(norm[:, 1], [-1.43378, 0.37988], atol=1e-5)
    c2i, i2c = retrieval_ranks(log_p, own)
    assert c2i.tolist() == [0, 0]
    assert i2c.tolist() == [0, 0]
    # Without the normalisation image 1 would rank caption 0 first.
    assert int(np.argmax(log_p[:, 1])) == 0


def test_hand_computed_ranks_and_metrics():
    # 3 images, 5 captions (image 0 has captions 0, 1; image 1 has 2, 3; image 2 has 4).
    # Rows are given already normalised in spirit: each row's log-mean-exp is subtracted, a
    # per-row constant that leaves every row's order unchanged; columns below are chosen so
    # that the order holds after normalisation too (each row has the same log-mean-exp).
    log_p = np.array(
        [
            [-1.0, -2.0, -3.0],  # caption 0 (image 0): own best -> rank 0
            [-3.0, -1.0, -2.0],  # caption 1 (image 0): own last -> rank 2
            [-2.0, -1.0, -3.0],  # caption 2 (image 1): rank 0
            [-1.0, -3.0, -2.0],  # caption 3 (image 1): own last -> rank 2
            [-3.0, -1.0, -2.0],  # caption 4 (image 2): rank 1
        ]
    )
    own = np.array([0, 0, 1, 1, 2])
    c2i, i2c = retrieval_ranks(log_p, own)
    assert c2i.tolist() == [0, 2, 0, 2, 1]
    # Image 0 column: captions 0 and 3 tie at -1 (best own = caption 0) -> the wrong caption 3
    # ties with it and counts against: rank 1. Image 1 column: captions 1 and 4 (wrong) tie
    # with caption 2 (own) at -1 -> rank 2. Image 2 column: caption 1 and 3 at -2 tie with
    # caption 4 (own, -2) -> rank 2.
    assert i2c.tolist() == [1, 2, 2]
    m = retrieval_metrics(log_p, own)
    assert m["caption_to_image"] == {"r1": 40.0, "r5": 100.0, "r10": 100.0, "medr": 2.0}
    assert m["image_to_caption"] == {"r1": 0.0, "r5": 100.0, "r10": 100.0, "medr": 3.0}


def test_constant_scores_give_the_worst_ranks():
    log_p = np.zeros((6, 3))
    own = np.array([0, 0, 1, 1, 2, 2])
    c2i, i2c = retrieval_ranks(log_p, own)
    assert c2i.tolist() == [2] * 6  # both other images tie and count against
    assert i2c.tolist() == [4] * 3  # all four other captions tie and count against
    m = retrieval_metrics(log_p, own)
    assert m["caption_to_image"]["r1"] == 0.0 and m["caption_to_image"]["medr"] == 3.0
    assert m["image_to_caption"]["r1"] == 0.0 and m["image_to_caption"]["medr"] == 5.0


def test_recall_and_median_rank():
    assert recall_metrics(np.array([0, 1, 4, 9, 20])) == {
        "r1": 20.0,
        "r5": 60.0,
        "r10": 80.0,
        "medr": 5.0,
    }
    assert recall_metrics(np.array([0, 1, 2, 3]))["medr"] == 2.5  # mean of the middle two, +1


@pytest.mark.parametrize("block", [1 << 22, 7, 1])
def test_matches_literal_sort_with_many_ties(monkeypatch, block):
    monkeypatch.setattr(retrieval, "_BLOCK_ELEMENTS", block)  # also exercises the blocking
    rng = np.random.default_rng(0)
    n_images, per = 7, 3
    own = np.repeat(np.arange(n_images), per)
    log_p = -rng.integers(1, 4, size=(n_images * per, n_images)).astype(np.float32)
    got = retrieval_ranks(log_p, own)
    want = _reference_ranks(log_p, own)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_perfect_model_and_stability_at_very_low_log_probabilities():
    n = 6
    own = np.arange(n)
    log_p = -2000.0 - 50.0 * (1 - np.eye(n))  # exp() of these underflows without logsumexp
    m = retrieval_metrics(log_p, own)
    assert m["caption_to_image"] == {"r1": 100.0, "r5": 100.0, "r10": 100.0, "medr": 1.0}
    assert m["image_to_caption"] == {"r1": 100.0, "r5": 100.0, "r10": 100.0, "medr": 1.0}


@pytest.mark.parametrize(
    "log_p, own, match",
    [
        (np.zeros((3, 2)), np.array([0, 1]), "one image index per row"),
        (np.zeros((2, 2)), np.array([0, 2]), r"\[0, 2\)"),
        (np.zeros((2, 3)), np.array([0, 1]), "have no caption"),
        (np.zeros((2, 2)), np.array([0.0, 1.0]), "integer"),
        (np.array([[0.0, np.nan], [0.0, 0.0]]), np.array([0, 1]), "row 0 has a non-finite"),
        (np.zeros(3), np.array([0, 1, 2]), "matrix"),
    ],
)
def test_bad_input_is_rejected(log_p, own, match):
    with pytest.raises(RetrievalError, match=match):
        retrieval_metrics(log_p, own)
