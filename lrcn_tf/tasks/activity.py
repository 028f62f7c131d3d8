"""Table 1, one row at a time: train (Caffe recipe, shared trainer), evaluate, save scores.

    data = Data("synthetic_ucf101", folder)
    sf = run_row(build("table1/single_frame/rgb"), data, workdir)            # trains, evaluates
    fc6 = run_row(build("table1/lrcn_fc6/rgb"), data, workdir, init=sf)      # from sf's CNN
    fusion = fuse_rows(rgb_result, flow_result, workdir)            # from saved scores only

Each row gets its own run folder (lrcn_tf.runtime.Run, id from the resolved config, the
dataset and the row it was initialised from): checkpoints and TensorBoard logs (loss,
learning rate, steps/s, the test accuracy) in `ckpt/`, the trained model in `final.keras`
(and its weights in `final.weights.h5`), per-video scores in `scores.npz`. Running the same
row again resumes training where it stopped, or returns the saved scores when it finished.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from lrcn_tf import runtime
from lrcn_tf.configs import ConfigError, to_dict
from lrcn_tf.configs.table1 import DEFECTS, Table1Config
from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.data.ucf101 import pipeline as ucf101_pipeline
from lrcn_tf.evaluation import activity as ev
from lrcn_tf.models import activity as models
from lrcn_tf.tasks.base import Data, RowResult
from lrcn_tf.training import distributed, optim, trainer


@dataclasses.dataclass(frozen=True)
class ActivityResult(RowResult):
    """A finished row: its video accuracy (percent) and where its scores and weights are."""

    model: str
    modality: str
    split: int
    accuracy: float
    missing_test_videos: int = 0  # test videos of the split that could not be scored

    @property
    def scores_path(self) -> Path:
        return self.run_dir / "scores.npz"

    @property
    def weights_path(self) -> Path:
        return self.run_dir / "final.weights.h5"

    @property
    def keras_path(self) -> Path:
        return self.run_dir / "final.keras"


def test_coverage(data_dir: str | Path, split: int) -> tuple[list[str], list[str]]:
    """(scored, missing): the split's test videos that were prepared ok, and those that were not.

    A video that failed in `prepare` (its status is in manifest.csv) cannot be scored; the
    accuracy is over the scored ones, and the count of the others is reported with the result.
    """
    info = ucf101.load_info(data_dir)
    if split not in info.splits:
        raise ucf101.UCF101FormatError(
            f"{data_dir}: no split {split} (this folder has splits {sorted(info.splits)})"
        )
    listed = info.splits[split]["test"]
    return [v for v in listed if v in info.videos], [v for v in listed if v not in info.videos]


def report_coverage(run: runtime.Run, data_dir: str | Path, split: int) -> int:
    """Writes test_videos.json (scored and missing) into the run folder, warns of missing ones.

    Returns:
      The number of missing test videos.
    """
    scored, missing = test_coverage(data_dir, split)
    record = {
        "split": split,
        "scored": len(scored),
        "missing": len(missing),
        "missing_videos": missing,
    }
    if not runtime.is_chief():  # across machines the chief writes and warns
        return len(missing)
    runtime.write_text_atomic(run.path("test_videos.json"), json.dumps(record, indent=1) + "\n")
    if missing:
        msg = (
            f"warning: {len(missing)} of {len(scored) + len(missing)} test videos of split {split} "
            f"were not prepared (see {Path(data_dir) / 'manifest.csv'}); the accuracy is over "
            f"the {len(scored)} scored"
        )
        print(msg, file=sys.stderr, flush=True)
        run.log("%s", msg)
    return len(missing)


def crop_size(cfg: Table1Config, data_dir: str | Path) -> int:
    """The config's crop, or the dataset's (227 for UCF-101 frames, 56 for the synthetic ones)."""
    return cfg.crop_size or ucf101.load_info(data_dir).crop_size


def _backbone_kwargs(cfg: Table1Config) -> dict:
    kwargs = {"fc_units": cfg.fc_units, "weights": cfg.backbone_weights}
    if cfg.conv_filters:
        kwargs["filters"] = cfg.conv_filters
    return kwargs


def build_model(cfg: Table1Config, num_classes: int, size: int) -> keras.Model:
    """The row's Keras model: clips (B, T, size, size, 3) -> logits (B, T, num_classes)."""
    kwargs = {"backbone": cfg.backbone, "backbone_kwargs": _backbone_kwargs(cfg)}
    if cfg.is_lrcn:
        kwargs.update(
            lstm_units=cfg.lstm_units,
            lstm_input_dropout=cfg.lstm_input_dropout,
            lstm_init=cfg.lstm_init,
            fc_dropout=cfg.dropout,
        )
    else:
        kwargs["dropout"] = cfg.dropout
    return models.build(cfg.model, (size, size, 3), num_classes, **kwargs)


