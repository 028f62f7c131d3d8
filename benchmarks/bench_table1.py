r"""Benchmark: Table 1 training and evaluation throughput for the small and the hybrid CaffeNet.

    python benchmarks/bench_table1.py                                   # both backbones, CPU
    python benchmarks/bench_table1.py --backbones hybrid_caffenet --crop 227 --clips 8
    KERAS_BACKEND=jax python benchmarks/bench_table1.py --mixed_precision mixed_float16   # GPU

Training: clips/s of one LRCN-fc6 training step (forward, per-step loss, backward) on random
clips of `--clips` x `--train_frames` frames. On the TensorFlow backend the step is the
project's: gradients, then `optim.CaffeSGD.apply` (global-norm clipping, L2 in the gradient,
Caffe multipliers) in one tf.function, as `trainer.fit` runs it. On any other backend
(`KERAS_BACKEND=jax`) the trainer does not run (it is TensorFlow code), so the step is
`model.train_on_batch` with Keras' SGD (momentum 0.9): the same model compute, jit-compiled by
that backend, without Caffe's weight decay (`--step keras` runs this path on TensorFlow too,
for comparison; it was checked there, not on JAX, which is not installed here). Evaluation: videos/s of the test protocol (clips
of 16 every 8 frames, `--crops` crops each, all in one forward pass per video) on videos of
`--video_frames` frames. Data loading is excluded (random tensors): this measures the models.

Each measurement is the best of `--repeats` timed runs after a warm-up (the machine may be
shared). Hardware and time: the defaults take about a minute on 2 CPU cores, most of it the
hybrid CaffeNet at 227x227 (1.2 G multiply-adds per frame). Measured on the shared 2-core
development machine (load average 5, TF 2.21, float32): small_cnn 248 clips/s training
(16 x 16 frames at 56x56), 86 videos/s evaluation (32-frame videos, centre crop); hybrid
CaffeNet 0.93 clips/s (2 x 16 frames at 227x227), 1.2 videos/s.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("backbones", ["small_cnn", "hybrid_caffenet"], "Backbones to time.")
flags.DEFINE_integer("crop", None, "Crop size (default: 56 small_cnn, 227 hybrid_caffenet).")
flags.DEFINE_integer("clips", None, "Training clips per step (default: 16 small, 2 hybrid).")
flags.DEFINE_integer("train_frames", 16, "Frames per training clip.")
flags.DEFINE_integer("video_frames", 32, "Frames per test video (3 clips at 16/8).")
flags.DEFINE_enum("crops", "1", ["1", "10"], "Test crops per frame.")
flags.DEFINE_integer("steps", None, "Timed training steps per run (default: 10 small, 2 hybrid).")
flags.DEFINE_integer("videos", None, "Timed test videos per run (default: 20 small, 2 hybrid).")
flags.DEFINE_integer("repeats", 2, "Timed runs (the best is reported).")
flags.DEFINE_integer("classes", 101, "Classes (101 for UCF-101).")
flags.DEFINE_enum(
    "step",
    "auto",
    ["auto", "caffe", "keras"],
    "auto: the project's Caffe SGD step on TensorFlow, Keras' train_on_batch on other backends.",
)
flags.DEFINE_enum(
    "mixed_precision",
    "auto",
    ["auto", "off", "mixed_float16", "mixed_bfloat16"],
    "auto: mixed_float16 with a GPU, float32 on CPU.",
)

DEFAULTS = {  # crop, clips, steps, videos, fc_units, backbone kwargs
    "small_cnn": (56, 16, 10, 20, 128, {"filters": (16, 32, 64)}),
    "hybrid_caffenet": (227, 2, 2, 2, 4096, {}),
}


def _best(fn, repeats: int) -> float:
    fn()  # warm-up: tracing and compilation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _train_step_fn(model, x, y, steps: int):
    import keras

    from lrcn_tf.models import activity

    use_caffe = FLAGS.step == "caffe" or (
        FLAGS.step == "auto" and keras.backend.backend() == "tensorflow"
    )
    if use_caffe:
        import tensorflow as tf

        from lrcn_tf.configs import build
        from lrcn_tf.training import optim

        cfg = build("table1/lrcn_fc6/rgb", "paper").train
        sgd = optim.CaffeSGD(cfg, optim.multipliers_from_rules(activity.MULTIPLIER_RULES))
        sgd.build(model.trainable_variables)
        xs, ys = tf.constant(x), tf.constant(y)

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = activity.per_step_loss(model(xs, training=True), ys)
            sgd.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss

        def run():
            for _ in range(steps):
                loss = step()
            float(loss)

        return run

    model.compile(
        optimizer=keras.optimizers.SGD(0.001, momentum=0.9),
        loss=lambda yt, yp: activity.per_step_loss(yp, yt),
    )

    def run():
        for _ in range(steps):
            model.train_on_batch(x, y)

    return run


def _eval_fn(model, videos: int, frames: int, crop: int, crops: int):
    import keras

    from lrcn_tf.evaluation import activity as ev

    starts = list(range(0, frames - 16 + 1, 8))
    if starts[-1] != frames - 16:
        starts.append(frames - 16)
    n = len(starts) * crops
    x = np.random.default_rng(1).normal(size=(n, 16, crop, crop, 3)).astype("float32")
    predict = model.predict_on_batch

    def run():
        for _ in range(videos):
            probs = ev.clip_probabilities(keras.ops.convert_to_numpy(predict(x)), crops)
            probs.mean(axis=0)

    return run, n


def bench(name: str) -> None:
    import keras

    from lrcn_tf.models import activity

    d_crop, d_clips, d_steps, d_videos, fc_units, extra = DEFAULTS.get(
        name, (227, 2, 2, 2, 4096, {})
    )
    crop, clips = FLAGS.crop or d_crop, FLAGS.clips or d_clips
    steps, videos = FLAGS.steps or d_steps, FLAGS.videos or d_videos
    crops = int(FLAGS.crops)
    keras.utils.set_random_seed(0)
    model = activity.lrcn(
        (crop, crop, 3),
        FLAGS.classes,
        backbone=name,
        backbone_kwargs={"fc_units": fc_units, **extra},
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(clips, FLAGS.train_frames, crop, crop, 3)).astype("float32")
    y = rng.integers(0, FLAGS.classes, size=(clips,)).astype("int32")
    t = _best(_train_step_fn(model, x, y, steps), FLAGS.repeats)
    train_rate = clips * steps / t
    run_eval, n = _eval_fn(model, videos, FLAGS.video_frames, crop, crops)
    t_eval = _best(run_eval, FLAGS.repeats)
    print(
        f"{name:16s} crop {crop}, {model.count_params() / 1e6:.1f} M params | train: "
        f"{clips} clips x {FLAGS.train_frames} frames a step, {train_rate:8.2f} clips/s "
        f"({train_rate * FLAGS.train_frames:8.1f} frames/s) | eval: {FLAGS.video_frames}-frame "
        f"videos, {n} sequences of 16 a pass ({crops} crop(s)), {videos / t_eval:8.2f} videos/s",
        flush=True,
    )


def main(argv):
    del argv
    import keras

    from lrcn_tf import runtime

    policy = runtime.configure_precision(FLAGS.mixed_precision)
    backend = keras.backend.backend()
    print(
        f"backend {backend}, precision {policy}, GPU {runtime.gpu_visible()}, step {FLAGS.step}, "
        f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}; "
        f"best of {FLAGS.repeats} runs after a warm-up; model LRCN-fc6 (LSTM 256), "
        f"{FLAGS.classes} classes",
        flush=True,
    )
    for name in FLAGS.backbones:
        bench(name)


if __name__ == "__main__":
    app.run(main)
