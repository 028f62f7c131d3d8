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
GPU; mixed precision is used on GPUs (`--mixed_precision`); `--strategy mirrored` trains over
the GPUs of a host, `--strategy multi_worker` over several machines (docs/scaling.md).

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

from absl import flags

from lrcn_tf import cli, configs, runtime
from lrcn_tf.configs.table3 import VARIANTS
from lrcn_tf.results import update_results
from lrcn_tf.tasks.base import Data
from reproduce import common

FLAGS = flags.FLAGS
DATASETS = ["synthetic_flickr30k", "synthetic_coco2014", "flickr30k", "coco2014", "flickr8k"]

common.define_common_flags("synthetic_flickr30k", DATASETS, "results/table3.csv")
flags.adopt_module_key_flags(common)  # --help lists the common flags too
flags.DEFINE_enum("variant", "2f", list(VARIANTS), "LRCN variant: 1u, 2u, 2f (the paper's), 4f.")
flags.DEFINE_integer("beam_size", None, "Beam size (1 = greedy, the authors' evaluation).")
flags.DEFINE_float(
    "temperature",
    None,
    "Sample captions at this temperature instead of beam search (--beam_size is then unused).",
)
flags.DEFINE_enum("split", "test", ["test", "val"], "Which split to score (val for tuning).")
flags.DEFINE_integer("samples", 24, "Images on the sample-captions page.")


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


def _write_pages(s: common.Setup, result, variant: str) -> tuple[Path, Path]:
    """The sample-captions page beside the CSV and Table 4's inputs in the workdir."""
    from lrcn_tf.data.captions import pipeline as captions_pipeline
    from lrcn_tf.evaluation import caption_samples

    refs, preds = result.references, result.predictions
    jpegs = captions_pipeline.read_jpegs(s.data_dir, FLAGS.split)
    page = s.output.with_name(f"{s.output.stem}_samples_{s.dataset}.html")
    note = common.SYNTHETIC_NOTE.format(dataset=s.dataset) if s.synthetic else ""
    caption_samples.write_samples_html(
        page,
        f"Table 3 samples: {s.dataset} {FLAGS.split} ({result.run_id})",
        list(refs)[: FLAGS.samples],
        jpegs,
        {f"LRCN {variant}": preds["lrcn"], "1-NN fc7": preds["nn_fc7"]},
        refs,
        note,
    )
    kit = _captions_for_table4(s.workdir / "table3_captions" / s.dataset, refs, jpegs, preds)
    return page, kit


def main(argv: list[str]) -> int:
    del argv
    start = time.time()
    # This table's configs have one seed per training stage: --seed sets them all.
    s = common.setup(seed_fields=("stage1.seed", "stage2.seed", "encoder.pretext_train.seed"))
    overrides = list(s.overrides)
    if FLAGS.beam_size is not None:
        overrides.append(f"beam_size={FLAGS.beam_size}")
    cfg = configs.build(f"table3/lrcn_{FLAGS.variant}", s.preset, overrides)
    common.prepared_data(s, "table3")  # the folder holds --dataset (made in the cache if embedded)
    from lrcn_tf.tasks import captioning  # TensorFlow import after the flags are read

    result = captioning.run_row(
        cfg,
        Data(s.dataset, s.data_dir),
        s.workdir,
        split=FLAGS.split,
        temperature=FLAGS.temperature,
        strategy=s.strategy,
    )
    if not s.chief:  # across machines the chief decodes, scores and writes
        return common.finish(s, "table3", start)
    common.print_result("table3", result)
    update_results(s.output, common.csv_rows("table3", [result], s))
    page, kit = _write_pages(s, result, cfg.variant)
    print(
        f"rows in {s.output}; sample captions in {page}; Table 4 inputs in {kit}; "
        f"run folder {result.run_dir}"
    )
    return common.finish(s, "table3", start)


def run() -> None:
    """The console command (`lrcn-table3`)."""
    cli.run(main)


if __name__ == "__main__":
    run()
