"""The Table 1 test protocol as the benchmarks time it, for ours and for the PyTorch port.

`videos` videos with the same clips (N, crops, T, h, w, 3), `group` videos a forward pass.
Each pass's batch is made before timing, for both contestants, as Table 1's tf.data puts a
group's clips together ahead of the model. Used by bench_vs_pytorch.py (one process) and
bench_eval_isolated.py (a process per contestant).
"""

from __future__ import annotations

import numpy as np


def group_sizes(videos: int, group: int) -> list[int]:
    """Videos in each forward pass: `group` each, the last pass what is left."""
    return [min(group, videos - start) for start in range(0, videos, group)]


def ours(predict, clips: np.ndarray, videos: int, group: int, classes: int):
    """A function evaluating all videos through `evaluate_videos` and `predict`
    (`tasks.activity.predictor`), one tensor element a group, a label and index per clip."""
    import tensorflow as tf

    from lrcn_tf.evaluation import activity as ev

    elements, start = [], 0
    for n in group_sizes(videos, group):
        elements.append(
            {
                "clips": tf.constant(np.concatenate([clips] * n)),
                "label": np.zeros(n * len(clips), np.int32),
                "video_index": np.repeat(np.arange(start, start + n, dtype=np.int32), len(clips)),
            }
        )
        start += n
    return lambda: ev.evaluate_videos(predict, elements, videos, classes, progress=False)


def pytorch(run, to_input, clips: np.ndarray, videos: int, group: int):
    """The same for the port: `run` (its net, maybe compiled) on each group's batch made by
    `to_input` from the clips with crops folded into the batch, then softmax and the mean per
    video (`torch_port.video_probabilities`)."""
    import torch_port

    flat = clips.reshape(-1, *clips.shape[2:])
    sizes = group_sizes(videos, group)
    batches = {n: to_input(np.concatenate([flat] * n)) for n in set(sizes)}
    lengths = {n: [len(flat)] * n for n in batches}

    def evaluate():
        for n in sizes:
            torch_port.video_probabilities(run, batches[n], lengths[n])

    return evaluate
