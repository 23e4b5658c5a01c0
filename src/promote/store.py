"""The template store: promote's packaged template as a git repository copier can update from.

``copier update`` needs a git template with PEP 440 tags at a stable absolute path; a template
inside an installed wheel is a plain folder. ``sync()`` copies the packaged template into a local
git repository (``$PROMOTE_HOME/template``, default ``~/.local/share/promote/template``) and
tags its content: ``0.1.0`` for the first content seen with promote 0.1.0, then ``0.1.0.post1``,
``0.1.0.post2``, ... whenever the content changes under the same version. The same content always
gets the same tag back, so projects record a tag that still exists when they are updated.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from promote import __version__
from promote.errors import RenderError
from promote.gitutil import git

__all__ = ["TemplateRef", "store_path", "sync", "template_path"]

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache")


@dataclass(frozen=True)
class TemplateRef:
    """A template version copier can render: the store's path and a tag in it."""

    path: Path
    tag: str


def template_path() -> Path:
    """The copier template promote renders: ``PROMOTE_TEMPLATE``, else the one shipped with it."""
    override = os.environ.get("PROMOTE_TEMPLATE")
    if override:
        return Path(override).expanduser().resolve()
    here = Path(__file__).resolve().parent
    for candidate in (here / "_template", here.parents[1] / "templates" / "service"):
        if (candidate / "copier.yml").is_file():
            return candidate
    raise RenderError(here, "promote's project template is missing from the installation")


def store_path() -> Path:
    """Where the template store lives (``PROMOTE_HOME`` overrides the default)."""
    home = os.environ.get("PROMOTE_HOME")
    if home:
        return Path(home).expanduser().resolve() / "template"
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data).expanduser().resolve() / "promote" / "template"


def sync(source: Path | None = None) -> TemplateRef:
    """Commit the packaged (or given) template into the store; return the tag of its content."""
    source = (source or template_path()).resolve()
    store = store_path()
    store.parent.mkdir(parents=True, exist_ok=True)
    with (store.parent / "template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two promote processes must not interleave commits
        return _sync_locked(source, store)


def _sync_locked(source: Path, store: Path) -> TemplateRef:
    if not (store / ".git").is_dir():
        store.mkdir(parents=True, exist_ok=True)
        git(store, "init", "--quiet", "--initial-branch=main")
    _remove_stale_git_locks(store / ".git")
    for child in store.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(source, store, dirs_exist_ok=True, ignore=_IGNORED)
    git(store, "add", "-A")
    tree = git(store, "write-tree").strip()
    existing = _tag_for_tree(store, tree)
    if existing:
        git(store, "checkout", "--quiet", "--force", existing)
        return TemplateRef(store, existing)
    tag = _next_tag(store)
    git(store, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", f"template {tag}")
    git(store, "tag", tag)
    return TemplateRef(store, tag)


def _remove_stale_git_locks(git_dir: Path) -> None:
    """Remove the lock files of a git killed in the store (a promote stopped by SIGKILL).

    Only promote writes to the store, and only while it holds ``template.lock``, which the caller
    holds: a lock file git left (``index.lock``, ``HEAD.lock``, ``refs/.../main.lock``) belongs to
    a git process that no longer runs, and would make every later promote fail.
    """
    for lock in git_dir.rglob("*.lock"):
        if lock.is_file() and "objects" not in lock.relative_to(git_dir).parts:
            lock.unlink()


def _tag_for_tree(store: Path, tree: str) -> str:
    for tag in git(store, "tag", "--list").split():
        if git(store, "rev-parse", f"{tag}^{{tree}}").strip() == tree:
            return tag
    return ""


def _next_tag(store: Path) -> str:
    tags = set(git(store, "tag", "--list").split())
    if __version__ not in tags:
        return __version__
    number = 1
    while f"{__version__}.post{number}" in tags:
        number += 1
    return f"{__version__}.post{number}"
