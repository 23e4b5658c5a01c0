"""Harness for the slow tests: install a generated project in a fresh venv, run its commands,
serve it on a free port and talk to it over real HTTP.

Used by test_template.py (the template alone) and test_end_to_end.py (promoted notebooks).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import copier
import pytest

SERVER_START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 600
VENV = ".venv"


TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "service"


def render_template(destination: Path, **data: Any) -> Path:
    """Render the copier template alone (no notebook) into ``destination``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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


def find_tool(name: str, missing: str = "") -> str:
    """A command beside this interpreter (the dev venv's), else on PATH; else skip the test."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file():
        return str(beside_python)
    on_path = shutil.which(name)
    if on_path is None:
        pytest.skip(missing or f"{name} is not installed")
    return on_path


def find_uv() -> str:
    """The uv beside this interpreter, else the one on PATH; skip the test without uv."""
    return find_tool("uv")


def stop(process: subprocess.Popen[Any]) -> None:
    """Terminate a process, and kill it if it has not ended within ten seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
            timeout=COMMAND_TIMEOUT,
        )
    except subprocess.CalledProcessError as error:
        pytest.fail(
            f"{' '.join(map(str, command))} (in {cwd}) exited with {error.returncode}\n"
            f"--- stdout\n{error.stdout}\n--- stderr\n{error.stderr}"
        )
    return completed.stdout + completed.stderr


def install_project(directory: Path) -> Path:
    """Create ``directory/.venv`` with uv and install the project into it.

    Installs the hashed ``requirements.lock`` (``requirements.txt`` where there is no lock),
    then the project itself, editable and without dependencies (what ``make install`` does).
    Returns the venv's python.
    """
    uv = find_uv()
    python = directory / VENV / "bin" / "python"
    requirements = (
        "requirements.lock" if (directory / "requirements.lock").is_file() else ("requirements.txt")
    )
    run([uv, "venv", "--quiet", "--python", sys.executable, VENV], directory)
    # Compiled now, as `make install` does: otherwise, where PYTHONDONTWRITEBYTECODE is set,
    # every process the tests start compiles pandas, scikit-learn and scipy again.
    run(
        [uv, "pip", "install", "--compile-bytecode", "--python", python, "-r", requirements],
        directory,
    )
    run([uv, "pip", "install", "--python", python, "--no-deps", "-e", "."], directory)
    return python


def venv_command(directory: Path, name: str) -> Path:
    """A console script installed in the project's venv."""
    return directory / VENV / "bin" / name


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


@contextmanager
def serving(
    command: Sequence[str | Path],
    cwd: Path,
    log: Path,
    timeout: float = SERVER_START_TIMEOUT,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Run a server command on a free port (HOST/PORT env vars) until it answers /health.

    ``env``: more environment variables for the server.

    Yields the base URL; the server is always terminated on exit. Its output goes to
    ``log``, which is shown if it exits or does not answer in time.
    """
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(part) for part in command],
            cwd=cwd,
            env=clean_env(HOST="127.0.0.1", PORT=str(port), **(env or {})),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
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
        stop(process)
