"""A project's life after the first promotion: ``new`` from the template, ``update`` it later.

``update`` brings two kinds of change into a project without losing the user's edits:

* template changes, with copier's own three-way update (the project records the template
  store and tag it was rendered from in ``.copier-answers.yml``);
* notebook changes: the modules are regenerated and merged three ways (``git merge-file``)
  with the generation recorded on the ``promote/generated`` branch as the common base.

Conflicts are left inline (``<<<<<<<``) and listed; nothing is committed, so ``git diff`` shows
the whole update for review.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from promote import __version__
from promote.api import analyse_in_environment, installed_versions
from promote.codegen import generate
from promote.errors import PromoteError
from promote.gitutil import commit_files_to_branch, git, is_dirty, read_branch_files, require_git
from promote.lock import LOCKS, lock
from promote.notebook import read
from promote.planning import plan
from promote.render import (
    GENERATED_BRANCH,
    Rendered,
    format_files,
    generated_message,
    write_project,
)
from promote.store import sync

__all__ = ["FileChange", "NotAProjectError", "Update", "new", "project_notebook", "update"]

_CONFLICT = re.compile(r"^<{7} ", re.MULTILINE)


class NotAProjectError(PromoteError):
    """The directory is not a project promote can update."""

    def __init__(self, project: Path, reason: str, hint: str) -> None:
        super().__init__(f"Cannot update {project}: {reason}. {hint}")


@dataclass(frozen=True)
class FileChange:
    """What an update does to one file: added, updated, removed, conflict, or kept (yours)."""

    path: str
    status: str


@dataclass(frozen=True)
class Update:
    """The outcome of ``update``: template versions, per-file changes, conflicts."""

    project: Path
    template_from: str
    template_to: str
    notebook: Path | None
    changes: tuple[FileChange, ...] = ()
    pretend: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def conflicts(self) -> tuple[str, ...]:
        return tuple(c.path for c in self.changes if c.status == "conflict")


def new(
    target: Path, data: dict[str, Any], *, defaults: bool = True, force: bool = False
) -> Rendered:
    """A project from the template alone, with the placeholder pipeline."""
    answers = {"promote_version": __version__, **data, "source_notebook": ""}
    return write_project(answers, target, force=force, defaults=defaults)


def update(project: Path, *, notebook: Path | None = None, pretend: bool = False) -> Update:
    """Bring template and notebook changes into ``project``, keeping the user's edits."""
    project = project.resolve()
    answers = _answers(project)
    dirty = is_dirty(project)
    if dirty:
        listed = ", ".join(line[3:] for line in dirty[:5])
        raise NotAProjectError(
            project,
            f"it has uncommitted changes ({listed}{', ...' if len(dirty) > 5 else ''})",
            "Commit or stash them first, so the update can be reviewed and undone with git.",
        )
    base, message = read_branch_files(project, GENERATED_BRANCH)
    source = notebook or _recorded_notebook(message)
    generated: dict[str, str] = {}
    dependencies = answers.get("dependencies")
    notes: list[str] = []
    if answers.get("source_notebook") or notebook:
        if source is None or not source.is_file():
            raise NotAProjectError(
                project,
                f"its notebook {source or answers.get('source_notebook')} is not there",
                "Pass the notebook with --notebook PATH.",
            )
        generated, dependencies = _regenerate(project, answers, source)
    ref = sync()
    before = str(answers.get("_commit", ""))
    template_changes = _template_update(project, ref.tag, dependencies, pretend, answers)
    module_changes = _merge_modules(project, base, generated, pretend) if generated else []
    if generated and not pretend:
        commit_files_to_branch(project, GENERATED_BRANCH, generated, generated_message(source))
    if generated and source and base and base == generated:
        notes.append("the notebook's code did not change the generated modules")
    return Update(
        project=project,
        template_from=before,
        template_to=ref.tag,
        notebook=source,
        changes=tuple(template_changes + module_changes),
        pretend=pretend,
        notes=tuple(notes),
    )


def _answers(project: Path) -> dict[str, Any]:
    answers_file = project / ".copier-answers.yml"
    if not answers_file.is_file():
        raise NotAProjectError(
            project,
            "it has no .copier-answers.yml, so promote did not generate it",
            "Run `promote NOTEBOOK -o DIR` or `promote new DIR` to start a project.",
        )
    if not (project / ".git").exists():
        raise NotAProjectError(
            project, "it is not a git repository", "Run `git init && git add -A && git commit`."
        )
    loaded = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
    return dict(loaded)


def project_notebook(project: Path) -> Path:
    """The notebook a project was promoted from, as recorded at its last generation."""
    _answers(project)
    _, message = read_branch_files(project, GENERATED_BRANCH)
    recorded = _recorded_notebook(message)
    if recorded is None or not recorded.is_file():
        raise NotAProjectError(
            project,
            f"its notebook {recorded or '(not recorded)'} is not there",
            "Pass the notebook with --notebook PATH.",
        )
    return recorded


def _recorded_notebook(message: str) -> Path | None:
    match = re.search(r"^Notebook: (.+)$", message, re.MULTILINE)
    return Path(match.group(1).strip()) if match else None


