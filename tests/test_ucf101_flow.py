"""Flow images: the original encoding on known motion, duplicate frames, mirroring."""

import cv2
import numpy as np
import pytest

from lrcn_tf.data import flow


def _texture(h=64, w=80, seed=0):
    rng = np.random.default_rng(seed)
    g = cv2.GaussianBlur(rng.random((h + 40, w + 40), dtype=np.float32), (0, 0), 2.0)
    g = (g - g.min()) / (g.max() - g.min()) * 255
    return np.repeat(g[..., None], 3, -1)


def _shifted(big, dx, dy, h=64, w=80):
    m = np.float32([[1, 0, dx - 20], [0, 1, dy - 20]])  # content moves by (+dx, +dy)
    return np.clip(cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR), 0, 255).astype(np.uint8)


def test_encoding_is_x16_plus_128_clipped():
    f = np.array([[[2.0, -1.0], [0.0, 0.0]], [[20.0, -20.0], [3.0, 4.0]]], np.float32)
    img = flow.encode_flow(f)
    assert img.dtype == np.uint8
    np.testing.assert_array_equal(img[0, 0], [160, 112, 164])  # magnitude sqrt(5)*16+128 = 163.8
    np.testing.assert_array_equal(img[0, 1], [128, 128, 128])
    np.testing.assert_array_equal(img[1, 0], [255, 0, 255])  # clipped
    np.testing.assert_array_equal(img[1, 1], [176, 192, 208])
    np.testing.assert_allclose(flow.decode_flow(img)[0, 0], [2.0, -1.0])


@pytest.mark.parametrize("method", ["farneback", "tvl1"])
def test_shifted_image_gives_expected_channel_values(method):
    big = _texture()
    frames = np.stack([_shifted(big, 0, 0), _shifted(big, 2, -1)])
    img = flow.flow_images(frames, method)
    assert img.shape == (1, 64, 80, 3)
    inner = img[0, 16:-16, 16:-16].reshape(-1, 3).astype(float)
    # x = +2 px -> 160, y = -1 px -> 112, magnitude sqrt(5) px -> 164
    np.testing.assert_allclose(np.median(inner, axis=0), [160, 112, 164], atol=3)


def test_duplicate_frames_are_bridged_not_zero():
    big = _texture()
    a, b, c = _shifted(big, 0, 0), _shifted(big, 2, 0), _shifted(big, 6, 0)
    img = flow.flow_images(np.stack([a, b, b, c]))  # frame 2 duplicates frame 1
    x = np.median(img[:, 16:-16, 16:-16, 0].reshape(3, -1), axis=1)
    # b -> c moves 4 px over two steps: 2 px each, not 0 then 4.
    np.testing.assert_allclose(x, [160, 160, 160], atol=3)
    tail = flow.flow_images(np.stack([a, b, b]))  # trailing duplicate repeats the last flow
    np.testing.assert_array_equal(tail[1], tail[0])
    frozen = flow.flow_images(np.stack([a, a, a]))
    assert (frozen == 128).all() and frozen.shape[0] == 2


def test_short_video_and_bad_method():
    assert flow.flow_images(np.zeros((1, 8, 8, 3), np.uint8)).shape == (0, 8, 8, 3)
    with pytest.raises(ValueError, match="flow method 'brox'"):
        flow.FlowComputer("brox")


def test_mirroring_inverts_flow_x_only():
    import tensorflow as tf

    from lrcn_tf.data.ucf101.ops import mirror

    big = _texture()
    img = flow.flow_images(np.stack([_shifted(big, 0, 0), _shifted(big, 2, 1)]))[0]
    m = mirror(tf.constant(img), "flow").numpy()
    np.testing.assert_array_equal(m[..., 0], 255 - img[:, ::-1, 0])
    np.testing.assert_array_equal(m[..., 1:], img[:, ::-1, 1:])
    # The mirrored flow is the flow of the mirrored frames (x -> -x): about 96 = -2*16+128.
    assert abs(np.median(m[16:-16, 16:-16, 0]) - 96) <= 4
    rgb = mirror(tf.constant(img), "rgb").numpy()
    np.testing.assert_array_equal(rgb, img[:, ::-1])