def _squash(cfg: Table1Config) -> bool:
    return cfg.is_lrcn and cfg.defect_train_crop_only_when_mirroring


def _train_red_mean(cfg: Table1Config) -> bool:
    return cfg.is_lrcn and cfg.defect_train_red_mean


def train_dataset(
    cfg: Table1Config, data_dir: str | Path, size: int, shard: tuple[int, int] | None = None
) -> tf.data.Dataset:
    """Random frames (single-frame model) or 16-frame clips (LRCN) with one crop and mirror
    drawn each, as whole uint8 frames and the draws: `make_preprocess(cfg, size)` crops,
    mirrors and subtracts the mean in the train step, on the accelerator (the host only
    reads and decodes). With the original's crop-only-when-mirroring defect the host crops
    (or squashes) and yields uint8 clips instead. `shard` (part, parts): one worker's rows of
    every batch (training across machines; the pipelines' `shard`)."""
    common = dict(
        batch_size=cfg.train.batch_size,
        crop_size=size,
        seed=cfg.train.seed,
        scale=cfg.input_scale,
        mirror=cfg.train_mirror,
        normalised=False,
        crop_on_host=_squash(cfg),
        crop_only_when_mirroring=_squash(cfg),
        shard=shard,
    )
    if cfg.is_lrcn:
        return ucf101_pipeline.train_clips(
            data_dir, cfg.split, cfg.modality, clip_length=cfg.train_clip_length, **common
        )
    return ucf101_pipeline.train_frames(data_dir, cfg.split, cfg.modality, **common)


@tf.autograph.experimental.do_not_convert  # Python control flow on static structure only
def model_input(cfg: Table1Config, batch, size: int):
    """A batch of `train_dataset` -> (float32 clips [B, T, size, size, 3] as the model sees
    them, labels [B]): cropped to `size`, mirrored, mean-subtracted, scaled and put in the
    model's channel order (the same values the pipeline's float32 path gives); a batch of
    frames becomes a batch of one-frame clips."""
    red = _train_red_mean(cfg)
    if len(batch) == 2:  # cropped on the host (the squash defect)
        x, y = batch
        x = ucf101_pipeline.normalise(x, cfg.modality, scale=cfg.input_scale, caffe_red_mean=red)
    else:
        x, crops, y = batch
        x = ucf101_pipeline.crop_and_normalise(
            x,
            crops,
            size,
            cfg.modality,
            scale=cfg.input_scale,
            caffe_red_mean=red,
            mirror=cfg.train_mirror,  # without it the pipeline clears every mirror flag
        )
    x = ucf101_pipeline.to_channel_order(x, cfg.channel_order)
    if len(x.shape) == 4:
        x = x[:, None]
    return x, y


def make_preprocess(cfg: Table1Config, size: int):
    """The train step's first stage (`trainer.fit(preprocess=...)`): `model_input`, on the
    accelerator."""

    def preprocess(batch):
        return model_input(cfg, batch, size)

    return preprocess


def loss_fn(model: keras.Model, batch, training: bool) -> tf.Tensor:
    """Softmax loss at every time step of a preprocessed (clips, labels) batch."""
    x, y = batch
    return models.per_step_loss(model(x, training=training), y)


# -- the embedded "ImageNet" stage (docs/recipe.md) -------------------------------------------


def pretext_model(cfg: Table1Config, size: int) -> keras.Model:
    """The row's CNN (named as in the row's model, so its layers copy by name) with one
    softmax head per label of the still frames: frame -> [shape, position, hue] logits."""
    from keras import layers

    from lrcn_tf.data.ucf101.synthetic import STILL_HEADS
    from lrcn_tf.models import backbones

    bb = backbones.build(
        cfg.backbone,
        (size, size, 3),
        dropout=cfg.dropout,
        include_top=False,
        **_backbone_kwargs(cfg),
    )
    frame = keras.Input((size, size, 3), name="still")
    x = bb(frame)
    heads = [
        layers.Dense(k, dtype="float32", name=f"pretext_{h}")(x) for h, k in STILL_HEADS.items()
    ]
    return keras.Model(frame, heads, name="pretext")


