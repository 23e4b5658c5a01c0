"""Every real notebook in ../shared/corpus is promoted or refused with a reason; none crashes."""

from __future__ import annotations

import csv
import py_compile
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from helpers import CORPUS, assert_runs_nothing_at_import

from promote.api import promote
from promote.errors import PromoteError
from promote.render import ruff_path


def corpus_notebooks() -> list[pytest.param]:  # type: ignore[valid-type]
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        return [
            pytest.param(None, marks=pytest.mark.skip(reason=f"no corpus at {CORPUS}"), id="absent")
        ]
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [pytest.param(CORPUS / r["name"] / r["notebook_relpath"], id=r["name"]) for r in rows]


OUTCOMES: Counter[str] = Counter()


@pytest.mark.corpus
@pytest.mark.parametrize("notebook", corpus_notebooks())
def test_corpus_notebook_is_promoted_or_refused(notebook: Path, tmp_path: Path) -> None:
    target = tmp_path / "project"
    try:
        result = promote(notebook, target)
    except PromoteError as error:
        assert str(notebook) in error.message, "the refusal names the notebook"
        assert "Traceback" not in error.message
        assert not target.exists(), "a refused notebook leaves nothing behind"
        OUTCOMES["refused"] += 1
        return
    assert result.rendered is not None
    for path in sorted(target.rglob("*.py")):
        py_compile.compile(str(path), doraise=True)
    for relative in result.rendered.files:  # the modules made from the notebook
        assert_runs_nothing_at_import(target / relative)
    package = target / "src" / result.plan.package_name
    assert (package / "pipeline.py").is_file()
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        lint = subprocess.run([ruff_path(), *command], cwd=target, capture_output=True, text=True)
        assert lint.returncode == 0, f"the project's own `make lint` fails:\n{lint.stdout}"
    OUTCOMES["promoted"] += 1
