r"""Table 2: caption-to-image and image-to-caption retrieval with LRCN_2f (R@1/5/10, medr).

    python -m reproduce.table2                                  # synthetic_flickr30k, default
    python -m reproduce.table2 --dataset synthetic_coco2014
    python -m reproduce.table2 --preset smoke                   # the CI regression
    python -m reproduce.table2 --dataset flickr30k --data_dir DIR --preset paper \
        --set captioner.encoder.weights=caffenet.npz

The model is Table 3's LRCN_2f captioner (config `table2/lrcn_2f` nests `table3/lrcn_2f`) and
lives in Table 3's run folder for the same config and dataset: if `python -m reproduce.table3`
(variant 2f, the default) has trained it, it is reused as it is; otherwise it is trained here,
into that folder (lrcn_tf.tasks.retrieval, with the captioning task's steps), and Table 3
reuses it later. Then log P(caption | image) of every test caption under every test image is
computed (lrcn_tf.evaluation.retrieval_scoring, factored: the word-only LSTM once per
caption) and ranked with the authors' protocol (lrcn_tf.evaluation.retrieval).

Hardware and time: with no `--data_dir` the embedded dataset (750 generated images, five
captions each; 100 test images x 500 test captions) is generated on first use; the default
preset pre-trains the small CNN, trains the captioner in two stages and scores the 50,000
pairs in about 7 minutes on 2 shared CPU cores (3.5 minutes of CPU; scoring 2-4 s);
`--preset smoke` in under a minute. `--strategy` trains the captioner over the GPUs of a host
(mirrored) or of several machines (multi_worker, docs/scaling.md); the scoring runs on one. The paper preset (CaffeNet, 160,000 SGD steps) wants a GPU; scoring COCO's
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

import time

from absl import flags

from lrcn_tf import cli, configs
from lrcn_tf.results import update_results
from lrcn_tf.tasks.base import Data
from reproduce import common

FLAGS = flags.FLAGS
DATASETS = ["synthetic_flickr30k", "synthetic_coco2014", "flickr30k", "coco2014", "flickr8k"]

common.define_common_flags("synthetic_flickr30k", DATASETS, "results/table2.csv")
flags.adopt_module_key_flags(common)  # --help lists the common flags too


def main(argv: list[str]) -> int:
    del argv
    start = time.time()
    # --seed sets the seeds of both captioner training stages.
    s = common.setup(seed_fields=("captioner.stage1.seed", "captioner.stage2.seed"))
    cfg = configs.build("table2/lrcn_2f", s.preset, s.overrides)
    common.prepared_data(s, "table2")  # the folder holds --dataset (made in the cache if embedded)
    from lrcn_tf.tasks import retrieval  # TensorFlow import after the flags are read

    result = retrieval.run_row(cfg, Data(s.dataset, s.data_dir), s.workdir, s.strategy)
    if not s.chief:  # across machines the chief scores and writes
        return common.finish(s, "table2", start)
    state = "found: its checkpoints are reused" if result.captioner_reused else "new: training"
    print(f"captioner run folder {result.captioner_run} ({state})")
    update_results(s.output, common.csv_rows("table2", [result], s))
    common.print_result("table2", result)
    pairs = result.captions * result.images
    print(
        f"{result.captions} captions x {result.images} images scored in "
        f"{result.scoring_seconds:.1f} s ({pairs / result.scoring_seconds:.0f} pairs/s); "
        f"rows in {s.output}; run folder {result.run_dir}"
    )
    return common.finish(s, "table2", start)


def run() -> None:
    """The console command (`lrcn-table2`)."""
    cli.run(main)


if __name__ == "__main__":
    run()
