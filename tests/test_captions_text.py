import numpy as np
import pytest

from lrcn_tf.data import text


@pytest.mark.parametrize(
    "raw, tokens",
    [
        ("A man, riding a horse.", ["a", "man", ",", "riding", "a", "horse"]),
        ("Two dogs play", ["two", "dogs", "play"]),
        ("  The dog's ball.  ", ["the", "dog", "'", "s", "ball"]),
        ("Wait... what.", ["wait", "...", "what"]),  # only one final "." token is dropped
        ("end .", ["end", "."]),  # a final " ." is not "." (the original keeps it)
        ("end.", ["end"]),
        ("", []),
    ],
)
def test_tokenize_follows_the_original_rule(raw, tokens):
    assert text.tokenize(raw) == tokens


def test_vocabulary_keeps_frequent_words_by_count_then_alphabet():
    sents = [["b", "a"]] * 5 + [["c"]] * 7 + [["rare"]] * 4
    vocab = text.Vocabulary.build(sents, min_count=5)
    assert vocab.words == ["<EOS>", "<unk>", "c", "a", "b"]
    assert vocab.encode(["c", "rare", "b"]) == [2, text.UNK, 4]
    assert vocab.decode([2, 3, text.EOS, 4]) == "c a"
    assert len(vocab) == 5


def test_vocabulary_file_round_trip_and_errors(tmp_path):
    vocab = text.Vocabulary(["x", "y"])
    vocab.save(tmp_path / "v.txt")
    assert text.Vocabulary.load(tmp_path / "v.txt").words == vocab.words
    (tmp_path / "bad.txt").write_text("x\ny\n")
    with pytest.raises(ValueError, match=r"bad.txt:1"):
        text.Vocabulary.load(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="cannot read"):
        text.Vocabulary.load(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="duplicate"):
        text.Vocabulary(["x", "x"])


def test_time_steps_short_caption():
    inp, tgt = text.time_steps([5, 6, 7], max_words=6)
    np.testing.assert_array_equal(inp, [0, 5, 6, 7, 0, 0])
    np.testing.assert_array_equal(tgt, [5, 6, 7, 0, -1, -1])


@pytest.mark.parametrize("n", [19, 20, 25])
def test_time_steps_long_caption_is_truncated_like_the_original(n):
    ids = list(range(2, 2 + n))
    inp, tgt = text.time_steps(ids)
    assert inp.shape == tgt.shape == (20,)
    np.testing.assert_array_equal(inp, [0] + ids[:19])
    if n < 20:
        np.testing.assert_array_equal(tgt, ids + [0])
    else:  # 20 words or more: no end-of-sentence target, as the original
        np.testing.assert_array_equal(tgt, ids[:20])


@pytest.mark.parametrize("n", [0, 1, 7, 19, 20, 23])
def test_tensorflow_time_steps_match_numpy(n):
    from lrcn_tf.data.captions.pipeline import time_steps_tf

    ids = list(range(2, 2 + n))
    a = text.time_steps(ids)
    b = time_steps_tf(np.array(ids, np.int64))
    np.testing.assert_array_equal(a[0], b[0].numpy())
    np.testing.assert_array_equal(a[1], b[1].numpy())
