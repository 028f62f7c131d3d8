"""UCF-101 release format: classInd.txt and split lists (label order, spelling, CRLF, errors)."""

import pytest

from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.data.ucf101 import synthetic as syn

# The real release's traps, verbatim: case-insensitive class order and the file spelling of
# HandstandPushups.
CLASS_IND = "1 ApplyEyeMakeup\r\n2 Hammering\r\n3 HammerThrow\r\n4 HandstandPushups\r\n"
TRAIN = (
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
    "Hammering/v_Hammering_g08_c01.avi 2\r\n"
    "HammerThrow/v_HammerThrow_g08_c01.avi 3\r\n"
    "HandstandPushups/v_HandStandPushups_g08_c01.avi 4\r\n"
)
TEST = "Hammering/v_Hammering_g01_c01.avi\r\nHandstandPushups/v_HandStandPushups_g01_c02.avi\r\n"


def _write(d, **files):
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_bytes(text.encode())
    return d


def test_labels_come_from_class_ind_not_from_sorted_names(tmp_path):
    d = _write(
        tmp_path / "s",
        **{"classInd.txt": CLASS_IND, "trainlist01.txt": TRAIN, "testlist01.txt": TEST},
    )
    classes, splits = ucf101.read_splits(d)
    assert classes == ["ApplyEyeMakeup", "Hammering", "HammerThrow", "HandstandPushups"]
    assert sorted(classes) != classes  # a naive sort of folder names would swap 1 and 2
    train = {v.name: v.label for v in splits[1]["train"]}
    assert train["Hammering/v_Hammering_g08_c01.avi"] == 1
    assert train["HammerThrow/v_HammerThrow_g08_c01.avi"] == 2
    # Test lines carry no label: it comes from the folder, matched case-insensitively, even
    # though the file itself spells the class HandStandPushups.
    test = {v.name: v.label for v in splits[1]["test"]}
    assert test == {
        "Hammering/v_Hammering_g01_c01.avi": 1,
        "HandstandPushups/v_HandStandPushups_g01_c02.avi": 3,
    }
    assert sorted(splits) == [1]


def test_lf_line_ends_and_blank_lines_are_accepted(tmp_path):
    d = _write(
        tmp_path / "s",
        **{
            "classInd.txt": CLASS_IND.replace("\r\n", "\n") + "\n",
            "trainlist01.txt": TRAIN,
            "testlist01.txt": TEST,
        },
    )
    assert len(ucf101.read_splits(d)[0]) == 4


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("classInd.txt", "1 A\r\n3 B\r\n", r"classInd.txt:2: label 3 out of order"),
        ("classInd.txt", "1 A\r\nB\r\n", r"classInd.txt:2: expected"),
        (
            "trainlist01.txt",
            "Hammering/v_Hammering_g08_c01.avi 3\r\n",
            r"trainlist01.txt:1: label 3 disagrees",
        ),
        (
            "trainlist01.txt",
            "Boxing/v_Boxing_g08_c01.avi 1\r\n",
            r"trainlist01.txt:1: class 'Boxing'",
        ),
        ("testlist01.txt", "v_Hammering_g01_c01.avi\r\n", r"testlist01.txt:1: expected"),
        ("testlist01.txt", TEST + TEST, r"testlist01.txt:3: .* listed twice"),
    ],
)
def test_malformed_lists_name_file_and_line(tmp_path, name, text, message):
    files = {
        "classInd.txt": CLASS_IND,
        "trainlist01.txt": TRAIN,
        "testlist01.txt": TEST,
        name: text,
    }
    with pytest.raises(ucf101.UCF101FormatError, match=message):
        ucf101.read_splits(_write(tmp_path / "s", **files))


def test_missing_class_ind_or_half_a_split_is_named(tmp_path):
    with pytest.raises(ucf101.UCF101FormatError, match="classInd.txt: missing"):
        ucf101.read_splits(_write(tmp_path / "a", **{"trainlist01.txt": TRAIN}))
    d = _write(tmp_path / "b", **{"classInd.txt": CLASS_IND, "trainlist01.txt": TRAIN})
    with pytest.raises(ucf101.UCF101FormatError, match="testlist01.txt: missing"):
        ucf101.read_splits(d)


def test_video_group():
    assert ucf101.video_group("HandstandPushups/v_HandStandPushups_g07_c03.avi") == "g07"
    assert ucf101.video_group("x/my_clip.avi") == "other"


def test_synthetic_lists_follow_the_release_format(tmp_path):
    spec = syn.SyntheticSpec(num_classes=4, num_groups=25, clips_per_group=(1, 2))
    syn.write_split_lists(spec, tmp_path)
    raw = (tmp_path / "trainlist01.txt").read_bytes()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    classes, splits = ucf101.read_splits(tmp_path)
    assert classes == sorted(spec.classes, key=str.lower)
    assert classes.index("Slowing") < classes.index("SlowThenFast")  # the Hammering trap
    assert sorted(spec.classes).index("Slowing") > sorted(spec.classes).index("SlowThenFast")
    first = (tmp_path / "classInd.txt").read_text().splitlines()[0]
    assert first == f"1 {classes[0]}"
    names = {v.name for s in splits.values() for v in s["train"] + s["test"]}
    assert any(n.startswith("CircleCounterclockwise/v_CircleCounterClockwise_g") for n in names)
    for n, groups in syn.TEST_GROUPS.items():
        test_groups = {int(ucf101.video_group(v.name)[1:]) for v in splits[n]["test"]}
        train_groups = {int(ucf101.video_group(v.name)[1:]) for v in splits[n]["train"]}
        assert test_groups == set(groups)
        assert train_groups == set(range(1, 26)) - set(groups)
    assert len(splits[1]["train"]) + len(splits[1]["test"]) == len(syn.video_plan(spec))
