r"""Table 3: image description, LRCN captions vs the 1-NN fc7 / fc8 baselines, BLEU-1..4.

    python -m reproduce.table3                                   # synthetic_flickr30k, default
    python -m reproduce.table3 --dataset synthetic_coco2014
    python -m reproduce.table3 --preset smoke                    # the CI regression
    python -m reproduce.table3 --dataset flickr30k --data_dir DIR --preset paper \
        --set encoder.weights=caffenet.npz
    python -m reproduce.table3 --variant 4f --beam_size 5        # other LRCN variant, decoding
    python -m reproduce.table3 --weights caffe --weights_dir W   # the authors' COCO captioner
    python -m reproduce.table3 --weights caffe --weights_dir W --dataset coco2014 --data_dir DIR

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

`--weights caffe --weights_dir W` trains nothing: it evaluates the authors' COCO captioner
(W holds one `*.caffemodel`, or name it with `--caffemodel`, and the `vocabulary.txt` written
with its training data; docs/parity.md) with the paper preset's test protocol (CaffeNet fc8 of
the centre 227 crop, greedy decoding up to 50 words), on synthetic_coco2014 unless `--dataset`
says otherwise. The caffemodel is converted once into `<workdir>/caffe-<hash>`; the LRCN rows
(no baselines) go to results/table3_caffe.csv with `weights=caffe`, preset paper.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from absl import app, flags

from lrcn_tf import cli, configs, runtime
from lrcn_tf.configs.table3 import VARIANTS
from lrcn_tf.results import update_results
from lrcn_tf.tasks.base import Data
from reproduce import common

FLAGS = flags.FLAGS
# What --weights_dir holds besides the caffemodel (docs/parity.md): the vocabulary the authors'
# coco_to_hdf5_data.py dumped (one word a line, `<unk>` first; captioner.py puts `<EOS>` before
# it) and, optionally, the two deploy nets captioner.py runs, then checked to compute what the
# project's nets compute.
CAFFE_VOCABULARY = "vocabulary.txt"
CAFFE_PROTOTXTS = {
    "language": "lrcn_word_to_preds.deploy.prototxt",
    "image": "deploy.prototxt",  # the authors used models/bvlc_reference_caffenet/deploy.prototxt
}
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
flags.DEFINE_enum(
    "weights",
    "train",
    ["train", "caffe"],
    "train: train the captioner and the baselines; caffe: evaluate the authors' COCO captioner "
    "(a .caffemodel and vocabulary.txt in --weights_dir) with the paper preset's test "
    "protocol, no training (default --dataset synthetic_coco2014).",
)
flags.DEFINE_string(
    "weights_dir",
    None,
    "--weights caffe: the folder holding the captioner .caffemodel and vocabulary.txt (and, "
    "optionally, lrcn_word_to_preds.deploy.prototxt and deploy.prototxt, then checked).",
)
flags.DEFINE_string(
    "caffemodel",
    None,
    "--weights caffe: the caffemodel to use (a file name in --weights_dir, or a path); needed "
    "when --weights_dir holds more than one.",
)


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


def _released_files() -> tuple[Path, Path, dict[str, Path]]:
    """(caffemodel, vocabulary.txt, {kind: prototxt} of those --weights_dir holds); a missing
    or ambiguous file is named."""
    if not FLAGS.weights_dir:
        raise app.UsageError("--weights caffe needs --weights_dir (the captioner's .caffemodel)")
    folder = Path(FLAGS.weights_dir).expanduser()
    if not folder.is_dir():
        raise app.UsageError(f"--weights_dir {folder}: not a folder")
    if FLAGS.caffemodel:
        given = Path(FLAGS.caffemodel).expanduser()
        candidates = [folder / given, folder / f"{given}.caffemodel", given]
        caffemodel = next((p for p in candidates if p.is_file()), None)
        if caffemodel is None:
            raise app.UsageError(f"--caffemodel {given}: no such file (in {folder} or as a path)")
    else:
        found = sorted(p for p in folder.glob("*.caffemodel") if p.is_file())
        if not found:
            raise app.UsageError(
                f"--weights_dir {folder}: no .caffemodel file (the authors' captioner, e.g. "
                "lrcn_finetune_iter_50000.caffemodel)"
            )
        if len(found) > 1:
            names = ", ".join(p.name for p in found[:6]) + (", ..." if len(found) > 6 else "")
            raise app.UsageError(
                f"--weights_dir {folder} holds {len(found)} .caffemodel files ({names}): "
                "name one with --caffemodel"
            )
        caffemodel = found[0]
    vocabulary = folder / CAFFE_VOCABULARY
    if not vocabulary.is_file():
        raise app.UsageError(
            f"--weights caffe: {vocabulary} is missing (the vocabulary coco_to_hdf5_data.py "
            "dumped with the captioner's training data)"
        )
    prototxts = {k: folder / n for k, n in CAFFE_PROTOTXTS.items() if (folder / n).is_file()}
    return caffemodel, vocabulary, prototxts


def _released(start: float) -> int:
    """--weights caffe: the authors' COCO captioner evaluated with the paper preset's test
    protocol; the LRCN rows carry weights=caffe and preset=paper."""
    caffemodel, vocabulary, prototxts = _released_files()
    s = common.setup(seed_fields=("stage1.seed",))  # sampling's seed
    overrides = list(s.overrides)
    if FLAGS.beam_size is not None:
        overrides.append(f"beam_size={FLAGS.beam_size}")
    crop = configs.build("table3/lrcn", "paper", overrides).encoder.crop_size  # a bad --set first
    from lrcn_tf.tasks import captioning  # TensorFlow import after the flags are read

    try:
        released = captioning.load_released(caffemodel, vocabulary, s.workdir, prototxts, crop)
    except ValueError as e:  # the vocabulary does not fit: one line naming it
        raise app.UsageError(str(e)) from None
    variant = released.structure["variant"]
    if FLAGS["variant"].present and FLAGS.variant != variant:
        raise app.UsageError(f"--variant {FLAGS.variant}: {caffemodel} holds an LRCN {variant}")
    cfg = configs.build(f"table3/lrcn_{variant}", "paper", overrides)
    common.prepared_data(s, "table3")  # the folder holds --dataset (made in the cache if embedded)
    sources = {"caffemodel": str(caffemodel.resolve()), "vocabulary": str(vocabulary.resolve())}
    result = captioning.run_released_row(
        cfg,
        released,
        Data(s.dataset, s.data_dir),
        s.workdir,
        split=FLAGS.split,
        temperature=FLAGS.temperature,
        sources=sources | {"prototxts": {k: str(p.resolve()) for k, p in prototxts.items()}},
    )
    common.print_result("table3 (caffe)", result)
    rows = [dict(r, weights="caffe") for r in common.csv_rows("table3", [result], s)]
    update_results(s.output, rows)
    from lrcn_tf.data.captions import pipeline as captions_pipeline
    from lrcn_tf.evaluation import caption_samples

    refs = result.references
    page = s.output.with_name(f"{s.output.stem}_samples_{s.dataset}.html")
    caption_samples.write_samples_html(
        page,
        f"Table 3 samples, the authors' captioner ({caffemodel.name}): {s.dataset} {FLAGS.split}",
        list(refs)[: FLAGS.samples],
        captions_pipeline.read_jpegs(s.data_dir, FLAGS.split),
        {f"LRCN {variant} (caffe)": result.predictions["lrcn"]},
        refs,
        common.SYNTHETIC_NOTE.format(dataset=s.dataset) if s.synthetic else "",
    )
    print(
        f"wrote {s.output} after {time.time() - start:.0f} s; sample captions in {page}; "
        f"run folder {result.run_dir}"
    )
    return 0


def main(argv: list[str]) -> int:
    del argv
    start = time.time()
    if FLAGS.weights == "caffe":
        if FLAGS.strategy == "multi_worker":
            raise app.UsageError("--weights caffe evaluates only: run it on one machine")
        if not FLAGS["output"].present:
            FLAGS.output = "results/table3_caffe.csv"  # not mixed with trained rows
        if not FLAGS["dataset"].present:
            FLAGS.dataset = "synthetic_coco2014"  # the authors' captioner is a COCO one
        if not FLAGS["mixed_precision"].present:
            FLAGS.mixed_precision = "off"  # Caffe computed in float32
        if FLAGS.preset != "paper" and FLAGS["preset"].present:
            raise app.UsageError("--weights caffe evaluates with the paper preset; drop --preset")
        FLAGS.preset = "paper"
        return _released(start)
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
