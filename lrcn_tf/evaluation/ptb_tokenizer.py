"""A pure-Python imitation of coco-caption's PTB tokenisation, for machines without Java.

coco-caption runs Stanford CoreNLP 3.4.1's `PTBTokenizer -preserveLines -lowerCase` and then
drops the punctuation tokens in `PUNCTUATIONS`. This module reproduces what that pipeline
outputs for the captions people and models write: lower-casing; `.`, `,`, `;`, `:`, `?`, `!`,
quotes and dashes split off and dropped; clitics split off (`don't` -> `do n't`,
`man's` -> `man 's`, `they're` -> `they 're`, `cannot` -> `can not`, `gonna` -> `gon na`);
hyphenated words, numbers (`3.5`, `1,000`, `10:30`, `3/4`) and abbreviations (`mr.`, `st.`,
`u.s.`) kept whole; brackets become `-lrb-` / `-rrb-` ... (coco-caption keeps those: its
punctuation list has them in upper case, and the tokenizer has already lower-cased them).

It is tested against the Java tokenizer on typical captions (tests/test_captioning_metrics.py)
but is not a full port of the JFlex grammar: rare constructions (emoticons, SGML tags, URLs,
`no.1`, `a+b`, a period inside a word) can tokenise differently.
"""

from __future__ import annotations

import re

# Exactly coco-caption's list (pycocoevalcap/tokenizer/ptbtokenizer.py).
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
     "...", ";"]
)  # fmt: skip

# Characters Java's PTBTokenizer normalises before tokenising.
_NORMALISE = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
        "\u2013": " -- ", "\u2014": " -- ", "\u2026": " ... ", "\u00a0": " ",
    }
)  # fmt: skip
# Always tokens of their own, wherever they occur.
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_SPLIT_ALWAYS = re.compile(r'([()\[\]{}"])')
# Whole words the tokenizer splits (or keeps) specially.
_SPECIAL = {
    "cannot": ["can", "not"],
    "gonna": ["gon", "na"],
    "gotta": ["got", "ta"],
    "wanna": ["wan", "na"],
    "gimme": ["gim", "me"],
    "lemme": ["lem", "me"],
    "gotcha": ["got", "cha"],
    "'tis": ["'t", "is"],
    "'twas": ["'t", "was"],
    "'n'": ["'n'"],
}
# Abbreviations that keep their period (a subset of PTBLexer's lists, the ones captions use).
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof rev gen gov sen rep lt col capt sgt mt ft ave blvd rd vs etc "
    "inc co corp ltd bros jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_CLITIC = re.compile(r"^(.+?)(n't|'s|'m|'d|'re|'ve|'ll)$", re.IGNORECASE)
_LETTER_DOTS = re.compile(r"^(?:[a-z]\.)+$", re.IGNORECASE)
_TRAILING = re.compile(r"(\.{2,}|[?!]{2,}|[.?!,;:'%*]|--|-)$")


def remove_punctuation(line: str) -> str:
    """coco-caption's punctuation filter on one line of space-separated tokens."""
    return " ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS)


def tokenize(sentence: str) -> str:
    """PTB-tokenises one caption and drops punctuation, as coco-caption's pipeline does.

    Args:
      sentence: raw caption text.

    Returns:
      Lower-cased tokens joined by single spaces.
    """
    return remove_punctuation(" ".join(ptb_tokens(sentence)))


def ptb_tokens(sentence: str) -> list[str]:
    """The tokens (before punctuation removal) PTBTokenizer -lowerCase gives for `sentence`."""
    text = _SPLIT_ALWAYS.sub(r" \1 ", sentence.translate(_NORMALISE))
    chunks = text.split()
    tokens: list[str] = []
    for i, chunk in enumerate(chunks):
        if chunk in _BRACKETS:
            tokens.append(_BRACKETS[chunk])
        elif chunk == '"':
            tokens.append("``")  # or '' when closing; dropped as punctuation either way
        else:
            tokens += _chunk_tokens(chunk, last=i == len(chunks) - 1)
    return [t.lower() for t in tokens]


def _chunk_tokens(chunk: str, last: bool) -> list[str]:
    """Tokens of one whitespace-free chunk: leading marks, the word(s), trailing marks."""
    head, tail = [], []
    while chunk and chunk.lower() not in _SPECIAL:
        mark = _leading_mark(chunk)
        if mark is None:
            break
        head.append(mark)
        chunk = chunk[len(mark) :]
    while chunk and chunk.lower() not in _SPECIAL:
        m = _TRAILING.search(chunk)
        if m is None:
            break
        mark = m.group()
        # The period is the line's last character only if nothing was peeled after it.
        if mark == "." and _keeps_period(chunk[:-1], at_end=last and not tail):
            break
        tail.insert(0, "..." if mark.startswith("..") else mark)
        chunk = chunk[: m.start()]
    return head + _word_tokens(chunk) + tail


def _leading_mark(chunk: str) -> str | None:
    """The punctuation PTBTokenizer splits off the start of `chunk`, or None."""
    if chunk.startswith("--"):
        return "--"
    first, rest = chunk[0], chunk[1:]
    if first == "-" and not rest[:1].isdigit():  # "-5" is a number
        return "-"
    if (first == "#" and rest[:1].isdigit()) or first in "$`":  # "#1" splits, "#tag" does not
        return first
    if first == "'" and not _KEEPS_LEADING_QUOTE.match(chunk):
        return "'"
    return None


# A leading apostrophe that belongs to the word: '90s, 'em, 'cause, 'n', 'tis, a lone 's.
_KEEPS_LEADING_QUOTE = re.compile(
    r"^'(?:\d0s|em|cause|n'|tis|twas|s|m|d|re|ve|ll)(?![\w'])", re.IGNORECASE
)


def _keeps_period(word: str, at_end: bool) -> bool:
    """Whether `word` + "." is one token (an abbreviation) for PTBTokenizer."""
    w = word.lower()
    if w in _ABBREVIATIONS or (len(w) > 2 and _LETTER_DOTS.match(w + ".")):
        return True
    # A single letter with a period (an initial, "plan b.") stays whole inside a line; at the
    # end of the line the period is taken as a full stop.
    return len(w) == 1 and w.isalpha() and not at_end


def _word_tokens(word: str) -> list[str]:
    """Splits a word's clitics and word-internal commas (kept inside numbers: 1,000)."""
    if not word:
        return []
    if word.lower() in _SPECIAL:
        return list(_SPECIAL[word.lower()])
    parts = re.split(r"((?<!\d),|,(?!\d))", word)
    if len(parts) > 1:
        return [t for p in parts for t in ([p] if p == "," else _word_tokens(p))]
    if word.lower().startswith("y'") and len(word) > 2:  # y'all -> y' all
        return ["y'"] + _word_tokens(word[2:])
    m = _CLITIC.match(word)
    if m:
        return _word_tokens(m.group(1)) + [m.group(2)]
    return [word]
