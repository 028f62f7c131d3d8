r"""`python -m lrcn_tf.prepare --dataset {ucf101,synthetic_ucf101}`: videos -> TFRecord shards.

    python -m lrcn_tf.prepare --dataset ucf101 --src UCF-101 --splits ucfTrainTestlist \
        --out DIR [--fps N] [--flow {farneback,tvl1,tvl1_accel,none}] [--workers N] \
        [--runner {local,beam}] [--beam_options "--runner=... (Beam pipeline options)"]
    python -m lrcn_tf.prepare --dataset synthetic_ucf101 --out DIR     # generate, then prepare

Every video named in the split lists is decoded with PyAV (native rate unless --fps), its
frames and flow images stored as JPEGs in SequenceExamples (see ucf101_shards.py), grouped by
the release's group (`gXX`) into shards under DIR/shards/. Then DIR gets classes.txt,
manifest.csv (SPEC.md) and, last, dataset.json, which the pipelines read. Rerunning the same
command after a kill skips finished shards. A video that fails is recorded in manifest.csv
with its reason; the exit status is 1 if any failed, unless --allow_failures. Rerunning
retries the failed videos (their shards are rebuilt; shards of ok videos are skipped), so a
fixed or replaced file joins the dataset. A split whose lists are empty, or that lists a video
in both its train and test lists, is refused (file and line).
"""

from __future__ import annotations

import collections
import hashlib
import json
import multiprocessing
import random
import time
from pathlib import Path

from lrcn_tf.data import folders
from lrcn_tf.data.flow import FLOW_METHODS
from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.data.ucf101.shards import PrepareError, ShardTask, shard_done, sidecar, write_shard
from lrcn_tf.data.video import ORIGINAL_MIN_SIZE
from lrcn_tf.runtime import write_text_atomic


