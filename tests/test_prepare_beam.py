"""`prepare --runner beam` (Apache Beam, local runner with 2 worker processes; also the
portable runner with an external worker pool, the cluster runners' worker environment)
writes what `--runner local` (2 worker processes) writes: the sharding, the TFRecord
shards, their indexes, the failure records, the manifest and dataset.json.

Everything is compared byte for byte except the index files (`*.index.npz`): a zip member
carries the time it was written, so those are compared array by array (names, order,
dtypes, shapes, values). The comparison itself is checked on perturbed copies, so a
comparison that sees nothing cannot pass.

The Beam tests need apache-beam (`pip install -e '.[beam,test]'`) and are skipped, with the
reason, without it; `.ci/run` installs it after the main suite and runs this file with
LRCN_REQUIRE_BEAM=1, where a missing Beam is a failure (docs/scaling.md).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lrcn_tf.data.ucf101 import prepare as ucf101_prepare
from lrcn_tf.data.ucf101.index import index_file
from tests.test_ucf101_prepare import BAD, build_release, prepare_command

NO_BEAM = "apache-beam is not installed: pip install -e '.[beam,test]' (.ci/run's beam step)"
KWARGS = dict(min_size=None, videos_per_shard=3, progress=False, workers=2)


def _need_beam():
    """Skips without Beam, unless LRCN_REQUIRE_BEAM=1 (.ci/run's Beam step), where a
    missing Beam fails: a CI step that skips every test must not pass."""
    if os.environ.get("LRCN_REQUIRE_BEAM") == "1":
        import apache_beam  # noqa: F401
    else:
        pytest.importorskip("apache_beam", reason=NO_BEAM)


def _files(root: Path, skip: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not str(p.relative_to(root)).startswith(skip)
    )


def differences(a: Path, b: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """Every way prepared folder `b` differs from `a` (empty: the same outputs). Paths
    starting with one of `skip` are left out (synthetic_ucf101's generated raw/ input)."""
    fa, fb = _files(a, skip), _files(b, skip)
    out = [f"only in {a}: {f}" for f in sorted(set(fa) - set(fb))]
    out += [f"only in {b}: {f}" for f in sorted(set(fb) - set(fa))]
    for f in sorted(set(fa) & set(fb)):
        if f.endswith(".npz"):  # zip members carry a write time: compare the arrays
            with np.load(a / f) as x, np.load(b / f) as y:
                if x.files != y.files:
                    out.append(f"{f}: members {x.files} != {y.files}")
                    continue
                for k in x.files:
                    u, v = x[k], y[k]
                    if u.dtype != v.dtype or u.shape != v.shape or not np.array_equal(u, v):
                        out.append(f"{f}: array {k!r} differs")
        elif (a / f).read_bytes() != (b / f).read_bytes():
            out.append(f"{f}: bytes differ")
    return out


def _check_complete(out: Path, summary: dict) -> None:
    """The folder holds real outputs (so that equal folders are not equally empty)."""
    files = _files(out)
    shards = json.loads((out / "dataset.json").read_text())["shards"]
    assert len(shards) >= 2, shards  # several shards, so the sharding is exercised
    for name, videos in shards.items():
        rows = json.loads((out / "shards" / f"{name}.json").read_text())
        ok = [r for r in rows if r["status"] == "ok"]
        assert [r["video"] for r in ok] == videos
        for m, less in (("rgb", 0), ("flow", 1)):  # one flow image per pair of frames
            record_file = out / "shards" / m / f"{name}.tfrecord"
            assert record_file.stat().st_size > 0 or not videos, record_file
            with np.load(index_file(record_file)) as z:  # the records the file holds
                assert int(z["file_size"]) == record_file.stat().st_size
                assert list(z["videos"]) == videos
                assert list(z["counts"]) == [r["num_frames"] - less for r in ok]
                assert len(z["offsets"]) == sum(z["counts"]) and min(z["lengths"], default=1) > 0
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert len(manifest) == 1 + summary["ok"] + summary["failed"], manifest[:3]
    assert {"prepare.json", "classes.txt", "manifest.csv", "dataset.json"} <= set(files)
    assert sum(f.endswith(".index.npz") for f in files) == 2 * len(shards)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return build_release(tmp_path_factory.mktemp("ucf"))


@pytest.fixture(scope="module")
def local(release, tmp_path_factory):
    _need_beam()  # the comparison below serves the Beam tests only
    out = tmp_path_factory.mktemp("prepared") / "local"
    return out, ucf101_prepare.prepare(*release, out, **KWARGS)


def test_beam_runner_writes_what_the_local_runner_writes(release, local, tmp_path):
    _need_beam()
    from lrcn_tf.data.ucf101 import beam

    # "2 local workers": Beam's default options here are its local runner, 2 processes.
    assert beam.parse_options(None, 2) == [
        "--runner=DirectRunner",
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
    ]
    a_dir, a = local
    b_dir = tmp_path / "beam"
    b = ucf101_prepare.prepare(*release, b_dir, runner="beam", **KWARGS)
    assert (a["ok"], a["failed"]) == (b["ok"], b["failed"]) == (8, len(BAD))
    assert a["failures"] == b["failures"]
    assert sorted(b["failures"]) == sorted(BAD)
    assert all(b["failures"][v].startswith(why) for v, why in BAD.items()), b["failures"]
    _check_complete(a_dir, a)
    _check_complete(b_dir, b)
    assert differences(a_dir, b_dir) == []
    print(
        f"\n{len(_files(a_dir))} files identical; local {a['seconds']:.1f}s, "
        f"beam {b['seconds']:.1f}s"
    )


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _bump_index(path: Path) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    k = next(k for k, v in arrays.items() if v.size > 1 and v.dtype.kind in "iu")
    arrays[k] = arrays[k].copy()
    arrays[k].flat[-1] += 1
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=0) + "\n")


