"""reproduce.table1 --weights caffe: the authors' released models evaluated, end to end, on the
width-reduced caffemodels made in real Caffe (tests/fixtures/caffe) over a tiny prepared
synthetic_ucf101 upscaled to 240x320 (so that the 227 crops of the original protocol fit)."""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "caffe"
# The fixtures' nets have 11 classes (manifest.json widths): the dataset gets 11 too.
FILES = {
    "single_frame_all_layers_hyb_RGB_iter_5000": "single_frame",
    "single_frame_all_layers_hyb_flow_iter_50000": "single_frame",
    "RGB_lstm_model_iter_30000": "lrcn",
    "flow_lstm_model_iter_50000": "lrcn",
}


@pytest.fixture(scope="module")
def upscaled(tmp_path_factory):
    """A tiny UCF-101-format release with 11 classes (the generator makes an even number:
    12, then the last class is taken out of the lists), prepared at 240x320."""
    from lrcn_tf.data.ucf101 import prepare, synthetic

    root = tmp_path_factory.mktemp("ucf")
    spec = synthetic.SyntheticSpec(
        num_classes=12, num_groups=8, clips_per_group=(1, 1), frames=(16, 18)
    )
    src, splits = synthetic.generate(root / "raw", spec, progress=False)
    lines = (splits / "classInd.txt").read_text().splitlines()
    dropped = lines[-1].split()[1]
    (splits / "classInd.txt").write_text("".join(x + "\r\n" for x in lines[:-1]))
    for lst in splits.glob("*list0*.txt"):
        kept = [x for x in lst.read_text().splitlines() if not x.startswith(dropped + "/")]
        lst.write_text("".join(x + "\r\n" for x in kept))
    for name in ("trainlist03.txt", "testlist03.txt"):  # 8 groups: split 3 has no test videos
        (splits / name).unlink()
    out = root / "prepared"
    summary = prepare.prepare(src, splits, out, min_size=(240, 320), workers=1, progress=False)
    assert not summary["failed"], summary["text"]
    return out


def _run(*args):
    cmd = [sys.executable, "-m", "reproduce.table1", "--nocompare", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_missing_files_are_named(tmp_path):
    done = _run("--weights=caffe", f"--weights_dir={tmp_path}", f"--workdir={tmp_path}/runs")
    assert done.returncode != 0
    assert "single_frame_all_layers_hyb_RGB_iter_5000.caffemodel is missing" in done.stderr
    assert "Traceback" not in done.stderr
    done = _run("--weights=caffe", "--split=2", f"--weights_dir={tmp_path}")
    assert done.returncode != 0 and "split-1 models only" in done.stderr


@pytest.mark.slow
def test_released_models_are_evaluated_end_to_end(upscaled, tmp_path):
    weights = tmp_path / "released"
    weights.mkdir()
    for name, fixture in FILES.items():
        shutil.copy(FIXTURES / f"{fixture}.caffemodel", weights / f"{name}.caffemodel")
    out = tmp_path / "table1_caffe.csv"
    args = [
        "--weights=caffe",
        f"--weights_dir={weights}",
        "--dataset=ucf101",
        f"--data_dir={upscaled}",
        f"--workdir={tmp_path}/runs",
        f"--output={out}",
    ]
    done = _run(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader(out.open()))
    got = {(r["row"], r["metric"]) for r in rows}
    assert got == {
        (m, k)
        for m in ("single_frame", "lrcn_fc6")
        for k in ("rgb", "flow", "fusion_half", "fusion_third")
    }
    assert {r["weights"] for r in rows} == {"caffe"} and {r["setting"] for r in rows} == {"split1"}
    for r in rows:
        assert 0 <= float(r["value"]) <= 100
    runs = tmp_path / "runs"
    conversions = sorted(runs.glob("caffe-*/converted.weights.h5"))
    assert len(conversions) == 4
    records = [p.read_text() for p in runs.glob("table1-*/config.json")]
    assert sum('"weights": "caffe"' in r for r in records) == 4
    stamps = [p.stat().st_mtime_ns for p in conversions]
    again = _run(*args)  # converted once: found again, not redone
    assert again.returncode == 0, again.stderr[-2000:]
    assert [p.stat().st_mtime_ns for p in conversions] == stamps
    # A caffemodel of the wrong kind is named.
    shutil.copy(
        FIXTURES / "single_frame.caffemodel", weights / "RGB_lstm_model_iter_30000.caffemodel"
    )
    bad = _run(*args[:-2], f"--workdir={tmp_path}/runs2", f"--output={tmp_path}/x.csv")
    assert bad.returncode != 0 and "RGB_lstm_model_iter_30000.caffemodel" in bad.stderr
    assert "Traceback" not in bad.stderr
