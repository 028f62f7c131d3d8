"""Image description (Table 3, and the captioner Tables 2 and 4 reuse): `run_row`, and its steps.

    result = run_row(build("table3/lrcn_2f"), Data("synthetic_flickr30k", folder), workdir)

The steps, for a table that needs only some of them:

    encoder = build_encoder(cfg.encoder)
    pretrain_encoder(cfg.encoder, encoder, run.path("pretext"), image_size=64)  # synthetic only
    model, decoder = build_captioner(cfg, encoder, vocab_size)
    train_two_stages(cfg, model, encoder, data_dir, run)      # CNN frozen, then fine-tuned
    captions = generate(cfg, encoder, decoder, data_dir, "test", vocab)

Stage 1 trains the LSTMs, the embedding, the softmax and fc8 (the original's frozen CNN still
learnt fc8); stage 2 continues the same model with every CNN layer trainable at the
learning-rate multipliers 0.1 (weights) / 0.2 (biases). Each stage checkpoints into its own
folder, so a rerun resumes the stage that was cut short and skips the finished one (the
shared trainer restores its weights and returns).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from lrcn_tf.configs.table3 import EncoderConfig, Table3Config
from lrcn_tf.data.captions import format as captions
from lrcn_tf.data.captions import pipeline as captions_pipeline
from lrcn_tf.data.captions import synthetic as synthetic_captions
from lrcn_tf.data.text import Vocabulary
from lrcn_tf.models import backbones, captioner
from lrcn_tf.models.decoding import CaptionGenerator
from lrcn_tf.tasks.base import Data, RowResult
from lrcn_tf.training import distributed, optim, trainer


def build_encoder(enc: EncoderConfig) -> keras.Model:
    """The backbone with its classifier: images (B, S, S, 3) -> fc8 (B, classes)."""
    kwargs = {
        "weights": enc.weights,
        "dropout": enc.dropout,
        "include_top": True,
        "classes": enc.classes,
        "fc_units": enc.fc_units,
    }
    if enc.conv_filters:
        kwargs["filters"] = enc.conv_filters
    return backbones.build(enc.backbone, (enc.crop_size, enc.crop_size, 3), **kwargs)


def _pretext_loss(model, batch, training):
    images, labels = batch
    logits = tf.cast(model(images, training=training), tf.float32)
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )


def pretrain_encoder(
    enc: EncoderConfig,
    encoder: keras.Model,
    folder: Path,
    image_size: int,
    seed: int = 1701,
    strategy: tf.distribute.Strategy | None = None,
) -> None:
    """Trains the small CNN to classify generated one-object-kind scenes by shape x colour.

    Our stand-in for the paper's ImageNet pre-training of CaffeNet: a classification task on
    its own random scenes (never the caption images), after which fc7 and fc8 describe what
    is in an image without having seen a caption. Saved as
    `folder/encoder.weights.h5`; when that file exists it is loaded instead. Under a
    multi-worker `strategy` every worker trains, the chief saves.
    """
    done = folder / "encoder.weights.h5"
    if distributed.chief_decides(strategy, done.exists()):
        encoder.load_weights(done)
        return
    rng = np.random.default_rng([seed, 5])  # a stream of its own, not the dataset's
    images, labels = synthetic_captions.pretext_batch(rng, enc.pretext_images, image_size)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images), seed=seed)
    ds = ds.map(
        lambda x, y: (
            captions_pipeline.preprocess_array(x, enc.crop_size, True, None, enc.pixel_scale),
            y,
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ds = ds.batch(enc.pretext_train.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    trainer.fit(
        encoder,
        ds,
        _pretext_loss,
        enc.pretext_train,
        folder / "ckpt",
        description="encoder pre-training",
        checkpoint_iterator=False,
        strategy=strategy,
    )
    if distributed.is_chief(strategy):
        encoder.save_weights(done)
    distributed.barrier(strategy)


# Fields that change only decoding / scoring: left out of the training run's id, so decoding
# differently reuses the trained model, and Table 2 finds the captioner Table 3 trained.
DECODE_FIELDS = ("beam_size", "max_length", "eval_batch", "nn_distance")


def training_run(cfg: Table3Config, workdir: str | Path, dataset: str):
    """The run folder of a captioner's training (`<workdir>/table3-<hash>`), shared by Tables 2-4."""
    from lrcn_tf import runtime
    from lrcn_tf.configs import to_dict

    record = {k: v for k, v in to_dict(cfg).items() if k not in DECODE_FIELDS}
    for key, default in _NEW_FIELDS.items():  # run folders made before they existed
        if record.get(key) == default:
            record.pop(key)
    return runtime.Run(workdir, "table3", {"config": record, "dataset": dataset})


