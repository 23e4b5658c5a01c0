"""The resolver: pins in which the notebook's calls work, each with its reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import analyse_cells, code, notebook_json

from promote import resolve as r
from promote.cli import main
from promote.resolve import explain, needed, resolve

SERVICE = ["fastapi==0.165.0", "pandas==3.1.1", "numpy==2.4.6"]


# What each distribution needs (without versions), as uv would bring it into the set.
DEPENDS = {"seaborn": ["matplotlib", "pandas"], "pandas": ["numpy"], "scikit-learn": ["numpy"]}


class FakeIndex:
    """Stands in for ``uv pip compile``: a table of what exists, a resolver over it."""

    def __init__(self, available: Mapping[str, Sequence[str]]) -> None:
        self.available = available
        self.calls: list[list[str]] = []

    def __call__(
        self,
        _uv: str,
        lines: Mapping[str, str],
        service: Mapping[str, str],
        keep_service: bool,
        *_: Any,
    ) -> tuple[dict[str, str] | None, str]:
        from packaging.requirements import Requirement
        from packaging.specifiers import SpecifierSet

        ours = {r.normal_name(n) for n in lines}
        text = list(lines.values()) + [
            pin if keep_service else r.requirement_name(pin)
            for k, pin in service.items()
            if k not in ours
        ]
        self.calls.append(text)
        chosen: dict[str, str] = {}
        merged: dict[str, Any] = {}
        for line in text:
            requirement = Requirement(line)
            key = r.normal_name(requirement.name)
            merged[key] = (
                merged[key] & requirement.specifier if key in merged else requirement.specifier
            )
        for key in list(merged):
            for dependency in DEPENDS.get(key, []):
                if dependency in self.available:
                    merged.setdefault(dependency, SpecifierSet())
        for key, specifier in merged.items():
            fits = [v for v in self.available.get(key, []) if specifier.contains(v)]
            if not fits:
                return None, f"no version of {key} satisfies {specifier}"
            chosen[key] = fits[-1]
        return chosen, ""


@pytest.fixture(name="index")
def fake_index(monkeypatch: pytest.MonkeyPatch) -> FakeIndex:
    fake = FakeIndex(
        {
            "scikit-learn": ["1.1.3", "1.9.1"],  # no wheels for 0.22 on this Python
            "numpy": ["1.26.4", "2.4.6"],
            "pandas": ["1.5.3", "2.2.3", "3.1.1"],
            "fastapi": ["0.165.0"],
            "seaborn": ["0.11.2", "0.13.2"],
            "matplotlib": ["3.8.4", "3.11.2"],
            "torch": ["1.13.1", "2.13.0"],  # no wheels for 1.12 on this Python
        }
    )
    monkeypatch.setattr(r, "_compile", fake)
    monkeypatch.setattr(r, "find_uv", lambda: "uv")
    return fake


def pins(resolution: r.Resolution) -> dict[str, str | None]:
    return {p.distribution: p.version for p in resolution.pins}


@pytest.mark.usefixtures("index")
def test_a_bound_pins_the_newest_version_inside_it_and_numpy_that_fits() -> None:
    analysis = analyse_cells(
        "import numpy as np\nfrom sklearn.tree import DecisionTreeRegressor",
        "model = DecisionTreeRegressor(criterion='mse')",
    )
    result = resolve(
        analysis, ["numpy==2.4.6", "scikit-learn==1.9.1"], SERVICE, installed={"numpy": "2.4.6"}
    )
    assert pins(result)["scikit-learn"] == "1.1.3"
    assert pins(result)["numpy"] == "1.26.4"  # scikit-learn 1.1.3 is built for numpy 1
    assert any("numpy<2" in note for note in result.notes)
    reasons = {p.distribution: p.reason for p in result.pins}
    assert (
        "within <1.2" in reasons["scikit-learn"]
        and "sklearn-criterion-mse" in reasons["scikit-learn"]
    )
    assert "scikit-learn==1.1.3" in explain(result)


@pytest.mark.usefixtures("index")
def test_the_version_the_notebook_ran_with_wins_when_it_exists() -> None:
    cell = code("!pip freeze")
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "seaborn==0.11.2\n"}]
    analysis = analyse_cells("import seaborn as sns", cell)
    result = resolve(analysis, ["seaborn==0.13.2"], SERVICE, installed={"seaborn": "0.13.2"})
    assert pins(result)["seaborn"] == "0.11.2"
    assert "pip freeze" in result.pins[0].reason
    # seaborn 0.11 calls matplotlib APIs removed in 3.9: the project pins matplotlib too.
    assert pins(result)["matplotlib"] == "3.8.4"


@pytest.mark.usefixtures("index")
def test_a_version_without_wheels_falls_back_to_its_era() -> None:
    """pandas 1.1.2 has no wheels here: the newest 1.x is pinned, and numpy 1 with it."""
    cell = code("!pip install seaborn")
    text = "Requirement already satisfied: pandas>=0.23 in /x/python3.7/site-packages (1.1.2)\n"
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": text}]
    analysis = analyse_cells("import pandas as pd", cell)
    result = resolve(analysis, ["pandas==3.1.1"], SERVICE, installed={"pandas": "3.1.1"})
    assert pins(result) == {"pandas": "1.5.3", "numpy": "1.26.4"}
    assert "ran with 1.1.2" in result.pins[0].reason and "<2" in result.pins[0].reason


@pytest.mark.usefixtures("index")
def test_torch_keeps_the_installed_major_version_not_the_notebooks_era() -> None:
    """PyTorch 2 kept 1.x's API: a printed torch 1.12.1 does not cap torch below 2, and the
    CPU build's local label (2.13.0+cpu, installed here) is pinned as its public version."""
    cell = code("torch.__version__", count=1)
    cell["outputs"] = [
        {
            "output_type": "execute_result",
            "data": {"text/plain": "'1.12.1'"},
            "metadata": {},
            "execution_count": 1,
        }
    ]
    analysis = analyse_cells("import torch", cell)
    result = resolve(analysis, ["torch==2.13.0"], SERVICE, installed={"torch": "2.13.0+cpu"})
    assert pins(result)["torch"] == "2.13.0"
    assert "installed where promote ran" in result.pins[0].reason


