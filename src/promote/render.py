"""Render a plan into a project directory: copier for the template, then the notebook's modules.

Nothing reaches the target until everything succeeded: the project is rendered into a temporary
directory beside the target and moved into place in one rename.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promote import __version__
from promote.codegen import exploration_notebook, generate
from promote.errors import RenderError, TargetExistsError
from promote.gitutil import commit_all, commit_files_to_branch, git
from promote.lock import Locked
from promote.lock import lock as lock_requirements
from promote.planning import Plan
from promote.store import TemplateRef, sync

__all__ = [
    "GENERATED_BRANCH",
    "Rendered",
    "format_files",
    "generated_message",
    "render",
    "ruff_path",
    "write_project",
]

GENERATED_BRANCH = "promote/generated"


@dataclass(frozen=True)
class Rendered:
    """Where the project went, and where the previous content of the target was kept."""

    target: Path
    backup: Path | None
    files: tuple[str, ...]
    locked: Locked | None = None


def render(
    plan: Plan,
    target: Path,
    *,
    data_files: Mapping[Path, str] | None = None,
    force: bool = False,
    notebook: Path | None = None,
    extra_files: Mapping[str, str] | None = None,
    lock: bool = True,
) -> Rendered:
    """Render ``plan`` into ``target``; ``data_files`` maps files to copy to project paths."""
    answers = {
        "project_name": plan.project_name,
        "package_name": plan.package_name,
        "description": f"Model service promoted from {plan.notebook_name}",
        "promote_version": __version__,
        "source_notebook": plan.notebook_name,
        "dependencies": list(plan.dependencies),
    }
    extra = {"notebooks/exploration.ipynb": exploration_notebook(plan), **(extra_files or {})}
    return write_project(
        answers,
        target,
        files=generate(plan),
        data_files=data_files,
        force=force,
        notebook=notebook,
        extra_files=extra,
        lock=lock,
    )


def write_project(
    answers: dict[str, Any],
    target: Path,
    *,
    files: Mapping[str, str] | None = None,
    data_files: Mapping[Path, str] | None = None,
    force: bool = False,
    notebook: Path | None = None,
    defaults: bool = True,
    extra_files: Mapping[str, str] | None = None,
    lock: bool = True,
) -> Rendered:
    """Render the template with ``answers`` plus ``files`` into ``target``, atomically.

    The project becomes a git repository with one commit; the generated modules are also
    recorded on the ``promote/generated`` branch, the base of later ``promote update`` merges.
    """
    target = target.resolve()
    if target.exists() and not target.is_dir():
        raise RenderError(target, "it exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not force:
        raise TargetExistsError(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    files = dict(files or {})
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.promote-", dir=target.parent))
    try:
        project = scratch / "project"
        ref = sync()
        _copier(ref, answers, project, defaults=defaults)
        for relative, source in files.items():
            path = project / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source, encoding="utf-8")
        for relative, text in (extra_files or {}).items():  # written as is, not formatted
            (project / relative).parent.mkdir(parents=True, exist_ok=True)
            (project / relative).write_text(text, encoding="utf-8")
        for source_path, relative in sorted((data_files or {}).items()):
            destination = project / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_path, destination)
        formatted = format_files(project, sorted(files))
        locked = lock_requirements(project) if lock else None
        what = f"from {notebook.name}" if notebook else "from the template"
        git(project, "init", "--quiet", "--initial-branch=main")
        commit_all(project, f"Generate the project {what} with promote {__version__}")
        if formatted:
            commit_files_to_branch(
                project, GENERATED_BRANCH, formatted, generated_message(notebook)
            )
        backup = _swap(project, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Rendered(target=target, backup=backup, files=tuple(sorted(files)), locked=locked)


def generated_message(notebook: Path | None) -> str:
    """The commit message that records where the generated modules came from."""
    lines = [f"promote {__version__}: modules generated from the notebook", ""]
    if notebook is not None:
        with notebook.open("rb") as handle:  # in chunks: a notebook may hold 100 MB of outputs
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        lines += [f"Notebook: {notebook.resolve()}", f"Notebook-SHA256: {digest}"]
    return "\n".join(lines) + "\n"


def format_files(project: Path, files: list[str]) -> dict[str, str]:
    """Fix and format ``files`` inside ``project``; check they compile; return their text."""
    if not files:
        return {}
    _format(project, files)
    _check_compiles(project, files)
    return {relative: (project / relative).read_text(encoding="utf-8") for relative in files}


def _copier(ref: TemplateRef, answers: dict[str, Any], project: Path, *, defaults: bool) -> None:
    from copier import run_copy  # imported here: copier is slow to import and only needed here

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_copy(
                str(ref.path),
                project,
                data=answers,
                vcs_ref=ref.tag,
                defaults=defaults,
                quiet=True,
                overwrite=True,
                unsafe=False,
            )
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # copier raises many kinds; none may leave a partial target
        raise RenderError(project, f"the template failed to render ({exc})") from exc


def ruff_path() -> str:
    try:
        from ruff.__main__ import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("ruff")
        if not found:
            raise RenderError(Path(), "ruff is not installed") from None
        return found


def _format(project: Path, files: list[str]) -> None:
    """Fix, format and lint the generated modules with the project's own ruff settings.

    Safe fixes first, then assignments to locals nothing reads (the call, if any, is kept), then
    the formatter. What is left of the notebook's own style debt gets an explicit ``# noqa: CODE``
    on its line, so the project lints clean from the start and the debt stays visible.
    """
    ruff = ruff_path()
    steps = [
        ["check", "--fix", "--exit-zero"],
        ["check", "--fix", "--unsafe-fixes", "--select", "F841", "--exit-zero"],
        ["format"],
        # Only style rules: a pyflakes finding (an undefined name, say) is a bug, never silenced.
        ["check", "--add-noqa", "--exit-zero", "--select", "E,W,B,UP,C90,SIM"],
    ]
    for step in steps:
        subprocess.run(
            [ruff, *step, "--no-cache", "--quiet", *files],
            cwd=project,
            capture_output=True,
            check=False,
        )


def _check_compiles(project: Path, files: list[str]) -> None:
    for relative in files:
        source = (project / relative).read_text(encoding="utf-8")
        try:
            compile(source, relative, "exec")
        except SyntaxError as exc:
            raise RenderError(
                project,
                f"generated {relative} is not valid Python ({exc.msg}, line {exc.lineno}); "
                "this is a bug in promote, please report it with the notebook",
            ) from exc


def _swap(project: Path, target: Path) -> Path | None:
    """Move the finished project into place; keep what was there as a backup."""
    backup = None
    if target.exists():
        if any(target.iterdir()):
            number = 1
            while (candidate := target.with_name(f"{target.name}.backup-{number}")).exists():
                number += 1
            target.rename(candidate)
            backup = candidate
        else:
            target.rmdir()
    project.rename(target)
    return backup
