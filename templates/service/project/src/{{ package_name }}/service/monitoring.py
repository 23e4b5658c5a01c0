"""Input and prediction drift, and live accuracy from ground-truth labels sent later.

**Drift.** Each predicted record is appended, with its prediction, to a sliding window of
the last ``DRIFT_WINDOW_SIZE`` records: on the request path that is one append under a
lock, nothing else. When Prometheus scrapes ``/metrics`` and the last computation is older
than ``DRIFT_INTERVAL_SECONDS`` (and new records arrived), the window is compared with the
reference statistics (``reference.py``), feature by feature, and the gauges are set:

* ``model_input_drift_psi{feature}``: Population Stability Index of the feature;
* ``model_input_drift_ks{feature}``, ``model_input_drift_ks_pvalue{feature}``: the
  Kolmogorov-Smirnov statistic and p-value of a numeric feature;
* ``model_input_missing_share{feature}``: share of missing (null) values in the window;
* ``model_input_out_of_range_share{feature}``: share of numbers outside the training
  range, or of categories never seen in training;
* ``model_prediction_drift_psi``: PSI of the predictions (classes, or value bins);
* ``model_prediction_drift_ks``: KS statistic of a regressor's predictions;
* ``model_drift_window_records``: records in the window;
* ``model_predictions_by_class_total{class}`` (a classifier) or ``model_prediction_value``
  (a regressor's histogram, on the deciles of the training predictions): the predictions,
  counted as they are made;
* ``model_drift_reference_records{source}``: rows the reference describes; ``source`` is
  ``training`` (``artifacts/reference.json``, written by ``make train``) or ``live``.

With several worker processes (``WORKERS`` > 1), each worker keeps its own window of the
records it served and computes its own gauges, in a thread of its own every
``DRIFT_INTERVAL_SECONDS`` (a scrape reaches only one worker); ``/metrics`` reports, per
feature, the largest PSI and shares among the workers (``multiprocess_mode="livemax"``),
and the sum of their window records. Each worker's traffic is a random share of the whole,
so each window is a sample of the same live data, only spanning more time; the largest of
W windows reads a little higher than one window on undrifted data (sampling noise, about
``(BINS - 1) / DRIFT_WINDOW_SIZE`` of PSI per window), far below the 0.2 threshold. This is
also how several pods are read (``max by (feature)``), and it keeps the request path to an
in-memory append: no window shared between processes.

No gauge is set before the window holds ``DRIFT_MIN_RECORDS`` records (PSI on a handful of
records is noise). Without ``reference.json`` (a model trained before it existed), the
first ``DRIFT_REFERENCE_SIZE`` live records become the reference, and the window starts
after them: drift is then measured against the service's early traffic, not the training
data.

**Feedback.** The predictions of the last ``FEEDBACK_MAX_PENDING`` requests are kept by
request id (the ``X-Request-ID`` of the answer). ``POST /feedback`` with ``{"request_id",
"label"}`` (and ``"index"`` for the n-th record of a batch) joins a true label to its
prediction, and the gauges cover the last ``FEEDBACK_WINDOW`` labelled predictions:

* ``model_live_accuracy``: share of correct predictions (a classifier);
* ``model_live_mae``: mean absolute error (a regressor);
* ``model_feedback_labels``: labelled predictions the gauge above covers;
* ``model_feedback_total{result}``: labels received, ``joined`` or ``unknown`` (no
  prediction kept under that request id) or ``duplicate``.

With several workers the predictions and labels are kept in a SQLite file beside the
metric files (``SharedFeedbackTracker``), so that a label finds its prediction whichever
worker made it.
"""

import json
import logging
import math
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import reference as ref
from ..artifacts import LoadedModel
from ..inference import build_input
from .config import ServiceSettings
from .metrics import Metrics

logger = logging.getLogger(__name__)

Record = Mapping[str, Any]
MIN_THREAD_PERIOD = 1.0  # seconds between two computations by the worker's thread, at least


