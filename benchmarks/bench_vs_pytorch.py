r"""Benchmark: the Table 1 models against a PyTorch port of the same nets, side by side.

    pip install -e .[bench]                        # torch (CPU wheels are enough)
    python benchmarks/bench_vs_pytorch.py          # all rows, writes results/bench_vs_pytorch.csv
    python benchmarks/bench_vs_pytorch.py --backbones small_cnn --rounds 5

Rows: {small_cnn (the `default` preset's net, 56x56), hybrid_caffenet (the `paper` preset's,
227x227)} x {single_frame, lrcn_fc6} x {train, eval}:
- train: one training step as `trainer.fit` runs it (the compiled step of
  `trainer.make_train_step`: next batch, per-step softmax loss, gradients, `optim.CaffeSGD`
  with the Table 1 multipliers and clipping) against the port's step (same loss, backward,
  `clip_grad_norm_`, torch SGD with the same momentum, decay and per-parameter multipliers);
  samples/s, a sample being a clip of `T` frames (LRCN) or a frame (single frame);
- eval: the test protocol on `--video_frames`-frame videos (clips of 16 every 8 frames,
  `--crops` crops), ours through `tasks.activity.predictor` and
  `evaluation.activity.evaluate_videos` (softmax, mean per video) exactly as Table 1 runs it
  (`VIDEOS_PER_CALL` videos a forward pass for the default preset's per-video evaluation,
  one for the paper preset's), the port with the same videos a pass; videos/s
  (`batch` = videos x clips x crops x frames of one pass). Each pass's batch is made before
  timing for both (Table 1's tf.data puts a group's clips together ahead of the model).
Inputs are random tensors made before timing (no data loading: this measures the models).

PyTorch runs in each configuration of `--torch_configs`: eager (NCHW), channels_last,
compiled (`torch.compile`), compiled_channels_last; the best is the row's reference, and
`ratio` = ours / best (above 1: ours is faster). Before timing, the two nets are checked equal:
the same parameter count, and the same logits (eval mode) with the Keras weights copied into
the port; both are printed, and a mismatch stops the run. Timing: `--rounds` interleaved
rounds (every row and contestant once a round, in rotating order, so a busy machine slows
all alike), the best round of each contestant counts; warm-up (tracing, compilation) first,
and (`--rewarm`, the default) each timed run right after an untimed run of its own.

Hardware and time: on the shared 2-core development machine all rows take about 5-10 minutes,
most of it torch.compile's warm-up and the hybrid CaffeNet rows (1.2 G multiply-adds a frame;
their batches are small for that reason: `--hybrid_train_clips`). Measured numbers are in
results/bench_vs_pytorch.csv and docs/performance.md.
"""

from __future__ import annotations

import copy
import csv
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("backbones", ["small_cnn", "hybrid_caffenet"], "Backbones.")
flags.DEFINE_list("models", ["single_frame", "lrcn_fc6"], "Table 1 models.")
flags.DEFINE_list("tasks", ["train", "eval"], "train and/or eval rows.")
flags.DEFINE_list(
    "torch_configs",
    ["eager", "channels_last", "compiled", "compiled_channels_last"],
    "PyTorch configurations to time (the best is the reference).",
)
flags.DEFINE_integer("rounds", 3, "Interleaved timed rounds (the best round counts).")
flags.DEFINE_bool(
    "rewarm",
    True,
    "Before each timed run, run the same contestant once untimed, so that neither framework "
    "is timed on threads and caches the other one has just used (see _time_rounds).",
)
flags.DEFINE_integer("video_frames", 32, "Frames per test video (32: 3 clips at 16/8).")
flags.DEFINE_integer("crops", 1, "Test crops per clip (1 as the default preset; 10 paper).")
flags.DEFINE_integer("hybrid_train_clips", 2, "LRCN training clips a step, hybrid CaffeNet.")
flags.DEFINE_integer("hybrid_train_frames", 16, "Single-frame training frames a step, hybrid.")
flags.DEFINE_integer("classes", 101, "Classes (101 for UCF-101).")
flags.DEFINE_string("output", "results/bench_vs_pytorch.csv", "Result CSV (overwritten).")
flags.DEFINE_enum(
    "omp_wait_policy",
    "auto",
    ["auto", "active", "passive"],
    "PyTorch's OpenMP threads: auto = passive when the load average exceeds the CPU count "
    "(spinning threads on a busy machine made PyTorch 5-30x slower here), else its default.",
)

