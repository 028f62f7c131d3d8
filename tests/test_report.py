import json
import re
import subprocess
import sys

import numpy as np
import pytest

from lrcn_tf.report import write_report
from lrcn_tf.report.claims_view import verdicts
from lrcn_tf.report.runs import load_run, read_scalars, weights_source

HEADER = "table,row,setting,metric,dataset,value,run_id,preset\n"
T1 = {"single_frame": (20.0, 50.0, 52.0, 53.0), "lrcn_fc6": (23.0, 65.0, 60.0, 67.0)}


def _table1_csv(path, run_ids=None):
    lines = [HEADER]
    for model, values in T1.items():
        for metric, v in zip(("rgb", "flow", "fusion_half", "fusion_third"), values):
            for split, dv in (("split1", 0.0), ("split2", 1.0), ("split3", -1.0)):
                rid = (run_ids or {}).get((model, split, metric), f"{model}-{split}-{metric}")
                lines.append(
                    f"table1,{model},{split},{metric},synthetic_ucf101,{v + dv},{rid},default\n"
                )
            lines.append(f"table1,{model},all_splits,{metric},synthetic_ucf101,{v},x+y+z,default\n")
    path.write_text("".join(lines))
    return path


def _table5_csv(path):
    path.write_text(
        HEADER
        + "table5,lstm_dec_crf_max,test,bleu4,synthetic_tacos,20.0,r1,smoke\n"
        + "table5,lstm_dec_crf_prob,test,bleu4,synthetic_tacos,25.0,r2,smoke\n"
    )
    return path


def _write(tmp_path, produced, workdir=None):
    return write_report(
        produced,
        "results/expected.csv",
        html_path=tmp_path / "out" / "index.html",
        markdown_path=tmp_path / "out" / "REPORT.md",
        workdir=workdir or tmp_path / "no_runs",
    )


def test_page_shows_the_papers_layout_with_the_paper_beside_each_cell(tmp_path):
    page, md = _write(
        tmp_path, [_table1_csv(tmp_path / "table1.csv"), _table5_csv(tmp_path / "table5.csv")]
    )
    text = page.read_text()
    # Table 1 in the paper's shape: split-1 then the mean of 3; rows in the paper's order.
    main = text[text.index("Table 1") : text.index("Settings the paper does not print")]
    assert main.index("split-1") < main.index("mean of the 3 splits")
    assert main.index(">Single frame<") < main.index(">LRCN-fc6<") < main.index("LRCN-fc7")
    # Ours 20.00 with the paper's 69.00 (single frame, split 1, RGB) and the difference -49.00.
    cell = re.search(
        r'<span class="ours">20.00</span><span class="paper"[^>]*>69.00</span>'
        r'<span class="diff" style="background:rgba\(215,50,40',
        text,
    )
    assert cell, "ours, the paper and a red difference in one cell"
    assert "-49.00" in text
    # LRCN-fc7 is a row only the paper has here: shown greyed, for context.
    assert 'class="paperrow"><th>LRCN-fc7 <i>(paper)</i>' in text
    # Every synthetic table carries the banner; captions name the dataset and the preset.
    assert text.count('<p class="banner">synthetic_') == 2
    assert "ours on synthetic_ucf101, preset default" in text
    assert "ours on synthetic_tacos, preset smoke" in text
    # Self-contained: every image inline, nothing fetched.
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in text and "<script" not in text
    # Table 4 has no rows of ours: the paper's table is shown with why.
    assert "Table 4" in text and "ranking kit" in text
    # Claims per dataset and preset.
    assert re.search(
        r"<td>synthetic_tacos</td><td>smoke</td><td><code>t5_prob_beats_max</code>"
        r".*?<td class=\"HOLDS\">HOLDS</td>",
        text,
    )
    # The Markdown version links the same figures, written beside it.
    md_text = md.read_text()
    assert "| Single frame | **20.00** (69.00, 🔴 -49.00)" in md_text
    figures = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md_text)
    assert figures and all((md.parent / f).stat().st_size > 5000 for f in figures)
    assert "training curves of" in md_text  # says what is missing without run folders


def _event_file(folder, points, tf):
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        for step, loss, lr in points:
            tf.summary.scalar("loss", loss, step=step)
            tf.summary.scalar("learning_rate", lr, step=step)
    writer.flush()
    writer.close()