class DriftMonitor:
    """The sliding window of live records, and the drift gauges computed from it."""

    def __init__(self, loaded: LoadedModel, settings: ServiceSettings, metrics: Metrics) -> None:
        self.loaded = loaded
        self.settings = settings
        self.metrics = metrics
        self.reference: dict[str, Any] | None = loaded.reference
        self._lock = threading.Lock()  # guards the window and the live reference records
        self._compute_lock = threading.Lock()  # one computation at a time
        self._window: deque[tuple[Record, Any]] = deque(maxlen=settings.drift_window_size)
        self._reference_records: list[tuple[Record, Any]] = []
        self._observed = 0  # records observed since start
        self._computed_observed = 0  # ... at the last computation
        self._computed_at = -math.inf
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._count_predictions = self._prediction_counter()
        if self.reference is not None:
            metrics.drift_reference_records.labels("training").set(self.reference["rows"])
        else:
            logger.info(
                "no reference statistics (artifacts/reference.json): drift is measured "
                "against the first %d live records",
                settings.drift_reference_size,
            )

    @property
    def task(self) -> ref.Task | None:
        """``classification`` or ``regression`` once there is a reference."""
        return None if self.reference is None else self.reference["task"]

    def _prediction_counter(self) -> Callable[[Sequence[Any]], None]:
        """How predictions are counted: by class, or into a histogram of values."""
        reference = self.reference
        if reference is not None and reference["task"] == "regression":
            edges = reference["predictions"]["edges"]
            if not edges:
                return lambda predictions: None
            histogram = self.metrics.value_histogram(edges)

            def observe_values(predictions: Sequence[Any]) -> None:
                for value in predictions:
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        histogram.observe(value)

            return observe_values
        if reference is not None:
            classes = set(reference["predictions"]["shares"])
        else:
            known = getattr(self.loaded.model, "classes_", None)
            sample = self.loaded.sample.get("predictions", [])
            classes = {str(label) for label in (sample if known is None else known)}
        counter = self.metrics.prediction_classes
        for label in classes:
            counter.labels(label)  # every training class shows, with 0 until predicted

        def count_classes(predictions: Sequence[Any]) -> None:
            for prediction in predictions:
                label = str(prediction)
                counter.labels(label if label in classes else ref.OTHER).inc()

        return count_classes

    def observe(self, records: Sequence[Record], predictions: Sequence[Any]) -> None:
        """Add predicted records to the window (the request path: keep it cheap)."""
        self._count_predictions(predictions)
        pairs = list(zip(records, predictions, strict=True))
        with self._lock:
            if self.reference is None:
                missing = self.settings.drift_reference_size - len(self._reference_records)
                if missing > 0:
                    self._reference_records.extend(pairs[:missing])
                    pairs = pairs[missing:]
            self._window.extend(pairs)
            self._observed += len(pairs)

    def start(self) -> None:
        """Recompute the gauges in a thread of this process, every ``DRIFT_INTERVAL_SECONDS``.

        For a worker among several, which sees only some of the scrapes.
        """
        self._thread = threading.Thread(target=self._run, name="drift-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread started by ``start``, if any."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        period = max(self.settings.drift_interval_seconds, MIN_THREAD_PERIOD)
        while not self._stopped.wait(period):
            self.update()

    def update(self, now: float | None = None) -> None:
        """Recompute the gauges if they are due (called when /metrics is scraped)."""
        now = time.monotonic() if now is None else now
        if now - self._computed_at < self.settings.drift_interval_seconds:
            return
        if not self._compute_lock.acquire(blocking=False):
            return  # another scrape is computing them
        try:
            self._computed_at = now
            self._update()
        except Exception:
            logger.exception("failed to compute the drift metrics")
        finally:
            self._compute_lock.release()

    def _update(self) -> None:
        with self._lock:
            observed = self._observed
            window = list(self._window)
            live_reference = (
                list(self._reference_records)
                if self.reference is None
                and len(self._reference_records) >= self.settings.drift_reference_size
                else None
            )
        if live_reference is not None:
            self.reference = self._describe_live(live_reference)
            self.metrics.drift_reference_records.labels("live").set(len(live_reference))
            logger.info("drift reference: the first %d live records", len(live_reference))
        self.metrics.drift_window_records.set(len(window))
        if (
            self.reference is None
            or observed == self._computed_observed
            or len(window) < self.settings.drift_min_records
        ):
            return
        self._computed_observed = observed
        schema = self.loaded.schema
        model_input = build_input(schema, [record for record, _ in window])
        features = self.reference["features"]
        for name, (_, values) in ref.feature_columns(model_input, schema.kind).items():
            if name in features:
                self._set_feature(name, ref.compare(features[name], values))
        _, predictions = ref.prediction_values(
            [prediction for _, prediction in window], self.reference["task"]
        )
        prediction_stats = ref.compare(self.reference["predictions"], predictions)
        for gauge, key in (
            (self.metrics.prediction_drift_psi, "psi"),
            (self.metrics.prediction_drift_ks, "ks"),
        ):
            if not math.isnan(prediction_stats.get(key, math.nan)):
                gauge.set(prediction_stats[key])

    def _set_feature(self, name: str, stats: Mapping[str, float]) -> None:
        for gauge, key in (
            (self.metrics.input_drift_psi, "psi"),
            (self.metrics.input_drift_ks, "ks"),
            (self.metrics.input_drift_ks_pvalue, "ks_pvalue"),
            (self.metrics.input_missing_share, "missing_share"),
            (self.metrics.input_out_of_range_share, "out_of_range_share"),
        ):
            if not math.isnan(stats.get(key, math.nan)):
                gauge.labels(name).set(stats[key])

    def _describe_live(self, pairs: Sequence[tuple[Record, Any]]) -> dict[str, Any]:
        model_input = build_input(self.loaded.schema, [record for record, _ in pairs])
        predictions = [prediction for _, prediction in pairs]
        task = ref.prediction_task(self.loaded.model, predictions)
        return ref.reference_statistics(model_input, self.loaded.schema.kind, predictions, task)


class UnknownRequestError(LookupError):
    """No prediction is kept under this request id (never made, or forgotten since)."""


class AlreadyLabelledError(ValueError):
    """This prediction has a label already."""


@dataclass
class _Pending:
    predictions: list[Any]
    labelled: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Outcome:
    """A label joined to its prediction."""

    prediction: Any
    correct: bool | None = None  # classification
    absolute_error: float | None = None  # regression


class FeedbackTracker:
    """Recent predictions by request id, joined to the labels sent to ``POST /feedback``."""

    def __init__(self, settings: ServiceSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._outcomes: deque[Outcome] = deque(maxlen=settings.feedback_window)

    def remember(self, request_id: str | None, predictions: Sequence[Any]) -> None:
        """Keep a request's predictions for its labels (the request path: keep it cheap)."""
        if request_id is None:
            return
        with self._lock:
            self._pending[request_id] = _Pending(list(predictions))
            if len(self._pending) > self.settings.feedback_max_pending:
                self._pending.popitem(last=False)

    def label(self, request_id: str, index: int, label: Any, task: ref.Task) -> Outcome:
        """Join ``label`` to the ``index``-th prediction of a request and update the gauges.

        Raises UnknownRequestError, AlreadyLabelledError, or ValueError for a regressor's
        label that is not a number.
        """
        with self._lock:
            pending = self._pending.get(request_id)
            if pending is None or not 0 <= index < len(pending.predictions):
                self.metrics.feedback.labels("unknown").inc()
                raise UnknownRequestError(request_id)
            if index in pending.labelled:
                self.metrics.feedback.labels("duplicate").inc()
                raise AlreadyLabelledError(request_id)
            prediction = pending.predictions[index]
            outcome = _outcome(prediction, label, task)
            pending.labelled.add(index)
            self._outcomes.append(outcome)
            outcomes = list(self._outcomes)
        self._set_gauges(outcomes, task)
        return outcome

    def _set_gauges(self, outcomes: Sequence["Outcome"], task: ref.Task) -> None:
        self.metrics.feedback.labels("joined").inc()
        self.metrics.feedback_labels.set(len(outcomes))
        if task == "regression":
            errors = [o.absolute_error for o in outcomes if o.absolute_error is not None]
            self.metrics.live_mae.set(sum(errors) / len(errors))
        else:
            self.metrics.live_accuracy.set(sum(bool(o.correct) for o in outcomes) / len(outcomes))


FEEDBACK_DATABASE = "feedback.sqlite3"  # not *.db: prometheus-client reads those as its own
PRUNE_EVERY = 1000  # remembered requests between two prunings of the oldest


class SharedFeedbackTracker(FeedbackTracker):
    """A FeedbackTracker for several worker processes: the predictions and the labelled
    outcomes live in a SQLite file beside the metric files, so a label reaches its
    prediction whichever worker made it and whichever receives the label.

    On the request path that is one insert (WAL journal, no fsync per commit). The live
    accuracy / MAE are recomputed by the worker that joins a label, over the last
    ``FEEDBACK_WINDOW`` outcomes of all workers (``multiprocess_mode="livemostrecent"``).
    """

    def __init__(self, settings: ServiceSettings, metrics: Metrics, path: Path) -> None:
        super().__init__(settings, metrics)
        self._remembered = 0
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS pending (request_id TEXT PRIMARY KEY, predictions TEXT)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS labelled (request_id TEXT, position INTEGER, "
                "PRIMARY KEY (request_id, position))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outcomes (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "correct INTEGER, absolute_error REAL)"
            )

    def remember(self, request_id: str | None, predictions: Sequence[Any]) -> None:
        if request_id is None:
            return
        encoded = json.dumps(list(predictions), default=str)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO pending VALUES (?, ?)", (request_id, encoded))
            self._remembered += 1
            if self._remembered % PRUNE_EVERY == 0:
                self._db.execute(
                    "DELETE FROM pending WHERE rowid <= (SELECT MAX(rowid) FROM pending) - ?",
                    (self.settings.feedback_max_pending,),
                )

    def label(self, request_id: str, index: int, label: Any, task: ref.Task) -> Outcome:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                outcome, outcomes = self._label(request_id, index, label, task)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        self._set_gauges(outcomes, task)
        return outcome

    def _label(
        self, request_id: str, index: int, label: Any, task: ref.Task
    ) -> tuple[Outcome, list[Outcome]]:
        row = self._db.execute(
            "SELECT predictions FROM pending WHERE request_id = ?", (request_id,)
        ).fetchone()
        predictions = json.loads(row[0]) if row is not None else []
        if not 0 <= index < len(predictions):
            self.metrics.feedback.labels("unknown").inc()
            raise UnknownRequestError(request_id)
        outcome = _outcome(predictions[index], label, task)
        try:
            self._db.execute("INSERT INTO labelled VALUES (?, ?)", (request_id, index))
        except sqlite3.IntegrityError as error:
            self.metrics.feedback.labels("duplicate").inc()
            raise AlreadyLabelledError(request_id) from error
        correct = None if outcome.correct is None else int(outcome.correct)
        self._db.execute(
            "INSERT INTO outcomes (correct, absolute_error) VALUES (?, ?)",
            (correct, outcome.absolute_error),
        )
        window = self.settings.feedback_window
        self._db.execute(
            "DELETE FROM outcomes WHERE id <= (SELECT MAX(id) FROM outcomes) - ?", (window,)
        )
        outcomes = [
            Outcome(None, None if ok is None else bool(ok), error)
            for ok, error in self._db.execute("SELECT correct, absolute_error FROM outcomes")
        ]
        return outcome, outcomes


def feedback_tracker(settings: ServiceSettings, metrics: Metrics) -> FeedbackTracker:
    """The tracker for this process: shared through SQLite when there are several workers."""
    if metrics.multiprocess_dir is None:
        return FeedbackTracker(settings, metrics)
    return SharedFeedbackTracker(
        settings, metrics, Path(metrics.multiprocess_dir) / FEEDBACK_DATABASE
    )


def _outcome(prediction: Any, label: Any, task: ref.Task) -> Outcome:
    if task == "regression":
        number = isinstance(label, int | float) and not isinstance(label, bool)
        if not number or not math.isfinite(label) or prediction is None:
            raise ValueError("the label of a regression model must be a finite number")
        return Outcome(prediction, absolute_error=abs(float(label) - float(prediction)))
    return Outcome(prediction, correct=label == prediction or str(label) == str(prediction))