# preset, crop, (single-frame batch, LRCN batch), train steps a round, test videos a round
SETTINGS = {
    "small_cnn": ("default", 56, (64, 16), 10, 40),
    "hybrid_caffenet": ("paper", 227, None, 2, 2),
}
TORCH_CONFIGS = ("eager", "channels_last", "compiled", "compiled_channels_last")
COLUMNS = [
    "backbone", "model", "task", "unit", "batch", "ours", "best_pytorch", "best_config",
    "ratio", "ours_cpu", "best_pytorch_cpu", "cpu_ratio", *TORCH_CONFIGS, "params",
    "max_abs_logit_diff", "rounds", "rewarm", "load_avg", "omp_wait_policy",
]  # fmt: skip


class Row:
    """One (backbone, model, task): contestants name -> (run, items per run)."""

    def __init__(self, backbone, model, task, unit, batch):
        self.key = (backbone, model, task)
        self.unit, self.batch = unit, batch
        self.contestants: dict = {}
        self.best: dict[str, float] = {}  # items per second, wall clock
        self.best_cpu: dict[str, float] = {}  # items per CPU second (all threads)
        self.params = self.diff = None


def _ours(cfg, size, x, y, videos, group):
    """The project's model, train step and evaluation for the config."""
    import eval_groups
    import tensorflow as tf

    from lrcn_tf.models import activity
    from lrcn_tf.tasks import activity as task
    from lrcn_tf.training import optim, trainer

    model = task.build_model(cfg, FLAGS.classes, size)
    opt = optim.CaffeSGD(cfg.train, optim.multipliers_from_rules(activity.MULTIPLIER_RULES))
    opt.build(model.trainable_variables)

    def loss_fn(m, batch, training):
        return activity.per_step_loss(m(batch[0], training=training), batch[1])

    step = trainer.make_train_step(model, loss_fn, opt)
    it = iter(tf.data.Dataset.from_tensors((x, y)).repeat())

    def train(steps):
        for _ in range(steps):
            loss, _ = step(it)
            float(loss)  # as fit: the loss is read (NaN check) after every step

    predict = task.predictor(model)

    def evaluate(clips):
        return eval_groups.ours(predict, clips, videos, group, FLAGS.classes)

    return model, predict, train, evaluate


def _port(cfg, size, model, config):
    """The PyTorch port in one configuration, with the Keras model's weights."""
    import torch
    import torch_port

    from lrcn_tf.models import activity

    net = torch_port.Table1Net(cfg, FLAGS.classes, size)
    torch_port.load_keras(net, model)
    if net.lstm is not None:  # Keras' LSTM has one bias: torch's second stays at zero
        net.lstm.bias_hh_l0.requires_grad_(False)
    if "channels_last" in config:
        net = copy.deepcopy(net).to(memory_format=torch.channels_last)
    opt = torch_port.caffe_sgd(net, cfg.train, activity.MULTIPLIER_RULES)
    # Static shapes: each row's shapes are fixed (one compiled graph per row and shape).
    run = torch.compile(net, dynamic=False) if config.startswith("compiled") else net
    return net, run, opt


def _torch_input(x, config):
    """NHWC clips -> (B, T, 3, H, W): contiguous NCHW, or a channels_last view of NHWC."""
    import torch

    t = torch.from_numpy(x).permute(0, 1, 4, 2, 3)
    return t if "channels_last" in config else t.contiguous()


