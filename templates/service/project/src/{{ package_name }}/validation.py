"""Data checks: new training data and live requests against the schema of the serving model.

The schema saved with each model (``artifacts.Schema``) records, for a table model, each
column's dtype, whether training saw missing values in it, the range of its numbers and
the categories of its strings and booleans. Two checks read the same schema, through the
same ``bounds``:

* ``check_training_data``: ``make train`` validates the features of the new model against
  the schema of the version being served, with pandera, before the new version may serve
  (``registry.py``). It reports each broken column with the rows that break it.
* ``check_record``: the service checks the values of each request (``service/app.py``);
  their types are checked before, by ``inference.validate_record`` (422).

A number breaks the range when it lies outside ``[min - m * w, max + m * w]``, where
``w = max - min`` is the training range and ``m`` the margin (``DATA_RANGE_MARGIN``, 0.1 by
default). A string or boolean breaks the categories when training never saw it (columns
with more than ``artifacts.MAX_CATEGORIES`` categories are not checked). A missing value
breaks a column that had none in training. Text and array models are checked for their
shape only.
"""

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from . import reference as ref
from .artifacts import Column, Schema

DEFAULT_RANGE_MARGIN = 0.1
ROWS_SHOWN = 5  # rows named per problem in a report
VALUES_SHOWN = 3  # example values per problem
CATEGORIES_CHECK = "training_categories"
OFF = "(off)"  # DataReport.against when the check is turned off

Check = Literal["column", "dtype", "nulls", "range", "categories", "shape"]


@dataclass(frozen=True)
class Problem:
    """One way the new training data breaks the schema of the serving model."""

    column: str
    check: Check
    message: str
    count: int = 0  # rows that break it (0: the whole column)
    rows: tuple[Any, ...] = ()  # the first of those rows (index labels)

    def describe(self) -> str:
        where = ""
        if self.count:
            shown = ", ".join(str(row) for row in self.rows)
            more = ", ..." if self.count > len(self.rows) else ""
            where = f" ({self.count} row{'s' if self.count > 1 else ''}: {shown}{more})"
        return f"column {self.column!r}: {self.message}{where}"


@dataclass(frozen=True)
class DataReport:
    """The outcome of ``check_training_data``: passed when there is no problem."""

    against: str  # the version whose schema the data was checked against ("": none, OFF)
    rows: int
    problems: tuple[Problem, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.against == OFF:
            return "data check: off (TRAINING_DATA_CHECKS=off)"
        if not self.against:
            return "data check: nothing serves yet, no schema to check the data against"
        if self.passed:
            return f"data check: the {self.rows} training rows match the schema of {self.against}"
        lines = [
            f"data check FAILED: the training data breaks the schema of the serving version "
            f"{self.against} ({len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}):"
        ]
        lines += [f"  - {problem.describe()}" for problem in self.problems]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "against": self.against,
            "rows": self.rows,
            "passed": self.passed,
            "problems": [
                {
                    "column": problem.column,
                    "check": problem.check,
                    "message": problem.message,
                    "count": problem.count,
                    "rows": [str(row) for row in problem.rows],
                }
                for problem in self.problems
            ],
        }


@dataclass(frozen=True)
class Violation:
    """A request value the model's training data never had: out of range or unknown."""

    field: str
    check: Literal["range", "categories"]
    message: str


def bounds(column: Column, margin: float) -> tuple[float, float] | None:
    """The accepted range of a numeric column, or None when it has none."""
    if column.minimum is None or column.maximum is None:
        return None
    width = column.maximum - column.minimum
    return column.minimum - margin * width, column.maximum + margin * width


def check_training_data(
    features: Any, schema: Schema, *, against: str, margin: float = DEFAULT_RANGE_MARGIN
) -> DataReport:
    """Check the features of a new model against the schema of the serving one."""
    rows = len(features)
    if schema.kind != "table" or not isinstance(features, pd.DataFrame):
        return DataReport(against, rows, tuple(_shape_problems(features, schema)))
    problems: list[Problem] = []
    checked: list[Column] = []
    for column in schema.columns:
        if column.name not in features.columns:
            problems.append(Problem(column.name, "column", "missing from the new data"))
        elif features[column.name].dtype.name != column.dtype:
            message = f"dtype {features[column.name].dtype.name}, was {column.dtype} in training"
            problems.append(Problem(column.name, "dtype", message))
        else:
            checked.append(column)
    known = {column.name for column in schema.columns}
    problems += [
        Problem(str(name), "column", "not in the serving model's input")
        for name in features.columns
        if name not in known
    ]
    problems += _value_problems(features, checked, margin)
    return DataReport(against, rows, tuple(problems))


