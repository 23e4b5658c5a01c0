"""The inference slice on inline cells: which feature steps are row-wise, and what is sliced."""

from __future__ import annotations

import ast

import pytest
from helpers import plan_cells

from promote import codegen
from promote.analysis.rowwise import Frames, refusal
from promote.planning import Plan

IMPORTS = (
    "import numpy as np\nimport pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split"
)
LOAD = "df = pd.read_csv('data.csv')"
TRAIN = (
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)\n"
    "model = LogisticRegression()\nmodel.fit(X_train, y_train)"
)
PREDICT = "model.predict(X_test)"


def known() -> Frames:
    return Frames({"df"}, frozenset({"COLUMNS", "LIMIT"}), {"np": "numpy", "pd": "pandas"})


@pytest.mark.parametrize(
    "statements",
    [
        'df["ratio"] = df["a"] / df["b"]',
        'df["big"] = (df["a"] > 3) & ~(df["b"] == LIMIT)',
        'df["log_a"] = np.log1p(df["a"]) + np.where(df["b"] > 0, 1, -1)',
        'df["a"] = df["a"].fillna(0).astype(float).clip(0, 10)',
        'df["kind"] = df["kind"].str.strip().str.lower().map({"x": 1, "y": 2})',
        'df["year"] = pd.to_datetime(df["when"], format="%Y-%m-%d").dt.year',
        'df["is_a"] = df["kind"].isin(["a", "b"]) | df["kind"].isna()',
        'cols = [c for c in df.columns if c.startswith(("mean ", "worst "))]\n'
        'cols += ["extra"]\ncols.append("other")\nX = df[cols]',
        "X = df[COLUMNS]",
        'X = df[["a", "b"]].copy()\nX["a"] *= 2',
        "X = df.drop(columns=LIMIT)",
        'X = df.drop(["id", "label"], axis=1)',
        'X = df.drop(labels=COLUMNS, axis="columns", errors="ignore")',
    ],
)
def test_row_wise_steps_are_accepted(statements: str) -> None:
    frames = known()
    for stmt in ast.parse(statements).body:
        assert refusal(stmt, frames) is None, ast.unparse(stmt)


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ('df["a"] = df["a"].fillna(df["a"].mean())', "fillna(df['a'].mean())"),
        ('df["z"] = (df["a"] - df["a"].mean()) / df["a"].std()', "df['a'].mean()"),
        ('df = df[df["a"] > 0]', "df[df['a'] > 0]"),
        ("df = df.dropna()", "df.dropna()"),
        ('df = pd.get_dummies(df, columns=["kind"])', "pd.get_dummies"),
        ('df["kind"] = df["kind"].astype("category")', "astype('category')"),
        ('df["a"] = df["a"].fillna(method="ffill")', "fillna(method='ffill')"),
        ('df["lag"] = df["a"].shift(1)', "shift(1)"),
        ('df["r"] = df.a / df.b', "df.a"),
        ('df["c"] = clean(df["c"])', "clean("),
        ('df["a"] = other["a"]', "other"),
        ('df["k"] = df["kind"].map(lookup)', "map(lookup)"),
        ("X = scaler.fit_transform(df)", "fit_transform"),
        ("X = df.drop(index=[0, 1])", "drop(index="),
        ('X = df.drop(["id"])', "drop(['id'])"),
        ("X = df.drop(columns=dropped)", "drop(columns=dropped)"),
    ],
)
def test_other_steps_are_refused_with_the_statement(statement: str, reason: str) -> None:
    found = refusal(ast.parse(statement).body[0], known())

    assert found is not None and reason in found


def sliced(*features: str) -> Plan:
    return plan_cells(IMPORTS, LOAD, *features, TRAIN, PREDICT)


