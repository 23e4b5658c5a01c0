"""`promote --execute`: the notebook runs once; the project's parity test replays its results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import EXAMPLES, notebook_json
from project_harness import install_project, venv_command

from promote.cli import EXECUTION_FAILED, main

FIT = "import pandas as pd\nfrom sklearn.linear_model import LinearRegression"
DATA = "X = pd.DataFrame({'a': [1.0, 2.0, 3.0, 4.0]})\ny = [2.0, 4.0, 6.0, 8.0]"
MODEL = "model = LinearRegression()\nmodel.fit(X, y)"


def write(tmp_path: Path, *cells: str) -> Path:
    notebook = tmp_path / "poc.ipynb"
    notebook.write_text(notebook_json(*cells))
    return notebook


def test_execute_records_the_notebooks_results(tmp_path: Path) -> None:
    notebook = write(tmp_path, FIT, DATA, MODEL)
    assert main([str(notebook), "-o", str(tmp_path / "p"), "--execute"]) == 0
    captured = json.loads((tmp_path / "p" / "tests" / "parity" / "notebook.json").read_text())
    assert captured["records"][0] == {"a": 1.0}
    assert captured["predictions"] == pytest.approx([2.0, 4.0, 6.0, 8.0])
    assert "sklearn" in captured["versions"]
    card = (tmp_path / "p" / "docs" / "MODEL_CARD.md").read_text()
    assert "- Fields of one record: `a`." in card


@pytest.mark.parametrize(
    ("cell", "options", "expected"),
    [
        ("raise ValueError('bad data')", [], "at cell 3: ValueError: bad data"),
        ("pd.read_csv('missing.csv')", [], "at cell 3: FileNotFoundError"),
    ],
    ids=["error", "missing-file"],
)
def test_a_failing_run_is_reported_and_the_project_still_generated(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cell: str,
    options: list[str],
    expected: str,
) -> None:
    notebook = write(tmp_path, FIT, DATA, cell, MODEL)
    target = tmp_path / "p"
    assert main([str(notebook), "-o", str(target), "--execute", *options]) == EXECUTION_FAILED
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert (target / "Makefile").is_file()
    assert not (target / "tests" / "parity" / "notebook.json").exists()


def test_a_looping_cell_is_stopped_by_its_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = write(tmp_path, "x = 1", "y = x + 1", "while True:\n    pass", FIT, DATA, MODEL)
    target = tmp_path / "p"
    assert main([str(notebook), "-o", str(target), "--execute", "--timeout", "5"]) == (
        EXECUTION_FAILED
    )
    assert "at cell 3: the cell ran longer than 5 s" in capsys.readouterr().err
    assert (target / "Makefile").is_file()


@pytest.mark.slow
def test_parity_test_passes_then_catches_a_changed_hyper_parameter(tmp_path: Path) -> None:
    folder = tmp_path / "notebooks"
    shutil.copytree(EXAMPLES, folder)
    target = tmp_path / "project"
    assert main([str(folder / "diabetes_regressor.ipynb"), "-o", str(target), "--execute"]) == 0
    install_project(target)
    pytest_bin = venv_command(target, "pytest")
    import subprocess

    passed = subprocess.run(
        [pytest_bin, "-q", "tests/test_parity.py"], cwd=target, capture_output=True, text=True
    )
    assert passed.returncode == 0, passed.stdout
    assert "2 passed" in passed.stdout
    train = target / "src" / "diabetes_regressor" / "train.py"
    train.write_text(train.read_text().replace("max_depth=2", "max_depth=3"))
    failed = subprocess.run(
        [pytest_bin, "-q", "tests/test_parity.py"], cwd=target, capture_output=True, text=True
    )
    assert failed.returncode != 0
    assert "predictions differ from the notebook's" in failed.stdout
