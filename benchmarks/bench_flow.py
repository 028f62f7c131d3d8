r"""Optical-flow throughput, measured in one run on the same frame pairs.

    python benchmarks/bench_flow.py [--size 240x320] [--pairs 16] [--batch 8] [--rounds 2]

Frame pairs: consecutive frames of synthetic_ucf101 videos rendered at `--size`. Methods:
- `farneback`: OpenCV's Farneback (prepare's default), one thread;
- `tvl1_opencv`: OpenCV's DualTVL1OpticalFlow (`--flow tvl1`), one thread;
- `tvl1_accel`: flow_tvl1's keras.ops TV-L1 (`--flow tvl1_accel`) in batches of `--batch`
  pairs on the Keras backend's device (compiled before the clock starts; the compile time
  is reported apart), using every core the process may use.
Each method's rounds interleave with the others' (a load that comes and goes hits them
alike); the median round is reported. Rates are flow frames (pairs) per second, wall clock,
and for the CPU methods also per second of this process's CPU time (the rate a core gives
on an idle machine). Writes results/bench_flow_<HxW>_<device>.csv.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

UCF101_PAIRS = 2.5e6  # flow frames of UCF-101 at its native rate (~13,320 videos x ~186 frames)


def frame_pairs(h: int, w: int, n: int):
    from lrcn_tf.data.ucf101.synthetic import ALL_CLASSES, SyntheticSpec, render_video

    spec = SyntheticSpec(height=h, width=w)
    prevs, nxts = [], []
    i = 0
    while len(prevs) < n:
        frames = render_video(spec, ALL_CLASSES[i % len(ALL_CLASSES)], 1 + i // 12, 1)
        g = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        take = min(4, n - len(prevs))
        prevs += g[:take]
        nxts += g[1 : take + 1]
        i += 1
    return np.stack(prevs), np.stack(nxts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="240x320")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None, help="CSV path (default: results/...)")
    args = parser.parse_args(argv)
    h, w = (int(v) for v in args.size.split("x"))
    import tensorflow as tf

    from lrcn_tf.data.flow_tvl1 import TVL1

    gpus = tf.config.list_physical_devices("GPU")
    device = "gpu" if gpus else "cpu"
    prevs, nxts = frame_pairs(h, w, args.pairs)
    n = len(prevs)
    cv2.setNumThreads(1)
    tvl1_cv = cv2.optflow.DualTVL1OpticalFlow_create()
    solver = TVL1()
    start = time.perf_counter()
    solver(prevs[: args.batch], nxts[: args.batch])  # compile
    compile_s = time.perf_counter() - start

    def farneback():
        for a, b in zip(prevs, nxts):
            cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def tvl1_opencv():
        for a, b in zip(prevs, nxts):
            tvl1_cv.calc(a, b, None)

    def tvl1_accel():
        for i in range(0, n, args.batch):
            solver(prevs[i : i + args.batch], nxts[i : i + args.batch])

    methods = {"farneback": farneback, "tvl1_opencv": tvl1_opencv, "tvl1_accel": tvl1_accel}
    wall = {m: [] for m in methods}
    cpu = {m: [] for m in methods}
    for _ in range(args.rounds):
        for name, fn in methods.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    rows = []
    for name in methods:
        wall_s, cpu_s = statistics.median(wall[name]), statistics.median(cpu[name])
        rate = n / wall_s
        rows.append(
            {
                "method": name,
                "device": device if name == "tvl1_accel" else "cpu",
                "threads": "all" if name == "tvl1_accel" else 1,
                "size": f"{h}x{w}",
                "pairs": n,
                "batch": args.batch if name == "tvl1_accel" else 1,
                "frames_per_s": round(rate, 3),
                "frames_per_cpu_s": round(n / cpu_s, 3) if cpu_s > 0 else "",
                "ucf101_hours_this_process": round(UCF101_PAIRS / rate / 3600, 1),
                "compile_s": round(compile_s, 1) if name == "tvl1_accel" else "",
            }
        )
    base = {r["method"]: r["frames_per_s"] for r in rows}
    for r in rows:
        r["vs_tvl1_opencv"] = round(r["frames_per_s"] / base["tvl1_opencv"], 3)
    out = Path(
        args.out
        or Path(__file__).resolve().parents[1] / "results" / f"bench_flow_{h}x{w}_{device}.csv"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(
        f"{n} pairs at {h}x{w}, {os.cpu_count()} CPUs, device {device}, median of {args.rounds} rounds"
    )
    for r in rows:
        print(
            f"  {r['method']:12s} {r['frames_per_s']:8.2f} frames/s ({r['vs_tvl1_opencv']:.2f}x OpenCV TV-L1), "
            f"{r['frames_per_cpu_s']} per CPU-s; UCF-101 in {r['ucf101_hours_this_process']} h at this rate"
        )
    print(f"  tvl1_accel compile: {compile_s:.1f}s; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
