"""End to end: render the service template, install the project, lint, test, train, serve.

The project is rendered without a notebook (the placeholder pipeline), installed into a
fresh virtual environment with uv, and exercised through its own tools and commands.
"""

import json
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from project_harness import (
    find_tool,
    http,
    install_project,
    render_template,
    requirement_lines,
    run,
    serving,
)

pytestmark = pytest.mark.slow

PROJECT_NAME = "iris-service"
PACKAGE_NAME = "iris_service"

# Modules promote writes into src/<package>/ after rendering: the template must not ship
# them (pipeline.py only as the placeholder, when there is no notebook).
PROMOTE_MODULES = {"data", "features", "train", "evaluate", "predict", "settings", "helpers"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rendered project, installed in its own .venv."""
    directory = render_template(
        tmp_path_factory.mktemp("render") / PROJECT_NAME, project_name=PROJECT_NAME
    )
    install_project(directory)
    return directory


def test_rendered_files(project: Path) -> None:
    package = project / "src" / PACKAGE_NAME
    assert (package / "pipeline.py").is_file()
    assert not {path.stem for path in package.glob("*.py")} & PROMOTE_MODULES
    answers = (project / ".copier-answers.yml").read_text()
    assert f"project_name: {PROJECT_NAME}" in answers
    requirements = requirement_lines(project)
    assert requirements == sorted(requirements, key=str.lower)
    assert {
        "fastapi==0.165.0",
        "scikit-learn==1.9.1",
        "pytest==9.2.0",
        "prometheus-client==0.26.0",
        "pydantic-settings==2.16.3",
        "skops==0.16.0",
    } <= set(requirements)


def test_makefile_lists_its_targets(project: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    output = run(["make"], project)
    targets = ("install", "test", "lint", "train", "retrain", "promote-model", "rollback", "serve")
    for target in (*targets, "image"):
        assert target in output


def test_project_is_lint_clean(project: Path) -> None:
    run([".venv/bin/ruff", "check", "."], project)
    run([".venv/bin/ruff", "format", "--check", "."], project)


def test_project_tests_pass(project: Path) -> None:
    run([".venv/bin/pytest", "-q", "-p", "no:cacheprovider"], project)


@pytest.fixture
def trained(project: Path) -> Path:
    run([f".venv/bin/{PROJECT_NAME}-train"], project)
    artifacts = project / "artifacts"
    written = ("model.json", "model.skops", "schema.json", "sample.json", "metrics.json")
    for name in (*written, "reference.json"):
        assert (artifacts / name).is_file(), name
    assert json.loads((artifacts / "registry" / "serving.json").read_text())["version"]
    return artifacts


@pytest.fixture
def server(project: Path, trained: Path, tmp_path: Path) -> Iterator[str]:
    """The project's serve command running on a free port; yields its base URL."""
    del trained  # the server needs the artifacts; the fixture only orders the steps
    with serving([f".venv/bin/{PROJECT_NAME}-serve"], project, tmp_path / "serve.log") as url:
        yield url


def test_train_then_serve_over_http(server: str, project: Path) -> None:
    sample = json.loads((project / "artifacts" / "sample.json").read_text())

    assert http("GET", f"{server}/health") == (200, {"status": "ok"})
    assert http("GET", f"{server}/ready")[0] == 200
    status, body = http("POST", f"{server}/predict", sample["records"][0])

    assert status == 200, body
    assert body["prediction"] == sample["predictions"][0]
    assert set(body["probabilities"]) == {"setosa", "versicolor", "virginica"}

    status, body = http("POST", f"{server}/predict/batch", sample["records"])
    assert status == 200, body
    assert [result["prediction"] for result in body] == sample["predictions"]
    status, body = http("POST", f"{server}/predict/batch", [sample["records"][0], {}])
    assert status == 422
    assert ["body", 1, "sepal_length_cm"] in [error["loc"] for error in body["detail"]]

    status, body = http("GET", f"{server}/version")
    assert status == 200
    assert body["package"] == PACKAGE_NAME
    assert len(body["model_sha256"]) == 64
    assert (
        body["model_version"]
        == json.loads((project / "artifacts" / "version.json").read_text())["version"]
    )

    with urllib.request.urlopen(f"{server}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert 'predictions_total{endpoint="/predict/batch"} 5.0' in metrics

    # Drift monitoring and feedback over real HTTP.
    assert 'model_drift_reference_records{source="training"}' in metrics
    request = urllib.request.Request(
        f"{server}/predict",
        data=json.dumps(sample["records"][0]).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": "e2e-feedback"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        prediction = json.loads(response.read())["prediction"]
    status, body = http(
        "POST", f"{server}/feedback", {"request_id": "e2e-feedback", "label": prediction}
    )
    assert (status, body["prediction"], body["correct"]) == (200, prediction, True)
    with urllib.request.urlopen(f"{server}/metrics", timeout=10) as response:
        assert "model_live_accuracy 1.0" in response.read().decode()


def scrape(url: str) -> dict[str, float]:
    """``/metrics`` as ``{'name{labels}': value}``, the labels as the service writes them."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def predict_with_id(url: str, record: dict[str, Any], request_id: str) -> Any:
    """POST /predict with an X-Request-ID; the prediction."""
    request = urllib.request.Request(
        f"{url}/predict",
        data=json.dumps(record).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": request_id},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["prediction"]


def test_several_workers_report_the_metrics_of_all(
    project: Path, trained: Path, tmp_path: Path
) -> None:
    """With WORKERS=2 each worker answers some requests, /metrics, whichever worker answers
    it, counts the requests of both, and a label finds its prediction in either worker."""
    records = json.loads((trained / "sample.json").read_text())["records"]
    log = tmp_path / "serve.log"
    env = {"WORKERS": "2", "DRIFT_INTERVAL_SECONDS": "1"}
    # Two workers import pandas and scikit-learn at once: minutes on a busy CI machine.
    with serving([f".venv/bin/{PROJECT_NAME}-serve"], project, log, 240, env) as url:
        deadline = time.monotonic() + 240
        while log.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        requests = 80
        with ThreadPoolExecutor(8) as pool:  # concurrent connections reach both workers
            statuses = list(
                pool.map(
                    lambda i: http("POST", f"{url}/predict", records[i % len(records)])[0],
                    range(requests),
                )
            )
        assert statuses == [200] * requests
        served = {
            entry["pid"]
            for entry in map(json.loads, log.read_text().splitlines())
            if entry.get("message") == "POST /predict 200"
        }
        assert len(served) == 2, "one worker answered every request"

        # Labels reach their prediction whichever worker made it and whichever gets them.
        labelled = 20
        with ThreadPoolExecutor(8) as pool:
            predictions = list(
                pool.map(lambda i: predict_with_id(url, records[0], f"w-{i}"), range(labelled))
            )
            answers = list(
                pool.map(
                    lambda i: http(
                        "POST", f"{url}/feedback", {"request_id": f"w-{i}", "label": predictions[i]}
                    ),
                    range(labelled),
                )
            )
        assert [status for status, _ in answers] == [200] * labelled, answers
        time.sleep(2.5)  # each worker's drift thread runs every second

        for _ in range(4):  # each scrape reaches either worker
            metrics = scrape(url)
            key = 'http_requests_total{endpoint="/predict",method="POST",status="200"}'
            assert metrics[key] == requests + labelled
            assert metrics['predictions_total{endpoint="/predict"}'] == requests + labelled
            assert metrics["model_loaded"] == 1
            assert metrics["model_drift_window_records"] == requests + labelled  # both windows
            assert metrics['model_feedback_total{result="joined"}'] == labelled
            assert metrics["model_feedback_labels"] == labelled
            assert metrics["model_live_accuracy"] == 1.0
            assert not any(name.startswith("process_") for name in metrics)
    assert not re.search(r'"level": "(ERROR|CRITICAL)"', log.read_text()), log.read_text()


# --- the Grafana dashboard (monitoring/dashboard.json) ---------------------------------

# A regressor exports a histogram of its predictions where a classifier counts classes.
REGRESSION_PIPELINE = '''"""A regressor, to see the metrics only a regressor exports."""

from dataclasses import dataclass
from typing import Any

from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression


@dataclass(frozen=True)
class TrainingResult:
    model: Any
    features: Any
    metrics: dict[str, float]


def run() -> TrainingResult:
    data = load_diabetes(as_frame=True)
    model = LinearRegression().fit(data.data, data.target)
    return TrainingResult(model, data.data, {"r2": float(model.score(data.data, data.target))})
'''
CLASSIFIER_ONLY = {"model_predictions_by_class_total"}
REGRESSOR_ONLY = {"model_prediction_value_bucket", "model_prediction_drift_ks"}
METRIC_REFERENCE = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{")


def dashboard(project: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((project / "monitoring" / "dashboard.json").read_text())
    return document


def dashboard_queries(project: Path) -> list[str]:
    """The PromQL of every panel, and of the template variables."""
    document = dashboard(project)
    queries = [
        target["expr"] for panel in document["panels"] for target in panel.get("targets", [])
    ]
    queries += [
        variable["definition"]
        for variable in document["templating"]["list"]
        if variable["type"] == "query"
    ]
    return queries


@pytest.fixture(scope="module")
def regressor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template with a regression pipeline, installed and trained."""
    directory = render_template(
        tmp_path_factory.mktemp("render") / "diabetes", project_name="diabetes"
    )
    (directory / "src" / "diabetes" / "pipeline.py").write_text(REGRESSION_PIPELINE)
    install_project(directory)
    run([".venv/bin/diabetes-train"], directory)
    return directory


def exported_metrics(project: Path, command: str, log: Path) -> set[str]:
    """Serve ``project``, use every endpoint (a prediction, a refused record, a label), and
    return the names of the samples its /metrics then exports."""
    records = json.loads((project / "artifacts" / "sample.json").read_text())["records"]
    env = {"DRIFT_MIN_RECORDS": "5", "DRIFT_INTERVAL_SECONDS": "0"}
    with serving([f".venv/bin/{command}"], project, log, env=env) as url:
        assert http("POST", f"{url}/predict/batch", records * 2)[0] == 200
        assert http("POST", f"{url}/predict", {})[0] == 422
        prediction = predict_with_id(url, records[0], "dashboard")
        feedback = {"request_id": "dashboard", "label": prediction}
        assert http("POST", f"{url}/feedback", feedback)[0] == 200
        return {re.sub(r"\{.*", "", name) for name in scrape(url)}


def test_dashboard_is_grafana_json_with_the_panels_of_the_runbook(project: Path) -> None:
    document = dashboard(project)
    assert document["title"] == PROJECT_NAME
    assert document["uid"] and len(document["uid"]) <= 40
    panels = [panel for panel in document["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in document["panels"]}) == len(document["panels"])
    for panel in panels:
        assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
    queries = " ".join(dashboard_queries(project))
    for metric in (
        "http_requests_total",  # rate and errors
        "http_request_duration_seconds_bucket",  # latency quantiles
        "http_requests_in_progress",
        "model_predictions_by_class_total",  # prediction distribution
        "model_prediction_value_bucket",
        "model_input_drift_psi",  # drift per feature
        "model_input_drift_ks",
        "model_info",
        "model_live_accuracy",
    ):
        assert f"{metric}{{" in queries, metric


def test_dashboard_queries_are_valid_promql(project: Path, tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule, with Grafana's variables filled in)."""
    promtool = find_tool(
        "promtool", "promtool is not installed (Debian: apt-get install prometheus)"
    )
    queries = [
        query.replace("$__rate_interval", "5m").replace("$job", ".*")
        for query in dashboard_queries(project)
        if not query.startswith("label_values(")
    ]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.json"  # YAML is a superset of JSON
    path.write_text(json.dumps(rules))
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout + checked.stderr


def test_dashboard_queries_only_metrics_the_service_exports(
    project: Path, trained: Path, regressor: Path, tmp_path: Path
) -> None:
    """Every metric a panel reads is on /metrics of a running service: a classifier's or,
    for the metrics only a regressor has, a regressor's."""
    del trained  # the fixture trains the classifier
    referenced = {
        name for query in dashboard_queries(project) for name in METRIC_REFERENCE.findall(query)
    }
    classifier = exported_metrics(project, f"{PROJECT_NAME}-serve", tmp_path / "classifier.log")
    regression = exported_metrics(regressor, "diabetes-serve", tmp_path / "regressor.log")

    assert referenced - REGRESSOR_ONLY <= classifier, referenced - REGRESSOR_ONLY - classifier
    assert referenced - CLASSIFIER_ONLY <= regression, referenced - CLASSIFIER_ONLY - regression
    assert referenced >= REGRESSOR_ONLY | CLASSIFIER_ONLY


def test_render_for_a_notebook(tmp_path: Path) -> None:
    """With a notebook, promote writes pipeline.py itself; the notebook's pins win."""
    directory = render_template(
        tmp_path / "reviews",
        project_name="reviews",
        source_notebook="notebooks/reviews.ipynb",
        dependencies=["pandas==2.2.3", "scikit-learn==1.5.2", "httpx==0.27.2"],
    )

    assert not (directory / "src" / "reviews" / "pipeline.py").exists()
    requirements = requirement_lines(directory)
    assert "pandas==2.2.3" in requirements
    assert "pandas==3.1.1" not in requirements
    assert [line for line in requirements if line.startswith("httpx")] == ["httpx==0.27.2"]
    assert "notebooks/reviews.ipynb" in (directory / "README.md").read_text()
