"""TACoS JSON-lines format: parser (good and malformed lines), the three input encodings, prepare."""

import json

import numpy as np
import pytest

from lrcn_tf.data.tacos import format as tacos
from lrcn_tf.data.tacos import pipeline as tacos_pipeline
from lrcn_tf.data.tacos import prepare as tacos_prepare
from lrcn_tf.data.tacos import synthetic as synthetic_tacos

LABELS = {
    "activity": ["cut", "take out", "peel"],
    "tool": ["NULL", "knife"],
    "object": ["carrot", "cutting board"],
    "source": ["NULL", "drawer"],
    "target": ["NULL", "plate"],
}
HEADER = json.dumps({"format": "tacos_multilevel", "version": 1, "labels": LABELS})


def _segment(**changes):
    seg = {
        "video": "s13-d21",
        "start": 120,
        "end": 388,
        "split": "train",
        "crf": {
            "activity": [0.2, 0.7, 0.1],
            "tool": [0.9, 0.1],
            "object": [0.4, 0.6],
            "source": [0.3, 0.7],
            "target": [1.0, 0.0],
        },
        "sentences": ["The person takes out a cutting board from the drawer."],
    }
    seg.update(changes)
    return json.dumps(seg)


def test_parses_a_good_file(tmp_path):
    path = tmp_path / "t.jsonl"
    second = _segment(id="x", start=400, end=500, split="test", sentences=["a", "b c"])
    path.write_text("\n".join([HEADER, _segment(), "", second]) + "\n")
    corpus = tacos.read_jsonl(path)
    assert corpus.labels["activity"] == ("cut", "take out", "peel")
    assert [s.id for s in corpus.segments] == ["s13-d21:120-388", "x"]
    seg = corpus.segments[0]
    assert seg.split == "train" and seg.start == 120 and seg.end == 388
    np.testing.assert_allclose(seg.crf["activity"], [0.2, 0.7, 0.1], rtol=1e-6)
    assert corpus.segments[1].sentences == ("a", "b c")


def test_distributions_are_renormalised_within_tolerance():
    crf = json.loads(_segment())["crf"]
    crf["tool"] = [0.902, 0.1]  # sums to 1.002
    corpus = tacos.parse_lines([HEADER, _segment(crf=crf)])
    assert corpus.segments[0].crf["tool"].sum() == pytest.approx(1.0, abs=1e-6)


def _bad_crf(slot, values):
    crf = json.loads(_segment())["crf"]
    crf[slot] = values
    return crf


@pytest.mark.parametrize(
    "line, match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (_segment(split="dev"), "'split' 'dev' is not one of"),
        (_segment(start="a"), "'start' must be a number"),
        (_segment(start=10, end=5), "'end' 5 is before 'start' 10"),
        (_segment(video=""), "'video' must be a non-empty string"),
        (_segment(sentences=[]), "'sentences' must be a non-empty list"),
        (_segment(sentences=[" . "]), "at least one word"),
        (_segment(sentence=["typo"]), "unknown field"),
        (_segment(crf={"activity": [1, 0, 0]}), "'crf' must map exactly the slots"),
        (_segment(crf=_bad_crf("tool", [1.0])), "crf 'tool' must be a list of 2 probabilities"),
        (_segment(crf=_bad_crf("tool", [0.5, 0.3])), "crf 'tool' sums to 0.8000"),
        (_segment(crf=_bad_crf("tool", [1.5, -0.5])), "negative or non-finite"),
        (_segment(crf=_bad_crf("tool", ["a", 1])), "not a number"),
        (_segment(gold={"activity": "cut"}), "'gold' must map exactly"),
    ],
)
def test_malformed_segment_line_is_reported_with_its_line_number(tmp_path, line, match):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([HEADER, _segment(), "", line]) + "\n")
    with pytest.raises(tacos.TACoSFormatError, match=match) as e:
        tacos.read_jsonl(path)
    assert str(e.value).startswith(f"{path}:4: ")


def test_missing_field_and_duplicate_id_are_named():
    seg = json.loads(_segment())
    del seg["end"]
    with pytest.raises(tacos.TACoSFormatError, match=r"<input>:2: missing field 'end'"):
        tacos.parse_lines([HEADER, json.dumps(seg)])
    with pytest.raises(tacos.TACoSFormatError, match=r":3: duplicate segment id .* line 2"):
        tacos.parse_lines([HEADER, _segment(), _segment()])


@pytest.mark.parametrize(
    "header, match",
    [
        (_segment(), "first line must be the header"),
        (json.dumps({"format": "tacos_multilevel", "version": 2, "labels": LABELS}), "version 2"),
        (
            json.dumps({"format": "tacos_multilevel", "version": 1, "labels": {"activity": ["a"]}}),
            "must map exactly the slots",
        ),
        (
            json.dumps(
                {
                    "format": "tacos_multilevel",
                    "version": 1,
                    "labels": {**LABELS, "tool": ["a", "a"]},
                }
            ),
            "not unique",
        ),
    ],
)
def test_malformed_header_is_reported_on_line_1(header, match):
    with pytest.raises(tacos.TACoSFormatError, match=f"^<input>:1: .*{match}"):
        tacos.parse_lines([header, _segment()])


