"""`--strategy multi_worker` without launching a cluster (default suite, seconds): TF_CONFIG
checks and their one-line errors, who is the chief, a non-chief run folder that writes
nothing, the Table 1 pipeline's per-worker rows, and the global-batch loss on two replicas.
The two-process runs of the tables are in tests/test_multi_worker_tables.py (slow)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lrcn_tf import runtime
from lrcn_tf.training import distributed

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "cluster": {"worker": ["host1:2222", "host2:2222"]},
    "task": {"type": "worker", "index": 1},
}


def _env(spec) -> dict:
    return {"TF_CONFIG": spec if isinstance(spec, str) else json.dumps(spec)}


@pytest.mark.parametrize(
    "spec,message",
    [
        (None, "TF_CONFIG is not set"),
        ("", "TF_CONFIG is not set"),
        ("{cluster: worker}", "TF_CONFIG is not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"task": {"type": "worker", "index": 0}}, 'has no "cluster"'),
        ({"cluster": {"worker": "host1:2222"}, "task": GOOD["task"]}, "list of"),
        ({"cluster": {"worker": ["host1"]}, "task": GOOD["task"]}, "list of"),
        ({"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": GOOD["task"]}, '"ps" is not used'),
        ({"cluster": GOOD["cluster"]}, 'has no "task"'),
        ({**GOOD, "task": {"type": "chief", "index": 0}}, 'task type "chief" is not in'),
        ({**GOOD, "task": {"type": "worker", "index": 2}}, "task index 2 is not one of the 2"),
        ({**GOOD, "task": {"type": "worker", "index": "0"}}, "task index '0'"),
    ],
)
def test_tf_config_errors_are_one_line_naming_the_flag(spec, message):
    env = {} if spec is None else _env(spec)
    with pytest.raises(distributed.ClusterError, match=message) as e:
        distributed.cluster_from_env(env)
    text = str(e.value)
    assert "\n" not in text and text.startswith("--strategy multi_worker: TF_CONFIG")


def test_the_chief_is_the_chief_task_or_else_worker_0():
    assert distributed.cluster_from_env(_env(GOOD)) == GOOD
    assert not distributed.chief_of(GOOD)
    assert distributed.chief_of({**GOOD, "task": {"type": "worker", "index": 0}})
    with_chief = {"cluster": {"chief": ["c:1"], "worker": ["w:1"]}}
    assert distributed.chief_of({**with_chief, "task": {"type": "chief", "index": 0}})
    assert not distributed.chief_of({**with_chief, "task": {"type": "worker", "index": 0}})


def test_without_a_cluster_the_helpers_do_nothing():
    assert distributed.build("none") is None
    assert distributed.is_chief(None) and not distributed.is_multi_worker(None)
    assert distributed.worker_index(None) == 0
    distributed.barrier(None)
    assert distributed.chief_decides(None, True) and not distributed.chief_decides(None, False)
    with pytest.raises(ValueError, match="--strategy ring"):
        distributed.build("ring")


@pytest.mark.parametrize(
    "table,tf_config,message",
    [
        ("table1", None, "error: --strategy multi_worker: TF_CONFIG is not set"),
        ("table3", "{oops", "error: --strategy multi_worker: TF_CONFIG is not JSON"),
    ],
)
def test_the_tables_say_what_is_wrong_with_tf_config(tmp_path, table, tf_config, message):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    if tf_config is not None:
        env["TF_CONFIG"] = tf_config
    env.update(PYTHONPATH=str(ROOT), LRCN_DATA_DIR=str(tmp_path / "cache"))
    res = subprocess.run(
        [sys.executable, "-m", f"reproduce.{table}", "--strategy", "multi_worker"]
        + [f"--workdir={tmp_path / 'runs'}", f"--output={tmp_path / 'out.csv'}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(message), res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


def test_a_non_chief_run_folder_writes_nothing(tmp_path):
    chief = runtime.Run(tmp_path, "t", {"a": 1})
    chief.log("hello")
    runtime.set_chief(False)
    try:
        other = runtime.Run(tmp_path / "elsewhere", "t", {"a": 1})
        other.log("not written")
        path = other.path("ckpt", "x.txt")
        assert other.id == chief.id and other.resumed is False
        assert not (tmp_path / "elsewhere").exists() and not path.parent.exists()
        again = runtime.Run(tmp_path, "t", {"a": 1})  # the chief's folder: read, not written
        assert again.resumed
    finally:
        runtime.set_chief(True)
    assert "not written" not in (chief.dir / "log.txt").read_text()


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    from tests.conftest import tiny_ucf101

    return tiny_ucf101(tmp_path_factory, num_groups=25)


@pytest.mark.parametrize("kind", ["frames", "clips"])
def test_each_worker_decodes_its_rows_of_the_same_global_batches(ucf, kind):
    from lrcn_tf.data.ucf101 import pipeline as up

    make = up.train_frames if kind == "frames" else up.train_clips
    extra = {} if kind == "frames" else {"clip_length": 4}
    kw = dict(batch_size=6, seed=3, normalised=False, crop_on_host=False, **extra)
    whole = list(make(ucf, 1, "rgb", **kw).take(3).as_numpy_iterator())
    parts = [
        list(make(ucf, 1, "rgb", shard=(i, 3), **kw).take(3).as_numpy_iterator()) for i in range(3)
    ]
    for b, batch in enumerate(whole):
        assert parts[0][b][0].shape[0] == 2
        for field, value in enumerate(batch):
            joined = np.concatenate([parts[i][b][field] for i in range(3)])
            np.testing.assert_array_equal(joined, value)
    with pytest.raises(ValueError, match="does not split in 4"):
        make(ucf, 1, "rgb", shard=(0, 4), **kw)


def test_two_replicas_train_on_the_global_batch_as_one_device(tmp_path):
    """Two logical CPU devices (MirroredStrategy, a fresh process): a pipeline that reads
    each replica's rows, and a words-normalised loss whose halves hold different numbers of
    words, train what one device trains; the mean of the halves' own losses would not."""
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from lrcn_tf.configs.common import TrainConfig
        from lrcn_tf.training import trainer

        rng = np.random.default_rng(0)
        x = rng.normal(size=(8, 5)).astype("float32")
        y = rng.normal(size=(8, 3)).astype("float32")
        w = np.ones((8, 3), "float32"); w[4:, 1:] = 0  # second half: a third of the "words"

        def build():
            keras.utils.set_random_seed(1)
            return keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])

        def terms(model, batch, training):
            xb, yb, wb = batch
            return tf.reduce_sum(tf.square(model(xb) - yb) * wb), tf.reduce_sum(wb)

        def loss_fn(model, batch, training):
            total, count = terms(model, batch, training)
            return total / tf.maximum(count, 1.0)

        loss_fn.terms = terms

        def naive(model, batch, training):  # no terms: the mean of the replicas' ratios
            return loss_fn(model, batch, training)

        def sharded(shard):
            rows = slice(None) if shard is None else slice(shard[0] * 8 // shard[1], (shard[0] + 1) * 8 // shard[1])
            return tf.data.Dataset.from_tensors((x[rows], y[rows], w[rows]))

        cfg = TrainConfig(base_lr=0.1, max_iter=5, stepsize=100, batch_size=8, checkpoint_every=5)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        runs = {{}}
        for name, fn, data, s in [("one", loss_fn, sharded, None), ("two", loss_fn, sharded, strategy),
                                  ("naive", naive, sharded, strategy)]:
            with s.scope() if s else tf.init_scope():
                model = build()
            trainer.fit(model, data, fn, cfg, "{tmp_path}/" + name, strategy=s)
            runs[name] = model.get_weights()
        for a, b in zip(runs["one"], runs["two"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        gap = max(float(np.abs(a - b).max()) for a, b in zip(runs["one"], runs["naive"]))
        assert gap > 1e-3, gap
        try:
            trainer.shard_input(sharded, strategy, 7)
        except ValueError as e:
            assert "does not split over 2 replicas" in str(e)
        else:
            raise AssertionError("a batch of 7 split over 2 replicas")
        print("GLOBAL_BATCH_OK", gap)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    res = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "GLOBAL_BATCH_OK" in res.stdout, res.stderr[-3000:]
