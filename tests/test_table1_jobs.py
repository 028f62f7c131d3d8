"""`--jobs`: Table 1's rows in worker processes (lrcn_tf.jobs), with the results of one process.

- The scheduler's order and dependencies, with fake tasks: a task starts after the ones it
  waits for and gets their values, independent tasks run at once, an error or Ctrl-C stops
  the workers, and a killed parent takes its workers with it.
- `reproduce.table1` with --jobs 1 and --jobs 2 writes the same CSV and bitwise the same
  per-video scores and weights (small settings here; `--preset smoke --split 1` itself, and
  a rerun that reuses the finished rows, in the slow test: about 3 minutes on 2 cores).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lrcn_tf import jobs
from lrcn_tf.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


# -- fake tasks (module level: the workers import them by name) ------------------------------


def _log(folder, name, **fields):
    path = Path(folder) / f"{name}.json"
    path.write_text(json.dumps(dict(pid=os.getpid(), **fields)))


def step(folder, name, *given, meet=None):
    """Records when it ran and what it was given; returns name(given...). With `meet`, waits
    (up to 60 s) for that task to have started too: both then ran at once."""
    begin = time.time()
    _log(folder, f"{name}.started")
    if meet is not None:
        _wait_for(folder, meet, name)
    value = f"{name}({','.join(given)})"
    _log(folder, name, begin=begin, end=time.time(), given=list(given), env=os.environ.get("X"))
    return value


def _wait_for(folder, other, name):
    deadline = time.time() + 60
    while not (Path(folder) / f"{other}.started.json").exists():
        if time.time() > deadline:
            raise TimeoutError(f"{name}: {other} never ran beside it")
        time.sleep(0.02)


def sleep_forever(folder, name):
    _log(folder, f"{name}.started")
    time.sleep(600)


class BadFile(UserError):
    pass


def fail(folder, name, meet):
    _log(folder, f"{name}.started")
    _wait_for(folder, meet, name)  # fails while `meet` runs
    raise BadFile(f"{folder}/{name}: not a shard")


def set_x(value):
    os.environ["X"] = value


def _records(folder):
    return {p.name[: -len(".json")]: json.loads(p.read_text()) for p in Path(folder).glob("*.json")}


def _gone(pid: int, wait: float = 10.0) -> bool:
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie (not yet reaped by a dead parent's reaper) counts as gone
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


# -- the scheduler's logic, without processes --------------------------------------------------


def test_check_names_duplicates_unknown_tasks_and_cycles():
    with pytest.raises(ValueError, match="twice"):
        jobs.check([jobs.Task("a", step), jobs.Task("a", step)])
    with pytest.raises(ValueError, match="unknown"):
        jobs.check([jobs.Task("a", step, (jobs.Result("b"),))])
    with pytest.raises(ValueError, match="cycle"):
        jobs.check([jobs.Task("a", step, after=("b",)), jobs.Task("b", step, after=("a",))])


def test_ready_keeps_list_order_and_waits_for_results_and_after():
    tasks = [
        jobs.Task("pre", step),
        jobs.Task("sf", step, after=("pre",)),
        jobs.Task("fc6", step, kwargs={"init": jobs.Result("sf")}),
        jobs.Task("flow", step),
    ]
    assert tasks[2].needs == {"sf"}
    assert [t.key for t in jobs.ready(tasks, {}, set())] == ["pre", "flow"]
    assert [t.key for t in jobs.ready(tasks, {"pre": 1}, {"pre", "flow"})] == ["sf"]
    assert [t.key for t in jobs.ready(tasks, {"pre": 1, "sf": 2}, {"pre", "sf", "flow"})] == ["fc6"]


def test_can_overlap_only_when_two_tasks_do_not_wait_for_each_other():
    line = [jobs.Task("a", step), jobs.Task("b", step, after=("a",))]
    line.append(jobs.Task("c", step, (jobs.Result("b"),)))
    assert not jobs.can_overlap(line)
    assert not jobs.can_overlap(line[:1])
    assert jobs.can_overlap([*line, jobs.Task("d", step, after=("a",))])  # d beside b
    assert jobs.can_overlap([jobs.Task("a", step), jobs.Task("b", step)])


# -- the scheduler with worker processes -------------------------------------------------------


def test_tasks_run_after_what_they_wait_for_and_independent_ones_at_once(tmp_path):
    f = str(tmp_path)
    tasks = [
        jobs.Task("pre", step, (f, "pre"), {"meet": "flow"}),  # runs beside flow, or times out
        jobs.Task("sf", step, (f, "sf"), after=("pre",)),
        jobs.Task("fc6", step, (f, "fc6", jobs.Result("sf"))),
        jobs.Task("fc7", step, (f, "fc7", jobs.Result("sf"), jobs.Result("flow"))),
        jobs.Task("flow", step, (f, "flow"), {"meet": "pre"}),
    ]
    got = dict(jobs.run(tasks, 2, initializer=set_x, initargs=("from the initializer",)))
    assert got == {
        "pre": "pre()",
        "sf": "sf()",
        "fc6": "fc6(sf())",
        "fc7": "fc7(sf(),flow())",
        "flow": "flow()",
    }
    r = _records(tmp_path)
    for task in tasks:
        for before in task.needs:
            assert r[task.key]["begin"] >= r[before]["end"], (task.key, before)
    assert len({r[k]["pid"] for k in got}) == 2  # two workers, reused
    assert {r[k]["env"] for k in got} == {"from the initializer"}
    assert "X" not in os.environ and "TQDM_DISABLE" not in os.environ


def test_a_failing_task_stops_the_others_and_raises_its_error(tmp_path):
    f = str(tmp_path)
    tasks = [
        jobs.Task("long", sleep_forever, (f, "long")),
        jobs.Task("bad", fail, (f, "bad", "long")),
        jobs.Task("later", step, (f, "later"), after=("bad",)),
    ]
    begin = time.time()
    with pytest.raises(BadFile, match="bad: not a shard"):
        for _ in jobs.run(tasks, 2):
            pass
    assert time.time() - begin < 60
    r = _records(tmp_path)
    assert _gone(r["long.started"]["pid"])
    assert "later.started" not in r


_PARENT = """
import sys
from lrcn_tf import jobs
from tests.test_table1_jobs import sleep_forever
f = sys.argv[1]
tasks = [jobs.Task(k, sleep_forever, (f, k)) for k in ("a", "b")]
try:
    for _ in jobs.run(tasks, 2):
        pass
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_ctrl_c_or_killing_the_parent_ends_the_workers(tmp_path, how):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    deadline = time.time() + 60
    while len(_records(tmp_path)) < 2:
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    pids = [r["pid"] for r in _records(tmp_path).values()]
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole group
    else:
        proc.kill()  # the parent alone, SIGKILL
    out, err = proc.communicate(timeout=60)
    if how == "ctrl-c":
        assert proc.returncode == 130 and "interrupted" in out, err
        assert "Traceback" not in err, err  # the workers ignore it quietly
    assert all(_gone(pid) for pid in pids)


