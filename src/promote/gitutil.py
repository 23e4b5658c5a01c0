"""The few git operations promote needs, through the git command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from promote.errors import PromoteError

__all__ = [
    "GitError",
    "commit_all",
    "commit_files_to_branch",
    "git",
    "is_dirty",
    "read_branch_files",
    "require_git",
]

IDENTITY = ("-c", "user.name=promote", "-c", "user.email=promote@localhost")


class GitError(PromoteError):
    """A git command failed."""

    def __init__(self, where: Path, command: list[str], output: str) -> None:
        super().__init__(f"git {' '.join(command)} failed in {where}: {output.strip()[:500]}")


def require_git() -> str:
    found = shutil.which("git")
    if not found:
        raise PromoteError("git is not installed; promote keeps every project in a git repository.")
    return found


def git(repo: Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True) -> str:
    """Run ``git args`` in ``repo`` and return its standard output."""
    command = [require_git(), *IDENTITY, *args]
    result = subprocess.run(
        command,
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {}), "GIT_TERMINAL_PROMPT": "0"},
        check=False,
    )
    if check and result.returncode != 0:
        raise GitError(repo, list(args), result.stderr or result.stdout)
    return result.stdout


def is_dirty(repo: Path) -> list[str]:
    """Paths with uncommitted changes (tracked or untracked), as ``git status`` shows them."""
    return [line for line in git(repo, "status", "--porcelain").splitlines() if line.strip()]


def commit_all(repo: Path, message: str) -> str:
    """Stage everything and commit; return the commit hash."""
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--no-verify", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def commit_files_to_branch(repo: Path, branch: str, files: Mapping[str, str], message: str) -> str:
    """Commit exactly ``files`` (path → text) as the next commit of ``branch``, off the worktree.

    The working tree, the index and HEAD are not touched: this records what promote generated,
    so that a later update can merge against it.
    """
    with tempfile.TemporaryDirectory() as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git(repo, "read-tree", "--empty", env=env)
        for path, text in sorted(files.items()):
            blob = subprocess.run(
                [require_git(), "hash-object", "-w", "--stdin"],
                cwd=repo,
                input=text,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git(repo, "write-tree", env=env).strip()
    parent = git(
        repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False
    ).strip()
    args = ["commit-tree", tree, "-m", message]
    if parent:
        args += ["-p", parent]
    commit = git(repo, *args).strip()
    git(repo, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def read_branch_files(repo: Path, branch: str) -> tuple[dict[str, str], str]:
    """The files and the last commit message of ``branch``; empty when it does not exist."""
    ref = git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False).strip()
    if not ref:
        return {}, ""
    names = git(repo, "ls-tree", "-r", "--name-only", ref).splitlines()
    files = {name: git(repo, "show", f"{ref}:{name}") for name in names}
    return files, git(repo, "log", "-1", "--format=%B", ref)
