"""trainer.fit across machines: two worker processes on 127.0.0.1 ports under
MultiWorkerMirroredStrategy (TF_CONFIG) train what one process trains with the same global
batch, and a run whose worker is killed resumes from the chief's checkpoint on restart.

Slow (opt in with -m slow): each worker process starts TensorFlow and the gRPC collectives,
about a minute per launch on 2 shared cores, and the test launches six processes.
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

from tests.ports import free_ports

ROOT = Path(__file__).resolve().parents[1]


def _train(out: str, steps: int, ckpt: str, index: int, ports: list[int]) -> None:
    """One worker (or the single process when `ports` is empty): a tiny regression model,
    one global batch of 8 repeated, Caffe SGD; the chief saves the final weights to `out`."""
    if ports:
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        os.environ["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
    import contextlib

    import keras
    import tensorflow as tf

    from lrcn_tf.configs.common import TrainConfig
    from lrcn_tf.training.trainer import fit

    strategy = tf.distribute.MultiWorkerMirroredStrategy() if ports else None
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5)).astype("float32")
    y = rng.normal(size=(8, 3)).astype("float32")
    data = tf.data.Dataset.from_tensors((x, y))  # the global batch; fit repeats it
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = data.with_options(options)
    with strategy.scope() if strategy else contextlib.nullcontext():
        keras.utils.set_random_seed(1)
        model = keras.Sequential(
            [keras.Input((5,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(3)]
        )

    def loss_fn(model, batch, training):
        xb, yb = batch
        return tf.reduce_mean(tf.square(model(xb, training=training) - yb))

    cfg = TrainConfig(
        base_lr=0.05, max_iter=steps, stepsize=1000, batch_size=8, checkpoint_every=1, log_every=1
    )
    res = fit(model, data, loss_fn, cfg, ckpt, strategy=strategy)
    if index == 0:
        weights = {f"w{i}": v.numpy() for i, v in enumerate(model.trainable_variables)}
        np.savez(out, resumed=res["resumed_from"], **weights)


def _launch(tmp, steps, ckpt, ports, index, tag):
    args = [str(tmp / f"{tag}.npz"), str(steps), str(ckpt), str(index), json.dumps(ports)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    log = open(tmp / f"{tag}-{index}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_multi_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _two_workers(tmp, steps, ckpt, tag, timeout=900):
    ports = free_ports(2)
    procs = [_launch(tmp, steps, ckpt, ports, i, tag) for i in range(2)]
    for i, p in enumerate(procs):
        assert p.wait(timeout=timeout) == 0, (tmp / f"{tag}-{i}.log").read_text()[-3000:]
    return np.load(tmp / f"{tag}.npz")


def _single(tmp, steps, tag):
    p = _launch(tmp, steps, tmp / f"{tag}-ckpt", [], 0, tag)
    assert p.wait(timeout=900) == 0, (tmp / f"{tag}-0.log").read_text()[-3000:]
    return np.load(tmp / f"{tag}.npz")


def _close(a, b):
    keys = [k for k in a.files if k.startswith("w")]
    for k in keys:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
    return max(float(np.abs(a[k] - b[k]).max()) for k in keys)


@pytest.mark.slow
def test_two_workers_train_what_one_trains_and_resume_after_a_kill(tmp_path):
    steps = 12
    one = _single(tmp_path, steps, "single")
    two = _two_workers(tmp_path, steps, tmp_path / "mw-ckpt", "two")
    print(f"\n2 workers vs 1 after {steps} steps: max |weight diff| {_close(one, two):.2e}")
    assert int(two["resumed"]) == 0

    # Kill worker 1 mid-run (the chief has written some checkpoints), then restart both.
    ckpt = tmp_path / "killed-ckpt"
    ports = free_ports(2)
    procs = [_launch(tmp_path, 100000, ckpt, ports, i, "killed") for i in range(2)]
    deadline = time.time() + 900
    import tensorflow as tf

    while time.time() < deadline:
        latest = tf.train.latest_checkpoint(str(ckpt))
        if latest and int(latest.rsplit("-", 1)[1]) >= 3:
            break
        assert all(p.poll() is None for p in procs), (tmp_path / "killed-0.log").read_text()
        time.sleep(0.5)
    procs[1].send_signal(signal.SIGKILL)
    procs[1].wait()
    procs[0].send_signal(signal.SIGKILL)  # its collectives would wait for the lost worker
    procs[0].wait()
    killed_at = int(tf.train.latest_checkpoint(str(ckpt)).rsplit("-", 1)[1])
    total = killed_at + 5
    resumed = _two_workers(tmp_path, total, ckpt, "resumed")
    assert int(resumed["resumed"]) == killed_at
    reference = _single(tmp_path, total, "reference")
    print(
        f"killed at step {killed_at}, resumed to {total}: max |diff| vs one process "
        f"{_close(reference, resumed):.2e}"
    )


if __name__ == "__main__":
    out, steps, ckpt, index, ports = sys.argv[1:]
    _train(out, int(steps), ckpt, int(index), json.loads(ports))
