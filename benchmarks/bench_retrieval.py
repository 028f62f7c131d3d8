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
image vectors: standard normal (fc8-like). Hardware and time on 2 CPU cores: a few minutes for
the paper size (128 captions x 16 images), under a minute for the embedded size (500 x 100).
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
flags.DEFINE_integer("captions", None, "Captions to score (paper: 128; embedded: 500).")
flags.DEFINE_integer("images", None, "Images to score them against (paper: 16; embedded: 100).")
flags.DEFINE_integer("caption_chunk", None, "Captions per block (paper: 64; embedded: 128).")
flags.DEFINE_integer("image_chunk", None, "Images per block (paper: 16; embedded: 32).")
# (captions, images, caption_chunk, image_chunk): the paper-size model is ~30x slower a pair
# on a CPU, so fewer pairs; the embedded size scores the synthetic test split's 500 x 100 in
# the table2 config's blocks.
_COUNTS = {"paper": (128, 16, 64, 16), "embedded": (500, 100, 128, 32)}
flags.DEFINE_integer("repeats", 2, "Timed runs per method (the best is reported).")
flags.DEFINE_integer("seed", 0, "Seed of the weights and the data.")
TOLERANCE = 1e-4


def _sizes() -> dict:
    if FLAGS.model == "paper":
        return dict(vocab=FLAGS.vocab, cond_dim=1000, embed_dim=1000, hidden=1000)
    from lrcn_tf import configs

    cfg = configs.build("table2/lrcn_2f", "default").captioner
    # The synthetic captions' vocabulary has 62 words; fc8 = the pretext task's classes.
    return dict(vocab=62, cond_dim=cfg.encoder.classes, embed_dim=cfg.embed_dim, hidden=cfg.hidden)


def _measure(decoder, token_ids, features, method: str) -> dict:
    import tensorflow as tf

    from lrcn_tf.evaluation.retrieval_scoring import caption_log_probs

    kwargs = dict(
        method=method,
        caption_chunk=FLAGS.caption_chunk,
        image_chunk=FLAGS.image_chunk,
        progress=False,
    )
    # Warm-up: trace the compiled functions (once: their signatures leave sizes open).
    caption_log_probs(decoder, token_ids[:2], features[:2], **kwargs)
    # Tensor memory of the device that computes (a GPU when one is visible).
    device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
    times, cpu, peak = [], [], 0
    for _ in range(FLAGS.repeats):
        tf.config.experimental.reset_memory_stats(device)
        base = tf.config.experimental.get_memory_info(device)["current"]
        start, start_cpu = time.perf_counter(), time.process_time()
        log_p = caption_log_probs(decoder, token_ids, features, **kwargs)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        peak = max(peak, tf.config.experimental.get_memory_info(device)["peak"] - base)
    best = min(times)
    pairs = len(token_ids) * features.shape[0]
    return dict(
        log_p=log_p,
        device=device,
        seconds=best,
        cpu_seconds=min(cpu),
        pairs_per_s=pairs / best,
        peak_mb=peak / 2**20,
    )


def main(argv):
    del argv
    import keras

    from lrcn_tf.evaluation.retrieval import retrieval_metrics
    from lrcn_tf.models import captioner

    keras.mixed_precision.set_global_policy("float32")
    names = ("captions", "images", "caption_chunk", "image_chunk")
    for name, default in zip(names, _COUNTS[FLAGS.model], strict=True):
        if getattr(FLAGS, name) is None:
            setattr(FLAGS, name, default)
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
    # Caption c belongs to image c % images (several captions an image, as in the test splits).
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
            f"  {method:9s} {r['seconds']:8.2f} s (CPU {r['cpu_seconds']:8.2f} s)  "
            f"{r['pairs_per_s']:10.1f} pairs/s  "
            f"peak tensor memory ({r['device']}) {r['peak_mb']:9.1f} MB"
        )
    diff = float(np.max(np.abs(results["factored"]["log_p"] - results["naive"]["log_p"])))
    metrics = {m: retrieval_metrics(r["log_p"], caption_image) for m, r in results.items()}
    same = metrics["factored"] == metrics["naive"]
    speedup = results["naive"]["seconds"] / results["factored"]["seconds"]
    cpu_ratio = results["naive"]["cpu_seconds"] / results["factored"]["cpu_seconds"]
    print(f"  max |log_p factored - naive| = {diff:.2e} (tolerance {TOLERANCE:g})")
    print(f"  retrieval metrics identical: {same} ({metrics['factored']})")
    print(f"  speed-up factored vs naive: {speedup:.2f}x wall time, {cpu_ratio:.2f}x CPU time")
    if diff > TOLERANCE or not same:
        raise SystemExit("factored and naive scoring disagree")


if __name__ == "__main__":
    app.run(main)