def _regenerate(
    project: Path, answers: dict[str, Any], notebook: Path
) -> tuple[dict[str, str], list[str]]:
    """The modules promote would generate now, formatted with the project's own settings."""
    result = plan(
        analyse_in_environment(read(notebook)),
        str(answers["project_name"]),
        installed=installed_versions(),
    )
    if result.package_name != answers.get("package_name"):
        raise NotAProjectError(
            project,
            f"the notebook now gives package {result.package_name!r}, the project has "
            f"{answers.get('package_name')!r}",
            "Rename one of them so they agree.",
        )
    files = generate(result)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        shutil.copy(project / "pyproject.toml", root / "pyproject.toml")
        for relative, text in files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text, encoding="utf-8")
        return format_files(root, sorted(files)), list(result.dependencies)


def _template_update(
    project: Path,
    tag: str,
    dependencies: Any,
    pretend: bool,
    answers: dict[str, Any],
) -> list[FileChange]:
    if tag == answers.get("_commit") and dependencies == answers.get("dependencies"):
        return []
    if pretend:
        # copier's own pretend mode reports nothing useful: apply the update to a throwaway
        # clone of the (clean) project and report what it changed there.
        with tempfile.TemporaryDirectory(prefix="promote-pretend-") as scratch:
            clone = Path(scratch) / project.name
            git(project, "clone", "--quiet", "--no-hardlinks", str(project), str(clone))
            _run_copier_update(clone, tag, dependencies, report_as=project)
            changes = _changes_since(clone)
        if any(c.path in LOCKS and c.status != "conflict" for c in changes):
            listed = {c.path for c in changes}
            relock = [path for path in LOCKS.values() if path not in listed]
            changes += [FileChange(path, "resolved again") for path in relock]
        return changes
    _run_copier_update(project, tag, dependencies, report_as=project)
    changes = _changes_since(project)
    if any(c.path in LOCKS and c.status != "conflict" for c in changes):
        relocked = lock(project)  # the pins changed: resolve the lock files again
        changes += [FileChange(path, "updated") for path in relocked.files]
    return changes


def _run_copier_update(directory: Path, tag: str, dependencies: Any, *, report_as: Path) -> None:
    """``copier update`` of ``directory`` to ``tag``, conflicts left inline."""
    from copier import run_update

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_update(
                directory,
                data={"dependencies": dependencies} if dependencies is not None else None,
                vcs_ref=tag,
                defaults=True,
                overwrite=True,
                skip_answered=True,
                conflict="inline",
                quiet=True,
                unsafe=True,  # promote's own template store: its migrations are trusted
            )
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # copier's errors are many; report them as one
        raise NotAProjectError(
            report_as,
            f"the template update failed ({exc})",
            "Check that the template store recorded in .copier-answers.yml (_src_path) exists.",
        ) from exc


def _changes_since(project: Path) -> list[FileChange]:
    """What the template update changed in the worktree (the project was clean before)."""
    changes = []
    for line in git(project, "status", "--porcelain").splitlines():
        code, path = line[:2], line[3:]
        if code.strip() == "??":
            status = "added"
        elif "D" in code:
            status = "removed"
        else:
            status = "updated"
        file = project / path
        if file.is_file() and _CONFLICT.search(file.read_text(encoding="utf-8", errors="replace")):
            status = "conflict"
        changes.append(FileChange(path, status))
    return changes


def _merge_modules(
    project: Path, base: dict[str, str], generated: dict[str, str], pretend: bool
) -> list[FileChange]:
    changes = []
    for path in sorted(set(base) | set(generated)):
        old, new_text = base.get(path), generated.get(path)
        if old == new_text:
            continue  # this module's generation did not change: the user's version stays as is
        file = project / path
        ours = file.read_text(encoding="utf-8") if file.is_file() else None
        change, merged = _merge_one(path, ours, old, new_text)
        changes.append(change)
        if pretend:
            continue
        if merged is None:
            if file.exists() and change.status == "removed":
                file.unlink()
        else:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(merged, encoding="utf-8")
    return changes


def _merge_one(
    path: str, ours: str | None, base: str | None, theirs: str | None
) -> tuple[FileChange, str | None]:
    """Three-way merge of one generated module; ``None`` text: the file goes (or stays) away."""
    if theirs is None:  # no longer generated
        if ours is None or ours == base:
            return FileChange(path, "removed"), None
        return FileChange(path, "kept"), ours  # edited by the user: theirs to delete
    if ours is None:
        if base is None:
            return FileChange(path, "added"), theirs
        return FileChange(path, "kept"), None  # the user deleted it; respect that
    if ours == base or (base is None and ours == theirs):
        return FileChange(path, "updated"), theirs
    merged, conflicts = _merge_file(ours, base or "", theirs)
    return FileChange(path, "conflict" if conflicts else "updated"), merged


def _merge_file(ours: str, base: str, theirs: str) -> tuple[str, int]:
    with tempfile.TemporaryDirectory() as scratch:
        paths = []
        for name, text in (("yours", ours), ("base", base), ("generated", theirs)):
            path = Path(scratch) / name
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        result = subprocess.run(
            [
                require_git(),
                "merge-file",
                "-p",
                "-L",
                "yours",
                "-L",
                "generated before",
                "-L",
                "generated now",
                *paths,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode < 0:
        raise PromoteError(f"git merge-file failed: {result.stderr.strip()}")
    return result.stdout, result.returncode
