"""Tiny harnesses: build notebooks from inline cells, analyse and plan them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from promote.analysis import Analysis, analyse
from promote.notebook import reads
from promote.planning import Plan, plan

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "notebooks"
CORPUS = ROOT.parent / "shared" / "corpus"


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
