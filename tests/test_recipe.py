"""The `paper` preset against the authors' files, and the switches for the original's defects
(docs/recipe.md): each switch is reachable with --set, off by default, and changes exactly
what it should."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from lrcn_tf.configs import build
from lrcn_tf.configs import table1 as t1
from lrcn_tf.data.embedded import ensure_ucf101
from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.data.ucf101 import ops
from lrcn_tf.data.ucf101 import pipeline as up
from lrcn_tf.evaluation import activity as ev
from lrcn_tf.tasks import activity as task

TINY = dict(num_classes=2, num_groups=25, clips_per_group=1, workers=1, progress=False)
ROWS = [f"table1/{m}/{d}" for m in t1.MODELS for d in t1.MODALITIES]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ensure_ucf101(tmp_path_factory.mktemp("syn") / "synthetic_ucf101", **TINY)


# -- the paper preset follows the authors' files ------------------------------------------------


@pytest.mark.parametrize("name", ROWS)
def test_paper_table1_follows_the_audit(name):
    cfg = build(name, "paper")
    assert cfg.channel_order == "bgr" and cfg.fusion_third == 0.33
    assert cfg.test_final_clip_twice and cfg.test_crops == 10
    proto = cfg.test_protocol
    if cfg.is_lrcn:
        assert (proto["clip_length"], proto["stride"]) == (16, 8)
    else:  # every frame once, on 10 crops
        assert (proto["clip_length"], proto["stride"], proto["crops"]) == (1, 1, "ten")
    assert not any(getattr(cfg, d) for d in t1.DEFECTS)


@pytest.mark.parametrize("preset", ["smoke", "default", "paper"])
@pytest.mark.parametrize("defect", t1.DEFECTS)
def test_every_defect_is_off_by_default_and_reachable_with_set(preset, defect):
    for name in ROWS:
        assert getattr(build(name, preset), defect) is False
        assert getattr(build(name, preset, [f"{defect}=true"]), defect) is True


def test_paper_captioner_follows_the_audit():
    for name in ("table3/lrcn", "table3/lrcn_1u", "table3/lrcn_4f"):
        cfg = build(name, "paper")
        assert cfg.fc8_lr_mult == (0.1, 0.2) and cfg.cnn_lr_mult == (0.1, 0.2)
        assert cfg.predict_bias_lr_mult == 2.0 and not cfg.train_restval
    assert build("table2/lrcn_2f", "paper").captioner.fc8_lr_mult == (0.1, 0.2)


def test_predict_bias_multiplier_reaches_the_decoder_variable():
    from lrcn_tf.models import captioner
    from lrcn_tf.tasks import captioning
    from lrcn_tf.training import optim

    cfg = build("table3/lrcn", "paper")
    decoder = captioner.build_decoder(
        12,
        cond_dim=5,
        num_layers=2,
        factored=True,
        embed_dim=4,
        hidden=4,
        init_scale=0.08,
        dropout=0.0,
        seed=1,
    )
    lookup = optim.multipliers_from_rules(captioning.decoder_rules(cfg))
    paths = {optim.variable_path(v): lookup(optim.variable_path(v)) for v in decoder.weights}
    bias = [p for p in paths if p.endswith("predict/bias")]
    assert len(bias) == 1 and paths[bias[0]] == (2.0, 0.0)
    assert all(m == (1.0, 1.0) for p, m in paths.items() if p != bias[0])


def test_hybrid_net_fillers_are_the_prototxts():
    from lrcn_tf.models import backbones

    keras.utils.set_random_seed(0)
    net = backbones.build("hybrid_caffenet", (227, 227, 3), fc_units=64)
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
        kernel, bias = (np.asarray(w) for w in net.get_layer(name).get_weights())
        np.testing.assert_array_equal(bias, np.float32(0.1))
        assert abs(kernel.std() - 0.01) < 0.002, name


def test_tokeniser_keeps_a_final_spaced_full_stop():
    from lrcn_tf.data import text

    assert text.tokenize("A dog runs .") == ["a", "dog", "runs", "."]
    assert text.tokenize("A dog runs.") == ["a", "dog", "runs"]


# -- test protocol ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n,starts",
    [
        (8, [0]),
        (16, [0, 0]),
        (24, [0, 8, 8]),
        (40, [0, 8, 16, 24, 24]),
        (41, [0, 8, 16, 24, 25, 25]),
    ],
)
def test_original_clip_starts_count_the_final_clip_twice(n, starts):
    assert up.test_clip_starts(n, 16, 8, final_clip_twice=True) == starts
    got = ops.clip_starts_tf(tf.constant(n), 16, 8, final_clip_twice=True).numpy().tolist()
    assert got == starts


def test_every_frame_protocol_sees_each_frame_once(data):
    videos = ucf101.split_videos(data, 1, "test")
    frames = {}
    for e in up.test_clips(data, 1, "rgb", clip_length=1, stride=1, batch_size=7):
        assert e["clips"].shape[1:3] == (1, 1)
        for i in e["video_index"].numpy():
            frames[int(i)] = frames.get(int(i), 0) + 1
    assert frames == {
        i: ucf101.load_info(data).videos[v.name].num_frames for i, v in enumerate(videos)
    }


def _first(data, modality="rgb", **kw):
    return next(iter(up.test_clips(data, 1, modality, **kw)))["clips"].numpy()


def test_defect_test_red_mean_changes_red_by_exactly_five(data):
    base, red = _first(data), _first(data, caffe_red_mean=True)
    np.testing.assert_allclose(base[..., 0] - red[..., 0], 5.0, atol=1e-4)
    np.testing.assert_array_equal(base[..., 1:], red[..., 1:])
    cfg = build("table1/lrcn_fc6/rgb", "smoke", ["defect_test_red_mean=true"])
    assert cfg.test_protocol["caffe_red_mean"]
    # In Caffe's BGR order the red channel is the last one.
    bgr = np.asarray(up.to_channel_order(base, "bgr"))
    np.testing.assert_array_equal(bgr[..., 2], base[..., 0])


def test_defect_unsorted_frames_reorders_frames_only(data):
    kw = dict(clip_length=1, stride=1, per_video=True)
    base = next(iter(up.test_clips(data, 1, "rgb", **kw)))["clips"].numpy()
    shuffled = next(iter(up.test_clips(data, 1, "rgb", unsorted_frames=True, **kw)))
    shuffled = shuffled["clips"].numpy()
    assert not np.array_equal(base, shuffled)
    key = [x.tobytes() for x in base[:, 0, 0]]
    assert sorted(key) == sorted(x.tobytes() for x in shuffled[:, 0, 0])  # the same frames
    again = next(iter(up.test_clips(data, 1, "rgb", unsorted_frames=True, **kw)))
    np.testing.assert_array_equal(again["clips"].numpy(), shuffled)  # a fixed order


def test_defect_lrcn_flow_mirror_leaves_x_of_mirrored_crops(data):
    good = _first(data, "flow", crops="ten")
    bad = _first(data, "flow", crops="ten", flow_mirror="keep")
    np.testing.assert_array_equal(good[:5], bad[:5])
    np.testing.assert_array_equal(good[5:, ..., 1:], bad[5:, ..., 1:])
    # normalised (v - 128): correct mirrored x = (255 - x) - 128 = -(x - 128) - 1
    np.testing.assert_array_equal(bad[5:, ..., 0], -good[5:, ..., 0] - 1)
    cfg = build("table1/lrcn_fc6/flow", "paper", ["defect_test_lrcn_flow_mirror=true"])
    assert cfg.test_protocol["flow_mirror"] == "keep"
    sf = build("table1/single_frame/flow", "paper", ["defect_test_lrcn_flow_mirror=true"])
    assert sf.test_protocol["flow_mirror"] == "invert"  # not the single-frame test's


def test_defect_single_frame_flow_mirror_inverts_the_scripts_crops(data):
    kw = dict(clip_length=1, stride=1, crops="ten", per_video=True)
    good = next(iter(up.test_clips(data, 1, "flow", **kw)))["clips"].numpy()
    bad = next(iter(up.test_clips(data, 1, "flow", flow_mirror="script", **kw)))["clips"].numpy()
    assert good.shape[0] > 16
    for k in range(good.shape[0]):
        np.testing.assert_array_equal(good[k, 5:], bad[k, 5:])  # mirrors: right either way
        if k % 16 == 0:  # each 16-frame batch's first frame: only its mirrors inverted
            np.testing.assert_array_equal(good[k, :5], bad[k, :5])
        else:
            np.testing.assert_array_equal(bad[k, :5, ..., 0], -good[k, :5, ..., 0] - 1)
            np.testing.assert_array_equal(bad[k, :5, ..., 1:], good[k, :5, ..., 1:])
    with pytest.raises(ValueError, match="single-frame"):
        up.test_clips(data, 1, "flow", flow_mirror="script")
    cfg = build("table1/single_frame/flow", "paper", ["defect_test_single_frame_flow_mirror=1"])
    assert cfg.test_protocol["flow_mirror"] == "script"


# -- training defects, on what the model sees ---------------------------------------------------


def _model_input(data, name, sets=()):
    cfg = build(name, "smoke", ["train.batch_size=4", *sets])
    size = task.crop_size(cfg, data)
    batch = next(iter(task.train_dataset(cfg, data, size)))
    return cfg, np.asarray(task.model_input(cfg, batch, size)[0])


@pytest.mark.parametrize("order", ["rgb", "bgr"])
def test_defect_train_red_mean_changes_red_by_exactly_five(data, order):
    sets = [f"channel_order={order}", "input_scale=1"]
    cfg, base = _model_input(data, "table1/lrcn_fc6/rgb", sets)
    _, red = _model_input(data, "table1/lrcn_fc6/rgb", [*sets, "defect_train_red_mean=true"])
    r = 0 if order == "rgb" else 2
    np.testing.assert_allclose(base[..., r] - red[..., r], 5.0, atol=1e-4)
    others = [c for c in range(3) if c != r]
    np.testing.assert_array_equal(base[..., others], red[..., others])
    # The single-frame ImageData layer did not have it: no change there.
    _, sf = _model_input(data, "table1/single_frame/rgb", sets)
    _, sf_red = _model_input(data, "table1/single_frame/rgb", [*sets, "defect_train_red_mean=1"])
    np.testing.assert_array_equal(sf, sf_red)


def test_defect_train_crop_only_when_mirroring_squashes_unmirrored_clips(data):
    sets = ["train_mirror=true"]
    _, base = _model_input(data, "table1/lrcn_fc6/rgb", sets)
    _, squash = _model_input(
        data, "table1/lrcn_fc6/rgb", [*sets, "defect_train_crop_only_when_mirroring=true"]
    )
    same = [np.array_equal(a, b) for a, b in zip(base, squash)]
    assert any(same) and not all(same)  # mirrored clips cropped as before; the others squashed


def test_channel_order_bgr_reverses_the_channels(data):
    _, rgb = _model_input(data, "table1/lrcn_fc6/flow")
    _, bgr = _model_input(data, "table1/lrcn_fc6/flow", ["channel_order=bgr"])
    np.testing.assert_array_equal(bgr, rgb[..., ::-1])  # flow: x in channel 2, magnitude in 0


def test_defect_fields_not_concerning_a_row_leave_its_run_id():
    sf = build("table1/single_frame/rgb", "smoke")
    for d in ("defect_train_red_mean", "defect_test_lrcn_flow_mirror"):
        other = dataclasses.replace(sf, **{d: True})
        assert task._run_record(other) == task._run_record(sf)
    changed = dataclasses.replace(sf, defect_test_red_mean=True)
    assert task._run_record(changed) != task._run_record(sf)


def test_fusion_third_weight_is_the_configs(tmp_path):
    # RGB [1, 0], flow [b, 1 - b]: class 0 wins for an RGB weight above (1 - 2b) / (2 - 2b),
    # 0.3317 here: so 1/3 and 0.33 disagree.
    b = 0.25183
    rows = []
    for name, scores in (("rgb", [[1.0, 0.0]]), ("flow", [[b, 1 - b]])):
        folder = tmp_path / name
        folder.mkdir()
        ev.save_scores(folder / "scores.npz", ["v"], np.array([0]), np.array(scores))
        rows.append(task.ActivityResult(name, folder, {}, "single_frame", name, 1, 0.0))
    third = task.fuse_rows(*rows, tmp_path / "runs").values
    code = task.fuse_rows(*rows, tmp_path / "runs", fusion_third=0.33).values
    key = ("single_frame", "split1")
    assert third[(*key, "fusion_third")] == 100.0 and code[(*key, "fusion_third")] == 0.0
    assert third[(*key, "fusion_half")] == code[(*key, "fusion_half")]


def test_restval_is_kept_apart_and_outside_the_vocabulary(tmp_path):
    import cv2

    from lrcn_tf.data.captions import format as captions
    from lrcn_tf.data.captions import pipeline as captions_pipeline
    from lrcn_tf.data.captions import prepare as captions_prepare

    records = []
    for i, (split, caption) in enumerate(
        [("train", "a red ball")] * 5 + [("restval", "a blue cube")] * 5 + [("test", "a ball")]
    ):
        path = tmp_path / f"{i}.jpg"
        cv2.imwrite(str(path), np.full((8, 8, 3), 10 * i, np.uint8))
        records.append(captions.ImageRecord(i, path.name, path, split, (caption,)))
    out = captions_prepare.prepare(records, tmp_path / "out", "coco2014", {}, image_size=None)
    info = captions.load_info(out)
    assert info.splits == {"train": 5, "val": 0, "test": 1, "restval": 5}
    assert "blue" not in info.vocab.words and "red" in info.vocab.words
    assert len(captions.shard_files(out, ("train", "restval"))) == 2
    pairs = captions_pipeline.train_pairs(
        out, 10, 8, split=("train", "restval"), repeat=False, mirror=False
    )
    assert sum(int(x["image"].shape[0]) for x, _ in pairs) == 10
    merged = captions_prepare.prepare(
        records, tmp_path / "merged", "coco2014", {}, image_size=None, restval="train"
    )
    assert captions.load_info(merged).splits == {"train": 10, "val": 0, "test": 1}


def test_flickr8k_is_a_dataset_of_prepare_and_tables_2_3(tmp_path):
    import json
    import subprocess
    import sys

    import cv2

    from lrcn_tf.data.captions import format as captions

    images = tmp_path / "Flicker8k_Dataset"
    images.mkdir()
    entries = []
    for i, split in enumerate(["train"] * 6 + ["val", "test"]):
        cv2.imwrite(str(images / f"{i}.jpg"), np.full((20, 30, 3), 20 * i, np.uint8))
        sents = [{"raw": f"A dog number {i} runs.", "tokens": ["a", "dog"]}] * 5
        entries.append({"filename": f"{i}.jpg", "imgid": i, "split": split, "sentences": sents})
    karpathy = tmp_path / "dataset_flickr8k.json"
    karpathy.write_text(json.dumps({"dataset": "flickr8k", "images": entries}))
    out = tmp_path / "flickr8k"
    cmd = [
        sys.executable,
        "-m",
        "lrcn_tf.prepare",
        "--dataset=flickr8k",
        f"--out={out}",
        f"--karpathy_json={karpathy}",
        f"--images={images}",
        "--image_size=16",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # Not Karpathy's 6000/1000/1000: said, not fatal.
    assert "train 6, val 1, test 1; Karpathy's flickr8k file has train 6000" in done.stdout
    info = captions.load_info(out)
    assert info.dataset == "flickr8k" and info.splits == {"train": 6, "val": 1, "test": 1}
    records = captions.load_karpathy(karpathy, images)
    full = [
        dataclasses.replace(r, split=s)
        for r, s in zip(records * 1000, ["train"] * 6000 + ["val"] * 1000 + ["test"] * 1000)
    ]
    assert captions.split_size_note("flickr8k", full) is None
    for table in ("table2", "table3"):
        helpful = subprocess.run(
            [sys.executable, "-m", f"reproduce.{table}", "--helpfull"],
            capture_output=True,
            text=True,
        )
        assert "flickr8k" in helpful.stdout


# -- the embedded "ImageNet" stage --------------------------------------------------------------


def test_stills_are_deterministic_and_labelled():
    from lrcn_tf.data.ucf101 import synthetic

    x, y = synthetic.render_stills(40, seed=3)
    x2, y2 = synthetic.render_stills(40, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (40, 56, 56, 3) and x.dtype == np.uint8
    for i, k in enumerate(synthetic.STILL_HEADS.values()):
        assert 0 <= y[:, i].min() and y[:, i].max() < k
    assert len(set(y[:, 1])) > 4  # positions all over the grid
    assert not np.array_equal(synthetic.render_stills(40, seed=4)[0], x)


def test_pretext_stage_initialises_the_rgb_single_frame_cnn(data, tmp_path):
    sets = [
        "pretext_images=64",
        "pretext_train.max_iter=3",
        "pretext_train.stepsize=2",
        "pretext_train.checkpoint_every=3",
        "pretext_train.batch_size=16",
    ]
    cfg = build("table1/single_frame/rgb", "smoke", sets)
    assert cfg.pretext and not build("table1/single_frame/flow", "smoke").pretext
    weights = task.pretrain(cfg, data, tmp_path)
    assert task.pretrain(cfg, data, tmp_path) == weights  # found again, not retrained
    source = task.pretext_model(cfg, 56)
    source.load_weights(str(weights))
    model, _ = task.train(
        dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_iter=1)),
        data,
        tmp_path / "ckpt",
        pretext_weights=weights,
    )
    del model  # trained one step: compare a layer the step cannot have reached exactly
    fresh = task.build_model(cfg, 2, 56)
    from lrcn_tf.training import trainer

    copied = trainer.copy_weights_by_name(source, fresh)
    assert {"conv1", "conv2", "fc6", "fc7"} <= set(copied)
    np.testing.assert_array_equal(
        fresh.get_layer("cnn").layer.get_layer("conv1").get_weights()[0],
        source.get_layer("small_cnn").get_layer("conv1").get_weights()[0],
    )
