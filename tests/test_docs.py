"""The documentation site builds with warnings as errors, and its reference pages match the code."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers import EXAMPLES, ROOT

from promote import diagnostics as d
from promote.cli import main


def load_hooks() -> ModuleType:
    """docs/hooks.py, the generator of the reference pages, as a module."""
    spec = importlib.util.spec_from_file_location("promote_docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOOKS = load_hooks()
CLASSES = HOOKS.diagnostic_classes()
NOT_REPORTED_YET = {
    "ConflictingVersionBounds": "P041 needs two entries of src/promote/data/api_drift.toml that "
    "no single version satisfies; the shipped table has none",
}


def test_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    """`mkdocs build --strict` succeeds, and the generated pages are in the site."""
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("build", "check", "new", "update", "capture"):
        assert f"promote {command}" in cli, command
    assert "--total-timeout" in cli and "--no-lock" in cli and "[default: 3600]" in cli
    assert "Sentinel" not in cli  # mkdocs-click's table style shows click 8.3's unset defaults
    diagnostics = (site / "reference" / "diagnostics" / "index.html").read_text()
    for cls in CLASSES:
        assert f'id="{cls.code.lower()}"' in diagnostics, cls.code
    assert 'class="mermaid"' in (site / "explanation" / "architecture" / "index.html").read_text()
    assert (site / "reference" / "check.schema.json").is_file()


@pytest.fixture(scope="module")
def environment_read_once() -> Iterator[None]:
    with HOOKS._environment_read_once():
        yield


@pytest.mark.usefixtures("environment_read_once")
@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: f"{cls.code}-{cls.__name__}")
def test_every_diagnostic_has_an_example_that_produces_it_and_a_fix_that_does_not(
    cls: type[d.Diagnostic],
) -> None:
    """The reference page shows, for each code, a notebook that really has the problem and the
    same notebook fixed (class attributes ``example`` and ``fixed`` in promote.diagnostics)."""
    assert cls.example and cls.fixed, (
        f"{cls.__name__} needs `example` and `fixed` notebooks (see Diagnostic.example) for "
        "docs/reference/diagnostics.md"
    )
    found = [type(x) for x in HOOKS.check_example(cls.example)]
    if cls.__name__ in NOT_REPORTED_YET:
        assert cls not in found, f"{cls.code} is reported now: remove it from NOT_REPORTED_YET"
        pytest.xfail(NOT_REPORTED_YET[cls.__name__])
    assert cls in found, f"{cls.__name__}.example does not produce {cls.code}: {found}"
    fixed = [type(x) for x in HOOKS.check_example(cls.fixed)]
    assert cls not in fixed, f"{cls.__name__}.fixed still produces {cls.code}"


def test_diagnostics_page_lists_every_code_with_the_message_promote_prints() -> None:
    page = HOOKS.diagnostics_page()
    assert "notebook.ipynb, cell 1: P015 error: `api_key` looks like a secret" in page
    for cls in CLASSES:
        assert f"| [{cls.code}](#{cls.code.lower()}) | {cls.severity} | `{cls.__name__}` |" in page


def test_example_notebooks_carry_counts_outputs_and_files() -> None:
    notebook, files = HOOKS.example_notebook(
        "# %% [markdown]\n# Title\n# %% count=3\nx = 1\n# %% output=hello\nprint('hello')\n"
        "# %% file=lib/util.py\nA = 1\n"
    )
    cells = notebook["cells"]
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code"]
    assert cells[0]["source"] == "# Title"
    assert cells[1]["execution_count"] == 3 and cells[1]["source"] == "x = 1"
    assert cells[2]["outputs"][0]["text"] == "hello"
    assert files == {"lib/util.py": "A = 1\n"}


def test_settings_reference_documents_every_service_setting() -> None:
    """Every field of the template's ServiceSettings has a meaning in config.py's docstring."""
    fields = HOOKS.service_settings()
    assert {f["variable"] for f in fields} >= {"PORT", "API_KEY", "DRIFT_WINDOW_SIZE"}
    for field in fields:
        assert field["meaning"], f"{field['variable']} has no row in service/config.py's docstring"
    port = next(f for f in fields if f["variable"] == "PORT")
    assert port["default"] == "8000 (ge 1, le 65535)" and port["type"] == "int"
    page = HOOKS.settings_page()
    assert "| `data_path` | `REVIEW_SENTIMENT_DATA_PATH` | `str` | `'data/reviews.csv'` |" in page


def test_cell_tags_reference_names_every_stage() -> None:
    page = HOOKS.cell_tags_page()
    for stage in ("load", "features", "train", "evaluate", "predict"):
        assert f"`promote: stage={stage}`" in page
    assert "`promote: skip`" in page


def test_check_json_page_describes_every_key_promote_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The key table and the schema name exactly the keys of the real output."""
    assert main(["check", str(EXAMPLES / "review_sentiment.ipynb"), "--format", "json"]) == 0
    keys = set(json.loads(capsys.readouterr().out))
    schema: dict[str, Any] = json.loads(
        (ROOT / "docs" / "reference" / "check.schema.json").read_text()
    )
    assert set(schema["properties"]) == keys
    table = (ROOT / "docs" / "reference" / "check-json.md").read_text()
    assert set(re.findall(r"^\| `(\w+)` \|", table, re.M)) == keys


def test_readme_gives_the_commands_and_links_the_site() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme and "make docs" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), link
