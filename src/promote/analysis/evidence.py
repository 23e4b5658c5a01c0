"""What a notebook itself says about the versions it ran with, and when.

Pure: the notebook's metadata, its cells' pip lines and its saved outputs in, an ``Evidence`` out.
Sources, from the most to the least direct:

- the kernel's Python (``language_info.version``, a kernelspec such as "Python 3.7.0 64-bit", or a
  ``python3.7/site-packages/...`` path in a warning or traceback);
- ``!pip install pkg==1.2`` lines;
- versions printed in outputs: ``print(pd.__version__)``, ``pip freeze`` (``pkg==1.2``), ``pip
  list`` (a ``Package  Version`` table), pip's own reports (``Requirement already satisfied: seaborn
  in ... (0.11.1)``, ``Successfully installed a-1.0``), egg paths (``pandas-0.25.1-py3.7.egg``);
- the date the notebook was last run and saved: execution timestamps in the notebook's or its
  cells' metadata (papermill, JupyterLab's ``execution``, nbextensions' ``ExecuteTime``) and a
  ``Last updated: 2021-03-04`` line (watermark) in an output.

A site-packages path without a version (``.../sklearn/linear_model/logistic.py``) says which
Python ran the notebook but not which version of the library; it is kept as Python evidence only.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from promote.analysis import tables
from promote.analysis.statements import Statement
from promote.notebook import Cell, Notebook

__all__ = [
    "Evidence",
    "VersionEvidence",
    "collect",
    "normal_name",
    "output_text",
    "printed_versions",
]

PYTHON = "python"  # the ``distribution`` of evidence about the interpreter itself

_VERSION = r"\d+(?:\.\d+)+(?:(?:a|b|rc|\.post|\.dev)\d+)?"
_PRINTED = re.compile(rf"(?<![\w.])({_VERSION})(?![\w.])")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_FREEZE = re.compile(rf"^\s*({_NAME})(?:\[[^\]]*\])?==({_VERSION})\s*$", re.MULTILINE)
_LIST_HEADER = re.compile(r"^\s*Package\s+Version\s*$", re.MULTILINE)
_LIST_ROW = re.compile(rf"^({_NAME})\s+({_VERSION})(?:\s+\S+)?\s*$")
_SATISFIED = re.compile(
    rf"Requirement already (?:satisfied|up-to-date): ({_NAME})(?:\[[^\]]*\])?[^\n]*? in [^\n]*?"
    rf"\(({_VERSION})\)\s*$",
    re.MULTILINE,
)
_INSTALLED = re.compile(r"Successfully installed ([^\n]+)")
_EGG = re.compile(rf"[/\\]({_NAME})-({_VERSION})-py(\d\.\d+)\.egg")
_SITE = re.compile(r"python(\d\.\d+)[/\\](?:site|dist)-packages\b")
_KERNEL_NAME = re.compile(rf"Python\s+({_VERSION})", re.IGNORECASE)
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_LAST_UPDATED = re.compile(r"^\s*Last updated:\s*(?:\w{3}\s+)?(\d{4}-\d{2}-\d{2})", re.MULTILINE)
_TIME_KEYS = ("end_time", "start_time", "iopub.status.idle", "shell.execute_reply")


class _Located(Protocol):
    @property
    def index(self) -> int: ...

    @property
    def statements(self) -> tuple[Statement, ...]: ...


@dataclass(frozen=True)
class VersionEvidence:
    """One version the notebook shows for one distribution (or for Python itself)."""

    distribution: str  # normalized (``scikit-learn``), or ``python``
    version: str
    source: str  # kernel | pip install | printed | pip freeze | pip list | pip output | path
    cell: int | None  # None for the notebook's metadata
    detail: str = ""  # the text that shows it, shortened


@dataclass(frozen=True)
class Evidence:
    """Everything the notebook says about its environment."""

    versions: tuple[VersionEvidence, ...] = ()
    saved: str | None = None  # ISO date (YYYY-MM-DD) the notebook was last run, when known
    saved_source: str = ""

    @property
    def python(self) -> str | None:
        """The Python that ran the notebook, from the most direct source that names one."""
        found = [v for v in self.versions if v.distribution == PYTHON]
        return found[0].version if found else None

    def version_of(self, distribution: str) -> VersionEvidence | None:
        """The most direct evidence of ``distribution``'s version, if any."""
        key = normal_name(distribution)
        return next((v for v in self.versions if v.distribution == key), None)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view (docs/reference/check-json.md, key ``evidence``)."""
        return {
            "python": self.python,
            "saved": self.saved,
            "saved_source": self.saved_source or None,
            "versions": [
                {
                    "distribution": v.distribution,
                    "version": v.version,
                    "source": v.source,
                    "cell": v.cell,
                    "detail": v.detail,
                }
                for v in self.versions
            ],
        }


_ORDER = ("kernel", "pip install", "printed", "pip freeze", "pip list", "pip output", "path")


def collect(
    notebook: Notebook,
    cells: Sequence[_Located],
    requirements: Iterable[tuple[int, str]] = (),
) -> Evidence:
    """The evidence of versions and date in ``notebook``; ``requirements`` are its pip lines."""
    found: list[VersionEvidence] = []
    found.extend(_kernel(notebook.metadata))
    for cell, requirement in requirements:
        match = re.fullmatch(rf"\s*({_NAME})(?:\[[^\]]*\])?\s*===?\s*({_VERSION})\s*", requirement)
        if match:
            found.append(
                VersionEvidence(
                    normal_name(match.group(1)), match.group(2), "pip install", cell, requirement
                )
            )
    for cell, module, version in printed_versions(cells, notebook.cells):
        name = normal_name(tables.DISTRIBUTIONS.get(module, module))
        found.append(VersionEvidence(name, version, "printed", cell, f"{module}.__version__"))
    for raw in notebook.code_cells:
        found.extend(_in_outputs(raw.index, output_text(raw.outputs)))
    saved, saved_source = _saved(notebook)
    return Evidence(_dedupe(found), saved, saved_source)


def _dedupe(found: list[VersionEvidence]) -> tuple[VersionEvidence, ...]:
    """One entry per (distribution, version, source), the most direct sources first."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for item in sorted(found, key=lambda v: (_ORDER.index(v.source), v.cell or 0)):
        key = (item.distribution, item.version, item.source)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return tuple(out)


