"""Optional: each model version recorded by ``make train`` is also logged to MLflow.

Off by default. To turn it on, install the extra (``pip install -e '.[mlflow]'``) and set
``MLFLOW_TRACKING_URI``, MLflow's own variable (``sqlite:///mlflow.db``, ``http://mlflow:5000``,
``databricks``, ...). Then every training logs one MLflow run per version, in the experiment
``MLFLOW_MODEL_NAME`` (by default the project's name):

* the metrics, and tags with what ``version.json`` records (registry version, data
  fingerprint, code version, gate and data check verdicts);
* the version's files (``artifacts.save``) as run artifacts under ``version/``;
* an MLflow pyfunc model registered as ``MLFLOW_MODEL_NAME``, which loads those files with
  this package (install it where the model is loaded) and answers ``inference.predict``'s
  predictions for a DataFrame of records; the MLflow model version carries the tag
  ``registry_version`` (``v3``) and, when the gate made it serve, the alias ``serving``.

The local registry (``registry.py``) stays the one the service reads and the gate decides
on: MLflow receives a record of each version, for teams that browse, compare and hand over
models there. A failure to reach MLflow is reported and does not undo the local version.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SERVING_ALIAS = "serving"
VERSION_ARTIFACTS = "version"


@dataclass(frozen=True)
class MlflowRecord:
    """Where a version went in MLflow."""

    run_id: str
    model_name: str
    model_version: str  # MLflow's own number for the registered model ("1", "2", ...)


def log_version(
    version: str,
    folder: Path,
    info: Mapping[str, Any],
    *,
    serving: bool,
    tracking_uri: str,
    model_name: str,
) -> MlflowRecord:
    """Log ``version`` (its files in ``folder``, its ``version.json`` facts in ``info``)."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(model_name)
    with mlflow.start_run(run_name=version) as run:
        mlflow.log_metrics({str(k): float(v) for k, v in info.get("metrics", {}).items()})
        mlflow.set_tags(_tags(version, info))
        mlflow.log_artifacts(str(folder), artifact_path=VERSION_ARTIFACTS)
        logged = mlflow.pyfunc.log_model(
            name="model",
            python_model=_python_model(),
            artifacts={VERSION_ARTIFACTS: str(folder)},
            registered_model_name=model_name,
        )
    number = str(logged.registered_model_version)
    client = MlflowClient(tracking_uri=tracking_uri)
    client.set_model_version_tag(model_name, number, "registry_version", version)
    if serving:
        client.set_registered_model_alias(model_name, SERVING_ALIAS, number)
    return MlflowRecord(run.info.run_id, model_name, number)


def _tags(version: str, info: Mapping[str, Any]) -> dict[str, str]:
    code = info.get("code_version") or {}
    data = info.get("data_fingerprint") or {}
    return {
        "registry_version": version,
        "parent_version": str(info.get("parent") or ""),
        "data_sha256": str(data.get("sha256", "")),
        "data_rows": str(data.get("rows", "")),
        "code_commit": str(code.get("commit") or ""),
        "code_dirty": str(code.get("dirty")),
        "data_check_passed": str((info.get("data_check") or {}).get("passed")),
        "gate_passed": str((info.get("gate") or {}).get("passed")),
    }


def _python_model() -> Any:
    """An MLflow pyfunc that serves the version's files with this package's inference path."""
    import pandas as pd
    from mlflow.pyfunc.model import PythonModel

    from . import inference
    from .artifacts import load

    class PromotedModel(PythonModel):
        def load_context(self, context: Any) -> None:
            self.loaded = load(Path(context.artifacts[VERSION_ARTIFACTS]))

        # No type hints here: MLflow would take them as the model's input signature.
        def predict(self, context, model_input, params=None):
            frame = pd.DataFrame(model_input)
            records = frame.to_dict(orient="records")
            return [result["prediction"] for result in inference.predict(self.loaded, records)]

    return PromotedModel()
