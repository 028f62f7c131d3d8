r"""Batched beam search vs one image at a time: speed and identical captions.

    python benchmarks/bench_beam_search.py                      # default-preset decoder sizes
    python benchmarks/bench_beam_search.py --size paper         # 1000-wide LSTMs, 8801 words
    python benchmarks/bench_beam_search.py --size all --beam_size 5 --images 64

For each size, one decoder with random weights (the predict bias of EOS lowered so that captions
run to about `--max_length` words, the slow case for both ways) decodes `--images` random
conditioning vectors twice: all at once (`CaptionGenerator.beam_search(cond, batch_size=N)`,
every beam of every image advancing in one compiled step) and one image at a time (batch of 1,
the same compiled step). Both are warmed up first, so compile time is not counted; the
captions must be identical. Prints one line per size; exit status 1 if any captions differ or
a speed-up is below `--min_speedup` (10).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from lrcn_tf.models import captioner  # noqa: E402
from lrcn_tf.models.decoding import CaptionGenerator  # noqa: E402

# (vocab, cond_dim, embed, hidden): the default preset on the embedded data, and the paper's.
SIZES = {"default": (62, 35, 128, 128), "paper": (8801, 1000, 1000, 1000)}


def bench(
    size: str, images: int, beam_size: int, max_length: int, repeats: int
) -> tuple[float, float, bool]:
    vocab, cond_dim, embed, hidden = SIZES[size]
    keras.utils.set_random_seed(0)
    dec = captioner.build_decoder(
        vocab, cond_dim, num_layers=2, embed_dim=embed, hidden=hidden, seed=0
    )
    bias = keras.ops.convert_to_numpy(dec.get_layer("predict").bias)
    bias[0] = -20.0
    dec.get_layer("predict").bias.assign(bias)
    cond = np.random.default_rng(0).normal(size=(images, cond_dim)).astype("float32")
    gen = CaptionGenerator(dec, max_length=max_length)
    gen.beam_search(cond, beam_size, batch_size=images)  # warm-up: trace both shapes
    gen.beam_search(cond[:1], beam_size, batch_size=1)
    batched, single = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        out = gen.beam_search(cond, beam_size, batch_size=images)
        batched.append(time.perf_counter() - t)
        t = time.perf_counter()
        one = [
            gen.beam_search(cond[i : i + 1], beam_size, batch_size=1).tokens[0]
            for i in range(images)
        ]
        single.append(time.perf_counter() - t)
    same = out.tokens == one
    return min(batched), min(single), same


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", choices=[*SIZES, "all"], default="default")
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--beam_size", type=int, default=5)
    p.add_argument("--max_length", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--min_speedup", type=float, default=10.0)
    a = p.parse_args()
    ok = True
    print(
        f"backend {keras.backend.backend()}, {a.images} images, beam {a.beam_size}, {a.max_length} words"
    )
    for size in SIZES if a.size == "all" else [a.size]:
        tb, ts, same = bench(size, a.images, a.beam_size, a.max_length, a.repeats)
        speedup = ts / tb
        ok &= same and speedup >= a.min_speedup
        print(
            f"{size:8s} batched {tb:7.3f} s   one at a time {ts:7.3f} s   speed-up {speedup:6.1f}x   "
            f"captions identical: {same}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