# -- reproduce.table1 --jobs ------------------------------------------------------------------

SMALL = [  # both inputs, the pre-trained CNN stage, an LRCN row, fusion: the rows' shapes
    "--preset=smoke",
    "--split=1",
    "--models=single_frame,lrcn_fc6",
    "--nocompare",
    "--set=train.max_iter=6",
    "--set=train.checkpoint_every=3",
    "--set=train.batch_size=4",
    "--set=pretext_images=64",
    "--set=pretext_train.max_iter=4",
    "--set=pretext_train.stepsize=2",
    "--set=pretext_train.checkpoint_every=2",
]


@pytest.fixture(scope="module")
def small_data(two_class_ucf101):
    return two_class_ucf101


def _table1(args, out: Path, env=None):
    cmd = [sys.executable, "-m", "reproduce.table1", *args]
    cmd += [f"--workdir={out}", f"--output={out / 'table1.csv'}"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)


def _same_results(one: Path, two: Path) -> int:
    """Asserts the two runs wrote the same CSV and, per row, bitwise the same scores and
    weights; returns the number of rows compared."""
    import h5py

    assert (one / "table1.csv").read_text() == (two / "table1.csv").read_text()
    rows = sorted(p.parent.name for p in one.glob("table1-*/scores.npz"))
    assert rows == sorted(p.parent.name for p in two.glob("table1-*/scores.npz"))
    for row in rows:
        a, b = np.load(one / row / "scores.npz"), np.load(two / row / "scores.npz")
        assert a.files == b.files
        for k in a.files:
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), (row, k)

        def arrays(path):
            found = {}
            with h5py.File(path, "r") as h:
                h.visititems(lambda n, o: found.update({n: o[()]} if hasattr(o, "dtype") else {}))
            return found

        wa, wb = arrays(one / row / "final.weights.h5"), arrays(two / row / "final.weights.h5")
        assert wa.keys() == wb.keys() and wa
        assert all(np.array_equal(wa[k], wb[k]) for k in wa), row
    return len(rows)