def test_empty_file_and_unreadable_file(tmp_path):
    with pytest.raises(tacos.TACoSFormatError, match="empty file"):
        tacos.parse_lines(["", "  "])
    with pytest.raises(tacos.TACoSFormatError, match="no segment lines"):
        tacos.parse_lines([HEADER])
    with pytest.raises(tacos.TACoSFormatError, match="cannot read"):
        tacos.read_jsonl(tmp_path / "missing.jsonl")


# --- encodings on hand-made distributions ----------------------------------------------------

CRF = {  # two segments
    "activity": np.array([[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]]),
    "tool": np.array([[0.9, 0.1], [0.45, 0.55]]),
    "object": np.array([[0.4, 0.6], [0.5, 0.5]]),  # a tie: the first label wins
    "source": np.array([[0.3, 0.7], [1.0, 0.0]]),
    "target": np.array([[1.0, 0.0], [0.2, 0.8]]),
}


def test_crf_prob_is_the_concatenation_in_slot_order():
    enc = tacos.crf_prob_encoding(CRF)
    assert enc.shape == (2, 11) and enc.dtype == np.float32
    np.testing.assert_allclose(enc[0], [0.2, 0.7, 0.1, 0.9, 0.1, 0.4, 0.6, 0.3, 0.7, 1.0, 0.0])
    back = tacos.split_slots(enc, [3, 2, 2, 2, 2])
    np.testing.assert_allclose(back["object"], CRF["object"])


def test_crf_max_is_the_concatenated_one_hot_map():
    enc = tacos.crf_max_encoding(CRF)
    np.testing.assert_array_equal(enc[0], [0, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(enc[1], [1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1])
    assert enc.sum(axis=1).tolist() == [5, 5]


def test_map_label_words_tokenises_labels_in_slot_order():
    words = tacos.map_label_words(CRF, LABELS)
    assert words[0] == ["take", "out", "null", "cutting", "board", "drawer", "null"]
    assert words[1] == ["cut", "knife", "carrot", "null", "plate"]
    vocab = tacos.source_vocabulary(LABELS)
    ids = tacos.pad_ids([vocab.encode(w) for w in words])
    assert ids.shape == (2, 7) and ids[1, 5:].tolist() == [0, 0]
    assert vocab.decode(ids[1]) == "cut knife carrot null plate"
    assert 1 not in ids  # no label word is unknown to the source vocabulary


# --- synthetic data and prepare --------------------------------------------------------------


def test_synthetic_crf_has_structured_confusions():
    rng = np.random.default_rng(0)
    right = wrong = runner_up = 0
    for _ in range(400):
        truth = synthetic_tacos.sample_tuple(rng)
        crf = synthetic_tacos.simulate_crf(truth, rng)
        p = np.array(crf["activity"])
        true = synthetic_tacos.LABELS["activity"].index(truth["activity"])
        if p.argmax() == true:
            right += 1
        else:
            wrong += 1
            runner_up += int(np.argsort(-p)[1] == true)
    # The MAP is wrong often enough to matter, and then the truth is usually second.
    assert 0.55 < right / 400 < 0.9
    assert runner_up / wrong > 0.6


def test_synthetic_prepare_is_deterministic_and_readable(tmp_path):
    raw_a = synthetic_tacos.generate(tmp_path / "a.jsonl", seed=3)
    raw_b = synthetic_tacos.generate(tmp_path / "b.jsonl", seed=3)
    assert raw_a.read_bytes() == raw_b.read_bytes()
    manifest = tacos_prepare.prepare(raw_a, tmp_path / "prep", dataset="synthetic_tacos")
    assert set(manifest["counts"]) == {"train", "val", "test"}
    assert set(manifest["map_accuracy"]["test"]) == set(tacos.SLOTS)
    data = tacos_pipeline.PreparedTACoS(tmp_path / "prep")
    test = data.split("test")
    n = manifest["counts"]["test"]["segments"]
    assert len(test.ids) == n == len(test.references)
    assert data.inputs(test, "crf_prob").shape == (n, sum(data.slot_sizes))
    assert np.all(data.inputs(test, "crf_max").sum(1) == 5)
    assert data.inputs(test, "map_words").shape[0] == n
    assert test.caption_input.shape[1] == 20 and (test.caption_input[:, 0] == 0).all()
    # Every segment has 3-5 varied references.
    lengths = [len(v) for v in test.references.values()]
    assert min(lengths) >= 3 and max(lengths) <= 5


def test_prepared_folder_without_manifest_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json not found"):
        tacos_pipeline.PreparedTACoS(tmp_path)
