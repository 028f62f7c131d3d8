"""Caption metrics against hand-computed BLEU / ROUGE-L, and the PTB tokenizer fallback.

coco-caption's BLEU (pycocoevalcap/bleu/bleu_scorer.py), which we reproduce:
  p_n = (sum of clipped n-gram matches + 1e-15) / (sum of n-gram guesses + 1e-9)  (corpus sums)
  BLEU-n = (p_1 * ... * p_n) ** (1/n) * BP,  BP = exp(1 - r/c) if c < r else 1,
  c = total prediction length, r = sum over sentences of the reference length closest to the
  prediction's (ties -> the shorter reference).
"""

import math
import os
import stat

import pytest

from lrcn_tf.evaluation import captioning, ptb_tokenizer
from lrcn_tf.evaluation.captioning import (
    CaptionMetricsError,
    JavaUnavailableWarning,
    score_captions,
)

HAVE_JAVA = captioning.find_java() is not None
TOKENIZERS = ["python"] + (["java"] if HAVE_JAVA else [])
TINY, SMALL = 1e-15, 1e-9


def _p(correct, guess):
    return (correct + TINY) / (guess + SMALL)


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
def test_bleu_one_image_hand_computed(tokenizer):
    # hyp  "the cat sat on a mat"       (6 tokens)
    # ref1 "the cat sat on the mat"     (6)    ref2 "a cat is on the mat" (6)
    # 1-grams: the cat sat on a mat all found (clipped counts: the<=2, a<=1) -> 6/6
    # 2-grams: the-cat, cat-sat, sat-on found; on-a, a-mat not            -> 3/5
    # 3-grams: the-cat-sat, cat-sat-on found; sat-on-a, on-a-mat not       -> 2/4
    # 4-grams: the-cat-sat-on found; cat-sat-on-a, sat-on-a-mat not        -> 1/3
    # c = 6, closest r = 6 -> BP = 1 (up to the smoothing constants).
    refs = {1: ["The cat sat on the mat.", "A cat is on the mat."]}
    got = score_captions(refs, {1: "The cat sat on a mat."}, tokenizer=tokenizer)
    p = [_p(6, 6), _p(3, 5), _p(2, 4), _p(1, 3)]
    bp = math.exp(1 - (6 + SMALL) / (6 + TINY))  # coco-caption's smoothed ratio, ~1 - 2e-10
    want = [100 * math.prod(p[:n]) ** (1 / n) * bp for n in (1, 2, 3, 4)]
    assert [got[k] for k in ("bleu1", "bleu2", "bleu3", "bleu4")] == pytest.approx(want, abs=1e-6)
    # The plain textbook values: 100, sqrt(.6), .3**(1/3), .1**(1/4).
    assert got["bleu2"] == pytest.approx(77.459667, abs=1e-5)
    assert got["bleu3"] == pytest.approx(66.943295, abs=1e-5)
    assert got["bleu4"] == pytest.approx(56.234133, abs=1e-5)


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
def test_bleu_corpus_level_with_brevity_penalty(tokenizer):
    # Image a: hyp "a dog runs fast" (4); refs of length 3 and 7 -> closest r = 3.
    #   1-grams 4/4; 2-grams a-dog, dog-runs of 3; 3-grams a-dog-runs of 2; 4-grams 0 of 1.
    # Image b: hyp "a red car" (3); refs of length 7 and 6 -> closest r = 6.
    #   1-grams 3/3; 2-grams 2/2; 3-grams 1/1; 4-grams: no guesses.
    # Corpus: matches [7, 4, 2, 0] of guesses [7, 5, 3, 1]; c = 7, r = 9 -> BP = exp(1 - 9/7).
    # BLEU-4 is not 0: the 1e-15 smoothing leaves (0.8 * 2/3 * 1e-15) ** 0.25 * BP ~ 1.1e-4.
    refs = {
        "a": ["A dog runs.", "The big dog runs very fast today!"],
        "b": ["A red car parked on a street.", "One red car is parked outside"],
    }
    got = score_captions(refs, {"a": "a dog runs fast", "b": "A red car."}, tokenizer=tokenizer)
    p = [_p(7, 7), _p(4, 5), _p(2, 3), _p(0, 1)]
    bp = math.exp(1 - (9 + SMALL) / (7 + TINY))
    want = [100 * math.prod(p[:n]) ** (1 / n) * bp for n in (1, 2, 3, 4)]
    assert [got[k] for k in ("bleu1", "bleu2", "bleu3", "bleu4")] == pytest.approx(want, abs=1e-6)
    assert got["bleu1"] == pytest.approx(100 * math.exp(-2 / 7), abs=1e-6)  # 75.147729
    assert got["bleu4"] == pytest.approx(0.0114200, abs=1e-6)


