"""Embedded image-description data: generated scenes with five grammar-made captions each.

A scene is one or two groups of shapes on a plain background. A group has a count (1-3), a
size (small / large), a colour (7) and a shape (5); one group sits in a part of the image
(left, right, top, bottom, middle), two groups are set beside or above one another. Five
captions per image come from a grammar with varied templates, synonyms, optional attributes,
capitals, commas and final full stops, so that the real tokeniser and vocabulary rules have
work to do. A caption model must get colours, shapes, counts and the spatial relation right,
which a retrieved training image rarely gets all at once: that is the design's reason for
LRCN > 1-NN, not any tuning on test results. See docs/synthetic_captions.md.

`write_dataset` writes the real datasets' on-disk formats so that the real loaders run:
- synthetic_coco2014: `train2014/COCO_train2014_%012d.jpg`, `val2014/COCO_val2014_%012d.jpg`,
  `dataset_coco.json` (Karpathy format: images[].filepath/filename/split/cocoid/sentences) and
  `annotations/captions_{train,val}2014.json` (COCO captions format); test and val images are
  held out of val2014 like the Karpathy split.
- synthetic_flickr30k: `flickr30k-images/<id>.jpg`, `dataset_flickr30k.json` (no filepath, as
  the real file) and `annotations/captions_flickr30k.json` (COCO captions format).

`pretext_batch` draws labelled scenes for pre-training the small CNN, our stand-in for the
ImageNet pre-training of the paper's CaffeNet (a separate random stream, never the caption
images).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
PLURAL = {"cross": "crosses"}
COLOURS = {  # RGB
    "red": (215, 35, 35),
    "green": (40, 175, 60),
    "blue": (45, 80, 225),
    "yellow": (235, 215, 40),
    "purple": (150, 55, 190),
    "orange": (245, 135, 25),
    "white": (240, 240, 240),
}
BACKGROUNDS = {"black": (15, 15, 15), "gray": (110, 110, 110)}
POSITIONS = ("left", "right", "top", "bottom", "middle")
RELATIONS = ("left", "right", "above", "below")  # group A is <relation> of group B
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
NUMBER_WORDS = {2: "two", 3: "three"}
NUM_PRETEXT_CLASSES = len(SHAPES) * len(COLOURS)


@dataclasses.dataclass(frozen=True)
class Group:
    shape: str
    colour: str
    size: str
    count: int


@dataclasses.dataclass(frozen=True)
class Scene:
    background: str
    groups: tuple[Group, ...]
    place: str  # a POSITION for one group, a RELATION of groups[0] to groups[1] for two

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def sample_scene(rng: np.random.Generator) -> Scene:
    """A random scene: one group (40%) or two groups with different (shape, colour)."""
    n = 1 if rng.random() < 0.4 else 2
    groups: list[Group] = []
    while len(groups) < n:
        g = Group(
            shape=str(rng.choice(SHAPES)),
            colour=str(rng.choice(list(COLOURS))),
            size=str(rng.choice(["small", "large"])),
            count=int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2])),
        )
        if all((g.shape, g.colour) != (o.shape, o.colour) for o in groups):
            groups.append(g)
    place = str(rng.choice(POSITIONS if n == 1 else RELATIONS))
    return Scene(str(rng.choice(list(BACKGROUNDS))), tuple(groups), place)


# -- rendering --------------------------------------------------------------------------------

_REGIONS = {  # (x0, y0, x1, y1) as fractions of the image
    "left": (0.0, 0.0, 0.5, 1.0),
    "right": (0.5, 0.0, 1.0, 1.0),
    "top": (0.0, 0.0, 1.0, 0.5),
    "bottom": (0.0, 0.5, 1.0, 1.0),
    "middle": (0.2, 0.2, 0.8, 0.8),
}
_PAIR_REGIONS = {
    "left": ("left", "right"),
    "right": ("right", "left"),
    "above": ("top", "bottom"),
    "below": ("bottom", "top"),
}


def _draw(img: np.ndarray, shape: str, cx: float, cy: float, r: float, colour) -> None:
    c = tuple(int(v) for v in colour)
    s = 16  # cv2 sub-pixel shift: coordinates in 1/16 pixel
    p = lambda x, y: (int(round(x * s)), int(round(y * s)))  # noqa: E731
    if shape == "circle":
        cv2.circle(img, p(cx, cy), int(round(r * s)), c, -1, cv2.LINE_AA, shift=4)
        return
    if shape == "square":
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    elif shape == "triangle":
        pts = [(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)]
    elif shape == "diamond":
        pts = [(cx, cy - r * 1.2), (cx + r, cy), (cx, cy + r * 1.2), (cx - r, cy)]
    else:  # cross
        w = r * 0.38
        pts = [
            (cx - w, cy - r),
            (cx + w, cy - r),
            (cx + w, cy - w),
            (cx + r, cy - w),
            (cx + r, cy + w),
            (cx + w, cy + w),
            (cx + w, cy + r),
            (cx - w, cy + r),
            (cx - w, cy + w),
            (cx - r, cy + w),
            (cx - r, cy - w),
            (cx - w, cy - w),
        ]
    poly = np.array([p(x, y) for x, y in pts], np.int32)
    cv2.fillPoly(img, [poly], c, cv2.LINE_AA, shift=4)


def _place_group(rng, group: Group, region, size: int, taken: list) -> list:
    x0, y0, x1, y1 = (v * size for v in region)
    r = size * (0.07 if group.size == "small" else 0.12) * rng.uniform(0.9, 1.1)
    placed = []
    for _ in range(group.count):
        # The candidate farthest from what is already drawn (gaps measured edge to edge), so
        # that shapes overlap only when the region is really too small for them.
        cands = np.stack(
            [rng.uniform(x0 + r + 1, x1 - r - 1, 256), rng.uniform(y0 + r + 1, y1 - r - 1, 256)], 1
        )
        gap = np.full(len(cands), np.inf)
        for ox, oy, orr in taken:
            gap = np.minimum(gap, np.hypot(cands[:, 0] - ox, cands[:, 1] - oy) - r - orr)
        cx, cy = cands[int(np.argmax(np.minimum(gap, 3.0)))]
        taken.append((cx, cy, r))
        placed.append((cx, cy, r))
    return placed


def render(scene: Scene, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """The scene as an RGB uint8 image (size x size), with mild noise and colour jitter."""
    img = np.empty((size, size, 3), np.uint8)
    img[:] = BACKGROUNDS[scene.background]
    if len(scene.groups) == 1:
        regions = [_REGIONS[scene.place]]
    else:
        regions = [_REGIONS[r] for r in _PAIR_REGIONS[scene.place]]
    taken: list = []
    for group, region in zip(scene.groups, regions):
        for cx, cy, r in _place_group(rng, group, region, size, taken):
            colour = np.clip(np.array(COLOURS[group.colour]) + rng.normal(0, 10, 3), 0, 255)
            _draw(img, group.shape, cx, cy, r, colour)
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


# -- captions ---------------------------------------------------------------------------------

_POSITION_PHRASES = {
    "left": ("on the left", "on the left side", "in the left half of the image", "at the left"),
    "right": ("on the right", "on the right side", "in the right half of the image", "at the right"),
    "top": ("at the top", "near the top", "in the upper half of the picture", "at the top of the image"),
    "bottom": ("at the bottom", "near the bottom", "in the lower half of the picture", "at the bottom of the image"),
    "middle": ("in the middle", "in the center", "in the middle of the image", "in the center of the picture"),
}  # fmt: skip
_RELATION_PHRASES = {
    "left": ("to the left of", "left of", "on the left of"),
    "right": ("to the right of", "right of", "on the right of"),
    "above": ("above", "over", "on top of"),
    "below": ("below", "under", "beneath"),
}
_INVERSE = {"left": "right", "right": "left", "above": "below", "below": "above"}


def _noun_phrase(rng, g: Group) -> str:
    words = []
    if g.count == 1:
        det = "one" if rng.random() < 0.15 else "a"
    else:
        det = NUMBER_WORDS[g.count]
    if rng.random() < 0.75:
        words.append(str(rng.choice(SIZE_WORDS[g.size])))
    if rng.random() < 0.92:
        words.append(g.colour)
    noun = g.shape if g.count == 1 else PLURAL.get(g.shape, g.shape + "s")
    words.append(noun)
    if det == "a" and words[0][0] in "aeiou":
        det = "an"
    return " ".join([det, *words])


def _there(np_text: str) -> str:
    return "there is" if np_text.split()[0] in ("a", "an", "one") else "there are"


def _caption(rng, scene: Scene, template: int) -> str:
    bg = f"on a {scene.background} background"
    a = _noun_phrase(rng, scene.groups[0])
    if len(scene.groups) == 1:
        pos = str(rng.choice(_POSITION_PHRASES[scene.place]))
        options = [
            f"{a} {pos}",
            f"{_there(a)} {a} {pos}",
            f"{a} {pos} {bg}",
            f"an image of {a} {pos}",
            f"{bg}, {a} {pos}",
            f"{a} {bg}",
        ]
    else:
        b = _noun_phrase(rng, scene.groups[1])
        rel = str(rng.choice(_RELATION_PHRASES[scene.place]))
        inv = str(rng.choice(_RELATION_PHRASES[_INVERSE[scene.place]]))
        beside = "next to" if scene.place in ("left", "right") else "and"
        options = [
            f"{a} {rel} {b}",
            f"{b} {inv} {a}",
            f"{_there(a)} {a} {rel} {b}",
            f"{a} and {b} {bg}",
            f"a picture of {b} {inv} {a}",
            f"{a} {beside} {b}",
        ]
    return options[template % len(options)]


def describe(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """`n` different raw captions: capitalised, most with a final full stop."""
    out: list[str] = []
    templates = rng.permutation(6)
    for i in range(n * 10):
        text = _caption(rng, scene, int(templates[i % 6]))
        text = text[0].upper() + text[1:] + ("." if rng.random() < 0.8 else "")
        if text not in out:
            out.append(text)
        if len(out) == n:
            break
    return out


# -- pretext task (our ImageNet stand-in) -----------------------------------------------------


def pretext_batch(
    rng: np.random.Generator, n: int, size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """`n` one-group scenes (uint8 RGB) and their class: shape x colour (NUM_PRETEXT_CLASSES).

    Like ImageNet, one kind of object per image and a label naming it; count, size, place and
    background vary, and nothing about them is labelled.
    """
    images, labels = [], []
    for _ in range(n):
        g = sample_scene(rng).groups[0]
        scene = Scene(str(rng.choice(list(BACKGROUNDS))), (g,), str(rng.choice(POSITIONS)))
        images.append(render(scene, rng, size))
        labels.append(SHAPES.index(g.shape) * len(COLOURS) + list(COLOURS).index(g.colour))
    return np.stack(images), np.asarray(labels, np.int32)


# -- dataset on disk --------------------------------------------------------------------------

DEFAULT_SIZES = {"train": 600, "val": 50, "test": 100}


def write_dataset(
    root: str | Path,
    dataset: str,
    sizes: dict[str, int] | None = None,
    image_size: int = 64,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Writes JPEGs, the Karpathy-format JSON and COCO captions JSON(s) under `root`.

    Args:
      root: output folder (created).
      dataset: "synthetic_coco2014" or "synthetic_flickr30k".
      sizes: images per Karpathy split {"train", "val", "test"} (DEFAULT_SIZES).
      image_size: square image side in pixels.
      seed: generation seed (a different stream per dataset name).

    Returns:
      (the Karpathy JSON's path, the image folder its file names are relative to).
    """
    if dataset not in ("synthetic_coco2014", "synthetic_flickr30k"):
        raise ValueError(f"unknown synthetic caption dataset {dataset!r}")
    coco = dataset == "synthetic_coco2014"
    sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
    root = Path(root)
    rng = np.random.default_rng([seed, 2014 if coco else 30])
    images, coco_files = [], {}
    order = [s for s in ("train", "val", "test") for _ in range(sizes.get(s, 0))]
    for idx, split in enumerate(tqdm(order, desc=f"generating {dataset}", leave=False)):
        scene = sample_scene(rng)
        image_id = (100000 if coco else 1000000) + idx * 7  # sparse ids, as real ones are
        if coco:
            folder = "train2014" if split == "train" else "val2014"
            filename = f"COCO_{folder}_{image_id:012d}.jpg"
        else:
            folder, filename = "flickr30k-images", f"{image_id}.jpg"
        path = root / folder / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        bgr = cv2.cvtColor(render(scene, rng, image_size), cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise OSError(f"could not write {path}")
        raws = describe(scene, rng)
        sentences = [
            {
                "raw": r,
                "tokens": r.lower().rstrip(".").replace(",", "").split(),
                "imgid": idx,
                "sentid": idx * 5 + j,
            }
            for j, r in enumerate(raws)
        ]
        entry = {
            "filename": filename,
            "imgid": idx,
            "split": split,
            "sentences": sentences,
            "sentids": [s["sentid"] for s in sentences],
            "synthetic_scene": scene.to_json(),
        }
        if coco:
            entry.update(filepath=folder, cocoid=image_id)
        images.append(entry)
        ann_file = f"captions_{folder[:-4]}2014.json" if coco else "captions_flickr30k.json"
        coco_files.setdefault(ann_file, {"images": [], "annotations": []})
        coco_files[ann_file]["images"].append(
            {"id": image_id, "file_name": filename, "height": image_size, "width": image_size}
        )
        for s in sentences:
            coco_files[ann_file]["annotations"].append(
                {"image_id": image_id, "id": s["sentid"], "caption": s["raw"]}
            )
    name = "dataset_coco.json" if coco else "dataset_flickr30k.json"
    karpathy = root / name
    karpathy.write_text(json.dumps({"images": images, "dataset": dataset}))
    (root / "annotations").mkdir(exist_ok=True)
    for ann_file, content in coco_files.items():
        content.update(info={"description": f"{dataset} (generated)"}, type="captions", licenses=[])
        (root / "annotations" / ann_file).write_text(json.dumps(content))
    return karpathy, (root if coco else root / "flickr30k-images")
