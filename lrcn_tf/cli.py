"""One error path for the command-line programs (docs/reliability.md).

    from lrcn_tf import cli
    if __name__ == "__main__":
        cli.run(main)

A user error, raised anywhere before or during the work, becomes one line `error: ...` on
stderr and exit status 2 (`USAGE`): a flag absl cannot parse or validate, `app.UsageError`,
`flags.Error`, and every `lrcn_tf.errors.UserError` (bad `--set`, wrong or unprepared data
folder, malformed file, path escape, unwritable output). Anything else is a bug and keeps its
traceback. `main` returns the exit status otherwise (0 ok; 1 what the program documents).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from absl import app, flags

from lrcn_tf.errors import UserError

USAGE = 2


def one_line(e: BaseException) -> str:
    """The message of `e` on one line (absl's flag errors can span several)."""
    return " ".join(str(e).split()) or type(e).__name__


def error(message: str) -> int:
    """Prints `error: message` on stderr; returns USAGE."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return USAGE


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        sys.exit(error(one_line(e)))


def guarded(main: Callable[[list[str]], int | None], argv: list[str]) -> int:
    """Calls main(argv); a user error becomes `error: ...` and USAGE."""
    try:
        return main(argv) or 0
    except (UserError, flags.Error, app.UsageError) as e:
        return error(one_line(e))


def run(main: Callable[[list[str]], int | None]) -> None:
    """app.run(main) with the error path above; exits with main's status."""
    app.run(lambda argv: sys.exit(guarded(main, argv)), flags_parser=_parse_flags)
