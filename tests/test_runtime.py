import json

import keras
import numpy as np
import pytest

from lrcn_tf import runtime


def test_data_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LRCN_DATA_DIR", str(tmp_path / "cache"))
    assert runtime.data_dir() == tmp_path / "cache"
    monkeypatch.delenv("LRCN_DATA_DIR")
    assert str(runtime.data_dir()).endswith(".cache/lrcn_tf")


def test_precision_auto_is_float32_on_cpu_and_bad_mode_is_named():
    try:
        assert runtime.configure_precision("auto") == "float32"
        assert runtime.configure_precision("mixed_bfloat16") == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().compute_dtype == "bfloat16"
    finally:
        runtime.configure_precision("off")
    with pytest.raises(ValueError, match="--mixed_precision 'fp8'"):
        runtime.configure_precision("fp8")


def test_seeding_repeats_random_draws():
    runtime.seed_everything(3, deterministic=False)
    a = keras.random.uniform((4,), seed=None), np.random.rand(3)
    runtime.seed_everything(3, deterministic=False)
    b = keras.random.uniform((4,), seed=None), np.random.rand(3)
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    np.testing.assert_array_equal(a[1], b[1])


def test_run_folder_is_stable_per_config_and_records_everything(tmp_path):
    run = runtime.Run(tmp_path, "table1", {"lr": 0.1})
    run.log("hello %d", 7)
    assert not run.resumed
    assert json.loads((run.dir / "config.json").read_text()) == {"lr": 0.1}
    assert "tensorflow" in json.loads((run.dir / "versions.json").read_text())
    assert (run.dir / "commit.txt").read_text().strip()
    assert "hello 7" in (run.dir / "log.txt").read_text()
    again = runtime.Run(tmp_path, "table1", {"lr": 0.1})
    assert again.id == run.id and again.resumed
    assert runtime.Run(tmp_path, "table1", {"lr": 0.2}).id != run.id


def test_write_text_atomic_leaves_no_temp(tmp_path):
    runtime.write_text_atomic(tmp_path / "a" / "b.csv", "x\n")
    assert (tmp_path / "a" / "b.csv").read_text() == "x\n"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.csv"]
