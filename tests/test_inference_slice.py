"""The inference slice on inline cells: which feature steps are row-wise, and what is sliced."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import CORPUS, analyse_cells, notebook_json, plan_cells
from project_harness import http, install_project, run, serving, venv_command
from sklearn.model_selection import train_test_split

from promote import codegen, report
from promote.analysis.rowwise import Frames, attribute_column, explain, refusal
from promote.api import Promotion, promote
from promote.cli import main
from promote.planning import Plan, columns_read, plan
from promote.render import ruff_path

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
        'df.loc[df["age"] < 40, "group"] = "young"',
        'df.loc[(df["age"] >= 40) & ~df["kind"].isin(["x"]), "group"] = df["kind"].str.upper()',
        'df["band"] = pd.cut(df["a"], bins=[0.0, 1.5, 3.0, np.inf], labels=[1, 2, 3])',
        'df["band"] = pd.cut(df["a"], [-np.inf, 0, LIMIT], right=False)',
        # a column read as an attribute, and in-place steps on the frame itself
        'df["ratio"] = df.a / df.b.clip(lower=1)\ndf["city"] = df.city.str.lower()',
        'df.drop(columns=["id"], inplace=True)\ndf.fillna(0, inplace=True)',
        'df.rename(columns={"a": "alpha"}, inplace=True)\nX = df.rename(columns={"b": "beta"})',
    ],
)
def test_row_wise_steps_are_accepted(statements: str) -> None:
    frames = known()
    for stmt in ast.parse(statements).body:
        assert refusal(stmt, frames) is None, ast.unparse(stmt)


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ('df["a"] = df["a"].fillna(other["a"].mean())', "fillna(other['a'].mean())"),
        ('df["z"] = df["a"] / df["a"].rolling(3).mean()', "rolling(3).mean()"),
        ('df["a"] = df["a"].fillna(df["a"].mean(), inplace=True)', "inplace=True"),
        ('df["a"] = df["a"].fillna(df.mean())', "fillna(df.mean())"),  # a Series of means
        ('df = df[df["a"] > 0]', "df[df['a'] > 0]"),
        ("df = df.dropna()", "df.dropna()"),
        ('df = pd.get_dummies(df, columns=["kind"], drop_first=flag)', "pd.get_dummies"),
        ('X = pd.get_dummies(df)[["a_x"]]', "pd.get_dummies"),
        ('df["kind"] = df["kind"].astype("category")', "astype('category')"),
        ('df["a"] = df["a"].fillna(method="ffill")', "fillna(method='ffill')"),
        ('df["lag"] = df["a"].shift(1)', "shift(1)"),
        ('df["c"] = clean(df["c"])', "clean("),
        ('df["a"] = other["a"]', "other"),
        ('df["k"] = df["kind"].map(lookup)', "map(lookup)"),
        ("X = scaler.fit_transform(df)", "fit_transform"),
        ("X = df.drop(index=[0, 1])", "drop(index="),
        ('X = df.drop(["id"])', "drop(['id'])"),
        ('df.loc[0, "a"] = 1', "df.loc[0, 'a']"),  # a row label, not a condition
        ('df.loc[df["id"], "a"] = 1', "df.loc[df['id'], 'a']"),
        ('df.loc[df["a"] > 0, "b"] = df["a"].mean(skipna=flag)', "mean(skipna=flag)"),
        ("X = df.drop(columns=dropped)", "drop(columns=dropped)"),
        ('df["band"] = pd.cut(df["a"], bins=5)', "pd.cut"),  # spread over the data's range
        ('df["a"].fillna(0, inplace=True)', "inplace=True"),  # chained: a no-op in pandas 3
        ('df.rename({"a": "b"}, inplace=True)', "rename"),  # a mapper renames the rows
        ("df.dropna(inplace=True)", "dropna"),
        ('df["n"] = df.size', "df.size"),  # an attribute of the frame, not a column
        ('df["band"] = pd.cut(df["a"], bins=edges)', "pd.cut"),
    ],
)
def test_other_steps_are_refused_with_the_statement(statement: str, reason: str) -> None:
    found = refusal(ast.parse(statement).body[0], known())

    assert found is not None and reason in found


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ("X = scaler.fit_transform(df)", "fits `scaler` on the training data outside the model"),
        ("X = scaler.transform(df)", "applies `scaler`, fitted on the training data, outside"),
        ('df["a"] = df["a"].fillna(df["a"].transform("mean"))', "statistics of the training"),
        ('df["z"] = df["a"] / df.max()', "uses statistics of the training data (`max`)"),
        ("df = pd.get_dummies(df, sparse=True)", "makes columns from the values found"),
        ('df["kind"] = df["kind"].astype("category")', "makes columns from the values found"),
        ("df = df.dropna()", "keeps, drops or reorders rows (`dropna`)"),
        ('df = df[df["a"] > 0]', "keeps, drops or reorders rows"),
        ('df["lag"] = df["a"].shift(1)', "reads other rows (`shift`)"),
        ('df["a"] = df["a"].fillna(method="ffill")', "reads other rows (`fillna`)"),
        ("X = df.values", "turns the table into an array without column names (`values`)"),
        ('df["c"] = clean(df["c"])', "calls `clean`, a function the notebook defines"),
        ("a, b = train_test_split(df)", "splits the rows into training and test sets"),
        ("X = df.T", "is not a step promote can prove row-wise"),
    ],
)
def test_a_refused_step_is_explained_in_words(statement: str, why: str) -> None:
    frames = known()
    frames.modules = {**frames.modules, "train_test_split": "sklearn"}
    stmt = ast.parse(statement).body[0]

    assert refusal(stmt, frames) is not None
    assert why in explain(stmt, frames).text


def test_steps_that_fit_are_accepted_and_what_they_learn_is_recorded() -> None:
    """A transformer of scikit-learn made and fitted in the steps, and ``pd.get_dummies``
    bound to a name: row-wise once what they learnt from the training rows is kept."""
    frames = known()
    frames.modules = {**frames.modules, "StandardScaler": "sklearn", "preprocessing": "sklearn"}
    steps = (
        "ss = StandardScaler()\n"
        'ss.fit(df[["a", "b"]])\n'
        'df[["a", "b"]] = ss.transform(df[["a", "b"]])\n'
        "minmax = preprocessing.MinMaxScaler(feature_range=(0, 1))\n"
        'df["c"] = minmax.fit_transform(df[["c"]])\n'
        'X = pd.get_dummies(df, columns=["kind"], dtype=int)'
    )
    for stmt in ast.parse(steps).body:
        assert refusal(stmt, frames) is None, ast.unparse(stmt)

    assert frames.fitted == ["ss", "minmax"]
    assert frames.dummies == ["X"]


def test_pandas_attributes_known_to_promote_cover_the_installed_pandas() -> None:
    """``df.name`` is a column only when ``name`` is not an attribute of a pandas frame or
    series; the list promote keeps (``promote/data``) must hold every one pandas has."""
    public = {n for n in (*dir(pd.DataFrame), *dir(pd.Series)) if not n.startswith("_")}
    frames = {"df"}
    taken = [
        n for n in sorted(public) if attribute_column(ast.parse(f"df.{n}").body[0].value, frames)
    ]  # type: ignore[attr-defined]

    assert taken == []
    assert attribute_column(ast.parse("df.age").body[0].value, frames) == "age"  # type: ignore[attr-defined]


def test_statistics_of_a_column_are_learnt_values_and_recorded_in_order() -> None:
    """``fillna(df["age"].median())``, a standardised column, a mode: each statistic of a
    column is a value training learns once and requests reuse; each use is recorded."""
    frames = known()
    steps = (
        'df["age"] = df["age"].fillna(df["age"].median())\n'
        'df["z"] = (df["fare"] - df["fare"].mean()) / df["fare"].std(ddof=0)\n'
        'df["port"] = df["port"].fillna(df["port"].mode()[0])\n'
        'df.loc[df["age"] > df["age"].quantile(0.9), "old"] = 1\n'
        'df["age"] = df["age"].clip(upper=df["age"].median())'
    )
    for stmt in ast.parse(steps).body:
        assert refusal(stmt, frames) is None, ast.unparse(stmt)

    assert frames.statistics == [
        "df['age'].median()",
        "df['fare'].mean()",
        "df['fare'].std(ddof=0)",
        "df['port'].mode()[0]",
        "df['age'].quantile(0.9)",
        "df['age'].median()",
    ]


def test_a_frame_filled_with_a_statistic_of_each_column_learns_it() -> None:
    """``df.fillna(df.median(numeric_only=True))``: the medians are learnt once (a value per
    column) and each request's gaps are filled with them; the same statistic used in
    arithmetic, or to fill a single column, is refused (columns or rows would be aligned)."""
    frames = known()
    steps = (
        "df = df.fillna(df.median(numeric_only=True))\n"
        "df.fillna(df.mean(numeric_only=True), inplace=True)\n"
        "df = df.fillna(value=df.mode().iloc[0])"
    )
    for stmt in ast.parse(steps).body:
        assert refusal(stmt, frames) is None, ast.unparse(stmt)
    assert frames.statistics == [
        "df.median(numeric_only=True)",
        "df.mean(numeric_only=True)",
        "df.mode().iloc[0]",
    ]

    for refused in (
        "df = (df - df.mean()) / df.std()",  # aligns a request's columns with training's
        "df['a'] = df['a'].fillna(df.mean())",  # a series filled by row labels
        "df = df.fillna(df.mean(), axis=1)",
        "df = df.fillna(other.mean())",  # not a frame of the steps
    ):
        assert refusal(ast.parse(refused).body[0], known()) is not None, refused


def test_a_pipeline_of_transformers_made_with_literal_arguments_is_a_fitted_step() -> None:
    frames = known()
    frames.modules = {**frames.modules, "Pipeline": "sklearn", "StandardScaler": "sklearn"}
    frames.modules |= {"SimpleImputer": "sklearn", "make_pipeline": "sklearn"}
    steps = (
        'prep = Pipeline([("impute", SimpleImputer(strategy="median")), '
        '("scale", StandardScaler())])\n'
        "other = make_pipeline(SimpleImputer(), StandardScaler(with_mean=False))\n"
        'X = pd.DataFrame(prep.fit_transform(df[["a"]]), columns=["a"], index=df.index)'
    )
    for stmt in ast.parse(steps).body:
        assert refusal(stmt, frames) is None, ast.unparse(stmt)

    assert frames.fitted == ["prep", "other"]
    made_of_a_variable = ast.parse("p = Pipeline([('scale', scaler)])").body[0]
    assert refusal(made_of_a_variable, frames) is not None


@pytest.mark.parametrize(
    "statement",
    [
        "ss.fit(df, df['y'])",  # fitted on the target too: a model, not a feature step
        "ss.fit(other)",
        "ss.fit(df).transform(df)",
        "X = ss.transform(df, copy=True)",
        "scaler = StandardScaler(with_mean=mean)",  # not a literal argument
        "scaler = make_scaler()",  # not a class of scikit-learn
        "ss = StandardScaler()",  # a second one under the same name: one state per name
    ],
)
def test_fitting_other_than_a_transformer_of_the_steps_on_their_rows_is_refused(
    statement: str,
) -> None:
    frames = known()
    frames.modules = {**frames.modules, "StandardScaler": "sklearn"}
    refusal(ast.parse("ss = StandardScaler()").body[0], frames)

    assert refusal(ast.parse(statement).body[0], frames) is not None


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
    # the steps read a and b by name: requests carry those (ratio is made from them)
    assert "inputs = df.loc[:, df.columns.isin(['a', 'b'])]" in pipeline
    assert plan.inference.columns == ("a", "b")
    assert "inputs=inputs.loc[X_train.index], make_features=make_features" in pipeline
    assert "def make_features(df: pd.DataFrame) -> pd.DataFrame:" in files["src/demo/features.py"]


@pytest.mark.parametrize(
    ("steps", "columns"),
    [
        ("X = df[['a', 'b']]", ("a", "b")),
        ("cols = ['b', 'c']\ndf['a2'] = df['a'] * 2\nX = df[cols + ['a2']]", ()),
        ("df['s'] = df['a'] + df['b']\ndf['a'] += 1\nX = df[['s', 'a']]", ("a", "b")),
        ("df['a'] = df['a'].fillna(0)\nX = df[['a', 'c']]", ("a", "c")),
        ("X = df.drop(columns=['label'])", ()),  # every other column
        ("X = df[[c for c in df.columns if c != 'label']]", ()),
    ],
)
def test_requests_carry_the_loaded_columns_the_steps_read_when_the_code_names_them(
    steps: str, columns: tuple[str, ...]
) -> None:
    assert columns_read(steps, "df") == columns


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
            "df['a'] = df['a'].fillna(df.median()['a'])\nX = df[['a']]\ny = df['label']",
            "`df['a'] = df['a'].fillna(df.median()['a'])` (cell 3) uses statistics of the "
            "training data (`median`)",
        ),
        (
            "df = df[df['a'] > 0]\nX = df[['a']]\ny = df['label']",
            "`df = df[df['a'] > 0]` (cell 3) keeps, drops or reorders rows",
        ),
        (
            "y = df.pop('label')\nX = df[['a']]",
            "`y = df.pop('label')` (cell 3) uses `df` in a way that may change it",
        ),
        (
            "cols = ['a']\ncols.append('b')\nX = df[cols]\ny = df['label'] * len(cols)",
            "also uses `cols`",
        ),
        (
            "df['label'] = df['label'] * 2\nX = df[['a', 'label']]\ny = df['label']",
            "takes a column from `df` that the feature steps read too",
        ),
        (
            "df['label'] = df['label'] * 2\nX = df[['a']]\ny = df['label']",
            "`y = df['label']` (cell 3) takes a column from `df` that the feature steps read too",
        ),
        (
            "df['label'] = 2\nX = df[['a']]\ny = df['label']",
            "`y = df['label']` (cell 3) reads a column the feature steps write",
        ),
        (
            "X = df[['a']]\ny = df['label'] / len(df)",
            "uses `df` other than by taking a column",
        ),
        (  # a chained in-place change of a column the steps read, before them
            "df['a'].fillna(0, inplace=True)\nX = df[['a']]\ny = df['label']",
            "`df['a'].fillna(0, inplace=True)` (cell 3) uses `df` in a way that may change it",
        ),
        (  # ... or after them: taking the target in place is not only taking it
            "X = df[['a']]\ndf['label'].replace({'no': 0}, inplace=True)\ny = df['label']",
            "uses `df` other than by taking a column",
        ),
        (
            "y = df['label']\ndf['a'][df['a'] < 0] = 0\nX = df[['a']]",
            "`df['a'][df['a'] < 0]` (cell 3) is not a step promote can prove row-wise",
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


TRAIN_ON_DF = (
    "X = df.drop(columns='label')\ny = df['label']\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)\n"
    "model = LogisticRegression()\nmodel.fit(X_train, y_train)"
)


def test_model_input_made_in_the_training_stage_from_the_loaded_data_is_sliced() -> None:
    """The model's input made in the train stage (the target dropped, then split): the slice
    goes to features.py, the train stage calls it where the notebook made ``X``."""
    plan = plan_cells(IMPORTS, LOAD, "# the model's input\n" + TRAIN_ON_DF, PREDICT)

    inference = plan.inference
    assert (inference.function, inference.module, inference.stage_function) == (
        "make_features",
        "features",
        "train_model",
    )
    assert inference.drop == ("'label'",) and not inference.note
    features = next(m for m in plan.modules if m.name == "features")
    (make,) = features.functions
    assert make.body.startswith("# the model's input\nX = df.drop(columns='label', errors=")
    train = next(m for m in plan.modules if m.name == "train").functions[0]
    assert train.body.startswith("X = make_features(df)\ny = df['label']\nX_train, X_test")
    files = codegen.generate(plan)
    assert "from demo.features import make_features" in files["src/demo/train.py"]
    pipeline = files["src/demo/pipeline.py"]
    assert "inputs = df.drop(columns='label')\n    model, X_train = train_model(" in pipeline
    assert "make_features=make_features" in pipeline
    for source in files.values():
        compile(source, "generated", "exec")


def test_earlier_training_cells_keep_their_place_before_the_sliced_steps() -> None:
    """Two models tried one after the other, each on ``X = df.drop(...)``: the first cell's
    code stays as it was, the last ``X`` (the served model's) comes from make_features."""
    first = TRAIN_ON_DF.replace("model", "first_model")
    plan = plan_cells(IMPORTS, LOAD, first, TRAIN_ON_DF, PREDICT)

    assert plan.inference.function == "make_features", plan.inference.note
    train = next(m for m in plan.modules if m.name == "train").functions[0]
    assert train.body.startswith("X = df.drop(columns='label')\ny = df['label']")
    assert train.body.count("X = make_features(df)") == 1
    assert train.body.index("first_model.fit") < train.body.index("X = make_features(df)")


def test_only_the_target_of_the_served_model_is_left_out_of_requests() -> None:
    """An earlier model fitted on ``df[["a", "b"]]`` takes columns too; requests still carry
    them: only the served model's target (traced from its ``.fit`` through the split) goes."""
    first = (
        "first = LogisticRegression()\nfirst.fit(df[['a', 'b']], df['label'])\n"
        "first.predict(df[['a', 'b']])"
    )
    plan = plan_cells(IMPORTS, LOAD, first, TRAIN_ON_DF.replace("'label'", "'outcome'"), PREDICT)

    assert plan.inference.function == "make_features", plan.inference.note
    assert plan.inference.drop == ("'outcome'",)


@pytest.mark.parametrize(
    "target",
    [
        "y = LabelEncoder().fit_transform(df['label'])",
        "y = (df['label'] == 'yes').astype(int)",
        "y = df['label'].map({'no': 0, 'yes': 1})",
    ],
)
def test_a_target_encoded_from_its_column_is_left_out_of_requests(target: str) -> None:
    """A label encoding of the target is not a feature step: the target's column is taken,
    and requests leave it out."""
    plan = plan_cells(
        IMPORTS + "\nfrom sklearn.preprocessing import LabelEncoder",
        LOAD,
        TRAIN_ON_DF.replace("y = df['label']", target),
        PREDICT,
    )

    assert plan.inference.function == "make_features", plan.inference.note
    assert plan.inference.drop == ("'label'",)


def test_preprocessing_fitted_inside_the_models_pipeline_is_part_of_the_model() -> None:
    plan = plan_cells(
        IMPORTS + "\nfrom sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import StandardScaler",
        LOAD,
        TRAIN_ON_DF.replace(
            "LogisticRegression()", "make_pipeline(StandardScaler(), LogisticRegression())"
        ),
        PREDICT,
    )

    assert plan.inference.function == "make_features", plan.inference.note
    make = next(m for m in plan.modules if m.name == "features").functions[0]
    assert "StandardScaler" not in make.body


@pytest.mark.parametrize(
    ("features", "note"),
    [
        (
            "from sklearn.preprocessing import StandardScaler\nscaler = StandardScaler()\n"
            "df[['a']] = scaler.fit_transform(df[['a']], ['b'])",
            "`df` comes from the features stage, where "
            "`df[['a']] = scaler.fit_transform(df[['a']], ['b'])` (cell 3) fits `scaler` on the "
            "training data outside the model",
        ),
        (
            "df = pd.get_dummies(df, columns=['kind'], sparse=True)",
            "`df` comes from the features stage, where `df = pd.get_dummies(df, columns=['kind']"
            ", sparse=True)` (cell 3) makes columns from the values found in the data "
            "(`get_dummies`)",
        ),
        (
            "df = df.dropna()",
            "`df` comes from the features stage, where `df = df.dropna()` (cell 3) keeps, drops "
            "or reorders rows (`dropna`)",
        ),
    ],
)
def test_the_training_stage_slice_needs_the_loaded_data_and_says_why_not(
    features: str, note: str
) -> None:
    """``X = df.drop(columns=...)`` in the train stage is row-wise, but ``df`` is not what a
    client can send when an earlier stage changed it: the note names that stage's step."""
    plan = plan_cells(IMPORTS, LOAD, features, TRAIN_ON_DF, PREDICT)

    assert not plan.inference.function
    assert note in plan.inference.note


def test_a_scaler_and_dummies_of_a_features_stage_are_fitted_in_training_and_reused() -> None:
    """The steps learn from the training rows: training calls ``fit_features``, which returns
    what they learnt; ``make_features`` (the service's) takes it and fits nothing."""
    features = (
        "from sklearn.preprocessing import StandardScaler\nscaler = StandardScaler()\n"
        "# scale the numbers\n"
        "df[['a', 'b']] = scaler.fit_transform(df[['a', 'b']])\n"
        "df = pd.get_dummies(df, columns=['kind'])"
    )
    plan = plan_cells(IMPORTS, LOAD, features, TRAIN_ON_DF, PREDICT)

    assert plan.inference.function == "make_features", plan.inference.note
    assert plan.inference.state == "feature_state"
    module = next(m for m in plan.modules if m.name == "features")
    fit, make = module.functions[:2]
    assert (fit.name, fit.returns, fit.params) == ("fit_features", ("X", "feature_state"), ("df",))
    assert make.params == ("df", "feature_state")
    assert "scaler.fit_transform(df[['a', 'b']])" in fit.body
    assert 'feature_state["scaler"] = scaler' in fit.body
    assert 'feature_state["df_columns"] = dict(df.dtypes.astype(str))' in fit.body
    assert "StandardScaler()" not in make.body and "fit" not in make.body
    assert 'scaler = feature_state["scaler"]' in make.body
    assert "# scale the numbers\ndf[['a', 'b']] = scaler.transform(df[['a', 'b']])" in make.body
    assert 'df.reindex(columns=list(feature_state["df_columns"]), fill_value=0)' in make.body
    pipeline = codegen.generate(plan)["src/demo/pipeline.py"]
    assert "feature_state=feature_state" in pipeline
    learnt = "`scaler`, the columns `pd.get_dummies` made of `df`"
    assert plan.inference.learnt == learnt
    assert f"with what training fitted ({learnt})" in report.inference_text(plan)
    assert f"training rows ({learnt}), saved beside the model" in codegen.model_card(plan)


def test_a_transformer_s_array_is_refused_and_a_frame_made_of_it_is_sliced() -> None:
    """``X = ss.fit_transform(X)`` leaves an array without the row labels that find the rows
    requests carry; named again as a frame with the same columns and index, it is sliced."""
    steps = (
        "from sklearn.preprocessing import StandardScaler\nX = df[['a', 'b']]\n"
        "ss = StandardScaler()\n{}\ny = df['label']"
    )
    array = plan_cells(IMPORTS, LOAD, steps.format("X = ss.fit_transform(X)"), TRAIN, PREDICT)
    framed = plan_cells(
        IMPORTS,
        LOAD,
        steps.format("X = pd.DataFrame(ss.fit_transform(X), columns=X.columns, index=X.index)"),
        TRAIN,
        PREDICT,
    )

    assert not array.inference.function
    assert "the array a fitted transformer makes" in array.inference.note
    assert framed.inference.function == "make_features", framed.inference.note
    make = next(m for m in framed.modules if m.name == "features").functions[1]
    assert "X = pd.DataFrame(ss.transform(X), columns=X.columns, index=X.index)" in make.body


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
        "cols = ['a']\ncols.append('b')\nX = df[cols]\ny = df['label']",
        TRAIN,
        "accuracy = accuracy_score(y_test, model.predict(X_test[cols]))",
    )

    assert not plan.inference.function
    assert plan.inference.note == "later stages use `cols`, which the feature steps make"


