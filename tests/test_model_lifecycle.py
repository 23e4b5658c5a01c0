"""The model lifecycle of a promoted project, as a user lives it (issue 13).

The diabetes example is promoted with ``--execute`` and installed in a fresh venv. Then, with
the project's own commands: a first model serves; the same pipeline on data with one
feature corrupted is stopped by the data check; a worse model is refused by the promotion
gate; a better one is accepted; a rollback brings the first back; the service runs the
better one as a canary (its share of the traffic within a few percent of the setting) and
as a shadow, with per-version metrics; and every answer names the version that made it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES
from project_harness import clean_env, find_uv, install_project, run, serving, venv_command

from promote.cli import main

pytestmark = pytest.mark.slow

NOTEBOOK = EXAMPLES / "diabetes_regressor.ipynb"
NAME = "diabetes-regressor"  # of the commands
PACKAGE = "diabetes_regressor"
CANARY_SHARE = 0.25
CANARY_REQUESTS = 400
SHADOW_REQUESTS = 40


def estimators(count: int) -> dict[str, str]:
    """The environment that sets the notebook's N_ESTIMATORS (the project's Settings)."""
    return {"DIABETES_REGRESSOR_N_ESTIMATORS": str(count)}


def train(project: Path, count: int, **env: str) -> tuple[int, str]:
    """Run ``<project>-train`` with ``count`` trees (and ``env``): its exit code and its
    report (stdout)."""
    completed = subprocess.run(
        [venv_command(project, f"{NAME}-train")],
        cwd=project,
        env=clean_env(**estimators(count), **env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode in (0, 1, 3), completed.stderr[-3000:]
    return completed.returncode, completed.stdout


def model_command(project: Path, *args: str) -> str:
    completed = subprocess.run(
        [venv_command(project, f"{NAME}-model"), *args],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return completed.stdout


def serving_version(project: Path) -> str:
    pointer = json.loads((project / "artifacts" / "registry" / "serving.json").read_text())
    return str(pointer["version"])


def predict(url: str, record: dict[str, Any], request_id: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/predict",
        data=json.dumps(record).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": request_id},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        assert response.headers["X-Model-Version"] == body["model_version"]
    return body


def metric(url: str, name: str, **labels: str) -> float:
    """One sample of /metrics, by name and labels (0 when absent)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == f"{name}{{{wanted}}}" or (not labels and sample == name):
            return float(value)
    return 0.0


