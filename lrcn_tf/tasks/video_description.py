"""Table 5: video description from the CRF's outputs on TACoS multilevel, one row at a time.

    result = run_row(build("table5/lstm_dec_crf_prob"), Data("synthetic_tacos", folder), workdir)

Rows: an LSTM decoder fed the CRF's max (one-hot labels, `lstm_dec_crf_max`) or its full
distributions (`lstm_dec_crf_prob`), and an LSTM encoder-decoder reading the MAP labels as
words (`lstm_enc_dec_crf_max`). Each trains with the shared trainer in its own run folder
(resumed when it exists), then decodes the evaluation split by beam search.
"""

from __future__ import annotations

import json
from pathlib import Path

from lrcn_tf import runtime
from lrcn_tf.configs import to_dict
from lrcn_tf.configs.table5 import VideoDescriptionConfig
from lrcn_tf.data.tacos import pipeline as tacos_pipeline
from lrcn_tf.evaluation.captioning import score_captions
from lrcn_tf.models import captioner, video_description
from lrcn_tf.tasks.base import Data, RowResult
from lrcn_tf.training import distributed, trainer


def run_row(
    cfg: VideoDescriptionConfig, data: Data, workdir: str | Path, strategy=None
) -> RowResult:
    """Trains one row's model (resuming from its run folder) and scores it on `cfg.eval_split`.

    Args:
      cfg: the row (`table5/<row>`).
      data: a prepared TACoS folder.
      workdir: where run folders go.
      strategy: None, MirroredStrategy or MultiWorkerMirroredStrategy (the model is built in
        its scope); across machines every worker trains, the chief alone decodes, scores and
        writes, and another worker returns no values.

    Returns:
      BLEU-1..4, METEOR, CIDEr, ROUGE-L (what `score_captions` gives) keyed (row, eval split,
      metric); the predictions are in the run folder.
    """
    record = {"config": to_dict(cfg), "dataset": data.name, "data_dir": str(data.folder)}
    run = runtime.Run(workdir, f"table5-{cfg.row}", record)
    corpus = tacos_pipeline.PreparedTACoS(data.folder)
    runtime.seed_everything(cfg.train.seed)
    train = corpus.split("train")
    sizes = dict(num_layers=cfg.num_layers, embed_dim=cfg.embed_dim, hidden=cfg.lstm_units)
    with distributed.scope(strategy):
        if cfg.architecture == "encoder_decoder":
            model, encoder, decoder = video_description.build_encoder_decoder(
                len(corpus.source_vocab),
                len(corpus.vocab),
                dropout=cfg.dropout,
                seed=cfg.train.seed,
                **sizes,
            )
        else:
            encoder = None
            model = decoder = video_description.build_crf_decoder(
                len(corpus.vocab),
                corpus.inputs(train, cfg.input).shape[1],
                factored=cfg.factored,
                dropout=cfg.dropout,
                seed=cfg.train.seed,
                **sizes,
            )
    dataset = tacos_pipeline.caption_dataset(
        corpus, train, cfg.input, cfg.train.batch_size, cfg.train.seed
    )
    history = trainer.fit(
        model,
        dataset,
        captioner.make_loss_fn(cfg.loss_weight),
        cfg.train,
        ckpt_dir=run.path("ckpt"),
        description=f"table5/{cfg.row}",
        strategy=strategy,
    )
    if not distributed.is_chief(strategy):  # across machines the chief decodes and writes
        return RowResult(run.id, run.dir, {})
    model.save(run.path("final.keras"))  # keras.models.load_model(...) reloads it
    run.log(
        "trained %s to step %d (resumed from %d); losses %s",
        cfg.row,
        history["step"],
        history["resumed_from"],
        history["losses"],
    )

    test = corpus.split(cfg.eval_split)
    sentences = video_description.describe(
        decoder,
        corpus.vocab,
        corpus.inputs(test, cfg.input),
        encoder=encoder,
        beam_size=cfg.beam_size,
        max_length=cfg.max_decode_length,
    )
    predictions = dict(zip(test.ids, sentences))
    run.path(f"predictions_{cfg.eval_split}.json").write_text(json.dumps(predictions, indent=1))
    scores = score_captions(test.references, predictions)
    run.log("%s %s: %s", cfg.row, cfg.eval_split, scores)
    trainer.log_metrics(run.path("ckpt"), history["step"], scores, cfg.eval_split)
    values = {(cfg.row, cfg.eval_split, metric): value for metric, value in scores.items()}
    return RowResult(run.id, run.dir, values)
