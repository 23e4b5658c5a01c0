"""Prometheus metrics of one application, in a registry of its own.

* ``http_requests_total{endpoint, method, status}``: requests answered;
* ``http_request_duration_seconds{endpoint, method}``: latency histogram;
* ``http_requests_in_progress{endpoint}``: requests being served now;
* ``predictions_total{endpoint}``: records predicted (a batch counts each record);
* ``prediction_errors_total{endpoint, reason}``: requests refused as ``invalid`` input
  (422) or ``rejected`` by the model;
* ``model_predictions_by_class_total{class}``: records predicted, by class (a classifier;
  classes not seen in training count as ``__other__``), or
  ``model_prediction_value``: histogram of a regressor's predictions, on the deciles of its
  predictions on the training data (each bucket gets a tenth while nothing drifts);
* ``model_loaded``: 1 once the model is loaded and warmed, else 0;
* ``model_info{version, model_sha256}``: always 1, labels the model being served;
* ``model_input_drift_psi{feature}``, ``model_input_drift_ks{feature}``,
  ``model_input_drift_ks_pvalue{feature}``, ``model_input_missing_share{feature}``,
  ``model_input_out_of_range_share{feature}``, ``model_prediction_drift_psi``,
  ``model_prediction_drift_ks``,
  ``model_drift_window_records``, ``model_drift_reference_records{source}``: drift of the
  live input and predictions from the training data (see ``monitoring.py``);
* ``model_live_accuracy`` or ``model_live_mae``, ``model_feedback_labels``,
  ``model_feedback_total{result}``: quality on the labels sent to ``POST /feedback``;
* ``model_version_info{version, role}``, ``model_version_predictions_total{version, role}``,
  ``model_version_prediction_duration_seconds{version, role}``,
  ``model_version_failures_total{version, reason}``, ``model_circuit_open{version}``,
  ``model_fallbacks_total{fallback}``, ``model_shadow_comparisons_total{version, result}``,
  ``model_shadow_abs_difference{version}``: each model version loaded (serving, canary,
  shadow, previous) and what it answered (see ``lifecycle.py``);
* ``model_reloads_total{result}``: switches to a newly promoted or rolled-back version
  without a restart (``MODEL_RELOAD_SECONDS``), loaded or failed;
* ``model_input_violations_total{feature, check}``: request values out of the training
  range or of unknown category (``validation.py``);
* ``process_*`` / ``python_*``: the process's CPU, memory, file descriptors and GC.

``endpoint`` is the route's path (``/predict``), or ``unmatched`` for unknown paths, so
the number of series stays bounded.

**Several worker processes** (``WORKERS`` > 1, or ``uvicorn --workers``, gunicorn):
with ``PROMETHEUS_MULTIPROC_DIR`` set (the serve command sets it), prometheus-client
keeps each process's values in files in that directory and ``/metrics``, whichever worker
answers it, reports all of them: counters and histograms are summed over the workers;
each gauge is combined as its ``multiprocess_mode`` below says (``live*`` modes forget a
worker once ``mark_process_dead`` ran for it, which each worker does when it stops).
``process_*`` and ``python_*`` are left out in that mode: they would describe only the
worker that happened to answer.
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    multiprocess,
    platform_collector,
    process_collector,
)

UNMATCHED = "unmatched"
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_directory() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when set: the service runs several worker processes."""
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess_dir = multiprocess_directory()
        if self.multiprocess_dir is None:
            process_collector.ProcessCollector(registry=self.registry)
            platform_collector.PlatformCollector(registry=self.registry)
            gc_collector.GCCollector(registry=self.registry)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by endpoint, method and status code",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, in seconds",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being served",
            ["endpoint"],
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.predictions = Counter(
            "predictions",
            "Records predicted, by endpoint",
            ["endpoint"],
            registry=self.registry,
        )
        self.prediction_errors = Counter(
            "prediction_errors",
            "Prediction requests refused: invalid input, or rejected by the model",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.prediction_classes = Counter(
            "model_predictions_by_class",
            "Records predicted, by class (a classifier)",
            ["class"],
            registry=self.registry,
        )
        self.prediction_values: Histogram | None = None  # a regressor's: value_histogram()
        # a forecast model's: observe_forecasts()
        self.forecast_steps: Histogram | None = None
        self.forecast_values: Histogram | None = None
        self.model_loaded = Gauge(
            "model_loaded",
            "1 when the model is loaded and warmed",
            multiprocess_mode="livemin",  # 0 while any worker has no model
            registry=self.registry,
        )
        self.model_info = Gauge(
            "model_info",
            "The model being served (always 1)",
            ["version", "model_sha256"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )

        # Drift and feedback (monitoring.py).
        self.input_drift_psi = Gauge(
            "model_input_drift_psi",
            "Population Stability Index of a feature's live window against the training data",
            ["feature"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.input_drift_ks = Gauge(
            "model_input_drift_ks",
            "Kolmogorov-Smirnov statistic of a numeric feature's live window against the "
            "training data (0 to 1)",
            ["feature"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.input_drift_ks_pvalue = Gauge(
            "model_input_drift_ks_pvalue",
            "p-value of the Kolmogorov-Smirnov test of a numeric feature's live window against "
            "the training data",
            ["feature"],
            multiprocess_mode="livemin",
            registry=self.registry,
        )
        self.input_missing_share = Gauge(
            "model_input_missing_share",
            "Share of missing values of a feature in the live window",
            ["feature"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.input_out_of_range_share = Gauge(
            "model_input_out_of_range_share",
            "Share of a feature's live values outside the training range (numbers) or never "
            "seen in training (categories)",
            ["feature"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.prediction_drift_psi = Gauge(
            "model_prediction_drift_psi",
            "Population Stability Index of the live predictions against those on the training data",
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.prediction_drift_ks = Gauge(
            "model_prediction_drift_ks",
            "Kolmogorov-Smirnov statistic of a regressor's live predictions against those on "
            "the training data",
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.drift_window_records = Gauge(
            "model_drift_window_records",
            "Live records in the drift window",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.drift_reference_records = Gauge(
            "model_drift_reference_records",
            "Rows described by the drift reference: training (reference.json) or live",
            ["source"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.live_accuracy = Gauge(
            "model_live_accuracy",
            "Share of correct predictions among the last labelled ones (POST /feedback)",
            multiprocess_mode="livemostrecent",
            registry=self.registry,
        )
        self.live_mae = Gauge(
            "model_live_mae",
            "Mean absolute error of the last labelled predictions (POST /feedback)",
            multiprocess_mode="livemostrecent",
            registry=self.registry,
        )
        self.feedback_labels = Gauge(
            "model_feedback_labels",
            "Labelled predictions covered by model_live_accuracy / model_live_mae",
            multiprocess_mode="livemostrecent",
            registry=self.registry,
        )
        self.feedback = Counter(
            "model_feedback",
            "Labels received by POST /feedback: joined, unknown (request id) or duplicate",
            ["result"],
            registry=self.registry,
        )

        # Model versions (lifecycle.py) and request value checks (validation.py).
        self.version_info = Gauge(
            "model_version_info",
            "The model versions loaded, by role: serving, canary, shadow, previous (always 1)",
            ["version", "role"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.version_predictions = Counter(
            "model_version_predictions",
            "Records predicted by each model version, by role (serving, canary, shadow, "
            "previous or default: the fallbacks)",
            ["version", "role"],
            registry=self.registry,
        )
        self.version_latency = Histogram(
            "model_version_prediction_duration_seconds",
            "Time a model version takes to predict the records of a request, in seconds",
            ["version", "role"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.version_failures = Counter(
            "model_version_failures",
            "Calls of a model version that failed (error), were not made (circuit_open) or "
            "were skipped (shadow_skipped)",
            ["version", "reason"],
            registry=self.registry,
        )
        self.circuit_open = Gauge(
            "model_circuit_open",
            "1 while a version's circuit breaker is open: the version is not called",
            ["version"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.model_reloads = Counter(
            "model_reloads",
            "Switches to the version the registry's serving.json names, without a restart: "
            "loaded, or failed (the version serving before keeps serving)",
            ["result"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "model_fallbacks",
            "Requests the serving model failed, by fallback: previous, default or error (503)",
            ["fallback"],
            registry=self.registry,
        )
        self.shadow_comparisons = Counter(
            "model_shadow_comparisons",
            "Shadow predictions compared with the served ones: agree or disagree",
            ["version", "result"],
            registry=self.registry,
        )
        self.shadow_difference = Histogram(
            "model_shadow_abs_difference",
            "Absolute difference of a numeric shadow prediction from the served one",
            ["version"],
            registry=self.registry,
        )
        self.input_violations = Counter(
            "model_input_violations",
            "Request values training never saw, by feature: out of range or unknown category",
            ["feature", "check"],
            registry=self.registry,
        )

    def observe_forecasts(
        self, records: Sequence[Mapping[str, Any]], answers: Sequence[Sequence[Any]]
    ) -> None:
        """A forecast model's requests: the steps each asked for, and the values forecast."""
        if self.forecast_steps is None:
            self.forecast_steps = Histogram(
                "model_forecast_steps",
                "Steps asked for by each forecast request",
                buckets=(1, 2, 3, 6, 12, 24, 48, 96, 192, 384, 1000),
                registry=self.registry,
            )
            self.forecast_values = Histogram(
                "model_forecast_value",
                "Values forecast, one observation per step (see forecast.py)",
                buckets=(-1e6, -1e3, -100, -10, -1, 0, 1, 10, 100, 1e3, 1e4, 1e5, 1e6),
                registry=self.registry,
            )
        assert self.forecast_values is not None
        for record, answer in zip(records, answers, strict=True):
            self.forecast_steps.observe(float(record.get("steps", 0)))
            for value in answer:
                if value is not None:
                    self.forecast_values.observe(float(value))

    def value_histogram(self, buckets: Sequence[float]) -> Histogram:
        """The histogram of a regressor's predictions (created on the first call)."""
        if self.prediction_values is None:
            self.prediction_values = Histogram(
                "model_prediction_value",
                "Predictions of a regressor, on the deciles of its predictions on the training data",
                buckets=sorted(set(buckets)),
                registry=self.registry,
            )
        return self.prediction_values

    def render(self) -> tuple[bytes, str]:
        """The metrics in Prometheus text format, and its content type.

        With several workers: the values of every worker, read from their files.
        """
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def process_stopped(self) -> None:
        """Forget this worker's ``live*`` gauges (with several workers; when it stops)."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]