def _with_failure(out: Path) -> Path:
    """A shard's manifest rows that record a failed video."""
    return next(
        p
        for p in sorted((out / "shards").glob("*.json"))
        if any(r["status"] != "ok" for r in json.loads(p.read_text()))
    )


def _failure_reason(rows):
    next(r for r in rows if r["status"] != "ok")["status"] = "changed"


def _move_video(info):
    shards = info["shards"]
    a, b = [n for n, v in shards.items() if v][:2]
    shards[b].insert(0, shards[a].pop())


PERTURBATIONS = {
    "a record byte": lambda d: _flip_byte(next((d / "shards" / "flow").glob("*.tfrecord"))),
    "an index value": lambda d: _bump_index(next((d / "shards" / "rgb").glob("*.npz"))),
    "a failure record": lambda d: _edit_json(_with_failure(d), _failure_reason),
    "the manifest": lambda d: (d / "manifest.csv").write_text(
        (d / "manifest.csv").read_text().replace(",ok", ",ok ", 1)
    ),
    "the sharding": lambda d: _edit_json(d / "dataset.json", _move_video),
    "a missing shard": lambda d: next((d / "shards" / "rgb").glob("*.tfrecord")).unlink(),
    "an extra file": lambda d: (d / "shards" / "stray.tmp").write_bytes(b""),
}


@pytest.mark.parametrize("what", sorted(PERTURBATIONS))
def test_the_comparison_sees_a_changed_output(local, tmp_path, what):
    """A copy of the local output equals it; a copy with one change does not."""
    a_dir, _ = local
    copy = tmp_path / "copy"
    shutil.copytree(a_dir, copy)
    assert differences(a_dir, copy) == []
    PERTURBATIONS[what](copy)
    found = differences(a_dir, copy)
    assert len(found) == 1, found


