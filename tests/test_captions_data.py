import json
import subprocess
import sys

import numpy as np
import pytest

from lrcn_tf.data import text
from lrcn_tf.data.captions import format as captions
from lrcn_tf.data.captions import pipeline as captions_pipeline
from lrcn_tf.data.captions import synthetic as synthetic_captions
from lrcn_tf.data.embedded import ensure_captions

SIZES = {"train": 12, "val": 2, "test": 4}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return ensure_captions(
        tmp_path_factory.mktemp("c") / "synthetic_coco2014", "synthetic_coco2014", SIZES
    )


def test_scenes_captions_and_pretext_are_deterministic():
    a = np.random.default_rng(3)
    b = np.random.default_rng(3)
    sa, sb = synthetic_captions.sample_scene(a), synthetic_captions.sample_scene(b)
    assert sa == sb
    caps = synthetic_captions.describe(sa, a)
    assert caps == synthetic_captions.describe(sb, b) and len(set(caps)) == 5
    img = synthetic_captions.render(sa, a, 32)
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and img.std() > 5
    x, y = synthetic_captions.pretext_batch(np.random.default_rng(0), 6, 32)
    assert (
        x.shape == (6, 32, 32, 3)
        and y.min() >= 0
        and y.max() < synthetic_captions.NUM_PRETEXT_CLASSES
    )


def test_generated_files_follow_the_real_formats(prepared):
    raw = prepared / "raw"
    karpathy = captions.load_karpathy(raw / "dataset_coco.json", raw)
    assert [r.split for r in karpathy].count("train") == 12 and len(karpathy) == 18
    assert all(
        r.filename.startswith(("train2014/", "val2014/")) and r.path.exists() for r in karpathy
    )
    assert all(len(r.captions) == 5 for r in karpathy)
    by_id = {r.image_id: r.captions for r in karpathy}
    coco = captions.load_coco_captions(
        raw / "annotations/captions_val2014.json", raw / "val2014", "test"
    )
    assert len(coco) == 6 and all(by_id[r.image_id] == r.captions for r in coco)


def test_prepared_folder(prepared):
    info = captions.load_info(prepared)
    assert info.dataset == "synthetic_coco2014" and info.splits == SIZES
    assert info.vocab.words[:2] == ["<EOS>", "<unk>"]
    test = captions.load_split(prepared, "test")
    assert len(test) == 4
    for p in test:  # token ids follow the vocabulary and the original tokeniser
        assert p.token_ids == [info.vocab.encode(text.tokenize(c)) for c in p.captions]
    refs = json.loads((prepared / "references_test.json").read_text())
    assert {a["image_id"] for a in refs["annotations"]} == {p.image_id for p in test}
    # evaluation order is the split file's order
    ids = np.concatenate(
        [i.numpy() for _, i in captions_pipeline.eval_images(prepared, "test", 3, 56)]
    )
    assert list(ids) == [p.image_id for p in test]
    assert ensure_captions(prepared, "synthetic_coco2014", SIZES) == prepared  # reused
    with pytest.raises(ValueError, match="made with"):
        ensure_captions(prepared, "synthetic_coco2014", {"train": 13, "val": 2, "test": 4})


def test_train_pairs_batches(prepared):
    info = captions.load_info(prepared)
    ds = captions_pipeline.train_pairs(
        prepared, 5, 56, pixel_scale=1 / 64, mirror=False, cache=True
    )
    inputs, targets = next(iter(ds))
    assert inputs["image"].shape == (5, 56, 56, 3) and inputs["words"].shape == (5, 20)
    assert targets.shape == (5, 20)
    words, tgt = inputs["words"].numpy(), targets.numpy()
    assert np.all(words[:, 0] == text.EOS)
    np.testing.assert_array_equal(words[:, 1:][tgt[:, :-1] >= 0], tgt[:, :-1][tgt[:, :-1] >= 0])
    train_caps = {
        " ".join(text.tokenize(c))
        for p in captions.load_split(prepared, "train")
        for c in p.captions
    }
    for row in tgt:
        caption = info.vocab.decode([w for w in row if w >= 0])
        assert caption in train_caps or "<unk>" in caption


def _karpathy(tmp_path, filename, **extra):
    (tmp_path / "imgs").mkdir(exist_ok=True)
    entry = {
        "filename": filename,
        "split": "train",
        "imgid": 0,
        "sentences": [{"raw": "A cat.", "tokens": ["a", "cat"]}],
        **extra,
    }
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"images": [entry]}))
    return path


