"""Planning on inline cells: stages, honest signatures, settings, dead code, refusals."""

from __future__ import annotations

import pytest
from helpers import code, plan_cells

from promote.errors import RefusedNotebookError
from promote.planning import Plan

PIPELINE = (
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score",
    "SEED = 7",
    "df = pd.read_csv('data.csv')",
    "df['ratio'] = df.a / df.b\nX = df[['a', 'ratio']]\ny = df.label",
    "model = LogisticRegression(random_state=SEED)\nmodel.fit(X, y)",
    "accuracy = accuracy_score(y, model.predict(X))",
)


IMPORTS = "import pandas as pd\nfrom sklearn.linear_model import LinearRegression as Est"


def functions(plan: Plan) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {c.function.name: (c.function.params, c.function.returns) for c in plan.calls}


def test_signatures_take_what_they_read_and_return_what_later_stages_read() -> None:
    plan = plan_cells(*PIPELINE)
    assert functions(plan) == {
        "load_data": ((), ("df",)),
        "build_features": (("df",), ("X", "y")),
        "train_model": (("X", "y"), ("model",)),
        "evaluate_model": (("y", "model", "X"), ("accuracy",)),
    }
    assert [m.name for m in plan.modules] == ["data", "features", "train", "evaluate"]
    assert (plan.model, plan.fit_input, plan.metrics) == ("model", "X", ("accuracy",))
    assert plan.setting_names == {"SEED"}


def test_tags_override_headings_and_headings_override_roles() -> None:
    plan = plan_cells(
        IMPORTS,
        "# md: ## Load the data",
        "df = pd.read_csv('d.csv')\ndf['r'] = df.a * 2",
        code("X = df[['a', 'r']]\ny = df.y", tags=("promote: stage=train",)),
        "# md: ## Model",
        "model = Est()\nmodel.fit(X, y)",
    )
    assert [(c.function.name, c.function.stage) for c in plan.calls] == [
        ("load_data", "load"),
        ("train_model", "train"),
    ]
    assert plan.calls[1].function.cells == (4, 6)


def test_display_and_dead_assignments_do_not_reach_the_package() -> None:
    plan = plan_cells(
        IMPORTS,
        "df = pd.read_csv('d.csv')\ndf.head()",
        "summary = df.describe()\ncounts = summary.T",
        "X = df[['a']]\ny = df.y\nmodel = Est()\nmodel.fit(X, y)",
    )
    body = "\n".join(c.function.body for c in plan.calls)
    assert "describe" not in body and "head" not in body and "counts" not in body


def test_prediction_stage_returns_what_the_notebook_showed() -> None:
    plan = plan_cells(
        IMPORTS,
        "X_train = pd.read_csv('x.csv')\ny_train = X_train.pop('y')",
        "model = Est()\nmodel.fit(X_train, y_train)",
        "# md: ## Predict on new data",
        "new_rows = X_train[:3]\nmodel.predict(new_rows)",
    )
    predict = plan.calls[-1].function
    assert predict.returns_result
    assert predict.body.endswith("return model.predict(new_rows)")
    assert predict.params == ("X_train", "model")


def test_pure_functions_move_to_module_level_and_shared_ones_to_helpers() -> None:
    plan = plan_cells(
        "import numpy as np\n" + IMPORTS,
        "raw = pd.read_csv('r.csv')\ny = raw.pop('y')",
        "def clean(v):\n    # keep positives\n    return np.abs(v)",
        "# md: ## Features",
        "X = clean(raw)",
        "# md: ## Train",
        "Xc = clean(X)\nmodel = Est()\nmodel.fit(Xc, y)",
    )
    modules = {m.name: m for m in plan.modules}
    assert "helpers" in modules
    assert "# keep positives" in modules["helpers"].definitions[0]
    assert plan.helpers == {"clean": "helpers"}


def test_functions_reading_notebook_variables_stay_in_their_stage() -> None:
    plan = plan_cells(
        IMPORTS,
        "raw = pd.read_csv('r.csv')\ny = raw.pop('y')\nfactor = raw.a.max()",
        "def scale(v):\n    return v * factor",
        "X = scale(raw)\nmodel = Est()\nmodel.fit(X, y)",
    )
    (stage,) = [c.function for c in plan.calls if "def scale(v):" in c.function.body]
    assert stage.params == ("factor",)
    assert stage.returns == ("scale",)


def test_function_names_never_shadow_notebook_variables() -> None:
    plan = plan_cells(
        IMPORTS,
        "# md: ## Train",
        "train = pd.read_csv('t.csv')\ny = train.pop('y')\nmodel = Est()\nmodel.fit(train, y)",
    )
    assert plan.calls[0].function.name == "train_model"


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (("import pandas as pd", "df = pd.read_csv('a')"), "no cell fits a model"),
        (
            (IMPORTS, "df = pd.read_csv('a')", "model = Est()\nmodel.fit(df[['a']], df.y)"),
            "not on a named variable",
        ),
        (
            ("from statsmodels.tsa.arima.model import ARIMA", "res = ARIMA([1, 2]).fit()"),
            "given no input data",
        ),
        (("print 'hello'",), "not valid Python 3"),
        (
            (IMPORTS, "model = Est()\nmodel.fit(ghost, [1])"),
            "`ghost` is used but no cell defines it",
        ),
    ],
    ids=["no-model", "expression-input", "statsmodels", "python2", "hidden-state"],
)
def test_refusals_say_why(cells: tuple[str, ...], reason: str) -> None:
    with pytest.raises(RefusedNotebookError) as caught:
        plan_cells(*cells)
    assert reason in caught.value.message
    assert "nb.ipynb" in caught.value.message


def test_non_python_kernel_is_refused() -> None:
    from helpers import analyse_cells

    from promote.planning import plan

    with pytest.raises(RefusedNotebookError, match="kernel language is 'r'"):
        plan(analyse_cells("x <- 1", language="R"), "demo")


def test_models_fitted_only_in_a_loop_are_refused_with_that_reason() -> None:
    with pytest.raises(RefusedNotebookError) as caught:
        plan_cells(
            IMPORTS,
            "X = pd.read_csv('x.csv')\ny = X.pop('y')",
            "for alpha in (0.1, 1.0):\n    candidate = Est()\n    candidate.fit(X, y)",
        )
    assert "fitted only inside a loop" in caught.value.message
    assert "candidate.fit(X, y)" in caught.value.message
