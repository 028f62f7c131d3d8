r"""Table 1: UCF-101 activity recognition, single frame vs LRCN-fc6 / LRCN-fc7, RGB, flow, fusion.

    python -m reproduce.table1 --split all                       # synthetic_ucf101, default preset
    python -m reproduce.table1 --split 1 --preset smoke          # the CI regression
    python -m reproduce.table1 --split 1 --dataset ucf101 --data_dir DIR --preset paper

Hardware and time: with no `--data_dir` the embedded synthetic_ucf101 is generated and
prepared on first use (20 s to 2 min), then `--split all` with the default preset trains and
evaluates the 18 models (3 splits x 2 inputs x 3 models): about 5 minutes in all from an
empty cache on the idle 2-core development machine, 4 min 24 s with the data prepared
(docs/performance.md); `--preset smoke --split 1`
takes about a minute. The paper preset (hybrid CaffeNet, up to 70,000 SGD steps of 24 x 16
frames per model) wants GPUs: `--strategy mirrored` uses all of them, `--strategy
multi_worker` those of several machines (docs/scaling.md).

For every split and input: single_frame is trained first, then lrcn_fc6 and lrcn_fc7 start
from its CNN (as the original did); every model is evaluated on the split's test videos with
the original protocol and its per-video scores are saved in its run folder; fusion_half and
fusion_third are computed from the saved RGB and flow scores (with a sweep over the RGB weight,
plotted into results/table1_fusion_sweep.png). Rows written to results/table1.csv:
table1, {single_frame, lrcn_fc6, lrcn_fc7}, {split1, split2, split3, all_splits},
{rgb, flow, fusion_half, fusion_third}, <dataset>. `all_splits` is the mean of the three splits
and is written once all three are in the CSV for the same dataset and preset (so `--split 1`,
`--split 2`, `--split 3` run separately also give it). Rerunning a command resumes killed
training and reuses finished rows. With `--jobs N` (by default 2 on a CPU-only machine of two
or more cores) rows that do not need each other train at once in N worker processes
(lrcn_tf.jobs), with bitwise the results of `--jobs 1`, one after another in this process.
The claims t1_* are printed at the end. Golden rows for
synthetic_ucf101 with `--preset smoke --split 1` are in results/expected.csv.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from absl import app, flags

from lrcn_tf import cli, configs
from lrcn_tf.evaluation import activity as ev
from lrcn_tf.results import PRODUCED_COLUMNS, read_rows, result_row, update_results
from lrcn_tf.tasks.base import Data
from reproduce import common

FLAGS = flags.FLAGS
MODELS = ("single_frame", "lrcn_fc6", "lrcn_fc7")

common.define_common_flags("synthetic_ucf101", ["synthetic_ucf101", "ucf101"], "results/table1.csv")
flags.adopt_module_key_flags(common)  # --help lists the common flags too
flags.DEFINE_enum("split", "1", ["1", "2", "3", "all"], "UCF-101 split(s) to train and test on.")
flags.DEFINE_list("inputs", ["rgb", "flow"], "Inputs: rgb, flow (fusion rows need both).")
flags.DEFINE_list("models", list(MODELS), "Rows to run; LRCN rows always train single_frame first.")
flags.DEFINE_enum(
    "weights",
    "train",
    ["train", "caffe"],
    "train: train every row; caffe: evaluate the authors' released split-1 caffemodels "
    "(from --weights_dir) with the original test protocol, no training.",
)
flags.DEFINE_string(
    "weights_dir", None, "--weights caffe: the folder holding the released .caffemodel files."
)
flags.DEFINE_integer(
    "jobs",
    0,
    "Rows trained at once, each in a worker process (--weights train): rows that do not need "
    "each other (other splits and inputs; lrcn_fc6 beside lrcn_fc7) overlap, with the same "
    "results as one after another. 1: one after another in this process. 0 (auto): 2 on a "
    "machine without a GPU that has 2 cores or more, when two rows can overlap; else 1, and "
    "always 1 with a GPU or --strategy mirrored/multi_worker (workers sharing a GPU each take "
    "all its memory unless TF_FORCE_GPU_ALLOW_GROWTH=true).",
    lower_bound=0,
)


def _check_flags() -> None:
    for name, given, allowed in (
        ("inputs", FLAGS.inputs, ("rgb", "flow")),
        ("models", FLAGS.models, MODELS),
    ):
        bad = [x for x in given if x not in allowed]
        if bad or not given:
            raise app.UsageError(f"--{name}={','.join(given)}: choose from {', '.join(allowed)}")


def _prepared_data(s: common.Setup, splits: list[int]):
    from lrcn_tf.data.ucf101 import format as ucf101

    common.prepared_data(s, "table1")  # the folder holds --dataset (made in the cache if embedded)
    info = ucf101.load_info(s.data_dir)
    if "flow" in FLAGS.inputs and info.flow == "none":
        raise app.UsageError(f"{s.data_dir} was prepared without flow; use --inputs rgb")
    for split in splits:  # preflight: every split asked for can be trained and scored
        if split not in info.splits:
            raise ucf101.UCF101FormatError(
                f"{s.data_dir}: no split {split} (this folder has splits {sorted(info.splits)})"
            )
        for subset in ("train", "test"):
            if not ucf101._split_videos(info, split, subset):
                raise ucf101.UCF101FormatError(
                    f"{s.data_dir}: split {split} has no {subset} video prepared ok (see "
                    f"{s.data_dir / 'manifest.csv'})"
                )
    return info


def _all_splits(output, dataset: str, preset: str) -> list[dict]:
    """Means of split1..3 for every (row, metric) that has all three in the CSV."""
    by_key = defaultdict(dict)
    for r in read_rows(output, PRODUCED_COLUMNS[:6]):
        if r["dataset"] == dataset and r.get("preset") == preset and r["setting"] != "all_splits":
            by_key[(r["row"], r["metric"])][r["setting"]] = r
    rows = []
    for (row, metric), splits in sorted(by_key.items()):
        if set(splits) >= {"split1", "split2", "split3"}:
            parts = [splits[f"split{i}"] for i in (1, 2, 3)]
            value = float(np.mean([p["value"] for p in parts]))
            run_id = "+".join(p["run_id"] for p in parts)
            missing = sum(int(p.get("missing_test_videos") or 0) for p in parts)
            rows.append(
                result_row(
                    "table1",
                    row,
                    "all_splits",
                    metric,
                    dataset,
                    value,
                    run_id,
                    preset,
                    missing_test_videos=missing,
                )
            )
    return rows


def _released_files() -> dict:
    """{(model, modality): caffemodel path} of the rows asked for; a missing file is named."""
    from lrcn_tf.tasks.activity import RELEASED

    if FLAGS.split != "1":
        raise app.UsageError(
            "--weights caffe: the authors released split-1 models only (--split 1)"
        )
    if not FLAGS.weights_dir:
        raise app.UsageError("--weights caffe needs --weights_dir (the .caffemodel files)")
    folder = Path(FLAGS.weights_dir).expanduser()
    if not folder.is_dir():
        raise app.UsageError(f"--weights_dir {folder}: not a folder")
    files = {}
    for (model, modality), name in RELEASED.items():
        if model in FLAGS.models and modality in FLAGS.inputs:
            path = folder / f"{name}.caffemodel"
            if not path.is_file():
                raise app.UsageError(f"--weights caffe: {path} is missing")
            files[(model, modality)] = path
    if not files:
        raise app.UsageError("--weights caffe: released models exist for single_frame and lrcn_fc6")
    return files


def _released(s: common.Setup, start: float) -> int:
    """--weights caffe: the authors' split-1 models, evaluated with the paper preset's (the
    original) test protocol; rows carry weights=caffe."""
    files = _released_files()
    _prepared_data(s, [1])
    from lrcn_tf.caffe import CaffeError
    from lrcn_tf.tasks import activity as task

    data, results = Data(s.dataset, s.data_dir), []
    done = {}
    for (model, modality), path in files.items():
        cfg = configs.build(f"table1/{model}/{modality}", "paper", ["split=1", *s.overrides])
        try:
            res = task.run_released_row(cfg, path, data, s.workdir)
        except (CaffeError, ValueError) as e:  # a file that does not fit: one line naming it
            raise app.UsageError(f"{path}: {e}" if str(path) not in str(e) else str(e)) from None
        done[model, modality] = res
        results.append(res)
        common.print_result("table1 (caffe)", res)
    for model in ("single_frame", "lrcn_fc6"):
        if (model, "rgb") in done and (model, "flow") in done:
            fusion_third = configs.build(f"table1/{model}/rgb", "paper").fusion_third
            fused = task.fuse_rows(done[model, "rgb"], done[model, "flow"], s.workdir, fusion_third)
            common.print_result("table1 (caffe)", fused)
            results.append(fused)
    missing = max(r.missing_test_videos for r in done.values())
    rows = [
        dict(r, preset="paper", weights="caffe")
        for r in common.csv_rows("table1", results, s, missing_test_videos=missing)
    ]
    update_results(s.output, rows)
    print(f"wrote {s.output} after {time.time() - start:.0f} s")
    return 0


def _config(model: str, modality: str, split: int, s: common.Setup):
    return configs.build(f"table1/{model}/{modality}", s.preset, [f"split={split}", *s.overrides])


def _write_split(split: int, done: dict, wanted: list[str], s: common.Setup, curves: dict):
    """Fuses a finished split's RGB and flow rows and merges its rows into the CSV (after
    every split, so a kill keeps the finished ones); adds its fusion sweeps to `curves`."""
    from lrcn_tf.tasks import activity

    results = [r for (m, _), r in done.items() if m in wanted]
    for model in wanted if {"rgb", "flow"} <= set(FLAGS.inputs) else ():
        rgb, flow = done[model, "rgb"], done[model, "flow"]
        fused = activity.fuse_rows(
            rgb, flow, s.workdir, _config(model, "rgb", split, s).fusion_third
        )
        curves[f"{model} split{split}"] = (fused.rgb_weights, fused.sweep)
        common.print_result("table1", fused)
        results.append(fused)
    missing = max(r.missing_test_videos for r in done.values())
    rows = common.csv_rows("table1", results, s, missing_test_videos=missing)
    update_results(s.output, rows)


def _run_in_order(splits: list[int], wanted: list[str], data: Data, s: common.Setup, curves):
    """--jobs 1: the rows one after another in this process."""
    from lrcn_tf.tasks import activity

    for split in splits:
        done = {}
        for modality in FLAGS.inputs:
            # LRCN starts from the single-frame model's CNN, so that one is always trained first.
            for model in ("single_frame", *[m for m in wanted if m != "single_frame"]):
                cfg = _config(model, modality, split, s)
                init = done.get(("single_frame", modality)) if cfg.is_lrcn else None
                done[model, modality] = activity.run_row(
                    cfg, data, s.workdir, init=init, strategy=s.strategy
                )
                if s.chief:
                    common.print_result("table1", done[model, modality])
        if s.chief:  # across machines the chief evaluates, fuses and writes the rows
            _write_split(split, done, wanted, s, curves)


def _tasks(splits: list[int], wanted: list[str], data: Data, s: common.Setup) -> list:
    """The rows as `lrcn_tf.jobs` tasks, keyed (model, modality, split), in the order of the
    sequential loop: LRCN rows take the single-frame row's result (`init`); single-frame rows
    with the pre-trained CNN stage wait for it (trained once, before any row reads it)."""
    from lrcn_tf import jobs
    from lrcn_tf.tasks import activity

    tasks, stage = [], ()  # stage: the last pre-trained CNN task
    for split in splits:
        for modality in FLAGS.inputs:
            first = ("single_frame", modality, split)
            cfg = _config("single_frame", modality, split, s)
            after = ()
            if cfg.pretext and data.synthetic:  # (with real data run_row names the error)
                # The stage every split shares: a task per row, each after the last, so the
                # first trains it and the others find it trained.
                key = ("pretext", modality, split)
                args = (cfg, data.folder, s.workdir)
                tasks.append(jobs.Task(key, activity.pretrain, args, after=stage))
                stage = after = (key,)
            tasks.append(jobs.Task(first, activity.run_row, (cfg, data, s.workdir), after=after))
            for model in (m for m in wanted if m != "single_frame"):
                cfg = _config(model, modality, split, s)
                kwargs = {"init": jobs.Result(first) if cfg.is_lrcn else None}
                args = (cfg, data, s.workdir)
                tasks.append(jobs.Task((model, modality, split), activity.run_row, args, kwargs))
    return tasks


def _workers(tasks: list, s: common.Setup) -> int:
    """--jobs, or the automatic choice its help describes."""
    from lrcn_tf import jobs, runtime

    if FLAGS.jobs:
        return FLAGS.jobs
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if s.strategy is not None or runtime.gpu_visible() or (cores or 1) < 2:
        return 1
    return 2 if jobs.can_overlap(tasks) else 1


def _run_in_workers(
    tasks: list, workers: int, splits: list[int], wanted: list[str], s: common.Setup, curves: dict
) -> None:
    """The rows in `workers` processes; each split is fused and written as soon as it and
    the splits before it have finished (in split order, as the sequential loop does)."""
    from lrcn_tf import jobs

    print(
        f"--jobs {workers}: rows train in {workers} worker processes (no progress bars; a "
        f"line per finished row)",
        flush=True,
    )
    rows = Counter(t.key[2] for t in tasks if t.key[0] != "pretext")  # rows of each split
    done: dict[int, dict] = {split: {} for split in splits}
    waiting = list(splits)  # not written yet
    finished = jobs.run(tasks, workers, initializer=_start_worker, initargs=(s.precision, s.seed))
    for (model, modality, split), result in finished:
        if model == "pretext":
            continue
        done[split][model, modality] = result
        common.print_result("table1", result)
        while waiting and len(done[waiting[0]]) == rows[waiting[0]]:
            split = waiting.pop(0)
            _write_split(split, done[split], wanted, s, curves)


def _start_worker(policy: str, seed: int | None) -> None:
    """In each worker process: what `common.setup` did in this one (dtype policy, --seed)."""
    import keras

    from lrcn_tf import runtime

    keras.mixed_precision.set_global_policy(policy)
    if seed is not None:
        runtime.seed_everything(seed)


def main(argv: list[str]) -> int:
    del argv
    start = time.time()
    _check_flags()
    if FLAGS.weights == "caffe" and FLAGS.strategy == "multi_worker":
        raise app.UsageError("--weights caffe evaluates only: run it on one machine")
    if FLAGS.weights == "caffe" and FLAGS.jobs > 1:
        raise app.UsageError("--jobs: --weights caffe evaluates the released models in order")
    if FLAGS.jobs > 1 and FLAGS.strategy != "none":
        raise app.UsageError(
            f"--jobs {FLAGS.jobs} trains each row on one device: use it with --strategy none "
            f"(--strategy {FLAGS.strategy} trains the rows in order, --jobs 1)"
        )
    if FLAGS.weights == "caffe" and not FLAGS["output"].present:
        FLAGS.output = "results/table1_caffe.csv"  # not mixed with trained rows of the same keys
    s = common.setup(seed_fields=("train.seed", "pretext_train.seed"))
    if FLAGS.weights == "caffe":
        return _released(s, start)
    splits = [1, 2, 3] if FLAGS.split == "all" else [int(FLAGS.split)]
    for split in splits:  # a bad --set is named before any data is made or read
        for model, modality in ((m, d) for m in MODELS for d in FLAGS.inputs):
            _config(model, modality, split, s)
    _prepared_data(s, splits)
    data = Data(s.dataset, s.data_dir)
    wanted = [m for m in MODELS if m in FLAGS.models]
    curves = {}  # fusion sweeps, for the plot
    tasks = _tasks(splits, wanted, data, s)
    workers = _workers(tasks, s)
    if workers > 1:
        _run_in_workers(tasks, workers, splits, wanted, s, curves)
    else:
        _run_in_order(splits, wanted, data, s, curves)
    if not s.chief:
        return common.finish(s, "table1", start)
    mean_rows = _all_splits(s.output, s.dataset, s.preset)
    if mean_rows:
        update_results(s.output, mean_rows)
    if curves:
        plot = ev.plot_fusion_sweep(curves, s.output.with_name(f"{s.output.stem}_fusion_sweep.png"))
        print(f"fusion sweep: {plot}")
    return common.finish(s, "table1", start)


def run() -> None:
    """The console command (`lrcn-table1`)."""
    cli.run(main)


if __name__ == "__main__":
    run()