# Fields added after run folders existed, and the value those runs trained with.
_NEW_FIELDS = {"predict_bias_lr_mult": 1.0, "train_restval": False}


def pretrained_encoder(
    enc: EncoderConfig,
    workdir: str | Path,
    image_size: int,
    seed: int,
    strategy: tf.distribute.Strategy | None = None,
) -> keras.Model:
    """`build_encoder`, pre-trained (once, then loaded) if `enc.pretext`.

    The pre-training gets a run folder of its own, `<workdir>/table3-pretext-<hash>`, keyed by
    the encoder's config, the image size and the seed only: every LRCN variant and every table
    (2, 3, 4) starts from the same pre-trained CNN, as they all started from ImageNet CaffeNet.
    """
    from lrcn_tf import runtime
    from lrcn_tf.configs import to_dict

    with distributed.scope(strategy):
        encoder = build_encoder(enc)
    if enc.pretext:
        record = {"encoder": to_dict(enc), "image_size": image_size, "seed": seed}
        run = runtime.Run(workdir, "table3-pretext", record)
        pretrain_encoder(enc, encoder, run.dir, image_size, seed, strategy)
    return encoder


def build_captioner(cfg: Table3Config, encoder: keras.Model, vocab_size: int):
    """(image captioner model, its decoder); the decoder reads the encoder's fc8."""
    decoder = captioner.build_decoder(
        vocab_size,
        cond_dim=encoder.output_shape[-1],
        num_layers=cfg.num_layers,
        factored=cfg.factored,
        embed_dim=cfg.embed_dim,
        hidden=cfg.hidden,
        init_scale=cfg.init_scale,
        dropout=cfg.dropout,
        seed=cfg.stage1.seed,
    )
    return captioner.build_image_captioner(encoder, decoder), decoder


def _leaf_layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _cnn_rules(encoder: keras.Model, mult: tuple[float, float], only: str | None = None):
    """Multiplier rules (exact variable paths) for the encoder's variables: Caffe's decay_mult
    stays 1 for weights and 0 for biases (no weight decay is used anyway)."""
    rules = []
    for layer in _leaf_layers(encoder):
        if only is not None and layer.name != only:
            continue
        for v in layer.weights:
            path = optim.variable_path(v)
            bias = path.endswith("bias")
            rules.append(
                ("^" + re.escape(path) + "$", mult[1] if bias else mult[0], 0.0 if bias else 1.0)
            )
    return rules


def decoder_rules(cfg: Table3Config) -> list[tuple[str, float, float]]:
    """Multiplier rules of the decoder: the word predictor's bias at `predict_bias_lr_mult`
    with no decay (lrcn.prototxt); every other decoder variable at (1, 1)."""
    return [(r"(^|/)predict/bias$", cfg.predict_bias_lr_mult, 0.0)]


