"""Caption metrics as coco-caption computes them: BLEU-1..4, METEOR, CIDEr, ROUGE-L.

`score_captions` tokenises every reference and prediction with the Stanford PTBTokenizer
(Java, the jar that ships with pycocoevalcap, one JVM for all captions of a call), drops the
punctuation tokens coco-caption drops, and hands the token strings to pycocoevalcap's scorers.
BLEU is corpus-level with the reference length closest to each prediction (coco-caption's
`option="closest"`), including its tiny smoothing constants, so numbers match coco-caption's.

Without `java` on the PATH the tokenisation falls back to a pure-Python imitation
(`lrcn_tf.evaluation.ptb_tokenizer`) with a warning: it agrees with the Java tokenizer on
typical captions (tested) but not on every oddity. METEOR runs only in Java: asking for it
without Java raises `CaptionMetricsError` (we refuse rather than silently drop a metric that
was asked for). SPICE is left out: it downloads Stanford CoreNLP models on first use.

All metrics are returned in percent (x100), the unit the paper uses for BLEU; CIDEr x100 is
the usual way it is reported as well.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path

from lrcn_tf.errors import UserError
from lrcn_tf.evaluation import ptb_tokenizer

METRICS = ("bleu", "meteor", "cider", "rouge_l")
BLEU_KEYS = ("bleu1", "bleu2", "bleu3", "bleu4")
TOKENIZERS = ("auto", "java", "python")

# What a line break is for Java's -preserveLines (and for str.splitlines): replaced by spaces
# so that one caption stays one line and lines map back to captions.
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


class CaptionMetricsError(UserError):
    """Bad input to the caption metrics, or a metric that cannot run here (e.g. no Java)."""


class JavaUnavailableWarning(RuntimeWarning):
    """Java is missing or broken; the pure-Python PTB tokenizer is used instead."""


def _ptb_jar() -> Path:
    """The Stanford CoreNLP 3.4.1 jar that ships with pycocoevalcap (a namespace package)."""
    from pycocoevalcap.tokenizer import ptbtokenizer

    return Path(ptbtokenizer.__file__).parent / ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR


def find_java() -> str | None:
    """The `java` executable on the PATH, or None."""
    return shutil.which("java")


def java_ptb_tokenize(sentences: Sequence[str], java: str | None = None) -> list[str]:
    """Tokenises sentences with Stanford's PTBTokenizer exactly as coco-caption does.

    Same command as `pycocoevalcap.tokenizer.ptbtokenizer` (`-preserveLines -lowerCase`) and the
    same punctuation removal, but the temporary file goes to the system temp folder instead of
    the (possibly read-only) site-packages folder, and one JVM handles all sentences.

    Args:
      sentences: raw sentences.
      java: the java executable (default: the one on the PATH).

    Returns:
      One string of space-separated tokens per sentence.

    Raises:
      CaptionMetricsError: Java is missing, fails, or returns the wrong number of lines.
    """
    java = java or find_java()
    if java is None:
        raise CaptionMetricsError("the PTB tokenizer needs `java` on the PATH (Java 8 or newer)")
    jar = _ptb_jar()
    lines = [s.translate(_LINE_BREAKS) for s in sentences]
    with tempfile.TemporaryDirectory(prefix="lrcn_ptb_") as tmp:
        path = os.path.join(tmp, "captions.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer"]
        cmd += ["-preserveLines", "-lowerCase", "-encoding", "utf-8", path]
        try:
            proc = subprocess.run(cmd, capture_output=True, check=False)
        except OSError as e:
            raise CaptionMetricsError(f"cannot run {java}: {e}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise CaptionMetricsError(f"Java PTBTokenizer failed (exit {proc.returncode}): {err}")
    out = proc.stdout.decode("utf-8").split("\n")
    if len(out) < len(lines) or any(line.strip() for line in out[len(lines) :]):
        raise CaptionMetricsError(
            f"Java PTBTokenizer returned {len(out)} lines for {len(lines)} captions"
        )
    return [ptb_tokenizer.remove_punctuation(line) for line in out[: len(lines)]]


def tokenize(sentences: Sequence[str], tokenizer: str = "auto") -> list[str]:
    """PTB-tokenises `sentences` (lower-cased, punctuation removed), Java or pure Python.

    Args:
      sentences: raw sentences.
      tokenizer: "java" (error without Java), "python" (the fallback), or "auto": Java when it
        runs, else the fallback with a `JavaUnavailableWarning`.

    Returns:
      One string of space-separated tokens per sentence.
    """
    if tokenizer not in TOKENIZERS:
        raise CaptionMetricsError(f"tokenizer {tokenizer!r}: choose one of {TOKENIZERS}")
    if tokenizer == "python":
        return [ptb_tokenizer.tokenize(s) for s in sentences]
    if tokenizer == "java":
        return java_ptb_tokenize(sentences)
    java = find_java()
    why = "`java` is not on the PATH"
    if java is not None:
        try:
            return java_ptb_tokenize(sentences, java)
        except CaptionMetricsError as e:
            why = str(e)
    warnings.warn(
        f"{why}; using the pure-Python PTB tokenizer, which matches coco-caption's Java "
        "tokenizer on typical captions but not on every corner case. Install Java 8+ for "
        "exact coco-caption numbers.",
        JavaUnavailableWarning,
        stacklevel=2,
    )
    return [ptb_tokenizer.tokenize(s) for s in sentences]


def _check_inputs(
    references: Mapping[Hashable, Sequence[str]],
    predictions: Mapping[Hashable, str],
    metrics: Iterable[str],
) -> tuple[list[Hashable], list[str]]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise CaptionMetricsError(f"metrics {unknown or metrics}: choose from {METRICS}")
    if not isinstance(references, Mapping) or not isinstance(predictions, Mapping):
        raise CaptionMetricsError(
            "references and predictions must be dicts (id -> list of strings, id -> string)"
        )
    if not predictions:
        raise CaptionMetricsError("no predictions to score")
    missing = [k for k in predictions if k not in references]
    if missing:
        as_text = {str(k) for k in references}
        hint = " (ids differ in type only: 42 and '42')" if str(missing[0]) in as_text else ""
        raise CaptionMetricsError(
            f"{len(missing)} prediction id(s) have no references, e.g. {missing[:5]}{hint}"
        )
    for k, pred in predictions.items():
        if not isinstance(pred, str):
            raise CaptionMetricsError(
                f"prediction for id {k!r} is {type(pred).__name__}, expected one string"
            )
        refs = references[k]
        if isinstance(refs, str) or not isinstance(refs, Sequence):
            raise CaptionMetricsError(
                f"references for id {k!r} must be a list of strings, got {type(refs).__name__}"
            )
        if not refs:
            raise CaptionMetricsError(f"references for id {k!r}: empty list")
        for j, r in enumerate(refs):
            if not isinstance(r, str) or not r.strip():
                raise CaptionMetricsError(
                    f"reference {j} of id {k!r} is {r!r}: expected a non-empty string"
                )
    return list(predictions), metrics


def score_captions(
    references: Mapping[Hashable, Sequence[str]],
    predictions: Mapping[Hashable, str],
    metrics: Iterable[str] = ("bleu",),
    tokenizer: str = "auto",
) -> dict[str, float]:
    """Caption metrics of `predictions` against `references`, as coco-caption computes them.

    Only the ids in `predictions` are scored (coco-caption scores the images of the result
    file); a reference id without a prediction is ignored with a warning.

    Args:
      references: id -> list of reference captions (raw text).
      predictions: id -> one predicted caption (raw text); every id must be in `references`.
      metrics: any of "bleu" (gives bleu1..bleu4), "meteor", "cider", "rouge_l".
      tokenizer: "auto" (Java PTBTokenizer, else the pure-Python one with a warning),
        "java" or "python"; see `tokenize`.

    Returns:
      {"bleu1": .., "bleu2": .., "bleu3": .., "bleu4": ..} in percent, plus "meteor", "cider",
      "rouge_l" (also x100) when asked.

    Raises:
      CaptionMetricsError: malformed input, an unknown metric, or METEOR without Java.
    """
    ids, metrics = _check_inputs(references, predictions, metrics)
    extra = len(set(references) - set(predictions))
    if extra:
        warnings.warn(
            f"{extra} reference id(s) have no prediction and are not scored", stacklevel=2
        )
    if "meteor" in metrics and find_java() is None:
        raise CaptionMetricsError("METEOR needs `java` on the PATH (Java 8 or newer)")
    # One tokenizer call (one JVM) for every caption: references first, then predictions.
    flat = [r for k in ids for r in references[k]] + [predictions[k] for k in ids]
    tokens = iter(tokenize(flat, tokenizer))
    gts = {i: [next(tokens) for _ in references[k]] for i, k in enumerate(ids)}
    res = {i: [next(tokens)] for i in range(len(ids))}

    scores: dict[str, float] = {}
    if "bleu" in metrics:
        from pycocoevalcap.bleu.bleu import Bleu

        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        scores.update({k: 100.0 * v for k, v in zip(BLEU_KEYS, bleu)})
    if "meteor" in metrics:
        scores["meteor"] = 100.0 * _meteor(gts, res)
    if "cider" in metrics:
        from pycocoevalcap.cider.cider import Cider

        scores["cider"] = 100.0 * float(Cider().compute_score(gts, res)[0])
    if "rouge_l" in metrics:
        from pycocoevalcap.rouge.rouge import Rouge

        scores["rouge_l"] = 100.0 * float(Rouge().compute_score(gts, res)[0])
    return scores


def _read_json(path: str | Path):
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CaptionMetricsError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise CaptionMetricsError(f"{path}: not UTF-8 text: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CaptionMetricsError(
            f"{path}: line {e.lineno} column {e.colno}: not valid JSON: {e.msg}"
        ) from None


def _entry(path: Path, where: str, entry, fields: tuple[str, ...]) -> tuple:
    """The `fields` of one annotation/result entry, checked."""
    if not isinstance(entry, dict):
        raise CaptionMetricsError(f"{path}: {where}: expected an object, got {entry!r:.80}")
    missing = [f for f in fields if f not in entry]
    if missing:
        raise CaptionMetricsError(f"{path}: {where}: missing key(s) {missing} in {entry!r:.120}")
    image_id, caption = (entry[f] for f in fields)
    if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
        raise CaptionMetricsError(f"{path}: {where}: image_id {image_id!r} is not an int or string")
    if not isinstance(caption, str):
        raise CaptionMetricsError(f"{path}: {where}: caption {caption!r:.80} is not a string")
    return image_id, caption


def load_coco_references(path: str | Path) -> dict[int | str, list[str]]:
    """Reference captions from a COCO annotation file.

    Args:
      path: JSON `{"images": [...], "annotations": [{"image_id": .., "caption": ..}, ...]}`
        (`images` is optional; extra keys are ignored).

    Returns:
      image_id -> its reference captions, in file order.

    Raises:
      CaptionMetricsError: unreadable or malformed file, naming the file and the entry.
    """
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise CaptionMetricsError(
            f'{path}: expected a COCO annotation file, an object with an "annotations" list '
            '(e.g. {"images": [...], "annotations": [{"image_id": 1, "caption": "..."}]})'
        )
    refs: dict[int | str, list[str]] = {}
    for n, entry in enumerate(data["annotations"]):
        image_id, caption = _entry(path, f"annotations[{n}]", entry, ("image_id", "caption"))
        if not caption.strip():
            raise CaptionMetricsError(f"{path}: annotations[{n}]: empty caption")
        refs.setdefault(image_id, []).append(caption)
    if not refs:
        raise CaptionMetricsError(f"{path}: no annotations")
    return refs


def load_coco_predictions(path: str | Path) -> dict[int | str, str]:
    """Predicted captions from a COCO result file `[{"image_id": .., "caption": ..}, ...]`.

    Raises:
      CaptionMetricsError: unreadable or malformed file, or an image_id given twice; the
        message names the file and the entry.
    """
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, list):
        raise CaptionMetricsError(
            f'{path}: expected a COCO result file, a list of {{"image_id": .., "caption": ..}}'
        )
    preds: dict[int | str, str] = {}
    first: dict[int | str, int] = {}
    for n, entry in enumerate(data):
        image_id, caption = _entry(path, f"entry {n}", entry, ("image_id", "caption"))
        if image_id in preds:
            raise CaptionMetricsError(
                f"{path}: entry {n}: image_id {image_id!r} already has a caption (entry "
                f"{first[image_id]})"
            )
        preds[image_id], first[image_id] = caption, n
    if not preds:
        raise CaptionMetricsError(f"{path}: no predictions")
    return preds


def save_coco_predictions(path: str | Path, predictions: Mapping[Hashable, str]) -> Path:
    """Writes id -> caption as a COCO result file (atomically); returns the path."""
    from lrcn_tf.runtime import write_text_atomic

    rows = [{"image_id": k, "caption": v} for k, v in predictions.items()]
    write_text_atomic(path, json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    return Path(path)


def _meteor(gts: dict, res: dict) -> float:
    """METEOR 1.5 through pycocoevalcap's wrapper (one JVM), its process always closed."""
    from pycocoevalcap.meteor.meteor import Meteor

    try:
        meteor = Meteor()
    except OSError as e:
        raise CaptionMetricsError(f"cannot start METEOR (java): {e}") from None
    proc = meteor.meteor_p
    try:
        return float(meteor.compute_score(gts, res)[0])
    except (ValueError, OSError) as e:
        proc.kill()
        err = proc.stderr.read().decode("utf-8", "replace").strip()[-2000:]
        raise CaptionMetricsError(f"METEOR failed ({e}); java said: {err}") from None
    finally:
        # The wrapper keeps its lock held when it fails, and its __del__ takes the lock.
        if meteor.lock.locked():
            meteor.lock.release()
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
