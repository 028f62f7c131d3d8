"""TACoS multilevel: description levels, fps and frame ranges, unknown fields, the converter."""

import json
import subprocess
import sys

import pytest

from lrcn_tf.data.tacos import convert
from lrcn_tf.data.tacos import format as tacos
from lrcn_tf.data.tacos import prepare as tacos_prepare
from tests.test_tacos_format import HEADER, LABELS, _segment


def _write(tmp_path, *lines):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def test_level_fps_and_frames_are_read():
    corpus = tacos.parse_lines(
        [HEADER, _segment(level="short", fps=29.4, frames=[120, 388]), _segment(video="b")]
    )
    a, b = corpus.segments
    assert (a.level, a.fps, a.frames) == ("short", 29.4, (120, 388))
    assert (b.level, b.fps, b.frames) == ("detailed", None, None)


@pytest.mark.parametrize(
    "line, match",
    [
        (_segment(level="long"), "'level' 'long' is not one of"),
        (_segment(fps=0), "'fps' must be a positive number"),
        (_segment(frames=[5, 1]), "'frames' must be"),
        (_segment(frames=[1.5, 3]), "'frames' must be"),
        (_segment(levle="short"), r"unknown field 'levle' \(did you mean 'level'\?\)"),
    ],
)
def test_bad_new_fields_are_named(line, match):
    with pytest.raises(tacos.TACoSFormatError, match=match):
        tacos.parse_lines([HEADER, line])


def test_unknown_harmless_fields_are_counted_not_fatal():
    header = json.loads(HEADER) | {"source": "a converter"}
    corpus = tacos.parse_lines(
        [json.dumps(header), _segment(annotator=7), _segment(video="b", annotator=3, camera=2)]
    )
    assert len(corpus.segments) == 2
    assert corpus.ignored == {"source": 1, "annotator": 2, "camera": 1}


def test_prepare_keeps_the_levels_asked_for_and_reports_ignored_fields(tmp_path):
    src = _write(
        tmp_path,
        _segment(level="detailed", annotator=1),
        _segment(video="b", level="short"),
        _segment(video="c", level="single_sentence", split="test"),
    )
    m = tacos_prepare.prepare(src, tmp_path / "out")
    assert m["counts"] == {"train": {"segments": 1, "sentences": 1}}
    assert m["segments_per_level"] == {"detailed": 1, "short": 1, "single_sentence": 1}
    assert m["ignored_fields"] == {"annotator": 1}
    m = tacos_prepare.prepare(src, tmp_path / "out2", levels=("short", "single_sentence"))
    assert m["levels"] == ["short", "single_sentence"]
    assert m["counts"]["train"]["segments"] == 1 and m["counts"]["test"]["segments"] == 1
    only = _write(tmp_path, _segment(level="short"))
    with pytest.raises(tacos.TACoSFormatError, match=r"no segment at level\(s\) \['detailed'\]"):
        tacos_prepare.prepare(only, tmp_path / "out3")


def test_converter_from_annotation_tables(tmp_path):
    (tmp_path / "detailed.tsv").write_text(
        "Video\tStart Frame\tEnd Frame\tSentence\tAnnotator\n"
        "s13-d21\t120\t388\tThe person takes out a cutting board.\t4\n"
        "s13-d21\t120\t388\tHe gets a board from the drawer.\t5\n"
        "s14-d22\t10\t90\tThe person peels a carrot.\t4\n"
        "s99-d99\t1\t9\tNo split for this one.\t4\n"
    )
    (tmp_path / "short.csv").write_text(
        "video_id,start_frame,end_frame,level,fps,description\n"
        "s13-d21,0,999,short,29.4,A person prepares a carrot.\n"
    )
    crf = json.loads(_segment())["crf"]
    (tmp_path / "crf.jsonl").write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"format": "tacos_crf", "labels": LABELS},
                {"video": "s13-d21", "start": 120, "end": 388, "crf": crf},
                {"video": "s13-d21", "start": 0, "end": 999, "crf": crf},
            ]
        )
    )
    (tmp_path / "splits.txt").write_text("s13-d21 train\ns14-d22 test\n")
    out = tmp_path / "tacos.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "lrcn_tf.data.tacos.convert",
        "--annotations",
        str(tmp_path / "detailed.tsv"),
        "--level",
        "detailed",
        "--annotations",
        str(tmp_path / "short.csv"),
        "--crf",
        str(tmp_path / "crf.jsonl"),
        "--splits",
        str(tmp_path / "splits.txt"),
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "columns skipped: annotator" in done.stdout
    assert "1 without CRF outputs, 1 of videos without a split" in done.stdout
    corpus = tacos.read_jsonl(out)
    by_level = {s.level: s for s in corpus.segments}
    assert set(by_level) == {"detailed", "short"}
    assert by_level["detailed"].sentences == (
        "The person takes out a cutting board.",
        "He gets a board from the drawer.",
    )
    assert by_level["detailed"].frames == (120, 388) and by_level["short"].fps == 29.4
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 2 and "exists; not overwriting" in again.stderr


def test_converter_names_a_missing_column(tmp_path):
    (tmp_path / "a.tsv").write_text("video\tsentence\nx\ty\n")
    with pytest.raises(tacos.TACoSFormatError, match=r"a.tsv:1: no column for start, end"):
        convert.read_annotations(tmp_path / "a.tsv", "detailed")