def train_two_stages(
    cfg: Table3Config,
    model: keras.Model,
    encoder: keras.Model,
    data_dir: str | Path,
    run,
    cache: bool,
    strategy: tf.distribute.Strategy | None = None,
) -> dict:
    """Stage 1 (CNN frozen but fc8) and, if `cfg.finetune`, stage 2 (CNN fine-tuned); the
    trained captioner is saved as `final.keras` in the run folder (by the chief alone under
    a multi-worker `strategy`; the model must have been built in its scope).

    Returns:
      {"stage1": trainer history, "stage2": trainer history or None}.
    """
    enc = cfg.encoder
    loss_fn = captioner.make_loss_fn(cfg.loss_weight)

    splits = ("train", "restval") if cfg.train_restval else "train"

    def data(tc):
        return captions_pipeline.train_pairs(
            data_dir,
            tc.batch_size,
            enc.crop_size,
            split=splits,
            resize=enc.resize,
            pixel_scale=enc.pixel_scale,
            mirror=cfg.mirror,
            max_words=cfg.max_words,
            seed=tc.seed,
            cache=cache,
        )

    layers = list(_leaf_layers(encoder))
    if "fc8" not in {layer.name for layer in layers}:
        raise ValueError(f"encoder {encoder.name} has no fc8 layer")
    for layer in layers:
        layer.trainable = layer.name == "fc8"
    predict = decoder_rules(cfg)
    mults = optim.multipliers_from_rules(predict + _cnn_rules(encoder, cfg.fc8_lr_mult, only="fc8"))
    history = {"stage2": None}
    history["stage1"] = trainer.fit(
        model,
        data(cfg.stage1),
        loss_fn,
        cfg.stage1,
        run.path("ckpt_stage1"),
        multipliers=mults,
        description="stage 1 (CNN frozen)",
        strategy=strategy,
    )
    run.log("stage 1 done: %s", history["stage1"]["losses"][-1:] or "resumed at the end")
    if cfg.finetune:
        for layer in layers:
            layer.trainable = True
        mults = optim.multipliers_from_rules(predict + _cnn_rules(encoder, cfg.cnn_lr_mult))
        history["stage2"] = trainer.fit(
            model,
            data(cfg.stage2),
            loss_fn,
            cfg.stage2,
            run.path("ckpt_stage2"),
            multipliers=mults,
            description="stage 2 (CNN fine-tuned)",
            strategy=strategy,
        )
        run.log("stage 2 done: %s", history["stage2"]["losses"][-1:] or "resumed at the end")
    if distributed.is_chief(strategy):
        model.save(run.path("final.keras"))  # keras.models.load_model(...) reloads it
    return history


