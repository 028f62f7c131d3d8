"""ucf101_index: JPEG spans of prepared shards, written by prepare or rebuilt from the file."""

import numpy as np
import pytest
import tensorflow as tf

from lrcn_tf.data.ucf101 import format as ucf101
from lrcn_tf.data.ucf101 import index as ui
from lrcn_tf.data.ucf101.shards import video_example

NAME = "A/v_A_g01_c01.avi"


def write_records(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as w:
        for r in records:
            w.write(r)


def raw_example(name, jpegs, modality="rgb", hw=(60, 80)):
    """A record of video_example's layout whose frames are arbitrary bytes."""
    b = lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))  # noqa: E731
    i = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))  # noqa: E731
    context = {"video": b(name.encode()), "label": i(0), "height": i(hw[0]), "width": i(hw[1])}
    lists = {modality: tf.train.FeatureList(feature=[b(j) for j in jpegs])}
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=lists),
    ).SerializeToString()


def one_video_index(tmp_path, jpegs):
    """A FrameIndex over one shard `s0` holding one video (NAME) with these frame bytes."""
    write_records(ucf101.shard_file(tmp_path, "rgb", "s0"), [raw_example(NAME, jpegs)])
    return ui.FrameIndex(tmp_path, {"s0": (NAME,)}, [NAME], "rgb")


def test_record_spans_point_at_each_jpeg():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 24, 32, 3), np.uint8)
    record = video_example(NAME, 3, frames, "flow", 6, 25.0, 90).SerializeToString()
    name, h, w, spans = ui.record_spans(record, "flow")
    ex = tf.train.SequenceExample.FromString(record)
    want = [f.bytes_list.value[0] for f in ex.feature_lists.feature_list["flow"].feature]
    assert (name, h, w) == (NAME, 24, 32)
    assert [record[a : a + n] for a, n in spans] == want
    assert ui.record_spans(record, "rgb")[3] == []  # the other modality: no frames
    with pytest.raises(ValueError):
        ui.record_spans(b"\x0f" + record, "flow")  # wire type 7


def test_index_reads_the_frames_and_is_rebuilt_when_stale(tmp_path):
    shard = ucf101.shard_file(tmp_path, "rgb", "s0")
    videos = {
        f"A/v_A_g0{k}_c01.avi": [bytes([k, j]) * (j + 1) for j in range(k + 2)] for k in (1, 2, 3)
    }
    write_records(shard, [raw_example(n, j, hw=(7, 9)) for n, j in videos.items()])
    assert not ui.index_file(shard).exists()
    index = ui.FrameIndex(
        tmp_path, {"s0": tuple(videos)}, ["A/v_A_g03_c01.avi", "A/v_A_g01_c01.avi"], "rgb"
    )
    assert ui.index_file(shard).is_file()  # built from the file and saved
    assert index.counts.tolist() == [5, 3] and index.hw.tolist() == [[7, 9], [7, 9]]
    got = index.jpegs([0, 1, 0], np.array([[4, 0], [2, 1], [0, 0]]))
    v1, v3 = videos["A/v_A_g01_c01.avi"], videos["A/v_A_g03_c01.avi"]
    assert got.tolist() == [[v3[4], v3[0]], [v1[2], v1[1]], [v3[0], v3[0]]]

    # The shard rewritten with other contents: the saved index no longer fits and is rebuilt.
    write_records(shard, [raw_example("A/v_A_g01_c01.avi", [b"xyz" * 50])])
    again = ui.FrameIndex(tmp_path, {"s0": ("A/v_A_g01_c01.avi",)}, ["A/v_A_g01_c01.avi"], "rgb")
    assert again.jpegs([0], np.array([[0]])).tolist() == [[b"xyz" * 50]]
    with pytest.raises(ui.ShardIndexError, match="s9.tfrecord: missing; rerun the prepare"):
        ui.FrameIndex(tmp_path, {"s9": ("A/v_A_g01_c01.avi",)}, ["A/v_A_g01_c01.avi"], "rgb")
    with pytest.raises(ui.ShardIndexError, match=r"lack the videos \['B/v_B_g01_c01.avi'\]"):
        ui.FrameIndex(tmp_path, {"s0": ("B/v_B_g01_c01.avi",)}, ["B/v_B_g01_c01.avi"], "rgb")


def test_damaged_shard_is_named_and_read_only_folders_warn(tmp_path, monkeypatch):
    shard = ucf101.shard_file(tmp_path, "rgb", "s0")
    write_records(shard, [raw_example(NAME, [b"abc"] * 3)])
    data = bytearray(shard.read_bytes())
    data[20] ^= 0xFF  # inside the record: its CRC no longer matches
    shard.write_bytes(bytes(data))
    with pytest.raises(ui.ShardIndexError, match="s0.tfrecord: damaged shard"):
        ui.FrameIndex(tmp_path, {"s0": (NAME,)}, [NAME], "rgb")

    write_records(shard, [raw_example(NAME, [b"abc"] * 3)])

    def refuse(path, arrays):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ui, "write_index", refuse)  # a read-only folder
    with pytest.warns(UserWarning, match="cannot save the index .*s0.tfrecord .Permission denied"):
        index = ui.FrameIndex(tmp_path, {"s0": (NAME,)}, [NAME], "rgb")
    assert index.jpegs([0], np.array([[2]])).tolist() == [[b"abc"]]
    assert not ui.index_file(shard).exists()


def test_prepare_writes_the_index_the_file_gives(tmp_path):
    """The index written with each shard equals one rebuilt from the finished file."""
    from lrcn_tf.data.embedded import ensure_ucf101

    data = ensure_ucf101(
        tmp_path / "syn", num_classes=2, num_groups=3, clips_per_group=1, workers=1, progress=False
    )
    info = ucf101.load_info(data)
    for modality in ("rgb", "flow"):
        for shard in info.shards:
            path = ucf101.shard_file(data, modality, shard)
            with np.load(ui.index_file(path)) as z:
                written = {k: z[k] for k in z.files}
            rebuilt = ui.build_index(path, modality)
            assert written.keys() == rebuilt.keys()
            for k in written:
                np.testing.assert_array_equal(written[k], rebuilt[k], err_msg=f"{shard} {k}")
            assert int(written["file_size"]) == path.stat().st_size
            assert written["videos"].tolist() == list(info.shards[shard])
