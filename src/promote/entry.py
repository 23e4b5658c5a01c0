"""The ``promote`` console script.

It imports the CLI (and with it nbformat, IPython, copier) inside the ``try``, so a Ctrl-C at any
moment, start-up included, ends with "aborted" and exit code 130 instead of a traceback.

A Ctrl-C can also land where Python cannot raise it: inside a callback that the interpreter runs
on its own (a weakref callback in the import machinery, a finalizer). Python then prints
"Exception ignored in ..." with a traceback and carries on as if nothing happened. The hook
below turns that case into the same "aborted" exit, without running the rest of the command; what
a run leaves behind when it stops at an arbitrary moment is what it leaves after SIGKILL (the
target untouched, a scratch folder the next run removes).
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["run"]


def _abort_on_ignored_interrupt(unraisable: Any) -> None:
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.stderr.write("aborted\n")
        sys.stderr.flush()
        os._exit(130)
    sys.__unraisablehook__(unraisable)


def run() -> None:
    """Run the CLI and exit with its code."""
    sys.unraisablehook = _abort_on_ignored_interrupt
    try:
        from promote.cli import main

        code = main()
    except KeyboardInterrupt:
        sys.stderr.write("aborted\n")
        code = 130
    sys.exit(code)
