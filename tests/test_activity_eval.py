import numpy as np
import pytest

from lrcn_tf.evaluation import activity as ev


def test_clip_probabilities_average_softmax_over_crops_and_frames():
    # 2 clips x 2 crops, 3 steps, 2 classes; clip-major order.
    logits = np.zeros((4, 3, 2))
    logits[0, :, 0] = np.log(3.0)  # clip 0 crop 0: p = (0.75, 0.25) at every step
    logits[3, 1, 1] = np.log(4.0)  # clip 1 crop 1 step 1: p = (0.2, 0.8)
    got = ev.clip_probabilities(logits, num_crops=2)
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got[0], [(3 * 0.75 + 3 * 0.5) / 6, (3 * 0.25 + 3 * 0.5) / 6])
    np.testing.assert_allclose(got[1], [(5 * 0.5 + 0.2) / 6, (5 * 0.5 + 0.8) / 6])
    with pytest.raises(ValueError, match="not \\(clips \\* 3"):
        ev.clip_probabilities(logits, num_crops=3)


def _fake_predict(x):
    # "Logits" read from the input: class score = the pixel value of channel 0 / 1. Takes
    # (B, crops, T, h, w, C) as predictors do: crops into the batch.
    x = np.reshape(x, (-1, *np.shape(x)[-4:]))
    b, t = x.shape[:2]
    out = np.zeros((b, t, 2))
    out[..., 0] = x[:, :, 0, 0, 0]
    out[..., 1] = x[:, :, 0, 0, 1]
    return out


def _clip(c, t, values):
    """(crops, T, 1, 1, 2) with per-(crop, frame) logits `values` of shape (crops, T, 2)."""
    return np.asarray(values, dtype=np.float64).reshape(c, t, 1, 1, 2)


def test_evaluate_videos_streamed_and_per_video_agree():
    rng = np.random.default_rng(0)
    # video 0: 2 clips, video 1: 3 clips; 10 crops, 4 frames.
    clips = {
        0: [_clip(10, 4, rng.normal(size=(10, 4, 2))) for _ in range(2)],
        1: [_clip(10, 4, rng.normal(size=(10, 4, 2))) for _ in range(3)],
    }
    labels = {0: 1, 1: 0}
    want = np.stack(
        [np.mean([ev.softmax(c.reshape(40, 2)) for c in clips[v]], axis=(0, 1)) for v in (0, 1)]
    )
    per_video = [
        {"clips": np.stack(clips[v]), "label": np.int32(labels[v]), "video_index": np.int32(v)}
        for v in (0, 1)
    ]
    flat = [(v, c) for v in (0, 1) for c in clips[v]]
    streamed = [
        {
            "clips": np.stack([c for _, c in flat[i : i + 2]]),
            "label": np.array([labels[v] for v, _ in flat[i : i + 2]]),
            "video_index": np.array([v for v, _ in flat[i : i + 2]]),
        }
        for i in range(0, len(flat), 2)
    ]
    calls = []

    def predict(x):
        calls.append(np.shape(x)[0] * np.shape(x)[1])
        return _fake_predict(x)

    for batches in (per_video, streamed):
        for group in (1, 2, 3):
            calls.clear()
            scores, got_labels = ev.evaluate_videos(
                predict, batches, 3, 2, progress=False, group=group
            )
            np.testing.assert_allclose(scores[:2], want)
            assert got_labels.tolist() == [1, 0, -1]
            assert np.all(np.isnan(scores[2]))  # video 2 never seen
            assert len(calls) == -(-len(batches) // group)  # elements grouped into one call
            assert sum(calls) == 50  # every clip and crop once
    with pytest.raises(ValueError, match="group must be >= 1"):
        ev.evaluate_videos(predict, per_video, 3, 2, progress=False, group=0)


def test_accuracy_and_fusion_by_hand():
    rgb = np.array([[0.6, 0.4], [0.2, 0.8], [0.55, 0.45]])
    flow = np.array([[0.3, 0.7], [0.4, 0.6], [0.1, 0.9]])
    labels = np.array([0, 1, 1])
    assert ev.accuracy(rgb, labels) == pytest.approx(200 / 3)
    assert ev.accuracy(flow, labels) == pytest.approx(200 / 3)
    half = ev.fuse(rgb, flow, 1 / 2)
    np.testing.assert_allclose(half[0], [0.45, 0.55])
    third = ev.fuse(rgb, flow, 1 / 3)
    np.testing.assert_allclose(third[0], [0.4, 0.6])
    assert ev.accuracy(half, labels) == pytest.approx(200 / 3)
    ps, accs = ev.fusion_sweep(rgb, flow, labels, [0.0, 1 / 3, 0.8, 1.0])
    assert accs[0] == ev.accuracy(flow, labels) and accs[-1] == ev.accuracy(rgb, labels)
    # p = 0.8: video 0 (0.54, 0.46) right, video 1 right, video 2 (0.46, 0.54) right.
    assert accs[2] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="differ"):
        ev.fuse(rgb, flow[:2], 0.5)
    with pytest.raises(ValueError, match="do not match"):
        ev.accuracy(rgb, labels[:2])


def test_scores_round_trip_and_alignment(tmp_path):
    rgb_path = ev.save_scores(
        tmp_path / "rgb.npz", ["a", "b", "c"], [0, 1, 1], [[0.6, 0.4], [0.2, 0.8], [0.5, 0.5]]
    )
    flow_path = ev.save_scores(
        tmp_path / "flow.npz", ["c", "a", "b"], [1, 0, 1], [[0.1, 0.9], [0.3, 0.7], [0.4, 0.6]]
    )
    r, f, labels = ev.aligned(ev.load_scores(rgb_path), ev.load_scores(flow_path))
    np.testing.assert_allclose(f, [[0.3, 0.7], [0.4, 0.6], [0.1, 0.9]])
    assert labels.tolist() == [0, 1, 1]
    other = ev.save_scores(tmp_path / "other.npz", ["a", "b", "d"], [0, 1, 1], np.ones((3, 2)))
    with pytest.raises(ValueError, match="different videos"):
        ev.aligned(ev.load_scores(rgb_path), ev.load_scores(other))
    wrong = ev.save_scores(tmp_path / "wrong.npz", ["a", "b", "c"], [1, 1, 1], np.ones((3, 2)))
    with pytest.raises(ValueError, match="different labels"):
        ev.aligned(ev.load_scores(rgb_path), ev.load_scores(wrong))
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        ev.load_scores(bad)


def test_sweep_plot_is_written(tmp_path):
    ps = np.linspace(0, 1, 5)
    path = ev.plot_fusion_sweep(
        {"lrcn_fc6": (ps, ps * 10), "single_frame": (ps, ps)}, tmp_path / "sweep.png"
    )
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_softmax_is_float64_and_leaves_its_input_alone():
    for dtype in (np.float32, np.float64):
        logits = np.random.default_rng(3).normal(size=(4, 5, 7)).astype(dtype)
        kept = logits.copy()
        p = ev.softmax(logits)
        z = logits.astype(np.float64) - logits.astype(np.float64).max(axis=-1, keepdims=True)
        np.testing.assert_array_equal(p, np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True))
        np.testing.assert_array_equal(logits, kept)  # the in-place steps work on a copy
        assert p.dtype == np.float64