def test_written_out_columns_and_a_fitted_scaler_that_later_stages_use_are_handed_on() -> None:
    """``cols = [...]`` stays in the stage too; the scaler comes from what the steps learnt;
    the target, named by a list written in the stage, is left out of requests by its value."""
    plan = plan_cells(
        IMPORTS + "\nimport joblib\nfrom sklearn.preprocessing import StandardScaler",
        LOAD,
        "cols = ['a', 'b']\ntarget = ['label']\nX = df[cols]\nss = StandardScaler()\n"
        "X[cols] = ss.fit_transform(X[cols])\ny = df[target]",
        TRAIN,
        "joblib.dump(ss, 'scaler.joblib')\nprint(model.predict(ss.transform(df[cols])))",
    )

    assert plan.inference.function == "make_features", plan.inference.note
    assert plan.inference.drop == ("['label']",)
    stage = next(c.function for c in plan.calls if "ss" in c.function.returns)
    assert "cols = ['a', 'b']" in stage.body
    assert 'X, feature_state = fit_features(df)\nss = feature_state["ss"]' in stage.body
    make = next(m for m in plan.modules if m.name == "features").functions[1]
    assert "X[cols] = ss.transform(X[cols])" in make.body


# -- a notebook on disk, promoted and its pipeline run -------------------------------------------
HEART_CELLS = (
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score\nfrom sklearn.model_selection import "
    "train_test_split\nfrom sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import LabelEncoder, StandardScaler",
    "# md: ## Data",
    "df = pd.read_csv('heart.csv')",
    "# md: ## Features",
    "# derived columns\n"
    "df['chol_per_age'] = df['chol'] / df['age']\n"
    "df.loc[df['age'] >= 60, 'senior'] = 1\n"
    "df.loc[df['age'] < 60, 'senior'] = 0",
    "# md: ## Training",
    "# the model's input: the target left out\n"
    "X = df.drop(columns='target')\n"
    "y = LabelEncoder().fit_transform(df['target'])\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)\n"
    "model = make_pipeline(StandardScaler(), LogisticRegression())\n"
    "model.fit(X_train, y_train)",
    "accuracy = accuracy_score(y_test, model.predict(X_test))",
)
# Runs in the promoted project (its src on the path): the pipeline's model input, and what
# make_features makes from the rows requests carry, must both be what the notebook fitted on.
CHECK_PIPELINE = """
import json, os, sys
import pandas as pd
from pandas.testing import assert_frame_equal
from {package} import pipeline

result = pipeline.run()
os.chdir(sys.argv[2])  # the notebook's own folder, where it reads its data
notebook = {{}}
exec(compile(sys.argv[1], "notebook", "exec"), notebook)
assert "target" not in result.inputs.columns
assert_frame_equal(result.features, notebook["X_train"])
assert_frame_equal(result.make_features(result.inputs.copy()), notebook["X_train"])
one = result.make_features(result.inputs.iloc[[3]].copy())  # one request alone
assert_frame_equal(one, notebook["X_train"].iloc[[3]], check_dtype=False)
print(json.dumps(sorted(result.inputs.columns)))
"""


