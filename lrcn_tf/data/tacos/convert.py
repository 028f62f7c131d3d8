r"""TACoS multilevel annotation files + CRF outputs -> the JSON-lines input of Table 5.

    python -m lrcn_tf.data.tacos.convert --annotations detailed.tsv --annotations short.tsv \
        --crf crf_outputs.jsonl --splits splits.txt --out tacos_multilevel.jsonl

The annotation files give the sentences: one per row, in a tab- or comma-separated table with
a header line. Columns are found by name (case and spaces ignored), under these names:

| column | names accepted | required |
|---|---|---|
| video | video, video_id, videoid, vid, file, filename | yes |
| start, end | start, start_frame, startframe, begin / end, end_frame, endframe | yes (frames) |
| sentence | sentence, description, text, caption | yes |
| level | level, description_level: detailed, short, single sentence | or `--level` |
| fps | fps, frame_rate, framerate | or `--fps` (optional) |

Any other column (annotator ids, times in seconds, ...) is reported and skipped, not fatal.
Rows with the same video, frame range and level become one segment with all their sentences.
The CRF outputs, which the annotation files do not hold, come from `--crf`: a JSON-lines file
whose first line is `{"format": "tacos_crf", "labels": {<slot>: [labels...]}}` and whose other
lines are `{"video", "start", "end", "crf": {<slot>: [probabilities]}}` (optionally "gold").
`--splits` gives each video's split (`<video> <train|val|test>` a line). A segment without CRF
outputs or a video without a split is skipped and counted in the summary. The column names of
the real release could not be checked here: if yours differ, rename the header line.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from lrcn_tf.data.tacos.format import (
    FORMAT,
    LEVELS,
    SLOTS,
    SPLITS,
    VERSION,
    TACoSFormatError,
    read_lines,
)

COLUMNS = {
    "video": ("video", "video_id", "videoid", "vid", "file", "filename"),
    "start": ("start", "start_frame", "startframe", "begin"),
    "end": ("end", "end_frame", "endframe"),
    "sentence": ("sentence", "description", "text", "caption"),
    "level": ("level", "description_level"),
    "fps": ("fps", "frame_rate", "framerate"),
}
_LEVEL_NAMES = {
    "detailed": "detailed",
    "short": "short",
    "single_sentence": "single_sentence",
    "single": "single_sentence",
    "one_sentence": "single_sentence",
}


def _norm(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def read_annotations(
    path: str | Path, level: str | None = None, fps: float | None = None
) -> tuple[list[dict], list[str]]:
    """Reads one annotation table.

    Returns:
      (rows {"video", "start", "end", "sentence", "level", "fps"}, the columns skipped).

    Raises:
      TACoSFormatError: `path:line: why` for a missing column or a bad value.
    """
    path = Path(path)
    lines = read_lines(path, encoding="utf-8-sig")
    if not lines:
        raise TACoSFormatError(f"{path}: empty file, expected a header line")
    delimiter = "\t" if "\t" in lines[0] else ","
    reader = csv.reader(lines, delimiter=delimiter)
    header = [_norm(h) for h in next(reader)]
    where = {}
    for key, names in COLUMNS.items():
        found = [i for i, h in enumerate(header) if h in names]
        if found:
            where[key] = found[0]
    missing = [k for k in ("video", "start", "end", "sentence") if k not in where]
    if "level" not in where and level is None:
        missing.append("level (or --level)")
    if missing:
        raise TACoSFormatError(f"{path}:1: no column for {', '.join(missing)} in {header}")
    skipped = [h for i, h in enumerate(header) if i not in where.values()]
    rows = []
    for line_no, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue

        def fail(why: str, line_no=line_no):
            raise TACoSFormatError(f"{path}:{line_no}: {why}")

        if len(cells) != len(header):
            fail(f"{len(cells)} fields where the header has {len(header)}")
        cell = {k: cells[i].strip() for k, i in where.items()}
        try:
            start, end = int(cell["start"]), int(cell["end"])
        except ValueError:
            fail(f"start {cell['start']!r} and end {cell['end']!r} must be whole frame numbers")
        if start < 0 or end < start:
            fail(f"frame range {start}-{end}: need 0 <= start <= end")
        lv = _LEVEL_NAMES.get(_norm(cell["level"])) if "level" in cell else level
        if lv not in LEVELS:
            fail(f"level {cell.get('level', level)!r}: use one of {list(LEVELS)}")
        rate = fps
        if cell.get("fps"):
            try:
                rate = float(cell["fps"])
            except ValueError:
                fail(f"fps {cell['fps']!r} is not a number")
        if not cell["video"] or not cell["sentence"]:
            fail("empty video or sentence")
        rows.append(
            {
                "video": cell["video"],
                "start": start,
                "end": end,
                "level": lv,
                "fps": rate,
                "sentence": cell["sentence"],
            }
        )
    return rows, skipped


def read_crf(path: str | Path) -> tuple[dict, dict]:
    """The CRF outputs file: ({slot: labels}, {(video, start, end): {"crf", "gold"?}})."""
    path = Path(path)
    lines = read_lines(path)
    labels, out = None, {}
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TACoSFormatError(f"{path}:{line_no}: not valid JSON ({e.msg})") from None
        if labels is None:
            if not isinstance(obj, dict) or obj.get("format") != "tacos_crf":
                raise TACoSFormatError(
                    f'{path}:{line_no}: the first line must be {{"format": "tacos_crf", '
                    '"labels": ...}'
                )
            labels = obj.get("labels")
            continue
        try:
            key = (str(obj["video"]), int(obj["start"]), int(obj["end"]))
            entry = {"crf": obj["crf"]}
        except (KeyError, TypeError, ValueError):
            raise TACoSFormatError(
                f"{path}:{line_no}: a line needs video, start, end (frames) and crf"
            ) from None
        if "gold" in obj:
            entry["gold"] = obj["gold"]
        out[key] = entry
    if labels is None:
        raise TACoSFormatError(f"{path}: empty file, expected a header line")
    return labels, out


def read_splits(path: str | Path) -> dict[str, str]:
    """`<video> <split>` lines -> {video: split}."""
    path = Path(path)
    lines = read_lines(path)
    out = {}
    for line_no, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in SPLITS:
            raise TACoSFormatError(f"{path}:{line_no}: expected '<video> <{'|'.join(SPLITS)}>'")
        out[parts[0]] = parts[1]
    return out


def convert(
    rows: Iterable[dict], labels: dict, crf: dict, splits: dict[str, str]
) -> tuple[list[str], dict]:
    """Groups sentence rows into segments and writes them as JSON lines (header first).

    Returns:
      (the lines, a summary: segments written per level, and what was skipped).
    """
    segments: dict[tuple, dict] = {}
    for r in rows:
        key = (r["video"], r["start"], r["end"], r["level"])
        seg = segments.setdefault(key, {"fps": r["fps"], "sentences": []})
        seg["sentences"].append(r["sentence"])
    lines = [json.dumps({"format": FORMAT, "version": VERSION, "labels": labels})]
    summary = {"written": {}, "no_crf": 0, "no_split": 0}
    for (video, start, end, level), seg in segments.items():
        if video not in splits:
            summary["no_split"] += 1
            continue
        outputs = crf.get((video, start, end))
        if outputs is None:
            summary["no_crf"] += 1
            continue
        line = {
            "id": f"{video}:{start}-{end}:{level}",
            "video": video,
            "start": start,
            "end": end,
            "frames": [start, end],
            "level": level,
            "split": splits[video],
            "crf": outputs["crf"],
            "sentences": seg["sentences"],
        }
        if seg["fps"] is not None:
            line["fps"] = seg["fps"]
        if "gold" in outputs:
            line["gold"] = outputs["gold"]
        lines.append(json.dumps(line))
        summary["written"][level] = summary["written"].get(level, 0) + 1
    return lines, summary


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m lrcn_tf.data.tacos.convert", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--annotations", action="append", required=True, help="a table (repeat)")
    parser.add_argument("--level", choices=LEVELS, help="level of tables without a level column")
    parser.add_argument("--fps", type=float, help="frame rate of tables without an fps column")
    parser.add_argument("--crf", required=True, help="the CRF outputs (JSON lines, tacos_crf)")
    parser.add_argument("--splits", required=True, help="'<video> <split>' lines")
    parser.add_argument("--out", required=True, help="the JSON-lines file to write")
    args = parser.parse_args(argv)
    try:
        rows, skipped = [], {}
        for path in args.annotations:
            got, cols = read_annotations(path, args.level, args.fps)
            rows += got
            if cols:
                skipped[path] = cols
        labels, crf = read_crf(args.crf)
        if not isinstance(labels, dict) or set(labels) != set(SLOTS):
            raise TACoSFormatError(f"{args.crf}:1: 'labels' must map exactly the slots {SLOTS}")
        lines, summary = convert(rows, labels, crf, read_splits(args.splits))
    except TACoSFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists():
        print(f"error: --out {out} exists; not overwriting it", file=sys.stderr)
        return 2
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(out)
    for path, cols in skipped.items():
        print(f"note: {path}: columns skipped: {', '.join(cols)}")
    print(
        f"wrote {out}: segments {summary['written']}; skipped: {summary['no_crf']} without "
        f"CRF outputs, {summary['no_split']} of videos without a split"
    )
    return 0 if summary["written"] else 2


if __name__ == "__main__":
    sys.exit(main())
