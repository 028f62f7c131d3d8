"""Caption text: the original LRCN tokenisation, vocabulary and time-step layout.

Rules of the authors' `examples/coco_caption/coco_to_hdf5_data.py` (reference/original_recipes.md):

- tokenise: split on runs of non-word characters (`re.split(r"(\\W+)")`, the runs themselves
  kept as tokens when they are not only white space, e.g. "," or "'"), lower-case, and drop a
  final token that is exactly "." (a final " ." keeps its space there, so it stays, as ".");
  tokens are stripped of white space (the original strips them when it counts and encodes);
- vocabulary: every word seen at least 5 times in the *training* captions, sorted by count
  (descending) then alphabetically, after an unknown-word token;
- ids: 0 is end-of-sentence and is also the begin token fed at t=0; 1 is `<unk>`; words
  follow from 2 (the original stored `<unk>` first in vocabulary.txt and added 1 to every
  id so that 0 was free for end-of-sentence: the same numbering);
- time steps: captions are truncated to 20 words; input = [EOS] + words, target = words +
  [EOS], both 20 steps, padding ignored by the loss. A caption of 20 words or more keeps its
  first 20 words as targets and has no end-of-sentence target, as in the original.

Shared by image description (Tables 2-4) and video description (Table 5).
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

EOS = 0  # end of sentence, also the begin token fed at t=0
UNK = 1
EOS_TOKEN = "<EOS>"
UNK_TOKEN = "<unk>"
MIN_COUNT = 5
MAX_WORDS = 20
IGNORE = -1  # target id of padded time steps (Caffe's ignore_label)

_SPLIT = re.compile(r"(\W+)")


def tokenize(sentence: str) -> list[str]:
    """The original tokeniser (`split_sentence` of coco_to_hdf5_data.py): non-word runs split
    (and kept), lower case; a final token that is exactly "." is dropped. The original split
    tokens with their surrounding spaces and stripped them only when it counted and encoded
    them: so a final " ." (space, full stop) is not exactly "." and is kept, as ".".

    >>> tokenize("A man, riding a horse.")
    ['a', 'man', ',', 'riding', 'a', 'horse']
    >>> tokenize("A man riding a horse .")
    ['a', 'man', 'riding', 'a', 'horse', '.']
    """
    raw = [t.lower() for t in _SPLIT.split(sentence.strip()) if t.strip()]
    if raw and raw[-1] == ".":
        raw = raw[:-1]
    return [t.strip() for t in raw]


class Vocabulary:
    """Word <-> id mapping with EOS = 0 and `<unk>` = 1.

    Args:
      words: the words of ids 2, 3, ... in order (no EOS or `<unk>`).
    """

    def __init__(self, words: Sequence[str]):
        self.words = [EOS_TOKEN, UNK_TOKEN, *words]
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            dup = [w for w, n in collections.Counter(self.words).items() if n > 1]
            raise ValueError(f"vocabulary has duplicate words: {dup[:5]}")

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_count: int = MIN_COUNT) -> Vocabulary:
        """The original rule: words seen >= `min_count` times, by count then alphabetically.

        Args:
          sentences: tokenised training captions.
          min_count: the least count that keeps a word (5 in the original).
        """
        counts = collections.Counter(w for s in sentences for w in s)
        kept = sorted(
            (w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls([w for w in kept if w not in (EOS_TOKEN, UNK_TOKEN)])

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token strings -> ids (`<unk>` for words outside the vocabulary)."""
        return [self.index.get(t, UNK) for t in tokens]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> a caption string, stopping at the first EOS."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            out.append(self.words[i] if 0 <= i < len(self.words) else UNK_TOKEN)
        return " ".join(out)

    def save(self, path: str | Path) -> None:
        """One word a line, line number = id (line 0 is `<EOS>`, line 1 `<unk>`)."""
        Path(path).write_text("\n".join(self.words) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Reads a file written by `save`; raises ValueError naming the file if it is not one."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ValueError(f"{path}: cannot read the vocabulary: {e.strerror or e}") from None
        if lines[:2] != [EOS_TOKEN, UNK_TOKEN]:
            raise ValueError(
                f"{path}:1: a vocabulary file starts with {EOS_TOKEN!r} and {UNK_TOKEN!r} lines"
            )
        for n, w in enumerate(lines, start=1):
            if not w or w != w.strip():
                raise ValueError(f"{path}:{n}: empty or white-space-padded word {w!r}")
        return cls(lines[2:])


def time_steps(ids: Sequence[int], max_words: int = MAX_WORDS) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) of `max_words` steps for one caption of word ids (no EOS in `ids`).

    Returns:
      input ids (EOS first, then the words, padded with EOS) and target ids (the words, then
      EOS, padded with IGNORE), both int32 of length `max_words`.
    """
    ids = list(ids)[:max_words]
    inp = np.full(max_words, EOS, np.int32)
    tgt = np.full(max_words, IGNORE, np.int32)
    inp[1 : len(ids) + 1] = ids[: max_words - 1]
    tgt[: len(ids)] = ids
    if len(ids) < max_words:
        tgt[len(ids)] = EOS
    return inp, tgt