def test_two_jobs_give_bitwise_the_results_of_one(tmp_path, small_data):
    args = [*SMALL, f"--data_dir={small_data}"]
    one = _table1([*args, "--jobs=1"], tmp_path / "one")
    assert one.returncode == 0, one.stderr[-3000:]
    assert "worker processes" not in one.stdout
    two = _table1([*args, "--jobs=2"], tmp_path / "two")
    assert two.returncode == 0, two.stderr[-3000:]
    assert "--jobs 2: rows train in 2 worker processes" in two.stdout
    assert "evaluate:" not in two.stderr and "split1 lrcn_fc6/rgb:" not in two.stderr  # no bars
    assert _same_results(tmp_path / "one", tmp_path / "two") == 4
    assert (tmp_path / "two" / "table1_fusion_sweep.png").exists()
    lines = [x for x in two.stdout.splitlines() if x.startswith("table1 ") and "split1:" in x]
    assert len(lines) == 6  # 4 rows, 2 fusions, one line each


def test_a_bad_shard_in_a_worker_is_one_error_line(tmp_path, small_data):
    import shutil

    data = tmp_path / "synthetic_ucf101"
    shutil.copytree(small_data, data)
    shard = sorted((data / "shards" / "flow").glob("g08-*.tfrecord"))[0]
    shard.write_bytes(shard.read_bytes()[:100])  # cut short: its index no longer fits
    proc = _table1([*SMALL, f"--data_dir={data}", "--jobs=2"], tmp_path / "out")
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and shard.name in last, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_jobs_with_a_distribution_strategy_is_a_usage_error(tmp_path):
    proc = _table1(
        ["--jobs=2", "--strategy=mirrored"], tmp_path, {"LRCN_DATA_DIR": str(tmp_path / "c")}
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --jobs 2")
    assert not (tmp_path / "c").exists()  # found before any data is made


@pytest.mark.slow
def test_smoke_split1_with_two_jobs_equals_one(tmp_path):
    env = {"LRCN_DATA_DIR": str(tmp_path / "cache")}
    args = ["--preset=smoke", "--split=1", "--nocompare"]
    one = _table1([*args, "--jobs=1"], tmp_path / "one", env)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _table1([*args, "--jobs=2"], tmp_path / "two", env)
    assert two.returncode == 0, two.stderr[-3000:]
    assert _same_results(tmp_path / "one", tmp_path / "two") == 6
    again = _table1([*args, "--jobs=2"], tmp_path / "two", env)  # finished rows are reused
    assert again.returncode == 0, again.stderr[-3000:]
    logs = [p.read_text() for p in (tmp_path / "two").glob("table1-*/log.txt")]
    assert sum("already evaluated" in log for log in logs) == 6
    assert _same_results(tmp_path / "one", tmp_path / "two") == 6
