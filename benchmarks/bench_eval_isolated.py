r"""Small-CNN evaluation, ours against compiled PyTorch, each framework in a process of its own.

    pip install -e .[bench]
    python benchmarks/bench_eval_isolated.py                    # writes results/bench_eval_isolated.csv
    python benchmarks/bench_eval_isolated.py --rounds 5 --models lrcn_fc6

`bench_vs_pytorch.py` times both frameworks in one process, where each one's idle worker
threads share the two cores with the other's work (PyTorch's OpenMP threads spin after each
parallel region; TensorFlow keeps its own pools). This script measures the evaluation rows
(the default preset's test protocol: 8 videos of 3 clips x 16 frames at 56x56 a forward pass,
softmax and mean per video) with each contestant alone in a fresh process: ours through
`tasks.activity.predictor` and `evaluation.activity.evaluate_videos` on a tensor element, as
Table 1 runs it; PyTorch's port (`torch_port.Table1Net`, channels_last, `torch.compile`, the
benchmark's best configuration for these rows) through `torch_port.video_probabilities`.
Random weights and inputs (the nets' equality is checked by `bench_vs_pytorch.py`). Rounds
alternate the two (a new process each time, in rotating order); the best round of each counts,
and the ratio ours / PyTorch comes from this one run.

Hardware and time: about a minute on 2 idle CPU cores with the default flags (12 processes,
each paying its start, tracing or torch.compile warm-up). Results: docs/performance.md.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["single_frame", "lrcn_fc6"], "Table 1 models (small CNN).")
flags.DEFINE_integer("rounds", 3, "Rounds; each runs every contestant once, in its own process.")
flags.DEFINE_integer("repeats", 7, "Timed repeats inside a process (its best counts).")
flags.DEFINE_string("output", "results/bench_eval_isolated.csv", "Result CSV (overwritten).")
flags.DEFINE_enum("worker", None, ["ours", "pytorch"], "Internal: time one contestant.")
flags.DEFINE_string("model", "single_frame", "Internal: the worker's model.")

VIDEOS, CLIPS, FRAMES, SIZE, CLASSES = 40, 3, 16, 56, 101
PER_CALL = 8  # tasks.activity.VIDEOS_PER_CALL (checked in _ours)
CONTESTANTS = ("ours", "pytorch")


def _ours(cfg, clips):
    import eval_groups

    from lrcn_tf.tasks import activity as task

    assert task.VIDEOS_PER_CALL == PER_CALL
    predict = task.predictor(task.build_model(cfg, CLASSES, SIZE))
    return eval_groups.ours(predict, clips, VIDEOS, PER_CALL, CLASSES)


def _pytorch(cfg, clips):
    import eval_groups
    import torch
    import torch_port

    torch.set_num_threads(os.cpu_count())
    net = torch_port.Table1Net(cfg, CLASSES, SIZE).eval().to(memory_format=torch.channels_last)

    def to_input(a):  # a channels_last view of NHWC clips
        return torch.from_numpy(a).permute(0, 1, 4, 2, 3)

    return eval_groups.pytorch(torch.compile(net), to_input, clips, VIDEOS, PER_CALL)


def _worker() -> None:
    from lrcn_tf import configs

    cfg = configs.build(f"table1/{FLAGS.model}/rgb", "default")
    clips = np.random.default_rng(0).normal(size=(CLIPS, 1, FRAMES, SIZE, SIZE, 3))
    evaluate = (_ours if FLAGS.worker == "ours" else _pytorch)(cfg, clips.astype("float32"))
    evaluate()  # warm-up: tracing, compilation
    evaluate()
    best = 0.0
    for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        evaluate()
        best = max(best, VIDEOS / (time.perf_counter() - start))
    print(json.dumps({"videos_per_s": best}))


def _spawn(contestant: str, model: str) -> float:
    cmd = [sys.executable, __file__, f"--worker={contestant}", f"--model={model}"]
    cmd.append(f"--repeats={FLAGS.repeats}")
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"error: {contestant} {model} worker failed: {tail[0]}")
    return json.loads(lines[-1])["videos_per_s"]


def main(argv) -> None:
    del argv
    if FLAGS.worker:
        _worker()
        return
    best = {(m, c): 0.0 for m in FLAGS.models for c in CONTESTANTS}
    loads = [os.getloadavg()[0]]
    for r in range(FLAGS.rounds):
        for model in FLAGS.models:
            order = CONTESTANTS if r % 2 == 0 else CONTESTANTS[::-1]
            for contestant in order:
                rate = _spawn(contestant, model)
                best[model, contestant] = max(best[model, contestant], rate)
                print(f"round {r + 1} {model} {contestant}: {rate:.1f} videos/s", flush=True)
        loads.append(os.getloadavg()[0])
    rows = []
    for model in FLAGS.models:
        ours, torch_rate = best[model, "ours"], best[model, "pytorch"]
        rows.append(
            {
                "backbone": "small_cnn",
                "model": model,
                "task": "eval",
                "unit": "videos/s",
                "batch": f"{PER_CALL}x{CLIPS}x1x{FRAMES}",
                "ours": f"{ours:.2f}",
                "pytorch_compiled_channels_last": f"{torch_rate:.2f}",
                "ratio": f"{ours / torch_rate:.2f}",
                "rounds": FLAGS.rounds,
                "load_avg": f"{min(loads):.1f}-{max(loads):.1f}",
            }
        )
        print(
            f"{model}: ours {ours:.1f}, PyTorch {torch_rate:.1f} videos/s, "
            f"ratio {ours / torch_rate:.2f}"
        )
    Path(FLAGS.output).parent.mkdir(parents=True, exist_ok=True)
    with open(FLAGS.output, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
