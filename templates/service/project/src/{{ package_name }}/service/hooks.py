"""Extension points run by the service after each prediction and each label: yours to edit.

``on_prediction(record, prediction, context)`` is called once per predicted record (each
record of a batch), after the model answered and before the response is sent;
``on_feedback(...)`` once per label joined by ``POST /feedback``. Use them to feed a
retraining set, a data lake or a queue.

The defaults append JSON lines to the file ``PREDICTION_LOG`` (nothing when it is unset):

* ``{"type": "prediction", "time", "request_id", "endpoint", "index", "model_sha256",
  "model_version", "record", "prediction"}`` for a share ``PREDICTION_LOG_SAMPLE_RATE`` of
  the predictions;
* ``{"type": "feedback", "time", "request_id", "index", "model_sha256", "model_version",
  "label", "prediction"}`` for every label.

Join the two on ``(request_id, index)`` to build a labelled data set from live traffic.

Both run on the request path, in the server's worker thread: keep them quick (hand slow
work to a queue or a thread of your own). An exception they raise is logged and does not
fail the request.
"""

import json
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import ServiceSettings

_write_lock = threading.Lock()


@dataclass(frozen=True)
class PredictionContext:
    """Where a prediction comes from."""

    request_id: str | None  # the X-Request-ID of the answer
    endpoint: str  # /predict or /predict/batch
    index: int  # position of the record in its batch (0 for /predict)
    model_sha256: str  # the model that answered
    settings: ServiceSettings
    model_version: str = ""  # its version in the registry (registry.py)


def on_prediction(
    record: dict[str, Any], prediction: dict[str, Any], context: PredictionContext
) -> None:
    """Called after each predicted record. ``prediction`` is the record's answer
    (``{"prediction": ..., "probabilities": ...}``)."""
    settings = context.settings
    if settings.prediction_log is None or random.random() >= settings.prediction_log_sample_rate:
        return
    append_json_line(
        settings.prediction_log,
        {
            "type": "prediction",
            "time": now(),
            "request_id": context.request_id,
            "endpoint": context.endpoint,
            "index": context.index,
            "model_sha256": context.model_sha256,
            "model_version": context.model_version,
            "record": record,
            "prediction": prediction,
        },
    )


def on_feedback(label: Any, prediction: Any, context: PredictionContext) -> None:
    """Called for each label joined by ``POST /feedback`` to the prediction it is about."""
    settings = context.settings
    if settings.prediction_log is None:
        return
    append_json_line(
        settings.prediction_log,
        {
            "type": "feedback",
            "time": now(),
            "request_id": context.request_id,
            "index": context.index,
            "model_sha256": context.model_sha256,
            "model_version": context.model_version,
            "label": label,
            "prediction": prediction,
        },
    )


def append_json_line(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON object as a line to ``path`` (created with its directory)."""
    line = json.dumps(entry, default=str) + "\n"
    with _write_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as file:
            file.write(line)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