def _shard_plan(
    videos: list[ucf101.VideoInfo], classes: list[str], per_shard: int
) -> list[tuple[str, list]]:
    """(shard name, [(video, label, class), ...]) for every shard, deterministically."""
    by_group = collections.defaultdict(list)
    for v in sorted(videos, key=lambda v: v.name):
        by_group[ucf101.video_group(v.name)].append((v.name, v.label, classes[v.label]))
    plan = []
    for group in sorted(by_group):
        items = by_group[group]
        # A fixed shuffle inside the group, so a shard mixes classes and a reader that
        # interleaves a few shards is not fed long runs of one class.
        random.Random(group).shuffle(items)
        n = -(-len(items) // per_shard)
        for i in range(n):
            name = f"{group}-{i:05d}-of-{n:05d}"
            plan.append((name, items[i * per_shard : (i + 1) * per_shard]))
    return plan


def prepare(
    src,
    splits_dir,
    out,
    *,
    dataset: str = "ucf101",
    fps: float | None = None,
    flow: str = "farneback",
    workers: int = 1,
    videos_per_shard: int = 64,
    jpeg_quality: int = 90,
    min_size: tuple[int, int] | None = ORIGINAL_MIN_SIZE,
    synthetic=None,
    progress: bool = True,
    runner: str = "local",
    beam_options: str | None = None,
) -> dict:
    """Prepares every video of the split lists into `out` (resumable; see module docstring).

    `runner`: "local" (a process pool of `workers`) or "beam" (an Apache Beam pipeline, see
    beam.py; `beam_options` a shell-quoted string of pipeline options, default Beam's local
    runner with `workers` processes). Both write the same shards, index and manifest.

    Returns:
      {"ok", "failed", "failures" (video -> reason), "seconds" (wall time of the work,
      worker start-up included), "startup_seconds" (of which starting the workers),
      "videos_done" (videos this call processed), "flow_frames_done", "text" (the summary)}.

    Raises:
      PrepareError / UCF101FormatError: bad flags, unreadable lists, or `out` begun with
        other options.
    """
    from tqdm import tqdm

    if flow not in FLOW_METHODS:
        raise PrepareError(f"--flow {flow!r}: choose {', '.join(FLOW_METHODS)}")
    if runner not in ("local", "beam"):
        raise PrepareError(f"--runner {runner!r}: choose local or beam")
    if workers < 1 or videos_per_shard < 1 or not 1 <= jpeg_quality <= 100:
        raise PrepareError(
            "--workers and --videos_per_shard must be >= 1, --jpeg_quality in 1..100"
        )
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise PrepareError(f"--src {src}: not a folder")
    # A tiny generated dataset may leave a split's list empty (Table 1 refuses to run on it).
    classes, splits = ucf101.read_splits(splits_dir, allow_empty=synthetic is not None)
    videos = {v.name: v for s in splits.values() for subset in s.values() for v in subset}
    plan = _shard_plan(list(videos.values()), classes, videos_per_shard)
    options = {
        "dataset": dataset,
        "fps": fps,
        "flow": flow,
        "jpeg_quality": jpeg_quality,
        "min_size": list(min_size) if min_size else None,
        "videos_per_shard": videos_per_shard,
        "synthetic": _spec_dict(synthetic),
        "plan": hashlib.sha256(json.dumps(plan).encode()).hexdigest()[:16],
    }
    _claim(out, options)
    tasks = [
        ShardTask(str(out), name, tuple(items), str(src), fps, flow, min_size, jpeg_quality)
        for name, items in plan
        if needs_work(out, name, flow)
    ]
    start, done, flow_frames, timing = time.time(), 0, 0, {"startup": 0.0}
    runs = (
        _run(tasks, workers, timing)
        if runner == "local"
        else _run_beam(tasks, beam_options, workers)
    )
    bar = tqdm(
        total=sum(len(t.videos) for t in tasks),
        desc=f"prepare {dataset}",
        unit="video",
        disable=not progress,
    )
    for rows in runs:
        done += len(rows)
        flow_frames += sum(
            max(r["num_frames"] - 1, 0) for r in rows if r["status"] == "ok" and flow != "none"
        )
        bar.update(len(rows))
    bar.close()
    seconds = time.time() - start
    rows = [r for name, _ in plan for r in json.loads(sidecar(out, name).read_text())]
    _finish(out, options, classes, splits, plan, rows)
    failures = {r["video"]: r["status"] for r in rows if r["status"] != "ok"}
    return {
        "ok": len(rows) - len(failures),
        "failed": len(failures),
        "failures": failures,
        "seconds": seconds,
        "startup_seconds": timing["startup"],
        "videos_done": done,
        "flow_frames_done": flow_frames,
        "text": _summary(out, rows, failures, done, seconds),
    }


def needs_work(out, name: str, flow: str) -> bool:
    """Whether a shard must be (re)built: unfinished, or holding a video whose status is not ok.

    A rerun so retries every failed video (the user may have fixed or replaced the file); the
    shard is rebuilt whole, the finished shards of ok videos are skipped.
    """
    if not shard_done(out, name, flow):
        return True
    try:
        rows = json.loads(sidecar(out, name).read_text())
    except (OSError, ValueError):
        return True
    return any(r.get("status") != "ok" for r in rows)


def _spec_dict(spec):
    import dataclasses

    return None if spec is None else json.loads(json.dumps(dataclasses.asdict(spec)))


def claim_folder(out, dataset: str) -> None:
    """Makes `out` this prepare's folder (lrcn_tf.data.folders.claim), as a PrepareError."""
    try:
        folders.claim(out, dataset)  # never writes into someone else's folder
    except folders.DataFolderError as e:
        raise PrepareError(str(e)) from None


def _claim(out: Path, options: dict) -> None:
    """Records the options in out/prepare.json, or checks that they match a begun run's."""
    claim_folder(out, options["dataset"])
    (out / "shards").mkdir(parents=True, exist_ok=True)
    path = out / "prepare.json"
    if path.exists():
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), v) for k, v in options.items() if old.get(k) != v}
        if diff:
            raise PrepareError(
                f"{out} was begun with other options {diff} (old, new); use another --out or delete it"
            )
    else:
        write_text_atomic(path, json.dumps(options, indent=1) + "\n")
    for stale in (out / "shards").glob("**/*.tmp"):  # left by a killed run; never read
        stale.unlink()


