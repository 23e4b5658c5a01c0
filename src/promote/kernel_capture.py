"""What ``promote --execute`` records, computed inside the notebook's kernel after its last cell.

This module's source is sent to the kernel and run there in a namespace of its own (it never
runs in promote's process, except in promote's tests): it imports only the standard library at
module level, and numpy and pandas where the notebook has them. ``capture`` returns plain JSON
data about the fitted model and the input it was fitted on:

* ``schema``: the model input as the model saw it: ``table`` (column names, dtypes, JSON
  types, nullability, minimum and maximum of numbers, categories of strings and booleans with
  at most ``MAX_CATEGORIES`` values), ``text`` or ``array`` (number of features, dtype);
* ``records`` and ``predictions``: the first ``rows`` rows of the input as JSON records of
  the model's input, and the model's predictions for them. Columns that look like personal data or
  secrets (by their name, or by values that look like e-mail addresses or phone numbers)
  are left out of the records, of the schema's ranges and categories and of the reference
  statistics, and ``dropped`` says which and why;
* ``reference``: the reference statistics of the input and of the predictions, computed by
  the generated project's own ``reference.py`` (its source is passed in), the same way
  ``make train`` computes ``artifacts/reference.json`` (which describes what requests carry:
  the loaded columns, when the service applies the notebook's feature steps itself; the
  parity tests compare at the model's input);
* ``metrics``: the metrics that are numbers; ``versions``: the imported libraries' versions;
* ``requests``: when the service applies the notebook's feature steps (``make_features``) and
  ``loaded`` is the frame as the notebook loaded it (promote copies it in the kernel after the
  cell that made it): the same rows as requests carry them (its columns without the target
  ``drop`` names, at the rows of the fit input), with their schema, records, the model's
  predictions for them and reference statistics, as ``make train`` writes them; else None,
  and ``unmatched`` says why (``rows_at``). When steps after the split make the fit input,
  its rows are those of ``labels`` (the training rows' labels, taken right after the split).
  When those steps learn from the training rows, ``serving`` holds what the notebook's steps
  learnt (taken after their cells) and the source of ``make_features``: the predictions are
  the model's through those steps, which must be the notebook's (``steps_error``; else
  ``state_error`` says why), and what they learnt is saved beside the model (``save_state``);
* ``model``: the fitted model itself, saved into a directory promote gives by the generated
  project's own ``modelfile.py`` (its source is passed in: skops, XGBoost's format, joblib
  only where neither fits, and ``model.json`` with the SHA-256 and library versions): the
  manifest with the file's size (and ``feature_state``, the record of what the steps learnt
  saved beside it, or ``state_error``), or ``{"error": why}`` when it is not kept (over the
  size cap, or the model uses functions or classes defined in the notebook itself).

A statsmodels forecaster (``SARIMAX``, ``ARIMA``) fitted on a series is captured by
``capture_forecast`` instead: its forecast of ``horizon`` steps after the series (the one
request of the sample, ``{"steps": horizon}``, its values and their index labels), the
metrics, a description of the series it was fitted on, and the model saved as data by
``modelfile.py``, as ``make train`` saves it (``forecast.py`` in the generated project).
"""

from __future__ import annotations

import math
import re
import sys
import time
from pathlib import Path
from typing import Any

MAX_CATEGORIES = 50  # as artifacts.MAX_CATEGORIES in the generated project
# Training rows on which the service's feature steps are checked (artifacts.CHECKED_ROWS).
CHECKED_ROWS = 200
PII_SCAN_ROWS = 200  # values of a string column looked at for e-mail addresses and phones

# Words in a column name that mark personal data or a secret (the name is split into words
# at non-letters and at lower-to-upper case changes: ``customerEmail`` → customer, email).
PII_WORDS = {
    "email": "an e-mail address",
    "mail": "an e-mail address",
    "phone": "a phone number",
    "mobile": "a phone number",
    "telephone": "a phone number",
    "tel": "a phone number",
    "ssn": "a social security number",
    "name": "a person's name",
    "firstname": "a person's name",
    "lastname": "a person's name",
    "surname": "a person's name",
    "fullname": "a person's name",
    "address": "an address",
    "street": "an address",
    "password": "a password",
    "passwd": "a password",
    "token": "a secret",
    "secret": "a secret",
    "apikey": "a secret",
    "ip": "an IP address",
    "dob": "a date of birth",
    "birth": "a date of birth",
    "birthday": "a date of birth",
    "birthdate": "a date of birth",
}
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*\.[A-Za-z]{2,}")
# A phone number: 9 to 15 digits, written with +, spaces, dots, dashes or parentheses.
PHONE_CHARACTERS = re.compile(r"\+?[\d\s().-]+")
PHONE_SEPARATOR = re.compile(r"[\s().+-]")


