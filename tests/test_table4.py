"""Table 4 kit: export, simulated raters, aggregation and rejection of bad forms."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lrcn_tf.evaluation import human_eval
from lrcn_tf.evaluation.human_eval import CRITERIA, FormError, KitError
from lrcn_tf.results import read_rows

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("lrcn_ft", "lrcn_fc8", "nn")
N_IMAGES = 6


def _write_inputs(tmp_path):
    """A COCO annotation file with image names, image files and one result file per method."""
    (tmp_path / "imgs").mkdir(parents=True)
    images, annotations = [], []
    for i in range(N_IMAGES):
        images.append({"id": 100 + i, "file_name": f"im{i}.jpg"})
        (tmp_path / "imgs" / f"im{i}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
        for j in range(3):
            annotations.append({"image_id": 100 + i, "caption": f"Human caption {j} of image {i}."})
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({"images": images, "annotations": annotations}))
    files = {}
    for n, m in enumerate(METHODS):
        files[m] = tmp_path / f"{m}.json"
        preds = [
            {"image_id": 100 + i, "caption": f"model {n} says <b>{i}</b>"} for i in range(N_IMAGES)
        ]
        files[m].write_text(json.dumps(preds))
    return refs, files


@pytest.fixture()
def kit(tmp_path):
    refs, files = _write_inputs(tmp_path)
    captions = {m: {int(k): v for k, v in _preds(p).items()} for m, p in files.items()}
    references = {}
    for a in json.loads(refs.read_text())["annotations"]:
        references.setdefault(a["image_id"], []).append(a["caption"])
    out = tmp_path / "kit"
    human_eval.export_kit(
        captions,
        references,
        out,
        image_files=human_eval.image_paths(refs, tmp_path / "imgs"),
        seed=3,
        dataset="synthetic_flickr30k",
    )
    return out


def _preds(path):
    return {e["image_id"]: e["caption"] for e in json.loads(Path(path).read_text())}


def test_export_writes_anonymised_shuffled_pages(kit):
    key = human_eval.load_key(kit / "key.json")
    assert key["methods"] == list(METHODS) + ["captions"]
    assert len(list((kit / "pages").glob("*.html"))) == N_IMAGES
    assert len(list((kit / "images").glob("*.jpg"))) == N_IMAGES
    orders = {tuple(v[x] for x in "ABCD") for v in key["letters"].values()}
    assert len(orders) > 1  # a fresh random order per image
    for sid, letters in key["letters"].items():
        assert sorted(letters.values()) == sorted(key["methods"])
        human = key["captions"][sid][next(x for x, m in letters.items() if m == "captions")]
        assert human.startswith("Human caption") and f"image {int(sid) - 100}." in human
    page = (kit / "pages" / "0001.html").read_text()
    assert "&lt;b&gt;" in page  # captions are escaped
    assert not re.search(r"lrcn|\bnn\b|captions\b", page)  # nothing tells the methods apart
    assert "key.json" not in (kit / "index.html").read_text()
    rows = list(csv.DictReader((kit / "form.csv").open()))
    assert len(rows) == N_IMAGES * 4
    assert all(r["rater"] == "" and r["correctness"] == "" for r in rows)


def test_export_is_seeded(tmp_path, kit):
    refs, files = _write_inputs(tmp_path / "again")
    captions = {m: _preds(p) for m, p in files.items()}
    references = {}
    for a in json.loads(refs.read_text())["annotations"]:
        references.setdefault(a["image_id"], []).append(a["caption"])
    human_eval.export_kit(captions, references, tmp_path / "k2", seed=3)
    human_eval.export_kit(captions, references, tmp_path / "k3", seed=4)
    same = json.loads((tmp_path / "k2" / "key.json").read_text())
    assert same["letters"] == json.loads((kit / "key.json").read_text())["letters"]
    assert json.loads((tmp_path / "k3" / "key.json").read_text())["letters"] != same["letters"]


# True quality (higher = better) per criterion: the human caption is most correct and
# relevant, the fine-tuned LRCN the most grammatical; the simulated raters add noise.
QUALITY = {
    "correctness": {"captions": 3.0, "lrcn_ft": 2.0, "nn": 1.0, "lrcn_fc8": 0.0},
    "grammar": {"lrcn_ft": 3.0, "captions": 2.0, "lrcn_fc8": 1.0, "nn": 0.0},
    "relevance": {"captions": 3.0, "nn": 2.0, "lrcn_ft": 1.0, "lrcn_fc8": 0.0},
}


def _competition_ranks(scores):
    return [1 + sum(1 for t in scores if t > s) for s in scores]


def _fill_form(kit, path, rater, rng, noise=0.8, round_to=None, images=None):
    """A simulated rater: noisy scores around QUALITY, ranked (ties when rounding)."""
    key = human_eval.load_key(kit / "key.json")
    rows = list(csv.DictReader((kit / "form.csv").open()))
    by_image = {}
    for r in rows:
        by_image.setdefault(r["image_id"], []).append(r)
    for sid, group in by_image.items():
        if images is not None and sid not in images:
            continue
        for c in CRITERIA:
            scores = [QUALITY[c][key["letters"][sid][r["letter"]]] for r in group]
            scores = [s + rng.normal(0, noise) for s in scores]
            if round_to:
                scores = [round(s / round_to) for s in scores]
            for r, rank in zip(group, _competition_ranks(scores)):
                r[c] = str(rank)
                r["rater"] = rater
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_simulated_raters_recover_the_preference_order(kit, tmp_path):
    rng = np.random.default_rng(0)
    forms = [_fill_form(kit, tmp_path / f"r{i}.csv", f"rater{i}", rng) for i in range(5)]
    forms.append(_fill_form(kit, tmp_path / "ties.csv", "tie_rater", rng, round_to=2.0))
    key = human_eval.load_key(kit / "key.json")
    result = human_eval.aggregate_forms(forms, key)
    assert result["rejected"] == [] and result["num_images"] == N_IMAGES
    assert result["num_rankings"] == 6 * N_IMAGES
    for c in CRITERIA:
        want = sorted(QUALITY[c], key=lambda m: -QUALITY[c][m])
        got = sorted(key["methods"], key=lambda m: result["means"][(m, c)])
        assert got == want, (c, {m: result["means"][(m, c)] for m in key["methods"]})
    # Without ties each ranking sums to 1+2+3+4 = 10; ties only lower the sum.
    for c in CRITERIA:
        total = sum(result["means"][(m, c)] for m in key["methods"])
        assert 9.0 < total <= 10.0 + 1e-9


def test_images_are_weighted_equally_whatever_their_number_of_raters(kit, tmp_path):
    key = human_eval.load_key(kit / "key.json")
    sids = sorted(key["letters"])
    rng = np.random.default_rng(1)
    a = _fill_form(kit, tmp_path / "a.csv", "a", rng, noise=0.0)  # every image
    b = _fill_form(kit, tmp_path / "b.csv", "b", rng, noise=0.0, images={sids[0]})
    result = human_eval.aggregate_forms([a, b], key)
    # Noise-free raters agree, so the extra ranking of image 0 must not move any mean.
    assert result["means"][("captions", "correctness")] == pytest.approx(1.0)
    assert result["means"][("lrcn_fc8", "correctness")] == pytest.approx(4.0)
    assert result["num_rankings"] == N_IMAGES + 1


def _good_rows(kit, tmp_path):
    path = _fill_form(kit, tmp_path / "good.csv", "ann", np.random.default_rng(2))
    return path.read_text().splitlines()


def _edit(lines, line_no, column, value):
    header = lines[0].split(",")
    rows = list(csv.reader(lines))
    rows[line_no - 1][header.index(column)] = value
    return rows


CORRUPTIONS = {
    "missing cell": (lambda L: _edit(L, 2, "grammar", ""), r":2: empty grammar rank"),
    "out of range": (lambda L: _edit(L, 3, "relevance", "5"), r":3: relevance rank '5' is not an integer from 1 to 4"),
    "not integer": (lambda L: _edit(L, 2, "correctness", "2.5"), r":2: correctness rank '2.5'"),
    "unknown image": (lambda L: _edit(L, 4, "image_id", "999"), r":4: image_id '999' is not in the kit"),
    "unknown letter": (lambda L: _edit(L, 5, "letter", "Q"), r":5: image .* has no letter 'Q'"),
    "empty rater": (lambda L: _edit(L, 2, "rater", ""), r":2: empty rater"),
    "caption edited": (lambda L: _edit(L, 2, "caption", "something else"), r":2: the caption of"),
    "duplicate row": (lambda L: list(csv.reader(L)) + list(csv.reader(L[1:2])), r"duplicate row .* \(first on line 2\)"),
    "incomplete": (lambda L: list(csv.reader(L[:3] + L[4:])), r":2: rater 'ann', image .*: no row for letter"),
    "missing column": (lambda L: [r[:-1] for r in csv.reader(L)], r":1: missing column\(s\) relevance"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_bad_forms_are_rejected_with_file_and_line(kit, tmp_path, name):
    corrupt, match = CORRUPTIONS[name]
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="") as f:
        csv.writer(f).writerows(corrupt(_good_rows(kit, tmp_path)))
    key = human_eval.load_key(kit / "key.json")
    with pytest.raises(FormError, match=match) as e:
        human_eval.read_form(bad, key)
    assert str(bad) in str(e.value)


def test_inconsistent_ranks_and_the_tie_rule(kit, tmp_path):
    key = human_eval.load_key(kit / "key.json")
    lines = _good_rows(kit, tmp_path)
    rows = list(csv.reader(lines))
    col = rows[0].index("grammar")
    for r, rank in zip(rows[1:5], ["1", "2", "2", "4"]):  # image 1: a valid competition tie
        r[col] = rank
    tied = tmp_path / "tied.csv"
    with open(tied, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    human_eval.read_form(tied, key)  # accepted with ties allowed
    with pytest.raises(FormError, match=r"grammar ranks .* inconsistent \(each of 1..N once\)"):
        human_eval.read_form(tied, key, allow_ties=False)
    rows[4][col] = "3"  # 1, 2, 2, 3: not how ties are written
    with open(tied, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(
        FormError, match=r"grammar ranks \[.*\] .* inconsistent \(ties written 1, 2, 2, 4\)"
    ):
        human_eval.read_form(tied, key)
    assert human_eval.is_competition_ranking([1, 2, 2, 4])
    assert not human_eval.is_competition_ranking([1, 1, 2, 3])
    assert not human_eval.is_competition_ranking([2, 3, 4, 5])


def test_aggregate_keeps_good_forms_and_reports_rejected_ones(kit, tmp_path):
    key = human_eval.load_key(kit / "key.json")
    rng = np.random.default_rng(3)
    good = _fill_form(kit, tmp_path / "good.csv", "ann", rng)
    again = _fill_form(kit, tmp_path / "again.csv", "ann", rng)  # same rater, same images
    result = human_eval.aggregate_forms([good, again], key)
    assert result["accepted"] == [str(good)]
    assert "rater 'ann' already ranked image" in result["rejected"][0][1]
    with pytest.raises(FormError, match="no form accepted"):
        human_eval.aggregate_forms([tmp_path / "missing.csv"], key)


def test_export_rejects_unknown_methods_and_missing_images(tmp_path):
    refs = {1: ["a dog"]}
    with pytest.raises(KitError, match="must be one of"):
        human_eval.export_kit({"lrcn": {1: "x"}}, refs, tmp_path / "k")
    with pytest.raises(KitError, match="not found"):
        human_eval.export_kit(
            {"nn": {1: "x"}}, refs, tmp_path / "k", image_files={1: tmp_path / "no.jpg"}
        )
    with pytest.raises(KitError, match="only 1 images"):
        human_eval.export_kit({"nn": {1: "x"}}, refs, tmp_path / "k", num_images=2)


def _cli(*args):
    cmd = [sys.executable, "-m", "reproduce.table4", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def test_cli_export_then_aggregate(tmp_path):
    refs, files = _write_inputs(tmp_path)
    kit = tmp_path / "kit"
    captions = ",".join(f"{m}={p}" for m, p in files.items())
    proc = _cli(
        "--mode=export",
        f"--captions={captions}",
        f"--references={refs}",
        f"--images={tmp_path / 'imgs'}",
        "--num_images=4",
        f"--out={kit}",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Wrote a ranking kit of 4 images x 4 descriptions" in proc.stdout
    rng = np.random.default_rng(4)
    forms = [_fill_form(kit, tmp_path / f"f{i}.csv", f"r{i}", rng) for i in range(2)]
    out = tmp_path / "table4.csv"
    proc = _cli(
        "--mode=aggregate",
        f"--forms={forms[0]},{forms[1]}",
        f"--key={kit / 'key.json'}",
        f"--output={out}",
        f"--workdir={tmp_path / 'runs'}",
        "--dataset=flickr30k",
        "--nocompare",
    )
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(out, ["table", "row", "setting", "metric", "dataset", "value", "run_id"])
    assert len(rows) == 4 * 3
    assert {r["row"] for r in rows} == {"lrcn_ft", "lrcn_fc8", "nn", "captions"}
    assert {(r["setting"], r["dataset"], r["preset"]) for r in rows} == {
        ("human_4", "flickr30k", "none")
    }
    assert (tmp_path / "runs" / rows[0]["run_id"] / "config.json").is_file()


def test_cli_without_table3_captions_says_what_to_run(tmp_path):
    proc = _cli(f"--workdir={tmp_path}")
    assert proc.returncode == 2
    assert "Run `python -m reproduce.table3` first" in proc.stderr
    proc = _cli("--mode=aggregate", f"--key={tmp_path / 'nokey.json'}", "--forms=x.csv")
    assert proc.returncode == 2 and "nokey.json: cannot read" in proc.stderr
