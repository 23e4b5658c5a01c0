"""Evidence of versions: what a notebook's metadata, pip lines and saved outputs say it ran with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import code

from promote.analysis import analyse
from promote.analysis.evidence import Evidence
from promote.cli import main
from promote.notebook import reads


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def with_outputs(source: str, *outputs: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    cell = code(source, count=1)
    cell["outputs"] = list(outputs)
    cell["metadata"] = metadata
    return cell


def evidence_of(*cells: str | dict[str, Any], metadata: dict[str, Any] | None = None) -> Evidence:
    nodes = [c if isinstance(c, dict) else code(c) for c in cells]
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    meta.update(metadata or {})
    text = json.dumps({"cells": nodes, "metadata": meta, "nbformat": 4, "nbformat_minor": 5})
    return analyse(reads(text, "nb.ipynb")).evidence


def found(evidence: Evidence) -> set[tuple[str, str, str]]:
    return {(v.distribution, v.version, v.source) for v in evidence.versions}


def test_kernel_python_from_language_info() -> None:
    """The kernel's Python version comes from the notebook's metadata."""
    evidence = evidence_of(
        "x = 1", metadata={"language_info": {"name": "python", "version": "3.7.4"}}
    )
    assert evidence.python == "3.7.4"
    assert ("python", "3.7.4", "kernel") in found(evidence)


def test_kernel_python_from_a_display_name() -> None:
    """VS Code's kernelspec names the interpreter when language_info has no version."""
    evidence = evidence_of(
        "x = 1",
        metadata={"kernelspec": {"name": "py37", "display_name": "Python 3.7.0 64-bit ('3.7')"}},
    )
    assert evidence.python == "3.7.0"


def test_pip_pins_are_evidence() -> None:
    evidence = evidence_of("!pip install scikit-learn==0.22.1 xgboost>=1", "import sklearn")
    assert ("scikit-learn", "0.22.1", "pip install") in found(evidence)
    assert not any(v.distribution == "xgboost" for v in evidence.versions)  # not an exact pin


def test_printed_dunder_version_names_the_distribution() -> None:
    cell = with_outputs(
        "import sklearn, pandas as pd\nprint(sklearn.__version__, pd.__version__)",
        stream("0.21.3 0.25.1\n"),
    )
    evidence = evidence_of(cell)
    assert {("scikit-learn", "0.21.3", "printed"), ("pandas", "0.25.1", "printed")} <= found(
        evidence
    )
    assert evidence.version_of("Scikit_Learn") is not None


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(
            "numpy==1.16.4\npandas==0.24.2\n", {("numpy", "1.16.4", "pip freeze")}, id="freeze"
        ),
        pytest.param(
            "Package    Version\n---------- -------\nscikit-learn 0.20.3\nseaborn  0.9.0\n",
            {("scikit-learn", "0.20.3", "pip list"), ("seaborn", "0.9.0", "pip list")},
            id="list",
        ),
        pytest.param(
            "Requirement already satisfied: pandas>=0.23 in /usr/lib/python3.7/site-packages "
            "(from seaborn) (1.1.2)\n",
            {("pandas", "1.1.2", "pip output"), ("python", "3.7", "path")},
            id="already-satisfied",
        ),
        pytest.param(
            "Successfully installed lightgbm-2.3.1 xgboost-0.90\n",
            {("lightgbm", "2.3.1", "pip output"), ("xgboost", "0.90", "pip output")},
            id="installed",
        ),
        pytest.param(
            "/opt/conda/lib/python3.6/site-packages/sklearn/ensemble/forest.py:245: FutureWarning:",
            {("python", "3.6", "path")},
            id="warning-path",
        ),
        pytest.param(
            "File /x/lib/python3.8/site-packages/pandas-0.25.1-py3.8.egg/pandas/core/frame.py",
            {("pandas", "0.25.1", "path"), ("python", "3.8", "path")},
            id="egg",
        ),
    ],
)
def test_versions_in_saved_outputs(output: str, expected: set[tuple[str, str, str]]) -> None:
    """pip freeze/list, pip's own reports and site-packages paths in outputs are evidence."""
    assert expected <= found(evidence_of(with_outputs("!pip freeze", stream(output, "stderr"))))


def test_a_traceback_path_gives_the_python_version() -> None:
    error = {
        "output_type": "error",
        "ename": "ImportError",
        "evalue": "x",
        "traceback": ["\x1b[0;32m/home/a/.venv/lib/python3.9/site-packages/sklearn/base.py\x1b[0m"],
    }
    assert evidence_of(with_outputs("import sklearn", error)).python == "3.9"


def test_numbers_in_ordinary_outputs_are_not_versions() -> None:
    """A DataFrame or a score printed by the notebook is not mistaken for a version."""
    cell = with_outputs("print(score)", stream("0.95 1.2.3\n== 2.0\nAccuracy: 0.9\n"))
    assert evidence_of(cell).versions == ()


def test_last_run_date_from_cell_metadata_and_watermark() -> None:
    papermill = {
        "papermill": {"start_time": "2021-10-08T10:00:00.1", "end_time": "2021-10-08T10:00:01"}
    }
    first = with_outputs("x = 1", **papermill)
    second = with_outputs("%watermark", stream("Last updated: 2022-01-31T09:10:11\n"))
    evidence = evidence_of(first, second)
    assert evidence.saved == "2022-01-31"
    assert evidence.saved_source == "cell 2 output"
    assert evidence_of(first).saved == "2021-10-08"
    assert evidence_of("x = 1").saved is None


def test_check_shows_the_evidence_as_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = [
        code("!pip install scikit-learn==0.22.1"),
        with_outputs("import sklearn\nprint(sklearn.__version__)", stream("0.22.1\n")),
    ]
    meta = {
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "language_info": {"name": "python", "version": "3.6.9"},
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(
        json.dumps({"cells": nodes, "metadata": meta, "nbformat": 4, "nbformat_minor": 5})
    )
    main(["check", str(path)])
    text = capsys.readouterr().out
    assert "Evidence of versions" in text
    assert "python 3.6.9" in text
    assert "scikit-learn 0.22.1" in text and "pip install, cell 1" in text
    main(["check", str(path), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert data["evidence"]["python"] == "3.6.9"
    sources = {(v["distribution"], v["source"]) for v in data["evidence"]["versions"]}
    assert {("scikit-learn", "pip install"), ("scikit-learn", "printed")} <= sources
