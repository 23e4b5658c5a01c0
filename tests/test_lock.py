"""Lock files: hashed when an index is reachable, pinned to what is installed when not."""

from __future__ import annotations

from pathlib import Path

import pytest

from promote import lock as lock_module
from promote.lock import lock


def project_with(tmp_path: Path, *requirements: str) -> Path:
    (tmp_path / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (tmp_path / "requirements-runtime.txt").write_text(requirements[0] + "\n")
    return tmp_path


def test_lock_resolves_everything_with_hashes(tmp_path: Path) -> None:
    project = project_with(tmp_path, "click==8.1.7", "pytest==8.3.3")
    locked = lock(project)
    if locked.method != "uv":
        pytest.skip(f"no package index here: {locked.reason}")
    text = (project / "requirements.lock").read_text()
    assert "click==8.1.7" in text and "--hash=sha256:" in text
    assert "pluggy==" in text, "what pytest needs is pinned too"
    assert "pytest" not in (project / "requirements-runtime.lock").read_text()


def test_offline_the_lock_pins_what_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_module, "find_uv", lambda: None)
    project = project_with(tmp_path, "click", "pytest")
    locked = lock(project)
    assert (locked.method, locked.reason) == ("installed", "uv is not installed")
    text = (project / "requirements.lock").read_text()
    assert text.startswith("# Offline fallback: uv is not installed.")
    import click
    import pluggy

    assert f"click=={click.__version__}" in text
    assert f"pluggy=={pluggy.__version__}" in text
    assert "--hash" not in text


def test_offline_a_range_the_installed_version_breaks_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API-drift bound (click<1) is not replaced by the installed click 8."""
    monkeypatch.setattr(lock_module, "find_uv", lambda: None)
    project = project_with(tmp_path, "click<1", "pytest")
    lock(project)
    lines = (project / "requirements.lock").read_text().splitlines()
    assert "click<1" in lines
    assert not any(line.startswith("click==") for line in lines)


def test_torch_is_locked_with_pips_find_links_for_this_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyPI's torch is the CUDA build: with find-links folders (where a machine keeps the CPU
    wheels), the lock is resolved with them and names them; without torch, nothing changes."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", f"{wheels} {tmp_path / 'absent'}")
    with_torch = project_with(tmp_path, "torch==2.13.0", "pytest==8.3.3")
    assert lock_module.find_links(with_torch / "requirements.txt") == [
        "--find-links", str(wheels), "--emit-find-links",
    ]  # fmt: skip
    (tmp_path / "plain.txt").write_text("click==8.1.7\n# torch==2.13.0\n")
    assert lock_module.find_links(tmp_path / "plain.txt") == []
    monkeypatch.delenv("PIP_FIND_LINKS")
    monkeypatch.setattr(lock_module, "pip_find_links", lambda: "")
    assert lock_module.find_links(with_torch / "requirements.txt") == []
