"""End to end: render the service template, install the project, lint, test, train, serve.

The project is rendered without a notebook (the placeholder pipeline), installed into a
fresh virtual environment with uv, and exercised through its own tools and commands.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import copier
import pytest

pytestmark = pytest.mark.slow

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "service"
PROJECT_NAME = "iris-service"
PACKAGE_NAME = "iris_service"
SERVER_START_TIMEOUT = 60.0

# Modules promote writes into src/<package>/ after rendering: the template must not ship
# them (pipeline.py only as the placeholder, when there is no notebook).
PROMOTE_MODULES = {"data", "features", "train", "evaluate", "predict", "settings", "helpers"}


def find_uv() -> str:
    beside_python = Path(sys.executable).parent / "uv"
    if beside_python.is_file():
        return str(beside_python)
    on_path = shutil.which("uv")
    if on_path is None:
        pytest.skip("uv is not installed")
    return on_path


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment for the project's commands, without traces of this test's venv."""
    ignored = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ignored and not name.startswith("PYTEST_")
    }
    env.update(overrides)
    return env


def run(command: Sequence[str | Path], cwd: Path, **env: str) -> str:
    """Run a command; on failure, fail the test with its captured output."""
    try:
        completed = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env=clean_env(**env),
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.CalledProcessError as error:
        pytest.fail(
            f"{' '.join(map(str, command))} exited with {error.returncode}\n"
            f"--- stdout\n{error.stdout}\n--- stderr\n{error.stderr}"
        )
    return completed.stdout + completed.stderr


def render(destination: Path, **data: Any) -> Path:
    copier.run_copy(
        str(TEMPLATE),
        str(destination),
        data=data,
        defaults=True,
        unsafe=False,
        quiet=True,
        vcs_ref=None,
    )
    return destination


def requirement_lines(project: Path) -> list[str]:
    lines = (project / "requirements.txt").read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """Send a request; return the status and the decoded JSON body."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rendered project, installed in its own .venv."""
    directory = render(tmp_path_factory.mktemp("render") / PROJECT_NAME, project_name=PROJECT_NAME)
    uv = find_uv()
    python = directory / ".venv" / "bin" / "python"
    run([uv, "venv", "--quiet", "--python", sys.executable, ".venv"], directory)
    run([uv, "pip", "install", "--python", python, "-r", "requirements.txt"], directory)
    run([uv, "pip", "install", "--python", python, "--no-deps", "-e", "."], directory)
    return directory


def test_rendered_files(project: Path) -> None:
    package = project / "src" / PACKAGE_NAME
    assert (package / "pipeline.py").is_file()
    assert not {path.stem for path in package.glob("*.py")} & PROMOTE_MODULES
    answers = (project / ".copier-answers.yml").read_text()
    assert f"project_name: {PROJECT_NAME}" in answers
    requirements = requirement_lines(project)
    assert requirements == sorted(requirements, key=str.lower)
    assert {"fastapi==0.165.0", "scikit-learn==1.9.1", "pytest==9.2.0"} <= set(requirements)


def test_makefile_lists_its_targets(project: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    output = run(["make"], project)
    for target in ("install", "test", "lint", "train", "serve", "image"):
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
    for name in ("model.joblib", "schema.json", "sample.json", "metrics.json"):
        assert (artifacts / name).is_file(), name
    return artifacts


@pytest.fixture
def server(project: Path, trained: Path, tmp_path: Path) -> Iterator[str]:
    """The project's serve command running on a free port; yields its base URL."""
    del trained  # the server needs the artifacts; the fixture only orders the steps
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [f".venv/bin/{PROJECT_NAME}-serve"],
            cwd=project,
            env=clean_env(HOST="127.0.0.1", PORT=str(port)),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if http("GET", f"{base_url}/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /health in time:\n{log.read_text()}")
            time.sleep(0.25)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_train_then_serve_over_http(server: str, project: Path) -> None:
    sample = json.loads((project / "artifacts" / "sample.json").read_text())

    assert http("GET", f"{server}/health") == (200, {"status": "ok"})
    assert http("GET", f"{server}/ready")[0] == 200
    status, body = http("POST", f"{server}/predict", sample["records"][0])

    assert status == 200, body
    assert body["prediction"] == sample["predictions"][0]
    assert set(body["probabilities"]) == {"setosa", "versicolor", "virginica"}


def test_render_for_a_notebook(tmp_path: Path) -> None:
    """With a notebook, promote writes pipeline.py itself; the notebook's pins win."""
    directory = render(
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
