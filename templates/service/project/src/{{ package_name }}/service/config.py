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

    @property
    def requires_api_key(self) -> bool:
        return self.api_key is not None and self.api_key.get_secret_value() != ""
