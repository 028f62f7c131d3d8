"""`prepare --runner beam` (Apache Beam, local runner with 2 worker processes) writes what
`--runner local` writes: shards, indexes, failure records, manifest, dataset.json.

Needs apache-beam (`pip install -e .[beam,test]`); skipped without it (the base install
has no Beam: it pins protobuf < 7, pillow < 13 and python-dateutil < 3, see docs/scaling.md).
"""

import filecmp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lrcn_tf.data.ucf101 import prepare as ucf101_prepare
from tests.test_ucf101_prepare import BAD, build_release


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return build_release(tmp_path_factory.mktemp("ucf"))


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_beam_runner_writes_what_the_local_runner_writes(release, tmp_path):
    pytest.importorskip("apache_beam")
    local, beam = tmp_path / "local", tmp_path / "beam"
    kwargs = dict(min_size=None, videos_per_shard=3, progress=False, workers=2)
    a = ucf101_prepare.prepare(*release, local, **kwargs)
    b = ucf101_prepare.prepare(*release, beam, runner="beam", **kwargs)
    assert (a["ok"], a["failed"]) == (b["ok"], b["failed"]) == (8, len(BAD))
    assert a["failures"] == b["failures"]
    files = _files(local)
    assert files == _files(beam)
    assert any(f.endswith(".tfrecord") for f in files) and "manifest.csv" in files
    for f in files:
        if f.endswith(".npz"):  # zip members carry a time stamp: compare the arrays
            x, y = np.load(local / f), np.load(beam / f)
            assert sorted(x.files) == sorted(y.files), f
            for k in x.files:
                np.testing.assert_array_equal(x[k], y[k], err_msg=f)
        else:
            assert filecmp.cmp(local / f, beam / f, shallow=False), f
    print(f"\n{len(files)} files identical; local {a['seconds']:.1f}s, beam {b['seconds']:.1f}s")


def test_beam_runner_errors_are_one_line(release, tmp_path):
    args = [
        sys.executable,
        "-m",
        "lrcn_tf.prepare",
        "--dataset=ucf101",
        f"--src={release[0]}",
        f"--splits={release[1]}",
        f"--out={tmp_path / 'out'}",
        "--min_size=none",
        "--runner=beam",
        "--workers=1",
    ]
    try:
        import apache_beam  # noqa: F401

        args.append("--beam_options=--runner=NoSuchRunner")
        expect = "--beam_options"
    except ImportError:
        expect = "pip install 'lrcn-tf[beam]'"
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expect in last, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
