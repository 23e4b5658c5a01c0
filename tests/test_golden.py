"""Golden files: the package promote generates for each example notebook, reviewed like code.

A change to promote that changes the generated code shows up here as a diff to review. To accept
it, run `PROMOTE_UPDATE_GOLDENS=1 pytest tests/test_golden.py` and commit the new files. A missing
golden file is written on first run (and the test passes), as jupytext's corpus does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import EXAMPLES, ROOT, assert_runs_nothing_at_import

from promote.api import promote

GOLDEN = ROOT / "tests" / "golden"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_generated_package_matches_its_golden_files(notebook: Path, tmp_path: Path) -> None:
    result = promote(notebook, tmp_path / "project")
    assert result.rendered is not None
    update = os.environ.get("PROMOTE_UPDATE_GOLDENS") == "1"
    for relative in result.rendered.files:
        produced = (tmp_path / "project" / relative).read_text()
        golden = GOLDEN / notebook.stem / Path(relative).name
        if update or not golden.exists():
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(produced)
            continue
        assert produced == golden.read_text(), (
            f"{relative} differs from {golden.relative_to(ROOT)}; review the change, then "
            "accept it with PROMOTE_UPDATE_GOLDENS=1"
        )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_generated_modules_do_nothing_when_imported(notebook: Path, tmp_path: Path) -> None:
    """Module level holds imports, definitions, constants and a docstring: no I/O, no training."""
    result = promote(notebook, tmp_path / "project")
    assert result.rendered is not None
    for relative in result.rendered.files:
        assert_runs_nothing_at_import(tmp_path / "project" / relative)
