"""The library calls behind the CLI: ``promote`` a notebook, ``check`` it.

This is the I/O edge: it reads the notebook, looks at the files beside it and at the installed
distributions, and hands plain data to the pure stages (analyse → plan → generate).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from promote.analysis import Analysis, analyse
from promote.capture import (
    NOTEBOOK_MODEL_DIR,
    Capture,
    ExecutionFailure,
    capture_json,
    notebook_model_files,
)
from promote.capture import execute as execute_notebook
from promote.codegen import model_card
from promote.environments import Retried, kernel_environment, retry
from promote.notebook import Notebook, read
from promote.planning import Plan, plan
from promote.render import Rendered, render
from promote.resolve import Resolution, needed, resolve
from promote.store import template_path

__all__ = [
    "PARITY_FILE",
    "Execution",
    "Promotion",
    "capture_into",
    "check",
    "default_name",
    "explain_pins",
    "installed_versions",
    "promote",
]

MAX_DATA_FILE_BYTES = 50 * 1024 * 1024
PARITY_FILE = "tests/parity/notebook.json"
MODEL_CARD = "docs/MODEL_CARD.md"
GENERIC_NAMES = frozenset(
    {"notebook", "notebooks", "solution", "solutions", "src", "nbs", "untitled"}
)


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` did (or, with ``pretend``, would do)."""

    plan: Plan
    target: Path
    rendered: Rendered | None
    data_files: dict[Path, str]
    captured: Capture | None = None
    execution_failure: ExecutionFailure | None = None
    resolution: Resolution | None = None  # the pins and why, when the notebook constrains them
    retried: Retried | None = None  # the fresh environments tried after the run failed


@dataclass(frozen=True)
class Execution:
    """How to run the notebook for ``--execute``."""

    cell_timeout: int = 600
    total_timeout: int = 3600
    kernel: str = "python3"
    retries: int = 3  # fresh environments tried when a library version makes the run fail


def check(notebook: Path | str) -> Analysis:
    """Analyse a notebook without writing anything."""
    return analyse_in_environment(read(notebook))


def analyse_in_environment(notebook: Notebook) -> Analysis:
    """``analyse`` with the facts of the environment promote runs in (distributions, versions)."""
    return analyse(
        notebook,
        packages=importlib.metadata.packages_distributions(),
        installed=installed_versions(),
        local_modules=modules_beside(notebook.path.resolve().parent),
    )