@pytest.mark.usefixtures("index")
def test_a_bound_no_wheel_can_meet_is_dropped_and_said() -> None:
    analysis = analyse_cells("from sklearn.externals import joblib")
    result = resolve(analysis, ["scikit-learn==1.9.1"], SERVICE, installed={})
    assert pins(result)["scikit-learn"] == "1.9.1"
    (note,) = [n for n in result.notes if "no wheels" in n]
    assert "scikit-learn<0.23" in note and "--modernize" in note


def test_without_an_index_bounds_replace_pins_that_break_them() -> None:
    analysis = analyse_cells(
        "import pandas as pd\nfrom sklearn.linear_model import LinearRegression",
        "m = LinearRegression(normalize=True)",
    )
    result = resolve(analysis, ["pandas==3.1.1", "scikit-learn==1.9.1"], SERVICE, index=False)
    assert result.method == "offline"
    assert result.requirements == ("pandas==3.1.1", "scikit-learn<1.2")


def test_resolution_is_needed_only_when_the_notebook_says_something() -> None:
    assert not needed(analyse_cells("import pandas as pd\ndf = pd.read_csv('a.csv')"))
    assert needed(analyse_cells("import numpy as np\nx = np.float(1)"))


def test_real_index_pins_old_scikit_learn_for_removed_criterion() -> None:
    """One real resolution against PyPI (skipped offline)."""
    analysis = analyse_cells(
        "from sklearn.tree import DecisionTreeRegressor",
        "model = DecisionTreeRegressor(criterion='mse')",
    )
    result = resolve(analysis, ["scikit-learn==1.9.1"], SERVICE, timeout=90)
    if result.method != "uv":
        pytest.skip(f"no package index here: {result.notes}")
    assert pins(result)["scikit-learn"] == "1.1.3"
    numpy = pins(result).get("numpy")
    assert numpy is not None and int(numpy.split(".")[0]) < 2


def test_promote_pretend_explains_the_pins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--explain-pins` on the build command; with --no-lock the bound is written as a range."""
    path = tmp_path / "nb.ipynb"
    path.write_text(
        notebook_json(
            "import pandas as pd\nfrom sklearn.tree import DecisionTreeRegressor",
            "df = pd.DataFrame({'x': [0.0, 1.0], 'y': [0.0, 1.0]})",
            "X = df[['x']]\ny = df['y']",
            "model = DecisionTreeRegressor(criterion='mse')\nmodel.fit(X, y)",
            "pred = model.predict(X)",
        )
    )
    code_ = main(
        [
            "build",
            str(path),
            "-o",
            str(tmp_path / "out"),
            "--pretend",
            "--no-lock",
            "--explain-pins",
        ]
    )
    out = capsys.readouterr().out
    assert code_ == 0
    assert "scikit-learn<1.2" in out and "sklearn-criterion-mse" in out
    (dependencies,) = [line for line in out.splitlines() if "dependencies:" in line]
    assert "scikit-learn<1.2" in dependencies  # the plan carries the bound, not 1.9.1


@pytest.mark.usefixtures("index")
def test_a_pip_pin_without_wheels_for_this_python_gives_way_and_is_said() -> None:
    analysis = analyse_cells("!pip install scikit-learn==0.22.1", "import sklearn")
    result = resolve(analysis, ["scikit-learn==0.22.1"], SERVICE, installed={})
    assert pins(result)["scikit-learn"] == "1.9.1"
    assert any("scikit-learn==0.22.1" in note and "no wheels" in note for note in result.notes)
