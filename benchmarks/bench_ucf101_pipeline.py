r"""UCF-101 data throughput, measured in one run on the same shards.

    python benchmarks/bench_ucf101_pipeline.py [--frame_size 60x80] [--seconds 5] [--rounds 3]

Prints and writes to results/bench_ucf101_pipeline_<HxW>.csv:
- prepare throughput (videos/s, flow frames/s) with 1 and 2 workers (worker start-up,
  mostly importing TensorFlow, is reported apart and not counted in the rates);
- training-clip throughput of `ucf101_pipeline.train_clips` (clips/s, frames/s): as Table 1
  trains (whole uint8 frames and each clip's crop/mirror draw; crop, mirror and mean
  subtraction follow in the train step, on the accelerator); uint8 clips cropped and
  mirrored on the host; float32 clips normalised on the host (all decoded by simplejpeg,
  the library's one decoder);
- the JPEG-decode ceiling of the same frames on all cores, one process per core, doing
  nothing else, with each fast library: cv2.imdecode (libjpeg-turbo, SIMD; a new array per
  frame) and simplejpeg (libjpeg-turbo's TurboJPEG API) into reused memory. The ceiling is
  the faster of the two (the least CPU a frame); tf.io.decode_jpeg is measured too;
- a naive per-clip Python loader (one thread: read a record, parse it, decode the video's
  frames with cv2, cut a clip, crop, mirror, stack a uint8 batch), and a leaner variant that
  decodes only the clip's 16 frames.
Targets (issue 3): pipeline >= 80% of the decode ceiling and >= 5x the naive loader.
Every method runs in a process of its own (a pipeline's background threads, autotuning and
buffer refills never land in another method's CPU time), set up and warmed up before the
clock starts. Each measurement drains the method's buffers for a second, then runs
`--seconds` in the steady state (see `measure`); the rounds interleave all methods and the median is reported, so
a load that comes and goes on a shared machine hits them alike. Each method's CPU time per
frame is reported too, with the rate it gives on an idle machine (cores / CPU per frame for
the parallel ones, 1 / CPU per frame for the one-thread loaders): on a shared machine the
measured rates swing with other people's load, the CPU costs much less.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from lrcn_tf.data.ucf101 import format as ucf101  # noqa: E402
from lrcn_tf.data.ucf101 import ops  # noqa: E402
from lrcn_tf.data.ucf101 import pipeline as up  # noqa: E402
from lrcn_tf.data.ucf101 import prepare as ucf101_prepare  # noqa: E402
from lrcn_tf.data.ucf101.synthetic import SyntheticSpec, generate  # noqa: E402

BATCH, CLIP = 24, 16
# TF's default IDCT is INTEGER_FAST (off by up to 4 levels); the accurate one decodes as
# libjpeg-turbo in OpenCV and simplejpeg does.
DCT = "INTEGER_ACCURATE"


def imdecode_rgb(buf) -> np.ndarray | None:
    """cv2.imdecode of a JPEG buffer straight to RGB (a new array per frame)."""
    return cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR_RGB)


def settle(interval: float = 0.1, timeout: float = 60.0) -> tuple[float, float]:
    """Waits until this process is idle (tf.data threads done refilling their buffers);
    returns (wall, CPU) times at the start of the first quiet interval."""
    end = time.perf_counter() + timeout
    while True:
        wall, cpu = time.perf_counter(), time.process_time()
        time.sleep(interval)
        if time.process_time() - cpu < 0.05 * interval or time.perf_counter() > end:
            return wall, cpu


def measure(fn, seconds: float, warmup: float = 1.0) -> tuple[float, float]:
    """Runs fn(deadline) -> frames; returns (frames per second, CPU seconds of this process
    per frame) in the steady state. CPU time per frame does not depend on other load on
    the machine.

    The method first runs idle until its process is quiet (full buffers), then is drained
    for `warmup` seconds (not counted), so that every frame taken in the timed window is
    made in it. After the window its threads go on refilling their buffers: that is waited
    for (so it never runs during another method's window) but not counted. An earlier
    version counted it, and charged the pipelines for more work than they delivered:
    tf.data's autotuning deepens the buffers after each stop, so each refill made more
    frames than the window had taken (up to a fifth more by the fourth window at 240x320).
    """
    settle()
    fn(time.perf_counter() + warmup)
    wall, cpu = time.perf_counter(), time.process_time()
    n = fn(wall + seconds)
    end_wall, end_cpu = time.perf_counter(), time.process_time()
    settle()
    return n / (end_wall - wall), (end_cpu - cpu) / n


def batches(it, frames_per_batch: int):
    def run(deadline):
        n = 0
        while time.perf_counter() < deadline:
            next(it)
            n += frames_per_batch
        return n

    return run


def train_files(data: Path) -> list[str]:
    """The rgb shards holding split 1's training videos."""
    info = ucf101.load_info(data)
    train = set(info.splits[1]["train"])
    return [
        str(ucf101.shard_file(data, "rgb", s))
        for s, vids in info.shards.items()
        if set(vids) & train
    ]


def sample_jpegs(data: Path, count: int = 4000) -> list[bytes]:
    """`count` of the training frames' JPEGs, the same ones on every call."""
    jpegs = []
    for rec in tf.data.TFRecordDataset(train_files(data)):
        ex = tf.train.SequenceExample.FromString(rec.numpy())
        jpegs += [f.bytes_list.value[0] for f in ex.feature_lists.feature_list["rgb"].feature]
    return [jpegs[i] for i in np.random.default_rng(0).permutation(len(jpegs))[:count]]


_JPEGS: list[np.ndarray] = []


def _load_jpegs(data):
    cv2.setNumThreads(1)
    _JPEGS[:] = [np.frombuffer(j, np.uint8) for j in sample_jpegs(data)]


def _decode_cv2(frames):
    for j in frames:
        imdecode_rgb(j)


def _decode_reused(frames):
    for j in frames:
        ops.decode_rgb_reused(j)


CEILINGS = {"cv2": _decode_cv2, "simplejpeg": _decode_reused}


def _decode_for(seconds, lib="cv2"):
    decode, chunk = CEILINGS[lib], min(256, len(_JPEGS))
    n, cpu, end = 0, time.process_time(), time.perf_counter() + seconds
    while time.perf_counter() < end:
        decode(_JPEGS[:chunk])
        n += chunk
        _JPEGS[:] = _JPEGS[chunk:] + _JPEGS[:chunk]  # rotate so every frame gets its turn
    return n, time.process_time() - cpu


def ceiling(pool, workers, seconds, lib):
    """`lib`'s decoder in `workers` processes: (frames per second, CPU seconds per frame)."""
    start = time.perf_counter()
    done = pool.starmap(_decode_for, [(seconds, lib)] * workers, chunksize=1)
    frames, cpu = sum(d[0] for d in done), sum(d[1] for d in done)
    return frames / (time.perf_counter() - start), cpu / frames


def tf_decodes(it):
    def run(deadline):
        n = 0
        while time.perf_counter() < deadline:
            n += int(next(it))
        return n

    return run


def naive_loader(files, crop, whole):
    """A straightforward per-clip Python loader; yields batches forever, uint8 like the
    pipeline it is compared with (the float conversion then happens on the accelerator)."""
    rng = np.random.default_rng(0)
    batch, labels = [], []
    while True:
        for rec in tf.data.TFRecordDataset(files):
            ex = tf.train.SequenceExample.FromString(rec.numpy())
            jpegs = [f.bytes_list.value[0] for f in ex.feature_lists.feature_list["rgb"].feature]

            def decode(j):
                return imdecode_rgb(j)

            n = len(jpegs)
            start = rng.integers(0, max(n - CLIP, 0) + 1)
            idx = np.minimum(start + np.arange(CLIP), n - 1)
            if whole:  # decode the video, then cut the clip
                frames = [decode(j) for j in jpegs]
                clip = np.stack([frames[i] for i in idx])
            else:
                clip = np.stack([decode(jpegs[i]) for i in idx])
            y = rng.integers(0, clip.shape[1] - crop + 1)
            x = rng.integers(0, clip.shape[2] - crop + 1)
            clip = clip[:, y : y + crop, x : x + crop]
            if rng.random() < 0.5:
                clip = clip[:, :, ::-1]
            batch.append(clip)
            labels.append(ex.context.feature["label"].int64_list.value[0])
            if len(batch) == BATCH:
                yield np.stack(batch), np.array(labels, np.int32)
                batch, labels = [], []


def method(kind: str, data: Path):
    """The measured loop of one method: run(deadline) -> frames delivered."""
    kw = dict(batch_size=BATCH, seed=1)
    if kind == "tf_decode":
        it = iter(
            tf.data.Dataset.from_tensor_slices(sample_jpegs(data))
            .repeat()
            .map(
                lambda j: tf.shape(tf.io.decode_jpeg(j, channels=3, dct_method=DCT))[0] * 0 + 1,
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            .batch(256)
            .map(tf.reduce_sum)
            .prefetch(2)
        )
        return tf_decodes(it)
    if kind.startswith("naive"):
        crop = ucf101.load_info(data).crop_size
        it = naive_loader(train_files(data), crop, whole=kind == "naive")
    else:
        extra = {
            "pipeline": dict(normalised=False, crop_on_host=False),
            "pipeline_crop": dict(normalised=False),
            "pipeline_f32": {},
        }[kind]
        it = iter(up.train_clips(data, 1, "rgb", **kw, **extra))
    for _ in range(3):  # warm up: fill buffers, trace functions
        next(it)
    return batches(it, BATCH * CLIP)


def serve(kind: str, data: Path, conn) -> None:
    """A method's own process: sets it up, says "ready", then measures for every number of
    seconds it receives, until it receives None."""
    run = method(kind, data)
    conn.send("ready")
    while (seconds := conn.recv()) is not None:
        conn.send(measure(run, seconds))


def prepare_rates(raw: Path, work: Path, workers: int) -> dict:
    """Prepares `raw` with `workers` processes; rates exclude the workers' start-up.

    With 1 worker the work runs in this process, so its CPU time per video is measured too.
    """
    out = work / f"prepared_w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    import tensorflow  # noqa: F401 - already imported; keeps the CPU count to the work

    cpu = time.process_time()
    s = ucf101_prepare.prepare(
        raw / "UCF-101",
        raw / "ucfTrainTestlist",
        out,
        min_size=None,
        workers=workers,
        progress=False,
    )
    cpu = time.process_time() - cpu
    busy = s["seconds"] - s["startup_seconds"]
    return {
        "videos_per_s": s["videos_done"] / busy,
        "flow_frames_per_s": s["flow_frames_done"] / busy,
        "cpu_per_video": cpu / s["videos_done"] if workers == 1 else None,
        "startup_s": s["startup_seconds"],
        "videos": s["videos_done"],
        "flow_frames": s["flow_frames_done"],
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--work", default="/tmp/lrcn_bench_ucf101", help="scratch folder (data is kept)")
    p.add_argument("--frame_size", default="60x80", help="HxW of the generated videos")
    p.add_argument("--num_groups", type=int, default=25)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--reuse",
        action="store_true",
        help="skip the prepare timing if its output exists; keep its rows from the existing CSV",
    )
    p.add_argument(
        "--output", default=None, help="default: results/bench_ucf101_pipeline_<HxW>.csv"
    )
    a = p.parse_args()
    h, w = (int(v) for v in a.frame_size.split("x"))
    cores = os.cpu_count() or 1
    work = Path(a.work) / a.frame_size
    spec = SyntheticSpec(num_groups=a.num_groups, height=h, width=w)
    print(f"{cores} cores, load average {os.getloadavg()[0]:.1f}; frames {h}x{w}; work in {work}")
    generate(work / "raw", spec, progress=False)

    rows = []
    out = Path(a.output or f"results/bench_ucf101_pipeline_{a.frame_size}.csv")
    prepared = all((work / f"prepared_w{w}" / "dataset.json").exists() for w in (1, 2))
    if a.reuse and prepared and out.exists():
        # keep the prepare rows measured by the run that made the data
        with out.open() as f:
            kept = [r for r in csv.DictReader(f) if r["measure"].startswith("prepare")]
        rows += [(r["measure"], float(r["value"]), r["unit"]) for r in kept]
        print(f"prepare not re-timed (--reuse): {len(kept)} rows kept from {out}")
    for workers in () if a.reuse and prepared else (1, 2):
        r = prepare_rates(work / "raw", work, workers)
        print(
            f"prepare, {workers} worker(s): {r['videos_per_s']:.1f} videos/s, "
            f"{r['flow_frames_per_s']:.0f} flow frames/s ({r['videos']} videos; worker start-up "
            f"{r['startup_s']:.1f}s not counted)"
        )
        rows += [
            (f"prepare_{workers}w_videos_per_s", r["videos_per_s"], "videos/s"),
            (f"prepare_{workers}w_flow_frames_per_s", r["flow_frames_per_s"], "frames/s"),
        ]
        if r["cpu_per_video"]:
            per_flow = r["cpu_per_video"] * r["videos"] / max(r["flow_frames"], 1)
            print(
                f"  CPU {r['cpu_per_video'] * 1e3:.1f} ms a video: an idle machine does "
                f"{1 / r['cpu_per_video']:.1f} videos/s ({1 / per_flow:.0f} flow frames/s) per worker"
            )
            rows += [
                ("prepare_cpu_ms_per_video", r["cpu_per_video"] * 1e3, "ms"),
                ("prepare_idle_videos_per_s_per_worker", 1 / r["cpu_per_video"], "videos/s"),
                ("prepare_idle_flow_frames_per_s_per_worker", 1 / per_flow, "frames/s"),
            ]
    data = work / "prepared_w2"
    crop = ucf101.load_info(data).crop_size
    ctx = multiprocessing.get_context("spawn")
    kinds = (
        "pipeline", "pipeline_crop", "pipeline_f32", "tf_decode", "naive", "naive_lean",
    )  # fmt: skip
    conns, procs = {}, []
    for kind in kinds:
        conns[kind], child = ctx.Pipe()
        procs.append(ctx.Process(target=serve, args=(kind, data, child), daemon=True))
        procs[-1].start()
    for kind, conn in conns.items():
        if conn.recv() != "ready":
            raise RuntimeError(f"{kind}: its process failed to start")
    results = {k: [] for k in ("pipeline", *(f"ceiling_{c}" for c in CEILINGS), *kinds[1:])}
    with ctx.Pool(cores, initializer=_load_jpegs, initargs=(data,)) as pool:
        for lib in CEILINGS:  # warm up
            pool.starmap(_decode_for, [(0.2, lib)] * cores, chunksize=1)
        for r in range(a.rounds):
            for k in results:
                if k.startswith("ceiling_"):
                    results[k].append(ceiling(pool, cores, a.seconds, k.removeprefix("ceiling_")))
                else:
                    conns[k].send(a.seconds)
                    results[k].append(conns[k].recv())
            print(
                f"round {r + 1}: "
                + ", ".join(f"{k} {v[-1][0]:.0f}" for k, v in results.items())
                + " frames/s"
            )
    for conn in conns.values():
        conn.send(None)
    for proc in procs:
        proc.join(timeout=30)
    med = {k: statistics.median(m[0] for m in v) for k, v in results.items()}
    cpu = {k: statistics.median(m[1] for m in v) for k, v in results.items()}
    # The ceiling is the faster decoder (the least CPU a frame): the best this machine does.
    best = min(CEILINGS, key=lambda c: cpu[f"ceiling_{c}"])
    med["ceiling"], cpu["ceiling"] = med[f"ceiling_{best}"], cpu[f"ceiling_{best}"]
    # On an idle machine a parallel method gets `cores` CPU-seconds a second, the naive
    # loaders one: these projections are immune to load from other processes.
    idle = {k: (1 if k.startswith("naive") else cores) / cpu[k] for k in cpu}
    print(
        f"\nframes {h}x{w}, crop {crop}, clips of {CLIP}, batch {BATCH}; median of {a.rounds} rounds"
    )
    print(f"  {'':48s} {'measured':>10s} {'CPU per frame':>14s} {'idle-machine':>13s}")
    for k, label in (
        ("pipeline", "train_clips as Table 1 trains (crop on device)"),
        ("pipeline_crop", "train_clips, uint8 cropped on the host"),
        ("pipeline_f32", "train_clips, float32 normalised on the host"),
        ("ceiling_cv2", f"cv2.imdecode alone, {cores} processes"),
        ("ceiling_simplejpeg", f"simplejpeg into reused memory, {cores} processes"),
        ("ceiling", f"decode ceiling (the faster: {best})"),
        ("tf_decode", "tf.io.decode_jpeg alone, tf.data, all cores"),
        ("naive", "naive loader (decodes the whole video)"),
        ("naive_lean", "naive loader (decodes the clip's frames only)"),
    ):
        print(f"  {label:48s} {med[k]:10.0f} {cpu[k] * 1e6:11.1f} us {idle[k]:13.0f}   frames/s")
        rows += [
            (f"{k}_frames_per_s", med[k], "frames/s"),
            (f"{k}_clips_per_s", med[k] / CLIP, "clips/s"),
            (f"{k}_cpu_us_per_frame", cpu[k] * 1e6, "us"),
            (f"{k}_idle_frames_per_s", idle[k], "frames/s"),
        ]
    ratios = {}
    for name, d in (("measured", med), ("idle", idle)):
        ratios[f"pipeline_over_ceiling_{name}"] = d["pipeline"] / d["ceiling"]
        ratios[f"pipeline_over_naive_{name}"] = d["pipeline"] / d["naive"]
        ratios[f"pipeline_over_naive_lean_{name}"] = d["pipeline"] / d["naive_lean"]
        print(
            f"  {name}: pipeline / decode ceiling = {ratios[f'pipeline_over_ceiling_{name}']:.2f} "
            f"(target >= 0.80); pipeline / naive = {ratios[f'pipeline_over_naive_{name}']:.1f}x "
            f"(target >= 5x); pipeline / lean naive = {ratios[f'pipeline_over_naive_lean_{name}']:.1f}x"
        )
    rows += [(k, v, "ratio") for k, v in ratios.items()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["measure", "value", "unit", "frame_size", "cores", "load_average"])
        for name, value, unit in rows:
            writer.writerow(
                [name, f"{value:.4g}", unit, a.frame_size, cores, f"{os.getloadavg()[0]:.1f}"]
            )
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
