"""The base of every error that a user's input causes (bad flag, file, folder or output).

The command-line programs (`reproduce.*`, `lrcn_tf.prepare`, through `lrcn_tf.cli.run`) turn
a `UserError` into one `error: ...` line on stderr and exit status 2; any other exception is a
bug and keeps its traceback. It is a ValueError, so code that caught ValueError still does.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input; str() is one line naming the file, folder or flag and what to do."""