def capture(
    model: Any,
    fit_input: Any,
    metrics: dict[str, Any],
    rows: int,
    reference_source: str = "",
    model_source: str = "",
    model_directory: str = "",
    max_model_bytes: int = 0,
    loaded: Any = None,
    drop: Any = (),
    keep: Any = (),
    serving: Any = None,
    labels: Any = None,
) -> dict[str, Any]:
    """Everything the generated project records of the notebook's run (module docstring)."""
    kind = input_kind(fit_input)
    dropped = personal_columns(fit_input, kind)
    head = first(fit_input, rows)
    predictions = [plain(value) for value in model.predict(head)]
    served = None
    if loaded is not None:
        served = optional(
            request_rows,
            model,
            fit_input,
            loaded,
            drop,
            rows,
            reference_source,
            keep,
            serving,
            labels,
        )
    unmatched = ""
    if loaded is not None and served is None:
        unmatched = optional(rows_at, fit_input, loaded, labels)[1] or "taking them failed"
    saved = save_model(model, model_source, model_directory, max_model_bytes)
    if served and serving and not served["state_error"] and "sha256" in saved:
        save_state(serving, model_source, model_directory, saved)
    return {
        "schema": optional(schema, fit_input, kind, dropped) or {"kind": kind},
        "records": records(head, kind, dropped),
        "predictions": predictions,
        "dropped": dropped,
        "reference": optional(reference, model, fit_input, kind, dropped, reference_source),
        "requests": served,
        "unmatched": unmatched,
        "metrics": numbers(metrics),
        "versions": versions(),
        "model": saved,
    }


def capture_forecast(
    model: Any,
    series: Any,
    metrics: dict[str, Any],
    horizon: int,
    max_steps: int,
    model_source: str = "",
    model_directory: str = "",
    max_model_bytes: int = 0,
) -> dict[str, Any]:
    """What the generated project records of a forecaster fitted on ``series`` (module
    docstring), in the keys ``capture`` returns, with ``index`` and ``series`` besides."""
    values = model.forecast(horizon)
    index = getattr(values, "index", None)
    if index is None:  # fitted on a plain array: positions after the training series
        start = int(getattr(model, "nobs", 0))
        labels = list(range(start, start + horizon))
    else:
        labels = [plain(label) for label in index]
    rows = len(series)
    # a pandas series or frame has labels; a list or an array has positions
    labels_of = series.index if hasattr(series, "iloc") else range(rows)
    described = {"rows": rows, "first": plain(labels_of[0]), "last": plain(labels_of[-1])}
    return {
        "records": [{"steps": horizon}],
        "predictions": [[plain(float(value)) for value in list(values)]],
        "index": [labels],
        "series": described,
        "metrics": numbers(metrics),
        "versions": versions(),
        "schema": {"kind": "forecast", "horizon": horizon, "max_steps": max(max_steps, horizon)},
        "dropped": {},
        "reference": None,
        "model": save_model(model, model_source, model_directory, max_model_bytes),
        "requests": None,
        "unmatched": "",
    }


def request_rows(
    model: Any,
    fit_input: Any,
    loaded: Any,
    drop: Any,
    rows: int,
    reference_source: str,
    keep: Any = (),
    serving: Any = None,
    labels: Any = None,
) -> dict[str, Any] | None:
    """The fit input's rows as requests carry them: ``loaded`` (a frame) without the ``drop``
    columns (a name or a list of names), or only its ``keep`` columns when given (those the
    feature steps read), at the fit input's index, or at ``labels`` when given (the training
    rows' labels taken right after the split, when steps after it make the fit input: its
    rows are theirs, in order); None when they cannot be told apart (no frames, a repeated
    index, rows missing, as many labels as rows). With ``serving`` (feature steps that learn
    from the training rows), the predictions are the model's through the service's feature
    steps and ``state_error`` says why those do not predict as the notebook did ("" when they
    do)."""
    index, _ = rows_at(fit_input, loaded, labels)
    if index is None:
        return None
    names = [drop] if isinstance(drop, str) else list(drop)
    if keep:
        inputs = loaded.loc[:, loaded.columns.isin(list(keep))].loc[index]
    else:
        inputs = loaded.drop(columns=names, errors="ignore").loc[index]
    dropped = personal_columns(inputs, "table")
    predictions = [plain(value) for value in model.predict(first(fit_input, rows))]
    served = {
        "schema": schema(inputs, "table", dropped),
        "records": records(inputs.head(rows), "table", dropped),
        "predictions": predictions,
        "dropped": dropped,
        "reference": optional(
            reference, model, fit_input, "table", dropped, reference_source, inputs
        ),
    }
    if serving:
        why, through = steps_error(model, fit_input, inputs, serving)
        served["state_error"] = why
        served["predictions"] = through[:rows] if not why else predictions
    return served


