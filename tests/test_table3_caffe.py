"""reproduce.table3 --weights caffe: the authors' COCO captioner evaluated, end to end, on the
width-reduced captioner made in real Caffe (tests/fixtures/caffe/captioner_2f*) over a tiny
prepared synthetic_coco2014; its captions must be those the converted Caffe nets give when run
as the authors' captioner.py runs them (greedy, the prefix rerun at every word)."""

import csv
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests import caffe_fixture as fx

CAFFEMODEL = "lrcn_finetune_iter_50000.caffemodel"  # the name the authors' scripts write


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A synthetic_coco2014 of 5 train, 1 val and 6 test images."""
    from lrcn_tf.data import embedded

    folder = tmp_path_factory.mktemp("coco") / "synthetic_coco2014"
    sizes = {"train": 5, "val": 1, "test": 6}
    return embedded.ensure_captions(folder, "synthetic_coco2014", sizes=sizes)


def _vocabulary_lines(data_dir: Path, size: int) -> list[str]:
    """`<unk>` then the data's most frequent words (so that some generated words are real),
    `size` lines: the fixture's predict layer has size + 1 outputs with <EOS>."""
    from lrcn_tf.data import text
    from lrcn_tf.data.captions import format as captions

    refs = captions.references(data_dir, "train")
    counts = Counter(w for cs in refs.values() for c in cs for w in text.tokenize(c))
    words = [w for w, _ in counts.most_common() if w != "<unk>"][: size - 1]
    return ["<unk>", *words, *(f"filler{i}" for i in range(size - 1 - len(words)))]


def _image_net_prototxt(path: Path) -> Path:
    """The fixture's captioner net cut after fc8, with its image input only: the image net
    captioner.py runs (BVLC's CaffeNet deploy), narrowed like the fixture."""
    from google.protobuf import text_format

    from lrcn_tf.caffe import proto

    net = proto.read_prototxt(fx.path("captioner_2f.deploy.prototxt"))
    del net.input[1:]
    del net.input_shape[1:]
    last = [layer.name for layer in net.layer].index("fc8")
    del net.layer[last + 1 :]
    path.write_text(text_format.MessageToString(net))
    return path


@pytest.fixture
def weights_dir(tiny, tmp_path):
    folder = tmp_path / "released"
    folder.mkdir()
    shutil.copy(fx.path("captioner_2f.caffemodel"), folder / CAFFEMODEL)
    predict = fx.MANIFEST["captioner_2f"]["widths"]["predict"]
    lines = _vocabulary_lines(tiny, predict - 1)
    (folder / "vocabulary.txt").write_text("".join(w + "\n" for w in lines))
    return folder