def test_tensorboard_scalars_are_read_back_and_a_resume_overrides_its_steps(tmp_path):
    tf = pytest.importorskip("tensorflow")
    _event_file(tmp_path, [(10, 2.0, 0.01), (20, 1.5, 0.01)], tf)
    _event_file(tmp_path, [(20, 1.4, 0.01), (30, 1.0, 0.001)], tf)  # resumed at step 10
    torn = sorted(tmp_path.glob("events.*"))[-1]
    torn.write_bytes(torn.read_bytes() + b"\x40\x00\x00")  # a write cut short
    s = read_scalars(tmp_path)
    assert s["loss"][0].tolist() == [10, 20, 30]
    np.testing.assert_allclose(s["loss"][1], [2.0, 1.4, 1.0])
    np.testing.assert_allclose(s["learning_rate"][1], [0.01, 0.01, 0.001])
    assert read_scalars(tmp_path / "absent") == {}


def _run_folder(workdir, run_id, config, scores=None, curve=None, tf=None):
    d = workdir / run_id
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(config))
    (d / "versions.json").write_text(json.dumps({"tensorflow": "2.21.0", "numpy": "2.4.6"}))
    (d / "commit.txt").write_text("0123456789abcdef0123\n")
    if scores is not None:
        labels, s = scores
        np.savez(
            d / "scores.npz",
            videos=np.array([f"v{i}" for i in range(len(labels))]),
            labels=labels,
            scores=s.astype(np.float32),
        )
    if curve is not None:
        _event_file(d / "ckpt" / "tensorboard", curve, tf)
    return d


def test_run_folders_add_curves_per_class_accuracy_and_provenance(tmp_path):
    tf = pytest.importorskip("tensorflow")
    workdir = tmp_path / "runs"
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 5)
    ids = {}
    for model in T1:
        for split in ("split1", "split2", "split3"):
            for metric in ("rgb", "flow"):
                rid = f"table1-{model}-{split}-{metric}"
                ids[(model, split, metric)] = rid
                noisy = np.eye(4)[labels] * (2 if model == "lrcn_fc6" else 0.5) + rng.random(
                    (20, 4)
                )
                config = {
                    "row": f"{model}/{metric}/{split}",
                    "config": {"backbone_weights": None},
                    "init_from": "table1-sf" if model != "single_frame" else None,
                }
                _run_folder(
                    workdir,
                    rid,
                    config,
                    (labels, noisy),
                    [(1, 2.0, 0.01), (5, 1.0, 0.01)] if split == "split1" else None,
                    tf,
                )
    page, md = _write(tmp_path, [_table1_csv(tmp_path / "table1.csv", ids)], workdir)
    text = page.read_text()
    assert "Which classes does LRCN help?" in text
    assert "Training curves" in text
    assert (md.parent / "figures" / "table1-synthetic_ucf101-default_per_class.png").exists()
    assert (md.parent / "figures" / "table1-synthetic_ucf101-default_training.png").exists()
    # Provenance: the run folder (linked), what it made, its weights, commit and versions.
    assert 'href="../runs/table1-lrcn_fc6-split1-rgb/"' in text
    assert "trained here; CNN copied from table1-sf" in text
    assert "<code>0123456789ab</code>" in text and "tensorflow 2.21.0" in text
    # split2/3 runs have no TensorBoard log here: the page says so.
    assert "training curves of 8 run(s)" in text


def test_weights_source_names_converted_weights_and_pretext_encoders(tmp_path):
    def folder(run_id, config):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "config.json").write_text(json.dumps(config))
        return load_run(tmp_path, run_id)

    caffe = folder("a", {"config": {"backbone_weights": "/w/caffenet_hybrid.npz"}})
    assert "caffenet_hybrid.npz" in weights_source(caffe)
    pretext = folder("b", {"config": {"encoder": {"pretext": True, "weights": None}}})
    assert "pretext" in weights_source(pretext)
    assert "not here" in weights_source(load_run(tmp_path, "absent"))


def test_claims_over_several_seeds_count_the_seeds_they_hold_in():
    def rows(seed, prob):
        return [
            {
                "table": "table5",
                "row": r,
                "setting": "test",
                "metric": "bleu4",
                "value": v,
                "dataset": "synthetic_tacos",
                "preset": "default",
                "seed": seed,
            }
            for r, v in (("lstm_dec_crf_max", 20.0), ("lstm_dec_crf_prob", prob))
        ]

    out = {v["claim"]: v for v in verdicts(rows("1", 25.0) + rows("2", 15.0) + rows("3", 21.0))}
    assert out["t5_prob_beats_max"]["verdict"] == "2 of 3 seeds"
    mean, lo, hi = out["t5_prob_beats_max"]["interval"]  # margins 5, -5, 1
    assert mean == pytest.approx(1 / 3) and lo < -5 < 5 < hi
    assert "seed 2: bleu4 lstm_dec_crf_prob 15.00" in out["t5_prob_beats_max"]["why"]
    assert out["t5_decoder_beats_encoder_decoder"]["verdict"] == "N/A"