def _kernel(metadata: Mapping[str, Any]) -> Iterator[VersionEvidence]:
    info = metadata.get("language_info")
    version = info.get("version") if isinstance(info, dict) else None
    if isinstance(version, str) and re.fullmatch(_VERSION, version.strip()):
        yield VersionEvidence(PYTHON, version.strip(), "kernel", None, "language_info.version")
        return
    spec = metadata.get("kernelspec")
    shown = spec.get("display_name") if isinstance(spec, dict) else None
    match = _KERNEL_NAME.search(shown) if isinstance(shown, str) else None
    if match:
        yield VersionEvidence(PYTHON, match.group(1), "kernel", None, f"kernelspec {shown!r}")


def _in_outputs(cell: int, text: str) -> Iterator[VersionEvidence]:
    if not text:
        return
    for match in _FREEZE.finditer(text):
        yield VersionEvidence(
            normal_name(match.group(1)), match.group(2), "pip freeze", cell, match.group(0).strip()
        )
    if _LIST_HEADER.search(text):
        for line in text[_LIST_HEADER.search(text).end() :].splitlines():  # type: ignore[union-attr]
            row = _LIST_ROW.match(line.strip())
            if row:
                yield VersionEvidence(
                    normal_name(row.group(1)), row.group(2), "pip list", cell, line.strip()
                )
    for match in _SATISFIED.finditer(text):
        detail = f"Requirement already satisfied: {match.group(1)} ({match.group(2)})"
        yield VersionEvidence(
            normal_name(match.group(1)), match.group(2), "pip output", cell, detail
        )
    for match in _INSTALLED.finditer(text):
        for item in match.group(1).split():
            name, _, version = item.rpartition("-")
            if name and re.fullmatch(_VERSION, version):
                yield VersionEvidence(normal_name(name), version, "pip output", cell, item)
    for match in _EGG.finditer(text):
        yield VersionEvidence(
            normal_name(match.group(1)), match.group(2), "path", cell, match.group(0).lstrip("/\\")
        )
        yield VersionEvidence(PYTHON, match.group(3), "path", cell, match.group(0).lstrip("/\\"))
    for match in _SITE.finditer(text):
        yield VersionEvidence(PYTHON, match.group(1), "path", cell, _path_around(text, match))


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path_around(text: str, match: re.Match[str]) -> str:
    """``.../python3.7/site-packages/sklearn/linear_model/logistic.py`` around a match."""
    ends = [i for i in (text.find(c, match.end()) for c in " \n:\"'(,") if i >= 0]
    return "..." + _short(text[match.start() - 1 : min(ends, default=len(text))], 90)


