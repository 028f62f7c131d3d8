"""Reliability (docs/reliability.md): nothing foreign is deleted, folders are what they claim,
concurrent merges keep every row, and a user error is one `error:` line with exit status 2."""

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrcn_tf.data import embedded, folders
from lrcn_tf.data.tacos import format as tacos
from lrcn_tf.data.tacos import prepare as tacos_prepare
from lrcn_tf.data.tacos import synthetic as synthetic_tacos
from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.results import PRODUCED_COLUMNS, read_rows, result_row, update_results

ROOT = Path(__file__).resolve().parents[1]


def _run(module, *args, cwd=ROOT, env=None, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _one_error_line(proc) -> str:
    """The process failed with exit 2 and exactly one `error:` line, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _user_folder(tmp_path) -> Path:
    d = tmp_path / "mine"
    (d / "UCF-101" / "Run").mkdir(parents=True)
    (d / "UCF-101" / "Run" / "v_Run_g01_c01.avi").write_bytes(b"my only copy")
    (d / "notes.txt").write_text("raw files")
    return d


# -- 1. never delete what the project did not create -------------------------------------------


def test_remove_owned_deletes_only_marked_folders(tmp_path):
    mine = _user_folder(tmp_path)
    before = _snapshot(mine)
    with pytest.raises(folders.DataFolderError, match="not made by lrcn_tf"):
        folders.remove_owned(mine)
    assert _snapshot(mine) == before
    ours = folders.mark_owned(tmp_path / "ours", "synthetic_tacos")
    (ours / "x").write_text("1")
    with pytest.raises(folders.DataFolderError):
        folders.remove_owned(ours, "synthetic_ucf101")  # marked for another dataset
    folders.remove_owned(ours, "synthetic_tacos")
    assert not ours.exists()
    folders.remove_owned(tmp_path / "absent")  # nothing to do


def test_ensure_never_replaces_a_foreign_folder(tmp_path):
    mine = _user_folder(tmp_path)
    before = _snapshot(mine)
    with pytest.raises(folders.DataFolderError, match="refusing to delete"):
        embedded.ensure_tacos(mine)
    assert _snapshot(mine) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temp folder left


def test_prepare_refuses_to_write_into_a_foreign_folder(tmp_path):
    mine = _user_folder(tmp_path)
    (mine / tacos.MANIFEST).write_text('{"mine": true}')
    before = _snapshot(mine)
    raw = synthetic_tacos.generate(tmp_path / "raw.jsonl")
    with pytest.raises(tacos.TACoSFormatError, match="refusing to write"):
        tacos_prepare.prepare(raw, mine, dataset="synthetic_tacos")
    assert _snapshot(mine) == before
    out = tmp_path / "new"
    tacos_prepare.prepare(raw, out, dataset="synthetic_tacos")
    assert folders.owner(out) == {"owner": "lrcn_tf", "dataset": "synthetic_tacos"}
    tacos_prepare.prepare(raw, out, dataset="synthetic_tacos")  # its own folder: redone in place
    with pytest.raises(tacos.TACoSFormatError, match="made by lrcn_tf for synthetic_tacos"):
        tacos_prepare.prepare(raw, out, dataset="tacos_multilevel")


def test_table5_data_dir_is_read_only(tmp_path):
    """The measured bug: table5 --data_dir DIR deleted DIR (raw files included)."""
    mine = _user_folder(tmp_path)
    before = _snapshot(mine)
    proc = _run(
        "reproduce.table5",
        f"--data_dir={mine}",
        "--preset=smoke",
        "--nocompare",
        f"--output={tmp_path / 't5.csv'}",
        f"--workdir={tmp_path / 'runs'}",
        env={"LRCN_DATA_DIR": str(tmp_path / "cache")},
    )
    line = _one_error_line(proc)
    assert str(mine) in line and "not a prepared folder" in line and "synthetic_tacos" in line
    assert _snapshot(mine) == before
    assert not (tmp_path / "t5.csv").exists() and not (tmp_path / "cache").exists()


# -- 2. a folder holds what it says; consumers check it ----------------------------------------


def _fake_ucf101(folder: Path, dataset: str) -> Path:
    folder.mkdir(parents=True)
    (folder / ucf101.INFO_FILE).write_text(
        json.dumps({"format": ucf101.FORMAT, "dataset": dataset})
    )
    return folder


def test_check_prepared_names_the_folder_what_it_holds_and_what_was_expected(tmp_path):
    syn = _fake_ucf101(tmp_path / "syn", "synthetic_ucf101")
    assert folders.check_prepared(syn, "synthetic_ucf101", "table1")["version"] == ucf101.FORMAT
    with pytest.raises(folders.DataFolderError) as e:
        folders.check_prepared(syn, "ucf101", "table1")
    msg = str(e.value)
    assert "\n" not in msg
    assert f"--data_dir {syn} holds synthetic_ucf101" in msg and "expected ucf101 for table1" in msg
    raw = synthetic_tacos.generate(tmp_path / "raw.jsonl")
    tacos_prepare.prepare(raw, tmp_path / "tac", dataset="synthetic_tacos")
    with pytest.raises(folders.DataFolderError, match="holds synthetic_tacos .tacos format 1"):
        folders.check_prepared(tmp_path / "tac", "ucf101", "table1")
    with pytest.raises(folders.DataFolderError, match="no such folder"):
        folders.check_prepared(tmp_path / "nope", "ucf101")
    (tmp_path / "begun").mkdir()
    (tmp_path / "begun" / "prepare.json").write_text('{"dataset": "ucf101"}')
    with pytest.raises(folders.DataFolderError, match="rerun the same prepare command"):
        folders.check_prepared(tmp_path / "begun", "ucf101")


def test_table1_refuses_a_synthetic_folder_as_ucf101(tmp_path):
    syn = _fake_ucf101(tmp_path / "syn", "synthetic_ucf101")
    out = tmp_path / "t1.csv"
    proc = _run(
        "reproduce.table1",
        "--dataset=ucf101",
        f"--data_dir={syn}",
        "--nocompare",
        f"--output={out}",
        f"--workdir={tmp_path / 'runs'}",
    )
    line = _one_error_line(proc)
    assert "holds synthetic_ucf101" in line and "expected ucf101 for table1" in line
    assert not out.exists()


# -- 3. concurrent merges keep every row ---------------------------------------------------


def _merge_many(path: str, worker: int, n: int) -> None:
    for i in range(n):
        row = result_row(
            "table1", "lrcn_fc6", f"split{1 + i % 3}", "rgb", f"d{worker}_{i}", i, "r", "smoke"
        )
        update_results(path, [row])


def test_concurrent_merges_keep_every_row(tmp_path):
    path = str(tmp_path / "table1.csv")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_merge_many, args=(path, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    rows = read_rows(path, PRODUCED_COLUMNS)
    assert len(rows) == 160
    assert {r["dataset"] for r in rows} == {f"d{w}_{i}" for w in range(4) for i in range(40)}


# -- 5. one error path -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, says",
    [
        (["--dataset=nope"], "--dataset"),
        (["--set=train.nope=1"], "nope"),
        (["--split=9"], "--split"),
        (["--dataset=ucf101"], "needs --data_dir"),
    ],
)
def test_reproduce_user_errors_are_one_line(tmp_path, args, says):
    proc = _run(
        "reproduce.table1",
        "--nocompare",
        f"--output={tmp_path / 't.csv'}",
        *args,
        env={"LRCN_DATA_DIR": str(tmp_path / "cache")},
    )
    assert says in _one_error_line(proc)


def test_unwritable_output_is_found_before_any_work(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    proc = _run(
        "reproduce.table1",
        "--nocompare",
        f"--output={tmp_path / 'file' / 't.csv'}",
        env={"LRCN_DATA_DIR": str(tmp_path / "cache")},
    )
    assert "--output" in _one_error_line(proc)
    assert not (tmp_path / "cache").exists()  # nothing generated


# -- 6. the comparison finds expected.csv from anywhere ---------------------------------------


def test_compare_runs_from_another_folder_and_fails_loudly_without_expected(tmp_path):
    ok = _run("reproduce.compare", "--produced=", f"--output={tmp_path / 'c.csv'}", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "table1 (paper" in ok.stdout
    bad = _run(
        "reproduce.compare", "--produced=", f"--expected={tmp_path / 'none.csv'}", cwd=tmp_path
    )
    assert "cannot read" in _one_error_line(bad)


# -- 7. compare is strict about what it reads ------------------------------------------------

HEADER = "table,row,setting,metric,dataset,value,run_id,preset\n"


@pytest.mark.parametrize(
    "body, says",
    [
        (
            "table1,lrcn_fc6,split9,rgb,synthetic_ucf101,50,r,smoke\n",
            ":2: unknown setting 'split9'",
        ),
        ("table1,lrcn_fc6,split1,rgb,synthetic_ucf10,50,r,smoke\n", ":2: unknown dataset"),
        ("table1,lrcn_fc9,split1,rgb,synthetic_ucf101,50,r,smoke\n", ":2: unknown row 'lrcn_fc9'"),
        ("table1,lrcn_fc6,split1,rbg,synthetic_ucf101,50,r,smoke\n", ":2: unknown metric 'rbg'"),
        ("", "no rows (a header only)"),
    ],
)
def test_compare_refuses_unknown_keys_and_empty_csvs(tmp_path, body, says):
    produced = tmp_path / "t1.csv"
    produced.write_text(HEADER + body)
    proc = _run("reproduce.compare", f"--produced={produced}", f"--output={tmp_path / 'c.csv'}")
    line = _one_error_line(proc)
    assert str(produced) in line and says in line


def test_compare_accepts_a_byte_order_mark(tmp_path):
    produced = tmp_path / "t1.csv"
    row = "table1,lrcn_fc6,split1,rgb,synthetic_ucf101,50,r,default\n"
    produced.write_bytes(b"\xef\xbb\xbf" + (HEADER + row).encode())
    assert read_rows(produced, PRODUCED_COLUMNS)[0]["table"] == "table1"
    proc = _run("reproduce.compare", f"--produced={produced}", f"--output={tmp_path / 'c.csv'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
