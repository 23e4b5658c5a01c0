"""Save a trained model with a description of its input, and load it back for serving.

An artifacts directory holds six files:

* ``model.skops``: the fitted model, in skops' format, which loads without running
  arbitrary code (``model.ubj``, XGBoost's own format, for an XGBoost estimator;
  ``model.pt``, a PyTorch module's weights; ``model.joblib``, a pickle, only for a model
  none of these can save): ``modelfile.py``;
* ``model.json``: the model file's name, format, SHA-256 and the library versions it was
  saved with, and for skops the types it needs beyond skops' defaults (``MANIFEST_FILE``);
* ``schema.json``: the input a request carries, inferred from the training rows
  (``table``: named, typed columns; ``text``: one string; ``array``: n numbers;
  ``forecast``: a number of steps, for a time-series forecaster: ``forecast.py``). Each
  column of a table also records what training saw of it: missing values, the range of
  its numbers and the categories of its strings and booleans (``validation.py`` checks
  new training data and requests against them);
* ``sample.json``: the first of those rows as JSON records, with the model's predictions
  for them (the service's tests replay them);
* ``metrics.json``: the metrics reported by the pipeline;
* ``reference.json``: statistics of the training input and of the model's predictions on
  it, against which the service measures drift (``reference.py``). It is optional: without
  it the service takes the first live requests as the reference.

The input a request carries is ``TrainingResult.features``, the exact input the model was
fitted on, unless the pipeline also returns ``inputs`` and ``make_features``: then requests
carry the rows of ``inputs`` (the loaded columns, without the target), ``schema.json`` names
``make_features`` (a function of this package, recorded as ``module:name``) and the service
applies it to each request before the model (``model_input``), as training did. The schema,
the sample, the data checks and the drift reference then all describe ``inputs``: what
clients send. When those steps learn from the training rows (a scaler they fit, the columns
``pd.get_dummies`` makes), the pipeline also returns what they learnt, ``feature_state``: it
is saved beside the model (``features.skops``, recorded in ``model.json``) and given to
``make_features`` with each request, so a request gets exactly what training learnt.
"""

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api import types as ptypes

from . import reference as ref

# The model file and its manifest (``modelfile.py``), also used from here.
from .modelfile import JOBLIB_MODEL_FILE as JOBLIB_MODEL_FILE
from .modelfile import MANIFEST_FILE as MANIFEST_FILE
from .modelfile import MODEL_FILE as MODEL_FILE
from .modelfile import STATSMODELS_MODEL_FILE as STATSMODELS_MODEL_FILE
from .modelfile import TRUSTED_MODULES as TRUSTED_MODULES
from .modelfile import ModelArtifactError as ModelArtifactError
from .modelfile import file_sha256 as file_sha256
from .modelfile import is_forecaster as is_forecaster
from .modelfile import library_versions as library_versions
from .modelfile import load_model as load_model
from .modelfile import load_state as load_state
from .modelfile import own_module, package_function
from .modelfile import save_model as save_model
from .modelfile import save_state as save_state

logger = logging.getLogger(__name__)

SCHEMA_FILE = "schema.json"
SAMPLE_FILE = "sample.json"
METRICS_FILE = "metrics.json"
REFERENCE_FILE = "reference.json"
ARTIFACT_FILES = (MANIFEST_FILE, SCHEMA_FILE, SAMPLE_FILE, METRICS_FILE)  # required to serve
SAMPLE_ROWS = 5
# A string or boolean column with more distinct values than this keeps no category list.
MAX_CATEGORIES = 50
# Training rows on which ``save`` checks that make_features(inputs) gives the features.
CHECKED_ROWS = 200

TEXT_FIELD = "text"
ARRAY_FIELD = "features"

Kind = Literal["table", "text", "array", "forecast"]
JsonType = Literal["number", "integer", "boolean", "string"]