def run_checked(
    result: Promotion, project: Path, check: str, cells: tuple[str, ...], folder: Path
) -> str:
    """Run ``check`` in the promoted project (its src on the path) with the notebook's code
    and folder as arguments; assert it passes and that the generated modules pass ruff and
    mypy. Returns what it printed."""
    package = project / "src" / result.plan.package_name
    modules = [str(package / f"{m.name}.py") for m in result.plan.modules] + [
        str(package / "pipeline.py")
    ]
    source = "\n".join(c for c in cells if not c.startswith("# md:"))
    checked = subprocess.run(
        [sys.executable, "-c", check.format(package=result.plan.package_name), source, str(folder)],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    lint = subprocess.run(
        [ruff_path(), "check", "--no-cache", *modules], cwd=project, capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout
    typed = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", *modules],
        cwd=project,
        env={**os.environ, "MYPYPATH": str(project / "src")},
        capture_output=True,
        text=True,
    )
    assert typed.returncode == 0, typed.stdout
    return checked.stdout


def test_a_promoted_notebook_slices_its_training_stage_and_reproduces_the_model_input(
    tmp_path: Path,
) -> None:
    """Promote a notebook whose model input is made by a features stage (derived columns)
    and the training stage (the target dropped; a label-encoded target, preprocessing inside
    the model's pipeline), then run its pipeline: make_features on the loaded rows, all
    together or one alone, gives the exact frame the notebook fitted on; the generated
    modules pass ruff and mypy."""
    rng = np.random.default_rng(0)
    rows = 80
    pd.DataFrame(
        {
            "age": rng.integers(30, 80, rows),
            "chol": rng.integers(150, 300, rows).astype(float),
            "trestbps": rng.integers(90, 180, rows),
            "target": rng.choice(["no", "yes"], rows),
        }
    ).to_csv(tmp_path / "heart.csv", index=False)
    notebook = tmp_path / "heart.ipynb"
    notebook.write_text(notebook_json(*HEART_CELLS))
    project = tmp_path / "heart"

    result = promote(notebook, project, lock=False)

    assert result.plan.inference.function == "make_features", result.plan.inference.note
    assert [c.function.name for c in result.plan.calls] == ["load_data", "training"]
    stdout = run_checked(result, project, CHECK_PIPELINE, HEART_CELLS, tmp_path)
    assert json.loads(stdout) == ["age", "chol", "trestbps"]


STUDENT_CELLS = (
    "import numpy as np\nimport pandas as pd\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.preprocessing import StandardScaler",
    "# md: ## Data",
    "pd.options.mode.chained_assignment = None\ndf = pd.read_csv('students.csv')",
    "# md: ## Features",
    "X = df[['grade', 'obedient', 'research', 'project']]\n"
    "ss = StandardScaler()\n"
    "# fit the scaler on the numeric features\n"
    "ss.fit(X[['research', 'project']])\n"
    "X[['research', 'project']] = ss.transform(X[['research', 'project']])\n"
    "X = pd.get_dummies(X, columns=['grade', 'obedient'])\n"
    "y = df['recommend']",
    "# md: ## Training",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)\n"
    "model = LogisticRegression()\nmodel.fit(X_train, y_train)",
    "accuracy = (model.predict(X_test) == y_test).mean()",
)


