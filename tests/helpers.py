"""Tiny harnesses: build notebooks from inline cells, analyse and plan them."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path
from typing import Any

from promote.analysis import Analysis, analyse
from promote.notebook import reads
from promote.planning import Plan, plan

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "notebooks"
CORPUS = ROOT.parent / "shared" / "corpus"


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of each file of a generated project, by relative path, git's own files left out."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def notebook_json(*cells: str | dict[str, Any], language: str = "python") -> str:
    """Notebook JSON from cells: a string is a code cell, "# md: text" a markdown cell.

    A dict is used as is (for tags or execution counts).
    """
    nodes = []
    for cell in cells:
        if isinstance(cell, dict):
            nodes.append(cell)
        elif cell.startswith("# md:"):
            nodes.append({"cell_type": "markdown", "metadata": {}, "source": cell[5:].strip()})
        else:
            nodes.append(code(cell))
    return json.dumps(
        {
            "cells": nodes,
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": language}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def code(source: str, tags: tuple[str, ...] = (), count: int | None = None) -> dict[str, Any]:
    """A code cell node."""
    return {
        "cell_type": "code",
        "metadata": {"tags": list(tags)} if tags else {},
        "source": source,
        "outputs": [],
        "execution_count": count,
    }


def analyse_cells(*cells: str | dict[str, Any], language: str = "python") -> Analysis:
    """Analyse a notebook made of these cells."""
    return analyse(reads(notebook_json(*cells, language=language), "nb.ipynb"))


def plan_cells(*cells: str | dict[str, Any]) -> Plan:
    """Plan a project for a notebook made of these cells."""
    return plan(analyse_cells(*cells), "demo")


SIDE_EFFECT_FREE = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.AnnAssign)


def assert_runs_nothing_at_import(path: Path) -> None:
    """Module level of a generated module holds imports, definitions, literal constants and a
    docstring: importing it does no I/O and trains nothing."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        literal = isinstance(node, ast.Assign) and _is_literal(node.value)
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        assert isinstance(node, SIDE_EFFECT_FREE) or literal or docstring, (
            f"{path.name}:{node.lineno} runs code at import: {ast.unparse(node)[:80]}"
        )


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True
