"""The analysis on small inline cells: definitions, uses, roles, display, diagnostics, model."""

from __future__ import annotations

import pytest
from helpers import analyse_cells, code

from promote import diagnostics as d


def defined(analysis, cell: int) -> set[str]:  # type: ignore[no-untyped-def]
    found = next(c for c in analysis.cells if c.index == cell)
    return {n for s in found.statements if s.kind != "display" for n in s.binds}


@pytest.mark.parametrize(
    ("source", "reads", "binds"),
    [
        ("x += 1", ["x"], ["x"]),
        ('df["c"] = df.a * k', ["df", "k"], ["df"]),
        ("obj.attr = value", ["value", "obj"], ["obj"]),
        ("df.dropna(inplace=True)", ["df"], ["df"]),
        ("model.fit(X, y)", ["model", "X", "y"], ["model"]),
        ("y = [i * z for i in range(n)]", ["range", "n", "z"], ["y"]),
        ("f = lambda q: q + w", ["w"], ["f"]),
        ("def f(a):\n    return a + g", [], ["f"]),
        ("import os.path as p, numpy", [], ["p", "numpy"]),
        ("for c in cols:\n    total = c", ["cols"], ["c", "total"]),
        ("with open(p) as fh:\n    text = fh.read()", ["open", "p"], ["fh", "text"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_reads_and_binds(source: str, reads: list[str], binds: list[str]) -> None:
    statement = analyse_cells(source).cells[0].statements[0]
    assert [n for n in statement.reads if n not in {"range", "open"}] == [
        n for n in reads if n not in {"range", "open"}
    ]
    assert list(statement.binds) == binds


@pytest.mark.parametrize(
    "source",
    [
        "df.head()",
        "df",
        "df.shape",
        "X_train.shape, X_test.shape",
        "print(accuracy)",
        "len(df), len(X)",
        "plt.show()",
        "df.corr()['y'].drop('y').sort_values()",
        "pd.DataFrame(matrix, index=labels)",
    ],
)
def test_display_statements_are_left_out(source: str) -> None:
    analysis = analyse_cells(
        "import pandas as pd\nimport matplotlib.pyplot as plt\n",
        "df = pd.read_csv('x.csv')",
        source,
    )
    assert [s.kind for s in analysis.cells[2].statements] == ["display"]
    assert defined(analysis, 3) == set()


@pytest.mark.parametrize(
    "source",
    [
        "model.fit(X, y)",
        "df.drop(columns=['a'], inplace=True)",
        "items.append(3)",
        "np.random.seed(0)",
    ],
)
def test_statements_that_change_state_are_kept(source: str) -> None:
    analysis = analyse_cells("import numpy as np", source)
    assert [s.kind for s in analysis.cells[1].statements] == ["code"]


def test_plots_and_their_figures_are_display() -> None:
    analysis = analyse_cells(
        "import matplotlib.pyplot as plt",
        "fig, ax = plt.subplots()\nax.hist(values)\nax.set_title('t')\n"
        "for c in cols:\n    ax.plot(c)",
    )
    assert {s.kind for s in analysis.cells[1].statements} == {"display"}
    assert analysis.cells[1].role == "display"


@pytest.mark.parametrize(
    ("source", "role"),
    [
        ("import pandas as pd", "imports"),
        ("SEED = 42\nPATH = 'data.csv'", "config"),
        ("df = pd.read_csv(PATH)", "load"),
        ("df['r'] = df.a / df.b", "features"),
        ("model.fit(X_train, y_train)", "train"),
        ("acc = accuracy_score(y_test, y_pred)", "evaluate"),
        ("preds = model.predict(new)", "predict"),
        ("df.describe()", "display"),
    ],
)
def test_roles(source: str, role: str) -> None:
    assert analyse_cells(source).cells[0].role == role


def test_undefined_name_is_hidden_state() -> None:
    analysis = analyse_cells("a = 1", "b = a + ghost")
    assert [(type(x), x.cell, getattr(x, "name", "")) for x in analysis.diagnostics] == [
        (d.UndefinedName, 2, "ghost")
    ]


def test_use_before_definition_names_the_defining_cell() -> None:
    analysis = analyse_cells("b = later + 1", "later = 2")
    (found,) = analysis.diagnostics
    assert isinstance(found, d.UseBeforeDefinition)
    assert (found.cell, found.name, found.defined_in) == (1, "later", 2)


def test_function_bodies_are_checked_where_called() -> None:
    """A function may read a name that a later cell defines, as long as it is called after."""
    analysis = analyse_cells("def f():\n    return threshold * 2", "threshold = pick()", "v = f()")
    assert [type(x) for x in analysis.diagnostics] == [d.FunctionReadsGlobal, d.UndefinedName]
    assert not analysis.definitions["f"].pure


def test_pure_definition() -> None:
    analysis = analyse_cells(
        "import numpy as np\nSCALE = 2", "def f(x):\n    return np.log(x) * SCALE"
    )
    assert analysis.definitions["f"].pure


def test_out_of_order_execution_counts() -> None:
    analysis = analyse_cells(code("a = 1", count=3), code("b = a", count=1))
    assert [type(x) for x in analysis.diagnostics] == [d.OutOfOrderExecution]


def test_star_import_is_reported_and_silences_undefined_names() -> None:
    analysis = analyse_cells("from fastai.tabular import *", "learn = tabular_learner(data)")
    assert [type(x) for x in analysis.diagnostics] == [d.StarImport]


def test_hard_coded_secret() -> None:
    analysis = analyse_cells("API_KEY = 'sk-1234567890abcdef'")
    assert [type(x) for x in analysis.diagnostics] == [d.HardcodedSecret]


@pytest.mark.parametrize(
    ("cells", "model", "fit_input"),
    [
        (
            (
                "model = LogisticRegression()",
                "model.fit(X_train, y_train)",
                "p = model.predict(X_test)",
            ),
            "model",
            "X_train",
        ),
        (("reg = LinearRegression().fit(X, y)",), "reg", "X"),
        (("scaler.fit(X)", "clf.fit(Xs, y)", "clf.predict(Xs)"), "clf", "Xs"),
        (("grid.fit(X, y)", "best = grid.best_estimator_"), "grid", "X"),
    ],
)
def test_model_is_the_fitted_object_that_predicts(
    cells: tuple[str, ...], model: str, fit_input: str
) -> None:
    found = analyse_cells(*cells).model
    assert found is not None
    assert (found.name, found.fit_input) == (model, fit_input)


def test_no_model() -> None:
    assert analyse_cells("import pandas as pd", "df = pd.read_csv('a.csv')").model is None


def test_constants_are_upper_case_or_in_a_settings_cell() -> None:
    analysis = analyse_cells("TEST_SIZE = 0.2\nlr = 0.1", "n = 5\nm = n + 1", "N = 3\nN = 4")
    assert set(analysis.constants) == {"TEST_SIZE", "lr"}


def test_skip_tag_removes_a_cell() -> None:
    analysis = analyse_cells("a = 1", code("a = broken(", tags=("promote: skip",)))
    assert [c.index for c in analysis.cells] == [1]
    assert analysis.errors == ()


def test_a_loop_that_draws_on_an_axis_is_display() -> None:
    """A loop that computes only to draw on `ax` reads `ax`: it is display, not package code."""
    analysis = analyse_cells(
        "import matplotlib.pyplot as plt",
        "ax = plt.axes()\nfor s in scores:\n    m = s * 2\n    ax.plot(m)",
    )
    assert [s.kind for s in analysis.cells[1].statements] == ["display", "display"]