def pretrain(
    cfg: Table1Config,
    data_dir: str | Path,
    workdir: str | Path,
    strategy: tf.distribute.Strategy | None = None,
) -> Path:
    """Pre-trains the row's CNN on the renderer's still frames (once; then found again).

    Its run folder, `<workdir>/table1-pretext-<hash>`, is keyed by the stage's settings, the
    CNN, the input's normalisation and the frame size only: every split and both inputs of
    a table share one pre-trained CNN, as they all shared the ImageNet weights.

    Returns:
      The pre-trained model's weights file (`pretext_model(cfg, size)`).
    """
    from lrcn_tf.data.ucf101.synthetic import render_stills

    info = ucf101.load_info(data_dir)
    size = crop_size(cfg, data_dir)
    keys = ("backbone", "fc_units", "conv_filters", "dropout", "input_scale", "channel_order")
    record = {k: v for k, v in to_dict(cfg).items() if k in keys}
    record.update(
        pretext_images=cfg.pretext_images,
        pretext_train=to_dict(cfg.pretext_train),
        frame_size=list(info.frame_size),
        crop=size,
        renderer=1,
    )
    run = runtime.Run(workdir, "table1-pretext", record)
    done = run.path("pretext.weights.h5")
    if distributed.chief_decides(strategy, done.exists()):
        return done
    tc = cfg.pretext_train
    images, labels = render_stills(cfg.pretext_images, tc.seed, *info.frame_size, crop=size)
    runtime.seed_everything(tc.seed)
    with distributed.scope(strategy):
        model = pretext_model(cfg, size)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images), seed=tc.seed)
    ds = ds.batch(tc.batch_size, drop_remainder=True).prefetch(ucf101_pipeline.PREFETCH)
    ds = ds.with_options(ucf101_pipeline.training_options())  # as the UCF-101 train pipelines

    def preprocess(batch):  # the train step's first stage, on the accelerator
        x, y = batch
        x = ucf101_pipeline.normalise(x, "rgb", scale=cfg.input_scale)
        return ucf101_pipeline.to_channel_order(x, cfg.channel_order), y

    def pretext_loss(model, batch, training):
        x, y = batch
        logits = model(x, training=training)
        return tf.add_n(
            [
                tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y[:, i], logits=z)
                )
                for i, z in enumerate(logits)
            ]
        )

    history = trainer.fit(
        model,
        ds,
        pretext_loss,
        tc,
        run.path("ckpt"),
        description="pretext",
        checkpoint_iterator=False,
        preprocess=preprocess,
        strategy=strategy,
    )
    run.log("pre-trained on %d stills: losses %s", len(images), history["losses"][-3:])
    if distributed.is_chief(strategy):
        model.save_weights(str(done))
    distributed.barrier(strategy)  # the other workers read it next
    return done


