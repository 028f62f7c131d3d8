"""synthetic_ucf101: the embedded default of Table 1, written in the UCF-101 release format.

A seeded generator of small videos (60x80 pixels, 24-48 frames at 25 fps, XVID AVIs) in
`UCF-101/<Class>/v_<Class>_gXX_cYY.avi` with `ucfTrainTestlist/` (classInd.txt, train/test
lists of 3 splits, CRLF, test groups g01-07 / g08-14 / g15-21), so the real loaders read it.

Design (docs/synthetic_ucf101.md has the full account). Each video shows one textured object
on a textured background. Classes are defined by how the object moves over time; its shape,
colour, texture, size and position are drawn independently of the class. Ten of the twelve
classes come in pairs that share the same per-frame motions in a different order (left then
right / right then left, ...), so one flow image cannot tell the pair apart but the order of
flow images can; one pair (spin clockwise / counter-clockwise) differs in every flow image.
Like scene context in UCF-101, the background hue is weakly tied to the class: with
probability `SCENE_TIE` it is the class's own hue, else uniform. So one RGB frame says a
little, one flow image more, and the order of flow the most. The data were designed from
these principles before any model was trained on them and have not been tuned on results.

Its numbers show the pipeline and the paper's qualitative claims, NOT the paper's numbers.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np

from lrcn_tf.data.ucf101.motion import CLASS_MOTIONS, Geometry, sample_motion
from lrcn_tf.data.video import write_video

# Pairs of classes with the same per-frame motions in opposite order, except Spin*. Ordered
# so that small subsets still hold the release's two traps: `Slowing` / `SlowThenFast` sort
# differently case-sensitively (like `Hammering` / `HammerThrow`), and
# `CircleCounterclockwise` stores its files as `v_CircleCounterClockwise_...` (like
# `HandstandPushups` / `v_HandStandPushups_...`).
PAIRS = (
    ("SlowThenFast", "Slowing"),
    ("CircleClockwise", "CircleCounterclockwise"),
    ("LeftThenRight", "RightThenLeft"),
    ("SpinClockwise", "SpinCounterclockwise"),
    ("GrowThenShrink", "ShrinkThenGrow"),
    ("UpThenDown", "DownThenUp"),
)
ALL_CLASSES = tuple(c for pair in PAIRS for c in pair)
FILE_SPELLING = {"CircleCounterclockwise": "CircleCounterClockwise"}
SCENE_TIE = 0.3  # P(background hue = the class's hue); else uniform over all hues
NOISE_SIGMA = 3.0  # per-pixel sensor noise, 0-255 scale
TEST_GROUPS = {1: range(1, 8), 2: range(8, 15), 3: range(15, 22)}


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """Generation parameters; the defaults are the embedded default dataset."""

    num_classes: int = 12
    num_groups: int = 25
    clips_per_group: tuple[int, int] = (1, 2)  # inclusive range, drawn per (class, group)
    frames: tuple[int, int] = (24, 48)  # inclusive range of video lengths
    height: int = 60
    width: int = 80
    fps: int = 25
    seed: int = 0

    def validate(self) -> None:
        if self.num_classes % 2 or not 2 <= self.num_classes <= len(ALL_CLASSES):
            raise ValueError(f"num_classes {self.num_classes}: an even number in 2..12")
        if not 1 <= self.num_groups <= 25:
            raise ValueError(f"num_groups {self.num_groups}: 1..25 (22+ fills all 3 splits)")
        if not 1 <= self.clips_per_group[0] <= self.clips_per_group[1] <= 7:
            raise ValueError(f"clips_per_group {self.clips_per_group}: 1 <= lo <= hi <= 7")
        if not 2 <= self.frames[0] <= self.frames[1]:
            raise ValueError(f"frames {self.frames}: 2 <= lo <= hi")
        if self.height % 2 or self.width % 2 or self.height < 32 or self.width < 32:
            raise ValueError(f"frame size {self.height}x{self.width}: even, at least 32")

    @property
    def classes(self) -> list[str]:
        return list(ALL_CLASSES[: self.num_classes])


def class_ind_order(classes: list[str]) -> list[str]:
    """classInd.txt order: case-insensitive, as the release sorts it."""
    return sorted(classes, key=str.lower)


def file_name(cls: str, group: int, clip: int) -> str:
    """The split-list path of a video: `Class/v_<FileClass>_gXX_cYY.avi`."""
    return f"{cls}/v_{FILE_SPELLING.get(cls, cls)}_g{group:02d}_c{clip:02d}.avi"


def video_plan(spec: SyntheticSpec) -> list[tuple[str, int, int]]:
    """(class, group, clip) of every video, in class-then-group-then-clip order."""
    plan = []
    for cls in class_ind_order(spec.classes):
        for g in range(1, spec.num_groups + 1):
            rng = np.random.default_rng([spec.seed, ALL_CLASSES.index(cls), g, 0])
            n = int(rng.integers(spec.clips_per_group[0], spec.clips_per_group[1] + 1))
            plan.extend((cls, g, c) for c in range(1, n + 1))
    return plan


def write_split_lists(spec: SyntheticSpec, splits_dir: Path) -> None:
    """classInd.txt and the 3 splits' lists, in the release's format (1-based, CRLF)."""
    splits_dir.mkdir(parents=True, exist_ok=True)
    classes = class_ind_order(spec.classes)
    lines = [f"{i} {c}" for i, c in enumerate(classes, 1)]
    _write_crlf(splits_dir / "classInd.txt", lines)
    plan = video_plan(spec)
    for n, test_groups in TEST_GROUPS.items():
        train = [
            f"{file_name(c, g, k)} {classes.index(c) + 1}"
            for c, g, k in plan
            if g not in test_groups
        ]
        test = [file_name(c, g, k) for c, g, k in plan if g in test_groups]
        _write_crlf(splits_dir / f"trainlist0{n}.txt", train)
        _write_crlf(splits_dir / f"testlist0{n}.txt", test)


def _write_crlf(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes("".join(line + "\r\n" for line in lines).encode())
    os.replace(tmp, path)


def render_video(spec: SyntheticSpec, cls: str, group: int, clip: int) -> np.ndarray:
    """Renders one video deterministically from (seed, class, group, clip): uint8 [T, H, W, 3]."""
    rng = np.random.default_rng([spec.seed, ALL_CLASSES.index(cls), group, clip])
    h, w = spec.height, spec.width
    k = h / 60.0  # geometry is defined for 60-pixel-high frames and scales with the height
    n = int(rng.integers(spec.frames[0], spec.frames[1] + 1))
    radius = rng.uniform(8.0, 12.0) * k
    geom = Geometry(height=h, width=w, radius=radius, margin=2.0 * k)
    motion = sample_motion(cls, n, geom, rng)
    class_hue = 360.0 * ALL_CLASSES.index(cls) / len(ALL_CLASSES)  # 30 degrees apart
    hue = (
        (class_hue + rng.uniform(-8, 8)) % 360 if rng.random() < SCENE_TIE else rng.uniform(0, 360)
    )
    drift = rng.normal(size=2)
    drift *= rng.uniform(0.0, 0.3) * k / (np.linalg.norm(drift) + 1e-9)  # slow camera pan
    margin = int(math.ceil(np.abs(drift).max() * n)) + 2
    background = _texture(
        rng, h + 2 * margin, w + 2 * margin, hue, k, sat=(0.25, 0.6), val=(0.3, 0.75)
    )
    sprite, mask = _sprite(rng)
    frames = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        shift = np.float32([[1, 0, -margin - drift[0] * t], [0, 1, -margin - drift[1] * t]])
        bg = cv2.warpAffine(background, shift, (w, h), flags=cv2.INTER_LINEAR)
        cx, cy, scale, angle = motion[t]
        m = cv2.getRotationMatrix2D((_SPRITE / 2, _SPRITE / 2), angle, scale * radius / _SHAPE_R)
        m[:, 2] += (cx - _SPRITE / 2, cy - _SPRITE / 2)
        obj = cv2.warpAffine(sprite, m, (w, h), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        img = bg * (1 - alpha) + obj * alpha + rng.normal(0, NOISE_SIGMA, (h, w, 3))
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


_SPRITE = 64  # canonical object sprite (pixels); the shape has radius _SHAPE_R in it
_SHAPE_R = 26.0


def _texture(rng, h, w, hue, k, sat, val) -> np.ndarray:
    """A smooth random texture of one hue (float32 RGB 0-255)."""
    fine = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), 1.2 * k)
    coarse = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), 5.0 * k)
    v = 0.6 * (fine - fine.mean()) / (fine.std() + 1e-6) + (coarse - coarse.mean()) / (
        coarse.std() + 1e-6
    )
    v = np.clip(0.5 + 0.18 * v, 0, 1) * (val[1] - val[0]) + val[0]
    hsv = np.stack([np.full_like(v, hue), np.full_like(v, rng.uniform(*sat)), v], -1)
    return (
        cv2.cvtColor(hsv.astype(np.float32), cv2.COLOR_HSV2RGB) * 255.0
    )  # float HSV: H in degrees


SHAPES = ("ellipse", "rectangle", "triangle", "star", "cross", "diamond")


def _sprite(rng, drawn: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A random shape (mask float32 0-1) filled with a random colour and stripe/check texture;
    `drawn` (if given) receives the shape and hue drawn (the draws are the same either way)."""
    s, c, r = _SPRITE, _SPRITE / 2, _SHAPE_R
    big = np.zeros((4 * s, 4 * s), np.uint8)  # drawn at 4x, then shrunk: anti-aliased edges
    shape = rng.choice(list(SHAPES))
    aspect = rng.uniform(0.55, 1.0)
    if shape == "ellipse":
        cv2.ellipse(
            big, (int(4 * c), int(4 * c)), (int(4 * r), int(4 * r * aspect)), 0, 0, 360, 255, -1
        )
    else:
        if shape == "rectangle":
            pts = [(-1, -aspect), (1, -aspect), (1, aspect), (-1, aspect)]
        elif shape == "triangle":
            pts = [(math.cos(a), math.sin(a)) for a in np.deg2rad([-90, 30, 150])]
        elif shape == "diamond":
            pts = [(0, -1), (aspect, 0), (0, 1), (-aspect, 0)]
        elif shape == "star":
            pts = [
                (
                    (1.0 if i % 2 == 0 else 0.45) * math.cos(a),
                    (1.0 if i % 2 == 0 else 0.45) * math.sin(a),
                )
                for i, a in enumerate(np.deg2rad(np.arange(10) * 36 - 90))
            ]
        else:  # cross
            a = 0.38
            pts = [
                (-a, -1),
                (a, -1),
                (a, -a),
                (1, -a),
                (1, a),
                (a, a),
                (a, 1),
                (-a, 1),
                (-a, a),
                (-1, a),
                (-1, -a),
                (-a, -a),
            ]
        poly = np.array([[4 * (c + r * x), 4 * (c + r * y)] for x, y in pts], np.int32)
        cv2.fillPoly(big, [poly], 255, lineType=cv2.LINE_AA)
    mask = cv2.resize(big, (s, s), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(7, 13)
    u = (xx * np.cos(theta) + yy * np.sin(theta)) / period
    if rng.random() < 0.5:
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * u)  # stripes
    else:
        v = (-xx * np.sin(theta) + yy * np.cos(theta)) / period
        pattern = 0.5 + 0.5 * np.sign(np.sin(np.pi * u) * np.sin(np.pi * v))  # checks
    value = rng.uniform(0.55, 1.0) * (1 - 0.45 * pattern)
    hue = rng.uniform(0, 360)
    hsv = np.stack(
        [np.full_like(value, hue), np.full_like(value, rng.uniform(0.55, 1.0)), value], -1
    )
    rgb = cv2.cvtColor(hsv.astype(np.float32), cv2.COLOR_HSV2RGB) * 255.0
    if drawn is not None:
        drawn.update(shape=str(shape), hue=float(hue))
    return rgb, mask