class TrainingOutput(Protocol):
    """The part of ``pipeline.TrainingResult`` that is saved."""

    @property
    def model(self) -> Any: ...

    @property
    def features(self) -> Any: ...

    @property
    def metrics(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Column:
    """One input column of a table model."""

    name: str
    dtype: str  # pandas dtype name, restored when building the model input
    type: JsonType  # JSON type accepted for the field
    nullable: bool = False  # the training data had missing values in this column
    minimum: float | None = None  # numbers: the smallest value seen in training
    maximum: float | None = None  # numbers: the largest value seen in training
    # strings and booleans: the values seen in training, as strings (None: not recorded,
    # more than MAX_CATEGORIES of them)
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Schema:
    """Description of the model input; see the module docstring."""

    kind: Kind
    columns: tuple[Column, ...] = ()  # table
    n_features: int = 0  # array
    dtype: str = ""  # array: numpy dtype name
    make_features: str = ""  # "module:function" applied to requests before the model, if any
    horizon: int = 0  # forecast: the steps the notebook forecast (the sample's request)
    max_steps: int = 0  # forecast: the most steps a request may ask for

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": "text"}
        if self.kind == "forecast":
            data = {"kind": "forecast", "horizon": self.horizon, "max_steps": self.max_steps}
        if self.kind == "table":
            data = {"kind": "table", "columns": [vars(column) for column in self.columns]}
        elif self.kind == "array":
            data = {"kind": "array", "n_features": self.n_features, "dtype": self.dtype}
        if self.make_features:
            data["make_features"] = self.make_features
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Schema":
        return cls(
            kind=data["kind"],
            columns=tuple(_column_from_json(column) for column in data.get("columns", ())),
            n_features=data.get("n_features", 0),
            dtype=data.get("dtype", ""),
            make_features=data.get("make_features", ""),
            horizon=data.get("horizon", 0),
            max_steps=data.get("max_steps", 0),
        )


@dataclass(frozen=True)
class LoadedModel:
    """A model loaded from an artifacts directory, ready to serve."""

    model: Any
    schema: Schema
    sample: dict[str, Any] = field(repr=False)  # {"records": [...], "predictions": [...]}
    metrics: dict[str, float]
    directory: Path
    model_sha256: str = ""  # of the model file: identifies the model being served
    reference: dict[str, Any] | None = field(default=None, repr=False)  # reference.json
    # The feature steps the schema names (``schema.make_features``), None if it names none,
    # and what they learnt from the training rows (None if they learn nothing).
    make_features: Callable[..., Any] | None = field(default=None, repr=False)
    feature_state: dict[str, Any] | None = field(default=None, repr=False)

    def model_input(self, request_input: Any) -> Any:
        """The model's input for rows as requests carry them (``inference.build_input``)."""
        return model_input(self.make_features, request_input, self.feature_state)


def request_input(result: TrainingOutput) -> Any:
    """The training rows as requests carry them: ``inputs`` if the pipeline returns it (with
    ``make_features``), else the features the model was fitted on."""
    inputs = getattr(result, "inputs", None)
    return result.features if inputs is None else inputs


def model_input(
    make_features: Callable[..., Any] | None,
    request_input: Any,
    feature_state: Mapping[str, Any] | None = None,
) -> Any:
    """``make_features`` applied to a copy of ``request_input`` (it may add columns in place),
    with what the steps learnt in training (``feature_state``) when they learnt anything."""
    if make_features is None:
        return request_input
    if feature_state is None:
        return make_features(request_input.copy())
    return make_features(request_input.copy(), feature_state)


def save(result: TrainingOutput, directory: Path) -> None:
    """Write the model, its input schema, a sample, the metrics and the reference statistics
    of the training input into ``directory`` (a forecaster's: ``forecast.save``)."""
    if is_forecaster(result.model):
        from . import forecast

        forecast.save(result, directory)
        return
    features = request_input(result)
    make_features = getattr(result, "make_features", None)
    state = getattr(result, "feature_state", None) if make_features is not None else None
    schema = infer_schema(features)
    if make_features is not None:
        schema = replace(schema, make_features=function_reference(make_features))
        check_feature_steps(make_features, features, result.features, feature_state=state)
    head = _head(features, SAMPLE_ROWS)
    predicted = result.model.predict(model_input(make_features, head, state))
    sample = {"records": to_records(head, schema), "predictions": to_json_safe(list(predicted))}
    metrics = {str(name): to_json_safe(float(value)) for name, value in result.metrics.items()}

    directory.mkdir(parents=True, exist_ok=True)
    save_model(result.model, directory)
    if state is not None:
        save_state(state, directory)
    _write_json(directory / SCHEMA_FILE, schema.to_json())
    _write_json(directory / SAMPLE_FILE, sample)
    _write_json(directory / METRICS_FILE, metrics)
    _write_json(
        directory / REFERENCE_FILE,
        reference_statistics(result.model, features, schema, make_features, state),
    )


def reference_statistics(
    model: Any,
    features: Any,
    schema: Schema,
    make_features: Callable[..., Any] | None = None,
    feature_state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe the training input and the model's predictions on it (``reference.py``).

    ``features`` are rows as requests carry them, turned into the model's input by
    ``make_features`` (if any, with ``feature_state``). More than ``reference.MAX_ROWS`` rows are described from a
    seeded sample of them.
    """
    rows = len(features)
    if rows > ref.MAX_ROWS:
        chosen = np.sort(np.random.default_rng(0).choice(rows, ref.MAX_ROWS, replace=False))
        features = _take(features, chosen)
    predictions = to_json_safe(
        list(model.predict(model_input(make_features, features, feature_state)))
    )
    task = ref.prediction_task(model, predictions)
    return ref.reference_statistics(features, schema.kind, predictions, task)


def load(directory: Path) -> LoadedModel:
    """Load the artifacts written by ``save``; FileNotFoundError if any is missing,
    ModelArtifactError if the model file is not the one ``save`` wrote or cannot be trusted."""
    missing = [name for name in ARTIFACT_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"missing {', '.join(missing)} in {directory}")
    model, sha256 = load_model(directory)
    schema = Schema.from_json(_read_json(directory / SCHEMA_FILE))
    return LoadedModel(
        model=model,
        schema=schema,
        sample=_read_json(directory / SAMPLE_FILE),
        metrics=_read_json(directory / METRICS_FILE),
        directory=directory,
        model_sha256=sha256,
        reference=_read_json(reference)
        if (reference := directory / REFERENCE_FILE).is_file()
        else None,
        make_features=resolve_function(schema.make_features) if schema.make_features else None,
        feature_state=load_state(directory) if schema.make_features else None,
    )


def function_reference(function: Callable[..., Any]) -> str:
    """``module:name`` of a function of this package (ValueError for any other)."""
    module = getattr(function, "__module__", "") or ""
    name = getattr(function, "__qualname__", "") or ""
    if not own_module(module) or not name.isidentifier():
        raise ValueError(
            f"TrainingResult.make_features must be a top-level function of this package, "
            f"not {function!r}: the service imports it by name to apply it to each request"
        )
    return f"{module}:{name}"


def resolve_function(reference: str) -> Callable[..., Any]:
    """The function ``function_reference`` recorded; ModelArtifactError if it is not one of
    this package's (a schema file cannot make the service import other code)."""
    return package_function(reference, f"{SCHEMA_FILE} (its feature steps)")


def check_feature_steps(
    make_features: Callable[..., Any],
    inputs: Any,
    features: Any,
    rows: int = CHECKED_ROWS,
    feature_state: Mapping[str, Any] | None = None,
) -> None:
    """Check that ``make_features`` turns the first rows of ``inputs`` into the same rows of
    ``features``, from those rows alone (and what the steps learnt in training,
    ``feature_state``): what the service will do with each request.

    ValueError (with what differs) if not: the feature steps then depend on other rows, or
    ``inputs`` is not aligned with ``features``.
    """
    if not isinstance(inputs, pd.DataFrame):
        raise ValueError(
            f"TrainingResult.inputs must be a pandas DataFrame, not {_describe(inputs)}"
        )
    if len(inputs) != len(features):
        raise ValueError(
            f"TrainingResult.inputs has {len(inputs)} rows, but the model was fitted on "
            f"{len(features)}: give the rows of the loaded data the features were made from"
        )
    made = model_input(make_features, _head(inputs, rows), feature_state)
    expected = _head(features, rows)
    try:
        if isinstance(expected, pd.DataFrame):
            pd.testing.assert_frame_equal(made, expected, check_exact=False, rtol=1e-9)
        elif isinstance(expected, pd.Series):
            pd.testing.assert_series_equal(made, expected, check_exact=False, rtol=1e-9)
        else:
            np.testing.assert_allclose(np.asarray(made), np.asarray(expected), rtol=1e-9)
    except AssertionError as error:
        raise ValueError(
            f"make_features on the first {len(expected)} training rows alone does not give "
            "the features the model was fitted on, so the service would give requests other "
            "features than training did (a feature step that depends on other rows, or "
            f"inputs not aligned with features): {error}"
        ) from error


def infer_schema(features: Any) -> Schema:
    """Describe the model input from the features the model was fitted on."""
    if isinstance(features, pd.DataFrame):
        return Schema(kind="table", columns=tuple(_column(features, name) for name in features))
    if _is_text(features):
        return Schema(kind="text")
    if isinstance(features, np.ndarray) and features.ndim == 2 and features.dtype.kind in "biuf":
        return Schema(kind="array", n_features=features.shape[1], dtype=features.dtype.name)
    raise ValueError(
        f"cannot serve a model fitted on {_describe(features)}: TrainingResult.features must "
        "be a pandas DataFrame, a pandas Series or list of strings (a text model), or a 2-D "
        "numeric numpy array; return the exact input passed to model.fit"
    )


def to_records(features: Any, schema: Schema) -> list[dict[str, Any]]:
    """Convert rows of model input to the JSON records the service accepts."""
    if schema.kind == "table":
        return [
            {str(name): to_json_safe(value) for name, value in row.items()}
            for row in features.to_dict(orient="records")
        ]
    if schema.kind == "text":
        return [{TEXT_FIELD: str(text)} for text in features]
    return [{ARRAY_FIELD: to_json_safe(list(row))} for row in features]


def to_json_safe(value: Any) -> Any:
    """Convert numpy / pandas values (also nested in lists and dicts) to plain JSON values.

    Missing and non-finite numbers become None.
    """
    if isinstance(value, Mapping):
        return {str(to_json_safe(key)): to_json_safe(item) for key, item in value.items()}
    if isinstance(value, np.ndarray | Sequence) and not isinstance(value, str | bytes):
        return [to_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if pd.isna(value):
        return None
    return str(value)


def _column(frame: pd.DataFrame, name: Any) -> Column:
    if not isinstance(name, str):
        raise ValueError(
            f"column {name!r} of the features is not a string: rename the DataFrame columns "
            "to strings (they become the JSON fields of the prediction request)"
        )
    values = frame[name]
    if isinstance(values, pd.DataFrame):
        raise ValueError(f"column {name!r} appears more than once in the features")
    json_type = _json_type(values)
    minimum = maximum = None
    categories = None
    present = values.dropna()
    if json_type in ("number", "integer") and not isinstance(values.dtype, pd.CategoricalDtype):
        finite = pd.to_numeric(present, errors="coerce")
        finite = finite[np.isfinite(finite.to_numpy(dtype=float))]
        if len(finite):
            minimum, maximum = float(finite.min()), float(finite.max())
    elif json_type in ("string", "boolean") or isinstance(values.dtype, pd.CategoricalDtype):
        if not ptypes.is_datetime64_any_dtype(values.dtype):
            labels = sorted(set(ref.category_labels(present)))
            categories = tuple(labels) if len(labels) <= MAX_CATEGORIES else None
    return Column(
        name=name,
        dtype=values.dtype.name,
        type=json_type,
        nullable=bool(values.isna().any()),
        minimum=minimum,
        maximum=maximum,
        categories=categories,
    )


def _column_from_json(data: Mapping[str, Any]) -> Column:
    """A column of schema.json; those written before ranges and categories load too."""
    categories = data.get("categories")
    return Column(**{**data, "categories": None if categories is None else tuple(categories)})


def _json_type(values: pd.Series) -> JsonType:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _json_type(pd.Series(dtype.categories))
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if ptypes.is_integer_dtype(dtype):
        return "integer"
    if ptypes.is_float_dtype(dtype):
        return "number"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "string"  # ISO 8601, converted back by the dtype
    if isinstance(dtype, pd.StringDtype) or (
        dtype.kind == "O" and all(isinstance(value, str) for value in values.dropna())
    ):
        return "string"
    raise ValueError(
        f"column {values.name!r} has dtype {dtype} (values such as "
        f"{values.dropna().head(3).tolist()!r}), which cannot be described as a JSON field: "
        "convert it to numbers, booleans or strings before fitting the model"
    )


def _is_text(features: Any) -> bool:
    if isinstance(features, pd.Series):
        values: Sequence[Any] = features.tolist()
    elif isinstance(features, list | tuple):
        values = features
    elif isinstance(features, np.ndarray) and features.ndim == 1:
        values = features.tolist()
    else:
        return False
    return len(values) > 0 and all(isinstance(value, str) for value in values)


def _head(features: Any, rows: int) -> Any:
    if isinstance(features, pd.DataFrame | pd.Series):
        return features.head(rows)
    return features[:rows]


def _take(features: Any, rows: npt.NDArray[np.int64]) -> Any:
    if isinstance(features, pd.DataFrame | pd.Series):
        return features.iloc[rows]
    if isinstance(features, np.ndarray):
        return features[rows]
    return [features[row] for row in rows]


def _describe(features: Any) -> str:
    if isinstance(features, np.ndarray):
        return f"a {features.ndim}-D numpy array of {features.dtype}"
    if isinstance(features, pd.Series | list | tuple):
        return f"a {type(features).__name__} that does not hold only strings"
    return f"a {type(features).__module__}.{type(features).__qualname__}"


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as the artifacts' JSON files are written."""
    _write_json(path, data)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
