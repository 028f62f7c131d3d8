"""TV-L1 in keras.ops (flow_tvl1) against OpenCV's DualTVL1OpticalFlow: its building blocks
one by one, then whole flows on known motion and synthetic videos (issue 17's thresholds,
printed), and `prepare --flow tvl1_accel`."""

import json

import cv2
import numpy as np
import pytest

from lrcn_tf.data import flow, flow_check, flow_tvl1

H, W = 64, 80  # one compiled shape for the whole file (XLA compiles once per batch x size)


def _rng_image(h, w, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (2, h, w)).astype(np.float32)


def test_pyramid_sizes_are_opencvs():
    for h, w in [(240, 320), (64, 80), (60, 80), (37, 53)]:
        sizes, img = flow_tvl1.pyramid_sizes(h, w), np.zeros((h, w), np.float32)
        expect = [(h, w)]
        while len(expect) < 5:
            img = cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
            if min(img.shape) < 16:
                break
            expect.append(img.shape)
        assert sizes == expect, (h, w)


def test_resize_median_and_gradients_match_opencv():
    x = _rng_image(37, 53)
    # Pyramid step (factor 0.8) and flow upsampling (explicit size), both bilinear.
    down = np.asarray(flow_tvl1._resize(x, (37, 53), (30, 42), 1.25, 1.25))
    ref = np.stack([cv2.resize(i, None, fx=0.8, fy=0.8) for i in x])
    np.testing.assert_allclose(down, ref, atol=1e-3)
    up = np.asarray(flow_tvl1._resize(x[:, :30, :42], (30, 42), (37, 53), 30 / 37, 42 / 53))
    ref = np.stack([cv2.resize(i[:30, :42], (53, 37)) for i in x])
    np.testing.assert_allclose(up, ref, atol=1e-3)
    for k in (3, 5):
        tied = np.round(x / 40)  # many equal values
        med = np.asarray(flow_tvl1._median(tied, k))
        np.testing.assert_array_equal(med, np.stack([cv2.medianBlur(i, k) for i in tied]))
    dx, dy = (np.asarray(g) for g in flow_tvl1._centered_gradient(x))
    np.testing.assert_allclose(dx[0, 5, 1:-1], 0.5 * (x[0, 5, 2:] - x[0, 5, :-2]), atol=1e-4)
    np.testing.assert_allclose(dx[0, :, 0], 0.5 * (x[0, :, 1] - x[0, :, 0]), atol=1e-4)
    np.testing.assert_allclose(dy[0, -1], 0.5 * (x[0, -1] - x[0, -2]), atol=1e-4)
    # The divergence is minus the adjoint of the forward gradient (for duals that are zero
    # where the gradient is: the last column of p1, the last row of p2).
    u, p1, p2 = _rng_image(37, 53, 1)[:1], _rng_image(37, 53, 2)[:1], _rng_image(37, 53, 3)[:1]
    p1[:, :, -1] = 0
    p2[:, -1] = 0
    gx, gy = (np.asarray(g) for g in flow_tvl1._forward_gradient(u))
    div = np.asarray(flow_tvl1._divergence(p1, p2))
    inner = (gx * p1 + gy * p2).astype(np.float64).sum()
    assert abs(inner + (u * div).astype(np.float64).sum()) < 1e-5 * abs(inner)


def test_bicubic_warp_matches_remap():
    x = _rng_image(37, 53)
    rng = np.random.default_rng(4)
    u1 = rng.normal(0, 3, x.shape).astype(np.float32)
    u2 = rng.normal(0, 3, x.shape).astype(np.float32)
    u1[:, :, :4] -= 6  # sampled partly or wholly outside the image: zero there
    ours = np.asarray(flow_tvl1._warp_cubic([x], u1, u2, 37, 53)[0])
    gy, gx = np.mgrid[0:37, 0:53].astype(np.float32)
    ref = np.stack([cv2.remap(i, gx + a, gy + b, cv2.INTER_CUBIC) for i, a, b in zip(x, u1, u2)])
    np.testing.assert_allclose(ours, ref, atol=0.02)


