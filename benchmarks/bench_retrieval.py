r"""Benchmark: factored vs naive pairwise log P(caption | image) scoring (Table 2 retrieval).

    python benchmarks/bench_retrieval.py                       # LRCN_2f of the paper's size
    python benchmarks/bench_retrieval.py --model embedded      # the table2 default preset's size

Both methods score the same captions against the same images with the same randomly
initialised LRCN_2f decoder (random weights give the same cost as trained ones), in the same
(caption chunk x image chunk) blocks, in float32. It prints, for each, the best wall time over
`--repeats` runs after a warm-up (the machine may be shared: the best run is the least
disturbed one), pairs per second and the peak memory of TensorFlow's tensors during a run
(`tf.config.experimental.get_memory_info`, reset before each method), then checks that the
two log-probability matrices agree within 1e-4 and that they give identical retrieval metrics.

Captions: random word ids, lengths drawn from 8 to 16 words (typical of COCO and Flickr30k);
image vectors: standard normal (fc8-like). Hardware and time: about 2 minutes for the paper
size on 2 CPU cores with the defaults; the embedded size, well under a minute.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum(
    "model",
    "paper",
    ["paper", "embedded"],
    "paper: embedding and LSTMs of 1000, fc8 of 1000, --vocab words; embedded: the sizes of "
    "the table2 default preset (the decoder reproduce.table2 trains on the synthetic data).",
)
flags.DEFINE_integer("vocab", 8000, "Vocabulary size for --model paper (Flickr30k/COCO: ~8k).")
flags.DEFINE_integer("captions", 200, "Captions to score.")
flags.DEFINE_integer("images", 40, "Images to score them against.")
flags.DEFINE_integer("caption_chunk", 64, "Captions per block.")
flags.DEFINE_integer("image_chunk", 16, "Images per block.")
flags.DEFINE_integer("repeats", 2, "Timed runs per method (the best is reported).")
flags.DEFINE_integer("seed", 0, "Seed of the weights and the data.")
TOLERANCE = 1e-4


def _sizes() -> dict:
    if FLAGS.model == "paper":
        return dict(vocab=FLAGS.vocab, cond_dim=1000, embed_dim=1000, hidden=1000)
    from lrcn_tf import configs

    cfg = configs.build("table2/lrcn_2f", "default")
    # The synthetic captions' vocabulary is about 60 words; fc8 = the pretext task's classes.
    return dict(vocab=64, cond_dim=cfg.encoder.classes, embed_dim=cfg.embed_dim, hidden=cfg.hidden)


def _measure(decoder, token_ids, features, method: str) -> dict:
    import tensorflow as tf

    from lrcn_tf.evaluation.retrieval_scoring import caption_log_probs

    kwargs = dict(
        method=method,
        caption_chunk=FLAGS.caption_chunk,
        image_chunk=FLAGS.image_chunk,
        progress=False,
    )
    # Warm-up: trace the compiled functions (first shape, then the relaxed one).
    warm = FLAGS.caption_chunk + 1
    caption_log_probs(decoder, token_ids[:warm], features[: FLAGS.image_chunk + 1], **kwargs)
    times, peak = [], 0
    for _ in range(FLAGS.repeats):
        tf.config.experimental.reset_memory_stats("CPU:0")
        base = tf.config.experimental.get_memory_info("CPU:0")["current"]
        start = time.perf_counter()
        log_p = caption_log_probs(decoder, token_ids, features, **kwargs)
        times.append(time.perf_counter() - start)
        peak = max(peak, tf.config.experimental.get_memory_info("CPU:0")["peak"] - base)
    best = min(times)
    pairs = len(token_ids) * features.shape[0]
    return dict(log_p=log_p, seconds=best, pairs_per_s=pairs / best, peak_mb=peak / 2**20)


def main(argv):
    del argv
    import keras

    from lrcn_tf.evaluation.retrieval import retrieval_metrics
    from lrcn_tf.models import captioner

    keras.mixed_precision.set_global_policy("float32")
    sizes = _sizes()
    rng = np.random.default_rng(FLAGS.seed)
    decoder = captioner.build_decoder(
        sizes["vocab"],
        sizes["cond_dim"],
        num_layers=2,
        factored=True,
        embed_dim=sizes["embed_dim"],
        hidden=sizes["hidden"],
        seed=FLAGS.seed,
    )
    lengths = rng.integers(8, 17, size=FLAGS.captions)
    token_ids = [rng.integers(2, sizes["vocab"], size=n).tolist() for n in lengths]
    features = rng.normal(size=(FLAGS.images, sizes["cond_dim"])).astype(np.float32)
    # Each image gets captions.images-th of the captions, as in the test splits (5 each).
    caption_image = np.arange(FLAGS.captions) % FLAGS.images

    print(
        f"LRCN_2f {FLAGS.model} size: vocab {sizes['vocab']}, fc8 {sizes['cond_dim']}, "
        f"embed {sizes['embed_dim']}, LSTMs {sizes['hidden']}; {FLAGS.captions} captions x "
        f"{FLAGS.images} images = {FLAGS.captions * FLAGS.images} pairs, blocks of "
        f"{FLAGS.caption_chunk} x {FLAGS.image_chunk}, best of {FLAGS.repeats}"
    )
    results = {m: _measure(decoder, token_ids, features, m) for m in ("naive", "factored")}
    for method, r in results.items():
        print(
            f"  {method:9s} {r['seconds']:8.2f} s  {r['pairs_per_s']:10.1f} pairs/s  "
            f"peak tensor memory {r['peak_mb']:9.1f} MB"
        )
    diff = float(np.max(np.abs(results["factored"]["log_p"] - results["naive"]["log_p"])))
    metrics = {m: retrieval_metrics(r["log_p"], caption_image) for m, r in results.items()}
    same = metrics["factored"] == metrics["naive"]
    speedup = results["naive"]["seconds"] / results["factored"]["seconds"]
    print(f"  max |log_p factored - naive| = {diff:.2e} (tolerance {TOLERANCE:g})")
    print(f"  retrieval metrics identical: {same} ({metrics['factored']})")
    print(f"  speed-up factored / naive: {speedup:.2f}x")
    if diff > TOLERANCE or not same:
        raise SystemExit("factored and naive scoring disagree")


if __name__ == "__main__":
    app.run(main)
