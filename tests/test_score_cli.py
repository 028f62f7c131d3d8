"""`python -m lrcn_tf.score`: COCO annotation/result files in, metric table out, exit 2 on bad input."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lrcn_tf.evaluation import captioning

ROOT = Path(__file__).resolve().parents[1]

REFS = {
    "images": [{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"}],
    "annotations": [
        {"image_id": 1, "id": 10, "caption": "A dog runs."},
        {"image_id": 1, "id": 11, "caption": "The big dog runs very fast today!"},
        {"image_id": 2, "id": 12, "caption": "A red car parked on a street."},
        {"image_id": 2, "id": 13, "caption": "One red car is parked outside"},
    ],
}
PREDS = [{"image_id": 1, "caption": "a dog runs fast"}, {"image_id": 2, "caption": "A red car."}]


def _run(tmp_path, refs, preds, *extra):
    r, p = tmp_path / "refs.json", tmp_path / "preds.json"
    r.write_text(refs if isinstance(refs, str) else json.dumps(refs))
    p.write_text(preds if isinstance(preds, str) else json.dumps(preds))
    cmd = [sys.executable, "-m", "lrcn_tf.score", f"--references={r}", f"--predictions={p}"]
    return subprocess.run(cmd + list(extra), cwd=ROOT, capture_output=True, text=True)


def test_prints_table_and_writes_json(tmp_path):
    out = tmp_path / "scores.json"
    proc = _run(tmp_path, REFS, PREDS, "--metrics=bleu,rouge_l", f"--output={out}")
    assert proc.returncode == 0, proc.stderr
    # Hand-computed in tests/test_captioning_metrics.py: BLEU-1 = 100 * exp(1 - 9/7).
    assert re.search(r"^bleu1 +75\.15$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^rouge_l +\d+\.\d\d$", proc.stdout, re.M), proc.stdout
    result = json.loads(out.read_text())
    assert result["num_images"] == 2
    assert set(result["metrics"]) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l"}
    assert result["metrics"]["bleu1"] == pytest.approx(100 * math.exp(-2 / 7), abs=1e-6)
    assert result["tokenizer"] == ("java" if captioning.find_java() else "python")


@pytest.mark.parametrize(
    "refs, preds, match",
    [
        ("{not json", PREDS, r"refs.json: line 1 column 2: not valid JSON"),
        ({"images": []}, PREDS, r"refs.json: expected a COCO annotation file"),
        (
            {"annotations": [{"image_id": 1, "caption": "a"}, {"image_id": 2}]},
            PREDS,
            r"refs.json: annotations\[1\]: missing key\(s\) \['caption'\]",
        ),
        (REFS, {"image_id": 1, "caption": "a"}, r"preds.json: expected a COCO result file"),
        (
            REFS,
            [PREDS[0], {"caption": "x"}],
            r"preds.json: entry 1: missing key\(s\) \['image_id'\]",
        ),
        (REFS, [PREDS[0], PREDS[0]], r"preds.json: entry 1: image_id 1 already has a caption"),
        (REFS, [{"image_id": "1", "caption": "a"}], r"not in .*refs.json"),
        (REFS, [{"image_id": 1, "caption": 5}], r"preds.json: entry 0: caption 5 is not a string"),
    ],
)
def test_bad_input_exits_2_naming_file_and_entry(tmp_path, refs, preds, match):
    proc = _run(tmp_path, refs, preds, "--metrics=bleu")
    assert proc.returncode == 2
    assert re.search(match, proc.stderr), proc.stderr


def test_missing_file_and_unknown_metric_exit_2(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lrcn_tf.score",
            "--references=/nonexistent.json",
            f"--predictions={tmp_path / 'p.json'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "/nonexistent.json: cannot read" in proc.stderr
    proc = _run(tmp_path, REFS, PREDS, "--metrics=bleu,spice")
    assert proc.returncode == 2 and "spice" in proc.stderr
