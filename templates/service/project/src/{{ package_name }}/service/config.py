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

    @property
    def requires_api_key(self) -> bool:
        return self.api_key is not None and self.api_key.get_secret_value() != ""
