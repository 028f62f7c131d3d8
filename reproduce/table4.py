r"""Table 4: human ranking of image descriptions (export a kit, aggregate the returned forms).

    python -m reproduce.table4          # export a kit from reproduce.table3's captions
    python -m reproduce.table4 --mode export --captions lrcn_ft=ft.json,lrcn_fc8=fc8.json,nn=nn.json \
        --references captions_test.json --images flickr30k-images --num_images 785 --out kit
    python -m reproduce.table4 --mode aggregate --forms rater1.csv,rater2.csv --key kit/key.json \
        --dataset flickr30k

Hardware and time: no training and no GPU; export and aggregation take seconds. The numbers
need people: send the kit (index.html, pages/, images/, form.csv) to raters, keep key.json.

Export: `--captions` maps Table 4 rows (treetalk, oxfordnet, nn, lrcn_fc8, lrcn_ft) to COCO
result files; one reference caption per image from `--references` (a COCO annotation file)
is added as the human caption (row `captions`). `--images DIR` holds the image files named by
the annotation file's `images[].file_name`. With no `--captions`, the kit is made from what
`python -m reproduce.table3` left in `<workdir>/table3_captions/<dataset>/` (see
`_table3_captions`).

Aggregate: reads the returned forms, rejects incomplete or inconsistent ones with the reason
(file and line), and writes the mean rank (1 = best) per method and criterion to `--output`
(default results/table4.csv): table4, row = method, setting = `human_<N>` with N the number
of images ranked (the paper's is `human_785`: 785 Flickr30k images), metric = correctness /
grammar / relevance, dataset = `--dataset`, preset `none`. Rows of the paper are printed beside
ours when the setting and dataset match. No golden rows: Table 4's numbers come from people.

Exit status: 0 ok; 2 bad input (missing captions, malformed files, no acceptable form).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from absl import app, flags

from lrcn_tf import cli, runtime
from lrcn_tf.evaluation import human_eval
from lrcn_tf.evaluation.captioning import (
    CaptionMetricsError,
    load_coco_predictions,
    load_coco_references,
)
from lrcn_tf.results import result_row, update_results
from reproduce import common

FLAGS = flags.FLAGS
DATASETS = ("synthetic_flickr30k", "synthetic_coco2014", "flickr30k", "coco2014", "flickr8k")
flags.DEFINE_enum("mode", "export", ["export", "aggregate"], "Export a kit or aggregate forms.")
flags.DEFINE_enum(
    "dataset",
    "synthetic_flickr30k",
    list(DATASETS),
    "Dataset of the captions (aggregate: default the one recorded in key.json).",
)
flags.DEFINE_list("captions", None, "method=COCO result file, e.g. lrcn_ft=a.json,nn=b.json.")
flags.DEFINE_string("references", None, "COCO annotation file (human captions, image names).")
flags.DEFINE_string("images", None, "Folder of the images named in --references.")
flags.DEFINE_string("out", "table4_kit", "Kit folder written by --mode export.")
flags.DEFINE_integer("num_images", None, "Images in the kit (seeded subset; default all).")
flags.DEFINE_integer("seed", 1701, "Seeds the image subset, human caption and letter orders.")
flags.DEFINE_list("forms", None, "Returned form CSVs (--mode aggregate).")
flags.DEFINE_string("key", None, "The kit's key.json (default: <--out>/key.json).")
flags.DEFINE_bool("allow_ties", True, "Accept tied ranks written 1,2,2,4 (else permutations).")
flags.DEFINE_string("workdir", "runs", "Run folders (config, versions, log) go here.")
flags.DEFINE_string("output", "results/table4.csv", "Result CSV (rows merged in atomically).")
flags.DEFINE_bool("compare", True, "Print the comparison with the paper when done.")

# Table 3 rows whose captions stand for a Table 4 row in the default kit.
TABLE3_TO_TABLE4 = {"nn_fc7": "nn", "lrcn": "lrcn_ft", "lrcn_fc8": "lrcn_fc8", "lrcn_ft": "lrcn_ft"}


def _table3_captions(workdir: str, dataset: str) -> tuple[dict[str, Path], Path] | None:
    """The captions reproduce.table3 leaves for Table 4: `<workdir>/table3_captions/<dataset>/`
    holding `references.json` (COCO annotation file) and `<table3 row>.json` result files."""
    folder = Path(workdir) / "table3_captions" / dataset
    refs = folder / "references.json"
    files = {
        TABLE3_TO_TABLE4[p.stem]: p
        for p in sorted(folder.glob("*.json"))
        if p.stem in TABLE3_TO_TABLE4
    }
    return (files, refs) if refs.is_file() and files else None


def _parse_captions(items: list[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        method, sep, path = item.partition("=")
        if not sep or not path:
            raise human_eval.KitError(f"--captions {item!r}: expected method=FILE")
        if method in out:
            raise human_eval.KitError(f"--captions: {method} given twice")
        out[method.strip()] = Path(path)
    return out


def export() -> int:
    if FLAGS.captions:
        files = _parse_captions(FLAGS.captions)
        if not FLAGS.references:
            raise human_eval.KitError("--references is needed for the human caption")
        refs_path = Path(FLAGS.references)
    else:
        found = _table3_captions(FLAGS.workdir, FLAGS.dataset)
        if found is None:
            print(
                f"No captions to rank: {Path(FLAGS.workdir) / 'table3_captions' / FLAGS.dataset} "
                "has none. Run `python -m reproduce.table3` first (same --workdir and "
                "--dataset), or pass --captions METHOD=FILE,... --references R.json [--images DIR].",
                file=sys.stderr,
            )
            return 2
        files, refs_path = found
    captions = {m: load_coco_predictions(p) for m, p in files.items()}
    references = load_coco_references(refs_path)
    image_files = human_eval.image_paths(refs_path, FLAGS.images)
    if image_files is None:
        print("WARNING: no image files found (--images); the pages will show no images.")
    summary = human_eval.export_kit(
        captions,
        references,
        FLAGS.out,
        image_files=image_files,
        num_images=FLAGS.num_images,
        seed=FLAGS.seed,
        dataset=FLAGS.dataset,
    )
    out = Path(summary["out_dir"])
    print(
        f"Wrote a ranking kit of {summary['num_images']} images x {len(summary['methods'])} "
        f"descriptions ({', '.join(summary['methods'])}) to {out}/.\nSend index.html, pages/, "
        f"images/ and form.csv to raters; keep {out / 'key.json'} to yourself. Then run\n"
        f"  python -m reproduce.table4 --mode aggregate --forms RETURNED.csv,... "
        f"--key {out / 'key.json'} --dataset {FLAGS.dataset}"
    )
    return 0


def aggregate() -> int:
    if not FLAGS.forms:
        raise human_eval.KitError("--mode aggregate needs --forms (returned form CSVs)")
    key_path = Path(FLAGS.key or Path(FLAGS.out) / "key.json")
    key = human_eval.load_key(key_path)
    # The dataset recorded at export wins over the flag's default (not over an explicit flag).
    dataset = FLAGS.dataset if FLAGS["dataset"].present else key.get("dataset") or FLAGS.dataset
    result = human_eval.aggregate_forms(FLAGS.forms, key, allow_ties=FLAGS.allow_ties)
    for _, reason in result["rejected"]:
        print(f"REJECTED {reason}", file=sys.stderr)
    config = {
        "table": "table4",
        "dataset": dataset,
        "allow_ties": FLAGS.allow_ties,
        "key": _digest(key_path),
        "forms": sorted(_digest(p) for p in result["accepted"]),
    }
    run = runtime.Run(FLAGS.workdir, "table4", config)
    setting = f"human_{result['num_images']}"
    rows = [
        result_row("table4", m, setting, c, dataset, v, run.id, "none")
        for (m, c), v in result["means"].items()
    ]
    update_results(FLAGS.output, rows)
    run.log("aggregated %d rankings of %d images", result["num_rankings"], result["num_images"])
    print(
        f"{len(result['accepted'])} form(s) accepted, {len(result['rejected'])} rejected: "
        f"{result['num_rankings']} rankings of {result['num_images']} images by "
        f"{len(result['raters'])} rater(s). Mean rank, 1 = best ({setting}, {dataset}):"
    )
    print(f"  {'method':<10}" + "".join(f"{c:>13}" for c in human_eval.CRITERIA))
    for m in key["methods"]:
        means = "".join(f"{result['means'][(m, c)]:13.2f}" for c in human_eval.CRITERIA)
        print(f"  {m:<10}{means}")
    print(f"wrote {FLAGS.output} (run {run.id})")
    if FLAGS.compare:
        return common.print_comparison(Path(FLAGS.output), ["table4"])
    return 0


def _digest(path) -> str:
    """`path` plus a hash of its content, so the run id changes when a form does."""
    return f"{path}@{hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]}"


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        return export() if FLAGS.mode == "export" else aggregate()
    except (human_eval.KitError, human_eval.FormError, CaptionMetricsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run() -> None:
    """The console command (`lrcn-table4`)."""
    cli.run(main)


if __name__ == "__main__":
    run()