def write_students(folder: Path) -> Path:
    """``students.ipynb`` (``STUDENT_CELLS``) and the data it reads, in ``folder``."""
    rng = np.random.default_rng(1)
    rows = 60
    pd.DataFrame(
        {
            "name": [f"s{i}" for i in range(rows)],
            "grade": rng.choice(["A", "B", "C", "F"], rows),
            "obedient": rng.choice(["Y", "N"], rows),
            "research": rng.integers(20, 100, rows),
            "project": rng.integers(20, 100, rows).astype(float),
            "recommend": rng.choice(["Yes", "No"], rows),
        }
    ).to_csv(folder / "students.csv", index=False)
    notebook = folder / "students.ipynb"
    notebook.write_text(notebook_json(*STUDENT_CELLS))
    return notebook


# Runs in the promoted project: what training fitted is saved with the model, and the
# service's path (make_features with it, on one request) gives the notebook's model input.
# The start of the checks that run in a promoted project: train with its pipeline, run the
# notebook's code in its own folder, save what training made and load it as the service does.
TRAINED_AND_LOADED = """
import json, os, sys, tempfile
from pathlib import Path
import numpy as np
import pandas as pd
from pandas.testing import assert_frame_equal
from {package} import artifacts, pipeline

result = pipeline.run()
os.chdir(sys.argv[2])
notebook = {{}}
exec(compile(sys.argv[1], "notebook", "exec"), notebook)
expected = notebook["X_train"]
with tempfile.TemporaryDirectory() as folder:
    artifacts.save(result, Path(folder))
    saved = sorted(p.name for p in Path(folder).iterdir())
    loaded = artifacts.load(Path(folder))
"""
CHECK_FITTED = (
    TRAINED_AND_LOADED
    + """
assert_frame_equal(result.features, expected)
one = loaded.model_input(result.inputs.iloc[[3]])  # one request alone, as the service does
assert_frame_equal(one, expected.iloc[[3]])
request = result.inputs.iloc[[3]].assign(grade="Z")  # a grade training never saw
unseen = loaded.model_input(request)
assert list(unseen.columns) == list(expected.columns)
grades = [c for c in expected.columns if c.startswith("grade_")]
assert not unseen[grades].to_numpy().any()
predicted = loaded.model.predict(loaded.model_input(result.inputs))
assert (predicted == notebook["model"].predict(expected)).all()
print(json.dumps({{"saved": saved, "columns": sorted(result.inputs.columns)}}))
"""
)