def rows_at(fit_input: Any, loaded: Any, labels: Any = None) -> tuple[Any, str]:
    """The labels of the fit input's rows in ``loaded`` (its index, or ``labels``), and ""; or
    None and why they cannot be told (``request_rows``)."""
    index = labels if labels is not None else getattr(fit_input, "index", None)
    if not hasattr(loaded, "columns"):
        return None, "the frame as loaded is not a table"
    if index is None:
        return None, (
            "the model's input has no row labels (an array), and the run took none of the "
            "training rows right after the split"
        )
    if len(index) != len(fit_input):
        return None, (
            f"{len(index)} training rows after the split, {len(fit_input)} rows in the model's "
            "input"
        )
    if not loaded.index.is_unique:
        return None, "the frame as loaded repeats row labels"
    if not index.isin(loaded.index).all():
        return None, "rows the model was fitted on are not in the frame as loaded"
    return index, ""


def steps_error(model: Any, fit_input: Any, inputs: Any, serving: Any) -> tuple[str, list[Any]]:
    """Check the service's feature steps (``serving["steps"]``, the source of
    ``make_features(df, feature_state)`` with the notebook's constants for its settings, run
    in the notebook's namespace) with what the notebook's own steps learnt
    (``serving["state"]``, taken in the kernel where ``serving["entries"]`` say): on
    the first ``CHECKED_ROWS`` rows as requests carry them (``inputs``), the model must predict
    what it predicts on the rows it was fitted on. Returns why not ("" when it does) and the
    predictions through the steps."""
    state = serving.get("state") or {}
    missing = [f"`{name}` {where}" for key, name, where in serving["entries"] if key not in state]
    if missing:
        return f"the run left no {', '.join(missing)}", []
    namespace = dict(serving["namespace"])
    source = "from __future__ import annotations\n" + serving["steps"]
    try:
        exec(compile(source, "make_features.py", "exec"), namespace)
        steps = namespace[serving["function"]]
        made = steps(inputs.head(CHECKED_ROWS).copy(), learnt(serving))
        through = [plain(value) for value in model.predict(made)]
    except Exception as error:
        return (
            f"the service's feature steps fail on the rows the model was fitted on "
            f"({type(error).__name__}: {error})"
        ), []
    notebook = [plain(value) for value in model.predict(first(fit_input, CHECKED_ROWS))]
    differ = [
        (row, got, want)
        for row, (got, want) in enumerate(zip(through, notebook, strict=False))
        if not same(got, want)
    ]
    if differ or len(through) != len(notebook):
        return (
            "the service's feature steps, with what the notebook's steps learnt, do not give "
            f"its model the rows it was fitted on (row, prediction, notebook's): {differ[:3]}"
        ), through
    return "", through


def first(rows: Any, count: int) -> Any:
    """The first ``count`` rows of a frame, an array or a list."""
    return rows.head(count) if hasattr(rows, "head") else rows[:count]


def learnt(serving: Any) -> dict[str, Any]:
    """``feature_state`` as the generated ``fit_features`` returns it, from the notebook."""
    return {key: serving["state"][key] for key, _, _ in serving["entries"]}


def same(one: Any, other: Any) -> bool:
    """Equal predictions: numbers within a relative 1e-9 (as the service's reload parity)."""
    if isinstance(one, list) and isinstance(other, list):
        return len(one) == len(other) and all(map(same, one, other))
    numbers = (int, float)
    if isinstance(one, numbers) and isinstance(other, numbers):
        return math.isclose(one, other, rel_tol=1e-9, abs_tol=1e-12)
    return bool(one == other)


def input_kind(fit_input: Any) -> str:
    """``table``, ``text`` or ``array``, as ``artifacts.infer_schema`` decides."""
    if hasattr(fit_input, "columns") and hasattr(fit_input, "to_dict"):
        return "table"
    values = fit_input.tolist() if hasattr(fit_input, "tolist") else list(fit_input)
    if values and all(isinstance(value, str) for value in values):
        return "text"
    return "array"


