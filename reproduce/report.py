r"""The results report: results/index.html (one self-contained page) and results/REPORT.md.

    python -m reproduce.report                         # every results/table[1-5].csv present
    python -m reproduce.report --workdir runs --html /tmp/index.html --markdown /tmp/REPORT.md

Reads the result CSVs and results/expected.csv, and the rows' run folders under --workdir where
they are on this machine (training curves, per-class accuracy, recall curves, samples; the page
says what is missing otherwise). Writes the HTML page (every image inlined: it opens from disk
with no server and no network), the Markdown version and its figures (PNG, beside it in
figures/). Takes seconds (about a minute with every table's run folders). Also the last step
of `python -m reproduce.all`.

    python -m reproduce.report --check_in_browser --screenshot docs/report.png

then opens the page in headless Chromium (Debian's `chromium` package) and checks it as a reader
would see it. Exit status: 0 written (and looked right); 1 the browser found a broken image, a
console error or a network request; 2 a result CSV cannot be read (named with its line), or no
Chromium.
"""

from __future__ import annotations

import glob
import sys

from absl import flags

from lrcn_tf import cli
from lrcn_tf.report import write_report
from lrcn_tf.results import EXPECTED_CSV, ResultsError

FLAGS = flags.FLAGS
flags.DEFINE_list("produced", None, "Result CSVs (default: every results/table[1-5].csv present).")
flags.DEFINE_string("expected", str(EXPECTED_CSV), "The paper's numbers and the goldens.")
flags.DEFINE_string("workdir", "runs", "Where the rows' run folders are.")
flags.DEFINE_string("html", "results/index.html", "The page to write.")
flags.DEFINE_string("markdown", "results/REPORT.md", "The Markdown version (figures beside it).")
flags.DEFINE_bool(
    "check_in_browser",
    False,
    "Then open the page in headless Chromium: every image decoded, no console error, no "
    "network request (exit 1 if not).",
)
flags.DEFINE_string("screenshot", None, "With --check_in_browser: save the page's top as a PNG.")


def main(argv) -> int:
    del argv
    paths = FLAGS.produced
    if paths is None:
        paths = sorted(glob.glob("results/table[1-5].csv"))
    try:
        page, md = write_report(
            paths,
            FLAGS.expected,
            html_path=FLAGS.html,
            markdown_path=FLAGS.markdown,
            workdir=FLAGS.workdir,
        )
    except ResultsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {page} and {md}")
    if FLAGS.check_in_browser:
        return _check(page)
    return 0


def _check(page) -> int:
    from lrcn_tf.report.browser import BrowserError, check_page

    try:
        result = check_page(page, screenshot=FLAGS.screenshot)
    except BrowserError as e:
        print(f"error: --check_in_browser: {e}", file=sys.stderr)
        return 2
    print(
        f"chromium: {result.images} images, {len(result.broken_images)} not decoded, "
        f"{len(result.console_errors)} console errors, {len(result.requests)} network requests"
        + (f"; screenshot {FLAGS.screenshot}" if FLAGS.screenshot else "")
    )
    for what, items in (
        ("not decoded", result.broken_images),
        ("console error", result.console_errors),
        ("network request", result.requests),
    ):
        for item in items:
            print(f"  {what}: {item}", file=sys.stderr)
    return 0 if result.ok else 1


def run() -> None:
    cli.run(main)  # a user error: one `error:` line, exit 2


if __name__ == "__main__":
    run()
