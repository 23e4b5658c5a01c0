"""Load a notebook: nbformat read, upgrade to v4, validate, and keep what the later stages need.

``reads`` works on text and touches no disk; ``read`` wraps it for a file.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.validator import ValidationError

from promote.errors import NotebookReadError

__all__ = ["Cell", "Notebook", "read", "reads"]

_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes kept by the surrogateescape error handler


@dataclass(frozen=True)
class Cell:
    """One cell as the user sees it; ``index`` counts every cell from 1, top to bottom."""

    index: int
    kind: str
    source: str
    tags: tuple[str, ...] = ()
    execution_count: int | None = None
    outputs: tuple[dict[str, Any], ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)


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
    return reads(_text(path), path)


def _text(path: Path) -> str:
    """The file's text; its bytes are released before parsing starts (large outputs)."""
    if not path.exists():
        raise NotebookReadError(path, "no such file", "Check the path and try again.")
    if path.is_dir():
        raise NotebookReadError(path, "it is a directory", "Pass the .ipynb file itself.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NotebookReadError(path, f"the file cannot be opened ({exc.strerror})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookReadError(
            path,
            f"it is not UTF-8 text (invalid byte at offset {exc.start})",
            "Notebooks are UTF-8 JSON; re-save it from Jupyter.",
            cell=_cell_with_undecodable_bytes(data),
        ) from exc


def _cell_with_undecodable_bytes(data: bytes) -> int | None:
    """The first cell holding bytes that are not UTF-8, when the JSON around them parses."""
    try:
        raw = json.loads(data.decode("utf-8", "surrogateescape"))
        cells = raw["cells"] if "cells" in raw else raw["worksheets"][0]["cells"]
        for index, cell in enumerate(cells, start=1):
            if _UNDECODABLE.search(json.dumps(cell, ensure_ascii=False)):
                return index
    except (ValueError, RecursionError, LookupError, TypeError):
        pass
    return None


def reads(text: str, path: Path | str = "<string>") -> Notebook:
    """Parse notebook JSON text; ``path`` only names the notebook in messages.

    The JSON is parsed once; nbformat then upgrades the dictionaries (older formats become v4)
    and validates them against the schema, before and after the upgrade.
    """
    path = Path(path)
    if not text.strip():
        raise NotebookReadError(
            path, "the file is empty", "Open it in Jupyter, add your cells and save it."
        )
    raw = _json(text, path)
    if not isinstance(raw, dict) or ("cells" not in raw and "worksheets" not in raw):
        raise NotebookReadError(path, "the JSON holds no notebook cells", "Is this an .ipynb file?")
    major, minor = raw.get("nbformat"), raw.get("nbformat_minor", 0)
    if not _is_int(major) or not _is_int(minor) or major not in nbformat.versions:
        version = repr(major) if minor == 0 else f"{major!r}.{minor!r}"
        raise NotebookReadError(
            path,
            f"its format version (nbformat {version}) is not one promote can read",
            f"Re-save it from Jupyter (nbformat {nbformat.current_nbformat}).",
        )
    with warnings.catch_warnings():  # missing cell ids and the like: fixed in memory, not news
        warnings.simplefilter("ignore")
        _validate(raw, path)
        try:
            node = nbformat.versions[major].to_notebook_json(raw, minor=minor)
            node = nbformat.convert(node, 4)
        except Exception as exc:  # nbformat's upgrade code assumes well-formed input
            raise NotebookReadError(
                path,
                f"it is not a valid notebook ({type(exc).__name__}: {_first_line(str(exc))})",
                "Re-save it from Jupyter.",
            ) from exc
        _validate(node, path)
    return _from_node(node, path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookReadError(
            path,
            f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            "The file may be truncated or not a notebook; re-save it from Jupyter.",
        ) from exc
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, nesting too deep
        raise NotebookReadError(
            path,
            f"its JSON cannot be loaded ({_first_line(str(exc)) or type(exc).__name__})",
            "Re-save it from Jupyter.",
        ) from exc


def _validate(node: Any, path: Path) -> None:
    """Validate against the notebook schema; a failure names the cell and the field."""
    try:
        nbformat.validate(node)
    except ValidationError as exc:
        cell, field_name = _schema_location(list(exc.absolute_path))
        raise NotebookReadError(
            path,
            f"it does not follow the notebook format ({field_name} {_schema_problem(exc)})",
            "Re-save it from Jupyter, or repair it with `nbformat`'s `validate`/`normalize`.",
            cell=cell,
        ) from exc
    except Exception as exc:  # the validator itself fails on some malformed input
        raise NotebookReadError(
            path,
            f"it is not a valid notebook ({type(exc).__name__}: {_first_line(str(exc))})",
            "Re-save it from Jupyter.",
        ) from exc


def _schema_location(where: list[str | int]) -> tuple[int | None, str]:
    """``['cells', 3, 'outputs', 0]`` → (cell 4, "`outputs[0]`"); cells count from 1."""
    cell = None
    for position, part in enumerate(where[:-1]):
        if part == "cells" and isinstance(where[position + 1], int):
            cell = int(where[position + 1]) + 1
            where = where[position + 2 :]
            break
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where).lstrip(".")
    if text:
        return cell, f"`{text}`"
    return cell, "the cell" if cell is not None else "the notebook"


def _schema_problem(exc: ValidationError) -> str:
    """What is wrong, without quoting the (possibly enormous) offending value."""
    expected = exc.validator_value
    if exc.validator == "type":
        kinds = " or ".join(expected) if isinstance(expected, list) else str(expected)
        return f"should be of type {kinds}, not {type(exc.instance).__name__}"
    if exc.validator == "enum":
        return f"should be one of {', '.join(map(repr, expected))}"
    if exc.validator in {"required", "additionalProperties"}:
        return "is malformed: " + _first_line(str(exc.message))
    return f"is not valid (it fails the schema's {exc.validator!r} rule)"


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
        metadata=dict(metadata),
    )


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:200]
