"""Loading: every unreadable file gets a one-paragraph reason that names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promote.errors import NotebookReadError
from promote.notebook import read, reads


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        (b"   \n", "the file is empty"),
        (b'{"cells": [', "not valid JSON"),
        (b'{"hello": 1}', "holds no notebook cells"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'{"cells": 3, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "notebook"),
    ],
    ids=["empty", "blank", "truncated", "not-a-notebook", "binary", "bad-schema"],
)
def test_unreadable_files_are_refused_with_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    """It names the file and says what is wrong, never a traceback."""
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotebookReadError) as caught:
        read(path)
    assert str(path) in caught.value.message
    assert reason in caught.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotebookReadError, match="no such file"):
        read(tmp_path / "nope.ipynb")


def test_version_3_notebook_is_upgraded() -> None:
    """A notebook in the old v3 format (worksheets) is read as v4."""
    v3 = {
        "metadata": {"name": ""},
        "nbformat": 3,
        "nbformat_minor": 0,
        "worksheets": [
            {
                "cells": [
                    {"cell_type": "code", "input": "x = 1", "language": "python", "outputs": []}
                ]
            }
        ],
    }
    notebook = reads(json.dumps(v3), "old.ipynb")
    assert [c.source for c in notebook.code_cells] == ["x = 1"]


def test_cells_keep_index_tags_and_counts() -> None:
    text = json.dumps(
        {
            "cells": [
                {"cell_type": "markdown", "metadata": {}, "source": ["# Title"]},
                {
                    "cell_type": "code",
                    "metadata": {"tags": ["promote: stage=train"]},
                    "source": ["a = 1\n", "b = 2"],
                    "outputs": [],
                    "execution_count": 7,
                },
            ],
            "metadata": {"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
    notebook = reads(text, "nb.ipynb")
    cell = notebook.code_cells[0]
    assert (cell.index, cell.source, cell.tags, cell.execution_count) == (
        2,
        "a = 1\nb = 2",
        ("promote: stage=train",),
        7,
    )
    assert notebook.language == "r"