def _saved(notebook: Notebook) -> tuple[str | None, str]:
    """The latest execution date the notebook records, and where it was found."""
    dates: list[tuple[str, str]] = []
    dates.extend((d, "notebook metadata") for d in _stamps(notebook.metadata))
    for cell in notebook.code_cells:
        dates.extend((d, f"cell {cell.index} metadata") for d in _stamps(cell.metadata))
        for match in _LAST_UPDATED.finditer(output_text(cell.outputs)):
            dates.append((match.group(1), f"cell {cell.index} output"))
    if not dates:
        return None, ""
    return max(dates)


def _stamps(metadata: Mapping[str, Any], depth: int = 0) -> Iterator[str]:
    """Dates of execution timestamps under ``metadata`` (papermill, execution, ExecuteTime)."""
    if depth > 3:
        return
    for key, value in metadata.items():
        if isinstance(value, dict):
            yield from _stamps(value, depth + 1)
        elif key in _TIME_KEYS and isinstance(value, str):
            match = _STAMP.match(value.strip())
            if match:
                yield match.group(1)


def printed_versions(
    cells: Sequence[_Located], raw_cells: Iterable[Cell]
) -> list[tuple[int, str, str]]:
    """(cell, top-level module, version) for each ``print(np.__version__)`` and its output.

    A cell's versions are taken only when its output shows exactly as many versions as the cell
    asks for, so they pair up in order.
    """
    aliases = _module_aliases(cells)
    outputs = {c.index: c.outputs for c in raw_cells}
    found: list[tuple[int, str, str]] = []
    for cell in cells:
        asked = [
            aliases[node.value.id]
            for stmt in cell.statements
            for node in stmt.nodes
            if isinstance(node, ast.Attribute)
            and node.attr == "__version__"
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ]
        if not asked:
            continue
        versions = _PRINTED.findall(output_text(outputs.get(cell.index, ())))
        if len(versions) == len(asked):
            found.extend(
                (cell.index, module, version)
                for module, version in zip(asked, versions, strict=True)
            )
    return found


def _module_aliases(cells: Sequence[_Located]) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for cell in cells:
        for stmt in cell.statements:
            node = stmt.node
            if isinstance(node, ast.Import):
                for alias in node.names:
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name.split(".")[0]
    return aliases


def output_text(outputs: Iterable[Mapping[str, Any]]) -> str:
    """The text of a cell's saved outputs: streams, ``text/plain`` results and tracebacks."""
    parts = []
    for output in outputs:
        data = output.get("data")
        shown = data.get("text/plain") if isinstance(data, dict) else None
        for value, joiner in (
            (output.get("text"), ""),
            (shown, ""),
            (output.get("traceback"), "\n"),
        ):
            if isinstance(value, list):
                parts.append(joiner.join(str(v) for v in value))
            elif isinstance(value, str):
                parts.append(value)
    return _ANSI.sub("", "\n".join(parts))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def normal_name(name: str) -> str:
    """A distribution name normalized as PEP 503 does: ``Scikit_Learn`` → ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()
