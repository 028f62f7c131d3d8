"""Table 4's human evaluation: export a ranking kit, aggregate the returned forms.

The paper (Sec. 5, Table 4) showed Mechanical Turk workers an image with the descriptions of
six methods (TreeTalk, OxfordNet, NN, LRCN fc8, LRCN FT and a human caption) and had them rank
the descriptions 1-6 (1 = best) on correctness, grammar and relevance; Table 4 is the mean
rank per method and criterion over 785 Flickr30k images.

Export writes, for a chosen set of images, one HTML page per image with the descriptions
labelled A, B, C, ... in an independent random order per image (so raters cannot learn which
letter is which method), `form.csv` (one row per image and letter, rank cells empty) and
`key.json` (letter -> method per image; raters never see it). The human caption is one of
the image's reference captions picked at random with the kit's seed ("held out": it is shown
as a candidate, not used as a reference).

Aggregation reads any number of returned forms. Ties are accepted in standard competition
form (equal descriptions share the best rank of their group and the next rank is skipped:
1, 2, 2, 4), because the paper's Table 4 means sum to less than 1 + ... + 6 = 21 per
criterion (grammar: 20.93), which strict permutations cannot give. Any other rank pattern
(1, 1, 2 or a missing rank) is inconsistent. A form is rejected as a whole, with the reason
and its line, if a column or cell is missing, a rank is not an integer in 1..N, an image or
letter is not in the kit, a caption does not match the kit's text, a row is duplicated, an
(image, rater) misses a letter, or a rater's ranking of an image is inconsistent. Mean ranks
are averaged over raters per image first, then over images, so an image rated twice does not
count double.
"""

from __future__ import annotations

import csv
import html
import io
import json
import random
import shutil
import string
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from lrcn_tf.errors import UserError
from lrcn_tf.runtime import write_text_atomic

METHODS = ("treetalk", "oxfordnet", "nn", "lrcn_fc8", "lrcn_ft")  # Table 4 rows (SPEC.md)
HUMAN = "captions"  # Table 4's row for the human caption
CRITERIA = ("correctness", "grammar", "relevance")
FORM_COLUMNS = ("image_id", "page", "rater", "letter", "caption") + CRITERIA
REQUIRED_COLUMNS = ("image_id", "rater", "letter") + CRITERIA
KEY_VERSION = 1

INSTRUCTIONS = """\
For each image, read the {n} descriptions (labelled {letters}) and rank them from 1 (best) to
{n} (worst), three times, once per criterion:
<ul>
<li><b>correctness</b>: is what the description says true of the image?</li>
<li><b>grammar</b>: is it fluent, grammatical English (whatever the image shows)?</li>
<li><b>relevance</b>: does it describe what matters in the image?</li>
</ul>
Descriptions of equal quality may share a rank; then skip the ranks they use up: write
1, 2, 2, 4 (not 1, 2, 2, 3). Write your ranks in <code>form.csv</code> (one row per image and
letter), put the same rater name in every row you fill in, and return the file.
"""


class KitError(UserError):
    """Input that cannot make a ranking kit, or a malformed key file."""


class FormError(UserError):
    """A returned form that is rejected; the message names the file and line."""


def _choose_images(captions: Mapping[str, Mapping], references: Mapping, num_images, rng):
    common = set(references)
    for preds in captions.values():
        common &= set(preds)
    if not common:
        raise KitError("no image has a caption from every method and a reference caption")
    ids = sorted(common, key=str)
    if len({str(i) for i in ids}) != len(ids):
        raise KitError("image ids collide when written as text (e.g. 1 and '1')")
    if num_images is not None:
        if num_images > len(ids):
            raise KitError(f"--num_images {num_images}: only {len(ids)} images have every caption")
        ids = sorted(rng.sample(ids, num_images), key=str)
    return ids


