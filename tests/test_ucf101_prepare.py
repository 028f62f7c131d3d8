"""lrcn_tf.prepare on real-format fixtures: tiny XVID AVIs in the release layout, CRLF lists,
the label traps, bad videos, resuming, and clips read back from the shards."""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import av
import numpy as np
import pytest

from lrcn_tf import prepare as prepare_cli
from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.data.ucf101 import pipeline as up
from lrcn_tf.data.ucf101 import prepare as ucf101_prepare
from lrcn_tf.data.ucf101 import shards
from lrcn_tf.data.video import write_video

CLASSES = ["ApplyEyeMakeup", "Hammering", "HammerThrow", "HandstandPushups"]  # classInd order
SPELLING = {"HandstandPushups": "HandStandPushups"}
LENGTHS = {"ApplyEyeMakeup": 20, "Hammering": 10, "HammerThrow": 17, "HandstandPushups": 24}
H, W = 48, 64
BAD = {  # listed videos that must fail, and the start of their manifest status
    "Hammering/v_Hammering_g01_c02.avi": "empty file",
    "Hammering/v_Hammering_g08_c02.avi": "unreadable",
    "HammerThrow/v_HammerThrow_g01_c02.avi": "missing",
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi": "truncated",
}


def _name(cls, g, c):
    return f"{cls}/v_{SPELLING.get(cls, cls)}_g{g:02d}_c{c:02d}.avi"


def _frames(n):
    """Frame i: background brightness 40 + 8 i (so clips can be checked for consecutive
    frames) and a textured dark square moving 2 px right per frame (so flow has motion)."""
    f = np.empty((n, H, W, 3), np.uint8)
    tex = (np.indices((12, 12)).sum(0) % 4 * 20).astype(np.uint8)[..., None]
    for i in range(n):
        f[i] = 40 + 8 * i
        f[i, 18:30, 4 + 2 * i : 16 + 2 * i] = tex
    return f


