"""What every task shares: the dataset a row reads and the result a row returns.

Every task module has the same entry point, `run_row(cfg, data, workdir, **options)`: it
builds the data pipeline and the model, trains (resuming from the row's run folder), evaluates
and returns a `RowResult` whose `values` are keyed by the (row, setting, metric) of
results/*.csv (SPEC.md). A finished row is returned from its run folder without retraining.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Data:
    """A prepared dataset folder and the dataset's name (e.g. `synthetic_ucf101`, `flickr30k`)."""

    name: str
    folder: Path

    @property
    def synthetic(self) -> bool:
        return self.name.startswith("synthetic_")


@dataclasses.dataclass(frozen=True)
class RowResult:
    """What one row measured, and the run folder that holds its config, logs and outputs.

    Attributes:
      run_id: the run folder's name (`lrcn_tf.runtime.Run`), written in every CSV row.
      run_dir: the run folder.
      values: {(row, setting, metric): value} in the units of results/expected.csv.
    """

    run_id: str
    run_dir: Path
    values: dict[tuple[str, str, str], float]