def test_the_comparison_ignores_only_the_index_time_stamps(local, tmp_path):
    """An index whose zip members carry another time is the same index."""
    a_dir, _ = local
    copy = tmp_path / "copy"
    shutil.copytree(a_dir, copy)
    path = next((copy / "shards" / "rgb").glob("*.npz"))
    with zipfile.ZipFile(path) as z:
        members = [(i, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for info, data in members:
            info.date_time = (1980, 1, 1, 0, 0, 0)
            z.writestr(info, data)
    assert path.read_bytes() != (a_dir / path.relative_to(copy)).read_bytes()
    assert differences(a_dir, copy) == []


def _cli(out: Path, runner: str) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        "-m",
        "lrcn_tf.prepare",
        "--dataset=synthetic_ucf101",
        "--num_classes=2",
        "--num_groups=3",
        "--videos_per_shard=2",
        "--workers=2",
        f"--runner={runner}",
        f"--out={out}",
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def test_beam_cli_on_synthetic_ucf101(tmp_path):
    """The documented command, `python -m lrcn_tf.prepare ... --runner beam --workers 2`, on
    the synthetic dataset: the same outputs as `--runner local --workers 2`."""
    _need_beam()
    runs = {r: _cli(tmp_path / r, r) for r in ("local", "beam")}
    for r, p in runs.items():
        assert p.returncode == 0, (r, p.stderr[-2000:])
    local, beam = tmp_path / "local", tmp_path / "beam"
    info = json.loads((local / "dataset.json").read_text())
    assert len(info["shards"]) >= 2 and len(info["videos"]) >= 6, info["shards"]
    _check_complete(local, {"ok": len(info["videos"]), "failed": 0})
    assert differences(local, beam, skip=("raw/",)) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_beam_on_a_portable_runner_with_an_external_worker_pool(release, local, tmp_path):
    """The environment of docs/scaling.md's Flink and Spark commands (a Beam worker pool that
    starts the SDK workers where lrcn-tf is installed), with Beam's embedded portable job
    server in place of the cluster: the same outputs as the local runner."""
    _need_beam()
    port = _free_port()
    env = dict(os.environ)  # the pool starts its workers with the `python` on its PATH
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    log = open(tmp_path / "pool.log", "w")
    pool = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "apache_beam.runners.worker.worker_pool_main",
            f"--service_port={port}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 120
        while True:
            with socket.socket() as s:
                if s.connect_ex(("localhost", port)) == 0:
                    break
            assert pool.poll() is None and time.time() < deadline, "the worker pool did not start"
            time.sleep(0.5)
        out = tmp_path / "portable"
        r = subprocess.run(
            prepare_command(
                release,
                out,
                "--videos_per_shard=3",
                "--workers=2",
                "--allow_failures",
                "--runner=beam",
                "--beam_options=--runner=PortableRunner --job_endpoint=embed "
                f"--environment_type=EXTERNAL --environment_config=localhost:{port}",
            ),
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, r.stderr[-3000:]
    finally:
        pool.terminate()
        pool.wait(timeout=60)
        log.close()
    assert "Starting worker" in (tmp_path / "pool.log").read_text()  # it ran the work
    a_dir, a = local
    _check_complete(out, a)
    assert differences(a_dir, out) == []


def test_beam_runner_errors_are_one_line(release, tmp_path):
    args = prepare_command(release, tmp_path / "out", "--runner=beam", "--workers=1")
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


@pytest.mark.parametrize(
    "options, why",
    [
        ("--flink_mastr=HOST:8081", "unknown option(s) --flink_mastr"),
        ("--direct_num_workers=two", "invalid int value: 'two'"),
        ("--runner=NoSuchRunner", "NoSuchRunner"),
    ],
)
def test_bad_beam_options_are_refused_before_any_work(options, why):
    """A misspelt option is an error, not Beam's warning and a run on another runner."""
    _need_beam()
    from lrcn_tf.data.ucf101 import beam

    with pytest.raises(ucf101_prepare.PrepareError) as e:
        beam.pipeline(beam.parse_options(options, 2))
    assert str(e.value).startswith(f"--beam_options {options!r}: ") and why in str(e.value)