def export_kit(
    captions: Mapping[str, Mapping],
    references: Mapping,
    out_dir: str | Path,
    image_files: Mapping | None = None,
    num_images: int | None = None,
    seed: int = 1701,
    dataset: str = "",
) -> dict:
    """Writes the ranking kit: index.html, pages/, images/, form.csv and key.json.

    Args:
      captions: method (a Table 4 row other than "captions") -> {image_id: caption}.
      references: image_id -> reference captions; one per image is shown as the human caption.
      out_dir: the kit folder (created; files in it are overwritten).
      image_files: image_id -> image file to show (copied into the kit); None shows none.
      num_images: how many images to include (a seeded random subset); None: all that have
        a caption from every method.
      seed: seeds the image subset, the human caption choice and the letter orders.
      dataset: recorded in key.json (the dataset the captions are for).

    Returns:
      A summary: {"num_images", "methods", "out_dir"}.
    """
    bad = [m for m in captions if m not in METHODS]
    if bad or not captions:
        raise KitError(f"methods {bad or '(none)'}: each must be one of {', '.join(METHODS)}")
    methods = list(captions) + [HUMAN]
    if len(methods) > len(string.ascii_uppercase):
        raise KitError("too many methods to label with letters")
    rng = random.Random(seed)
    ids = _choose_images(captions, references, num_images, rng)
    out = Path(out_dir)
    (out / "pages").mkdir(parents=True, exist_ok=True)
    letters = string.ascii_uppercase[: len(methods)]
    key = {"version": KEY_VERSION, "dataset": dataset, "seed": seed, "methods": methods}
    key["letters"], key["captions"] = {}, {}
    form_rows, index_items = [], []
    for n, image_id in enumerate(ids, start=1):
        human = rng.choice(list(references[image_id]))
        texts = {m: captions[m][image_id] for m in captions} | {HUMAN: human}
        order = rng.sample(methods, len(methods))
        page = f"pages/{n:04d}.html"
        img = _copy_image(image_files, image_id, out, n)
        _write_page(
            out / page,
            n,
            len(ids),
            image_id,
            img,
            [(letters[j], texts[m]) for j, m in enumerate(order)],
        )
        sid = str(image_id)
        key["letters"][sid] = {letters[j]: m for j, m in enumerate(order)}
        key["captions"][sid] = {letters[j]: texts[m] for j, m in enumerate(order)}
        for j, m in enumerate(order):
            form_rows.append([sid, page, "", letters[j], texts[m], "", "", ""])
        index_items.append(f'<li><a href="{page}">image {n}</a> (id {html.escape(sid)})</li>')
    _write_csv(out / "form.csv", FORM_COLUMNS, form_rows)
    write_text_atomic(out / "key.json", json.dumps(key, indent=1, ensure_ascii=False) + "\n")
    intro = INSTRUCTIONS.format(n=len(methods), letters=", ".join(letters))
    write_text_atomic(
        out / "index.html",
        _html("Image description ranking", f"<p>{intro}</p><ol>{''.join(index_items)}</ol>"),
    )
    return {"num_images": len(ids), "methods": methods, "out_dir": str(out)}


def _copy_image(image_files, image_id, out: Path, n: int) -> str | None:
    if image_files is None:
        return None
    if image_id not in image_files:
        raise KitError(f"no image file is named for image id {image_id!r}")
    src = Path(image_files[image_id])
    if not src.is_file():
        raise KitError(f"image file for id {image_id!r} not found: {src}")
    (out / "images").mkdir(exist_ok=True)
    dst = out / "images" / f"{n:04d}{src.suffix.lower()}"
    shutil.copyfile(src, dst)
    return f"../images/{dst.name}"


def image_paths(annotation_file: str | Path, images_dir: str | Path | None) -> dict | None:
    """image_id -> image file, from a COCO annotation file's `images[].file_name`.

    With `images_dir` the names are taken relative to it; without, absolute names that exist
    are used. Returns None when there are no image files to show.
    """
    path = Path(annotation_file)
    entries = json.loads(path.read_text(encoding="utf-8")).get("images")
    if not isinstance(entries, list) or not entries:
        if images_dir is not None:
            raise KitError(f'--images given but {path} has no "images" list naming the files')
        return None
    files = {}
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or "id" not in entry or "file_name" not in entry:
            raise KitError(f'{path}: images[{n}]: needs "id" and "file_name"')
        files[entry["id"]] = Path(images_dir or "") / entry["file_name"]
    if images_dir is None and not all(f.is_absolute() and f.is_file() for f in files.values()):
        return None
    return files