def test_closest_reference_length_prefers_the_shorter_on_a_tie():
    # hyp 4 tokens, refs of 3 and 5: both 1 away -> r = 3, c > r, no penalty: BLEU-1 = 100.
    # (With r = 5 it would be 100 * exp(1 - 5/4) = 77.88.)
    refs = {0: ["a man rides", "a man rides a horse"]}
    got = score_captions(refs, {0: "a man rides horse"}, tokenizer="python")
    assert got["bleu1"] == pytest.approx(100.0, abs=1e-6)


def test_rouge_l_hand_computed_and_cider_orders_models():
    # ROUGE-L: hyp "a man rides a horse" (5), ref "a man rides on a horse" (6): LCS = 5,
    # P = 1, R = 5/6, F = (1 + 1.2^2) P R / (R + 1.2^2 P) = 0.894428...
    refs = {0: ["A man rides on a horse."], 1: ["Two dogs play in the snow."]}
    good = {0: "a man rides a horse", 1: "two dogs play in snow"}
    got = score_captions(refs, good, metrics=("rouge_l", "cider"), tokenizer="python")
    assert set(got) == {"rouge_l", "cider"}
    f0 = (1 + 1.44) * (5 / 6) / (5 / 6 + 1.44)
    f1 = (1 + 1.44) * 1 * (5 / 6) / (5 / 6 + 1.44)  # LCS 5 of hyp 5, ref 6
    assert got["rouge_l"] == pytest.approx(100 * (f0 + f1) / 2, abs=1e-6)
    swapped = {0: good[1], 1: good[0]}
    bad = score_captions(refs, swapped, metrics=("cider",), tokenizer="python")
    assert got["cider"] > 100 and bad["cider"] == pytest.approx(0.0, abs=1e-9)


PTB_EXAMPLES = {
    "A man's hat is on the table.": "a man 's hat is on the table",
    "I don't know, can't you see? We won't go!": "i do n't know ca n't you see we wo n't go",
    "They're here; we've seen it: he'd said we'll come.": "they 're here we 've seen it he 'd said we 'll come",
    'A black-and-white dog runs (quickly) through "tall" grass...': "a black-and-white dog runs -lrb- quickly -rrb- through tall grass",
    "The dogs' bowls cost $3.50, about 1,000 in all (50%).": "the dogs bowls cost $ 3.50 about 1,000 in all -lrb- 50 % -rrb-",
    "A man cannot go -- he's gonna stay at 10:30 a.m. on St. Mark St.": "a man can not go he 's gon na stay at 10:30 a.m. on st. mark st.",
    "A 3-year-old boy in a T-shirt. It's 5.": "a 3-year-old boy in a t-shirt it 's 5",
    "don\u2019t \u201cquote\u201d me\u2014ok\u2026": "do n't quote me ok",
    "A horse,and a dog.": "a horse and a dog",
    "": "",
}


def test_python_tokenizer_examples():
    for text, want in PTB_EXAMPLES.items():
        assert ptb_tokenizer.tokenize(text) == want, text


TYPICAL = list(PTB_EXAMPLES) + [
    "A man riding a wave on top of a surfboard.",
    "Two dogs playing with a frisbee in the grass",
    "A woman's hand holding a cell phone.",
    "The kitchen has stainless steel appliances, and a white counter-top.",
    "An old man sits on a park bench reading a newspaper .",
    "There's a cat sleeping on the couch.",
    "A child's birthday cake with candles on it!",
    "Is this a giraffe or a zebra?",
    "A group of people (some wearing hats) walking down the street.",
    "The bus is driving down the road - it is yellow.",
    'A sign reads: "No Dogs Allowed".',
    "Man in a blue shirt doesn't look happy.",
    "The players' uniforms are red and white.",
    "SEVERAL PEOPLE ON SKIS AT THE TOP OF A MOUNTAIN.",
    "a bathroom with a toilet , sink and shower .",
    "A little girl, about 5 years old, is eating ice-cream.",
    "The boy is wearing a helmet & knee pads.",
    "People are waiting for the 5:30 bus at Union St.",
    "A brown horse grazing in a field -- with mountains behind.",
    "Someone's laptop is on the desk next to a mug.",
    "He's wearing sunglasses and a baseball cap.",
    "A red double-decker bus drives past Big Ben.",
    "Mr. Smith and J. Doe eat in the U.S. in the '90s; rock 'n' roll.",
]


