"""Result CSVs: the keys of SPEC.md, strict reading with line numbers, atomic merged writing.

A result row is keyed by (table, row, setting, metric, dataset). Produced CSVs
(results/table1.csv ...) carry at least `value` and `run_id` (plus `preset`); the reference
file results/expected.csv carries `value`, `tolerance` and `source`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from pathlib import Path

from lrcn_tf.runtime import write_text_atomic

KEY = ("table", "row", "setting", "metric", "dataset")
PRODUCED_COLUMNS = KEY + ("value", "run_id", "preset")
EXPECTED_COLUMNS = KEY + ("value", "tolerance", "source")
TABLES = ("table1", "table2", "table3", "table4", "table5")

# Embedded datasets and the real dataset whose paper numbers they are printed beside.
PAPER_DATASET = {
    "synthetic_ucf101": "ucf101",
    "synthetic_flickr30k": "flickr30k",
    "synthetic_coco2014": "coco2014",
    "synthetic_tacos": "tacos_multilevel",
}
PAPER_DATASETS = frozenset(PAPER_DATASET.values())


class ResultsError(ValueError):
    """A result file that cannot be read; the message names the file and line."""


def key_of(row: dict) -> tuple[str, ...]:
    return tuple(row[k] for k in KEY)


def read_rows(path: str | Path, required: Iterable[str]) -> list[dict]:
    """Reads a result CSV, checking columns, keys and numbers.

    Args:
      path: the CSV file.
      required: columns it must have (extra columns are kept).

    Returns:
      One dict per data row; `value` (and `tolerance` when present and not empty) as floats,
      and `line` holding the row's line number in the file.

    Raises:
      ResultsError: missing file, missing columns, wrong field count, an unknown table, an
        empty key field, a duplicate key or a value that is not a finite number.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ResultsError(f"{path}: cannot read: {e.strerror or e}") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ResultsError(f"{path}:1: empty file, expected a header line") from None
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise ResultsError(f"{path}:1: missing column(s) {', '.join(missing)} in header {header}")
    rows, seen = [], {}
    for line_no, fields in enumerate(reader, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise ResultsError(
                f"{path}:{line_no}: {len(fields)} fields where the header has {len(header)}"
            )
        row = {h: f.strip() for h, f in zip(header, fields, strict=True)}
        _check_row(row, path, line_no)
        key = key_of(row)
        if key in seen:
            raise ResultsError(f"{path}:{line_no}: duplicate key {key} (first on line {seen[key]})")
        seen[key] = line_no
        row["line"] = line_no
        rows.append(row)
    return rows


def _check_row(row: dict, path: Path, line_no: int) -> None:
    for k in KEY:
        if not row[k]:
            raise ResultsError(f"{path}:{line_no}: empty {k!r}")
    if row["table"] not in TABLES:
        raise ResultsError(f"{path}:{line_no}: unknown table {row['table']!r}")
    for col in ("value", "tolerance"):
        if col not in row or (col == "tolerance" and row[col] == ""):
            continue
        try:
            number = float(row[col])
        except ValueError:
            raise ResultsError(f"{path}:{line_no}: {col} {row[col]!r} is not a number") from None
        if not math.isfinite(number):
            raise ResultsError(f"{path}:{line_no}: {col} {row[col]!r} is not finite")
        row[col] = number


def update_results(path: str | Path, rows: Iterable[dict]) -> Path:
    """Merges `rows` into the produced CSV at `path`, atomically.

    Rows already in the file with other keys are kept (so `--split 1` then `--split 2` both
    stay); rows with the same key are replaced by the new ones.
    """
    path = Path(path)
    merged: dict[tuple, dict] = {}
    if path.exists():
        for old in read_rows(path, PRODUCED_COLUMNS[:6]):
            merged[key_of(old)] = old
    for row in rows:
        missing = [c for c in PRODUCED_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"result row {row} lacks {', '.join(missing)}")
        merged[key_of(row)] = row
    columns = list(PRODUCED_COLUMNS)
    for row in merged.values():
        columns += [c for c in row if c not in columns and c != "line"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for key in sorted(merged):
        row = dict(merged[key])
        if isinstance(row["value"], float):
            row["value"] = f"{row['value']:.4f}"
        writer.writerow(row)
    write_text_atomic(path, out.getvalue())
    return path


def result_row(table, row, setting, metric, dataset, value, run_id, preset, **extra) -> dict:
    """One produced-CSV row (value in the paper's units)."""
    return {
        "table": table,
        "row": row,
        "setting": setting,
        "metric": metric,
        "dataset": dataset,
        "value": float(value),
        "run_id": run_id,
        "preset": preset,
        **extra,
    }