def _html(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title></head>\n<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def _write_page(path: Path, n: int, total: int, image_id, img: str | None, items) -> None:
    picture = (
        f'<img src="{html.escape(img)}" style="max-width:640px">'
        if img
        else "<p><i>(kit exported without images)</i></p>"
    )
    rows = "".join(
        f"<tr><td><b>{letter}</b></td><td>{html.escape(text)}</td></tr>" for letter, text in items
    )
    nav = " ".join(
        f'<a href="{n + d:04d}.html">{label}</a>'
        for d, label in ((-1, "previous"), (1, "next"))
        if 1 <= n + d <= total
    )
    body = (
        f"<p>image_id {html.escape(str(image_id))}: rank these descriptions in form.csv</p>"
        f"{picture}<table border=1 cellpadding=6>{rows}</table>"
        f'<p>{nav} <a href="../index.html">index</a></p>'
    )
    write_text_atomic(path, _html(f"Image {n} of {total}", body))


def _write_csv(path: Path, header: Sequence[str], rows: list[list]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def load_key(path: str | Path) -> dict:
    """Reads and checks a kit's key.json."""
    path = Path(path)
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise KitError(f"{path}: cannot read: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise KitError(f"{path}: line {e.lineno}: not valid JSON: {e.msg}") from None
    need = ("version", "methods", "letters", "captions")
    if not isinstance(key, dict) or any(k not in key for k in need):
        raise KitError(f"{path}: not a key.json written by the Table 4 export (needs {need})")
    if key["version"] != KEY_VERSION:
        raise KitError(f"{path}: key version {key['version']}, expected {KEY_VERSION}")
    return key


def is_competition_ranking(ranks: Sequence[int]) -> bool:
    """Whether `ranks` is a standard competition ranking ("1224"): each rank r equals 1 + the
    number of items ranked strictly better. A permutation of 1..N is the tie-free case."""
    return all(r == 1 + sum(1 for s in ranks if s < r) for r in ranks)


def _rank(value: str, n: int, where: str, column: str) -> int:
    if value == "":
        raise FormError(f"{where}: empty {column} rank")
    try:
        rank = float(value)
    except ValueError:
        raise FormError(f"{where}: {column} rank {value!r} is not a number") from None
    if rank != int(rank) or not 1 <= rank <= n:
        raise FormError(f"{where}: {column} rank {value!r} is not an integer from 1 to {n}")
    return int(rank)


def read_form(
    path: str | Path, key: Mapping, allow_ties: bool = True
) -> dict[tuple[str, str], dict[str, dict[str, int]]]:
    """Reads one returned form and checks it against the kit's key.

    Rows left blank (no rater and no rank) are images the rater skipped and are ignored.

    Args:
      path: the CSV (form.csv as exported, filled in; extra columns are ignored).
      key: the kit's key (`load_key`).
      allow_ties: accept competition-style ties (1, 2, 2, 4); False demands permutations.

    Returns:
      (image_id, rater) -> letter -> criterion -> rank.

    Raises:
      FormError: the form is rejected; the message names the file, line and reason.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets like to add a BOM
    except (OSError, UnicodeDecodeError) as e:
        raise FormError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise FormError(f"{path}:1: missing column(s) {', '.join(missing)}")
    rankings: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
    first_line: dict[tuple, int] = {}
    for line_no, fields in enumerate(reader, start=2):
        where = f"{path}:{line_no}"
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise FormError(f"{where}: {len(fields)} fields where the header has {len(header)}")
        row = {h: f.strip() for h, f in zip(header, fields)}
        if not row["rater"] and not any(row[c] for c in CRITERIA):
            continue  # not rated
        image_id, letter, rater = row["image_id"], row["letter"].upper(), row["rater"]
        if image_id not in key["letters"]:
            raise FormError(f"{where}: image_id {image_id!r} is not in the kit")
        letters = key["letters"][image_id]
        if letter not in letters:
            raise FormError(f"{where}: image {image_id} has no letter {row['letter']!r}")
        if not rater:
            raise FormError(f"{where}: empty rater")
        if row.get("caption") and row["caption"] != key["captions"][image_id][letter].strip():
            raise FormError(
                f"{where}: the caption of {image_id}/{letter} differs from the kit's "
                "(a form from another kit, or rows edited)"
            )
        ranks = {c: _rank(row[c], len(letters), where, c) for c in CRITERIA}
        group = (image_id, rater)
        if letter in rankings.get(group, {}):
            raise FormError(
                f"{where}: duplicate row for rater {rater!r}, image {image_id}, letter "
                f"{letter} (first on line {first_line[group + (letter,)]})"
            )
        rankings.setdefault(group, {})[letter] = ranks
        first_line[group + (letter,)] = line_no
        first_line.setdefault(group, line_no)
    if not rankings:
        raise FormError(f"{path}: no filled-in rows")
    for group, by_letter in rankings.items():
        _check_group(path, first_line[group], group, by_letter, key, allow_ties)
    return rankings


def _check_group(path, line_no, group, by_letter, key, allow_ties) -> None:
    image_id, rater = group
    where = f"{path}:{line_no}: rater {rater!r}, image {image_id}"
    letters = sorted(key["letters"][image_id])
    absent = [x for x in letters if x not in by_letter]
    if absent:
        raise FormError(f"{where}: no row for letter(s) {', '.join(absent)} (incomplete)")
    for c in CRITERIA:
        ranks = [by_letter[x][c] for x in letters]
        ok = (
            is_competition_ranking(ranks)
            if allow_ties
            else sorted(ranks) == list(range(1, len(ranks) + 1))
        )
        if not ok:
            rule = "ties written 1, 2, 2, 4" if allow_ties else "each of 1..N once"
            raise FormError(f"{where}: {c} ranks {ranks} for {letters} are inconsistent ({rule})")


def aggregate_forms(paths: Sequence[str | Path], key: Mapping, allow_ties: bool = True) -> dict:
    """Mean rank per method and criterion over every accepted form (Table 4).

    A form that fails `read_form`, or that repeats an (image, rater) already given by an
    earlier form, is rejected whole and reported; the others are used.

    Returns:
      {"means": {(method, criterion): mean rank}, "num_images", "num_rankings", "raters",
       "accepted": [paths], "rejected": [(path, reason)]}.

    Raises:
      FormError: no form was accepted (the message lists every reason).
    """
    accepted: dict[tuple[str, str], tuple[str, dict]] = {}
    used, rejected = [], []
    for p in paths:
        try:
            ranking = read_form(p, key, allow_ties)
            clash = next((g for g in ranking if g in accepted), None)
            if clash is not None:
                raise FormError(
                    f"{p}: rater {clash[1]!r} already ranked image {clash[0]} in "
                    f"{accepted[clash][0]}"
                )
        except FormError as e:
            rejected.append((str(p), str(e)))
            continue
        used.append(str(p))
        accepted.update({g: (str(p), r) for g, r in ranking.items()})
    if not accepted:
        raise FormError("no form accepted:\n" + "\n".join(r for _, r in rejected))
    per_image: dict[str, dict[tuple[str, str], list[int]]] = defaultdict(lambda: defaultdict(list))
    for (image_id, _), (_, by_letter) in accepted.items():
        for letter, ranks in by_letter.items():
            method = key["letters"][image_id][letter]
            for c in CRITERIA:
                per_image[image_id][(method, c)].append(ranks[c])
    means = {}
    for m in key["methods"]:
        for c in CRITERIA:
            image_means = [sum(v[(m, c)]) / len(v[(m, c)]) for v in per_image.values()]
            means[(m, c)] = sum(image_means) / len(image_means)
    return {
        "means": means,
        "num_images": len(per_image),
        "num_rankings": len(accepted),
        "raters": sorted({rater for _, rater in accepted}),
        "accepted": used,
        "rejected": rejected,
    }
