import subprocess
import sys

import pytest

from lrcn_tf.evaluation import claims
from lrcn_tf.results import EXPECTED_COLUMNS, ResultsError, read_rows, result_row, update_results

HEADER = "table,row,setting,metric,dataset,value,run_id,preset\n"
EXPECTED = "table,row,setting,metric,dataset,value,tolerance,source\n"


def _run(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "reproduce.compare", *args], cwd=cwd, capture_output=True, text=True
    )


def test_expected_csv_holds_all_122_paper_numbers():
    rows = read_rows("results/expected.csv", EXPECTED_COLUMNS)
    paper = [r for r in rows if r["source"].startswith("paper Table")]
    assert len(paper) == 122
    per_table = {
        t: sum(r["table"] == t for r in paper)
        for t in ("table1", "table2", "table3", "table4", "table5")
    }
    assert per_table == {"table1": 20, "table2": 56, "table3": 23, "table4": 18, "table5": 5}
    lookup = {
        (r["table"], r["row"], r["setting"], r["metric"], r["dataset"]): r["value"] for r in paper
    }
    assert lookup[("table1", "lrcn_fc6", "split1", "flow", "ucf101")] == 76.95
    assert lookup[("table2", "lrcn_2f", "image_to_caption", "medr", "coco2014")] == 2
    assert lookup[("table3", "nn_fc7", "test", "bleu4", "coco2014")] == 8.73
    assert ("table3", "m_rnn", "test", "bleu4", "flickr30k") not in lookup  # printed as '-'


def test_paper_claims_hold_on_paper_numbers():
    rows = read_rows("results/expected.csv", EXPECTED_COLUMNS)
    values = claims.values_by_dataset(r for r in rows if r["source"].startswith("paper"))
    verdicts = {}
    for ds, v in values.items():
        for claim_id, _, verdict, _ in claims.evaluate(v):
            if verdict != claims.NA:
                verdicts[(ds, claim_id)] = verdict
    assert set(verdicts.values()) == {claims.HOLDS}
    assert ("ucf101", "t1_fc6_beats_fc7") in verdicts
    assert ("tacos_multilevel", "t5_prob_beats_max") in verdicts


def test_claims_fail_and_na_on_hand_made_values():
    v = {
        ("table1", "lrcn_fc6", "split1", "rgb"): 50.0,
        ("table1", "single_frame", "split1", "rgb"): 60.0,
    }
    verdict, why = claims.t1_lrcn_beats_single(v)
    assert verdict == claims.FAILS and "50.00" in why
    assert claims.t5_prob_beats_max(v)[0] == claims.NA
    v2 = {
        ("table1", "lrcn_fc6", "split1", m): x
        for m, x in [("rgb", 60.0), ("flow", 70.0), ("fusion_half", 75.0), ("fusion_third", 72.0)]
    }
    assert claims.t1_fusion_helps(v2)[0] == claims.HOLDS
    assert claims.t1_flow_weighted_higher(v2)[0] == claims.FAILS


def test_compare_prints_paper_tables_without_produced(tmp_path):
    res = _run(["--produced=", f"--output={tmp_path / 'c.csv'}"], cwd=".")
    assert res.returncode == 0, res.stderr
    assert "table1 (paper" in res.stdout and "82.92" in res.stdout
    assert "HOLDS" in res.stdout


def _write_expected(tmp_path, golden_value="50.0", tol="1.0"):
    exp = tmp_path / "expected.csv"
    exp.write_text(
        EXPECTED
        + "table5,lstm_dec_crf_prob,test,bleu4,tacos_multilevel,28.8,,paper Table 5\n"
        + f"table5,lstm_dec_crf_prob,test,bleu4,synthetic_tacos,{golden_value},{tol},"
        + "python -m reproduce.table5 --preset smoke\n"
    )
    return exp


@pytest.mark.parametrize("ours, code", [("50.5", 0), ("52.0", 1)])
def test_regression_within_and_outside_tolerance(tmp_path, ours, code):
    exp = _write_expected(tmp_path)
    prod = tmp_path / "table5.csv"
    prod.write_text(
        HEADER + f"table5,lstm_dec_crf_prob,test,bleu4,synthetic_tacos,{ours},r1,smoke\n"
    )
    res = _run([f"--expected={exp}", f"--produced={prod}", f"--output={tmp_path / 'c.csv'}"], ".")
    assert res.returncode == code, res.stdout + res.stderr
    assert ("REGRESSION" in res.stdout) == (code == 1)
    assert "28.80" in res.stdout  # the paper's value printed beside ours
    assert (tmp_path / "c.csv").read_text().count("\n") == 2