def test_cli_names_a_bad_csv_and_writes_nothing(tmp_path):
    bad = tmp_path / "table1.csv"
    bad.write_text(HEADER + "table1,single_frame,split1,rgb,synthetic_ucf101,abc,r,default\n")
    cmd = [
        sys.executable,
        "-m",
        "reproduce.report",
        f"--produced={bad}",
        f"--html={tmp_path / 'i.html'}",
        f"--markdown={tmp_path / 'R.md'}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"error: {bad}:2: value 'abc' is not a number" in proc.stderr
    assert not (tmp_path / "i.html").exists()


def test_table1_strip_shows_test_videos_frames_and_flow_with_their_classes(tmp_path):
    from lrcn_tf.data.embedded import ensure_ucf101
    from lrcn_tf.data.ucf101 import format as ucf101
    from lrcn_tf.report import samples
    from lrcn_tf.report.tables import build_groups

    data = ensure_ucf101(
        tmp_path / "syn", num_classes=2, num_groups=25, clips_per_group=1, workers=1, progress=False
    )
    test = ucf101.split_videos(data, 1, "test")
    labels = np.array([v.label for v in test])
    wrong = np.eye(2)[1 - labels]
    wrong[::2] = np.eye(2)[labels[::2]]  # every other video right
    workdir = tmp_path / "runs"
    for metric in ("rgb", "flow"):
        d = _run_folder(workdir, f"sf-{metric}", {"data_dir": str(data)}, (labels, wrong))
        np.savez(
            d / "scores.npz",
            videos=np.array([v.name for v in test]),
            labels=labels,
            scores=wrong.astype(np.float32),
        )
    rows = [
        {
            "table": "table1",
            "row": "single_frame",
            "setting": "split1",
            "metric": m,
            "dataset": "synthetic_ucf101",
            "value": 50.0,
            "run_id": f"sf-{m}",
            "preset": "smoke",
        }
        for m in ("rgb", "flow")
    ]
    (g,) = build_groups(rows, [])
    strip, modalities = samples.table1_strip(g, workdir, "single_frame", "rgb")
    assert modalities == ["rgb", "flow"] and len(strip) == 4
    label, images = strip[0]
    assert len(images) == 8 and images[0].ndim == 3 and images[0].shape[2] == 3
    classes = ucf101.load_info(data).classes
    assert "(right)" in strip[0][0] and "(WRONG)" in strip[-1][0]
    assert f"true: {classes[labels[0]]}" in label


def test_every_claims_reason_gives_its_margin():
    """claims_view reads each claim's margin from its reason: every claim must keep the format."""
    from lrcn_tf.evaluation import claims
    from lrcn_tf.report.claims_view import margin
    from lrcn_tf.results import read_rows

    paper = [
        r for r in read_rows("results/expected.csv", ["value"]) if r["source"].startswith("paper")
    ]
    for ds, values in claims.values_by_dataset(paper).items():
        for claim_id, _, verdict, why in claims.evaluate(values):
            if verdict == claims.NA:
                continue
            m = margin(why)
            assert m is not None, (claim_id, why)
            assert (m >= 0) == (verdict == claims.HOLDS), (ds, claim_id, why)


def test_a_broken_run_folder_costs_its_plots_not_the_report(tmp_path, capsys):
    workdir = tmp_path / "runs"
    d = workdir / "single_frame-split1-rgb"
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    (d / "scores.npz").write_text("not a score file")
    page, _ = _write(tmp_path, [_table1_csv(tmp_path / "table1.csv")], workdir)
    text = page.read_text()
    assert "plots and samples could not be drawn: ValueError" in text
    assert '<table class="results">' in text and '<section id="claims">' in text
    assert "warning: Table 1" in capsys.readouterr().err


def test_claims_over_seeds_from_reproduce_claims_are_shown(tmp_path):
    (tmp_path / "claims_seeds.csv").write_text(
        "dataset,preset,claim,statement,verdict,seeds,seeds_held,margin_mean,margin_low,"
        "margin_high,comparisons\n"
        "synthetic_tacos,default,t5_prob_beats_max,prob > max,2 of 3 seeds,3,2,0.3333,-12.1,"
        "12.8,x\n"
    )
    page, md = _write(tmp_path, [_table5_csv(tmp_path / "table5.csv")])
    text = page.read_text()
    assert "Over seeds (claims_seeds.csv" in text
    assert (
        '<td class="MIXED">2 of 3 seeds</td><td>2 of 3</td><td>+0.33 [-12.10, +12.80]</td>' in text
    )
    assert (
        "| `t5_prob_beats_max` | **2 of 3 seeds** | 2 of 3 | +0.33 [-12.10, +12.80] |"
        in md.read_text()
    )
