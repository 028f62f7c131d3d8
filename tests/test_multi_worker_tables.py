"""`--strategy multi_worker` end to end: two worker processes on 127.0.0.1 ports (the CPU),
TF_CONFIG as on two machines, sharing the run folders and the data cache.

- Table 1 (single_frame, RGB, smoke, with the pre-trained CNN stage), Table 5
  (lstm_dec_crf_prob, smoke) and Table 3 (the captioner of Tables 2/3, short stages) trained
  by two workers give what one process gives with the same global batch, and only the chief
  writes the result CSV, the run folders and the pages.
- Killing a worker mid-training and starting both again resumes from the chief's checkpoint.

Slow (opt in with -m slow): every worker process starts TensorFlow and the gRPC
collectives, and the tests launch eleven processes: about 7 minutes on 2 shared cores.
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.ports import free_ports

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# Dropout off: each replica draws masks for its own rows, so with dropout two workers train
# a run equal in distribution, not in value, to one process's.
TABLE1 = [
    "reproduce.table1",
    "--preset=smoke",
    "--split=1",
    "--inputs=rgb",
    "--models=single_frame",
    "--set=dropout=0",
    "--set=pretext_train.max_iter=20",
]
TABLE5 = ["reproduce.table5", "--preset=smoke", "--decoder=crf_prob", "--set=train.max_iter=200"]


def _launch(args, workdir: Path, cache: Path, log: Path, worker=None):
    """One process of `python -m <args>`; `worker` = (index, ports) makes it a worker."""
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        LRCN_DATA_DIR=str(cache),
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
    )
    env.pop("TF_CONFIG", None)
    cmd = [sys.executable, "-m", *args, f"--workdir={workdir}", f"--output={workdir}/out.csv"]
    cmd.append("--nocompare")
    if worker is not None:
        index, ports = worker
        env["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                "task": {"type": "worker", "index": index},
            }
        )
        cmd.append("--strategy=multi_worker")
    out = open(log, "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait(procs, logs, timeout=900):
    for p, log in zip(procs, logs):
        assert p.wait(timeout=timeout) == 0, Path(log).read_text()[-4000:]


def _single(args, tmp, cache, tag):
    log = tmp / f"{tag}.log"
    _wait([_launch(args, tmp / tag, cache, log)], [log])
    return tmp / tag


def _two(args, tmp, cache, tag):
    ports, logs = free_ports(2), [tmp / f"{tag}-{i}.log" for i in range(2)]
    procs = [_launch(args, tmp / tag, cache, logs[i], (i, ports)) for i in range(2)]
    _wait(procs, logs)
    return tmp / tag, [log.read_text() for log in logs]


def _rows(workdir: Path) -> list[dict]:
    with open(workdir / "out.csv") as f:
        return list(csv.DictReader(f))


def _losses(run_dir: Path) -> np.ndarray:
    text = (run_dir / "log.txt").read_text()
    found = re.findall(r"\((\d+), ([0-9.e+-]+)\)", text.split("losses", 1)[1])
    return np.array([[float(s), float(v)] for s, v in found])


def _only_chief_wrote(workdir: Path, logs: list[str], table: str):
    assert "(chief)" in logs[0] and "not the chief" in logs[1]
    assert f"{table}: trained in" in logs[1] and "the chief wrote the results" in logs[1]
    assert f"{table}: rows in" in logs[0]
    assert not list(workdir.rglob(".worker*-scratch")), "a worker's scratch checkpoints are left"
    assert not list(workdir.rglob("*.tmp"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One embedded-data cache for the module (made by the first run that needs it)."""
    return tmp_path_factory.mktemp("cache")


def _weights(keras_file: Path) -> dict:
    """The arrays of a saved .keras model (its model.weights.h5) or .weights.h5 file, by
    their path inside it."""
    import io
    import zipfile

    import h5py

    blob = keras_file
    if keras_file.suffix == ".keras":
        with zipfile.ZipFile(keras_file) as z:
            blob = io.BytesIO(z.read("model.weights.h5"))
    out = {}

    def keep(name, item):
        if isinstance(item, h5py.Dataset):
            out[name] = item[()]

    with h5py.File(blob, "r") as f:
        f.visititems(keep)
    return out


