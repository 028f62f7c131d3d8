r"""Caption metrics for any COCO-format result file, as coco-caption computes them.

    python -m lrcn_tf.score --references captions_test.json --predictions results.json
    python -m lrcn_tf.score --references R.json --predictions P.json --metrics bleu \
        --output scores.json

`--references`: a COCO annotation file, `{"images": [...], "annotations": [{"image_id": 1,
"caption": "A dog runs."}, ...]}` (several annotations per image). `--predictions`: a COCO
result file, `[{"image_id": 1, "caption": "a dog is running"}, ...]` (one per image). Only the
images in the result file are scored, as in coco-caption.

Prints BLEU-1..4, METEOR, CIDEr and ROUGE-L (all x100) as a table; `--output` also writes them
as JSON. METEOR and the exact PTB tokenizer need Java: without it the tokenizer falls back to a
pure-Python one (with a warning) and the default metric list leaves METEOR out; asking for
`--metrics meteor` without Java is an error. Exit status 0 ok, 2 bad input (malformed JSON or
missing keys, named with the file and the entry) or a metric that cannot run here.
"""

from __future__ import annotations

import json
import sys
import warnings

from absl import app, flags

from lrcn_tf.evaluation import captioning
from lrcn_tf.evaluation.captioning import CaptionMetricsError, JavaUnavailableWarning
from lrcn_tf.runtime import write_text_atomic

FLAGS = flags.FLAGS
flags.DEFINE_string("references", None, "COCO annotation file with the reference captions.")
flags.DEFINE_string("predictions", None, "COCO result file with one caption per image.")
flags.DEFINE_list(
    "metrics",
    None,
    f"Any of {','.join(captioning.METRICS)} (default: all; METEOR only when Java is present).",
)
flags.DEFINE_enum(
    "tokenizer",
    "auto",
    list(captioning.TOKENIZERS),
    "auto: Java PTBTokenizer as coco-caption, pure-Python fallback with a warning without Java.",
)
flags.DEFINE_string("output", None, "Also write the metrics to this JSON file.")
flags.mark_flags_as_required(["references", "predictions"])


def format_table(scores: dict[str, float]) -> str:
    """The metrics as a two-column text table."""
    width = max(len(k) for k in [*scores, "metric"])
    lines = [f"{'metric':<{width}}    value", f"{'-' * width}  -------"]
    lines += [f"{k:<{width}}  {v:7.2f}" for k, v in scores.items()]
    return "\n".join(lines)


def score_files(
    references: str, predictions: str, metrics: list[str] | None, tokenizer: str = "auto"
) -> dict:
    """Scores a COCO result file against a COCO annotation file.

    Returns:
      {"metrics": {name: value}, "num_images": .., "tokenizer": "java" or "python",
       "references": path, "predictions": path}.
    """
    refs = captioning.load_coco_references(references)
    preds = captioning.load_coco_predictions(predictions)
    missing = [k for k in preds if k not in refs]
    if missing:
        raise CaptionMetricsError(
            f"{predictions}: {len(missing)} image_id(s) not in {references}, e.g. {missing[:5]}"
        )
    if metrics is None:
        metrics = [m for m in captioning.METRICS if m != "meteor" or captioning.find_java()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = captioning.score_captions(refs, preds, metrics, tokenizer=tokenizer)
    fell_back = any(issubclass(w.category, JavaUnavailableWarning) for w in caught)
    for w in caught:
        print(f"WARNING: {w.message}", file=sys.stderr)
    return {
        "metrics": scores,
        "num_images": len(preds),
        "tokenizer": "python" if tokenizer == "python" or fell_back else "java",
        "references": str(references),
        "predictions": str(predictions),
    }


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        result = score_files(FLAGS.references, FLAGS.predictions, FLAGS.metrics, FLAGS.tokenizer)
    except CaptionMetricsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = result["num_images"]
    print(f"{n} image{'s' * (n != 1)} scored, {result['tokenizer']} PTB tokenizer")
    print(format_table(result["metrics"]))
    if FLAGS.output:
        write_text_atomic(FLAGS.output, json.dumps(result, indent=2) + "\n")
        print(f"wrote {FLAGS.output}")
    return 0


def run() -> None:
    """The console command (`lrcn-score`)."""
    app.run(main)


if __name__ == "__main__":
    run()
