r"""Table 2: caption-to-image and image-to-caption retrieval with LRCN_2f (R@1/5/10, medr).

    python -m reproduce.table2                                  # synthetic_flickr30k, default
    python -m reproduce.table2 --dataset synthetic_coco2014
    python -m reproduce.table2 --preset smoke                   # the CI regression
    python -m reproduce.table2 --dataset flickr30k --data_dir DIR --preset paper \
        --set captioner.encoder.weights=caffenet.npz

The model is Table 3's LRCN_2f captioner (config `table2/lrcn_2f` nests `table3/lrcn_2f`) and
lives in Table 3's run folder for the same config and dataset: if `python -m reproduce.table3`
(variant 2f, the default) has trained it, it is reused as it is; otherwise it is trained here,
into that folder, with the captioning pipeline (lrcn_tf.tasks.captioning), and Table 3
reuses it later. Then log P(caption | image) of every test caption under every test image is
computed (lrcn_tf.evaluation.retrieval_scoring, factored: the word-only LSTM once per
caption) and ranked with the authors' protocol (lrcn_tf.evaluation.retrieval).

Hardware and time: with no `--data_dir` the embedded dataset (750 generated images, five
captions each; 100 test images x 500 test captions) is generated on first use; the default
preset pre-trains the small CNN, trains the captioner in two stages and scores the 50,000
pairs in about 7 minutes on 2 shared CPU cores (3.5 minutes of CPU; scoring 2-4 s);
`--preset smoke` in under a minute. The paper preset (CaffeNet, 160,000 SGD steps) wants a GPU; scoring COCO's
5,000 x 25,000 pairs is bounded in memory by the chunk sizes (the matrix itself, 500 MB, is
written to the run folder as a memory map).

Rows written to results/table2.csv: table2, lrcn_2f, {caption_to_image, image_to_caption},
{r1, r5, r10, medr}, <dataset>. The run folder (runs/table2-<hash>) holds the score matrix
(`log_p_<split>.npy`, captions x images, caption order of `<split>.json`), each caption's
image column (`caption_image_<split>.npy`) and `metrics.json`. The other Table 2 rows cite
other work and are printed from results/expected.csv beside ours; the claim
t2_image_to_caption_easier is reported at the end. Golden rows for synthetic_flickr30k with
`--preset smoke` are in results/expected.csv.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from absl import app, flags

from lrcn_tf import cli, configs, runtime
from lrcn_tf.results import result_row, update_results
from reproduce import common

FLAGS = flags.FLAGS
DATASETS = ["synthetic_flickr30k", "synthetic_coco2014", "flickr30k", "coco2014", "flickr8k"]

common.define_common_flags("synthetic_flickr30k", DATASETS, "results/table2.csv")


def train_captioner(cfg, s: common.Setup, info):
    """Table 3's LRCN_2f in Table 3's run folder: trained there, or restored when done."""
    from lrcn_tf.tasks import captioning

    cap = cfg.captioner
    run = captioning.training_run(cap, s.workdir, s.dataset)
    state = "found: its checkpoints are reused" if run.resumed else "new: training"
    print(f"captioner run folder {run.dir} ({state})")
    if cap.encoder.pretext and not s.synthetic:
        raise app.UsageError("encoder.pretext is for the synthetic datasets; give encoder.weights")
    runtime.seed_everything(cap.stage1.seed)
    # The same pre-trained CNN (and run folder) as Table 3: see captioning.pretrained_encoder.
    encoder = captioning.pretrained_encoder(
        cap.encoder, s.workdir, info.image_size or 64, cap.stage1.seed
    )
    model, decoder = captioning.build_captioner(cap, encoder, len(info.vocab))
    captioning.train_two_stages(cap, model, encoder, s.data_dir, run, cache=s.synthetic)
    return run, encoder, decoder


def score_split(cfg, s: common.Setup, encoder, decoder, run: runtime.Run):
    """(log_p, caption_image) of every caption of `cfg.split` against every image of it."""
    from lrcn_tf.data.captions import format as captions
    from lrcn_tf.evaluation.retrieval_scoring import caption_log_probs
    from lrcn_tf.tasks import captioning

    image_ids, features = captioning.image_features(
        encoder, cfg.captioner.encoder, s.data_dir, cfg.split, "fc8", cfg.captioner.eval_batch
    )
    column = {int(i): c for c, i in enumerate(image_ids)}
    token_ids, caption_image = [], []
    for image in captions.load_split(s.data_dir, cfg.split):
        if image.image_id not in column:
            raise captions.CaptionDataError(
                f"{s.data_dir}/{cfg.split}.json: image {image.image_id} is not in the TFRecords"
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
        decoder, token_ids, features, method=cfg.method, caption_chunk=cfg.caption_chunk,
        image_chunk=cfg.image_chunk, out=out, description=f"table2 {cfg.split} pairs",
    )  # fmt: skip
    out.flush()
    del out
    os.replace(partial, final)
    np.save(run.path(f"caption_image_{cfg.split}.npy"), caption_image)
    return np.load(final, mmap_mode="r"), caption_image


def main(argv: list[str]) -> int:
    del argv
    from lrcn_tf.data.captions import format as captions
    from lrcn_tf.evaluation.retrieval import retrieval_metrics

    start = time.time()
    # --seed sets the seeds of both captioner training stages.
    s = common.setup(seed_fields=("captioner.stage1.seed", "captioner.stage2.seed"))
    cfg = configs.build("table2/lrcn_2f", s.preset, s.overrides)
    common.prepared_data(s, "table2")  # the folder holds --dataset (made in the cache if embedded)
    info = captions.load_info(s.data_dir)

    cap_run, encoder, decoder = train_captioner(cfg, s, info)
    record = {"config": configs.to_dict(cfg), "dataset": s.dataset, "captioner_run": cap_run.id}
    run = runtime.Run(s.workdir, "table2", record)
    scoring = time.time()
    log_p, caption_image = score_split(cfg, s, encoder, decoder, run)
    scoring = time.time() - scoring
    metrics = retrieval_metrics(log_p, caption_image)
    summary = {"metrics": metrics, "captions": int(log_p.shape[0]), "images": int(log_p.shape[1]),
               "scoring_seconds": scoring, "pairs_per_second": log_p.size / scoring}  # fmt: skip
    run.path("metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    run.log("retrieval on %s %s: %s", s.dataset, cfg.split, summary)

    rows = [
        result_row("table2", cfg.row, setting, metric, s.dataset, value, run.id, s.preset)
        for setting, values in metrics.items()
        for metric, value in values.items()
    ]
    update_results(s.output, rows)
    for setting, values in metrics.items():
        print(
            f"table2 {cfg.row} {setting}: " + ", ".join(f"{k} {v:.2f}" for k, v in values.items())
        )
    print(
        f"{log_p.shape[0]} captions x {log_p.shape[1]} images scored in {scoring:.1f} s "
        f"({log_p.size / scoring:.0f} pairs/s); rows in {s.output}; run folder {run.dir}"
    )
    print(f"table2 done in {time.time() - start:.0f} s")
    if FLAGS.compare:
        return common.print_comparison(s.output, ["table2"])
    return 0


if __name__ == "__main__":
    cli.run(main)
