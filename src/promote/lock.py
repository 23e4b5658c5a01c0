"""Pin a generated project's whole environment: hashed lock files resolved at promote time.

``requirements.txt`` (runtime and dev) and ``requirements-runtime.txt`` (what the image installs)
hold the direct pins. ``lock`` resolves each with ``uv pip compile --generate-hashes --universal``
(or, when pins kept for API drift exist only for some Pythons, for the project's Python alone)
into ``requirements.lock`` and ``requirements-runtime.lock``, which ``make install`` and the
Dockerfile install exactly. Offline (no package index), it falls back to pinning every
distribution the requirements need to the version installed where promote runs, found from the
installed metadata, without hashes; the file says so in its first lines.

PyPI's ``torch`` for Linux is the CUDA build (several GB with its ``nvidia-*`` wheels). When
the requirements name torch and pip is configured with find-links folders (``PIP_FIND_LINKS``
or pip's configuration files, where a machine keeps PyTorch's CPU wheels), uv looks there too
and writes them into the lock (``--find-links`` lines); such a lock is resolved for the
project's Python on this platform only (a universal one may take PyPI's build, uv choosing
between the two per platform), and takes ``torch==X+cpu``.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

__all__ = ["LOCKS", "Locked", "find_links", "find_uv", "lock"]

LOCKS = {
    "requirements.txt": "requirements.lock",
    "requirements-runtime.txt": "requirements-runtime.lock",
}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Locked:
    """Which lock files were written, and how (``"uv"`` with hashes, or ``"installed"``)."""

    files: tuple[str, ...]
    method: str
    reason: str = ""


def lock(project: Path, python_version: str = "3.11", timeout: int = 120) -> Locked:
    """Write the lock files of ``project`` next to its requirements files."""
    sources = [s for s in LOCKS if (project / s).is_file()]
    uv = find_uv()
    reason = "uv is not installed"
    if uv:
        failures = []
        for source in sources:
            # Universal first (every platform, Python >= python_version); pins that only exist
            # for some Pythons (old compiled wheels kept for API drift) get a lock for this one.
            links = find_links(project / source)
            for scope in (["--universal"], []) if not links else ([],):
                result = subprocess.run(
                    [uv, "pip", "compile", source, "--generate-hashes", *scope,
                     *links,
                     "--python-version", python_version, "--quiet", "-o", LOCKS[source]],
                    cwd=project, capture_output=True, text=True, timeout=timeout, check=False,
                )  # fmt: skip
                if result.returncode == 0:
                    break
            if result.returncode != 0:
                failures.append(result.stderr.strip().splitlines()[-1:] or ["unknown error"])
        if not failures:
            return Locked(tuple(LOCKS[s] for s in sources), "uv")
        reason = f"uv could not resolve ({failures[0][0][:200]})"
    for source in sources:
        (project / LOCKS[source]).write_text(_installed_lock(project / source, reason))
    return Locked(tuple(LOCKS[s] for s in sources), "installed", reason)


def find_links(requirements: Path) -> list[str]:
    """uv's ``--find-links`` options for a requirements file that names torch: the folders
    of ``PIP_FIND_LINKS`` that exist (module docstring); [] otherwise."""
    names = {
        _normal(match.group(1))
        for line in requirements.read_text().splitlines()
        if (match := _NAME.match(line)) and not line.lstrip().startswith("#")
    }
    if "torch" not in names:
        return []
    folders = [f for f in pip_find_links().split() if Path(f).is_dir()]
    if not folders:
        return []
    return [*(option for f in folders for option in ("--find-links", f)), "--emit-find-links"]


def pip_find_links() -> str:
    """The find-links folders pip is configured with: ``PIP_FIND_LINKS``, else pip's
    configuration files (``pip config get global.find-links``); "" when none or no pip."""
    if os.environ.get("PIP_FIND_LINKS"):
        return os.environ["PIP_FIND_LINKS"]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.find-links"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def find_uv() -> str | None:
    """The uv executable: the one installed with promote, else one on PATH."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _installed_lock(requirements: Path, reason: str) -> str:
    """Pins for the requirements and everything they need, as installed here; no hashes."""
    direct: dict[str, str] = {}
    for line in requirements.read_text().splitlines():
        match = _NAME.match(line)
        if match and not line.lstrip().startswith("#"):
            direct[_normal(match.group(1))] = line.strip()
    pins = dict(direct)
    queue = list(direct)
    while queue:
        name = queue.pop()
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if "==" not in pins.get(name, "=="):
            wanted = Requirement(pins[name])
            if wanted.specifier and not wanted.specifier.contains(dist.version, prereleases=True):
                continue  # a range the installed version is outside of (API drift): kept as is
            pins[name] = f"{name}=={dist.version}"
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue  # an extra, or another Python or platform
            dependency = _normal(requirement.name)
            if dependency not in pins:
                try:
                    pins[dependency] = f"{dependency}=={importlib.metadata.version(dependency)}"
                except importlib.metadata.PackageNotFoundError:
                    pins[dependency] = dependency
                queue.append(dependency)
    header = (
        f"# Offline fallback: {reason}. Every requirement of {requirements.name} and what it\n"
        "# needs is pinned to the version installed where promote ran; there are no hashes.\n"
        "# Regenerate with hashes when an index is reachable:\n"
        f"#   uv pip compile {requirements.name} --generate-hashes --universal -o "
        f"{LOCKS[requirements.name]}\n"
    )
    return header + "".join(f"{pins[name]}\n" for name in sorted(pins))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