def test_a_promoted_notebook_saves_what_its_feature_steps_fitted_and_serves_raw_columns(
    tmp_path: Path,
) -> None:
    """A scaler fitted on two columns and get_dummies on two others, outside the model: the
    pipeline fits them once (``fit_features``), saves what they learnt beside the model, and
    a request of raw columns, alone, gets the row the notebook fitted on (an unseen category:
    zeros); the generated modules pass ruff and mypy."""
    notebook = write_students(tmp_path)
    project = tmp_path / "students"

    result = promote(notebook, project, lock=False)

    assert result.plan.inference.state == "feature_state", result.plan.inference.note
    stdout = run_checked(result, project, CHECK_FITTED, STUDENT_CELLS, tmp_path)
    report = json.loads(stdout)
    assert "features.skops" in report["saved"]
    # the name is loaded but no step reads it: requests do not carry it
    assert report["columns"] == ["grade", "obedient", "project", "research"]


def test_row_wise_steps_of_a_features_stage_join_those_of_the_training_stage() -> None:
    """``df["ratio"] = ...`` under a features heading, ``X = df.drop(...)`` in training: one
    ``make_features`` holds both, and the features stage, left with nothing, is gone."""
    plan = plan_cells(
        IMPORTS, LOAD, "# derived\ndf['ratio'] = np.log1p(df['a']) / df['b']", TRAIN_ON_DF, PREDICT
    )

    assert plan.inference.function == "make_features", plan.inference.note
    assert plan.inference.drop == ("'label'",)
    (make,) = next(m for m in plan.modules if m.name == "features").functions
    assert make.body.startswith("# derived\ndf['ratio'] = np.log1p(df['a']) / df['b']\n\nX = ")
    assert make.cells == (3, 4)
    assert [c.function.name for c in plan.calls] == ["load_data", "train_model"]
    files = codegen.generate(plan)
    assert "import numpy as np" in files["src/demo/features.py"]
    assert "X = make_features(df)" in files["src/demo/train.py"]
    for source in files.values():
        compile(source, "generated", "exec")


def test_a_features_stage_with_other_statements_keeps_them() -> None:
    plan = plan_cells(
        IMPORTS,
        LOAD,
        "df['ratio'] = df['a'] / df['b']\nclasses = sorted(set(df['label']))",
        TRAIN_ON_DF.replace(
            "LogisticRegression()", "LogisticRegression(class_weight={c: 1.0 for c in classes})"
        ),
        PREDICT,
    )

    assert plan.inference.function == "make_features", plan.inference.note
    stage = next(m for m in plan.modules if m.name == "features").functions[1]
    assert stage.body == "classes = sorted(set(df['label']))"
    assert stage.returns == ("df", "classes")


@pytest.mark.parametrize(
    ("features", "training", "after"),
    [
        # another stage reads the frame the features stage made
        (
            "df['ratio'] = df['a'] / df['b']",
            TRAIN_ON_DF,
            "from sklearn.metrics import accuracy_score\n"
            "accuracy = accuracy_score(df['label'], model.predict(df.drop(columns='label')))",
        ),
        # the training stage reads a column the features stage writes, outside the steps
        (
            "df['ratio'] = df['a'] / df['b']",
            TRAIN_ON_DF.replace("df['label']", "df['ratio']"),
            PREDICT,
        ),
        # the features stage makes a new frame, not the one it was given
        (
            "data = df.copy()\ndata['ratio'] = data['a'] / data['b']",
            TRAIN_ON_DF.replace("df", "data"),
            PREDICT,
        ),
    ],
)
def test_row_wise_steps_over_two_stages_that_cannot_join_are_refused(
    features: str, training: str, after: str
) -> None:
    plan = plan_cells(IMPORTS, LOAD, features, training, after)

    assert not plan.inference.function
    assert "spread over 2 stages (features, train)" in plan.inference.note


def test_check_and_the_model_card_say_what_requests_carry_and_why() -> None:
    """The reason the service takes the model's input is visible before promoting (``promote
    check``, text and JSON) and in the generated project (docs/MODEL_CARD.md)."""
    refused = analyse_cells(IMPORTS, LOAD, "df = df.dropna()", TRAIN_ON_DF, PREDICT)
    sliced_cells = analyse_cells(IMPORTS, LOAD, TRAIN_ON_DF, PREDICT)

    text = report.check_text(report.check_report(refused))
    assert (
        "serving: requests carry the model's input (X_train) as fitted: `df` comes from the "
        "features stage, where `df = df.dropna()` (cell 3) keeps, drops or reorders rows"
    ) in text
    data = json.loads(report.check_json(report.check_report(sliced_cells)))
    assert data["inference"] == {
        "sliced": True,
        "function": "features.make_features",
        "note": None,
        "fitted": None,
    }
    card = codegen.model_card(plan(refused, "demo"))
    assert "does not apply the notebook's feature steps itself: `df` comes from" in card
    card = codegen.model_card(plan(sliced_cells, "demo"))
    assert "applies the notebook's row-wise feature steps, `features.make_features()`" in card