# -- still frames for the embedded "ImageNet" stage (docs/recipe.md) ---------------------------

STILL_GRID = 3  # position label: a STILL_GRID x STILL_GRID grid of the crop
STILL_HUE_BINS = 6  # hue label: bins of 60 degrees
STILL_HEADS = {"shape": len(SHAPES), "position": STILL_GRID**2, "hue": STILL_HUE_BINS}


def render_stills(
    n: int, seed: int, height: int = 60, width: int = 80, crop: int = 56, jpeg_quality: int = 90
) -> tuple[np.ndarray, np.ndarray]:
    """`n` labelled still frames drawn by this renderer, for pre-training the CNN.

    Each: a background texture of any hue, one object of the videos' sprite family (radius
    8-12 px times a scale in 0.5-2, any place and orientation), sensor noise, a JPEG round
    trip, one random crop x crop window. Labels (int32 [n, 3]): the object's shape
    (SHAPES), its centre on a STILL_GRID x STILL_GRID grid of the crop, its hue bin. None
    is a property of a class: the classes differ only in motion.

    Returns:
      (uint8 RGB [n, crop, crop, 3], int32 [n, 3] = (shape, position, hue)).
    """
    rng = np.random.default_rng([seed, 0x57111])  # a stream of its own, never the videos'
    k = height / 60.0
    images = np.empty((n, crop, crop, 3), np.uint8)
    labels = np.empty((n, 3), np.int32)
    for i in range(n):
        radius = rng.uniform(8.0, 12.0) * k * rng.uniform(0.5, 2.0)
        background = _texture(rng, height, width, rng.uniform(0, 360), k, (0.25, 0.6), (0.3, 0.75))
        drawn: dict = {}
        sprite, mask = _sprite(rng, drawn)
        y0 = int(rng.integers(0, height - crop + 1))
        x0 = int(rng.integers(0, width - crop + 1))
        cx, cy = x0 + rng.uniform(0, crop), y0 + rng.uniform(0, crop)  # centre inside the crop
        m = cv2.getRotationMatrix2D(
            (_SPRITE / 2, _SPRITE / 2), rng.uniform(0, 360), radius / _SHAPE_R
        )
        m[:, 2] += (cx - _SPRITE / 2, cy - _SPRITE / 2)
        obj = cv2.warpAffine(sprite, m, (width, height), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(mask, m, (width, height), flags=cv2.INTER_LINEAR)[..., None]
        img = (
            background * (1 - alpha) + obj * alpha + rng.normal(0, NOISE_SIGMA, (height, width, 3))
        )
        img = np.clip(img, 0, 255).astype(np.uint8)
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)  # encoded as the prepared frames are
        enc = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])[1]
        img = cv2.imdecode(enc, cv2.IMREAD_COLOR_RGB)
        images[i] = img[y0 : y0 + crop, x0 : x0 + crop]
        row = min(int((cy - y0) / crop * STILL_GRID), STILL_GRID - 1)
        col = min(int((cx - x0) / crop * STILL_GRID), STILL_GRID - 1)
        hue_bin = int(drawn["hue"] // (360 / STILL_HUE_BINS)) % STILL_HUE_BINS
        labels[i] = (SHAPES.index(drawn["shape"]), row * STILL_GRID + col, hue_bin)
    return images, labels


def generate(
    root: str | Path, spec: SyntheticSpec = SyntheticSpec(), progress: bool = True
) -> tuple[Path, Path]:
    """Writes the dataset under `root` as `UCF-101/` and `ucfTrainTestlist/`.

    Videos already present (from an interrupted run) are kept: every file is written under a
    temp name and renamed, so a present file is complete, and generation is deterministic.

    Returns:
      (videos folder, split-lists folder).
    """
    from tqdm import tqdm

    spec.validate()
    root = Path(root)
    src, splits = root / "UCF-101", root / "ucfTrainTestlist"
    # Present videos are only reused if they were made from the same parameters.
    stamp, wanted = root / "synthetic.json", json.dumps(dataclasses.asdict(spec), sort_keys=True)
    if stamp.exists() and stamp.read_text() != wanted:
        raise ValueError(f"{root} holds videos generated with {stamp.read_text()}, not {wanted}")
    root.mkdir(parents=True, exist_ok=True)
    stamp.write_text(wanted)
    plan = video_plan(spec)
    for cls, g, c in tqdm(plan, desc="synthetic_ucf101 videos", disable=not progress, unit="video"):
        path = src / file_name(cls, g, c)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(path, render_video(spec, cls, g, c), fps=spec.fps)
    write_split_lists(spec, splits)
    return src, splits


__all__ = [
    "ALL_CLASSES",
    "CLASS_MOTIONS",
    "PAIRS",
    "SyntheticSpec",
    "generate",
    "render_video",
]