def test_bad_input_and_parameters():
    with pytest.raises(ValueError, match="equal"):
        flow_tvl1.TVL1()(np.zeros((1, 8, 8)), np.zeros((1, 8, 9)))
    with pytest.raises(ValueError, match="scale_step"):
        flow_tvl1.TVL1(flow_tvl1.TVL1Params(scale_step=1.5))


@pytest.fixture(scope="module")
def solver():
    return flow._shared_accel(flow_tvl1.TVL1)  # the solver prepare uses (compiled once)


def _check_thresholds(result):
    t, th = result["total"], flow_check.THRESHOLDS
    print("\n" + flow_check.report(result))
    print(
        f"thresholds: EPE ours-cv {t['epe_between']:.3f} <= {th['epe_between']}; "
        f"EPE to truth ours {t['epe_ours']:.4f} <= {th['gt_ratio']} x cv {t['epe_cv']:.4f} "
        f"(= {th['gt_ratio'] * t['epe_cv']:.4f}); encoded within {th['levels']} levels on "
        f"{min(r['agree'] for r in result['rows']):.3f} (worst pair) >= {th['agree']}"
    )
    assert t["epe_between"] <= th["epe_between"]
    assert t["epe_ours"] <= th["gt_ratio"] * t["epe_cv"]
    for r in result["rows"]:
        assert r["agree"] >= th["agree"], r


def test_agrees_with_opencv_tvl1_on_known_motion(solver):
    pairs = flow_check.known_motion_pairs(H, W) + flow_check.synthetic_video_pairs(H, W)
    assert len(pairs) == flow.FlowComputer("tvl1_accel").batch_size == 8
    _check_thresholds(flow_check.compare(pairs, tvl1=solver))


@pytest.mark.slow
def test_agrees_with_opencv_tvl1_at_240x320():
    pairs = flow_check.known_motion_pairs(240, 320) + flow_check.synthetic_video_pairs(240, 320)
    _check_thresholds(flow_check.compare(pairs, batch=4))


def test_prepare_with_tvl1_accel(tmp_path, solver):
    from lrcn_tf.data import embedded
    from lrcn_tf.data.ucf101.synthetic import SyntheticSpec

    spec = SyntheticSpec(
        num_classes=2, num_groups=8, clips_per_group=(1, 1), frames=(5, 6), height=H, width=W
    )
    out = tmp_path / "prep"
    summary = embedded.prepare_synthetic_ucf101(
        out, spec, flow="tvl1_accel", workers=1, progress=False
    )
    assert summary["failed"] == 0 and summary["ok"] == 16
    info = json.loads((out / "dataset.json").read_text())
    assert info["flow"] == "tvl1_accel" and info["frame_size"] == [H, W]
    # The stored flow images of one video are OpenCV TV-L1's, within the JPEG's error.
    import tensorflow as tf

    from lrcn_tf.data.video import decode_video

    shard = sorted((out / "shards" / "flow").glob("*.tfrecord"))[0]
    record = next(iter(tf.data.TFRecordDataset(str(shard))))
    ctx, seq = tf.io.parse_single_sequence_example(
        record,
        context_features={"video": tf.io.FixedLenFeature([], tf.string)},
        sequence_features={"flow": tf.io.FixedLenSequenceFeature([], tf.string)},
    )
    stored = np.stack([tf.io.decode_jpeg(j).numpy() for j in seq["flow"]])
    name = ctx["video"].numpy().decode()
    frames, _ = decode_video(out / "raw" / "UCF-101" / name, None, None)
    expect = flow.flow_images(frames, "tvl1")
    diff = np.abs(stored.astype(int) - expect.astype(int))
    print(f"\n{name}: stored tvl1_accel vs OpenCV tvl1 images, median |diff| {np.median(diff)}")
    assert (diff <= 8).all(axis=-1).mean() >= 0.95  # 4 levels of flow + JPEG (quality 90)
