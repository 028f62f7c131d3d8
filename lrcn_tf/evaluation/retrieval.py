"""Caption/image retrieval metrics with the authors' protocol (Table 2).

`log_p[c, i]` is log P(caption c | image i) from the captioning model. Following the original
scorer (reference/original_recipes.md, Retrieval):

1. Each caption's row is normalised: `log_p(c|i) - log(mean_i' exp(log_p(c|i')))`, computed
   with a log-sum-exp so long captions (log-probabilities of -100 and less) do not underflow.
   This does not change caption-to-image rankings; it stops captions that are probable under
   every image (short, generic ones) from topping every image's list in image-to-caption.
2. Caption-to-image ranks all images for each caption; image-to-caption ranks all captions
   for each image, where any of the image's own captions counts as correct.
3. rank = 0-based position of the first correct item; `R@K = 100 * mean(rank < K)`,
   `medr = median(rank) + 1` (a median of an even count is the mean of the middle two).

Ties (a deliberate choice; the original sorted scores and took the sort's order): a wrong item
scoring *equal* to the best correct item is ranked before it. So rank = number of wrong items
scoring >= the best correct one. This is the pessimistic rule: a model that gives every pair
the same score gets the worst possible ranks instead of an order decided by item indices.

The score matrix is processed in blocks of rows, so COCO's 25,000 x 5,000 needs only a few
hundred MB beyond the input itself (the original scorer ran out of memory there).
"""

from __future__ import annotations

import numpy as np

KS = (1, 5, 10)
# Elements of one block of rows (float64 temporaries: ~32 MB each).
_BLOCK_ELEMENTS = 1 << 22


class RetrievalError(ValueError):
    """Malformed retrieval scores or caption-to-image map."""


def normalise_rows(log_p: np.ndarray) -> np.ndarray:
    """`log_p[c, i] - log(mean_i' exp(log_p[c, i']))` for a block of rows, in float64."""
    x = np.asarray(log_p, dtype=np.float64)
    m = x.max(axis=1, keepdims=True)
    log_mean = m + np.log(np.exp(x - m).mean(axis=1, keepdims=True))
    return x - log_mean


def _check(log_p: np.ndarray, caption_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    log_p = np.asarray(log_p)
    caption_image = np.asarray(caption_image)
    if log_p.ndim != 2 or log_p.shape[0] == 0 or log_p.shape[1] == 0:
        raise RetrievalError(
            f"log_p must be a non-empty (captions, images) matrix, got {log_p.shape}"
        )
    if not np.issubdtype(log_p.dtype, np.floating) and not np.issubdtype(log_p.dtype, np.integer):
        raise RetrievalError(f"log_p must be numeric, got dtype {log_p.dtype}")
    if caption_image.shape != (log_p.shape[0],):
        raise RetrievalError(
            f"caption_image has shape {caption_image.shape}; expected ({log_p.shape[0]},), one "
            "image index per row of log_p"
        )
    if not np.issubdtype(caption_image.dtype, np.integer):
        raise RetrievalError(f"caption_image must hold integer indices, got {caption_image.dtype}")
    n_images = log_p.shape[1]
    if caption_image.min() < 0 or caption_image.max() >= n_images:
        raise RetrievalError(f"caption_image values must lie in [0, {n_images}) (columns of log_p)")
    without = np.setdiff1d(np.arange(n_images), caption_image)
    if without.size:
        raise RetrievalError(
            f"{without.size} image(s) have no caption (e.g. columns {without[:5].tolist()}); "
            "image-to-caption retrieval needs at least one per image"
        )
    return log_p, caption_image.astype(np.int64)


def _blocks(n_rows: int, n_cols: int):
    step = max(1, _BLOCK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def retrieval_ranks(log_p: np.ndarray, caption_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0-based ranks of the first correct item, pessimistic about ties.

    Args:
      log_p: (num_captions, num_images) log P(caption | image); finite values.
      caption_image: (num_captions,) index of each caption's own image (column of log_p).

    Returns:
      (caption_to_image ranks, one per caption; image_to_caption ranks, one per image).

    Raises:
      RetrievalError: wrong shapes or dtypes, indices out of range, an image without a
        caption, or a non-finite score.
    """
    log_p, caption_image = _check(log_p, caption_image)
    n_captions, n_images = log_p.shape
    rows = np.arange(n_captions)
    c2i = np.empty(n_captions, dtype=np.int64)
    best_own = np.full(n_images, -np.inf)  # each image's best-scoring own caption
    for block in _blocks(n_captions, n_images):
        s = normalise_rows(log_p[block])
        if not np.isfinite(s).all():
            bad = block.start + int(np.argwhere(~np.isfinite(s))[0, 0])
            raise RetrievalError(f"log_p row {bad} has a non-finite value (NaN or +-inf)")
        own = caption_image[block]
        own_score = s[rows[: s.shape[0]], own]
        # Wrong images scoring >= the own image; the own image itself is always >= itself.
        c2i[block] = (s >= own_score[:, None]).sum(axis=1) - 1
        np.maximum.at(best_own, own, own_score)
    i2c = np.zeros(n_images, dtype=np.int64)
    for block in _blocks(n_captions, n_images):
        s = normalise_rows(log_p[block])
        beats = s >= best_own[None, :]
        # An image's own captions are never counted against it.
        beats[rows[: s.shape[0]], caption_image[block]] = False
        i2c += beats.sum(axis=0)
    return c2i, i2c


def recall_metrics(ranks: np.ndarray) -> dict[str, float]:
    """R@1, R@5, R@10 (percent) and the median rank (1-based) of 0-based `ranks`."""
    ranks = np.asarray(ranks)
    out = {f"r{k}": float(100.0 * np.mean(ranks < k)) for k in KS}
    out["medr"] = float(np.median(ranks) + 1)
    return out


def retrieval_metrics(log_p: np.ndarray, caption_image: np.ndarray) -> dict[str, dict[str, float]]:
    """Table 2's retrieval metrics from a caption-by-image log-probability matrix.

    Args:
      log_p: (num_captions, num_images), `log_p[c, i]` = log P(caption c | image i).
      caption_image: (num_captions,) integer index of caption c's own image.

    Returns:
      {"caption_to_image": {"r1", "r5", "r10", "medr"}, "image_to_caption": {...}}; recalls in
      percent, medr a 1-based rank.
    """
    c2i, i2c = retrieval_ranks(log_p, caption_image)
    return {"caption_to_image": recall_metrics(c2i), "image_to_caption": recall_metrics(i2c)}
