"""The one training loop of the project (Tables 1, 2, 3 and 5 all train through `fit`).

Read top to bottom: set-up (optimizer, loss scale, distributed iterator), checkpoint restore,
the compiled step (preprocess the batch on the accelerator, then loss and gradients), then the
loop with logging, NaN checks and checkpoints.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from tqdm.auto import tqdm

from lrcn_tf.configs.common import TrainConfig
from lrcn_tf.training.optim import CaffeSGD, Multipliers

LossFn = Callable[[keras.Model, Any, bool], tf.Tensor]
Preprocess = Callable[[Any], Any]
# A pipeline that can read one worker's share: `make(shard)` -> batches, where shard is None
# (the whole global batch) or (index, count): rows [index * B / count, (index + 1) * B / count)
# of every global batch of B, the same rows the whole pipeline would give.
ShardedDataset = Callable[[tuple[int, int] | None], tf.data.Dataset]


class DynamicLossScale(tf.Module):
    """Loss scaling for float16: halve on overflow (and skip the step), double after 2000 good steps."""

    def __init__(self, initial: float = 2.0**15, period: int = 2000):
        super().__init__(name="loss_scale")
        self.scale = tf.Variable(initial, dtype=tf.float32, trainable=False, name="scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps")
        self.period = period

    def update(self, finite: tf.Tensor) -> None:
        if finite:
            self.good_steps.assign_add(1)
            if self.good_steps >= self.period:
                self.scale.assign(self.scale * 2.0)
                self.good_steps.assign(0)
        else:
            self.scale.assign(tf.maximum(self.scale / 2.0, 1.0))
            self.good_steps.assign(0)


def fit(
    model: keras.Model,
    dataset: tf.data.Dataset | ShardedDataset,
    loss_fn: LossFn,
    cfg: TrainConfig,
    ckpt_dir: str | Path,
    *,
    multipliers: Multipliers | None = None,
    strategy: tf.distribute.Strategy | None = None,
    description: str = "train",
    checkpoint_iterator: bool = True,
    preprocess: Preprocess | None = None,
) -> dict[str, Any]:
    """Trains `model` for `cfg.max_iter` Caffe SGD steps, resuming from `ckpt_dir` if it holds a checkpoint.

    Args:
      model: a built Keras model; only its trainable variables are updated.
      dataset: batches of the global batch size (`cfg.batch_size`); repeated as needed. Or
        a `ShardedDataset`: under a strategy each worker then builds its own pipeline, which
        reads only its share of every global batch (`shard_input`); otherwise the dataset's
        batches are the global batches and, across machines, each worker keeps its share
        (tf.data auto-shard policy DATA: every worker still reads the whole batch).
      loss_fn: `loss_fn(model, batch, training)` -> scalar loss (mean over the batch, any loss
        weight included). A loss normalised by a count that varies between batches (e.g.
        Caffe's `normalize: true` over non-padded words) also has `loss_fn.terms(model,
        batch, training)` -> (sum, count): under a strategy the sums and counts of the
        replicas are added before dividing, so the loss is the global batch's (not the mean
        of the replicas' own ratios).
      cfg: the solver recipe.
      ckpt_dir: checkpoints and TensorBoard logs.
      multipliers: per-variable (lr_mult, decay_mult) by path; default 1, 1.
      strategy: a tf.distribute strategy (the model must have been built under its scope).
      description: the progress bar's label.
      checkpoint_iterator: also checkpoint the input iterator so a resumed run sees exactly the
        batches an uninterrupted one would (costs disk when the pipeline has large buffers;
        not possible under a multi-device strategy).
      preprocess: the step's first stage, `preprocess(batch)` -> the batch `loss_fn` reads
        (e.g. crop, mirror and mean subtraction on the accelerator); compiled into the step,
        run on each replica's batch, outside the gradient tape.

    Returns:
      {"step": final step, "losses": [(step, loss)], "resumed_from": step restored or 0}.

    Raises:
      FloatingPointError: the loss became NaN or Inf; the message names the step.
    """
    strategy = strategy or tf.distribute.get_strategy()
    distributed = strategy is not tf.distribute.get_strategy() or strategy.num_replicas_in_sync > 1
    ckpt_dir = Path(ckpt_dir)
    variables = model.trainable_variables
    if not variables:
        raise ValueError(f"{description}: the model has no trainable variables")

    # --- set-up -----------------------------------------------------------------------------
    with strategy.scope():
        optimizer = CaffeSGD(cfg, multipliers)
        optimizer.build(variables)
        loss_scale = (
            DynamicLossScale()
            if keras.mixed_precision.global_policy().compute_dtype == "float16"
            else None
        )
    data = shard_input(dataset, strategy if distributed else None, cfg.batch_size)
    iterator = iter(data)

    # --- restore ----------------------------------------------------------------------------
    # Keras' SeedGenerator states (dropout masks) are not tracked through the model object, so
    # all model variables are also saved by position: a resumed run draws the same masks.
    tracked = {
        "model": model,
        "optimizer": optimizer,
        "model_variables": [getattr(v, "value", v) for v in model.variables],
    }
    if loss_scale is not None:
        tracked["loss_scale"] = loss_scale
    if checkpoint_iterator and not distributed:
        # tf.distribute's iterators cannot be checkpointed: a resumed multi-device run restarts
        # its input stream (weights, momenta and step are still restored exactly).
        tracked["iterator"] = iterator
    checkpoint = tf.train.Checkpoint(**tracked)
    # Across machines (MultiWorkerMirroredStrategy) every worker saves (saving is collective)
    # but only the chief into ckpt_dir; the others into a scratch folder deleted at the end.
    # Every worker restores the chief's latest checkpoint (ckpt_dir on shared storage).
    chief, worker_dir = _checkpoint_role(strategy, ckpt_dir)
    manager = tf.train.CheckpointManager(checkpoint, worker_dir, max_to_keep=2)
    resumed_from = 0
    latest = tf.train.latest_checkpoint(ckpt_dir)
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
        resumed_from = int(optimizer.iterations.numpy())

    # --- the compiled step ------------------------------------------------------------------
    train_step = make_train_step(
        model,
        loss_fn,
        optimizer,
        loss_scale=loss_scale,
        preprocess=preprocess,
        strategy=strategy if distributed else None,
    )

    # --- the loop ---------------------------------------------------------------------------
    writer = tf.summary.create_file_writer(str(worker_dir / "tensorboard"))
    losses: list[tuple[int, float]] = []
    step = resumed_from
    logged_step, logged_at = step, time.perf_counter()  # for steps/s between two logs
    bar = tqdm(total=cfg.max_iter, initial=step, desc=description, unit="step", leave=False)
    try:
        while step < cfg.max_iter:
            loss, lr = train_step(iterator)
            step += 1
            value = float(loss)
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"{description}: loss is {value} at step {step}; stopping (last good "
                    f"checkpoint in {ckpt_dir})"
                )
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.max_iter:
                losses.append((step, value))
                bar.set_postfix(loss=f"{value:.4f}", lr=f"{float(lr):.2g}")
                now = time.perf_counter()
                with writer.as_default(step=step):
                    tf.summary.scalar("loss", value)
                    tf.summary.scalar("learning_rate", lr)
                    tf.summary.scalar("steps_per_second", (step - logged_step) / (now - logged_at))
                logged_step, logged_at = step, now
            if step % cfg.checkpoint_every == 0 or step == cfg.max_iter:
                manager.save(checkpoint_number=step)
    finally:
        bar.close()
        writer.flush()
        if not chief:
            shutil.rmtree(worker_dir, ignore_errors=True)
    return {"step": step, "losses": losses, "resumed_from": resumed_from}


def shard_input(
    dataset: tf.data.Dataset | ShardedDataset,
    strategy: tf.distribute.Strategy | None,
    global_batch: int,
):
    """The repeated input of `fit`: the dataset itself, or distributed over the strategy's
    replicas so that each replica's batch is its consecutive share of the global batch (and
    the replicas together see exactly the batches one process would)."""
    if strategy is None:
        return (dataset(None) if callable(dataset) else dataset).repeat()
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ValueError(
            f"train.batch_size {global_batch} (the global batch) does not split over "
            f"{replicas} replicas; choose a multiple of {replicas}"
        )
    if not callable(dataset):
        options = tf.data.Options()
        # Every worker builds the same pipeline and keeps its own rows of each global batch
        # (AUTO would shard by file where it finds files: another order than one process's).
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return strategy.experimental_distribute_dataset(dataset.repeat().with_options(options))

    def per_worker(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        ds = dataset((ctx.input_pipeline_id, ctx.num_input_pipelines))
        if ctx.num_replicas_in_sync > ctx.num_input_pipelines:  # several replicas a worker
            ds = ds.rebatch(global_batch // ctx.num_replicas_in_sync, drop_remainder=True)
        return ds.repeat()

    return strategy.distribute_datasets_from_function(per_worker)


def _checkpoint_role(strategy: tf.distribute.Strategy, ckpt_dir: Path) -> tuple[bool, Path]:
    """(whether this process writes the real checkpoints, the folder it saves into)."""
    if getattr(strategy.extended, "should_checkpoint", True):
        return True, ckpt_dir
    task_id = getattr(getattr(strategy, "cluster_resolver", None), "task_id", 0)
    return False, ckpt_dir / f".worker{task_id}-scratch"


def make_train_step(
    model: keras.Model,
    loss_fn: LossFn,
    optimizer: CaffeSGD,
    *,
    loss_scale: DynamicLossScale | None = None,
    preprocess: Preprocess | None = None,
    strategy: tf.distribute.Strategy | None = None,
):
    """The compiled training step of `fit`: `step(iterator) -> (loss, learning rate)`.

    Takes the next batch from the iterator inside the graph, runs `preprocess` on it (the
    step's first stage, outside the gradient tape), computes the loss and gradients
    of `model.trainable_variables` (per replica under a multi-device `strategy`, then
    averaged) and applies one `optimizer` step (skipped, but counted, when float16 gradients
    overflow). The optimizer must have been built for the model's trainable variables.
    """
    variables = model.trainable_variables
    # (sum, count) losses: each replica's gradient of its sum; divided by the global count.
    terms = getattr(loss_fn, "terms", None) if strategy is not None else None

    def grads_of(batch):
        if preprocess is not None:
            batch = preprocess(batch)
        with tf.GradientTape() as tape:
            if terms is None:
                loss = tf.cast(loss_fn(model, batch, True), tf.float32)
            else:
                loss, count = terms(model, batch, True)
                loss = tf.cast(loss, tf.float32)
            scaled = loss * loss_scale.scale if loss_scale is not None else loss
        grads = tape.gradient(scaled, variables)
        grads = [
            tf.zeros(v.shape, v.dtype) if g is None else tf.convert_to_tensor(g)
            for g, v in zip(grads, variables)
        ]
        if loss_scale is not None:
            grads = [g / tf.cast(loss_scale.scale, g.dtype) for g in grads]
        if terms is not None:
            return loss, grads, tf.cast(count, tf.float32)
        return loss, grads

    @tf.function
    def train_step(it):
        batch = next(it)
        if strategy is not None and terms is not None:
            per_sum, per_grads, per_count = strategy.run(grads_of, args=(batch,))
            total = tf.distribute.ReduceOp.SUM
            count = tf.maximum(strategy.reduce(total, per_count, axis=None), 1.0)
            loss = strategy.reduce(total, per_sum, axis=None) / count
            grads = [strategy.reduce(total, g, axis=None) / count for g in per_grads]
        elif strategy is not None:
            per_loss, per_grads = strategy.run(grads_of, args=(batch,))
            mean = tf.distribute.ReduceOp.MEAN
            loss = strategy.reduce(mean, per_loss, axis=None)
            grads = [strategy.reduce(mean, g, axis=None) for g in per_grads]
        else:
            loss, grads = grads_of(batch)
        if loss_scale is None:
            optimizer.apply(grads, variables)
        else:
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
            if finite:
                optimizer.apply(grads, variables)
            else:
                optimizer.iterations.assign_add(1)  # Caffe has no such skip; count it as a step
            loss_scale.update(finite)
        return loss, optimizer.learning_rate(optimizer.iterations - 1)

    return train_step


def log_metrics(ckpt_dir: str | Path, step: int, metrics: dict[str, float], prefix: str = "eval"):
    """Writes evaluation metrics to the TensorBoard log `fit` writes in `ckpt_dir`, at `step`
    (shown beside the training loss as `<prefix>/<name>`)."""
    writer = tf.summary.create_file_writer(str(Path(ckpt_dir) / "tensorboard"))
    with writer.as_default(step=step):
        for name, value in metrics.items():
            tf.summary.scalar(f"{prefix}/{name}", float(value))
    writer.flush()


def _leaf_layers(layer: keras.layers.Layer, out: dict[str, keras.layers.Layer]) -> None:
    """Collects layers that own weights directly, looking inside nested models and wrappers."""
    children = list(getattr(layer, "layers", []) or [])
    inner = getattr(layer, "layer", None)  # TimeDistributed, Bidirectional, ...
    if inner is not None:
        children.append(inner)
    if children:
        for child in children:
            _leaf_layers(child, out)
    elif layer.weights:
        out.setdefault(layer.name, layer)


def copy_weights_by_name(src: keras.Model, dst: keras.Model) -> list[str]:
    """Copies every layer's weights from `src` into the layer of `dst` with the same name and shapes.

    Used where the original initialised one net from another (LRCN from the single-frame model;
    the captioner's fine-tuning stage from the frozen-CNN stage). Nested models and
    TimeDistributed wrappers are searched, so a backbone inside TimeDistributed matches the
    same backbone used frame by frame.

    Returns:
      The names of the layers copied.
    """
    src_layers: dict[str, keras.layers.Layer] = {}
    dst_layers: dict[str, keras.layers.Layer] = {}
    _leaf_layers(src, src_layers)
    _leaf_layers(dst, dst_layers)
    copied = []
    for name, layer in dst_layers.items():
        other = src_layers.get(name)
        if other is None:
            continue
        weights = other.get_weights()
        if [w.shape for w in weights] != [tuple(w.shape) for w in layer.weights]:
            continue
        layer.set_weights(weights)
        copied.append(name)
    return copied
