"""Which libraries a failed run of the notebook points at, from its error and traceback.

Pure: the error's text and facts about the environment in, the implicated distributions out.
``promote --execute`` uses it to decide whether another set of pins may let the notebook run
(``environments.retry``): an error is tied to a library version when

* the failing cell uses an API the drift table bounds (``Analysis.bounds``);
* the error is an import of something a library no longer has (``No module named
  'sklearn.externals.joblib'``, ``cannot import name 'x' from 'pkg'``, ``module 'numpy' has no
  attribute 'float'``), or of a library the environment lacks;
* the traceback runs into a library's own files (``site-packages/pandas/...``): the library the
  cell called and the one that raised.

An error about the data, the machine or the notebook's own code (a missing file, a
``NameError``, a ``KeyError`` raised in the cell itself) implicates nothing, and no other
environment is tried for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from promote.analysis.drift import Bound
from promote.analysis.evidence import normal_name

__all__ = ["Implication", "implicated", "strip_ansi"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LIBRARY_FRAME = re.compile(r"(?:site|dist)-packages[/\\]([A-Za-z_][A-Za-z0-9_]*)")
_NO_MODULE = re.compile(r"No module named '([\w.]+)'")
_CANNOT_IMPORT = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'")
_MODULE_ATTRIBUTE = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")
# Errors about the data, the machine or the notebook's own code: no other version helps.
_NOT_VERSIONS = frozenset(
    {
        "FileNotFoundError", "PermissionError", "IsADirectoryError", "NotADirectoryError",
        "OSError", "IOError", "ConnectionError", "ConnectionRefusedError", "TimeoutError",
        "HTTPError", "URLError", "MemoryError", "KeyboardInterrupt", "NameError", "SyntaxError",
        "IndentationError", "UnboundLocalError", "ZeroDivisionError", "AssertionError",
        "RecursionError",
    }
)  # fmt: skip
# Errors a changed library raises when it is called the old way: the traceback's libraries count.
_API_ERRORS = frozenset(
    {
        "AttributeError", "TypeError", "ValueError", "ImportError", "ModuleNotFoundError",
        "NotImplementedError", "FutureWarning", "DeprecationWarning", "InvalidParameterError",
    }
)  # fmt: skip
# The kernel's own machinery, never the notebook's library.
_MACHINERY = frozenset(
    {"IPython", "ipykernel", "jupyter_client", "traitlets", "tornado", "zmq", "nest_asyncio"}
)


@dataclass(frozen=True)
class Implication:
    """A distribution the failure points at, and how."""

    distribution: str  # normalized (``scikit-learn``)
    reason: str  # one line, for the report
    missing: bool = False  # not installed at all: any environment with it may do


def strip_ansi(text: str) -> str:
    """A traceback as IPython prints it, without its colours."""
    return _ANSI.sub("", text)


def implicated(
    error_name: str,
    error_value: str,
    traceback: str,
    cell: int | None,
    bounds: Sequence[Bound],
    packages: Mapping[str, Sequence[str]],
) -> tuple[Implication, ...]:
    """The distributions the failure of ``cell`` ties to a library version, most direct first.

    ``packages`` maps top-level modules to the distributions that provide them, in the
    environment that failed (``importlib.metadata.packages_distributions()``); a module it
    does not know is a library the environment lacks.
    """
    found: dict[str, Implication] = {}
    if error_name in _NOT_VERSIONS:
        return ()
    for bound in bounds:
        if cell is not None and cell in bound.cells and not bound.conflict:
            key = normal_name(bound.distribution)
            reason = (
                f"cell {cell} uses {', '.join(bound.apis)}, which works only with "
                f"{bound.distribution}{bound.specifier} (API drift)"
            )
            found.setdefault(key, Implication(key, reason))
    clues = [
        *_from_error(error_name, error_value, packages),
        *_from_traceback(error_name, error_value, traceback),
    ]
    for module, reason, missing in clues:
        top = module.split(".")[0]
        if top in _MACHINERY or top.startswith("_"):
            continue
        names = packages.get(top)
        if names:
            key = normal_name(names[0])
        elif missing:
            key = normal_name(top)
        else:
            continue
        found.setdefault(key, Implication(key, reason, missing))
    return tuple(found.values())


def _from_error(
    name: str, value: str, packages: Mapping[str, Sequence[str]]
) -> list[tuple[str, str, bool]]:
    """(module, why, missing) from an import error's or a module attribute error's message."""
    if name in {"ModuleNotFoundError", "ImportError"}:
        if match := _NO_MODULE.search(value):
            module = match.group(1)
            top = module.split(".")[0]
            if top in packages:
                return [(module, f"{name}: {module} is gone from the installed {top}", False)]
            return [(module, f"{name}: {top} is not installed", True)]
        if match := _CANNOT_IMPORT.search(value):
            return [(match.group(2), f"{name}: {match.group(2)} has no {match.group(1)}", False)]
    if name == "AttributeError" and (match := _MODULE_ATTRIBUTE.search(value)):
        module, attribute = match.groups()
        return [(module, f"AttributeError: {module} has no {attribute}", False)]
    return []


def _from_traceback(name: str, value: str, traceback: str) -> list[tuple[str, str, bool]]:
    """The library the cell called and the one that raised, from the traceback's file paths."""
    if name not in _API_ERRORS:
        return []
    frames = [m.group(1) for m in _LIBRARY_FRAME.finditer(strip_ansi(traceback))]
    libraries = [f for f in frames if f not in _MACHINERY and not f.startswith("_")]
    if not libraries:
        return []
    first = (value.strip().splitlines() or [""])[0][:120]
    summary = f"{name}: {first}".rstrip(": ")
    raised = (libraries[-1], f"{libraries[-1]} raised {summary}", False)
    if libraries[0] == libraries[-1]:
        return [raised]
    return [
        (libraries[0], f"the cell's call into {libraries[0]} failed ({summary})", False),
        raised,
    ]