def modules_beside(folder: Path) -> frozenset[str]:
    """Modules a notebook in ``folder`` can import from its folder or the one above:
    ``utils.py``, and folders of Python files (packages, namespace packages), as Jupyter
    starts in the notebook's folder and notebooks often add the one above to ``sys.path``."""
    found: set[str] = set()
    for base in (folder, folder.parent):
        try:
            entries = list(base.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.suffix == ".py" and entry.stem.isidentifier():
                found.add(entry.stem)
            elif entry.name.isidentifier() and entry.is_dir() and _holds_python(entry):
                found.add(entry.name)
    return frozenset(found)


def _local_module_files(names: Sequence[str], folder: Path) -> list[tuple[Path, str]]:
    """The files of the modules ``names`` beside the notebook, with their paths under src/:
    ``helpers.py``, or every ``.py`` file of a folder (``common/io.py``)."""
    found: list[tuple[Path, str]] = []
    for name in names:
        for base in (folder, folder.parent):
            if (base / f"{name}.py").is_file():
                found.append((base / f"{name}.py", f"{name}.py"))
                break
            if (base / name).is_dir() and _holds_python(base / name):
                found += [
                    (path, path.relative_to(base).as_posix())
                    for path in sorted((base / name).rglob("*.py"))
                    if "__pycache__" not in path.parts
                ]
                break
    return found


def _holds_python(folder: Path) -> bool:
    try:
        return any(entry.suffix == ".py" for entry in folder.iterdir())
    except OSError:
        return False


def default_name(notebook: Path | str) -> str:
    """A project name from the notebook's file name: ``Churn Model.ipynb`` → ``churn-model``."""
    path = Path(notebook).resolve()
    stem = path.stem
    for folder in path.parents:  # a generic name: the folders above say more
        if stem.lower() not in GENERIC_NAMES:
            break
        stem = folder.name or stem
    name = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return name or "model-service"


def promote(
    notebook: Path | str,
    output: Path | str | None = None,
    *,
    name: str | None = None,
    force: bool = False,
    pretend: bool = False,
    execute: Execution | None = None,
    lock: bool = True,
) -> Promotion:
    """Promote ``notebook`` into a project at ``output`` (default: ``./<name>``).

    With ``execute``, the notebook is run once first and what it produced is written to the
    project's ``tests/parity/notebook.json``; if the run fails, the project is still generated
    and ``execution_failure`` says why.
    """
    path = Path(notebook)
    analysis = analyse_in_environment(read(path))
    project_name = name or default_name(path)
    target = Path(output) if output else Path.cwd() / project_name
    folder = path.resolve().parent
    data_files = _data_files(analysis, folder)
    result = plan(
        analysis,
        project_name,
        installed=installed_versions(),
        local_modules=modules_beside(folder),
        data_paths={literal: project for literal, (_, project) in data_files.items()},
    )
    copies = {source: project for source, project in data_files.values()}
    local = _local_module_files(result.local_modules, folder)
    copies.update({source: f"src/{relative}" for source, relative in local})
    local_names = sorted({relative.split("/")[0] for _, relative in local})
    resolution = _resolve(analysis, result.dependencies, index=lock and not pretend)
    if resolution is not None:
        result = dataclasses.replace(result, dependencies=resolution.requirements)
    if pretend:
        return Promotion(result, target, None, copies, resolution=resolution)
    with tempfile.TemporaryDirectory(prefix="promote-model-") as saved:
        ran = _execute(path, result, execute, model_directory=Path(saved)) if execute else None
        retried = None
        if isinstance(ran, ExecutionFailure) and execute is not None:
            retried = _retry(path, analysis, result, ran, resolution, execute, Path(saved))
            ran = retried.ran
            if retried.resolution is not None:
                resolution = retried.resolution
                result = dataclasses.replace(result, dependencies=resolution.requirements)
        extra = {PARITY_FILE: capture_json(ran, result)} if isinstance(ran, Capture) else {}
        captured = json.loads(extra[PARITY_FILE]) if extra else None
        extra[MODEL_CARD] = model_card(result, captured)
        if isinstance(ran, Capture):
            model_copies, model_texts = notebook_model_files(ran, result, Path(saved))
            copies.update(model_copies)
            extra.update(model_texts)
        rendered = render(
            result,
            target,
            data_files=copies,
            force=force,
            notebook=path,
            extra_files=extra,
            lock=lock,
            local_modules=local_names,
        )
    return Promotion(
        result,
        target,
        rendered,
        copies,
        captured=ran if isinstance(ran, Capture) else None,
        execution_failure=ran if isinstance(ran, ExecutionFailure) else None,
        resolution=resolution,
        retried=retried,
    )


def explain_pins(notebook: Path | str, *, index: bool = True) -> Resolution:
    """The pins ``promote`` would write for the notebook's third-party imports, and why."""
    analysis = analyse_in_environment(read(notebook))
    requirements = _notebook_requirements(analysis, Path(notebook).resolve().parent)
    found = _resolve(analysis, requirements, index=index, always=True)
    assert found is not None
    return found


def _notebook_requirements(
    analysis: Analysis, folder: Path, installed: Mapping[str, str] | None = None
) -> list[str]:
    """Every third-party distribution the notebook imports, the package's or not, at the
    version installed here (or in ``installed``) when there is one."""
    installed = installed_versions() if installed is None else installed
    local = modules_beside(folder)
    return [
        f"{d.distribution}=={v}" if (v := installed.get(_normal(d.distribution))) else d.requirement
        for d in analysis.dependencies
        if not set(d.modules) & local
    ]


def _resolve(
    analysis: Analysis,
    requirements: tuple[str, ...] | list[str],
    *,
    index: bool,
    always: bool = False,
) -> Resolution | None:
    """Pins from the notebook's drift bounds and evidence; None when it says nothing of them."""
    if not requirements or not (always or needed(analysis)):
        return None
    return resolve(
        analysis,
        requirements,
        service_pins(),
        installed=installed_versions(),
        index=index,
    )


def service_pins() -> list[str]:
    """The template's own runtime pins (FastAPI, pandas, numpy, ...), from its copier.yml."""
    data = yaml.safe_load((template_path() / "copier.yml").read_text(encoding="utf-8"))
    pins = data.get("service_pins", {}).get("default", []) if isinstance(data, dict) else []
    return [str(p) for p in pins]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def capture_into(
    project: Path | str, notebook: Path | str | None = None, execution: Execution | None = None
) -> Capture | ExecutionFailure:
    """Run the project's notebook and (re)write its ``tests/parity/notebook.json`` and the
    notebook's model in ``artifacts/notebook``."""
    from promote.lifecycle import project_notebook

    project = Path(project).resolve()
    source = Path(notebook) if notebook else project_notebook(project)
    analysis = analyse_in_environment(read(source))
    result = plan(analysis, default_name(source), installed=installed_versions())
    with tempfile.TemporaryDirectory(prefix="promote-model-") as saved:
        ran = _execute(source, result, execution or Execution(), model_directory=Path(saved))
        if isinstance(ran, Capture):
            (project / PARITY_FILE).parent.mkdir(parents=True, exist_ok=True)
            (project / PARITY_FILE).write_text(capture_json(ran, result), encoding="utf-8")
            copies, texts = notebook_model_files(ran, result, Path(saved))
            folder = project / NOTEBOOK_MODEL_DIR
            if folder.is_dir():  # the previous capture's model: replaced, never mixed
                shutil.rmtree(folder)
            if copies:
                folder.mkdir(parents=True)
            for file, relative in copies.items():
                shutil.copyfile(file, project / relative)
            for relative, text in texts.items():
                (project / relative).write_text(text, encoding="utf-8")
    return ran


def _execute(
    notebook: Path,
    result: Plan,
    execution: Execution,
    python: Path | None = None,
    model_directory: Path | None = None,
) -> Capture | ExecutionFailure:
    return execute_notebook(
        notebook,
        result,
        cell_timeout=execution.cell_timeout,
        total_timeout=execution.total_timeout,
        kernel=execution.kernel,
        python=python,
        model_directory=model_directory,
    )


def _retry(
    notebook: Path,
    analysis: Analysis,
    result: Plan,
    failure: ExecutionFailure,
    resolution: Resolution | None,
    execution: Execution,
    model_directory: Path | None = None,
) -> Retried:
    """The run failed in the kernel's environment: try fresh ones (``environments.retry``),
    each compared with what that environment has (a kernel of another environment, named by
    ``--kernel``, is asked; the default kernel runs promote's own)."""
    other = kernel_environment(execution.kernel)
    installed, packages = other or (
        installed_versions(),
        importlib.metadata.packages_distributions(),
    )
    return retry(
        failure,
        analysis,
        result,
        resolution,
        run=lambda python: _execute(notebook, result, execution, python, model_directory),
        service_pins=service_pins(),
        installed=installed,
        packages=packages,
        retries=execution.retries,
        notebook_only=_notebook_requirements(analysis, notebook.resolve().parent, installed),
    )


def installed_versions() -> dict[str, str]:
    """Distribution name (normalized) → version, for what is installed where promote runs."""
    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions[re.sub(r"[-_.]+", "-", name).lower()] = dist.version
    return versions


def _data_files(analysis: Analysis, folder: Path) -> dict[str, tuple[Path, str]]:
    """String literals naming a file beside the notebook → (the file, its path in the project)."""
    found: dict[str, tuple[Path, str]] = {}
    for _, literal in analysis.string_literals:
        if (
            literal in found
            or "\n" in literal
            or not literal.strip()
            or literal.startswith(("/", "~"))
        ):
            continue
        if "://" in literal:
            continue
        try:
            candidate = (folder / literal).resolve()
            if not candidate.is_file() or candidate.stat().st_size > MAX_DATA_FILE_BYTES:
                continue
        except (OSError, ValueError):
            continue
        if candidate.suffix in {".py", ".ipynb"}:
            continue
        parts = [p for p in Path(literal).parts if p not in {"..", "."}]
        relative = "/".join(parts if parts and parts[0] == "data" else ["data", *parts])
        found[literal] = (candidate, relative)
    return found
