"""Opt-in (`pytest -m caffe`): the authors' nets at full width, in a Caffe built on this machine.

Makes full-size fixtures (the authors' deploy_singleFrame, deploy_lstm and coco_caption
captioners with their real widths, seeded weights, small batches) with
`tools/caffe_oracle/make_fixtures.py --full` in a temporary folder, then runs the fast parity
tests of converted nets and of the project's models against them. Needs Caffe with pycaffe
(`bash ../shared/caffe_oracle/build.sh /opt/caffe`; $CAFFE_ROOT for another place) and
Debian's /usr/bin/python3 it was built for. Measured: 358 s and 1.7 GB of temporary disk
(before tests/test_table3_caffe.py joined the list: 140 s more when run alone on the same
full-size fixtures).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.caffe

ROOT = Path(__file__).resolve().parents[1]


def _pycaffe() -> Path:
    root = Path(os.environ.get("CAFFE_ROOT", "/opt/caffe"))
    python_dir = root / "src" / "python"
    if not (python_dir / "caffe" / "_caffe.so").exists():
        pytest.skip(
            f"no pycaffe under {root} (build it: bash ../shared/caffe_oracle/build.sh {root}, "
            "or set CAFFE_ROOT)"
        )
    return python_dir


def test_full_size_nets_equal_caffe(tmp_path):
    python_dir = _pycaffe()
    start = time.time()
    env = {**os.environ, "PYTHONPATH": str(python_dir), "GLOG_minloglevel": "2"}
    subprocess.run(
        [
            "/usr/bin/python3",
            str(ROOT / "tools" / "caffe_oracle" / "make_fixtures.py"),
            "--full",
            "--out",
            str(tmp_path),
        ],
        check=True,
        env=env,
        cwd=ROOT,
    )
    made = time.time() - start
    env = {**os.environ, "LRCN_CAFFE_FIXTURES": str(tmp_path), "PYTHONPATH": str(ROOT)}
    # reproduce.table3 --weights caffe too, its end-to-end test included (slow-marked).
    tests = [
        "tests/test_caffe_convert.py",
        "tests/test_caffe_models.py",
        "tests/test_table3_caffe.py",
    ]
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-m",
            "not gpu and not caffe",
            *tests,
            "-k",
            "not errors and not v1",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    print(r.stdout[-3000:], r.stderr[-2000:])
    print(f"full-size fixtures made in {made:.0f} s, checked in {time.time() - start - made:.0f} s")
    assert r.returncode == 0, r.stdout[-3000:]
