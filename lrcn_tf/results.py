"""Result CSVs: the keys of SPEC.md, strict reading with line numbers, atomic merged writing.

A result row is keyed by (table, row, setting, metric, dataset). Produced CSVs
(results/table1.csv ...) carry at least `value` and `run_id` (plus `preset`); the reference
file results/expected.csv carries `value`, `tolerance` and `source`. In a produced CSV the
preset is part of the key: a `--preset smoke` run adds its rows beside the default preset's
and never replaces them (readers pick the preset they want, e.g. `rows_for_preset`).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import math
import re
from collections.abc import Iterable
from pathlib import Path

from lrcn_tf.errors import UserError
from lrcn_tf.runtime import write_text_atomic

KEY = ("table", "row", "setting", "metric", "dataset")
PRODUCED_COLUMNS = KEY + ("value", "run_id", "preset")
EXPECTED_COLUMNS = KEY + ("value", "tolerance", "source")
TABLES = ("table1", "table2", "table3", "table4", "table5")
# The paper and golden values, found beside the package (not in the current directory), so a
# program run from anywhere compares against the same file.
EXPECTED_CSV = Path(__file__).resolve().parents[1] / "results" / "expected.csv"

# Embedded datasets and the real dataset whose paper numbers they are printed beside.
PAPER_DATASET = {
    "synthetic_ucf101": "ucf101",
    "synthetic_flickr30k": "flickr30k",
    "synthetic_coco2014": "coco2014",
    "synthetic_tacos": "tacos_multilevel",
}
PAPER_DATASETS = frozenset(PAPER_DATASET.values())

_CAPTION_DATASETS = (
    "flickr30k",
    "coco2014",
    "flickr8k",
    "synthetic_flickr30k",
    "synthetic_coco2014",
)
# What each table may hold (SPEC.md, "Keys for every table row"): rows, a pattern of settings,
# metrics, datasets. Table 3 also writes METEOR, CIDEr and ROUGE-L, and its `--split val`
# and Table 5's `--set eval_split=val` say so in the setting; Table 4's setting counts images.
SCHEMA = {
    "table1": (
        ("single_frame", "lrcn_fc6", "lrcn_fc7"),
        r"split[123]|all_splits",
        ("rgb", "flow", "fusion_half", "fusion_third"),
        ("ucf101", "synthetic_ucf101"),
    ),
    "table2": (
        ("devise", "sdt_rnn", "defrag", "m_rnn", "convnet", "lrcn_2f"),
        r"caption_to_image|image_to_caption",
        ("r1", "r5", "r10", "medr"),
        _CAPTION_DATASETS,
    ),
    "table3": (
        ("m_rnn", "nn_fc8", "nn_fc7", "lrcn"),
        r"test|val",
        ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "cider", "rouge_l"),
        _CAPTION_DATASETS,
    ),
    "table4": (
        ("treetalk", "oxfordnet", "nn", "lrcn_fc8", "lrcn_ft", "captions"),
        r"human_[0-9]+",
        ("correctness", "grammar", "relevance"),
        _CAPTION_DATASETS,
    ),
    "table5": (
        ("smt_crf_max", "smt_crf_prob", "lstm_enc_dec_crf_max", "lstm_dec_crf_max",
         "lstm_dec_crf_prob"),
        r"test|val",
        ("bleu4",),
        ("tacos_multilevel", "synthetic_tacos"),
    ),
}  # fmt: skip


class ResultsError(UserError):
    """A result file that cannot be read; the message names the file and line."""


def key_of(row: dict) -> tuple[str, ...]:
    return tuple(row[k] for k in KEY)


def produced_key(row: dict) -> tuple[str, ...]:
    """The key of a produced row: SPEC.md's key and the preset (empty when there is none)."""
    return key_of(row) + (row.get("preset") or "",)


def rows_for_preset(rows: Iterable[dict], preset: str) -> list[dict]:
    """The rows of one preset (rows without a preset column count as every preset's)."""
    return [r for r in rows if not r.get("preset") or r["preset"] == preset]


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
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Excel's) is dropped
    except UnicodeDecodeError as e:
        raise ResultsError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
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
        key = produced_key(row)
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


@contextlib.contextmanager
def locked(path: str | Path):
    """Holds an exclusive lock (fcntl.flock) on `<path>.lock`, beside the CSV, while inside.

    The lock file stays (deleting it would let two processes lock two different files).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def check_known(row: dict, path: str | Path) -> None:
    """Raises ResultsError naming the line when a row's key is not one SCHEMA allows."""
    rows, settings, metrics, datasets = SCHEMA[row["table"]]
    where = f"{path}:{row.get('line', '?')}"
    for field, allowed in (("row", rows), ("metric", metrics), ("dataset", datasets)):
        if row[field] not in allowed:
            raise ResultsError(
                f"{where}: unknown {field} {row[field]!r} for {row['table']} "
                f"(known: {', '.join(allowed)})"
            )
    if not re.fullmatch(settings, row["setting"]):
        raise ResultsError(
            f"{where}: unknown setting {row['setting']!r} for {row['table']} "
            f"(known: {settings.replace('|', ', ')})"
        )


def update_results(path: str | Path, rows: Iterable[dict]) -> Path:
    """Merges `rows` into the produced CSV at `path`, atomically and under `locked(path)`.

    Rows already in the file with other keys are kept (so `--split 1` then `--split 2` both
    stay, and so do the rows of another preset); rows with the same key and preset are
    replaced by the new ones. Concurrent merges into one CSV
    (two tables, or two splits, run at once) wait for each other, so every row is kept.
    """
    rows = list(rows)
    with locked(path):
        return _merge(Path(path), rows)


def _merge(path: Path, rows: list[dict]) -> Path:
    merged: dict[tuple, dict] = {}
    if path.exists():
        for old in read_rows(path, PRODUCED_COLUMNS[:6]):
            merged[produced_key(old)] = old
    for row in rows:
        missing = [c for c in PRODUCED_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"result row {row} lacks {', '.join(missing)}")
        merged[produced_key(row)] = row
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