def _init_worker(barrier=None) -> None:
    import cv2
    import tensorflow  # noqa: F401 - imported here so start-up is timed apart from the work

    cv2.setNumThreads(1)  # parallelism comes from the processes
    if barrier is not None:
        barrier.wait(timeout=600)


def _ready(_) -> None:
    return None


def _run(tasks: list[ShardTask], workers: int, timing: dict):
    """Yields each shard's manifest rows; sets timing["startup"] (seconds to start workers)."""
    start = time.time()
    if workers == 1 or len(tasks) <= 1:
        import tensorflow  # noqa: F401 - start-up, timed apart from the work

        timing["startup"] = time.time() - start
        for t in tasks:
            yield write_shard(t)
        return
    # spawn, not fork: the parent may hold TensorFlow's threads, which fork does not survive.
    ctx = multiprocessing.get_context("spawn")
    n = min(workers, len(tasks))
    barrier = ctx.Barrier(n)
    with ctx.Pool(n, initializer=_init_worker, initargs=(barrier,)) as pool:
        pool.map(_ready, range(n), chunksize=1)  # every worker has passed the barrier
        timing["startup"] = time.time() - start
        yield from pool.imap_unordered(write_shard, tasks)


def _run_beam(tasks: list[ShardTask], beam_options: str | None, workers: int):
    """Checks the Beam options now; the returned generator runs the pipeline over the tasks,
    then yields each shard's manifest rows."""
    from lrcn_tf.data.ucf101 import beam

    pipeline = beam.pipeline(beam.parse_options(beam_options, workers))

    def rows():
        beam.run(pipeline, tasks)
        for t in tasks:
            yield json.loads(sidecar(t.out, t.name).read_text())

    return rows()


def _finish(out, options, classes, splits, plan, rows) -> None:
    ok = {r["video"]: r for r in rows if r["status"] == "ok"}
    sizes = {(r["height"], r["width"]) for r in ok.values()}
    frame_size = next(iter(sizes)) if len(sizes) == 1 else None
    smallest = min((min(s) for s in sizes), default=240)
    # The paper crops 227 of 240-pixel-high frames; smaller frames get the same proportion.
    crop = 227 if smallest >= 240 else int(smallest * 227 / 240)
    info = {
        "format": ucf101.FORMAT,
        "dataset": options["dataset"],
        "classes": classes,
        "frame_size": list(frame_size) if frame_size else None,
        "crop_size": crop,
        "flow": options["flow"],
        "fps": options["fps"],
        "jpeg_quality": options["jpeg_quality"],
        "min_size": options["min_size"],
        "synthetic": options["synthetic"],
        "shards": {name: [v[0] for v in items if v[0] in ok] for name, items in plan},
        "splits": {
            str(n): {k: [v.name for v in vs] for k, vs in s.items()} for n, s in splits.items()
        },
        "videos": [[v, r["label"], r["num_frames"]] for v, r in sorted(ok.items())],
    }
    write_text_atomic(out / "classes.txt", "".join(c + "\n" for c in classes))
    ucf101.write_manifest(out / "manifest.csv", rows)
    write_text_atomic(out / ucf101.INFO_FILE, json.dumps(info) + "\n")  # last: marks completion


def _summary(out, rows, failures, done, seconds) -> str:
    lines = [
        f"{out}: {len(rows) - len(failures)} of {len(rows)} videos ok, {len(failures)} failed "
        f"({done} processed now in {seconds:.1f}s)"
    ]
    reasons = collections.Counter(r.split(":")[0] for r in failures.values())
    lines += [f"  {n} x {reason}" for reason, n in reasons.most_common()]
    lines += [f"  {v}: {why}" for v, why in sorted(failures.items())[:20]]
    if len(failures) > 20:
        lines.append(f"  ... {len(failures) - 20} more in {out / 'manifest.csv'}")
    return "\n".join(lines)