def _setup(backbone: str, model_name: str, rows: list[Row]) -> None:
    import eval_groups
    import torch
    import torch_port

    from lrcn_tf import configs
    from lrcn_tf.tasks import activity as task

    preset, size, batches, steps, videos = SETTINGS[backbone]
    cfg = configs.build(f"table1/{model_name}/rgb", preset)
    if batches is None:
        batches = (FLAGS.hybrid_train_frames, FLAGS.hybrid_train_clips)
    lrcn = model_name != "single_frame"
    batch, frames = batches[lrcn], cfg.train_clip_length
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, frames, size, size, 3)).astype("float32")
    y = rng.integers(0, FLAGS.classes, size=batch).astype("int64")
    starts = list(range(0, FLAGS.video_frames - 16 + 1, 8))
    if starts[-1] != FLAGS.video_frames - 16:
        starts.append(FLAGS.video_frames - 16)
    clips = rng.normal(size=(len(starts), FLAGS.crops, 16, size, size, 3)).astype("float32")
    flat = clips.reshape(-1, 16, size, size, 3)

    # Videos a forward pass, as Table 1 evaluates this config (the port gets the same).
    group = task.VIDEOS_PER_CALL if cfg.eval_per_video else 1
    model, predict, train, evaluate = _ours(cfg, size, x, y.astype("int32"), videos, group)
    want = predict(flat)
    ours_params = model.count_params()
    train_row = Row(backbone, model_name, "train", "clips/s" if lrcn else "frames/s", batch)
    eval_row = Row(
        backbone, model_name, "eval", "videos/s", f"{group}x{len(starts)}x{FLAGS.crops}x16"
    )
    train_row.contestants["ours"] = (lambda: train(steps), batch * steps)
    eval_row.contestants["ours"] = (evaluate(clips), videos)
    for config in FLAGS.torch_configs:
        net, run, opt = _port(cfg, size, model, config)
        params = sum(p.numel() for p in net.parameters() if p.requires_grad)
        if params != ours_params:
            raise SystemExit(f"error: {backbone} {model_name}: {params} != {ours_params} params")
        net.eval()
        try:
            got = run(_torch_input(flat, config)).detach().numpy()
        except Exception as e:  # torch.compile's failures: report, time the others
            print(f"{backbone} {model_name} {config}: left out, it failed: {e!r:.300}")
            continue
        diff = float(np.abs(got - want).max())
        scale = float(np.abs(want).max())
        print(
            f"{backbone} {model_name} {config}: {params} parameters in both; logits max |diff| "
            f"{diff:.2e} (max |logit| {scale:.2e})",
            flush=True,
        )
        if diff > 1e-4 * scale + 1e-6:
            raise SystemExit(f"error: {backbone} {model_name} {config}: logits differ by {diff}")
        for row in (train_row, eval_row):
            row.params = params
            row.diff = max(diff, row.diff or 0.0)
        xt, yt = _torch_input(x, config), torch.from_numpy(y)
        clip_norm = cfg.train.clip_gradients

        def torch_train(net=net, run=run, opt=opt, xt=xt, yt=yt, clip_norm=clip_norm):
            net.train()
            for _ in range(steps):
                torch_port.train_step(run, opt, xt, yt, clip_norm).item()

        evaluate = eval_groups.pytorch(
            run, lambda a, config=config: _torch_input(a, config), clips, videos, group
        )

        def torch_eval(net=net, evaluate=evaluate):
            net.eval()
            evaluate()

        train_row.contestants[f"pytorch_{config}"] = (torch_train, batch * steps)
        eval_row.contestants[f"pytorch_{config}"] = (torch_eval, videos)
    for row in (train_row, eval_row):
        if row.key[2] in FLAGS.tasks:
            rows.append(row)


def _time_rounds(rows: list[Row]) -> None:
    for row in rows:  # warm-up: tracing, XLA / inductor compilation, first allocations
        for name, (run, _) in row.contestants.items():
            start = time.perf_counter()
            run()
            print(f"  warm-up {' '.join(row.key)} {name}: {time.perf_counter() - start:.1f} s")
    for r in range(FLAGS.rounds):
        for row in rows:
            names = list(row.contestants)
            names = names[r % len(names) :] + names[: r % len(names)]
            for name in names:
                run, items = row.contestants[name]
                if FLAGS.rewarm:
                    # Right after the other framework's run, the first calls pay for its
                    # threads and caches (ours: 8 videos 15.6 ms after PyTorch work against
                    # 12.8 ms alone, 13.2 ms after one untimed call): time a hot contestant,
                    # as a training or evaluation loop runs it.
                    run()
                start, cpu = time.perf_counter(), time.process_time()
                run()
                rate = items / (time.perf_counter() - start)
                cpu_rate = items / max(time.process_time() - cpu, 1e-9)
                row.best[name] = max(rate, row.best.get(name, 0.0))
                row.best_cpu[name] = max(cpu_rate, row.best_cpu.get(name, 0.0))
        print(f"round {r + 1}/{FLAGS.rounds} done, load average {os.getloadavg()[0]:.1f}")


