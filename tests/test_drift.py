"""The API-drift table: each entry matches its own example and not its modern rewrite; bounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import CORPUS, analyse_cells, notebook_json

from promote import diagnostics as d
from promote.analysis import analyse
from promote.analysis.drift import DriftApi, bounds, find_drift, load_envs, load_table, parse_table
from promote.cli import main
from promote.notebook import read

TABLE = load_table()


def matched(*cells: str) -> set[str]:
    return {m.api.id for m in analyse_cells(*cells).drift}


def test_the_table_covers_at_least_60_apis_of_the_libraries_asked_for() -> None:
    assert len(TABLE) >= 60
    libraries = {e.distribution for e in TABLE}
    assert libraries >= {
        "pandas", "numpy", "scikit-learn", "matplotlib", "seaborn", "statsmodels", "scipy",
        "xgboost", "lightgbm", "tensorflow", "torch",
    }  # fmt: skip


@pytest.mark.parametrize("entry", TABLE, ids=[e.id for e in TABLE])
def test_entry_matches_its_example_and_not_its_modern_form(entry: DriftApi) -> None:
    assert entry.id in matched(entry.example), entry.example
    assert entry.id not in matched(entry.modern), entry.modern


@pytest.mark.parametrize("entry", TABLE, ids=[e.id for e in TABLE])
def test_entry_says_how_it_was_checked(entry: DriftApi) -> None:
    """Every fact is checked in two real environments or against the library's notes."""
    envs = load_envs()
    assert entry.source.strip()
    if entry.verify.get("docs"):
        return
    good, bad = envs[entry.verify["good"]], envs[entry.verify["bad"]]
    good_version, bad_version = good.pinned(entry.distribution), bad.pinned(entry.distribution)
    assert good_version and bad_version
    assert entry.specifier.contains(good_version), (good_version, entry.works)
    assert not entry.specifier.contains(bad_version), (bad_version, entry.works)


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        pytest.param(
            ("import pandas as pd", "df = pd.read_csv('a.csv')\nx = df.ix[0]"),
            {"pandas-ix"},
            id="attribute",
        ),
        pytest.param(("df.ix[0]",), set(), id="attribute-without-the-library"),
        pytest.param(
            ("import numpy as np\nx = np.float64(1)\ny = float(2)",), set(), id="modern-names"
        ),
        pytest.param(
            (
                "from sklearn.model_selection import GridSearchCV\n"
                "from sklearn.tree import DecisionTreeRegressor",
                "grid = {'criterion': ['mse', 'friedman_mse']}\n"
                "search = GridSearchCV(DecisionTreeRegressor(), grid)",
            ),
            {"sklearn-criterion-mse"},
            id="parameter-grid",
        ),
        pytest.param(
            ("from sklearn.model_selection import GridSearchCV", "g = {'criterion': ['gini']}"),
            set(),
            id="grid-without-old-value",
        ),
        pytest.param(
            (
                "from sklearn.feature_selection import RFECV\n"
                "from sklearn.model_selection import GridSearchCV",
                "selector = RFECV(model)\nselector.fit(X, y)\nscores = selector.grid_scores_",
            ),
            {"sklearn-rfecv-grid-scores"},
            id="receiver-decides-the-version",
        ),
        pytest.param(
            ("import sklearn", "scores = unknown.grid_scores_"), set(), id="unknown-receiver"
        ),
        pytest.param(
            (
                "import seaborn as sns",
                "sns.lineplot(x, y)\nsns.lineplot(data=df)\nsns.lineplot(df)",
            ),
            {"seaborn-positional-lineplot"},
            id="positional-count",
        ),
        pytest.param(
            ("import pandas as pd", "items = []\nitems.append(1)\ns = df.shift(1, freq='h')"),
            set(),
            id="list-append-and-new-alias",
        ),
        pytest.param(
            ("import matplotlib.pyplot as plt", "plt.style.use('ggplot')"), set(), id="other-style"
        ),
        pytest.param(
            ("import pandas as pd", "df.fillna(0, inplace=True)\ndf['a'].fillna(0, inplace=False)"),
            set(),
            id="inplace-on-the-frame-itself",
        ),
        pytest.param(
            (
                "import lightgbm as lgb\nimport xgboost as xgb",
                "m = xgb.XGBClassifier()\nm.fit(X, y, early_stopping_rounds=5)",
            ),
            {"xgboost-fit-early-stopping-rounds"},
            id="receiver-picks-the-library",
        ),
    ],
)
def test_matching(cells: tuple[str, ...], expected: set[str]) -> None:
    assert matched(*cells) == expected