def test_two_workers_train_table1_and_table5_rows_as_one_process(tmp_path, cache):
    one = _single(TABLE1 + ["--set=train.max_iter=30"], tmp_path, cache, "t1-one")
    two, logs = _two(TABLE1 + ["--set=train.max_iter=30"], tmp_path, cache, "t1-two")
    _only_chief_wrote(two, logs, "table1")
    [a], [b] = _rows(one), _rows(two)
    assert (a["row"], a["setting"], a["metric"]) == (b["row"], b["setting"], b["metric"])
    # The row's run folder records 2 replicas, so its id differs; the scores must not.
    sa = np.load(next(one.glob("table1-*/scores.npz")))
    sb = np.load(next(two.glob("table1-*/scores.npz")))
    diff = float(np.abs(sa["scores"] - sb["scores"]).max())
    print(
        f"\ntable1 single_frame rgb: accuracy {a['value']} (1 process) vs {b['value']} "
        f"(2 workers), largest per-video score difference {diff:.1e}"
    )
    assert diff < 1e-4 and abs(float(a["value"]) - float(b["value"])) < 1e-6
    for folder in two.glob("table1-*"):  # every run folder is the chief's: written once
        assert (folder / "config.json").exists() and (folder / "log.txt").exists()

    one = _single(TABLE5, tmp_path, cache, "t5-one")
    two, logs = _two(TABLE5, tmp_path, cache, "t5-two")
    _only_chief_wrote(two, logs, "table5")
    la = _losses(next(one.glob("table5-*")))
    lb = _losses(next(two.glob("table5-*")))
    wa = _weights(next(one.glob("table5-*/final.keras")))
    wb = _weights(next(two.glob("table5-*/final.keras")))
    assert wa.keys() == wb.keys() and len(wa) > 3
    diff = max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)
    [a], [b] = _rows(one), _rows(two)
    print(
        f"table5 crf_prob, 200 steps: largest relative loss difference "
        f"{float(np.max(np.abs(la[:, 1] - lb[:, 1]) / la[:, 1])):.1e}, largest weight "
        f"difference {diff:.1e}; BLEU-4 {a['value']} (1 process) vs {b['value']} (2 workers)"
    )
    np.testing.assert_array_equal(la[:, 0], lb[:, 0])
    np.testing.assert_allclose(la[:, 1], lb[:, 1], rtol=1e-4)
    assert diff < 1e-3


def test_two_workers_train_the_table3_captioner_as_one_process(tmp_path, cache):
    """Tables 2/3's path: the pre-trained CNN, two caption stages (the words-normalised loss),
    chief-only decoding, pages and Table 4's kit. Ten steps a stage: longer runs amplify the
    rounding (docs/scaling.md)."""
    args = [
        "reproduce.table3",
        "--preset=smoke",
        "--set=encoder.dropout=0",
        "--set=encoder.pretext_train.max_iter=10",
        "--set=stage1.max_iter=10",
        "--set=stage2.max_iter=10",
    ]
    one = _single(args, tmp_path, cache, "t3-one")
    two, logs = _two(args, tmp_path, cache, "t3-two")
    _only_chief_wrote(two, logs, "table3")
    assert len(_rows(two)) == len(_rows(one)) > 10
    assert list(two.glob("out_samples_*.html")) and (two / "table3_captions").is_dir()
    diffs = {}
    for name in ("table3-pretext-*/encoder.weights.h5", "table3-[0-9a-f]*/final.keras"):
        wa, wb = _weights(next(one.glob(name))), _weights(next(two.glob(name)))
        assert wa.keys() == wb.keys() and len(wa) > 3
        diffs[name.split("/")[1]] = max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)
    print(f"\ntable3, 10 steps a stage: largest weight differences {diffs}")
    assert max(diffs.values()) < 1e-4


def test_a_killed_worker_resumes_from_the_chiefs_checkpoint(tmp_path, cache):
    args = TABLE1 + ["--set=train.max_iter=300", "--set=train.checkpoint_every=10"]
    ports, logs = free_ports(2), [tmp_path / f"killed-{i}.log" for i in range(2)]
    procs = [_launch(args, tmp_path / "runs", cache, logs[i], (i, ports)) for i in range(2)]
    import tensorflow as tf

    deadline, latest = time.time() + 900, None
    while time.time() < deadline:
        ckpts = [
            tf.train.latest_checkpoint(str(d))
            for d in (tmp_path / "runs").glob("table1-*/ckpt")
            if "pretext" not in str(d)
        ]
        latest = next((c for c in ckpts if c), None)
        if latest and int(latest.rsplit("-", 1)[1]) >= 30:
            break
        assert all(p.poll() is None for p in procs), logs[0].read_text()[-3000:]
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGKILL)  # a worker dies mid-training
    procs[1].wait()
    procs[0].send_signal(signal.SIGKILL)  # its collectives would wait for the lost worker
    procs[0].wait()
    ckpt_dir = Path(latest).parent
    killed_at = int(tf.train.latest_checkpoint(str(ckpt_dir)).rsplit("-", 1)[1])
    assert 30 <= killed_at < 300
    assert not (tmp_path / "runs" / "out.csv").exists()

    runs, texts = _two(args, tmp_path, cache, "runs")
    log = (ckpt_dir.parent / "log.txt").read_text()
    print(f"\nkilled after the chief's checkpoint of step {killed_at}; restarted: {log[-200:]}")
    assert f"trained to step 300 (resumed from {killed_at})" in log
    assert log.count("trained to step") == 1  # the killed run never got there
    _only_chief_wrote(runs, texts, "table1")
    assert len(_rows(runs)) == 1