def test_golden_of_another_preset_is_not_checked(tmp_path):
    exp = _write_expected(tmp_path)
    prod = tmp_path / "table5.csv"
    prod.write_text(
        HEADER + "table5,lstm_dec_crf_prob,test,bleu4,synthetic_tacos,99.0,r1,default\n"
    )
    res = _run([f"--expected={exp}", f"--produced={prod}", f"--output={tmp_path / 'c.csv'}"], ".")
    assert res.returncode == 0 and "golden is for --preset smoke" in res.stdout


def test_strict_reports_missing_golden_rows(tmp_path):
    exp = _write_expected(tmp_path)
    prod = tmp_path / "table5.csv"
    prod.write_text(HEADER + "table5,lstm_dec_crf_max,test,bleu4,synthetic_tacos,10.0,r1,smoke\n")
    args = [f"--expected={exp}", f"--produced={prod}", f"--output={tmp_path / 'c.csv'}"]
    assert _run(args, ".").returncode == 0
    res = _run(args + ["--strict"], ".")
    assert res.returncode == 1 and "MISSING" in res.stdout


@pytest.mark.parametrize(
    "body, message",
    [
        ("table5,x,test,bleu4,synthetic_tacos,abc,r1,smoke\n", ":2: value 'abc' is not a number"),
        ("table5,x,test,bleu4,synthetic_tacos,1.0\n", ":2: 6 fields where the header has 8"),
        ("table9,x,test,bleu4,synthetic_tacos,1.0,r1,smoke\n", ":2: unknown table 'table9'"),
        ("table5,x,test,bleu4,d,1,r,s\ntable5,x,test,bleu4,d,2,r,s\n", ":3: duplicate key"),
        ("table5,x,test,bleu4,d,nan,r,s\n", ":2: value 'nan' is not finite"),
    ],
)
def test_malformed_produced_csv_exits_2_naming_file_and_line(tmp_path, body, message):
    prod = tmp_path / "bad.csv"
    prod.write_text(HEADER + body)
    res = _run([f"--produced={prod}", f"--output={tmp_path / 'c.csv'}"], ".")
    assert res.returncode == 2
    assert f"{prod}{message}" in res.stderr
    assert not (tmp_path / "c.csv").exists()


def test_missing_columns_and_missing_file(tmp_path):
    prod = tmp_path / "bad.csv"
    prod.write_text("table,row,value\n")
    with pytest.raises(ResultsError, match=r"bad.csv:1: missing column\(s\) setting, metric"):
        read_rows(prod, ["table", "row", "setting", "metric"])
    res = _run([f"--produced={tmp_path / 'absent.csv'}"], ".")
    assert res.returncode == 2 and "absent.csv: cannot read" in res.stderr


def test_update_results_merges_and_replaces(tmp_path):
    path = tmp_path / "table1.csv"
    a = result_row("table1", "lrcn_fc6", "split1", "rgb", "synthetic_ucf101", 50, "run-a", "smoke")
    b = result_row("table1", "lrcn_fc6", "split2", "rgb", "synthetic_ucf101", 60, "run-a", "smoke")
    update_results(path, [a])
    update_results(path, [b])
    update_results(path, [dict(a, value=55.0, run_id="run-b")])
    rows = {
        (r["setting"]): r
        for r in read_rows(path, ["table", "row", "setting", "metric", "dataset", "value"])
    }
    assert rows["split1"]["value"] == 55.0 and rows["split1"]["run_id"] == "run-b"
    assert rows["split2"]["value"] == 60.0
    assert not list(tmp_path.glob(".*tmp"))


def test_committed_results_read_and_compare_cleanly(tmp_path):
    """The results/table*.csv in the repository (default preset) parse and pass compare."""
    res = _run([f"--output={tmp_path / 'c.csv'}"], cwd=".")
    assert res.returncode == 0, res.stderr
    assert "Claims of the paper" in res.stdout


def test_claims_are_judged_per_preset(tmp_path):
    # Default rows say LRCN beats single frame, smoke rows say it does not: two verdicts
    # (real-dataset rows: no golden values to regress against).
    csv = tmp_path / "t1.csv"
    rows = [
        result_row("table1", m, "split1", "rgb", "ucf101", v, "r", preset)
        for preset, values in (("default", (60.0, 50.0)), ("smoke", (40.0, 50.0)))
        for m, v in zip(("lrcn_fc6", "single_frame"), values, strict=True)
    ]
    update_results(csv, rows)
    res = _run([f"--produced={csv}", f"--output={tmp_path / 'c.csv'}"], cwd=".")
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if "t1_lrcn_beats_single" in line]
    assert any("HOLDS" in x and "[default]" in x for x in lines), lines
    assert any("FAILS" in x and "[smoke]" in x for x in lines), lines
