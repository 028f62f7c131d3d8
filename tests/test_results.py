"""Result CSVs keep presets apart: a smoke run adds rows, it never replaces default ones."""

import pytest

from lrcn_tf.results import (
    PRODUCED_COLUMNS,
    ResultsError,
    read_rows,
    result_row,
    rows_for_preset,
    update_results,
)


def _row(value, preset, metric="rgb"):
    return result_row(
        "table1", "lrcn_fc6", "split1", metric, "synthetic_ucf101", value, "r", preset
    )


def test_a_smoke_run_never_replaces_default_rows(tmp_path):
    csv = tmp_path / "table1.csv"
    update_results(csv, [_row(64.0, "default")])
    update_results(csv, [_row(12.5, "smoke")])
    rows = read_rows(csv, PRODUCED_COLUMNS)
    assert {(r["preset"], r["value"]) for r in rows} == {("default", 64.0), ("smoke", 12.5)}
    assert [r["value"] for r in rows_for_preset(rows, "default")] == [64.0]


def test_the_same_preset_replaces_its_own_row_and_keeps_others(tmp_path):
    csv = tmp_path / "table1.csv"
    update_results(csv, [_row(64.0, "default"), _row(50.0, "default", "flow")])
    update_results(csv, [_row(66.0, "default")])
    rows = {r["metric"]: r["value"] for r in read_rows(csv, PRODUCED_COLUMNS)}
    assert rows == {"rgb": 66.0, "flow": 50.0}


def test_a_duplicate_key_within_one_preset_is_refused(tmp_path):
    csv = tmp_path / "table1.csv"
    header = ",".join(PRODUCED_COLUMNS)
    line = "table1,lrcn_fc6,split1,rgb,synthetic_ucf101,1.0,r,smoke"
    csv.write_text(f"{header}\n{line}\n{line}\n")
    with pytest.raises(ResultsError, match=":3: duplicate key"):
        read_rows(csv, PRODUCED_COLUMNS)