def image_features(
    encoder: keras.Model,
    enc: EncoderConfig,
    data_dir: str | Path,
    split: str,
    layer: str = "fc8",
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """(image ids (N,), features (N, D)) of a split's centre crops; `layer` e.g. fc8 or relu7."""
    net = encoder if layer == encoder.layers[-1].name else backbones.features(encoder, layer)
    ids, feats = [], []
    for images, image_ids in captions_pipeline.eval_images(
        data_dir, split, batch_size, enc.crop_size, resize=enc.resize, pixel_scale=enc.pixel_scale
    ):
        feats.append(np.asarray(net(images, training=False), np.float32))
        ids.append(image_ids.numpy())
    return np.concatenate(ids), np.concatenate(feats)


def generate(
    cfg: Table3Config,
    encoder: keras.Model,
    decoder: keras.Model,
    data_dir: str | Path,
    split: str,
    vocab: Vocabulary,
    beam_size: int | None = None,
    temperature: float | None = None,
    seed: int = 0,
) -> dict[int, str]:
    """{image_id: caption} for every image of `split`: beam search (beam 1 = greedy), or
    sampling when `temperature` is given."""
    ids, feats = image_features(encoder, cfg.encoder, data_dir, split, "fc8", cfg.eval_batch)
    gen = CaptionGenerator(decoder, max_length=cfg.max_length)
    if temperature:
        out = gen.sample(feats, temperature=temperature, seed=seed, batch_size=cfg.eval_batch)
    else:
        out = gen.beam_search(feats, beam_size or cfg.beam_size, batch_size=cfg.eval_batch)
    return {int(i): vocab.decode(t) for i, t in zip(ids, out.tokens)}


# -- Table 3: one row ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DescriptionResult(RowResult):
    """Scores of LRCN and the 1-NN baselines, and the captions behind them.

    Attributes:
      references: image id -> its reference captions (the scored split).
      predictions: {"lrcn": {image id: caption}, "nn_fc7": ..., "nn_fc8": ...}; a 1-NN row
        gives the neighbour's first caption (as a person would be shown one).
      decode_dir: the decoding's folder inside the run folder (decode.json, predictions,
        scores.json).
    """

    references: dict[int, list[str]]
    predictions: dict[str, dict[int, str]]
    decode_dir: Path


def check_encoder(cfg: Table3Config, data: Data) -> None:
    """The synthetic pre-training stands in for ImageNet on the embedded data only."""
    if cfg.encoder.pretext and not data.synthetic:
        from lrcn_tf.configs import ConfigError

        raise ConfigError("encoder.pretext is for the synthetic datasets; give encoder.weights")


def _restval_merged(data_dir: Path) -> bool:
    """Whether a prepared COCO folder's train split includes Karpathy's restval images."""
    try:
        info = json.loads((Path(data_dir) / "info.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("restval") == "train" and "karpathy_json" in info.get("source", {})


def _caption_scores(references, predictions) -> dict[str, float]:
    from lrcn_tf.evaluation.captioning import find_java, score_captions

    metrics = ["bleu", "cider", "rouge_l"] + (["meteor"] if find_java() else [])
    return score_captions(references, predictions, metrics)


def run_row(
    cfg: Table3Config,
    data: Data,
    workdir: str | Path,
    *,
    split: str = "test",
    temperature: float | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> DescriptionResult:
    """Table 3 for one LRCN variant: the 1-NN fc7 / fc8 baselines, then LRCN trained and decoded.

    Args:
      cfg: the variant (`table3/lrcn_<variant>`).
      data: a prepared caption folder.
      workdir: where run folders go; training resumes from its run folder.
      split: the split scored (`val` for tuning).
      temperature: sample captions at this temperature instead of beam search.
      strategy: None, MirroredStrategy or MultiWorkerMirroredStrategy (models built in its
        scope); across machines every worker trains, the chief alone runs the baselines,
        decodes, scores and writes, and another worker returns no scores.

    Returns:
      Scores keyed (row, split, metric) for rows lrcn, nn_fc7, nn_fc8, and the captions.
    """
    from lrcn_tf import runtime
    from lrcn_tf.configs import to_dict
    from lrcn_tf.evaluation import nearest_neighbour

    check_encoder(cfg, data)
    if not cfg.train_restval and _restval_merged(data.folder):
        logging.warning(
            "%s was prepared with --restval train, so its train split holds Karpathy's restval "
            "images (the original trained on train2014 only); prepare again with --restval "
            "keep to leave them out",
            data.folder,
        )
    info = captions.load_info(data.folder)
    run = training_run(cfg, workdir, data.name)
    runtime.seed_everything(cfg.stage1.seed)

    # 1. The ImageNet-style encoder (pre-trained here on the synthetic data) and the baselines,
    #    which use it before any caption training touches it.
    encoder = pretrained_encoder(
        cfg.encoder, workdir, info.image_size or 64, cfg.stage1.seed, strategy
    )
    refs = captions.references(data.folder, split)
    chief = distributed.is_chief(strategy)
    train_caps = captions.references(data.folder, "train")
    scores, predictions = {}, {}
    for row, layer in (("nn_fc7", "relu7"), ("nn_fc8", "fc8")) if chief else ():
        tr_ids, tr_f = image_features(
            encoder, cfg.encoder, data.folder, "train", layer, cfg.eval_batch
        )
        te_ids, te_f = image_features(
            encoder, cfg.encoder, data.folder, split, layer, cfg.eval_batch
        )
        scores[row], neighbours = nearest_neighbour.nn_baseline(
            [int(i) for i in te_ids],
            te_f,
            [int(i) for i in tr_ids],
            tr_f,
            train_caps,
            refs,
            cfg.nn_distance,
            ("bleu", "cider", "rouge_l"),
        )
        predictions[row] = {t: train_caps[n][0] for t, n in neighbours.items()}
        run.log("%s on %s: %s", row, split, scores[row])

    # 2. LRCN: two training stages, then decoding.
    with distributed.scope(strategy):
        model, decoder = build_captioner(cfg, encoder, len(info.vocab))
    history = train_two_stages(
        cfg, model, encoder, data.folder, run, cache=data.synthetic, strategy=strategy
    )
    if not chief:
        return DescriptionResult(run.id, run.dir, {}, refs, {}, run.dir)
    predictions["lrcn"] = generate(
        cfg,
        encoder,
        decoder,
        data.folder,
        split,
        info.vocab,
        temperature=temperature,
        seed=cfg.stage1.seed,
    )
    scores["lrcn"] = _caption_scores(refs, predictions["lrcn"])

    # 3. The decoding's own folder: what was decoded how, and its scores.
    decode = {k: to_dict(cfg)[k] for k in DECODE_FIELDS} | {
        "temperature": temperature,
        "split": split,
    }
    out_dir = run.dir / ("decode-" + runtime.run_id_for("d", decode))
    out_dir.mkdir(exist_ok=True)
    (out_dir / "decode.json").write_text(json.dumps(decode, indent=2) + "\n")
    results_file = [{"image_id": i, "caption": c} for i, c in predictions["lrcn"].items()]
    (out_dir / f"predictions_{split}.json").write_text(json.dumps(results_file))
    (out_dir / "scores.json").write_text(json.dumps(scores, indent=2) + "\n")
    run.log("scores on %s (%s): %s", split, out_dir.name, scores)
    last = "stage2" if history["stage2"] else "stage1"
    trainer.log_metrics(run.path(f"ckpt_{last}"), history[last]["step"], scores["lrcn"], split)
    values = {(row, split, m): v for row, ms in scores.items() for m, v in ms.items()}
    return DescriptionResult(run.id, run.dir, values, refs, predictions, out_dir)


# -- the authors' released captioner (reproduce.table3 --weights caffe) ------------------------

_PROBE_TOLERANCE = 1e-4  # probabilities absolute; fc8 relative to its scale (docs/parity.md)


@dataclasses.dataclass
class ReleasedCaptioner:
    """A captioner caffemodel in the project's nets: CaffeNet up to fc8 and the LRCN decoder.

    Attributes:
      encoder, decoder: the project's models with the caffemodel's weights.
      structure: widths and variant read from the caffemodel's blobs (`caffe_structure`).
      vocab: the words of `vocabulary.txt` with `<EOS>` as id 0 (captioner.py's numbering).
      conversion: the run folder id of the cached conversion (`<workdir>/caffe-<hash>`).
    """

    encoder: keras.Model
    decoder: keras.Model
    structure: dict
    vocab: Vocabulary
    conversion: str


def caffe_structure(weights: dict, source: str) -> dict:
    """The variant and widths of an LRCN captioner caffemodel ({layer: blobs}), read from its
    blob shapes: CaffeNet's conv1..conv5, fc6, fc7, fc8; the embedding, lstm1..lstmN (the one
    with a 4th blob takes the image: lstm2 in a factored net, lstm1 in an unfactored one) and
    predict. Raises CaffeError naming `source` if they do not make a captioner."""
    from lrcn_tf.caffe import CaffeError
    from lrcn_tf.configs.table3 import VARIANTS

    def bad(why):
        return CaffeError(f"{source}: not an LRCN captioner caffemodel: {why}")

    need = [*(f"conv{i}" for i in range(1, 6)), "fc6", "fc7", "fc8", "embedding", "lstm1"]
    missing = [n for n in (*need, "predict") if n not in weights]
    if missing:
        raise bad(f"no layer {', '.join(missing)} (it has {', '.join(list(weights)[:14])})")
    try:
        lstms = [k for k in range(1, 5) if f"lstm{k}" in weights]
        vocab, embed = (int(d) for d in weights["embedding"][0].shape)
        out = {
            "filters": [int(weights[f"conv{i}"][0].shape[0]) for i in range(1, 6)],
            "fc_units": int(weights["fc6"][0].shape[0]),
            "classes": int(weights["fc8"][0].shape[0]),
            "vocab_size": vocab,
            "embed_dim": embed,
            "num_layers": len(lstms),
            "hidden": int(weights["lstm1"][-1].shape[-1]),
            "predict": int(weights["predict"][0].shape[0]),
        }
        fc7 = int(weights["fc7"][0].shape[0])
        hidden = {int(weights[f"lstm{k}"][-1].shape[-1]) for k in lstms}
        static = [k for k in lstms if len(weights[f"lstm{k}"]) == 4]
        static_width = int(weights[f"lstm{static[0]}"][2].shape[-1]) if static else None
    except (ValueError, IndexError, TypeError):
        raise bad("a blob of unexpected shape in conv1..fc8, embedding, lstm* or predict") from None
    if lstms != list(range(1, len(lstms) + 1)):
        raise bad(f"LSTM layers {', '.join(f'lstm{k}' for k in lstms)} are not lstm1..lstmN")
    if len(static) != 1 or static[0] not in (1, 2):
        raise bad("exactly one of lstm1 / lstm2 must take the image (a 4th, static-input blob)")
    factored = static[0] == 2
    variant = next((v for v, s in VARIANTS.items() if s == (len(lstms), factored)), None)
    if variant is None:
        kind = "factored" if factored else "unfactored"
        raise bad(f"{len(lstms)} LSTMs, {kind}: not one of the variants {', '.join(VARIANTS)}")
    if fc7 != out["fc_units"] or len(hidden) != 1:
        raise bad(f"fc6/fc7 widths {out['fc_units']}/{fc7} or LSTM widths {sorted(hidden)} differ")
    if static_width != out["classes"] or out["predict"] != vocab:
        raise bad(
            f"the image input is {static_width} wide but fc8 has {out['classes']} outputs, or "
            f"predict's {out['predict']} words differ from the embedding's {vocab}"
        )
    return out | {"variant": variant, "factored": factored}


def read_caffe_vocabulary(path: str | Path, predict_size: int) -> Vocabulary:
    """The words of the authors' vocabulary.txt (one a line, `<unk>` first), numbered as
    captioner.py numbers them (`<EOS>` = 0 before the file's first line: `<unk>` = 1, ...);
    raises ValueError naming the file if it is not one or does not fit `predict_size`."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{path}: cannot read the vocabulary: {getattr(e, 'strerror', e)}"
        ) from None
    words = [w.strip() for w in lines]
    if not words or words[0] != "<unk>":
        raise ValueError(f"{path}:1: the authors' vocabulary.txt starts with '<unk>'")
    for n, w in enumerate(words, start=1):
        if not w:
            raise ValueError(f"{path}:{n}: an empty word")
    if len(words) + 1 != predict_size:
        raise ValueError(
            f"{path}: {len(words)} words + <EOS> = {len(words) + 1}, but the caffemodel's "
            f"predict layer has {predict_size} outputs"
        )
    try:
        return Vocabulary(words[1:])
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def released_captioner_models(structure: dict, crop_size: int = 227):
    """(image captioner, encoder, decoder): the project's CaffeNet up to fc8 and LRCN decoder,
    built to the caffemodel's `structure`."""
    encoder = backbones.caffenet(
        (crop_size, crop_size, 3),
        dropout=None,
        classes=structure["classes"],
        fc_units=structure["fc_units"],
        filters=tuple(structure["filters"]),
    )
    decoder = captioner.build_decoder(
        structure["vocab_size"],
        structure["classes"],
        num_layers=structure["num_layers"],
        factored=structure["factored"],
        embed_dim=structure["embed_dim"],
        hidden=structure["hidden"],
    )
    return captioner.build_image_captioner(encoder, decoder), encoder, decoder


def check_prototxt(kind: str, prototxt: Path, weights: dict, encoder, decoder, crop_size: int):
    """Runs one of W's own deploy nets (converted with the caffemodel's weights) and the
    project's matching net on a probe input; raises CaffeError naming the prototxt if they
    disagree (the prototxt describes another net than the one evaluated)."""
    from lrcn_tf import caffe

    rng = np.random.default_rng(0)
    try:
        converted = caffe.build(caffe.read_prototxt(prototxt), weights)
        if kind == "image":
            net = caffe.blob_model(converted, ["fc8"])
            image = rng.normal(0, 50, (1, crop_size, crop_size, 3)).astype(np.float32)
            if len(converted.inputs) != 1:
                raise caffe.CaffeError(f"inputs {list(converted.inputs)}, expected one image")
            theirs = np.asarray(net(image)["fc8"])
            ours = np.asarray(encoder(image, training=False))
            err = float(np.abs(ours - theirs).max()) / max(1.0, float(np.abs(theirs).max()))
            what = "fc8 (relative to its scale)"
        else:
            if set(converted.inputs) != {"cont_sentence", "input_sentence", "image_features"}:
                raise caffe.CaffeError(
                    f"inputs {list(converted.inputs)}, expected cont_sentence, input_sentence "
                    "and image_features"
                )
            vocab, dim = decoder.get_layer("predict").units, int(decoder.input["cond"].shape[-1])
            words = np.concatenate(
                [np.zeros((2, 1), np.int32), rng.integers(1, vocab, (2, 5), dtype=np.int32)], 1
            )
            cond = rng.normal(0, 5, (2, dim)).astype(np.float32)
            cont = np.ones(words.shape, np.float32)
            cont[:, 0] = 0
            feeds = {"cont_sentence": cont, "input_sentence": words, "image_features": cond}
            theirs = np.asarray(converted.model([feeds[n] for n in converted.inputs]))
            ours = np.asarray(keras.ops.softmax(decoder({"cond": cond, "words": words}), -1))
            err = float(np.abs(ours - theirs).max()) if ours.shape == theirs.shape else np.inf
            what = "word probabilities"
    except caffe.CaffeError as e:
        message = str(e) if str(prototxt) in str(e) else f"{prototxt}: {e}"
        raise caffe.CaffeError(message) from None
    if not err <= _PROBE_TOLERANCE:
        raise caffe.CaffeError(
            f"{prototxt}: computes another net than the caffemodel's {kind} net evaluated here "
            f"({what} differ by {err:.3g} on a probe input)"
        )
    return err


def load_released(
    caffemodel: str | Path,
    vocabulary: str | Path,
    workdir: str | Path,
    prototxts: dict[str, Path] | None = None,
    crop_size: int = 227,
) -> ReleasedCaptioner:
    """The authors' captioner caffemodel in the project's nets, converted once into a run
    folder of its own (`<workdir>/caffe-<hash>`, keyed by the caffemodel's and the prototxts'
    path, size and time) and loaded from there afterwards. Every check (the caffemodel is a
    captioner, the vocabulary fits its predict layer, W's prototxts compute the same nets)
    comes before anything is written.

    Raises:
      CaffeError, ValueError: one line naming the file that does not fit.
    """
    from lrcn_tf import caffe, runtime

    def identity(path: Path) -> dict:
        try:
            stat = path.stat()
        except OSError as e:
            raise caffe.CaffeError(f"{path}: cannot read: {e.strerror or e}") from None
        return {"file": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    caffemodel, prototxts = Path(caffemodel), dict(prototxts or {})
    record = {
        "caffemodel": identity(caffemodel),
        "prototxts": {k: identity(Path(p)) for k, p in sorted(prototxts.items())},
        "model": "captioner",
        "crop_size": crop_size,
    }
    folder = Path(workdir) / runtime.run_id_for("caffe", record)
    done, structure_file = folder / "converted.weights.h5", folder / "structure.json"
    if done.exists() and structure_file.exists():
        structure = json.loads(structure_file.read_text())
        vocab = read_caffe_vocabulary(vocabulary, structure["predict"])
        model, encoder, decoder = released_captioner_models(structure, crop_size)
        model.load_weights(str(done))
        return ReleasedCaptioner(encoder, decoder, structure, vocab, folder.name)
    weights = caffe.read_weights(caffemodel)
    structure = caffe_structure(weights, str(caffemodel))
    vocab = read_caffe_vocabulary(vocabulary, structure["predict"])
    model, encoder, decoder = released_captioner_models(structure, crop_size)
    loaded = caffe.load_into(model, weights)
    probes = {
        kind: check_prototxt(kind, Path(p), weights, encoder, decoder, crop_size)
        for kind, p in prototxts.items()
    }
    run = runtime.Run(workdir, "caffe", record)
    run.log("converted %s (%s): %s", caffemodel, structure["variant"], loaded)
    for kind, err in probes.items():
        run.log(
            "%s agrees with the project's %s net (max difference %.3g)", prototxts[kind], kind, err
        )
    model.save_weights(str(done))
    runtime.write_text_atomic(structure_file, json.dumps(structure) + "\n")
    return ReleasedCaptioner(encoder, decoder, structure, vocab, run.id)


def run_released_row(
    cfg: Table3Config,
    released: ReleasedCaptioner,
    data: Data,
    workdir: str | Path,
    *,
    split: str = "test",
    temperature: float | None = None,
    sources: dict | None = None,
) -> DescriptionResult:
    """Table 3's LRCN row from a released captioner: the split's images through the paper
    preset's test protocol (centre crop of the image squashed to `encoder.resize`, BGR minus
    the mean), decoded with the config's beam size (1: greedy, as the authors evaluated) and
    scored. No training; the run folder records `weights: caffe` and the files
    (`sources`: e.g. the caffemodel and vocabulary paths)."""
    from lrcn_tf import runtime
    from lrcn_tf.configs import to_dict

    enc = cfg.encoder
    decode = {k: to_dict(cfg)[k] for k in DECODE_FIELDS if k != "nn_distance"}
    run = runtime.Run(
        workdir,
        "table3",
        {
            "row": "lrcn",
            "weights": "caffe",
            **(sources or {}),
            "conversion": released.conversion,
            "variant": released.structure["variant"],
            "protocol": {
                "crop_size": enc.crop_size,
                "resize": enc.resize,
                "pixel_scale": enc.pixel_scale,
                "precision": keras.mixed_precision.global_policy().name,
            },
            "decode": decode | {"temperature": temperature},
            "split": split,
            "dataset": data.name,
            "data_dir": str(Path(data.folder).resolve()),
        },
    )
    refs = captions.references(data.folder, split)
    predictions = generate(
        cfg,
        released.encoder,
        released.decoder,
        data.folder,
        split,
        released.vocab,
        temperature=temperature,
        seed=cfg.stage1.seed,
    )
    scores = {"lrcn": _caption_scores(refs, predictions)}
    results_file = [{"image_id": i, "caption": c} for i, c in predictions.items()]
    runtime.write_text_atomic(run.path(f"predictions_{split}.json"), json.dumps(results_file))
    runtime.write_text_atomic(run.path("scores.json"), json.dumps(scores, indent=2) + "\n")
    run.log("caffe captioner on %s %s: %s", data.name, split, scores["lrcn"])
    values = {("lrcn", split, m): v for m, v in scores["lrcn"].items()}
    return DescriptionResult(run.id, run.dir, values, refs, {"lrcn": predictions}, run.dir)