def _run(*args):
    cmd = [sys.executable, "-m", "reproduce.table3", "--weights=caffe", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def _one_error(done, *names):
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    for name in names:
        assert name in lines[-1], lines[-1]


def test_missing_or_ambiguous_files_are_named(weights_dir, tmp_path):
    out, runs = tmp_path / "t3.csv", tmp_path / "runs"
    common = [f"--output={out}", f"--workdir={runs}"]
    _one_error(_run(*common), "--weights_dir")
    _one_error(_run(f"--weights_dir={weights_dir}", "--preset=smoke", *common), "--preset")
    _one_error(_run(f"--weights_dir={tmp_path / 'nowhere'}", *common), "not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_error(_run(f"--weights_dir={empty}", *common), str(empty), "no .caffemodel")
    _one_error(
        _run(f"--weights_dir={weights_dir}", "--caffemodel=lrcn_iter_110000", *common),
        "--caffemodel lrcn_iter_110000",
    )
    shutil.copy(weights_dir / CAFFEMODEL, weights_dir / "lrcn_iter_110000.caffemodel")
    _one_error(_run(f"--weights_dir={weights_dir}", *common), "2 .caffemodel files", "--caffemodel")
    (weights_dir / "lrcn_iter_110000.caffemodel").unlink()
    (weights_dir / "vocabulary.txt").unlink()
    _one_error(_run(f"--weights_dir={weights_dir}", *common), "vocabulary.txt is missing")
    assert not out.exists() and not runs.exists()


def test_mismatched_files_are_named_before_anything_is_written(weights_dir, tmp_path):
    from lrcn_tf.caffe import CaffeError
    from lrcn_tf.tasks import captioning

    out, runs = tmp_path / "t3.csv", tmp_path / "runs"
    vocab = weights_dir / "vocabulary.txt"
    caffemodel = weights_dir / CAFFEMODEL
    # The vocabulary does not fit the net's predict layer (one word short).
    lines = vocab.read_text().splitlines()
    vocab.write_text("".join(w + "\n" for w in lines[:-1]))
    done = _run(f"--weights_dir={weights_dir}", f"--output={out}", f"--workdir={runs}")
    n = len(lines) - 1
    _one_error(done, str(vocab), f"{n} words + <EOS> = {n + 1}", f"{n + 2} outputs")
    assert not out.exists() and not list(runs.glob("*"))
    vocab.write_text("".join(w + "\n" for w in lines[1:] + ["x"]))
    with pytest.raises(ValueError, match=r"vocabulary.txt:1: .*starts with '<unk>'"):
        captioning.load_released(caffemodel, vocab, runs)
    vocab.write_text("".join(w + "\n" for w in lines))
    # A caffemodel that is not a captioner.
    with pytest.raises(CaffeError, match=r"single_frame.caffemodel: not an LRCN captioner"):
        captioning.load_released(fx.path("single_frame.caffemodel"), vocab, runs)
    # W's own prototxts must compute the nets evaluated: a language net whose weights do not
    # fit (the 2u captioner's lstm1 takes the image), one that computes something else (no
    # softmax), an image net without fc8.
    language = weights_dir / "lrcn_word_to_preds.deploy.prototxt"
    shutil.copy(fx.path("captioner_2f.word_to_preds.prototxt"), language)
    with pytest.raises(CaffeError, match=f"{language}: .*lstm1"):
        captioning.load_released(
            fx.path("captioner_2u.caffemodel"), vocab, runs, {"language": language}
        )
    text = language.read_text()
    language.write_text(text[: text.index('layer {\n  name: "probs"')])
    with pytest.raises(CaffeError, match=f"{language}: computes another net"):
        captioning.load_released(caffemodel, vocab, runs, {"language": language})
    image = weights_dir / "deploy.prototxt"
    shutil.copy(fx.path("single_frame.deploy.prototxt"), image)
    with pytest.raises(CaffeError, match=f"{image}: "):
        captioning.load_released(caffemodel, vocab, runs, {"image": image})
    assert not list(runs.glob("*"))  # nothing converted or cached


def _direct_captions(data_dir: Path, image_prototxt: Path, vocabulary: Path) -> dict[int, str]:
    """The test split's captions from the converted Caffe nets themselves (lrcn_tf.caffe),
    decoded as captioner.py decodes: greedy, at most 50 words, the prefix rerun each word."""
    from lrcn_tf import caffe
    from lrcn_tf.data.captions import pipeline

    weights = caffe.read_weights(fx.path("captioner_2f.caffemodel"))
    image_net = caffe.blob_model(caffe.build(caffe.read_prototxt(image_prototxt), weights), ["fc8"])
    language_net = caffe.build(
        caffe.read_prototxt(fx.path("captioner_2f.word_to_preds.prototxt")), weights
    ).model
    ids, feats = [], []
    for images, image_ids in pipeline.eval_images(data_dir, "test", 64, 227, resize=256):
        feats.append(np.asarray(image_net(images)["fc8"]))
        ids += [int(i) for i in image_ids.numpy()]
    tokens = fx.greedy_stateless(language_net, np.concatenate(feats), 50)
    words = ["<EOS>", *vocabulary.read_text().splitlines()]
    out = {}
    for image_id, row in zip(ids, tokens):
        kept = [int(t) for t in row if t >= 0]
        kept = kept[: kept.index(0)] if 0 in kept else kept
        out[image_id] = " ".join(words[t] for t in kept)
    return out


@pytest.mark.slow
def test_released_captioner_is_evaluated_end_to_end(tiny, weights_dir, tmp_path):
    image_prototxt = _image_net_prototxt(weights_dir / "deploy.prototxt")
    shutil.copy(
        fx.path("captioner_2f.word_to_preds.prototxt"),
        weights_dir / "lrcn_word_to_preds.deploy.prototxt",
    )
    out, runs = tmp_path / "table3_caffe.csv", tmp_path / "runs"
    args = [
        f"--weights_dir={weights_dir}",
        "--dataset=synthetic_coco2014",
        f"--data_dir={tiny}",
        f"--workdir={runs}",
        f"--output={out}",
        "--samples=2",
    ]
    done = _run(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader(out.open()))
    assert {r["metric"] for r in rows} >= {"bleu1", "bleu2", "bleu3", "bleu4", "cider", "rouge_l"}
    assert {(r["table"], r["row"], r["setting"], r["dataset"]) for r in rows} == {
        ("table3", "lrcn", "test", "synthetic_coco2014")
    }
    assert {r["weights"] for r in rows} == {"caffe"} and {r["preset"] for r in rows} == {"paper"}
    run_dir = runs / rows[0]["run_id"]
    record = json.loads((run_dir / "config.json").read_text())
    assert record["weights"] == "caffe" and record["variant"] == "2f"
    assert record["caffemodel"] == str((weights_dir / CAFFEMODEL).resolve())
    assert record["decode"]["beam_size"] == 1 and record["decode"]["max_length"] == 50
    # The captions are what the converted Caffe nets give, word for word.
    got = {
        p["image_id"]: p["caption"]
        for p in json.loads((run_dir / "predictions_test.json").read_text())
    }
    want = _direct_captions(tiny, image_prototxt, weights_dir / "vocabulary.txt")
    assert len(got) == 6 and got == want
    assert any(len(c.split()) > 3 for c in got.values())
    scores = json.loads((run_dir / "scores.json").read_text())["lrcn"]
    assert {r["metric"]: round(float(r["value"]), 4) for r in rows} == {
        m: round(v, 4) for m, v in scores.items()
    }
    # Converted once (with both prototxts checked), then found again, not redone.
    conversions = sorted(runs.glob("caffe-*/converted.weights.h5"))
    assert len(conversions) == 1
    assert (
        "agrees with the project's language net" in (conversions[0].parent / "log.txt").read_text()
    )
    stamp = conversions[0].stat().st_mtime_ns
    assert _run(*args).returncode == 0
    assert conversions[0].stat().st_mtime_ns == stamp
    assert sorted(runs.glob("caffe-*/converted.weights.h5")) == conversions