def test_validated_versioned_gated_models_with_rollback_canary_and_shadow(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    assert main([str(NOTEBOOK), "-o", str(project), "--execute"]) == 0
    install_project(project)
    data = project / "src" / PACKAGE / "data.py"
    clean_data = data.read_text()

    # v1: a modest first model serves.
    assert train(project, 30)[0] == 0
    assert serving_version(project) == "v1"

    # v2: one feature corrupted (a unit change); the data check stops it.
    data.write_text(
        clean_data.replace(
            "df = load_diabetes(as_frame=True).frame",
            'df = load_diabetes(as_frame=True).frame\n    df["bmi"] = df["bmi"] * 100',
        )
    )
    code, report = train(project, 30)
    assert code == 1, report
    assert "data check FAILED" in report and "column 'bmi'" in report
    assert re.search(r"column 'bmi': values outside the range .*\(\d+ rows: \d+", report)
    assert serving_version(project) == "v1"
    data.write_text(clean_data)

    # v3: a worse model; the gate refuses it (mae: lower is better, r2: higher). Through
    # `make retrain`, for which a refused candidate is not a failure: it writes a report.
    if shutil.which("make") is None:
        code, report = train(project, 2)
        assert code == 3, report
    else:
        run(["make", "retrain"], project, **estimators(2))
        report = (project / "retrain-report.md").read_text()
        assert report.startswith("## Model version v3 is kept as a candidate")
    assert "gate REFUSED against v1" in report and "v3 is kept as a candidate" in report
    assert serving_version(project) == "v1"

    # v4: a better model; the gate accepts it.
    code, report = train(project, 200)
    assert code == 0, report
    assert "gate PASSED against v1" in report and "v4 now serves" in report
    listing = model_command(project, "list")
    assert re.search(r"v2\s+candidate", listing) and re.search(r"v4\s+serving", listing)
    info = json.loads(model_command(project, "show", "v4"))
    assert info["parent"] == "v1" and info["libraries"]["scikit-learn"]
    assert info["data_fingerprint"]["rows"] > 0

    # Roll back to v1: a pointer change, no retraining.
    started = time.monotonic()
    assert "rolled back from v4 to v1" in model_command(project, "rollback")
    assert time.monotonic() - started < 30
    assert serving_version(project) == "v1"
    published = json.loads((project / "artifacts" / "version.json").read_text())
    assert published["version"] == "v1"

    sample = json.loads((project / "artifacts" / "sample.json").read_text())
    record = sample["records"][0]
    serve = venv_command(project, f"{NAME}-serve")

    # Canary: v4 answers its share of the requests, and each answer says which.
    canary = [
        "env",
        "CANDIDATE_MODE=canary",
        "CANDIDATE_VERSION=v4",
        f"CANARY_SHARE={CANARY_SHARE}",
        str(serve),
    ]
    with serving(canary, project, tmp_path / "canary.log") as url:
        answered = [
            predict(url, record, f"canary-{index}")["model_version"]
            for index in range(CANARY_REQUESTS)
        ]
        assert set(answered) == {"v1", "v4"}
        share = answered.count("v4") / CANARY_REQUESTS
        assert abs(share - CANARY_SHARE) < 0.05, share
        assert metric(
            url, "model_version_predictions_total", role="canary", version="v4"
        ) == answered.count("v4")
        assert metric(
            url, "model_version_predictions_total", role="serving", version="v1"
        ) == answered.count("v1")

    # Shadow: v4 predicts every request too, but only v1 answers.
    shadow = ["env", "CANDIDATE_MODE=shadow", "CANDIDATE_VERSION=v4", str(serve)]
    log = tmp_path / "shadow.log"
    with serving(shadow, project, log) as url:
        answered = [
            predict(url, record, f"shadow-{index}")["model_version"]
            for index in range(SHADOW_REQUESTS)
        ]
        assert set(answered) == {"v1"}
        deadline = time.monotonic() + 30
        labels = {"role": "shadow", "version": "v4"}
        while metric(url, "model_version_predictions_total", **labels) < SHADOW_REQUESTS:
            assert time.monotonic() < deadline, "the shadow did not predict every request"
            time.sleep(0.2)
        compared = metric(
            url, "model_shadow_comparisons_total", result="agree", version="v4"
        ) + metric(url, "model_shadow_comparisons_total", result="disagree", version="v4")
        assert compared == SHADOW_REQUESTS
        assert metric(url, "model_shadow_abs_difference_count", version="v4") == SHADOW_REQUESTS
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    shadowed = [line for line in lines if line.get("shadow_version") == "v4"]
    assert len(shadowed) == SHADOW_REQUESTS
    assert {line["model_version"] for line in shadowed} == {"v1"}
    requests = [line for line in lines if line.get("path") == "/predict"]
    assert requests and {line["model_version"] for line in requests} == {"v1"}

    # MLflow (optional): with the extra installed and MLFLOW_TRACKING_URI set, a training
    # also logs the version to MLflow and registers it; the registered pyfunc predicts as
    # the version does.
    run(
        [
            find_uv(),
            "pip",
            "install",
            "--python",
            str(venv_command(project, "python")),
            "--quiet",
            "-e",
            ".[mlflow]",
        ],
        project,
    )
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, report = train(project, 200, MLFLOW_TRACKING_URI=tracking)
    assert code == 0, report
    assert "v5 now serves" in report
    assert re.search(
        rf"mlflow: run \w+, registered model '{NAME}' version 1, alias 'serving'", report
    ), report
    check = f"""
import json, mlflow, pandas as pd
from mlflow import MlflowClient
mlflow.set_tracking_uri({tracking!r})
version = MlflowClient().get_model_version_by_alias({NAME!r}, "serving")
model = mlflow.pyfunc.load_model("models:/{NAME}@serving")
sample = json.load(open("artifacts/registry/versions/v5/sample.json"))
print(json.dumps({{"tag": version.tags["registry_version"],
                  "answers": list(model.predict(pd.DataFrame(sample["records"]))),
                  "trained": sample["predictions"]}}))
"""
    out = run([venv_command(project, "python"), "-c", check], project)
    found = json.loads(out.strip().splitlines()[-1])
    assert found["tag"] == "v5"
    assert found["answers"] == pytest.approx(found["trained"])