def train(
    cfg: Table1Config,
    data_dir: str | Path,
    ckpt_dir: str | Path,
    *,
    init_weights: str | Path | None = None,
    pretext_weights: str | Path | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[keras.Model, dict]:
    """Builds the row's model (seeded), initialises it, and trains it with the shared trainer.

    Args:
      cfg: the row's config.
      data_dir: a prepared UCF-101 folder.
      ckpt_dir: checkpoints and TensorBoard logs (resumed from when they exist).
      init_weights: final weights of the trained single-frame model of the same split and
        modality; LRCN copies its CNN layers (conv1 ... fc6/fc7) from it, as the original did.
      pretext_weights: `pretrain`'s weights; the single-frame model copies its CNN layers
        from them (the embedded stand-in for the ImageNet weights).
      strategy: e.g. tf.distribute.MirroredStrategy; the model is built under its scope.

    Returns:
      (model, the trainer's history).
    """
    info = ucf101.load_info(data_dir)
    size = crop_size(cfg, data_dir)
    runtime.seed_everything(cfg.train.seed)
    with distributed.scope(strategy):
        model = build_model(cfg, info.num_classes, size)
        if init_weights is not None:
            source = build_model(
                dataclasses.replace(cfg, model="single_frame"), info.num_classes, size
            )
            source.load_weights(str(init_weights))
            copied = trainer.copy_weights_by_name(source, model)
            if not copied:
                raise ValueError(f"{cfg.model}: no layer of {init_weights} matches the model")
        if pretext_weights is not None:
            source = pretext_model(cfg, size)
            source.load_weights(str(pretext_weights))
            if not trainer.copy_weights_by_name(source, model):
                raise ValueError(f"{cfg.model}: no layer of {pretext_weights} matches the model")
    history = trainer.fit(
        model,
        lambda shard: train_dataset(cfg, data_dir, size, shard),  # each worker: its rows
        loss_fn,
        cfg.train,
        ckpt_dir=ckpt_dir,
        preprocess=make_preprocess(cfg, size),
        multipliers=optim.multipliers_from_rules(models.MULTIPLIER_RULES),
        strategy=strategy,
        description=f"split{cfg.split} {cfg.model}/{cfg.modality}",
    )
    return model, history


# With `eval_per_video` (small data), this many videos go through the model in one call:
# fewer, larger calls (each clip's logits are the same). See docs/performance.md.
VIDEOS_PER_CALL = 8


def predictor(model: keras.Model, channel_order: str = "rgb"):
    """`predict(clips) -> logits`: normalised clips of the pipelines (N, T, h, w, C), or (N,
    crops, T, h, w, C) as test elements hold them, numpy or tensors -> numpy (N [* crops], T,
    K), in the model's `channel_order`, at inference (dropout off), one compiled call per
    batch (retraced for new shapes only while needed). A tensor goes in without a copy."""

    def forward(x):
        return model(ucf101_pipeline.to_channel_order(x, channel_order), training=False)

    compiled = tf.function(forward, reduce_retracing=True)

    def predict(x):
        x = x if tf.is_tensor(x) else tf.constant(x)
        if x.shape.rank == 6:  # crops into the batch (a reshape shares the buffer)
            x = tf.reshape(x, [-1, *x.shape[2:]])
        return compiled(x).numpy()

    return predict


def evaluate(
    model: keras.Model, cfg: Table1Config, data_dir: str | Path
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per-video scores of the split's test videos with the original protocol.

    With `cfg.eval_per_video` all crops of all clips of `VIDEOS_PER_CALL` videos go through
    the model in one forward pass (tf.data puts them together); otherwise (real UCF-101 on a full-size net) clips are streamed in batches of
    `cfg.eval_batch_clips`, each with all its crops.

    Returns:
      (video names, labels (V,), mean softmax scores (V, K)).
    """
    videos = ucf101.split_videos(data_dir, cfg.split, "test")
    info = ucf101.load_info(data_dir)
    data = ucf101_pipeline.test_clips(
        data_dir,
        cfg.split,
        cfg.modality,
        crop_size=crop_size(cfg, data_dir),
        per_video=cfg.eval_per_video,
        videos_per_element=VIDEOS_PER_CALL if cfg.eval_per_video else 1,
        scale=cfg.input_scale,
        batch_size=None if cfg.eval_per_video else cfg.eval_batch_clips,
        **cfg.test_protocol,
    )
    scores, labels = ev.evaluate_videos(
        predictor(model, cfg.channel_order),
        data,  # tensors: the clips reach the model without a copy
        len(videos),
        info.num_classes,
    )
    missing = [v.name for v, n in zip(videos, labels) if n < 0]
    if missing:
        raise RuntimeError(f"{len(missing)} test videos were not evaluated, e.g. {missing[0]}")
    expected = np.array([v.label for v in videos])
    if not np.array_equal(labels, expected):
        raise RuntimeError("test_clips labels disagree with the split list")
    return [v.name for v in videos], labels, scores


def run_row(
    cfg: Table1Config,
    data: Data,
    workdir: str | Path,
    *,
    init: ActivityResult | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> ActivityResult:
    """Trains and evaluates one row in its run folder, or returns it if it already finished.

    Args:
      cfg: the row (`table1/<model>/<modality>`, its split set).
      data: a prepared UCF-101 folder.
      workdir: where run folders go.
      init: the finished single-frame row of the same split and modality (LRCN rows start
        from its CNN, as the original did).
      strategy: e.g. tf.distribute.MirroredStrategy, or MultiWorkerMirroredStrategy: then
        every worker trains, the chief alone writes the run folder's files and evaluates,
        and another worker returns the row unevaluated (accuracy nan, no `values`) once the
        chief has saved the weights.

    Returns:
      The row's video accuracy, keyed (model, split<N>, modality) in `values`.
    """
    data_dir = data.folder
    if cfg.pretext and not data.synthetic:
        raise ConfigError(
            "pretext (the embedded ImageNet stage) is for synthetic_ucf101; with real data use "
            "--preset paper, or --set pretext=false"
        )
    if cfg.is_lrcn and cfg.init_from_single_frame and init is None:
        raise ValueError(f"{cfg.model} is initialised from the single-frame model: pass init=")
    init = init if cfg.is_lrcn and cfg.init_from_single_frame else None
    run = runtime.Run(
        workdir,
        "table1",
        {
            "row": f"{cfg.model}/{cfg.modality}/split{cfg.split}",
            "config": _run_record(cfg),
            "dataset": data.name,
            "data_dir": str(Path(data_dir).resolve()),
            "init_from": init.run_id if init else None,
            "precision": keras.mixed_precision.global_policy().name,
            "replicas": strategy.num_replicas_in_sync if strategy is not None else 1,
        },
    )
    missing = report_coverage(run, data_dir, cfg.split)
    result = ActivityResult(
        run.id, run.dir, {}, cfg.model, cfg.modality, cfg.split, float("nan"), missing
    )
    if distributed.chief_decides(strategy, result.scores_path.exists()):
        if not distributed.is_chief(strategy):
            return result
        saved = ev.load_scores(result.scores_path)
        acc = ev.accuracy(saved["scores"], saved["labels"])
        run.log("already evaluated: accuracy %.2f%%", acc)
        return _with_accuracy(result, acc)
    pretext = (
        pretrain(cfg, data_dir, workdir, strategy) if cfg.pretext and not cfg.is_lrcn else None
    )
    model, history = train(
        cfg,
        data_dir,
        run.path("ckpt"),
        init_weights=init.weights_path if init else None,
        pretext_weights=pretext,
        strategy=strategy,
    )
    run.log(
        "trained to step %d (resumed from %d); losses %s",
        history["step"],
        history["resumed_from"],
        history["losses"][-3:],
    )
    if distributed.is_chief(strategy):
        model.save_weights(str(result.weights_path))
        model.save(result.keras_path)  # the whole model: keras.models.load_model(...) reloads it
    distributed.barrier(strategy)  # the weights are on disk for the rows starting from them
    if not distributed.is_chief(strategy):
        return result
    videos, labels, scores = evaluate(model, cfg, data_dir)
    ev.save_scores(result.scores_path, videos, labels, scores)
    acc = ev.accuracy(scores, labels)
    run.log("video accuracy %.2f%% on %d test videos", acc, len(videos))
    trainer.log_metrics(run.path("ckpt"), history["step"], {"video_accuracy": acc})
    return _with_accuracy(result, acc)


def _with_accuracy(result: ActivityResult, acc: float) -> ActivityResult:
    key = (result.model, f"split{result.split}", result.modality)
    return dataclasses.replace(result, accuracy=acc, values={key: acc})


@dataclasses.dataclass(frozen=True)
class FusionResult(RowResult):
    """fusion_half / fusion_third of one model and split, and the sweep over the RGB weight."""

    rgb_weights: np.ndarray
    sweep: np.ndarray


def fuse_rows(
    rgb: ActivityResult, flow: ActivityResult, workdir: str | Path, fusion_third: float = 1 / 3
) -> FusionResult:
    """fusion_half / fusion_third accuracies from the saved RGB and flow scores, and the sweep.

    Nothing is re-run: the two rows' `scores.npz` are read. Writes `fusion.npz` (the sweep)
    and `fusion_sweep.png` in a run folder of its own (id from the two rows' run ids and the
    weights).

    Args:
      rgb, flow: the two finished rows.
      workdir: where the fusion's run folder goes.
      fusion_third: the RGB weight of the fusion_third row (1/3 in the paper, 0.33 in the
        original code: the config's `fusion_third`).

    Returns:
      The accuracies keyed (model, split<N>, fusion_half|fusion_third), and the sweep.
    """
    weights = {**ev.FUSION_WEIGHTS, "fusion_third": fusion_third}
    record = {"fusion_of": [rgb.run_id, flow.run_id]}
    if fusion_third != ev.FUSION_WEIGHTS["fusion_third"]:
        record["weights"] = weights
    run = runtime.Run(workdir, "table1", record)
    r, f, labels = ev.aligned(ev.load_scores(rgb.scores_path), ev.load_scores(flow.scores_path))
    out = {name: ev.accuracy(ev.fuse(r, f, p), labels) for name, p in weights.items()}
    ps, accs = ev.fusion_sweep(r, f, labels)
    np.savez(run.path("fusion.npz"), rgb_weight=ps, accuracy=accs)
    ev.plot_fusion_sweep(
        {f"{rgb.model} split{rgb.split}": (ps, accs)}, run.path("fusion_sweep.png")
    )
    run.log("fusion of %s and %s: %s", rgb.run_id, flow.run_id, out)
    values = {(rgb.model, f"split{rgb.split}", name): acc for name, acc in out.items()}
    return FusionResult(run.id, run.dir, values, ps, accs)


def _run_record(cfg: Table1Config) -> dict:
    """The config as the run id sees it: fields that do not change this row are left out
    (so that e.g. `--set lstm_units=128` reuses the trained single-frame models), and so
    are new fields at their default (so that run folders made before they existed are
    still found). The fusion weight is the fusion's, not the row's."""
    record = to_dict(cfg)
    record.pop("fusion_third")
    for key in list(record):
        if not cfg.applies(key):
            record.pop(key)
    for key, default in _NEW_FIELDS.items():
        if record.get(key, default) == default:
            record.pop(key, None)
    if not cfg.pretext:
        record.pop("pretext_images", None)
        record.pop("pretext_train", None)
    return record


# Fields added after run folders existed, with their defaults.
_NEW_FIELDS = {
    "channel_order": "rgb",
    "test_every_frame": False,
    "test_final_clip_twice": False,
    **dict.fromkeys(DEFECTS, False),
    "pretext": False,
}


# -- the authors' released models (reproduce.table1 --weights caffe) ----------------------------

# (model, modality) -> the caffemodel the authors released for split 1 (no LRCN-fc7 model).
RELEASED = {
    ("single_frame", "rgb"): "single_frame_all_layers_hyb_RGB_iter_5000",
    ("single_frame", "flow"): "single_frame_all_layers_hyb_flow_iter_50000",
    ("lrcn_fc6", "rgb"): "RGB_lstm_model_iter_30000",
    ("lrcn_fc6", "flow"): "flow_lstm_model_iter_50000",
}
_CAFFE_CLASSIFIERS = ("fc8-ucf", "fc8-final")


def caffe_widths(weights: dict, source: str) -> dict:
    """The layer widths of a hybrid-net caffemodel ({layer: blobs}): conv filters, fc6 units,
    classes and (LRCN) LSTM units, so that the project's model is built to fit it."""
    from lrcn_tf.caffe import CaffeError

    try:
        out = {
            "filters": [int(weights[f"conv{i}"][0].shape[0]) for i in range(1, 6)],
            "fc_units": int(weights["fc6"][0].shape[0]),
        }
        classifier = next(n for n in _CAFFE_CLASSIFIERS if n in weights)
        out["classes"] = int(weights[classifier][0].shape[0])
        if "lstm1" in weights:
            out["lstm_units"] = int(weights["lstm1"][-1].shape[-1])
    except (KeyError, IndexError, StopIteration):
        raise CaffeError(
            f"{source}: not a hybrid-net activity model (needs conv1..conv5, fc6 and "
            f"{' or '.join(_CAFFE_CLASSIFIERS)}; it has {', '.join(list(weights)[:12])})"
        ) from None
    return out


def released_model(cfg: Table1Config, widths: dict, size: int = 227) -> keras.Model:
    """The project's model for `cfg` (single_frame or lrcn_fc6), built with `widths`."""
    kwargs = {
        "backbone": cfg.backbone,
        "backbone_kwargs": {"filters": tuple(widths["filters"]), "fc_units": widths["fc_units"]},
    }
    if cfg.is_lrcn:
        if "lstm_units" not in widths:
            raise ValueError(f"{cfg.model}: the caffemodel has no lstm1 layer")
        kwargs.update(
            lstm_units=widths["lstm_units"],
            lstm_input_dropout=cfg.lstm_input_dropout,
            lstm_init=cfg.lstm_init,
            fc_dropout=cfg.dropout,
        )
    else:
        kwargs["dropout"] = cfg.dropout
    return models.build(cfg.model, (size, size, 3), widths["classes"], **kwargs)


def convert_released(cfg: Table1Config, caffemodel: str | Path, workdir: str | Path):
    """The caffemodel in the project's model, converted once into a run folder of its own
    (`<workdir>/caffe-<hash>`, keyed by the file's path, size and time, and the model kind)
    and loaded from there afterwards.

    Returns:
      (model, widths, the conversion's run id).
    """
    from lrcn_tf import caffe

    caffemodel = Path(caffemodel)
    try:
        stat = caffemodel.stat()
    except OSError as e:
        raise caffe.CaffeError(f"{caffemodel}: cannot read: {e.strerror or e}") from None
    record = {
        "caffemodel": str(caffemodel.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "model": cfg.model,
        "backbone": cfg.backbone,
    }
    run = runtime.Run(workdir, "caffe", record)
    done, widths_file = run.path("converted.weights.h5"), run.path("widths.json")
    if done.exists() and widths_file.exists():
        widths = json.loads(widths_file.read_text())
        model = released_model(cfg, widths)
        model.load_weights(str(done))
        return model, widths, run.id
    weights = caffe.read_weights(caffemodel)
    widths = caffe_widths(weights, str(caffemodel))
    if cfg.is_lrcn != ("lstm_units" in widths):
        kind = "an LRCN" if "lstm_units" in widths else "a single-frame"
        raise caffe.CaffeError(f"{caffemodel}: {kind} model, but it is given for {cfg.model}")
    model = released_model(cfg, widths)
    loaded = caffe.load_into(model, weights)
    run.log("converted %s: %s", caffemodel, loaded)
    model.save_weights(str(done))
    runtime.write_text_atomic(widths_file, json.dumps(widths) + "\n")
    return model, widths, run.id


def run_released_row(
    cfg: Table1Config, caffemodel: str | Path, data: Data, workdir: str | Path
) -> ActivityResult:
    """Evaluates one of the authors' caffemodels with the row's test protocol (no training);
    the scores go to a run folder recording `weights: caffe` and the file."""
    from lrcn_tf import caffe

    data_dir = data.folder
    model, widths, conversion = convert_released(cfg, caffemodel, workdir)
    info = ucf101.load_info(data_dir)
    if widths["classes"] != info.num_classes:
        raise caffe.CaffeError(
            f"{caffemodel}: {widths['classes']} classes, but {data_dir} has {info.num_classes}"
        )
    run = runtime.Run(
        workdir,
        "table1",
        {
            "row": f"{cfg.model}/{cfg.modality}/split{cfg.split}",
            "weights": "caffe",
            "caffemodel": str(Path(caffemodel).resolve()),
            "conversion": conversion,
            "protocol": {k: to_dict(cfg)[k] for k in _PROTOCOL},
            "dataset": data.name,
            "data_dir": str(Path(data_dir).resolve()),
        },
    )
    missing = report_coverage(run, data_dir, cfg.split)
    result = ActivityResult(
        run.id, run.dir, {}, cfg.model, cfg.modality, cfg.split, float("nan"), missing
    )
    if result.scores_path.exists():
        saved = ev.load_scores(result.scores_path)
        return _with_accuracy(result, ev.accuracy(saved["scores"], saved["labels"]))
    videos, labels, scores = evaluate(model, cfg, data_dir)
    ev.save_scores(result.scores_path, videos, labels, scores)
    acc = ev.accuracy(scores, labels)
    run.log("%s (caffe) video accuracy %.2f%% on %d test videos", caffemodel, acc, len(videos))
    return _with_accuracy(result, acc)


# The config fields that make the test protocol (a released model has no training fields).
_PROTOCOL = (
    "model",
    "modality",
    "split",
    "crop_size",
    "input_scale",
    "channel_order",
    "test_crops",
    "test_clip_length",
    "test_stride",
    "test_every_frame",
    "test_final_clip_twice",
    "eval_per_video",
    "eval_batch_clips",
    *DEFECTS[2:],
)
