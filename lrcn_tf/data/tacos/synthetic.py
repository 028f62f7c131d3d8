"""`synthetic_tacos`: a small generated stand-in for TACoS multilevel, in its JSON-lines format.

Each segment has a true semantic tuple (activity, tool, object, source, target) drawn from
kitchen "frames" (an activity decides which slots are filled and with what: you peel food with
a peeler, you take dishes out of the cupboard). A simulated CRF then reports, independently
for every slot, a noisy probability distribution over that slot's labels:

    score_k ~ N(0, 1) for every label k;  score[true] += TRUE_BONUS;  score[twin(true)] += TWIN_BONUS
    p = softmax(score)

Every label has a "confusable twin" (cut/peel, knife/peeler, carrot/cucumber, drawer/cupboard,
...), which gets part of the evidence, so the MAP label is wrong for about a quarter of the
filled slots and, when it is wrong, the true label is usually the runner-up with substantial
mass. Because slots are confused independently while the true tuples are strongly structured
(a "peel" with a knife and a cutting board was probably a "cut"), the full distributions carry
information that the MAP labels lose: how sure the CRF was about each slot, and which label
came second. That is the property Table 5's CRF prob vs CRF max comparison measures. The
parameters below were chosen from first principles (MAP accuracy ~3/4 per slot, errors mostly
to the twin, measured on the CRF simulation alone) and are never tuned on model scores.

Three to five reference sentences per segment come from a small grammar with varied subjects,
verb synonyms, articles, optional phrases, word order, capitals and final periods, e.g. "the
person takes out a carrot from the fridge", "She gets the carrot out of the refrigerator.".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lrcn_tf.runtime import write_text_atomic

SLOTS = ("activity", "tool", "object", "source", "target")
NULL = "NULL"

FOOD = ("carrot", "cucumber", "potato", "onion")
DISHES = ("plate", "bowl")
CONTAINERS = ("drawer", "cupboard", "fridge", "oven")

LABELS = {
    "activity": ("take out", "put", "cut", "peel", "wash", "dry", "open", "close"),
    "tool": (NULL, "knife", "peeler", "sponge", "towel"),
    "object": FOOD + DISHES + CONTAINERS,
    "source": (NULL, "drawer", "cupboard", "fridge", "shelf"),
    "target": (NULL, "cutting board", "plate", "bowl", "sink", "counter"),
}

# The label a CRF most easily mistakes each label for (NULL has none: errors there are random).
TWINS = {
    "activity": {
        "take out": "put",
        "put": "take out",
        "cut": "peel",
        "peel": "cut",
        "wash": "dry",
        "dry": "wash",
        "open": "close",
        "close": "open",
    },
    "tool": {"knife": "peeler", "peeler": "knife", "sponge": "towel", "towel": "sponge"},
    "object": {
        "carrot": "cucumber",
        "cucumber": "carrot",
        "potato": "onion",
        "onion": "potato",
        "plate": "bowl",
        "bowl": "plate",
        "drawer": "cupboard",
        "cupboard": "drawer",
        "fridge": "oven",
        "oven": "fridge",
    },
    "source": {"drawer": "cupboard", "cupboard": "drawer", "fridge": "shelf", "shelf": "fridge"},
    "target": {
        "cutting board": "counter",
        "counter": "cutting board",
        "sink": "counter",
        "plate": "bowl",
        "bowl": "plate",
    },
}

# How often each activity happens (TACoS is dominated by taking things out and putting them down).
ACTIVITY_WEIGHTS = {
    "take out": 3.0,
    "put": 3.0,
    "cut": 2.0,
    "peel": 1.0,
    "wash": 2.0,
    "dry": 1.0,
    "open": 1.5,
    "close": 1.5,
}

TRUE_BONUS = 3.0  # evidence for the true label, in units of the score noise's std
TWIN_BONUS = 2.0  # evidence that leaks to the true label's twin

SPLIT_VIDEOS = {"train": 96, "val": 12, "test": 24}
SEGMENTS_PER_VIDEO = (12, 22)  # uniform in [low, high)
SENTENCES_PER_SEGMENT = (3, 6)  # uniform in [low, high): 3 to 5
DEFAULT_SEED = 2015


def sample_tuple(rng: np.random.Generator) -> dict[str, str]:
    """One true semantic tuple from the kitchen frames."""
    acts = list(ACTIVITY_WEIGHTS)
    weights = np.array([ACTIVITY_WEIGHTS[a] for a in acts])
    act = acts[rng.choice(len(acts), p=weights / weights.sum())]
    t = {"activity": act, "tool": NULL, "object": NULL, "source": NULL, "target": NULL}

    def pick(options):
        return options[rng.integers(len(options))]

    if act == "take out":
        t["object"] = pick(FOOD + DISHES)
        t["source"] = pick(("fridge", "shelf") if t["object"] in FOOD else ("cupboard", "drawer"))
    elif act == "put":
        t["object"] = pick(FOOD + DISHES)
        t["target"] = pick(
            ("cutting board", "plate", "bowl") if t["object"] in FOOD else ("counter",)
        )
    elif act == "cut":
        t.update(object=pick(FOOD), tool="knife", target="cutting board")
    elif act == "peel":
        t.update(object=pick(FOOD), tool="peeler")
    elif act == "wash":
        t["object"] = pick(FOOD + DISHES)
        t.update(tool="sponge" if t["object"] in DISHES else NULL, target="sink")
    elif act == "dry":
        t.update(object=pick(DISHES), tool="towel")
    else:  # open, close
        t["object"] = pick(CONTAINERS)
    return t


def simulate_crf(truth: dict[str, str], rng: np.random.Generator) -> dict[str, list[float]]:
    """Noisy per-slot distributions for one true tuple (see the module docstring)."""
    out = {}
    for slot in SLOTS:
        labels = LABELS[slot]
        score = rng.normal(size=len(labels))
        score[labels.index(truth[slot])] += TRUE_BONUS
        twin = TWINS[slot].get(truth[slot])
        if twin is not None:
            score[labels.index(twin)] += TWIN_BONUS
        p = np.exp(score - score.max())
        p /= p.sum()
        out[slot] = [round(float(x), 6) for x in p]
    return out


_SUBJECTS = ("the person", "the person", "the person", "he", "she", "the man", "the woman")
_OBJECT_WORDS = {"fridge": ("fridge", "refrigerator"), "cupboard": ("cupboard", "cabinet")}


def _word(rng, label: str) -> str:
    options = _OBJECT_WORDS.get(label, (label,))
    return options[rng.integers(len(options))]


def _article(rng, definite_only: bool = False) -> str:
    return "the" if definite_only or rng.random() < 0.6 else "a"


def sentence(t: dict[str, str], rng: np.random.Generator) -> str:
    """One reference sentence for the tuple `t`, from the grammar."""

    def pick(options):
        return options[rng.integers(len(options))]

    subj = pick(_SUBJECTS)
    obj = _word(rng, t["object"])
    act = t["activity"]
    if act == "take out":
        src = _word(rng, t["source"])
        s = pick(
            (
                f"{subj} takes out {_article(rng)} {obj} from the {src}",
                f"{subj} takes {_article(rng)} {obj} out of the {src}",
                f"{subj} gets {_article(rng)} {obj} from the {src}",
                f"from the {src} {subj} takes out {_article(rng)} {obj}",
            )
        )
    elif act == "put":
        tgt = _word(rng, t["target"])
        verb = pick(("puts", "places", "sets"))
        prep = pick(("on", "onto")) if tgt not in ("bowl",) else "in"
        s = f"{subj} {verb} the {obj} {prep} the {tgt}"
    elif act == "cut":
        verb = pick(("cuts", "slices", "chops"))
        s = f"{subj} {verb} the {obj}"
        s += pick(("", " with a knife", " with the knife"))
        s += pick(("", " on the cutting board"))
    elif act == "peel":
        s = pick(
            (
                f"{subj} peels the {obj}" + pick(("", " with a peeler")),
                f"{subj} uses a peeler to peel the {obj}",
                f"{subj} removes the skin of the {obj}",
            )
        )
    elif act == "wash":
        verb = pick(("washes", "rinses", "cleans"))
        s = f"{subj} {verb} the {obj}"
        if t["tool"] == "sponge":
            s += pick(("", " with a sponge"))
        s += pick((" in the sink", " under the tap", ""))
    elif act == "dry":
        s = pick(
            (
                f"{subj} dries the {obj}" + pick(("", " with a towel")),
                f"{subj} wipes the {obj} dry",
                f"{subj} dries off the {obj} with the towel",
            )
        )
    elif act == "open":
        s = pick((f"{subj} opens the {obj}", f"{subj} pulls open the {obj}"))
    else:
        s = pick((f"{subj} closes the {obj}", f"{subj} shuts the {obj}"))
    if rng.random() < 0.3:
        s = s[0].upper() + s[1:]
    if rng.random() < 0.5:
        s += "."
    return s


def generate(path: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Writes the synthetic dataset as one JSON-lines file (docs/tacos_format.md), atomically.

    Args:
      path: the .jsonl file to write.
      seed: the generator's seed; the same seed writes the same file.

    Returns:
      `path`.
    """
    rng = np.random.default_rng(seed)
    header = {
        "format": "tacos_multilevel",
        "version": 1,
        "labels": {s: list(LABELS[s]) for s in SLOTS},
    }
    lines = [json.dumps(header)]
    video_no = 0
    for split, num_videos in SPLIT_VIDEOS.items():
        for _ in range(num_videos):
            video_no += 1
            video = f"s{video_no:03d}-d{rng.integers(1, 60):02d}"
            frame = int(rng.integers(0, 200))
            for _ in range(int(rng.integers(*SEGMENTS_PER_VIDEO))):
                length = int(rng.integers(60, 600))
                truth = sample_tuple(rng)
                n = int(rng.integers(*SENTENCES_PER_SEGMENT))
                seg = {
                    "video": video,
                    "start": frame,
                    "end": frame + length,
                    "split": split,
                    "crf": simulate_crf(truth, rng),
                    "sentences": [sentence(truth, rng) for _ in range(n)],
                    "gold": truth,
                }
                lines.append(json.dumps(seg))
                frame += length + int(rng.integers(0, 100))
    write_text_atomic(path, "\n".join(lines) + "\n")
    return Path(path)