@pytest.mark.skipif(not HAVE_JAVA, reason="needs java")
def test_python_tokenizer_agrees_with_java_on_typical_captions():
    java = captioning.java_ptb_tokenize(TYPICAL)  # one JVM for all
    python = [ptb_tokenizer.tokenize(t) for t in TYPICAL]
    diffs = [(t, j, p) for t, j, p in zip(TYPICAL, java, python) if j != p]
    assert not diffs
    assert java[: len(PTB_EXAMPLES)] == list(PTB_EXAMPLES.values())


def _no_java(monkeypatch, tmp_path):
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert captioning.find_java() is None


def test_missing_java_falls_back_with_a_warning(monkeypatch, tmp_path):
    refs = {1: ["The cat sat on the mat.", "A cat is on the mat."], 2: ["Don't stop."]}
    preds = {1: "The cat's on a mat!", 2: "do not stop"}
    want = score_captions(refs, preds, tokenizer="java") if HAVE_JAVA else None
    _no_java(monkeypatch, tmp_path)
    with pytest.warns(JavaUnavailableWarning, match="not on the PATH"):
        got = score_captions(refs, preds)
    if want is not None:
        assert got == pytest.approx(want, abs=1e-9)
    with pytest.raises(CaptionMetricsError, match="METEOR needs `java`"):
        score_captions(refs, preds, metrics=("bleu", "meteor"))
    with pytest.raises(CaptionMetricsError, match="needs `java`"):
        score_captions(refs, preds, tokenizer="java")


def test_broken_java_falls_back_with_the_reason(monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "java"
    fake.write_text("#!/bin/sh\necho 'no Java runtime present' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + "/usr/bin:/bin")
    with pytest.warns(JavaUnavailableWarning, match="no Java runtime present"):
        got = score_captions({0: ["a dog"]}, {0: "a dog"})
    assert got["bleu1"] == pytest.approx(100.0, abs=1e-6)


@pytest.mark.skipif(not HAVE_JAVA, reason="needs java")
def test_java_keeps_one_line_per_caption():
    got = captioning.java_ptb_tokenize(["a dog\nruns", "", "x\r\ny\u2028z", "end."])
    assert got == ["a dog runs", "", "x y z", "end"]


def test_reference_ids_without_prediction_are_ignored_with_a_warning():
    refs = {1: ["a dog runs"], 2: ["a cat sleeps"]}
    with pytest.warns(UserWarning, match="1 reference id"):
        got = score_captions(refs, {1: "a dog runs"}, tokenizer="python")
    assert got["bleu1"] == pytest.approx(100.0, abs=1e-6)


@pytest.mark.parametrize(
    "refs, preds, metrics, match",
    [
        ({1: ["a"]}, {2: "a"}, ("bleu",), "have no references"),
        ({1: []}, {1: "a"}, ("bleu",), "empty list"),
        ({1: "a dog"}, {1: "a"}, ("bleu",), "must be a list of strings"),
        ({1: ["a dog", "  "]}, {1: "a"}, ("bleu",), "reference 1 of id 1"),
        ({1: ["a dog"]}, {1: ["a dog"]}, ("bleu",), "expected one string"),
        ({1: ["a dog"]}, {}, ("bleu",), "no predictions"),
        ({1: ["a dog"]}, {1: "a"}, ("bleu", "spice"), "spice"),
        ([["a dog"]], {1: "a"}, ("bleu",), "must be dicts"),
    ],
)
def test_bad_input_is_rejected(refs, preds, metrics, match):
    with pytest.raises(CaptionMetricsError, match=match):
        score_captions(refs, preds, metrics=metrics, tokenizer="python")


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_JAVA, reason="needs java")
def test_meteor_runs_through_java():
    # Slow: METEOR 1.5 loads its paraphrase table (~10 s on 2 cores).
    refs = {0: ["A man rides a horse on the beach."], 1: ["Two dogs play in the snow."]}
    good = score_captions(refs, {0: "a man rides a horse", 1: "two dogs play"}, ("meteor",))
    bad = score_captions(refs, {0: "two dogs play", 1: "a man rides a horse"}, ("meteor",))
    assert set(good) == {"meteor"}
    assert 30 < good["meteor"] <= 100 and 0 <= bad["meteor"] < good["meteor"]