# Runs in the promoted corpus project: the service's path on one raw row at a time.
CHECK_CORPUS = """
import json
from pandas.testing import assert_frame_equal
from {package} import pipeline

result = pipeline.run()
assert result.feature_state is not None
for row in range(len(result.inputs)):
    one = result.make_features(result.inputs.iloc[[row]].copy(), result.feature_state)
    assert_frame_equal(one, result.features.iloc[[row]])
print(json.dumps(sorted(result.inputs.columns)))
"""


def test_the_corpus_student_notebook_is_served_from_its_raw_columns(tmp_path: Path) -> None:
    """dipanjan-student-recommendation scales two columns and one-hot encodes two others
    outside the model (and repeats those steps by hand for new students): its project fits
    them once and applies them to each raw row alone, giving the rows the model was fitted
    on."""
    notebook = CORPUS / "dipanjan-student-recommendation" / "notebook.ipynb"
    if not notebook.is_file():
        pytest.skip(f"no corpus notebook at {notebook}")
    project = tmp_path / "student"

    result = promote(notebook, project, lock=False)

    assert result.plan.inference.learnt.startswith("`ss`, the columns `pd.get_dummies` made")
    checked = subprocess.run(
        [sys.executable, "-c", CHECK_CORPUS.format(package=result.plan.package_name)],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert "Recommend" not in json.loads(checked.stdout)


def test_the_corpus_feature_selection_notebook_serves_its_selector_on_raw_columns() -> None:
    """kaggle-breast-cancer-featsel fits ``SelectKBest(chi2, k=5)`` on the training rows and
    target after the split and fits its forest on the five columns it keeps: requests carry
    the 16 of its 30 measurements that its steps do not drop unread (by a list), and the
    service selects five with the notebook's fitted selector."""
    notebook = CORPUS / "kaggle-breast-cancer-featsel" / "notebook.ipynb"
    if not notebook.is_file():
        pytest.skip(f"no corpus notebook at {notebook}")

    plan = promote(notebook, notebook.parent / "unused", pretend=True).plan

    inference = plan.inference
    assert (inference.function, inference.learnt, inference.rows) == (
        "make_features",
        "`select_feature`",
        "fitted_rows",
    ), inference.note
    assert len(inference.unread) == 14 and "radius_mean" in inference.unread
    assert "texture_mean" not in inference.unread  # the selector may keep it
    make = next(f for m in plan.modules for f in m.functions if f.name == "make_features")
    assert make.body.splitlines() == [
        "x_1 = prepare_features(x)",
        "# find best scored 5 features",
        'select_feature = feature_state["select_feature"]',
        "",
        "x_train_2 = select_feature.transform(x_1)",
    ]


# -- steps after the split ------------------------------------------------------------------------
SCALE_AFTER_SPLIT = (
    "X = df.drop(columns=['label'])\ny = df['label']\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)\n"
    "sc = StandardScaler()\n# scale on the training rows only\n"
    "X_train = sc.fit_transform(X_train)\nX_test = sc.transform(X_test)\n"
    "model = LogisticRegression()\nmodel.fit(X_train, y_train)"
)
SCALER = "from sklearn.preprocessing import StandardScaler"
SCORE = "accuracy = model.score(X_test, y_test)"


def test_a_scaler_fitted_after_the_split_is_kept_and_applied_to_requests() -> None:
    """``X_train = sc.fit_transform(X_train)``, the commonest form: training keeps the
    notebook's code and records the training rows' labels and the fitted scaler; the service's
    ``make_features`` makes the frame as before the split, then scales it with that scaler."""
    plan = plan_cells(IMPORTS + "\n" + SCALER, LOAD, SCALE_AFTER_SPLIT, SCORE)

    inference = plan.inference
    assert inference.function == "make_features", inference.note
    assert (inference.state, inference.rows, inference.learnt) == (
        "feature_state",
        "fitted_rows",
        "`sc`",
    )
    features = next(m for m in plan.modules if m.name == "features")
    prepare, make = features.functions[:2]
    assert (prepare.name, prepare.params, prepare.returns) == ("prepare_features", ("df",), ("X",))
    assert make.params == ("df", "feature_state")
    assert make.body.splitlines() == [
        "X = prepare_features(df)",
        'sc = feature_state["sc"]',
        "# scale on the training rows only",
        "X = sc.transform(X)",
    ]
    train = next(c.function for c in plan.calls if c.function.stage == "train")
    assert train.returns[-2:] == ("fitted_rows", "feature_state")
    lines = train.body.splitlines()
    assert lines[0] == "X = prepare_features(df)"
    split = next(i for i, line in enumerate(lines) if "train_test_split" in line)
    assert lines[split + 2] == "fitted_rows = X_train.index"
    fit = lines.index("X_train = sc.fit_transform(X_train)")
    assert lines[fit + 2] == 'feature_state: dict[str, Any] = {"sc": sc}'
    assert "X_test = sc.transform(X_test)" in lines  # the test rows as the notebook made them
    pipeline = codegen.generate(plan)["src/demo/pipeline.py"]
    assert "inputs=inputs.loc[fitted_rows]" in pipeline
    assert "feature_state=feature_state" in pipeline
    assert "with what training fitted (`sc`)" in report.inference_text(plan)


def test_steps_after_the_split_of_the_data_as_loaded_need_no_steps_before() -> None:
    """The split takes the frame as loaded and the steps after it make an array: requests
    carry the loaded columns and ``make_features`` takes them as the split did."""
    plan = plan_cells(
        IMPORTS + "\n" + SCALER,
        "X = pd.read_csv('x.csv')\ny = pd.read_csv('y.csv')['label']",
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        "X_train = X_train.to_numpy()\nscaler = StandardScaler()\n"
        "scaler.fit(X_train)\nX_train = scaler.transform(X_train)\n"
        "model = LogisticRegression().fit(X_train, y_train)",
        PREDICT,
    )

    assert plan.inference.function == "make_features", plan.inference.note
    assert plan.inference.frame == "X"
    make = next(m for m in plan.modules if m.name == "features").functions[0]
    assert make.params == ("X", "feature_state")
    assert make.body.splitlines() == [
        "X = X.to_numpy()",
        'scaler = feature_state["scaler"]',
        "X = scaler.transform(X)",
    ]
    pipeline = codegen.generate(plan)["src/demo/pipeline.py"]
    assert "inputs = X.copy()" in pipeline


@pytest.mark.parametrize(
    ("after", "reason"),
    [
        (
            "selector = SelectKBest(k=2)\nX_train = selector.fit_transform(X_train, y_train)",
            "fits `selector` on the training data outside the model",
        ),
        (
            "X_train = pd.get_dummies(X_train, columns=['kind'])",
            "`pd.get_dummies` makes the columns of `X_train` after the split",
        ),
        ("X_train = X_train[X_train['a'] > 0]", "keeps, drops or reorders rows"),
        ("X_train = sc.fit_transform(X_train)", "fits `sc` on the training data outside the model"),
    ],
)
def test_steps_after_the_split_that_a_request_cannot_repeat_are_refused(
    after: str, reason: str
) -> None:
    plan = plan_cells(
        IMPORTS + "\n" + SCALER + "\nfrom sklearn.feature_selection import SelectKBest",
        LOAD + "\nsc = StandardScaler()",
        "X = df.drop(columns=['label'])\ny = df['label']\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        f"{after}\nmodel = LogisticRegression()\nmodel.fit(X_train, y_train)",
        PREDICT,
    )

    assert not plan.inference.function
    assert reason in plan.inference.note


def test_steps_after_the_split_of_arrays_are_refused() -> None:
    """``load_iris(return_X_y=True)`` gives arrays: their split keeps no row labels to match
    requests to the training rows, so the service takes the model's input as fitted."""
    plan = plan_cells(
        IMPORTS + "\n" + SCALER + "\nfrom sklearn.datasets import load_iris",
        "X, y = load_iris(return_X_y=True)",
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        "sc = StandardScaler()\nX_train = sc.fit_transform(X_train)\n"
        "model = LogisticRegression().fit(X_train, y_train)",
        "accuracy = model.score(sc.transform(X_test), y_test)",
    )

    assert not plan.inference.function
    assert "the split's input `X` is not known to be a pandas DataFrame" in plan.inference.note
    train = next(c.function for c in plan.calls if c.function.stage == "train")
    assert "fitted_rows" not in train.body


def test_steps_that_learn_both_before_and_after_the_split_are_refused() -> None:
    before = SCALE_AFTER_SPLIT.replace(
        "y = df['label']\n",
        "y = df['label']\nmm = MinMaxScaler()\nX[['a']] = mm.fit_transform(X[['a']])\n",
    )
    plan = plan_cells(
        IMPORTS + "\nfrom sklearn.preprocessing import MinMaxScaler, StandardScaler",
        LOAD,
        before,
        PREDICT,
    )

    assert not plan.inference.function
    assert "both before the split (`mm`) and after it (`sc`)" in plan.inference.note


def test_steps_after_the_split_over_two_stages_are_joined_in_make_features() -> None:
    """An array made in the features stage after the split, a scaler made and fitted on it in
    training: ``make_features`` holds both, the training stage records what the scaler learnt
    and the features stage the training rows' labels."""
    split, fit = SCALE_AFTER_SPLIT.split("sc = StandardScaler()\n")
    plan = plan_cells(
        IMPORTS + "\n" + SCALER,
        LOAD,
        "# md: ## Features",
        split + "X_train = X_train.to_numpy()",
        "# md: ## Training",
        "sc = StandardScaler()\n" + fit,
        SCORE,
    )

    assert plan.inference.function == "make_features", plan.inference.note
    make = next(f for m in plan.modules for f in m.functions if f.name == "make_features")
    assert make.body.splitlines() == [
        "X = prepare_features(df)",
        "X = X.to_numpy()",
        "",
        'sc = feature_state["sc"]',
        "# scale on the training rows only",
        "X = sc.transform(X)",
    ]
    returns = {c.function.stage: c.function.returns[-1] for c in plan.calls}
    assert (returns["features"], returns["train"]) == ("fitted_rows", "feature_state")


def test_transformers_fitted_after_the_split_in_two_stages_are_refused() -> None:
    split, fit = SCALE_AFTER_SPLIT.split("sc = StandardScaler()\n")
    plan = plan_cells(
        IMPORTS + "\nfrom sklearn.preprocessing import MinMaxScaler, StandardScaler",
        LOAD,
        "# md: ## Features",
        split + "mm = MinMaxScaler()\nX_train = mm.fit_transform(X_train)",
        "# md: ## Training",
        "sc = StandardScaler()\n" + fit,
        SCORE,
    )

    assert not plan.inference.function
    assert "make and fit their transformers in the features and train stages" in (
        plan.inference.note
    )


AFTER_SPLIT_CELLS = (
    "import numpy as np\nimport pandas as pd\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split\n"
    "from sklearn.preprocessing import StandardScaler",
    "# md: ## Data",
    "df = pd.read_csv('patients.csv')",
    "# md: ## Features",
    "df['bmi'] = df['weight'] / (df['height'] / 100) ** 2\n"
    "X = df[['age', 'bmi', 'glucose']]\ny = df['outcome']",
    "# md: ## Training",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)",
    "# scale with the training rows' statistics only\nscaler = StandardScaler()\n"
    "X_train = scaler.fit_transform(X_train)\nX_test = scaler.transform(X_test)",
    "model = LogisticRegression()\nmodel.fit(X_train, y_train)",
    "# md: ## Evaluation",
    "accuracy = model.score(X_test, y_test)",
)
# Runs in the promoted project: the model's input is the notebook's scaled array, what the
# scaler learnt is saved with the model, and one request alone gets its training row.
CHECK_AFTER_SPLIT = (
    TRAINED_AND_LOADED
    + """
np.testing.assert_allclose(result.features, expected)
assert len(result.inputs) == len(expected)
for row in range(len(expected)):
    one = loaded.model_input(result.inputs.iloc[[row]])  # one request alone, as the service does
    np.testing.assert_allclose(one, expected[[row]])
predicted = loaded.model.predict(loaded.model_input(result.inputs))
assert (predicted == notebook["model"].predict(expected)).all()
print(json.dumps({{"saved": saved, "columns": sorted(result.inputs.columns)}}))
"""
)


