r"""Table 3: image description, LRCN captions vs the 1-NN fc7 / fc8 baselines, BLEU-1..4.

    python -m reproduce.table3                                   # synthetic_flickr30k, default
    python -m reproduce.table3 --dataset synthetic_coco2014
    python -m reproduce.table3 --preset smoke                    # the CI regression
    python -m reproduce.table3 --dataset flickr30k --data_dir DIR --preset paper \
        --set encoder.weights=caffenet.npz
    python -m reproduce.table3 --variant 4f --beam_size 5        # other LRCN variant, decoding

Hardware and time: with no `--data_dir` the embedded dataset (750 generated 64x64 images,
five captions each) is generated and prepared on first use (about 10 s); the default preset
then pre-trains the small CNN on a generated classification task (our ImageNet stand-in),
trains the LRCN captioner in two stages (CNN frozen, then fine-tuned), decodes the 100 test
images greedily and runs both baselines: under 10 minutes on 2 CPU cores; `--preset smoke`
in about 2 minutes. The paper preset (CaffeNet, 160,000 SGD steps of 100 captions) wants a
GPU; mixed precision is used on GPUs (`--mixed_precision`).

Rows written to results/table3.csv: table3, {lrcn, nn_fc7, nn_fc8}, `--split` (test),
{bleu1..bleu4, meteor (when Java is available), cider, rouge_l}, <dataset>. Also written: the
test captions as a COCO results file in the run folder (`python -m lrcn_tf.score` reads it)
and a page of sample images with generated and reference captions,
results/table3_samples_<dataset>.html. Rerunning resumes killed training and reuses the
trained model; changing only decoding flags decodes the same model again. The claims
t3_lrcn_beats_nn and t3_fc7_beats_fc8 are printed at the end. Golden rows for the embedded
data with `--preset smoke` are in results/expected.csv.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from absl import app, flags

from lrcn_tf import cli, configs, runtime
from lrcn_tf.configs.table3 import VARIANTS
from lrcn_tf.results import result_row, update_results
from reproduce import common

FLAGS = flags.FLAGS
DATASETS = ["synthetic_flickr30k", "synthetic_coco2014", "flickr30k", "coco2014", "flickr8k"]

common.define_common_flags("synthetic_flickr30k", DATASETS, "results/table3.csv")
flags.DEFINE_enum("variant", "2f", list(VARIANTS), "LRCN variant: 1u, 2u, 2f (the paper's), 4f.")
flags.DEFINE_integer("beam_size", None, "Beam size (1 = greedy, the authors' evaluation).")
flags.DEFINE_float(
    "temperature",
    None,
    "Sample captions at this temperature instead of beam search (--beam_size is then unused).",
)
flags.DEFINE_enum("split", "test", ["test", "val"], "Which split to score (val for tuning).")
flags.DEFINE_integer("samples", 24, "Images on the sample-captions page.")


def _scores(references, predictions):
    from lrcn_tf.evaluation.captioning import find_java, score_captions

    metrics = ["bleu", "cider", "rouge_l"] + (["meteor"] if find_java() else [])
    return score_captions(references, predictions, metrics)


def _captions_for_table4(folder: Path, refs, jpegs, rows: dict[str, dict]) -> Path:
    """Leaves what `python -m reproduce.table4` builds its ranking kit from: the test images,
    `references.json` (COCO annotations, absolute image paths) and one COCO result file per
    row (the 1-NN rows give the neighbour's first caption, as a person would be shown one)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images = []
    for image_id in refs:
        path = (folder / "images" / f"{image_id}.jpg").resolve()
        path.write_bytes(jpegs[image_id])
        images.append({"id": image_id, "file_name": str(path)})
    annotations = [
        {"id": n, "image_id": i, "caption": c}
        for n, (i, c) in enumerate((i, c) for i, cs in refs.items() for c in cs)
    ]
    runtime.write_text_atomic(
        folder / "references.json", json.dumps({"images": images, "annotations": annotations})
    )
    for row, preds in rows.items():
        result = [{"image_id": i, "caption": c} for i, c in preds.items()]
        runtime.write_text_atomic(folder / f"{row}.json", json.dumps(result))
    return folder


def _restval_merged(data_dir) -> bool:
    """Whether a prepared COCO folder's train split includes Karpathy's restval images."""
    import json

    try:
        info = json.loads((data_dir / "info.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("restval") == "train" and "karpathy_json" in info.get("source", {})


def main(argv: list[str]) -> int:
    del argv
    from lrcn_tf.data.captions import format as captions
    from lrcn_tf.data.captions import pipeline as captions_pipeline
    from lrcn_tf.evaluation import caption_samples, nearest_neighbour
    from lrcn_tf.tasks import captioning

    start = time.time()
    # This table's configs have one seed per training stage: --seed sets them all.
    s = common.setup(seed_fields=("stage1.seed", "stage2.seed", "encoder.pretext_train.seed"))
    overrides = list(s.overrides)
    if FLAGS.beam_size is not None:
        overrides.append(f"beam_size={FLAGS.beam_size}")
    cfg = configs.build(f"table3/lrcn_{FLAGS.variant}", s.preset, overrides)
    common.prepared_data(s, "table3")  # the folder holds --dataset (made in the cache if embedded)
    info = captions.load_info(s.data_dir)
    if cfg.encoder.pretext and not info.dataset.startswith("synthetic_"):
        raise app.UsageError("encoder.pretext is for the synthetic datasets; give encoder.weights")
    if not cfg.train_restval and _restval_merged(s.data_dir):
        print(
            f"note: {s.data_dir} was prepared with --restval train, so its train split holds "
            "Karpathy's restval images (the original trained on train2014 only); prepare "
            "again with --restval keep to leave them out"
        )
    run = captioning.training_run(cfg, s.workdir, s.dataset)
    runtime.seed_everything(cfg.stage1.seed)

    # 1. The ImageNet-style encoder (pre-trained here on the synthetic data) and the baselines,
    #    which use it before any caption training touches it.
    encoder = captioning.pretrained_encoder(
        cfg.encoder, s.workdir, info.image_size or 64, cfg.stage1.seed
    )
    refs = captions.references(s.data_dir, FLAGS.split)
    train_caps = captions.references(s.data_dir, "train")
    results = {}
    neighbours = {}
    for row, layer in (("nn_fc7", "relu7"), ("nn_fc8", "fc8")):
        tr_ids, tr_f = captioning.image_features(
            encoder, cfg.encoder, s.data_dir, "train", layer, cfg.eval_batch
        )
        te_ids, te_f = captioning.image_features(
            encoder, cfg.encoder, s.data_dir, FLAGS.split, layer, cfg.eval_batch
        )
        results[row], neighbours[row] = nearest_neighbour.nn_baseline(
            [int(i) for i in te_ids], te_f, [int(i) for i in tr_ids], tr_f, train_caps, refs,
            cfg.nn_distance, ("bleu", "cider", "rouge_l"),
        )  # fmt: skip
        print(f"table3 {row}: " + ", ".join(f"{k} {v:.2f}" for k, v in results[row].items()))

    # 2. LRCN: two training stages, then decoding.
    model, decoder = captioning.build_captioner(cfg, encoder, len(info.vocab))
    captioning.train_two_stages(
        cfg, model, encoder, s.data_dir, run, cache=info.dataset.startswith("synthetic_")
    )
    predictions = captioning.generate(cfg, encoder, decoder, s.data_dir, FLAGS.split, info.vocab,
                                      temperature=FLAGS.temperature, seed=cfg.stage1.seed)  # fmt: skip
    results["lrcn"] = _scores(refs, predictions)
    print("table3 lrcn: " + ", ".join(f"{k} {v:.2f}" for k, v in results["lrcn"].items()))

    full = configs.to_dict(cfg)
    decode = {k: full[k] for k in captioning.DECODE_FIELDS} | {
        "temperature": FLAGS.temperature,
        "split": FLAGS.split,
    }
    out_dir = run.dir / ("decode-" + runtime.run_id_for("d", decode))
    out_dir.mkdir(exist_ok=True)
    (out_dir / "decode.json").write_text(json.dumps(decode, indent=2) + "\n")
    results_file = [{"image_id": i, "caption": c} for i, c in predictions.items()]
    (out_dir / f"predictions_{FLAGS.split}.json").write_text(json.dumps(results_file))
    (out_dir / "scores.json").write_text(json.dumps(results, indent=2) + "\n")
    run.log("scores on %s (%s): %s", FLAGS.split, out_dir.name, results)

    # 3. Rows, the sample page, the comparison.
    rows = [
        result_row("table3", row, FLAGS.split, metric, s.dataset, value, run.id, s.preset)
        for row, scores in results.items()
        for metric, value in scores.items()
    ]
    update_results(s.output, rows)
    shown = list(refs)[: FLAGS.samples]
    jpegs = captions_pipeline.read_jpegs(s.data_dir, FLAGS.split)
    nn7 = {t: train_caps[n][0] for t, n in neighbours["nn_fc7"].items()}
    page = s.output.with_name(f"{s.output.stem}_samples_{s.dataset}.html")
    note = common.SYNTHETIC_NOTE.format(dataset=s.dataset) if s.synthetic else ""
    caption_samples.write_samples_html(
        page, f"Table 3 samples: {s.dataset} {FLAGS.split} ({run.id})", shown, jpegs,
        {f"LRCN {cfg.variant}": predictions, "1-NN fc7": nn7}, refs, note,
    )  # fmt: skip
    kit = _captions_for_table4(
        s.workdir / "table3_captions" / s.dataset, refs, jpegs,
        {"lrcn": predictions, "nn_fc7": nn7,
         "nn_fc8": {t: train_caps[n][0] for t, n in neighbours["nn_fc8"].items()}},
    )  # fmt: skip
    print(
        f"rows in {s.output}; sample captions in {page}; Table 4 inputs in {kit}; run folder {run.dir}"
    )
    print(f"table3 done in {time.time() - start:.0f} s")
    if FLAGS.compare:
        return common.print_comparison(s.output, ["table3"])
    return 0


if __name__ == "__main__":
    cli.run(main)
