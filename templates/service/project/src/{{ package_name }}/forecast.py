"""A forecast model: a statsmodels forecaster (``SARIMAX``, ``ARIMA``) fitted on a series.

Its requests are not records of input data but a horizon: ``{"steps": 12}`` asks for the
12 values after the training series (at least 1, at most the schema's ``max_steps``). The
answer is the forecast values with their index labels (timestamps when the training series
had dates) and a 95 % interval around each: ``{"prediction": [...], "index": [...],
"interval": {"level": 0.95, "lower": [...], "upper": [...]}}``.

``make train`` saves such a model (``artifacts.save`` calls ``save`` here): the model file
(``modelfile.py``: specification, parameters and series as JSON, rebuilt without refitting
at load), a ``forecast`` schema with the horizon the notebook forecast (``horizon``), a
sample of one request for that horizon with the model's forecast (which the parity tests
and the service's tests replay), and the metrics. There is no ``reference.json``: a request
carries no input data whose drift could be measured; the service counts the requests and
their horizons, and keeps a histogram of the values it forecast instead.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

STEPS_FIELD = "steps"
# The horizon ``make train`` records when the pipeline gives none (``TrainingResult.horizon``).
DEFAULT_HORIZON = 12
# The longest forecast a request may ask for: a bound on the work one request makes.
MAX_STEPS = 1000
# The probability of the interval given with each forecast (lower and upper bound per step).
INTERVAL = 0.95


def check_request(record: Mapping[str, Any], max_steps: int) -> list[tuple[str, str]]:
    """Why a forecast request is not acceptable, as (field, message); [] when it is."""
    errors = [(str(name), "unexpected field") for name in record if name != STEPS_FIELD]
    if STEPS_FIELD not in record:
        return [(STEPS_FIELD, "field required"), *errors]
    steps = record[STEPS_FIELD]
    if isinstance(steps, bool) or not isinstance(steps, int):
        return [(STEPS_FIELD, f"expected integer, got {type(steps).__name__}"), *errors]
    if not 1 <= steps <= max_steps:
        return [(STEPS_FIELD, f"must be between 1 and {max_steps}, not {steps}"), *errors]
    return errors


def request_json_schema(max_steps: int) -> dict[str, Any]:
    """The JSON Schema of a forecast request (documentation: ``check_request`` is the check)."""
    return {
        "type": "object",
        "properties": {STEPS_FIELD: {"type": "integer", "minimum": 1, "maximum": max_steps}},
        "required": [STEPS_FIELD],
        "additionalProperties": False,
    }


def forecast(model: Any, steps: int) -> dict[str, Any]:
    """The ``steps`` values after the training series: ``{"prediction": [...], "index": [...],
    "interval": {"lower": [...], "upper": [...]}}`` (the index labels: ISO timestamps for
    dates, positions after the series otherwise; the interval: ``INTERVAL`` of the model's
    forecast distribution at each step, as statsmodels' ``conf_int`` gives it)."""
    from .artifacts import to_json_safe

    values = model.forecast(steps)
    index = getattr(values, "index", None)
    if index is None:  # fitted on a plain array: positions after the training series
        start = int(getattr(model, "nobs", 0))
        labels: list[Any] = list(range(start, start + steps))
    else:
        labels = to_json_safe(list(index))
    bounds = np.asarray(model.get_forecast(steps).conf_int(alpha=1 - INTERVAL), dtype=float)
    return {
        "prediction": to_json_safe(list(np.asarray(values, dtype=float))),
        "index": labels,
        "interval": {
            "level": INTERVAL,
            "lower": to_json_safe(list(bounds[:, 0])),
            "upper": to_json_safe(list(bounds[:, 1])),
        },
    }


def save(result: Any, directory: Path) -> None:
    """Write a trained forecaster's artifacts into ``directory`` (module docstring)."""
    from .artifacts import METRICS_FILE, SAMPLE_FILE, Schema, save_model, to_json_safe, write_json

    horizon = int(getattr(result, "horizon", 0) or DEFAULT_HORIZON)
    schema = Schema(kind="forecast", horizon=horizon, max_steps=max(MAX_STEPS, horizon))
    answer = forecast(result.model, horizon)
    sample = {
        "records": [{STEPS_FIELD: horizon}],
        "predictions": [answer["prediction"]],
        "index": [answer["index"]],
    }
    metrics = {str(name): to_json_safe(float(value)) for name, value in result.metrics.items()}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "reference.json").unlink(missing_ok=True)
    save_model(result.model, directory)
    write_json(directory / "schema.json", schema.to_json())
    write_json(directory / SAMPLE_FILE, sample)
    write_json(directory / METRICS_FILE, metrics)


def predict(model: Any, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One forecast per (valid) request."""
    return [forecast(model, int(record[STEPS_FIELD])) for record in records]
