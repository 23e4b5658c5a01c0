"""IPython syntax becomes Python, dependencies or diagnostics; never a syntax error."""

from __future__ import annotations

import pytest

from promote import diagnostics as d
from promote.normalize import normalize


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("%matplotlib inline\nx = 1\n", "x = 1\n"),
        ("%load_ext autoreload\n%autoreload 2\nx = 1\n", "x = 1\n"),
        ("%%time\nx = 1\n# kept\ny = 2\n", "x = 1\n# kept\ny = 2\n"),
        ("%%capture out\nx = fit()\n", "x = fit()\n"),
        ("%time y = f(x)\n", "y = f(x)\n"),
        ("%time f(x)\n", "f(x)\n"),
        ("df?\nx = 1\n", "x = 1\n"),
        ("for i in range(3):\n    !echo hi\n", "for i in range(3):\n    pass\n"),
    ],
    ids=[
        "matplotlib",
        "autoreload",
        "cell-time",
        "capture",
        "time-assign",
        "time-expr",
        "help",
        "nested-shell",
    ],
)
def test_magics_become_python(source: str, expected: str) -> None:
    result = normalize(source, 1)
    assert result.syntax_error is None
    assert result.source == expected


def test_pip_installs_become_requirements_with_versions() -> None:
    result = normalize(
        "!pip install -q xgboost==2.0.3 'lightgbm>=4'\n%pip install shap\npip install umap-learn\n",
        3,
    )
    assert result.requirements == ("xgboost==2.0.3", "lightgbm>=4", "shap", "umap-learn")
    assert result.source.strip() == ""
    assert all(isinstance(x, d.PipInstall) and x.cell == 3 for x in result.diagnostics)


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("!wget https://example.com/data.csv\n", d.NetworkAccess),
        ("%run helpers.ipynb\n", d.ExternalNotebook),
        ("!ls -la\n", d.ShellCommand),
        ("%%writefile app.py\nprint(1)\n", d.WritesFile),
        ("%cd /tmp\n", d.ChangesDirectory),
        ("%%bash\necho hi\n", d.ShellCommand),
        ("%%html\n<b>x</b>\n", d.CellMagic),
    ],
)
def test_outside_effects_are_reported(source: str, kind: type[d.Diagnostic]) -> None:
    result = normalize(source, 5)
    assert [type(x) for x in result.diagnostics] == [kind]
    assert result.diagnostics[0].cell == 5


def test_python_2_is_a_syntax_error_with_the_line() -> None:
    result = normalize("x = 1\nprint x\n", 9)
    assert result.syntax_error is not None
    assert (result.syntax_error.cell, result.syntax_error.line) == (9, 2)


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("%matplotlib inline\nimport os\nx = 1\n", (2, 3)),
        ("%%time\nx = 1\n# kept\ny = 2\n", (2, 3, 4)),
        ("a = 1\n!ls\nb = 2\n", (1, 3)),
        ("for i in r:\n    !echo\n    y = 2\n", (1, 2, 3)),
    ],
    ids=["line-magic-dropped", "cell-magic-unwrapped", "shell-dropped", "shell-nested"],
)
def test_each_normalized_line_knows_its_line_as_written(
    source: str, lines: tuple[int, ...]
) -> None:
    assert normalize(source, 1).lines == lines


def test_diagnostics_inside_an_unwrapped_cell_magic_have_the_written_line() -> None:
    (found,) = normalize("%%time\nx = 1\n!wget https://x.org/d.csv\n", 4).diagnostics
    assert (type(found), found.cell, found.line) == (d.NetworkAccess, 4, 3)


def test_a_syntax_error_after_a_magic_has_the_written_line() -> None:
    result = normalize("%matplotlib inline\nx = 1\nprint x\n", 2)
    assert result.syntax_error is not None and result.syntax_error.line == 3
