"""The ``promote`` console script.

It imports the CLI (and with it nbformat, IPython, copier) inside the ``try``, so a Ctrl-C at any
moment, start-up included, ends with "aborted" and exit code 130 instead of a traceback.
"""

from __future__ import annotations

import sys

__all__ = ["run"]


def run() -> None:
    """Run the CLI and exit with its code."""
    try:
        from promote.cli import main

        code = main()
    except KeyboardInterrupt:
        sys.stderr.write("aborted\n")
        code = 130
    sys.exit(code)