def _rate(rates: dict[str, float], config: str) -> str:
    if config in rates:
        return f"{rates[config]:.2f}"
    return "failed" if config in FLAGS.torch_configs else ""  # asked for, but left out


def main(argv):
    del argv
    load = os.getloadavg()[0]
    policy = FLAGS.omp_wait_policy
    if policy == "auto":
        policy = "passive" if load > (os.cpu_count() or 1) else "default"
    if policy != "default":
        os.environ["OMP_WAIT_POLICY"] = policy.upper()  # read when torch loads OpenMP
    import keras
    import tensorflow as tf
    import torch

    torch.set_num_threads(os.cpu_count())
    # Every row compiles Table1Net.forward anew: past dynamo's default limit (8) it would
    # silently run eager.
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 256)
    bad = [c for c in FLAGS.torch_configs if c not in TORCH_CONFIGS]
    if bad or not FLAGS.torch_configs:
        raise app.UsageError(f"--torch_configs: choose from {', '.join(TORCH_CONFIGS)}")
    for b in FLAGS.backbones:
        if b not in SETTINGS:
            raise app.UsageError(f"--backbones {b}: choose from {', '.join(SETTINGS)}")
    print(
        f"TensorFlow {tf.__version__} (Keras {keras.__version__}, {keras.backend.backend()}), "
        f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads); {os.cpu_count()} "
        f"CPU(s) {platform.processor() or platform.machine()}; load average {load:.1f}; "
        f"float32; {FLAGS.rounds} interleaved rounds; PyTorch OpenMP wait policy {policy}",
        flush=True,
    )
    rows: list[Row] = []
    for backbone in FLAGS.backbones:
        for model in FLAGS.models:
            _setup(backbone, model, rows)
    _time_rounds(rows)
    out = []
    for row in rows:
        torch_rates = {k.removeprefix("pytorch_"): v for k, v in row.best.items() if k != "ours"}
        best_config = max(torch_rates, key=torch_rates.get)
        ours, best = row.best["ours"], torch_rates[best_config]
        cpu_rates = {k: v for k, v in row.best_cpu.items() if k != "ours"}
        ours_cpu, best_cpu = row.best_cpu["ours"], max(cpu_rates.values())
        out.append(
            {
                "backbone": row.key[0],
                "model": row.key[1],
                "task": row.key[2],
                "unit": row.unit,
                "batch": row.batch,
                "ours": f"{ours:.2f}",
                "best_pytorch": f"{best:.2f}",
                "best_config": best_config,
                "ratio": f"{ours / best:.2f}",
                "ours_cpu": f"{ours_cpu:.2f}",
                "best_pytorch_cpu": f"{best_cpu:.2f}",
                "cpu_ratio": f"{ours_cpu / best_cpu:.2f}",
                **{c: _rate(torch_rates, c) for c in TORCH_CONFIGS},
                "params": row.params,
                "max_abs_logit_diff": f"{row.diff:.1e}",
                "rounds": FLAGS.rounds,
                "rewarm": FLAGS.rewarm,
                "load_avg": f"{load:.1f}-{os.getloadavg()[0]:.1f}",
                "omp_wait_policy": policy,
            }
        )
        print(
            f"{' '.join(row.key):32s} ours {ours:9.2f} {row.unit:9s} best PyTorch {best:9.2f} "
            f"({best_config}) ratio {ours / best:.2f} | per CPU second: ours {ours_cpu:.2f}, "
            f"best PyTorch {best_cpu:.2f}, ratio {ours_cpu / best_cpu:.2f}",
            flush=True,
        )
    path = Path(FLAGS.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(out)
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    app.run(main)