def check_record(
    schema: Schema, record: Mapping[str, Any], margin: float = DEFAULT_RANGE_MARGIN
) -> list[Violation]:
    """The values of one (well-typed) request record that training never saw."""
    violations: list[Violation] = []
    if schema.kind != "table":
        return violations
    for column in schema.columns:
        value = record.get(column.name)
        if value is None or isinstance(value, float) and value != value:  # null / NaN
            continue
        limits = bounds(column, margin)
        if limits is not None and isinstance(value, int | float) and not isinstance(value, bool):
            low, high = limits
            if not low <= value <= high:
                message = (
                    f"{value} is outside the range seen in training "
                    f"[{column.minimum}, {column.maximum}]"
                )
                violations.append(Violation(column.name, "range", message))
        elif column.categories is not None:
            label = ref.category_labels(pd.Series([value], dtype=object)).iloc[0]
            if label not in column.categories:
                message = f"{value!r} is a category never seen in training"
                violations.append(Violation(column.name, "categories", message))
    return violations


def _shape_problems(features: Any, schema: Schema) -> list[Problem]:
    if schema.kind == "table":
        return [Problem("*", "shape", f"a table was expected, got {type(features).__name__}")]
    if schema.kind == "array":
        shape = tuple(getattr(features, "shape", ()))
        if len(shape) != 2 or shape[1] != schema.n_features:
            message = f"{schema.n_features} features per row expected, got shape {shape}"
            return [Problem("features", "shape", message)]
    return []


def _value_problems(frame: pd.DataFrame, columns: Sequence[Column], margin: float) -> list[Problem]:
    """Nulls, ranges and categories, checked by pandera (lazily: every failure at once)."""
    try:  # imported here: only training needs pandera
        pa = importlib.import_module("pandera.pandas")
    except ModuleNotFoundError:  # pandera < 0.24, the one for pandas < 2.1.1, has no pandera.pandas
        pa = importlib.import_module("pandera")

    checks: dict[str, Any] = {}
    messages: dict[tuple[str, Check], str] = {}
    for column in columns:
        column_checks = []
        limits = bounds(column, margin)
        if limits is not None:
            low, high = limits
            column_checks.append(pa.Check.in_range(low, high))
            messages[(column.name, "range")] = (
                f"values outside the range seen in training [{column.minimum:.6g}, "
                f"{column.maximum:.6g}] (with the margin: [{low:.6g}, {high:.6g}])"
            )
        elif column.categories is not None:
            known = frozenset(column.categories)
            column_checks.append(
                pa.Check(
                    lambda values, known=known: ref.category_labels(values).isin(known),
                    name=CATEGORIES_CHECK,
                )
            )
            messages[(column.name, "categories")] = "categories never seen in training"
        messages[(column.name, "nulls")] = "missing values, where training had none"
        checks[column.name] = pa.Column(checks=column_checks, nullable=column.nullable)
    try:
        pa.DataFrameSchema(checks, strict=False).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as error:
        return _problems_from(error.failure_cases, messages, frame.index)
    return []


def _check_kind(check: str) -> Check:
    """The kind of a pandera check, from its name in the failure cases."""
    if check.startswith("in_range"):
        return "range"
    if check.startswith(CATEGORIES_CHECK):
        return "categories"
    if "nullable" in check:
        return "nulls"
    return "dtype"


def _problems_from(
    failures: pd.DataFrame, messages: Mapping[tuple[str, Check], str], index: pd.Index
) -> list[Problem]:
    problems = []
    for (column, check), cases in failures.groupby(["column", "check"], sort=False):
        kind = _check_kind(str(check))
        message = messages.get((str(column), kind), str(check))
        if kind != "nulls":
            examples = ref.category_labels(cases["failure_case"].head(VALUES_SHOWN))
            message += f", such as {', '.join(examples)}"
        rows = index[index.isin(cases["index"])][:ROWS_SHOWN].tolist()  # in the data's order
        problems.append(Problem(str(column), kind, message, len(cases), tuple(rows)))
    return problems
