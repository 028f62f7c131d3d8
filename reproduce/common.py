"""Flags and set-up shared by every `reproduce.*` entry point (SPEC.md, common flags)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from absl import flags, logging

from lrcn_tf import runtime
from lrcn_tf.configs import PRESETS

FLAGS = flags.FLAGS

SYNTHETIC_NOTE = (
    "These numbers come from a small generated dataset ({dataset}) that exercises the real "
    "loaders and pipeline on a CPU; they are NOT comparable to the paper's."
)


def define_common_flags(default_dataset: str, datasets: Sequence[str], default_output: str) -> None:
    """Defines --dataset, --data_dir, --preset, --workdir, --output, --seed, --mixed_precision,
    --set, --compare and --strategy."""
    flags.DEFINE_enum(
        "dataset",
        default_dataset,
        list(datasets),
        "Dataset; the synthetic_* default is generated and prepared on first use.",
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "Prepared dataset folder (lrcn_tf.prepare --out). Default for synthetic "
        "data: $LRCN_DATA_DIR/<dataset> (LRCN_DATA_DIR defaults to ~/.cache/lrcn_tf).",
    )
    flags.DEFINE_enum(
        "preset",
        "default",
        list(PRESETS),
        "smoke: seconds, for tests; default: the embedded data on a laptop CPU in "
        "minutes; paper: the original recipe.",
    )
    flags.DEFINE_string(
        "workdir", "runs", "Run folders (config, versions, logs, checkpoints) go here."
    )
    flags.DEFINE_string("output", default_output, "Result CSV (rows are merged in, atomically).")
    flags.DEFINE_integer("seed", None, "Overrides the config's seed(s) (train.seed by default).")
    flags.DEFINE_enum(
        "mixed_precision",
        "auto",
        list(runtime.PRECISION_MODES),
        "auto: mixed_float16 when a GPU is visible, float32 on CPU.",
    )
    flags.DEFINE_multi_string(
        "set",
        [],
        "Config override field=value (dotted, repeatable), e.g. --set train.max_iter=100.",
    )
    flags.DEFINE_bool("compare", True, "Print the comparison with the paper when done.")
    flags.DEFINE_enum(
        "strategy",
        "none",
        ["none", "mirrored", "multi_worker"],
        "none: one device; mirrored: every GPU of this host (tf.distribute); multi_worker: "
        "one process per machine, the cluster in $TF_CONFIG (MultiWorkerMirroredStrategy; "
        "--workdir and the data on storage every worker reads; only the chief writes run "
        "folders and results). The config's batch is the global batch (docs/scaling.md).",
    )


@dataclasses.dataclass(frozen=True)
class Setup:
    dataset: str
    data_dir: Path
    preset: str
    overrides: tuple[str, ...]
    workdir: Path
    output: Path
    seed: int | None
    precision: str
    strategy: Any = None  # a tf.distribute strategy, or None (--strategy none)

    @property
    def synthetic(self) -> bool:
        return self.dataset.startswith("synthetic_")

    @property
    def chief(self) -> bool:
        """Whether this process writes run folders, result CSVs, plots and reports (always,
        but on the non-chief workers of --strategy multi_worker)."""
        from lrcn_tf.training import distributed

        return distributed.is_chief(self.strategy)


def setup(seed_fields: Sequence[str] = ("train.seed",)) -> Setup:
    """Applies the common flags: precision policy, seeds, data folder; logs what it chose.

    Args:
      seed_fields: the config fields that `--seed` sets (a table whose configs have one seed
        per training stage names them all).
    """
    from lrcn_tf.training import distributed

    # First: MultiWorkerMirroredStrategy must exist before TensorFlow runs anything.
    strategy = distributed.build(FLAGS.strategy)
    precision = runtime.configure_precision(FLAGS.mixed_precision)
    overrides = list(FLAGS.set)
    if FLAGS.seed is not None:
        overrides += [f"{field}={FLAGS.seed}" for field in seed_fields]
        runtime.seed_everything(FLAGS.seed)
    if FLAGS.data_dir:
        data_dir = Path(FLAGS.data_dir).expanduser()
    elif FLAGS.dataset.startswith("synthetic_"):
        data_dir = runtime.data_dir() / FLAGS.dataset
    else:
        raise flags.ValidationError(
            f"--dataset {FLAGS.dataset} needs --data_dir (a folder `python -m lrcn_tf.prepare "
            f"--dataset {FLAGS.dataset}` wrote)"
        )
    s = Setup(
        FLAGS.dataset,
        data_dir,
        FLAGS.preset,
        tuple(overrides),
        Path(FLAGS.workdir),
        Path(FLAGS.output),
        FLAGS.seed,
        precision,
        strategy,
    )
    if s.chief:
        check_output(s.output)
    logging.info(
        "dataset %s in %s, preset %s, precision %s", s.dataset, s.data_dir, s.preset, precision
    )
    if strategy is not None:
        where = (
            f"worker {distributed.worker_index(strategy)} "
            f"({'chief' if s.chief else 'not the chief: it trains, the chief writes'}), "
            if distributed.is_multi_worker(strategy)
            else ""
        )
        print(f"--strategy {FLAGS.strategy}: {where}{strategy.num_replicas_in_sync} replica(s)")
    if s.synthetic and s.chief:
        print(SYNTHETIC_NOTE.format(dataset=s.dataset))
    return s


def csv_rows(table: str, results: Sequence, s: Setup, **extra) -> list[dict]:
    """The result-CSV rows (SPEC.md) of finished `run_row` results, keyed by this run's
    preset; `extra` adds columns to every row."""
    from lrcn_tf.results import result_row

    return [
        result_row(table, row, setting, metric, s.dataset, value, r.run_id, s.preset, **extra)
        for r in results
        for (row, setting, metric), value in r.values.items()
    ]


def print_result(table: str, result) -> None:
    """One line per (row, setting) of a `run_row` result: its metrics and its run."""
    by_row: dict[tuple[str, str], list[str]] = {}
    for (row, setting, metric), value in result.values.items():
        by_row.setdefault((row, setting), []).append(f"{metric} {value:.2f}")
    for (row, setting), parts in by_row.items():
        print(f"{table} {row} {setting}: {', '.join(parts)} ({result.run_id})", flush=True)


def prepared_data(s: Setup, table: str) -> Path:
    """The data folder, checked to hold `--dataset` (raises DataFolderError, one line, if not).

    A `--data_dir` the user gave is only read, never written or cleaned; without one, an
    embedded dataset is generated and prepared in the cache first.
    """
    from lrcn_tf.data import embedded, folders
    from lrcn_tf.training import distributed

    if s.synthetic and not FLAGS.data_dir and s.chief:  # across machines: made by the chief
        embedded.ensure(s.dataset, s.data_dir)
    distributed.barrier(s.strategy)
    folders.check_prepared(s.data_dir, s.dataset, table, "--data_dir" if FLAGS.data_dir else "")
    return s.data_dir


def check_output(output: Path) -> None:
    """Preflight: the result CSV's folder can be made and written (before any training)."""
    import os

    from lrcn_tf.results import ResultsError

    folder = output.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ResultsError(
            f"--output {output}: cannot create {folder}: {e.strerror or e}"
        ) from None
    if output.is_dir():
        raise ResultsError(f"--output {output}: is a folder, not a CSV file")
    if not os.access(folder, os.W_OK | os.X_OK) or (
        output.exists() and not os.access(output, os.R_OK)
    ):
        raise ResultsError(f"--output {output}: {folder} is not writable")


def finish(s: Setup, table: str, start: float) -> int:
    """The end of every table's run: the time it took and, unless --nocompare, the comparison
    with the paper (its exit status is the program's). Across machines every worker waits
    here until the chief has written everything, and only the chief compares."""
    from lrcn_tf.training import distributed

    distributed.barrier(s.strategy)
    if not s.chief:
        print(f"{table}: trained in {time.time() - start:.0f} s; the chief wrote the results")
        return 0
    print(f"{table}: rows in {s.output}, done in {time.time() - start:.0f} s")
    return print_comparison(s.output, [table]) if FLAGS.compare else 0


def print_comparison(output: Path, tables: Sequence[str]) -> int:
    """Runs `reproduce.compare` on one produced CSV; returns its exit status."""
    cmd = [
        sys.executable,
        "-m",
        "reproduce.compare",
        f"--produced={output}",
        f"--tables={','.join(tables)}",
        f"--output={output.with_name(f'comparison_{output.stem}.csv')}",
    ]
    return subprocess.run(cmd, check=False).returncode