def test_a_finding_names_cell_line_and_replacement() -> None:
    analysis = analyse_cells("import numpy as np", "x = 1\ny = np.zeros(3, dtype=np.float)")
    (finding,) = [x for x in analysis.diagnostics if isinstance(x, d.ApiDrift)]
    assert (finding.cell, finding.line, finding.code) == (2, 2, "P040")
    assert "numpy<1.24" in finding.message
    assert "float" in finding.hint


def test_bounds_intersect_per_distribution() -> None:
    analysis = analyse_cells(
        "import sklearn\nfrom sklearn.externals import joblib",
        "from sklearn.linear_model import LinearRegression\nm = LinearRegression(normalize=True)",
        "import numpy as np\nz = np.NaN",
    )
    bounds = {b.distribution: b for b in analysis.bounds}
    assert bounds["scikit-learn"].specifier == "<0.23"
    assert set(bounds["scikit-learn"].apis) == {
        "sklearn-externals-joblib",
        "sklearn-linear-regression-normalize",
    }
    assert bounds["numpy"].specifier == "<2.0"
    assert not any(b.conflict for b in analysis.bounds)


def test_conflicting_bounds_are_reported() -> None:
    table = parse_table(
        """
[[api]]
id = "old"
distribution = "pkg"
module = "pkg"
match = "name"
name = "pkg.old"
works = "<1.0"
removed_in = "1.0"
replacement = "pkg.new"
example = "import pkg\\npkg.old"
modern = "import pkg\\npkg.new"
source = "x"
[[api]]
id = "new"
distribution = "pkg"
module = "pkg"
match = "name"
name = "pkg.newer"
works = ">=2.0"
removed_in = "2.0"
replacement = "-"
example = "import pkg\\npkg.newer"
modern = "import pkg"
source = "x"
"""
    )
    cells = analyse_cells("import pkg", "a = pkg.old\nb = pkg.newer").cells
    (bound,) = bounds(find_drift(cells, table), table, {})
    assert bound.conflict and bound.specifier in {"<1.0,>=2.0", ">=2.0,<1.0"}


def test_a_malformed_entry_is_named() -> None:
    with pytest.raises(ValueError, match="'broken'"):
        parse_table('[[api]]\nid = "broken"\ndistribution = "x"\n')


CORPUS_BOUNDS = {
    "dipanjan-bike-dtree-regression/notebook.ipynb": {"scikit-learn": "<1.2"},
    "dipanjan-student-recommendation/notebook.ipynb": {"scikit-learn": "<0.23"},
    "kaggle-breast-cancer-featsel/notebook.ipynb": {"scikit-learn": "<1.2"},
    "kaggle-titanic-logreg/notebook.ipynb": {"scikit-learn": "<1.2", "pandas": "<3.0"},
    "mlfb-kmeans-songs/2-K-Means/solution/notebook.ipynb": {"seaborn": "<0.12"},
    "mlfb-energy-arima/notebook.ipynb": {"pandas": "<3.0"},
    "kaggle-aquifer-timeseries/notebook.ipynb": {"statsmodels": "<0.13"},
}


@pytest.mark.corpus
@pytest.mark.parametrize("relative", sorted(CORPUS_BOUNDS))
def test_corpus_notebooks_that_fail_from_drift_get_bounds(relative: str) -> None:
    """The corpus's drift failures (MANIFEST executed_ok) are found statically."""
    path = CORPUS / relative.split("/")[0] / "/".join(relative.split("/")[1:])
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    found = {b.distribution: b.specifier for b in analyse(read(path)).bounds}
    for distribution, specifier in CORPUS_BOUNDS[relative].items():
        assert found.get(distribution) == specifier, found


def test_check_modernize_lists_the_change_for_each_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text(
        notebook_json(
            "import pandas as pd\nfrom sklearn.preprocessing import OneHotEncoder",
            "enc = OneHotEncoder(sparse=False)\nfor k, v in df.iteritems():\n    print(k)",
        )
    )
    main(["check", str(path), "--modernize"])
    out = capsys.readouterr().out
    assert "Modernize: 2 changes to run on current libraries" in out
    assert "cell 2, line 1: OneHotEncoder(sparse=...)" in out
    assert "yours:  enc = OneHotEncoder(sparse=False)" in out
    assert "change: sparse_output=" in out
    assert "change: .items()" in out
    main(["check", str(path), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert {b["distribution"]: b["specifier"] for b in data["bounds"]} == {
        "pandas": "<2.0",
        "scikit-learn": "<1.4",
    }
    assert {x["api"] for x in data["drift"]} == {"sklearn-onehot-sparse", "pandas-iteritems"}


def test_check_modernize_without_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text(notebook_json("import pandas as pd\ndf = pd.read_csv('a.csv')"))
    main(["check", str(path), "--modernize"])
    assert "Modernize: nothing to change" in capsys.readouterr().out
