import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lrcn_tf.configs import ConfigError, build, names
from lrcn_tf.evaluation import nearest_neighbour as nn


def test_variants_are_registered_and_paper_preset_is_the_recipe():
    assert {
        "table3/lrcn",
        "table3/lrcn_1u",
        "table3/lrcn_2u",
        "table3/lrcn_2f",
        "table3/lrcn_4f",
    } <= set(names("table3/"))
    cfg = build("table3/lrcn", "paper")
    assert (cfg.variant, cfg.num_layers, cfg.factored) == ("2f", 2, True)
    assert (cfg.embed_dim, cfg.hidden, cfg.init_scale, cfg.loss_weight, cfg.max_words) == (
        1000,
        1000,
        0.08,
        20.0,
        20,
    )
    assert (
        cfg.encoder.backbone == "caffenet"
        and cfg.encoder.classes == 1000
        and cfg.encoder.crop_size == 227
    )
    assert cfg.encoder.resize == 256 and cfg.mirror and cfg.beam_size == 1 and cfg.max_length == 50
    s1, s2 = cfg.stage1, cfg.stage2
    assert (s1.base_lr, s1.stepsize, s1.max_iter, s1.clip_gradients) == (0.01, 20000, 110000, 10.0)
    assert (s2.base_lr, s2.stepsize, s2.max_iter, s2.clip_gradients) == (0.001, 20000, 50000, 25.0)
    for s in (s1, s2):
        assert (s.momentum, s.weight_decay, s.gamma, s.batch_size, s.seed) == (
            0.9,
            0.0,
            0.5,
            100,
            1701,
        )
    assert cfg.cnn_lr_mult == (0.1, 0.2)
    assert build("table3/lrcn_4f", "paper").num_layers == 4
    assert build("table3/lrcn_1u", "smoke").factored is False


@pytest.mark.parametrize(
    "override, match",
    [
        (["num_layers=3"], "variant"),
        (["factored=false"], "variant"),
        (["encoder.backbone=lenet"], "encoder.backbone"),
        (["encoder.conv_filters=8,16"], "conv_filters"),
        (["encoder.resize=100"], "smaller than crop_size"),
        (["nn_distance=manhattan"], "nn_distance"),
        (["beam_size=0"], "beam_size"),
    ],
)
def test_invalid_combinations_fail_at_build(override, match):
    with pytest.raises(ConfigError, match=match):
        build("table3/lrcn", "paper", override)


def test_nearest_neighbours_by_distance():
    db = np.array([[1.0, 0.0], [10.0, 10.0], [0.0, 2.0]])
    q = np.array([[9.0, 9.5], [0.1, 3.0], [3.0, 0.2]])
    assert list(nn.nearest_neighbours(q, db, "euclidean")) == [1, 2, 0]
    # cosine ignores length: (3, 3) points along (10, 10); (1, 0.01) along (1, 0)
    assert list(nn.nearest_neighbours(np.array([[3.0, 3.0], [1.0, 0.01]]), db, "cosine")) == [1, 0]
    assert list(
        nn.nearest_neighbours(
            np.array([[5.0, 5.0]]), np.array([[4.0, 4.0], [6.0, 6.0]]), "euclidean"
        )
    ) == [0]
    with pytest.raises(ValueError, match="distance"):
        nn.nearest_neighbours(q, db, "l1")


def test_nn_predictions_cycle_through_each_neighbours_captions():
    train = {10: ["a", "b", "c"], 11: ["x", "y"]}
    preds = nn.nn_predictions([1, 2], [10, 11], train)
    assert preds == [{1: "a", 2: "x"}, {1: "b", 2: "y"}, {1: "c", 2: "x"}]


def test_nn_baseline_averages_bleu_over_the_neighbours_captions():
    from lrcn_tf.evaluation.captioning import score_captions

    train = {
        10: ["a red circle on the left", "two blue squares"],
        11: ["a green cross", "a big green cross"],
    }
    refs = {
        1: ["a red circle on the left side", "a small red circle"],
        2: ["a green cross on the right"],
    }
    scores, neighbours = nn.nn_baseline(
        [1, 2],
        np.array([[1.0, 0.1], [0.0, 1.0]]),
        [10, 11],
        np.array([[1.0, 0.0], [0.1, 1.0]]),
        train,
        refs,
    )
    assert neighbours == {1: 10, 2: 11}
    per = [score_captions(refs, {1: train[10][j], 2: train[11][j]}) for j in range(2)]
    for k in ("bleu1", "bleu4"):
        assert scores[k] == pytest.approx((per[0][k] + per[1][k]) / 2)


def test_samples_page_embeds_images_and_escapes_text(tmp_path):
    from lrcn_tf.evaluation.caption_samples import write_samples_html

    page = write_samples_html(
        tmp_path / "s.html",
        "t",
        [5],
        {5: b"\xff\xd8jpeg"},
        {"LRCN": {5: "a <b> cat"}},
        {5: ["ref & one"]},
        "note",
    )
    text = page.read_text()
    assert (
        "data:image/jpeg;base64,/9hqcGVn" in text
        and "a &lt;b&gt; cat" in text
        and "ref &amp; one" in text
    )


@pytest.mark.slow
def test_table3_smoke_end_to_end(tmp_path):
    """The CI regression command on a fresh data folder: rows, sample page, results file."""
    env = dict(os.environ, LRCN_DATA_DIR=str(tmp_path / "data"))
    out = tmp_path / "table3.csv"
    cmd = [
        sys.executable,
        "-m",
        "reproduce.table3",
        "--preset=smoke",
        f"--workdir={tmp_path / 'runs'}",
        f"--output={out}",
        "--nocompare",
    ]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    rows = list(csv.DictReader(out.open()))
    got = {(r["row"], r["metric"]) for r in rows}
    for row in ("lrcn", "nn_fc7", "nn_fc8"):
        assert {(row, f"bleu{n}") for n in range(1, 5)} <= got
    assert all(r["dataset"] == "synthetic_flickr30k" and r["setting"] == "test" for r in rows)
    page = tmp_path / "table3_samples_synthetic_flickr30k.html"
    assert page.read_text().count("<img") == 24
    preds = list((tmp_path / "runs").glob("table3-*/decode-*/predictions_test.json"))
    assert len(preds) == 1 and len(json.loads(preds[0].read_text())) == 100
