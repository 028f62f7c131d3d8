"""Table 2: caption-to-image and image-to-caption retrieval with Table 3's LRCN_2f captioner.

    result = run_row(build("table2/lrcn_2f"), Data("synthetic_flickr30k", folder), workdir)

The captioner lives in Table 3's run folder for the same config and dataset: reused as it is
when `reproduce.table3` trained it, trained there otherwise. Then log P(caption | image) of
every caption of the split under every image of it is computed (factored: the word-only LSTM
once per caption, `lrcn_tf.evaluation.retrieval_scoring`) and ranked with the authors'
protocol (`lrcn_tf.evaluation.retrieval`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from lrcn_tf import runtime
from lrcn_tf.configs import to_dict
from lrcn_tf.configs.table2 import Table2Config
from lrcn_tf.configs.table3 import Table3Config
from lrcn_tf.data.captions import format as captions
from lrcn_tf.tasks import captioning
from lrcn_tf.tasks.base import Data, RowResult
from lrcn_tf.training import distributed, trainer


@dataclasses.dataclass(frozen=True)
class RetrievalResult(RowResult):
    """R@1/5/10 and medr both ways, and what was scored.

    Attributes:
      captioner_run: Table 3's run folder that holds the captioner.
      captioner_reused: whether that folder already existed (its checkpoints were reused).
      captions, images: the size of the score matrix (`log_p_<split>.npy` in the run folder).
      scoring_seconds: the time the score matrix took.
    """

    captioner_run: str
    captioner_reused: bool
    captions: int
    images: int
    scoring_seconds: float


def trained_captioner(cap: Table3Config, data: Data, workdir: str | Path, strategy=None):
    """Table 3's LRCN_2f in Table 3's run folder: trained there, or restored when done
    (under `strategy`, as `captioning.run_row`).

    Returns:
      (Table 3's run, the encoder, the decoder).
    """
    captioning.check_encoder(cap, data)
    info = captions.load_info(data.folder)
    run = captioning.training_run(cap, workdir, data.name)
    runtime.seed_everything(cap.stage1.seed)
    # The same pre-trained CNN (and run folder) as Table 3: see captioning.pretrained_encoder.
    encoder = captioning.pretrained_encoder(
        cap.encoder, workdir, info.image_size or 64, cap.stage1.seed, strategy
    )
    with distributed.scope(strategy):
        model, decoder = captioning.build_captioner(cap, encoder, len(info.vocab))
    captioning.train_two_stages(
        cap, model, encoder, data.folder, run, cache=data.synthetic, strategy=strategy
    )
    return run, encoder, decoder


def score_split(cfg: Table2Config, data: Data, encoder, decoder, run: runtime.Run):
    """(log_p, caption_image) of every caption of `cfg.split` against every image of it."""
    from lrcn_tf.evaluation.retrieval_scoring import caption_log_probs

    image_ids, features = captioning.image_features(
        encoder, cfg.captioner.encoder, data.folder, cfg.split, "fc8", cfg.captioner.eval_batch
    )
    column = {int(i): c for c, i in enumerate(image_ids)}
    token_ids, caption_image = [], []
    for image in captions.load_split(data.folder, cfg.split):
        if image.image_id not in column:
            raise captions.CaptionDataError(
                f"{data.folder}/{cfg.split}.json: image {image.image_id} is not in the TFRecords"
            )
        token_ids += image.token_ids
        caption_image += [column[image.image_id]] * len(image.token_ids)
    caption_image = np.asarray(caption_image, dtype=np.int64)
    # The matrix goes to the run folder through a memory map (COCO: 25,000 x 5,000 floats),
    # renamed into place only when complete.
    final = run.path(f"log_p_{cfg.split}.npy")
    partial = final.with_name(final.name + ".partial.npy")
    out = np.lib.format.open_memmap(
        partial, mode="w+", dtype=np.float32, shape=(len(token_ids), len(image_ids))
    )
    caption_log_probs(
        decoder,
        token_ids,
        features,
        method=cfg.method,
        caption_chunk=cfg.caption_chunk,
        image_chunk=cfg.image_chunk,
        out=out,
        description=f"table2 {cfg.split} pairs",
    )
    out.flush()
    del out
    os.replace(partial, final)
    np.save(run.path(f"caption_image_{cfg.split}.npy"), caption_image)
    return np.load(final, mmap_mode="r"), caption_image


def run_row(cfg: Table2Config, data: Data, workdir: str | Path, strategy=None) -> RetrievalResult:
    """Trains (or reuses) the captioner, scores every caption-image pair, ranks them.

    Under a multi-worker `strategy` every worker trains the captioner and the chief alone
    scores and writes; another worker returns no values (and an empty score matrix).

    Returns:
      Recall at 1/5/10 (percent) and median rank keyed (row, caption_to_image |
      image_to_caption, metric); `metrics.json` in the run folder holds them too.
    """
    from lrcn_tf.evaluation.retrieval import retrieval_metrics

    cap_run, encoder, decoder = trained_captioner(cfg.captioner, data, workdir, strategy)
    if not distributed.is_chief(strategy):
        return RetrievalResult(cap_run.id, cap_run.dir, {}, cap_run.id, cap_run.resumed, 0, 0, 0.0)
    record = {"config": to_dict(cfg), "dataset": data.name, "captioner_run": cap_run.id}
    run = runtime.Run(workdir, "table2", record)
    start = time.time()
    log_p, caption_image = score_split(cfg, data, encoder, decoder, run)
    scoring = time.time() - start
    metrics = retrieval_metrics(log_p, caption_image)
    summary = {
        "metrics": metrics,
        "captions": int(log_p.shape[0]),
        "images": int(log_p.shape[1]),
        "scoring_seconds": scoring,
        "pairs_per_second": log_p.size / scoring,
    }
    run.path("metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    run.log("retrieval on %s %s: %s", data.name, cfg.split, summary)
    flat = {f"{way}/{m}": v for way, ms in metrics.items() for m, v in ms.items()}
    trainer.log_metrics(run.dir, 0, flat, cfg.split)
    values = {(cfg.row, s, m): v for s, ms in metrics.items() for m, v in ms.items()}
    return RetrievalResult(
        run.id, run.dir, values, cap_run.id, cap_run.resumed, *log_p.shape, scoring
    )
