"""End to end: render the service template, install the project, lint, test, train, serve.

The project is rendered without a notebook (the placeholder pipeline), installed into a
fresh virtual environment with uv, and exercised through its own tools and commands.
"""

import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from project_harness import (
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