def test_row_wise_feature_steps_become_make_features_and_requests_carry_the_loaded_columns() -> (
    None
):
    plan = sliced(
        "TARGET = 'label'",
        "# derived\ndf['ratio'] = df['a'] / df['b']\ncols = ['a', 'ratio']\nX = df[cols]\n"
        "y = df[TARGET]",
    )

    inference = plan.inference
    assert (inference.function, inference.module, inference.frame) == (
        "make_features",
        "features",
        "df",
    )
    assert inference.drop == ("settings.target",) and not inference.note
    features = next(m for m in plan.modules if m.name == "features")
    make, stage = features.functions
    assert make.params == ("df",) and make.returns == ("X",)
    assert "# derived" in make.body and "y = " not in make.body
    assert stage.body.startswith("X = make_features(df)") and "df['ratio']" not in stage.body
    files = codegen.generate(plan)
    pipeline = files["src/demo/pipeline.py"]
    assert "inputs = df.drop(columns=settings.target)" in pipeline
    assert "inputs=inputs.loc[X_train.index], make_features=make_features" in pipeline
    assert "def make_features(df: pd.DataFrame) -> pd.DataFrame:" in files["src/demo/features.py"]


def test_dropping_the_target_is_a_feature_step_that_ignores_the_missing_target() -> None:
    """``X = df.drop(columns=TARGET)``: training drops the target; a request has none."""
    plan = sliced(
        "TARGET = 'label'",
        "df['ratio'] = df['a'] / df['b']\nX = df.drop(columns=TARGET)\ny = df[TARGET]",
    )

    assert plan.inference.function == "make_features" and not plan.inference.note
    make = plan.modules[1].functions[0]
    assert 'X = df.drop(columns=settings.target, errors="ignore")' in make.body
    assert 'errors="ignore"' in make.docstring and "y = " not in make.body


def test_feature_steps_reading_a_setting_default_it_for_the_service() -> None:
    plan = sliced(
        "FACTOR = 2.5", "df['scaled'] = df['a'] * FACTOR\nX = df[['scaled']]\ny = df['y']"
    )

    make = plan.modules[1].functions[0]
    assert make.params == ("df", "settings") and make.settings_default
    source = codegen.generate(plan)["src/demo/features.py"]
    assert "def make_features(df: pd.DataFrame, settings: Settings | None = None)" in source
    assert "if settings is None:\n        settings = Settings()" in source
    assert "X = make_features(df, settings)" in source


@pytest.mark.parametrize(
    ("features", "note"),
    [
        (
            "df['a'] = df['a'].fillna(df['a'].median())\nX = df[['a']]\ny = df['label']",
            "`df['a'].fillna(df['a'].median())` (cell 3) is not a step promote can prove row-wise",
        ),
        (
            "df = df[df['a'] > 0]\nX = df[['a']]\ny = df['label']",
            "`df[df['a'] > 0]` (cell 3) is not a step",
        ),
        (
            "y = df.pop('label')\nX = df[['a']]",
            "uses `df` other than by taking a column",
        ),
        (
            "cols = ['a']\nX = df[cols]\ny = df['label'] * len(cols)",
            "also uses `cols`",
        ),
        (
            "df['label'] = df['label'] * 2\nX = df[['a', 'label']]\ny = df['label']",
            "reads a column the feature steps write",
        ),
    ],
)
def test_a_slice_that_is_not_provably_row_wise_keeps_the_model_input_and_says_why(
    features: str, note: str
) -> None:
    plan = sliced(features)

    assert not plan.inference.function
    assert note in plan.inference.note
    assert "make_features" not in codegen.generate(plan)["src/demo/pipeline.py"]


def test_model_input_made_in_the_training_stage_is_not_sliced() -> None:
    plan = plan_cells(
        IMPORTS,
        LOAD,
        "X = df[['a']]\ny = df['label']\nmodel = LogisticRegression()\nmodel.fit(X, y)",
        PREDICT.replace("X_test", "X"),
    )

    assert not plan.inference.function
    assert "made in the train stage by `X = df[['a']]`" in plan.inference.note


def test_a_model_fitted_on_the_data_as_loaded_needs_no_slice() -> None:
    plan = plan_cells(
        IMPORTS,
        "X = pd.read_csv('x.csv')\ny = pd.read_csv('y.csv')['label']",
        TRAIN,
        PREDICT,
    )

    assert plan.inference.function == plan.inference.note == ""


def test_a_slice_whose_names_later_stages_use_is_not_taken() -> None:
    plan = plan_cells(
        IMPORTS + "\nfrom sklearn.metrics import accuracy_score",
        LOAD,
        "cols = ['a']\nX = df[cols]\ny = df['label']",
        TRAIN,
        "accuracy = accuracy_score(y_test, model.predict(X_test[cols]))",
    )

    assert not plan.inference.function
    assert plan.inference.note == "later stages use `cols`, which the feature steps make"