def write_patients(folder: Path) -> Path:
    """The notebook of ``AFTER_SPLIT_CELLS`` and its data, in ``folder``."""
    rng = np.random.default_rng(2)
    rows = 80
    pd.DataFrame(
        {
            "id": range(rows),
            "age": rng.integers(20, 80, rows),
            "weight": rng.normal(75, 12, rows).round(1),
            "height": rng.normal(170, 9, rows).round(1),
            "glucose": rng.integers(70, 200, rows).astype(float),
            "outcome": rng.choice([0, 1], rows),
        }
    ).to_csv(folder / "patients.csv", index=False)
    notebook = folder / "patients.ipynb"
    notebook.write_text(notebook_json(*AFTER_SPLIT_CELLS))
    return notebook


def test_a_promoted_notebook_scaled_after_the_split_serves_raw_columns(tmp_path: Path) -> None:
    """A derived column before the split, a scaler fitted on the training rows after it (an
    array): the pipeline gives the notebook's exact model input, saves the scaler beside the
    model, and a raw request alone gets the row the notebook fitted on; the generated modules
    pass ruff and mypy."""
    notebook = write_patients(tmp_path)
    project = tmp_path / "patients"

    result = promote(notebook, project, lock=False)

    assert result.plan.inference.rows == "fitted_rows", result.plan.inference.note
    stdout = run_checked(result, project, CHECK_AFTER_SPLIT, AFTER_SPLIT_CELLS, tmp_path)
    report = json.loads(stdout)
    assert "features.skops" in report["saved"]
    assert report["columns"] == ["age", "glucose", "height", "weight"]


@pytest.mark.slow
def test_a_project_scaled_after_the_split_passes_its_tests_and_serves_raw_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's path for the commonest preprocessing: promote (with --execute), install the
    project in a fresh venv, train, run its own tests (parity included), serve, and ask
    ``/predict`` with the raw columns of a row the notebook fitted on: the answer is the
    notebook's prediction for it."""
    notebook = write_patients(tmp_path)
    project = tmp_path / "patients-service"
    assert main([str(notebook), "-o", str(project), "--execute"]) == 0
    install_project(project)
    run([venv_command(project, "patients-train")], project)
    tests = run([venv_command(project, "pytest"), "-q", "-p", "no:cacheprovider", "-rs"], project)
    assert "test_parity" not in tests.split("short test summary")[-1], tests  # none skipped
    notebook_run: dict[str, Any] = {}
    monkeypatch.chdir(tmp_path)
    code = "\n".join(c for c in AFTER_SPLIT_CELLS if not c.startswith("# md:"))
    exec(compile(code, "patients.ipynb", "exec"), notebook_run)
    # the rows the notebook fitted on, as loaded, and its model's predictions for them
    fitted = train_test_split(notebook_run["X"], notebook_run["y"], test_size=0.25, random_state=0)
    raw = pd.read_csv(tmp_path / "patients.csv").loc[fitted[0].index[:5]]
    expected = notebook_run["model"].predict(notebook_run["X_train"][:5])
    with serving([venv_command(project, "patients-serve")], project, tmp_path / "log") as url:
        records = raw[["age", "weight", "height", "glucose"]].to_dict(orient="records")
        for record, prediction in zip(records, expected, strict=True):
            status, body = http("POST", f"{url}/predict", record)
            assert status == 200, body
            assert (body["model_version"], body["prediction"]) == ("v1", prediction), record


