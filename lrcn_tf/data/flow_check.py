r"""Checks the keras.ops TV-L1 (`flow_tvl1`) against OpenCV's TV-L1 on known motion.

    python -m lrcn_tf.data.flow_check [--height 240 --width 320] [--batch 8]

Frame pairs with known true motion (a 1/f-spectrum texture with occluding shapes, the
amplitude spectrum of natural images, translated or rotated by a known amount) and pairs of
consecutive frames of synthetic_ucf101 videos (object and camera motion; no ground truth
kept) go through both; printed and returned per pair and overall:
- `epe_between`: mean endpoint error between the two flows (px);
- `epe_ours`, `epe_cv`: mean endpoint error of each to the true motion, 8 px from the edges
  (pairs with ground truth only);
- `agree`: fraction of pixels whose encoded flow images (x*16+128, y*16+128, magnitude;
  `flow.encode_flow`) agree within 4 levels in every channel.
The thresholds of issue 17 (`THRESHOLDS`) are checked by tests/test_flow_tvl1.py.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

THRESHOLDS = {"epe_between": 0.15, "gt_ratio": 1.10, "agree": 0.95, "levels": 4}
EDGE = 8  # pixels left out at the edges when comparing to the true motion


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """A gray 1/f-spectrum texture with a few occluding textured ellipses, float32 0..255."""
    rng = np.random.default_rng(seed)

    def pink(hh, ww):
        fy = np.fft.fftfreq(hh)[:, None]
        fx = np.fft.rfftfreq(ww)[None, :]
        f = np.sqrt(fx * fx + fy * fy)
        f[0, 0] = 1.0
        spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
        spec[0, 0] = 0
        x = np.fft.irfft2(spec, s=(hh, ww))
        return (x - x.min()) / (x.max() - x.min())

    img = pink(h, w)
    for _ in range(4):
        mask = np.zeros((h, w), np.uint8)
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(w // 10, w // 4)), int(rng.integers(h // 10, h // 4)))
        cv2.ellipse(mask, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        inside = pink(h, w) * 0.6 + rng.uniform(0, 0.4)
        img = np.where(mask > 0, inside, img)
    return (img * 255).astype(np.float32)


def _affine_pair(h, w, seed, matrix):
    """(frame0, frame1, true flow): frame1 is frame0 moved by the 2x3 forward `matrix`."""
    pad = max(h, w) // 2
    big = texture(h + 2 * pad, w + 2 * pad, seed)
    to_big = np.float32([[1, 0, pad], [0, 1, pad]])
    f0 = big[pad : pad + h, pad : pad + w]
    # frame1(p) = big(M^-1 p), M in the frame's coordinates, taken from the big canvas.
    m = np.vstack([matrix, [0, 0, 1]]).astype(np.float64)
    inv = np.linalg.inv(m)
    src = np.vstack([to_big, [0, 0, 1]]) @ inv  # frame coords of frame1 -> canvas coords
    f1 = cv2.warpAffine(
        big, src[:2].astype(np.float32), (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    )
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    moved = np.einsum("ij,jhw->ihw", m[:2], np.stack([xs, ys, np.ones_like(xs)]))
    gt = np.stack([moved[0] - xs, moved[1] - ys], axis=-1).astype(np.float32)
    return _as_u8(f0), _as_u8(f1), gt


def _as_u8(x):
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def known_motion_pairs(h: int, w: int):
    """[(name, gray0, gray1, true flow)]: translations and rotations of textures.

    Motions are a few pixels a frame at every frame size (UCF-101's typical range, inside
    the default pyramid's reach): shifts in pixels, rotations by angles that move the frame's
    corners as far as 4 and 3 degrees do at 64x80 (at most about 3.6 px)."""
    k = h / 64.0
    center = ((w - 1) / 2.0, (h - 1) / 2.0)

    def rot(deg, dx=0.0, dy=0.0):
        return cv2.getRotationMatrix2D(center, deg, 1.0) + [[0, 0, dx], [0, 0, dy]]

    a, b = 4.0 / k, -3.0 / k
    cases = [
        ("shift(+2.3,-1.2)", 0, np.float64([[1, 0, 2.3], [0, 1, -1.2]])),
        ("shift(-0.6,+3.4)", 1, np.float64([[1, 0, -0.6], [0, 1, 3.4]])),
        (f"rotate({a:.3g}deg)", 2, rot(a)),
        (f"rotate({b:.3g}deg)+shift(1,0.5)", 3, rot(b, 1.0, 0.5)),
    ]
    return [(name,) + _affine_pair(h, w, seed, m) for name, seed, m in cases]


def synthetic_video_pairs(h: int, w: int, n: int = 4):
    """[(name, gray0, gray1, None)]: consecutive frames of synthetic_ucf101 videos."""
    from lrcn_tf.data.ucf101.synthetic import ALL_CLASSES, SyntheticSpec, render_video

    spec = SyntheticSpec(height=h, width=w)
    out = []
    for i, cls in enumerate(ALL_CLASSES[:: max(1, len(ALL_CLASSES) // n)][:n]):
        frames = render_video(spec, cls, group=1 + i, clip=1)
        t = len(frames) // 2
        g = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[t : t + 2]]
        out.append((f"synthetic {cls} t={t}", g[0], g[1], None))
    return out


def compare(pairs, batch: int | None = None, tvl1=None) -> dict:
    """Runs OpenCV's TV-L1 and ours on `pairs`; returns per-pair rows, totals and timings."""
    from lrcn_tf.data.flow import encode_flow
    from lrcn_tf.data.flow_tvl1 import TVL1

    cv = cv2.optflow.DualTVL1OpticalFlow_create()
    start = time.perf_counter()
    refs = [cv.calc(a, b, None) for _, a, b, _ in pairs]
    cv_seconds = time.perf_counter() - start
    tvl1 = tvl1 or TVL1()
    a = np.stack([p[1] for p in pairs])
    b = np.stack([p[2] for p in pairs])
    batch = batch or len(pairs)
    start = time.perf_counter()
    ours = np.concatenate(
        [tvl1(a[i : i + batch], b[i : i + batch]) for i in range(0, len(a), batch)]
    )
    ours_seconds = time.perf_counter() - start
    rows = []
    for (name, _, _, gt), ref, mine in zip(pairs, refs, ours):
        diff = np.abs(encode_flow(mine).astype(int) - encode_flow(ref).astype(int))
        row = {
            "pair": name,
            "epe_between": float(np.linalg.norm(mine - ref, axis=-1).mean()),
            "agree": float((diff <= THRESHOLDS["levels"]).all(axis=-1).mean()),
        }
        if gt is not None:
            inner = (slice(EDGE, -EDGE), slice(EDGE, -EDGE))
            row["epe_ours"] = float(np.linalg.norm(mine[inner] - gt[inner], axis=-1).mean())
            row["epe_cv"] = float(np.linalg.norm(ref[inner] - gt[inner], axis=-1).mean())
        rows.append(row)
    gt_rows = [r for r in rows if "epe_ours" in r]
    total = {
        "epe_between": float(np.mean([r["epe_between"] for r in rows])),
        "agree": float(np.mean([r["agree"] for r in rows])),
        "epe_ours": float(np.mean([r["epe_ours"] for r in gt_rows])) if gt_rows else None,
        "epe_cv": float(np.mean([r["epe_cv"] for r in gt_rows])) if gt_rows else None,
    }
    return {"rows": rows, "total": total, "cv_seconds": cv_seconds, "ours_seconds": ours_seconds}


def report(result: dict) -> str:
    lines = [
        f"{'pair':34s} {'EPE ours-cv':>11s} {'EPE ours-gt':>11s} {'EPE cv-gt':>9s} {'agree':>6s}"
    ]
    for r in result["rows"] + [dict(result["total"], pair="mean")]:
        gt = (
            f"{r['epe_ours']:11.3f} {r['epe_cv']:9.3f}"
            if r.get("epe_ours") is not None
            else f"{'-':>11s} {'-':>9s}"
        )
        lines.append(f"{r['pair']:34s} {r['epe_between']:11.3f} {gt} {r['agree']:6.3f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--batch", type=int, default=None, help="pairs per call (all)")
    args = parser.parse_args(argv)
    pairs = known_motion_pairs(args.height, args.width) + synthetic_video_pairs(
        args.height, args.width
    )
    result = compare(pairs, args.batch)
    print(report(result))
    t = result["total"]
    ok = (
        t["epe_between"] <= THRESHOLDS["epe_between"]
        and t["epe_ours"] <= THRESHOLDS["gt_ratio"] * t["epe_cv"]
        and min(r["agree"] for r in result["rows"]) >= THRESHOLDS["agree"]
    )
    print("issue 17 thresholds:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
