"""Service settings, read from the environment (names are case-insensitive).

| Variable            | Default     | Meaning                                                      |
|---------------------|-------------|--------------------------------------------------------------|
| ``ARTIFACTS_DIR``   | artifacts   | where the trained model is read from (and written by train)  |
| ``HOST``            | 127.0.0.1   | address the service listens on                               |
| ``PORT``            | 8000        | port the service listens on                                  |
| ``API_KEY``         | (unset)     | when set, every endpoint but /health and /ready requires the |
|                     |             | header ``X-API-Key: <API_KEY>`` (401 otherwise)              |
| ``MAX_BATCH_SIZE``  | 1000        | most records accepted by ``POST /predict/batch`` (422 above) |
| ``MAX_BODY_BYTES``  | 2097152     | largest request body accepted, in bytes (413 above)          |
| ``LOG_LEVEL``       | INFO        | DEBUG, INFO, WARNING, ERROR                                  |
| ``SHUTDOWN_TIMEOUT``| 20          | seconds given to in-flight requests after SIGTERM            |
| ``WORKERS``         | 1           | server processes; above 1, metrics are shared through files  |
|                     |             | in ``PROMETHEUS_MULTIPROC_DIR`` (a temporary directory when  |
|                     |             | unset; emptied at start)                                     |

Monitoring (``monitoring.py``, ``hooks.py``):

| Variable                     | Default | Meaning                                             |
|------------------------------|---------|-----------------------------------------------------|
| ``MONITORING_ENABLED``       | true    | drift gauges, predictions by class (or value) and   |
|                              |         | ``POST /feedback``; false: none of them             |
| ``DRIFT_WINDOW_SIZE``        | 1000    | live records compared with the reference            |
| ``DRIFT_MIN_RECORDS``        | 100     | records needed in the window before a drift gauge   |
| ``DRIFT_INTERVAL_SECONDS``   | 30      | drift is recomputed at a /metrics scrape at most    |
|                              |         | this often (0: at every scrape); with WORKERS > 1   |
|                              |         | also by each worker's thread (at least 1 s apart)   |
| ``DRIFT_REFERENCE_SIZE``     | 1000    | without artifacts/reference.json: the first live    |
|                              |         | records taken as the reference                      |
| ``FEEDBACK_MAX_PENDING``     | 10000   | recent predictions kept to join /feedback labels    |
| ``FEEDBACK_WINDOW``          | 1000    | labelled predictions the live accuracy / MAE covers |
| ``PREDICTION_LOG``           | (unset) | JSON-lines file the default hook appends sampled    |
|                              |         | predictions and feedback to; unset: no log          |
| ``PREDICTION_LOG_SAMPLE_RATE``| 1.0    | share of the predictions written to the log         |

Model lifecycle (``registry.py``, ``gate.py``, ``validation.py``, ``service/lifecycle.py``):

| Variable                        | Default   | Meaning                                          |
|---------------------------------|-----------|--------------------------------------------------|
| ``MODEL_REGISTRY_DIR``          | (unset)   | the model versions; unset: ARTIFACTS_DIR/registry |
| ``TRAINING_DATA_CHECKS``        | enforce   | new training data against the serving schema:    |
|                                 |           | enforce (a failure keeps the model a candidate), |
|                                 |           | warn (report only) or off                        |
| ``DATA_RANGE_MARGIN``           | 0.1       | share of a number's training range tolerated     |
|                                 |           | beyond it, at training and in requests           |
| ``PROMOTION_TOLERANCE``         | 0.01      | relative worsening of a metric the gate accepts  |
| ``PROMOTION_METRICS``           | (unset)   | metrics the gate compares, ``mae:lower,r2``;     |
|                                 |           | unset: those whose name tells the direction      |
| ``INPUT_CHECKS``                | warn      | request values out of range / unknown category:  |
|                                 |           | warn (counted, answered), reject (422) or off    |
| ``CANDIDATE_MODE``              | off       | shadow: a candidate predicts too, never answers; |
|                                 |           | canary: it answers CANARY_SHARE of the requests  |
| ``CANDIDATE_VERSION``           | (unset)   | the candidate; unset: the newest that never served |
| ``CANARY_SHARE``                | 0.1       | share of requests the canary answers (0 to 1)    |
| ``MODEL_FALLBACK``              | error     | when the model fails: error (503), previous (the |
|                                 |           | version served before answers) or default        |
| ``FALLBACK_VALUE``              | (unset)   | the prediction answered with ``default`` (JSON)  |
| ``CIRCUIT_BREAKER_FAILURES``    | 5         | consecutive failures that stop calling a model   |
| ``CIRCUIT_BREAKER_RESET_SECONDS``| 30       | then, seconds before it is tried again           |
| ``MODEL_RELOAD_SECONDS``        | 10        | how often the registry's serving.json is read: a |
|                                 |           | version promoted or rolled back since is loaded  |
|                                 |           | and serves, no restart; 0: only at start-up      |
| ``MLFLOW_TRACKING_URI``         | (unset)   | set (and the ``mlflow`` extra installed): each   |
|                                 |           | trained version is also logged and registered in |
|                                 |           | MLflow (``mlflow_registry.py``)                  |
| ``MLFLOW_MODEL_NAME``           | (project) | the MLflow experiment and registered model name  |
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ServiceSettings(BaseSettings):
    """Everything the service and the commands can be configured with."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    artifacts_dir: Path = Path("artifacts")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_key: SecretStr | None = None
    max_batch_size: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1)
    log_level: LogLevel = "INFO"
    shutdown_timeout: int = Field(default=20, ge=0)
    workers: int = Field(default=1, ge=1)
    monitoring_enabled: bool = True
    drift_window_size: int = Field(default=1000, ge=1)
    drift_min_records: int = Field(default=100, ge=1)
    drift_interval_seconds: float = Field(default=30.0, ge=0)
    drift_reference_size: int = Field(default=1000, ge=1)
    feedback_max_pending: int = Field(default=10_000, ge=1)
    feedback_window: int = Field(default=1000, ge=1)
    prediction_log: Path | None = None
    prediction_log_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    # Model lifecycle
    model_registry_dir: Path | None = None
    training_data_checks: Literal["enforce", "warn", "off"] = "enforce"
    data_range_margin: float = Field(default=0.1, ge=0.0)
    promotion_tolerance: float = Field(default=0.01, ge=0.0)
    promotion_metrics: str = ""
    input_checks: Literal["warn", "reject", "off"] = "warn"
    candidate_mode: Literal["off", "shadow", "canary"] = "off"
    candidate_version: str | None = None
    canary_share: float = Field(default=0.1, ge=0.0, le=1.0)
    model_fallback: Literal["error", "previous", "default"] = "error"
    fallback_value: str | None = None
    circuit_breaker_failures: int = Field(default=5, ge=1)
    circuit_breaker_reset_seconds: float = Field(default=30.0, ge=0.0)
    model_reload_seconds: float = Field(default=10.0, ge=0.0)
    mlflow_tracking_uri: str | None = None
    mlflow_model_name: str = ""

    @property
    def registry_dir(self) -> Path:
        """Where the model versions are: MODEL_REGISTRY_DIR, else ARTIFACTS_DIR/registry."""
        if self.model_registry_dir is not None:
            return self.model_registry_dir
        return self.artifacts_dir / "registry"

    @property
    def requires_api_key(self) -> bool:
        return self.api_key is not None and self.api_key.get_secret_value() != ""
