r"""Every table, then the report: results/index.html (one self-contained page) and REPORT.md.

    python -m reproduce.all                    # embedded data, default preset
    python -m reproduce.all --preset smoke     # seconds per table, for a quick look

Runs `reproduce.table1 --split all`, `table3`, `table2`, `table5 --decoder all` and
`table4` (exports the human-ranking kit from Table 3's captions; Table 4's numbers need human
raters, so it adds no rows) on their embedded datasets, each as its own process, continuing
past a table that fails; then prints the comparison and, last, writes the report
(`reproduce.report`: results/index.html, results/REPORT.md and results/figures/) from every
results/table*.csv present and the run folders under --workdir.
Time on 2 CPU cores with the default preset: the sum of the tables' own budgets (about
30-40 minutes). Exit status: 1 if any table failed.
"""

from __future__ import annotations

import glob
import subprocess
import sys
import time

from absl import flags

from lrcn_tf import cli
from lrcn_tf.report import write_report
from lrcn_tf.results import EXPECTED_CSV
from lrcn_tf.runtime import PRECISION_MODES

FLAGS = flags.FLAGS
flags.DEFINE_enum("preset", "default", ["smoke", "default", "paper"], "Preset for every table.")
flags.DEFINE_string("workdir", "runs", "Run folders.")
flags.DEFINE_enum("mixed_precision", "auto", list(PRECISION_MODES), "Precision policy.")
flags.DEFINE_list(
    "tables", ["table1", "table3", "table2", "table5", "table4"], "Tables to run, in order."
)
flags.DEFINE_string("report", "results/REPORT.md", "The Markdown report to write.")
flags.DEFINE_string("html", "results/index.html", "The report page to write.")

EXTRA_ARGS = {"table1": ["--split=all"], "table5": ["--decoder=all"]}


def main(argv):
    del argv
    failed = []
    for table in FLAGS.tables:
        cmd = [sys.executable, "-m", f"reproduce.{table}", *EXTRA_ARGS.get(table, [])]
        if table != "table4":
            cmd += [
                f"--preset={FLAGS.preset}",
                f"--workdir={FLAGS.workdir}",
                f"--mixed_precision={FLAGS.mixed_precision}",
                "--nocompare",
            ]
        print(f"\n=== {' '.join(cmd[1:])}", flush=True)
        start = time.time()
        code = subprocess.run(cmd, check=False).returncode
        print(f"=== {table}: exit {code} after {time.time() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(table)
    produced = sorted(glob.glob("results/table[1-5].csv"))
    if produced:
        subprocess.run(
            [sys.executable, "-m", "reproduce.compare", f"--produced={','.join(produced)}"],
            check=False,
        )
        page, md = write_report(
            produced,
            str(EXPECTED_CSV),
            html_path=FLAGS.html,
            markdown_path=FLAGS.report,
            workdir=FLAGS.workdir,
        )
        print(f"\nwrote {page} and {md}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cli.run(main)  # a user error: one `error:` line, exit 2
