r"""What `prepare --runner beam` costs per video against `--runner local`, in one run.

    pip install -e '.[beam]'
    python benchmarks/bench_prepare_beam.py [--size 240x320] [--groups 2 6] [--workers 2]

Data: synthetic_ucf101 rendered at `--size` (2 classes; each `--groups` value is one data set
of that many groups per class), generated before any clock starts. Each data set is prepared
(Farneback flow, the default) by both runners with `--workers` processes, the runners
alternating, into fresh folders; the outputs are compared (bytes; the arrays of the index
files). Per run: wall seconds, CPU seconds (this process and its finished children: the
workers), start-up seconds. The cost per video is the slope between the two data sets'
CPU seconds (the fixed start-up cancels out); the intercept is the fixed cost of a run.
Writes results/bench_prepare_beam_<HxW>.csv.
"""

from __future__ import annotations

import argparse
import csv
import filecmp
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cpu_seconds() -> float:
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def same_outputs(a: Path, b: Path) -> bool:
    import numpy as np

    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    if files != sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file()):
        return False
    for f in files:
        if f.endswith(".npz"):
            with np.load(a / f) as x, np.load(b / f) as y:
                if x.files != y.files or any(not np.array_equal(x[k], y[k]) for k in x.files):
                    return False
        elif not filecmp.cmp(a / f, b / f, shallow=False):
            return False
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="240x320")
    parser.add_argument("--groups", type=int, nargs=2, default=[2, 6])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None, help="CSV path (default: results/...)")
    args = parser.parse_args(argv)
    h, w = (int(v) for v in args.size.split("x"))
    # Imported before any clock starts (else the first run of each runner pays for them).
    import apache_beam  # noqa: F401 - and a missing Beam fails now, not after the local runs
    import apache_beam.runners.portability.fn_api_runner  # noqa: F401
    import tensorflow  # noqa: F401

    from lrcn_tf.data.ucf101 import prepare as ucf101_prepare
    from lrcn_tf.data.ucf101 import synthetic

    tmp = Path(tempfile.mkdtemp(prefix="bench_prepare_beam_"))
    rows, results = [], {}
    try:
        for groups in args.groups:
            spec = synthetic.SyntheticSpec(num_classes=2, num_groups=groups, height=h, width=w)
            src, splits = synthetic.generate(tmp / f"raw{groups}", spec, progress=False)
            outs = {}
            for runner in ("local", "beam"):
                outs[runner] = tmp / f"{runner}{groups}"
                cpu, start = cpu_seconds(), time.perf_counter()
                s = ucf101_prepare.prepare(
                    src,
                    splits,
                    outs[runner],
                    min_size=None,
                    videos_per_shard=4,
                    workers=args.workers,
                    progress=False,
                    runner=runner,
                    dataset="synthetic_ucf101",
                    synthetic=spec,
                )
                wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
                results[runner, groups] = (s["ok"] + s["failed"], wall, cpu, s["flow_frames_done"])
                print(
                    f"{runner:5s} {groups} groups: {s['ok'] + s['failed']} videos, "
                    f"{s['flow_frames_done']} flow frames, {wall:.1f} s wall, {cpu:.1f} s CPU",
                    flush=True,
                )
            same = same_outputs(outs["local"], outs["beam"])
            print(f"  outputs identical: {same}")
            if not same:
                return 1
        lo, hi = args.groups
        for runner in ("local", "beam"):
            (n0, w0, c0, f0), (n1, w1, c1, f1) = results[runner, lo], results[runner, hi]
            per_video, per_frame = (c1 - c0) / (n1 - n0), (c1 - c0) / (f1 - f0)
            fixed = c0 - per_video * n0
            rows.append(
                {
                    "runner": runner,
                    "size": args.size,
                    "workers": args.workers,
                    "videos": f"{n0}/{n1}",
                    "wall_s": f"{w0:.1f}/{w1:.1f}",
                    "cpu_s": f"{c0:.1f}/{c1:.1f}",
                    "cpu_s_per_video": round(per_video, 3),
                    "cpu_s_per_flow_frame": round(per_frame, 4),
                    "fixed_cpu_s": round(fixed, 1),
                }
            )
        for r in rows:
            print(
                f"{r['runner']:5s}: {r['cpu_s_per_video']} CPU s per video "
                f"({r['cpu_s_per_flow_frame']} per flow frame), fixed {r['fixed_cpu_s']} CPU s"
            )
        b, loc = rows[1]["cpu_s_per_video"], rows[0]["cpu_s_per_video"]
        print(f"beam / local CPU per video: {b / loc:.2f}")
        out = Path(
            args.out
            or Path(__file__).resolve().parents[1]
            / "results"
            / f"bench_prepare_beam_{args.size}.csv"
        )
        with open(out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {out}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