@pytest.mark.parametrize("name", ["../outside.jpg", "/etc/passwd", "a/../../x.jpg"])
def test_file_names_escaping_the_image_folder_are_refused(tmp_path, name):
    path = _karpathy(tmp_path, name)
    with pytest.raises(captions.CaptionDataError, match=r"images\[0\].*escapes the image folder"):
        captions.load_karpathy(path, tmp_path / "imgs")


def test_symlink_out_of_the_image_folder_is_refused(tmp_path):
    path = _karpathy(tmp_path, "link.jpg")
    (tmp_path / "secret.jpg").write_bytes(b"x")
    (tmp_path / "imgs" / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    with pytest.raises(captions.CaptionDataError, match="escapes"):
        captions.load_karpathy(path, tmp_path / "imgs")


def test_malformed_files_are_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(captions.CaptionDataError, match=r"bad.json:1:\d+: not valid JSON"):
        captions.load_karpathy(bad, tmp_path)
    path = _karpathy(tmp_path, "x.jpg", split="holdout")
    with pytest.raises(captions.CaptionDataError, match=r"images\[0\]: split 'holdout'"):
        captions.load_karpathy(path, tmp_path / "imgs")
    bad.write_text(
        json.dumps({"images": [{"id": 1, "file_name": "x.jpg"}], "annotations": [{"image_id": 1}]})
    )
    with pytest.raises(captions.CaptionDataError, match=r"annotations\[0\]: missing 'caption'"):
        captions.load_coco_captions(bad, tmp_path)
    with pytest.raises(captions.CaptionDataError, match="no info.json"):
        captions.load_info(tmp_path)


def test_prepare_command_line(tmp_path):
    out = tmp_path / "flickr"
    cmd = [
        sys.executable,
        "-m",
        "lrcn_tf.prepare",
        "--dataset",
        "synthetic_flickr30k",
        f"--out={out}",
        "--synthetic_sizes=train=6,val=1,test=2",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    info = captions.load_info(out)
    assert info.splits == {"train": 6, "val": 1, "test": 2}
    raw = out / "raw"
    assert (raw / "dataset_flickr30k.json").exists() and (raw / "flickr30k-images").is_dir()
    # the real-data path, from the generated Karpathy file, with the Karpathy tokens
    real = tmp_path / "real"
    cmd = [
        sys.executable,
        "-m",
        "lrcn_tf.prepare",
        "--dataset",
        "flickr30k",
        f"--out={real}",
        f"--karpathy_json={raw / 'dataset_flickr30k.json'}",
        f"--images={raw / 'flickr30k-images'}",
        "--image_size=48",
        "--tokenizer=karpathy",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    assert captions.load_info(real).image_size == 48
    bad = subprocess.run(cmd[:5] + [f"--out={tmp_path / 'x'}"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--images" in bad.stderr


def test_bad_images_are_recorded_and_the_rest_finish(tmp_path):
    karpathy, images = synthetic_captions.write_dataset(
        tmp_path / "raw", "synthetic_flickr30k", {"train": 6, "val": 1, "test": 2}
    )
    entries = json.loads(karpathy.read_text())["images"]
    broken, gone = entries[1]["filename"], entries[7]["filename"]  # a train and a test image
    (images / broken).write_bytes(b"not a jpeg")
    (images / gone).unlink()
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "lrcn_tf.prepare",
        "--dataset",
        "flickr30k",
        f"--out={out}",
        f"--karpathy_json={karpathy}",
        f"--images={images}",
        "--image_size=0",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "7 images ok, 2 failed" in proc.stdout
    assert f"{broken}: not a readable image" in proc.stdout
    assert f"{gone}: image file missing" in proc.stdout
    assert captions.load_info(out).splits == {"train": 5, "val": 1, "test": 1}
    assert {p.filename for p in captions.load_split(out, "test")} == {entries[8]["filename"]}
    with open(out / "manifest.csv") as f:
        status = {r["filename"]: r["status"] for r in __import__("csv").DictReader(f)}
    assert len(status) == 9 and sum(s == "ok" for s in status.values()) == 7
    assert not (tmp_path / "out.partial").exists()
    again = subprocess.run(cmd + ["--allow_failures"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]


def test_prepare_user_errors_are_one_line(tmp_path):
    path = _karpathy(tmp_path, "../../etc/passwd")
    cmd = [
        sys.executable,
        "-m",
        "lrcn_tf.prepare",
        "--dataset",
        "coco2014",
        f"--out={tmp_path / 'o'}",
        f"--karpathy_json={path}",
        f"--images={tmp_path / 'imgs'}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [x for x in proc.stderr.splitlines() if x.startswith("error: ")] == [
        x for x in proc.stderr.splitlines() if x.strip()
    ][-1:]
    assert "escapes the image folder" in proc.stderr