def plain(value: Any) -> Any:
    """numpy and pandas scalars and arrays as plain JSON values; NaN and infinities as None."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return [plain(item) for item in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    try:
        missing = value != value  # NaT, pd.NA
        if isinstance(missing, bool) and missing:
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def name_words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [word for word in re.split(r"[^A-Za-z]+", spaced.lower()) if word]


def looks_like_phone(text: str) -> bool:
    text = text.strip()
    if not PHONE_CHARACTERS.fullmatch(text) or not PHONE_SEPARATOR.search(text):
        return False
    digits = sum(character.isdigit() for character in text)
    if not 9 <= digits <= 15:
        return False
    if text.startswith("+"):  # international form: +33612345678
        return True
    try:  # a number such as "1234567.89" or "-123456789" is not a phone
        float(text)
    except ValueError:
        return not re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", text)  # nor an ISO date
    return False


def value_reason(values: list[Any]) -> str | None:
    """Why string ``values`` look like personal data, or None."""
    texts = [value for value in values if isinstance(value, str)]
    if any(EMAIL.search(text) for text in texts):
        return "values look like e-mail addresses"
    if any(looks_like_phone(text) for text in texts):
        return "values look like phone numbers"
    return None


def personal_columns(fit_input: Any, kind: str) -> dict[str, str]:
    """``{column: why}`` for the columns left out of what is recorded."""
    dropped: dict[str, str] = {}
    if kind == "text":
        texts = list(fit_input[:PII_SCAN_ROWS])
        reason = value_reason(texts)
        if reason:
            dropped["text"] = f"texts contain personal data ({reason})"
        return dropped
    if kind != "table":
        return dropped
    for position, column in enumerate(fit_input.columns):
        name = str(column)
        words = [word for word in name_words(name) if word in PII_WORDS]
        if words:
            dropped[name] = f"the name says it holds {PII_WORDS[words[0]]} ({words[0]!r})"
            continue
        values = fit_input.iloc[:, position].dropna().head(PII_SCAN_ROWS).tolist()
        reason = value_reason(values)
        if reason:
            dropped[name] = reason
    return dropped


def json_type(values: Any) -> str:
    dtype = values.dtype
    if str(dtype) == "category":
        return json_type(values.cat.categories.to_series())
    kind = getattr(dtype, "kind", "O")
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "integer"
    if kind == "f":
        return "number"
    if kind == "M":
        return "string"
    present = values.dropna().tolist()
    if all(isinstance(value, str) for value in present):
        return "string"
    return "unknown"


def column_schema(name: str, values: Any, personal: bool) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": name,
        "dtype": str(values.dtype),
        "type": json_type(values),
        "nullable": bool(values.isna().any()),
    }
    if personal:
        return described
    present = values.dropna()
    if described["type"] in ("integer", "number") and str(values.dtype) != "category":
        finite = [float(value) for value in present.tolist() if math.isfinite(float(value))]
        if finite:
            described.update(minimum=min(finite), maximum=max(finite))
    elif described["type"] in ("string", "boolean") and getattr(values.dtype, "kind", "") != "M":
        labels = sorted({str(value) for value in present.tolist()})
        if len(labels) <= MAX_CATEGORIES:
            described["categories"] = labels
    return described


def schema(fit_input: Any, kind: str, dropped: dict[str, str]) -> dict[str, Any]:
    if kind == "table":
        return {
            "kind": "table",
            "columns": [
                column_schema(str(name), fit_input.iloc[:, position], str(name) in dropped)
                for position, name in enumerate(fit_input.columns)
            ],
        }
    if kind == "text":
        return {"kind": "text"}
    import numpy

    array = numpy.asarray(fit_input)
    return {
        "kind": "array",
        "n_features": int(array.shape[1]) if array.ndim == 2 else 0,
        "dtype": array.dtype.name,
    }


def records(head: Any, kind: str, dropped: dict[str, str]) -> list[dict[str, Any]]:
    if kind == "table":
        kept = [column for column in head.columns if str(column) not in dropped]
        return [
            {str(key): plain(value) for key, value in row.items()}
            for row in head[kept].to_dict(orient="records")
        ]
    if kind == "text":
        return [] if dropped else [{"text": text} for text in list(head)]
    return [{"features": [plain(value) for value in row]} for row in list(head)]


def optional(function: Any, *arguments: Any) -> Any:
    """``function(*arguments)``, or None where it fails: what is optional never stops the rest."""
    try:
        return function(*arguments)
    except Exception:
        return None


def reference(
    model: Any,
    fit_input: Any,
    kind: str,
    dropped: dict[str, str],
    source: str,
    described: Any = None,
) -> dict[str, Any] | None:
    """``reference.py``'s statistics, as ``artifacts.reference_statistics`` computes them: of
    ``described`` (the fit input's rows as requests carry them; default: the fit input) and of
    the model's predictions on the fit input."""
    if not source:
        return None
    try:
        import numpy
    except ImportError:
        return None
    ref: dict[str, Any] = {}
    exec(compile(source, "reference.py", "exec"), ref)
    features = fit_input
    described = fit_input if described is None else described
    count = len(features)
    if count > ref["MAX_ROWS"]:
        chosen = numpy.sort(
            numpy.random.default_rng(0).choice(count, ref["MAX_ROWS"], replace=False)
        )
        features, described = take(features, chosen), take(described, chosen)
    predictions = [plain(value) for value in model.predict(features)]
    task = ref["prediction_task"](model, predictions)
    statistics: dict[str, Any] = ref["reference_statistics"](described, kind, predictions, task)
    for name in dropped:  # a text model's features are text lengths: kept
        statistics["features"].pop(name, None)
    return statistics


def take(rows: Any, chosen: Any) -> Any:
    """The rows at the positions ``chosen`` (a frame, an array or a list)."""
    if hasattr(rows, "iloc"):
        return rows.iloc[chosen]
    if hasattr(rows, "shape"):
        return rows[chosen]
    return [rows[row] for row in chosen]


def save_model(model: Any, source: str, directory: str, max_bytes: int) -> dict[str, Any]:
    """``model`` saved into ``directory`` by ``modelfile.py`` (``source``): its manifest with
    ``bytes`` and ``seconds``, or ``{"error": why}`` with nothing left in ``directory``."""
    if not directory:
        return {}
    if not source:
        return {"error": "the template has no modelfile.py to save it with"}
    started = time.monotonic()
    folder = Path(directory)
    try:
        manifest: dict[str, Any] = modelfile_namespace(source)["save_model"](model, folder)
    except Exception as error:
        remove_files(folder)
        return {"error": f"it could not be saved ({type(error).__name__}: {error})"}
    path = folder / str(manifest["file"])
    size = path.stat().st_size
    why = ""
    if manifest["format"] == "joblib" and b"__main__" in path.read_bytes():
        why = (
            "it uses functions or classes defined in the notebook itself, which the project "
            "has in its own modules: `make train` saves the model with those"
        )
    elif max_bytes and size > max_bytes:
        why = (
            f"its file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB promote writes "
            "into a project (PROMOTE_MAX_MODEL_MB): `make train` saves it under artifacts/, "
            "which git ignores"
        )
    if why:
        remove_files(folder)
        return {"error": why, "bytes": size, "format": manifest["format"]}
    return {**manifest, "bytes": size, "seconds": round(time.monotonic() - started, 3)}


def save_state(serving: Any, source: str, directory: str, saved: dict[str, Any]) -> None:
    """What the notebook's feature steps learnt (``learnt``), saved beside the model
    ``save_model`` saved into ``directory`` by ``modelfile.py`` (``source``), as ``make train``
    saves it: ``saved`` gets its record (``feature_state``), or ``state_error`` with why,
    and then neither the file nor ``model.json`` holds it."""
    folder = Path(directory)
    modelfile = modelfile_namespace(source)
    try:
        entry: dict[str, Any] = modelfile["save_state"](learnt(serving), folder)
    except Exception as error:
        why = f"it could not be saved ({type(error).__name__}: {error})"
    else:
        path = folder / str(entry["file"])
        if entry["format"] != "joblib" or b"__main__" not in path.read_bytes():
            saved["feature_state"] = entry
            return
        why = "it uses functions or classes defined in the notebook itself"
    for name in modelfile["STATE_FILES"]:
        (folder / name).unlink(missing_ok=True)
    manifest = folder / modelfile["MANIFEST_FILE"]
    recorded = modelfile["_read_json"](manifest)
    if recorded.pop("feature_state", None) is not None:
        modelfile["_write_json"](manifest, recorded)
    saved["state_error"] = why


def modelfile_namespace(source: str) -> dict[str, Any]:
    """The generated project's ``modelfile.py`` (``source``), run in a namespace of its own."""
    modelfile: dict[str, Any] = {"__name__": "promote_modelfile"}
    exec(compile(source, "modelfile.py", "exec"), modelfile)
    return modelfile


def remove_files(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            path.unlink()


def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    found = {}
    for name, value in metrics.items():
        try:
            found[name] = float(value)
        except (TypeError, ValueError):
            continue
    return found


def versions() -> dict[str, str]:
    found = {}
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        version = getattr(module, "__version__", None)
        if name and "." not in name and isinstance(version, str) and not name.startswith("_"):
            found[name] = version
    return found
