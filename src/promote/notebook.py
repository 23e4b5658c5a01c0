"""Load a notebook: nbformat read, upgrade to v4, validate, and keep what the later stages need.

``reads`` works on text and touches no disk; ``read`` wraps it for a file.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.validator import ValidationError

from promote.errors import NotebookReadError

__all__ = ["Cell", "Notebook", "read", "reads"]


@dataclass(frozen=True)
class Cell:
    """One cell as the user sees it; ``index`` counts every cell from 1, top to bottom."""

    index: int
    kind: str
    source: str
    tags: tuple[str, ...] = ()
    execution_count: int | None = None
    outputs: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Notebook:
    """A validated nbformat-4 notebook reduced to plain data."""

    path: Path
    cells: tuple[Cell, ...]
    language: str = "python"
    kernel_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        """The code cells, in order."""
        return tuple(c for c in self.cells if c.kind == "code")


def read(path: Path | str) -> Notebook:
    """Read and validate the notebook at ``path``."""
    path = Path(path)
    if not path.exists():
        raise NotebookReadError(path, "no such file", "Check the path and try again.")
    if path.is_dir():
        raise NotebookReadError(path, "it is a directory", "Pass the .ipynb file itself.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NotebookReadError(path, f"the file cannot be opened ({exc.strerror})") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookReadError(
            path,
            f"it is not UTF-8 text (invalid byte at offset {exc.start})",
            "Notebooks are UTF-8 JSON; re-save it from Jupyter.",
        ) from exc
    return reads(text, path)


def reads(text: str, path: Path | str = "<string>") -> Notebook:
    """Parse notebook JSON text; ``path`` only names the notebook in messages."""
    path = Path(path)
    if not text.strip():
        raise NotebookReadError(
            path, "the file is empty", "Open it in Jupyter, add your cells and save it."
        )
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookReadError(
            path,
            f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            "The file may be truncated or not a notebook; re-save it from Jupyter.",
        ) from exc
    if not isinstance(raw, dict) or ("cells" not in raw and "worksheets" not in raw):
        raise NotebookReadError(path, "the JSON holds no notebook cells", "Is this an .ipynb file?")
    try:
        with warnings.catch_warnings():  # missing cell ids and the like: fixed in memory, not news
            warnings.simplefilter("ignore")
            node = nbformat.reads(text, as_version=4)
            nbformat.validate(node)
    except ValidationError as exc:
        raise NotebookReadError(
            path,
            f"it does not follow the notebook format ({_first_line(exc.message)})",
            "Re-save it from Jupyter, or run `jupyter trust`/`nbformat` to repair it.",
        ) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NotebookReadError(path, f"it is not a valid notebook ({exc})") from exc
    return _from_node(node, path)


def _from_node(node: Any, path: Path) -> Notebook:
    cells = tuple(_cell(i, c) for i, c in enumerate(node.cells, start=1))
    meta = dict(node.get("metadata", {}))
    kernelspec = meta.get("kernelspec") or {}
    language_info = meta.get("language_info") or {}
    language = str(kernelspec.get("language") or language_info.get("name") or "python").lower()
    return Notebook(
        path=path,
        cells=cells,
        language=language,
        kernel_name=str(kernelspec.get("name", "")),
        metadata=meta,
    )


def _cell(index: int, node: Any) -> Cell:
    metadata = node.get("metadata", {}) or {}
    tags = tuple(str(t) for t in metadata.get("tags", []) or [])
    source = node.get("source", "")
    if isinstance(source, list):
        source = "".join(source)
    return Cell(
        index=index,
        kind=str(node.get("cell_type", "raw")),
        source=str(source),
        tags=tags,
        execution_count=node.get("execution_count"),
        outputs=tuple(dict(o) for o in node.get("outputs", []) or []),
    )


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "schema error"
    return line[:200]
