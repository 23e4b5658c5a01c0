"""Render a plan into a project directory: copier for the template, then the notebook's modules.

Nothing reaches the target until everything succeeded: the project is rendered into a temporary
directory beside the target and moved into place in one rename.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promote import __version__
from promote.codegen import exploration_notebook, generate
from promote.errors import RenderError, TargetExistsError
from promote.gitutil import commit_all, commit_files_to_branch, git, is_dirty
from promote.lock import Locked
from promote.lock import lock as lock_requirements
from promote.planning import Plan
from promote.store import TemplateRef, sync

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "GENERATED_BRANCH",
    "Rendered",
    "format_files",
    "generated_message",
    "remove_stale_scratch",
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
    local_modules: Sequence[str] = (),
) -> Rendered:
    """Render ``plan`` into ``target``; ``data_files`` maps files to copy to project paths
    (the modules beside the notebook too, named in ``local_modules`` as ``helpers.py`` or
    ``common``, their paths under ``src/``)."""
    answers = {
        "project_name": plan.project_name,
        "package_name": plan.package_name,
        "description": f"Model service promoted from {plan.notebook_name}",
        "promote_version": __version__,
        "source_notebook": plan.notebook_name,
        "dependencies": list(plan.dependencies),
        "local_modules": list(local_modules),
        "model_kind": "forecast" if plan.forecast is not None else "records",
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
    _check_target(target, force=force, notebook=notebook)
    files = dict(files or {})
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_scratch(target)
        with _scratch(target) as scratch:
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
            with _signals_deferred():
                backup = _swap(project, target)
    except RenderError as exc:
        if exc.target == target:
            raise
        raise RenderError(target, exc.reason) from exc  # it named the scratch directory
    except OSError as exc:  # permissions, a full disk, a read-only file system
        where = f": {exc.filename}" if exc.filename else ""
        raise RenderError(target, f"{exc.strerror or exc}{where}") from exc
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
            with warnings.catch_warnings():  # `x is 1` and the like: the notebook's, not ours
                warnings.simplefilter("ignore")
                compile(source, relative, "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise RenderError(
                project,
                f"generated {relative} is not valid Python ({exc.msg}, line {exc.lineno}); "
                "this is a bug in promote, please report it with the notebook",
            ) from exc


def _swap(project: Path, target: Path) -> Path | None:
    """Move the finished project into place; keep what was there as a backup.

    At every moment the old content is either at ``target`` or at ``target.backup-N``: the old
    directory is renamed away first, then the project is renamed into place.
    """
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


# -- the target, and the scratch directory beside it ---------------------------------------------
STALE_UNLOCKED_SECONDS = 60  # a scratch directory still without its lock file after this is dead


def _check_target(target: Path, *, force: bool, notebook: Path | None) -> None:
    """Refuse a target that is a file, non-empty without ``force``, or unsafe to move away."""
    if target.exists() and not target.is_dir():
        raise RenderError(target, "it exists and is not a directory")
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not force:
        raise TargetExistsError(target)
    for inside, what in ((Path.cwd(), "the current directory"), (notebook, "the notebook")):
        if inside is not None and inside.resolve().is_relative_to(target):
            raise TargetExistsError(
                target, f"it holds {what}, and --force would move it away; choose another -o"
            )
    dirty = _uncommitted(target)
    if dirty:
        shown = ", ".join(line[3:] for line in dirty[:5]) + (", ..." if len(dirty) > 5 else "")
        raise TargetExistsError(
            target,
            f"it is a git repository with uncommitted work ({len(dirty)} path(s): {shown}); "
            "commit or stash it first, or choose another directory with -o",
        )


def _uncommitted(target: Path) -> list[str]:
    """``git status --porcelain`` lines for ``target`` when it is in a git work tree, else []."""
    if git(target, "rev-parse", "--is-inside-work-tree", check=False).strip() != "true":
        return []
    return is_dirty(target)


def remove_stale_scratch(target: Path) -> list[Path]:
    """Remove the scratch directories (``.NAME.promote-*``) that killed runs left beside ``target``.

    A running promote holds a lock on ``.lock`` in its scratch directory; the operating system
    releases it when the process dies, even by SIGKILL, so a directory whose lock can be taken
    belongs to no live run.
    """
    removed = []
    for candidate in target.parent.glob(f".{glob.escape(target.name)}.promote-*"):
        if candidate.is_dir() and not candidate.is_symlink() and _abandoned(candidate):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _abandoned(scratch: Path) -> bool:
    try:
        age = time.time() - scratch.stat().st_mtime
        handle = (scratch / ".lock").open("r+", encoding="utf-8")
    except FileNotFoundError:  # killed before it made its lock file, or it is just starting
        return scratch.exists() and age > STALE_UNLOCKED_SECONDS
    except OSError:
        return False
    with handle:
        if fcntl is None:  # no advisory locks (Windows): only what is clearly old
            return age > 24 * 3600
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live run holds it
        # Empty: its run opened the file but has not locked it yet (it is waiting for us).
        return bool(handle.read().strip()) or age > STALE_UNLOCKED_SECONDS


@contextmanager
def _scratch(target: Path) -> Iterator[Path]:
    """A fresh directory beside ``target``, locked while this run lives, removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.promote-", dir=target.parent))
    handle = None
    try:
        handle = (scratch / ".lock").open("a+", encoding="utf-8")
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if handle is not None:
            handle.close()


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM for the two renames that swap the project in.

    An interrupt there would leave the old content at ``DIR.backup-N`` and no ``DIR``; ignored,
    the run finishes its last microseconds instead. (Only the main thread may set handlers.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = [signal.SIGINT, signal.SIGTERM]
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in names}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