def build_release(root: Path) -> tuple[Path, Path]:
    """UCF-101/ and ucfTrainTestlist/ (split 1: test g01, train g08) with 4 bad videos."""
    src, lists = root / "UCF-101", root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    good = [_name(c, g, 1) for c in CLASSES for g in (1, 8)]
    for name in good:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        write_video(src / name, _frames(LENGTHS[name.split("/")[0]]))
    (src / "Hammering/v_Hammering_g01_c02.avi").write_bytes(b"")
    (src / "Hammering/v_Hammering_g08_c02.avi").write_bytes(np.random.default_rng(0).bytes(4000))
    data = (src / _name("HandstandPushups", 1, 1)).read_bytes()  # 24 frames; the AVI header
    (src / "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi").write_bytes(
        data[: len(data) * 8 // 10]
    )  # ~6 KB
    everything = sorted(good + list(BAD))
    crlf = "".join
    (lists / "classInd.txt").write_bytes(
        crlf(f"{i} {c}\r\n" for i, c in enumerate(CLASSES, 1)).encode()
    )
    train = [n for n in everything if "_g08_" in n]
    test = [n for n in everything if "_g01_" in n]
    label = {c.lower(): i + 1 for i, c in enumerate(CLASSES)}
    (lists / "trainlist01.txt").write_bytes(
        crlf(f"{n} {label[n.split('/')[0].lower()]}\r\n" for n in train).encode()
    )
    (lists / "testlist01.txt").write_bytes(crlf(f"{n}\r\n" for n in test).encode())
    return src, lists


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return build_release(tmp_path_factory.mktemp("ucf"))


@pytest.fixture(scope="module")
def prepared(release, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "out"
    summary = ucf101_prepare.prepare(
        *release, out, min_size=None, videos_per_shard=3, progress=False
    )
    return out, summary


def test_fixture_videos_are_xvid_avis(release):
    with av.open(str(release[0] / _name("HandstandPushups", 1, 1))) as c:
        s = c.streams.video[0]
        assert c.format.name == "avi" and s.codec_context.codec_tag == "XVID"
        assert (s.codec_context.name, s.frames, s.width, s.height) == ("mpeg4", 24, W, H)


def test_manifest_labels_statuses_and_classes(release, prepared):
    out, summary = prepared
    assert (out / "classes.txt").read_text().split() == CLASSES
    header = (out / "manifest.csv").read_text().splitlines()[0]
    assert header == "video,label,class_name,num_frames,status"
    rows = {r["video"]: r for r in ucf101.read_manifest(out / "manifest.csv")}
    assert len(rows) == 12 and summary["failed"] == 4 and summary["ok"] == 8
    for name, reason in BAD.items():
        assert rows[name]["status"].startswith(reason), rows[name]
    hand = rows["HandstandPushups/v_HandStandPushups_g01_c01.avi"]
    assert (hand["label"], hand["class_name"], hand["num_frames"], hand["status"]) == (
        3,
        "HandstandPushups",
        24,
        "ok",
    )
    assert rows["HammerThrow/v_HammerThrow_g08_c01.avi"]["label"] == 2  # after Hammering
    assert rows["Hammering/v_Hammering_g08_c01.avi"]["num_frames"] == 10
    info = ucf101.load_info(out)
    assert (
        info.frame_size == (H, W)
        and info.crop_size == int(H * 227 / 240)
        and info.flow == "farneback"
    )
    listed = (release[1] / "testlist01.txt").read_text().split()
    ok_test = [v.name for v in ucf101.split_videos(out, 1, "test")]
    assert ok_test == [n for n in listed if n not in BAD]  # the list's order, ok videos only


def prepare_command(release, out, *flags: str) -> list[str]:
    """`python -m lrcn_tf.prepare` on the test release (`build_release`) into `out`, frames
    at their own size, with `flags` added."""
    return [
        sys.executable,
        "-m",
        "lrcn_tf.prepare",
        "--dataset=ucf101",
        f"--src={release[0]}",
        f"--splits={release[1]}",
        f"--out={out}",
        "--min_size=none",
        *flags,
    ]


def test_cli_reports_failures_in_its_exit_status(release, tmp_path):
    cmd = prepare_command(release, tmp_path / "o", "--workers=1")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 1, first.stderr[-2000:]
    assert "8 of 12 videos ok, 4 failed" in first.stdout and "1 x missing" in first.stdout


def _flags(**kw):
    base = dict(
        dataset="ucf101",
        src=None,
        splits=None,
        out=None,
        fps=None,
        flow="farneback",
        workers=1,
        videos_per_shard=64,
        jpeg_quality=90,
        min_size="none",
        allow_failures=False,
        num_classes=12,
        num_groups=25,
        synthetic_seed=0,
    )
    return types.SimpleNamespace(**{**base, **kw})


def test_allow_failures_and_bad_flags(release, prepared, capsys):
    out = prepared[0]  # already finished: this only checks the exit status logic
    f = _flags(src=str(release[0]), splits=str(release[1]), out=str(out), videos_per_shard=3)
    assert prepare_cli.run_ucf101(f) == 1
    assert prepare_cli.run_ucf101(_flags(**{**vars(f), "allow_failures": True})) == 0
    # A rerun retries the failed videos: only the shards that hold one are rebuilt.
    sides = [json.loads(p.read_text()) for p in (out / "shards").glob("*.json")]
    retried = sum(len(rows) for rows in sides if any(r["status"] != "ok" for r in rows))
    assert 0 < retried and f"({retried} processed now" in capsys.readouterr().out
    with pytest.raises(ucf101_prepare.PrepareError, match="needs --src"):
        prepare_cli.run_ucf101(_flags(out=str(out)))
    with pytest.raises(ucf101_prepare.PrepareError, match="--min_size '240'"):
        prepare_cli.run_ucf101(_flags(**{**vars(f), "min_size": "240"}))
    with pytest.raises(ucf101_prepare.PrepareError, match="num_classes 3"):
        prepare_cli.run_ucf101(_flags(dataset="synthetic_ucf101", out=str(out), num_classes=3))


def test_resume_after_an_interrupted_prepare(release, prepared, tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = []
    real = ucf101_prepare.write_shard

    def crash_on_second(task):
        if calls:  # half-written files, as a kill mid-write leaves them, then the crash
            for m in ("rgb", "flow"):
                tmp = ucf101.shard_file(task.out, m, task.name).with_suffix(".tfrecord.4242.tmp")
                tmp.write_bytes(b"half a shard")
            raise KeyboardInterrupt
        calls.append(task.name)
        return real(task)

    monkeypatch.setattr(ucf101_prepare, "write_shard", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        ucf101_prepare.prepare(*release, out, min_size=None, videos_per_shard=3, progress=False)
    with pytest.raises(ucf101.UCF101FormatError, match="not a finished"):
        ucf101.load_info(out)  # readers refuse an unfinished folder
    finished = sorted(p.stem for p in (out / "shards" / "rgb").glob("*.tfrecord"))
    assert finished == calls and len(list((out / "shards").glob("**/*.tmp"))) == 2
    first = ucf101.shard_file(out, "flow", calls[0])
    mtime = first.stat().st_mtime_ns
    assert shards.shard_done(out, calls[0], "farneback")
    monkeypatch.setattr(ucf101_prepare, "write_shard", real)
    summary = ucf101_prepare.prepare(
        *release, out, min_size=None, videos_per_shard=3, progress=False
    )
    first_rows = json.loads(shards.sidecar(out, calls[0]).read_text())
    # The finished shard is skipped, unless it holds a failed video (a rerun retries those).
    first_ok = all(r["status"] == "ok" for r in first_rows)
    assert summary["videos_done"] == 12 - (len(first_rows) if first_ok else 0)
    assert (first.stat().st_mtime_ns == mtime) == first_ok
    assert not list((out / "shards").glob("**/*.tmp"))
    assert (out / "manifest.csv").read_text() == (prepared[0] / "manifest.csv").read_text()
    with pytest.raises(ucf101_prepare.PrepareError, match="other options"):
        ucf101_prepare.prepare(
            *release, out, min_size=None, videos_per_shard=3, flow="none", progress=False
        )


def test_partly_renamed_shard_is_not_done(tmp_path):
    shards.sidecar(tmp_path, "g01-00000-of-00001").parent.mkdir(parents=True)
    shards.sidecar(tmp_path, "g01-00000-of-00001").write_text("[]")
    flow = ucf101.shard_file(tmp_path, "flow", "g01-00000-of-00001")
    flow.parent.mkdir(parents=True)
    flow.write_bytes(b"")
    assert not shards.shard_done(tmp_path, "g01-00000-of-00001", "farneback")  # rgb missing
    assert not shards.shard_done(tmp_path, "g01-00000-of-00001", "none")


def test_training_clips_are_consecutive_frames(prepared):
    out, _ = prepared
    ds = up.train_clips(out, 1, "rgb", batch_size=1, repeat=False, seed=3)
    lengths = []
    for x, y in ds:
        frames = x.numpy()[0] + np.array(up.RGB_MEAN, np.float32)
        steps = np.round(np.diff(frames.mean(axis=(1, 2, 3))) / 8)
        n = LENGTHS[CLASSES[int(y[0])]]
        # 16 consecutive frames; a 10-frame video repeats its last frame.
        expected = [1] * min(15, n - 1) + [0] * max(0, 16 - n)
        np.testing.assert_array_equal(steps, expected)
        lengths.append(n)
    assert sorted(lengths) == sorted(LENGTHS.values())  # one clip per training video


def test_test_clips_follow_the_protocol(prepared):
    out, _ = prepared
    videos = ucf101.split_videos(out, 1, "test")
    for modality, minus in (("rgb", 0), ("flow", 1)):
        seen = {}
        for e in up.test_clips(out, 1, modality, crops="ten"):
            assert e["clips"].shape == (10, 16, 45, 45, 3)
            seen.setdefault(int(e["video_index"]), []).append(int(e["clip_index"]))
        for i, v in enumerate(videos):
            n = v.num_frames - minus
            assert seen[i] == list(range(len(up.test_clip_starts(n)))), (v.name, seen[i])


def test_rerun_retries_failed_videos_only(tmp_path):
    src, lists = build_release(tmp_path / "ucf")
    out = tmp_path / "out"
    first = ucf101_prepare.prepare(
        src, lists, out, min_size=None, videos_per_shard=1, progress=False
    )
    assert first["failed"] == len(BAD)
    side = {p.stem: json.loads(p.read_text()) for p in (out / "shards").glob("*.json")}
    mtimes = {n: ucf101.shard_file(out, "rgb", n).stat().st_mtime_ns for n in side}
    # The user fixes one file (the missing one) and reruns the same command.
    fixed = "HammerThrow/v_HammerThrow_g01_c02.avi"
    (src / fixed).write_bytes((src / "HammerThrow/v_HammerThrow_g01_c01.avi").read_bytes())
    again = ucf101_prepare.prepare(
        src, lists, out, min_size=None, videos_per_shard=1, progress=False
    )
    assert again["failed"] == len(BAD) - 1 and fixed not in again["failures"]
    rows = {r["video"]: r for r in ucf101.read_manifest(out / "manifest.csv")}
    assert rows[fixed]["status"] == "ok" and fixed in ucf101.load_info(out).videos
    failing = {n for n, rs in side.items() if any(r["status"] != "ok" for r in rs)}
    assert again["videos_done"] == sum(len(side[n]) for n in failing)
    assert len(failing) == len(BAD) < len(side)
    for n in side:  # shards of ok videos are not touched
        rebuilt = ucf101.shard_file(out, "rgb", n).stat().st_mtime_ns != mtimes[n]
        assert rebuilt == (n in failing), n


@pytest.mark.parametrize("case", ["overlap", "empty_train", "empty_test"])
def test_split_lists_with_overlap_or_nothing_are_refused(tmp_path, case):
    src, lists = build_release(tmp_path / "ucf")
    train, test = lists / "trainlist01.txt", lists / "testlist01.txt"
    if case == "overlap":
        moved = train.read_bytes().split(b"\r\n")[1].split(b" ")[0]
        test.write_bytes(test.read_bytes() + moved + b"\r\n")
        n = len(test.read_bytes().split(b"\r\n")) - 1
        match = f"testlist01.txt:{n}: {moved.decode()} is also in trainlist01.txt"
    else:
        (train if case == "empty_train" else test).write_bytes(b"\r\n")
        match = f"{'train' if case == 'empty_train' else 'test'}list01.txt:1: no videos listed"
    with pytest.raises(ucf101.UCF101FormatError, match=match):
        ucf101_prepare.prepare(src, lists, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_evaluation_counts_the_test_videos_it_cannot_score(prepared, tmp_path, capsys):
    from lrcn_tf import runtime
    from lrcn_tf.tasks import activity as task

    out, _ = prepared
    scored, missing = task.test_coverage(out, 1)
    failed_tests = sorted(v for v in BAD if "_g01_" in v)  # the test list is group 1
    assert sorted(missing) == failed_tests and len(scored) == 6 - len(failed_tests)
    run = runtime.Run(tmp_path, "table1", {"row": "x"})
    assert task.report_coverage(run, out, 1) == len(failed_tests)
    record = json.loads(run.path("test_videos.json").read_text())
    assert (record["scored"], record["missing"]) == (len(scored), len(failed_tests))
    assert record["missing_videos"] == missing
    err = capsys.readouterr().err
    assert f"warning: {len(failed_tests)} of 6 test videos of split 1 were not prepared" in err
    with pytest.raises(ucf101.UCF101FormatError, match="no split 2"):
        task.test_coverage(out, 2)