PASSENGER_CELLS = (
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split",
    "# md: ## Data",
    "df = pd.read_csv('passengers.csv')",
    "# md: ## Features",
    "df.drop(columns=['ticket'], inplace=True)\n"
    "# fill the gaps: the median age, the commonest port\n"
    "df['age'] = df['age'].fillna(df['age'].median())\n"
    "df['port'] = df['port'].fillna(df['port'].mode()[0])\n"
    "df['fare_z'] = (df.fare - df.fare.mean()) / df.fare.std()\n"
    "df['from_s'] = (df['port'] == 'S').astype(int)\n"
    "X = df[['age', 'fare_z', 'from_s']]\ny = df['survived']",
    "# md: ## Training",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)\n"
    "model = LogisticRegression()\nmodel.fit(X_train, y_train)",
)
# Runs in the promoted project: the statistics training learnt are saved with the model, and
# a request alone (its age and port missing) is filled with them, not with its own.
CHECK_STATISTICS = (
    TRAINED_AND_LOADED
    + """
assert_frame_equal(result.features, expected)
for row in range(len(expected)):
    one = loaded.model_input(result.inputs.iloc[[row]])
    assert_frame_equal(one, expected.iloc[[row]], check_dtype=False)
gaps = result.inputs.iloc[[0]].assign(age=np.nan, port=None)
filled = loaded.model_input(gaps)
loaded_rows = pd.read_csv("passengers.csv")
assert filled["age"].iloc[0] == loaded_rows["age"].median()
assert filled["from_s"].iloc[0] == int(loaded_rows["port"].mode()[0] == "S")
print(json.dumps(sorted(loaded.feature_state)))
"""
)


def write_passengers(folder: Path, cells: tuple[str, ...] = PASSENGER_CELLS) -> Path:
    """``passengers.ipynb`` (``cells``) and the data it reads (ages and ports with gaps), in
    ``folder``."""
    rng = np.random.default_rng(3)
    rows = 60
    ages = rng.integers(1, 80, rows).astype(float)
    ages[::7] = np.nan
    ports = rng.choice(["S", "C", "Q"], rows, p=[0.6, 0.3, 0.1]).astype(object)
    ports[::9] = None
    pd.DataFrame(
        {
            "age": ages,
            "port": ports,
            "fare": rng.normal(30, 10, rows).round(2),
            "ticket": [f"T{i}" for i in range(rows)],
            "survived": rng.choice([0, 1], rows),
        }
    ).to_csv(folder / "passengers.csv", index=False)
    notebook = folder / "passengers.ipynb"
    notebook.write_text(notebook_json(*cells))
    return notebook


def test_a_promoted_notebook_keeps_the_statistics_its_steps_fill_gaps_with(
    tmp_path: Path,
) -> None:
    """Gaps filled with the median and the mode, a column standardised with its mean and
    standard deviation: training learns the four values once, saves them with the model, and
    a request alone (with gaps) gets training's values, as the notebook's rows did."""
    notebook = write_passengers(tmp_path)
    project = tmp_path / "passengers"

    result = promote(notebook, project, lock=False)

    assert result.plan.inference.state == "feature_state", result.plan.inference.note
    stdout = run_checked(result, project, CHECK_STATISTICS, PASSENGER_CELLS, tmp_path)
    assert json.loads(stdout) == [
        "df.fare.mean()",
        "df.fare.std()",
        "df['age'].median()",
        "df['port'].mode()[0]",
    ]


FRAME_FILL_CELLS = (
    *PASSENGER_CELLS[:4],
    "df.drop(columns=['ticket'], inplace=True)\n"
    "# every gap of a number: its column's median\n"
    "df = df.fillna(df.median(numeric_only=True))\n"
    "df['port'] = df['port'].fillna(df['port'].mode()[0])\n"
    "df['from_s'] = (df['port'] == 'S').astype(int)\n"
    "X = df[['age', 'fare', 'from_s']]\ny = df['survived']",
    *PASSENGER_CELLS[5:],
)


def test_a_promoted_notebook_fills_a_request_s_gaps_with_training_s_column_medians(
    tmp_path: Path,
) -> None:
    """The whole frame's gaps filled with its medians: training learns one per column, and a
    request alone with a missing age gets training's median age, not its own (none)."""
    notebook = write_passengers(tmp_path, FRAME_FILL_CELLS)
    project = tmp_path / "passengers"

    result = promote(notebook, project, lock=False)

    assert result.plan.inference.state == "feature_state", result.plan.inference.note
    stdout = run_checked(result, project, CHECK_STATISTICS, FRAME_FILL_CELLS, tmp_path)
    assert json.loads(stdout) == ["df.median(numeric_only=True)", "df['port'].mode()[0]"]


def test_statistics_used_after_the_split_are_refused() -> None:
    plan = plan_cells(
        IMPORTS,
        LOAD,
        "X = df.drop(columns=['label'])\ny = df['label']\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
        "X_train['a'] = X_train['a'].fillna(X_train['a'].mean())\n"
        "model = LogisticRegression()\nmodel.fit(X_train, y_train)",
        SCORE,
    )

    assert not plan.inference.function
    assert "`X_train['a'].mean()` is a statistic of the training rows used after the split" in (
        plan.inference.note
    )


DUMMIES_CELLS = (
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.model_selection import train_test_split",
    "df = pd.read_csv('students.csv')",
    "# md: ## Features",
    "X = df[['grade', 'obedient', 'research']]\n"
    "# one column fewer per category: the first is the rows with none\n"
    "X = pd.get_dummies(X, columns=['grade', 'obedient'],\n"
    "                   drop_first=True, dtype=int)\ny = df['recommend']",
    "# md: ## Training",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)\n"
    "model = LogisticRegression()\nmodel.fit(X_train, y_train)",
)
CHECK_DROP_FIRST = (
    TRAINED_AND_LOADED
    + """
assert_frame_equal(result.features, expected)
for row in range(len(expected)):  # each grade alone, the first one included
    one = loaded.model_input(result.inputs.iloc[[row]])
    assert_frame_equal(one, expected.iloc[[row]])
print(json.dumps(list(expected.columns)))
"""
)


def test_dummies_without_their_first_category_are_made_alike_for_one_request(
    tmp_path: Path,
) -> None:
    """``pd.get_dummies(..., drop_first=True)``: one request has one category, which
    ``drop_first`` would drop; the service makes its columns without it and keeps training's,
    so each row alone, whatever its category, gets the row the notebook fitted on."""
    write_students(tmp_path)
    notebook = tmp_path / "dummies.ipynb"
    notebook.write_text(notebook_json(*DUMMIES_CELLS))

    result = promote(notebook, tmp_path / "dummies", lock=False)

    make = next(f for m in result.plan.modules for f in m.functions if f.name == "make_features")
    assert "X = pd.get_dummies(X, columns=['grade', 'obedient'], dtype=int)" in make.body
    assert "drop_first" not in make.body
    stdout = run_checked(result, tmp_path / "dummies", CHECK_DROP_FIRST, DUMMIES_CELLS, tmp_path)
    assert json.loads(stdout) == ["research", "grade_B", "grade_C", "grade_F", "obedient_Y"]
