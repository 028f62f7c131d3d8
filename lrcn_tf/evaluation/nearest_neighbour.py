"""The 1-NN caption baselines of Table 3 (rows nn_fc7, nn_fc8).

For each test image, the training image whose CNN feature (fc7 or fc8 of the ImageNet-
pre-trained net, not the captioner's fine-tuned one) is closest is retrieved and its captions
are used as the prediction. "We used 1-nearest neighbor to retrieve the most similar image in
the training database and average the BLEU score over the captions" (paper, Section 5): with a
neighbour that has captions c_1..c_n, we score the test set n times, the j-th time predicting
c_j for every test image (c_(j mod n) for a neighbour with fewer captions), each time with
coco-caption's corpus BLEU, and report the mean of the n scores per metric.

Distance (the paper does not say): cosine distance, i.e. Euclidean distance between
L2-normalised features, by default; plain Euclidean distance on request. Ties go to the
training image that comes first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

DISTANCES = ("cosine", "euclidean")


def nearest_neighbours(
    queries: np.ndarray, database: np.ndarray, distance: str = "cosine", batch: int = 1024
) -> np.ndarray:
    """Index into `database` of each query's nearest row.

    Args:
      queries: (Q, D) features.
      database: (N, D) features.
      distance: "cosine" or "euclidean".
      batch: queries per block (bounds memory to batch x N distances).

    Returns:
      (Q,) int indices.
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance {distance!r}: choose one of {DISTANCES}")
    q = np.asarray(queries, np.float64)
    db = np.asarray(database, np.float64)
    if q.ndim != 2 or db.ndim != 2 or q.shape[1] != db.shape[1] or len(db) == 0:
        raise ValueError(
            f"features must be (Q, D) and (N, D) with N > 0; got {q.shape}, {db.shape}"
        )
    if distance == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        db = db / np.maximum(np.linalg.norm(db, axis=1, keepdims=True), 1e-12)
    db_sq = (db**2).sum(1)
    out = np.empty(len(q), np.int64)
    for s in range(0, len(q), batch):
        block = q[s : s + batch]
        # |q - d|^2 = |q|^2 - 2 q.d + |d|^2; |q|^2 is the same for every d of a query.
        d2 = db_sq[None, :] - 2.0 * block @ db.T
        out[s : s + batch] = np.argmin(d2, axis=1)  # argmin returns the first of equal values
    return out


def nn_predictions(
    test_ids: Sequence, neighbour_ids: Sequence, train_captions: Mapping
) -> list[dict]:
    """The n prediction sets {test_id: j-th caption of its neighbour}, j = 0..n-1.

    n is the largest number of captions any retrieved neighbour has.
    """
    n = max(len(train_captions[k]) for k in neighbour_ids)
    out = []
    for j in range(n):
        out.append(
            {
                t: train_captions[k][j % len(train_captions[k])]
                for t, k in zip(test_ids, neighbour_ids)
            }
        )
    return out


def nn_baseline(
    test_ids: Sequence,
    test_features: np.ndarray,
    train_ids: Sequence,
    train_features: np.ndarray,
    train_captions: Mapping,
    references: Mapping,
    distance: str = "cosine",
    metrics: Sequence[str] = ("bleu",),
) -> tuple[dict[str, float], dict]:
    """1-NN captions scored as the paper did.

    Args:
      test_ids, test_features: the test images and their features (same order).
      train_ids, train_features: the training images and their features.
      train_captions: train id -> its raw captions.
      references: test id -> its raw reference captions.
      distance: see `nearest_neighbours`.
      metrics: passed to `lrcn_tf.evaluation.captioning.score_captions`.

    Returns:
      ({metric: mean over the neighbour's captions}, {test_id: neighbour train id}).
    """
    from lrcn_tf.evaluation.captioning import score_captions

    idx = nearest_neighbours(test_features, train_features, distance)
    neighbours = [train_ids[i] for i in idx]
    runs = [
        score_captions(references, p, metrics)
        for p in nn_predictions(test_ids, neighbours, train_captions)
    ]
    mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    return mean, dict(zip(test_ids, neighbours))
