"""Flags and set-up shared by every `reproduce.*` entry point (SPEC.md, common flags)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from absl import flags, logging

from lrcn_tf import runtime
from lrcn_tf.configs import PRESETS

FLAGS = flags.FLAGS

SYNTHETIC_NOTE = (
    "These numbers come from a small generated dataset ({dataset}) that exercises the real "
    "loaders and pipeline on a CPU; they are NOT comparable to the paper's."
)


def define_common_flags(default_dataset: str, datasets: Sequence[str], default_output: str) -> None:
    """Defines --dataset, --data_dir, --preset, --workdir, --output, --seed, --mixed_precision, --set."""
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

    @property
    def synthetic(self) -> bool:
        return self.dataset.startswith("synthetic_")


def setup(seed_fields: Sequence[str] = ("train.seed",)) -> Setup:
    """Applies the common flags: precision policy, seeds, data folder; logs what it chose.

    Args:
      seed_fields: the config fields that `--seed` sets (a table whose configs have one seed
        per training stage names them all).
    """
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
            f"--dataset {FLAGS.dataset} needs --data_dir (a prepared folder)"
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
    )
    logging.info(
        "dataset %s in %s, preset %s, precision %s", s.dataset, s.data_dir, s.preset, precision
    )
    if s.synthetic:
        print(SYNTHETIC_NOTE.format(dataset=s.dataset))
    return s


def csv_rows(table: str, results: Sequence, s: Setup) -> list[dict]:
    """The result-CSV rows (SPEC.md) of finished `run_row` results, keyed by this run's preset."""
    from lrcn_tf.results import result_row

    return [
        result_row(table, row, setting, metric, s.dataset, value, r.run_id, s.preset)
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
