"""Every code block of the tutorial and the how-to guides runs, and shows what it really prints.

The pages mark their blocks (see tests/docs_runner.py for the markers). The tutorial runs in a
folder holding only the example notebook and its data, as a reader starts; the how-to guides
then run in the same folder, where the tutorial left the example promoted, installed and trained
(`review-sentiment/`), so the project is built once for all of them. Blocks marked `container`
run only where podman works (see scripts/podman-setup.sh), like tests/test_container.py.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from docs_runner import Block, Shell, matches, parse_page, set_cell
from helpers import EXAMPLES, ROOT
from project_harness import free_port

DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial.md"
HOW_TOS = sorted((DOCS / "how-to").glob("*.md"))
NOTEBOOK = "review_sentiment.ipynb"
PROJECT = "review-sentiment"
DEFAULT_BASE_IMAGE = "localhost/python-base:3.11"


@pytest.mark.parametrize("page", [TUTORIAL, *HOW_TOS], ids=lambda p: p.stem)
def test_every_code_block_is_marked_to_run(page: Path) -> None:
    blocks, unmarked = parse_page(page.read_text())
    assert not unmarked, f"{page.name}: code blocks at lines {unmarked} carry no run marker"
    assert any(b.kind == "console" for b in blocks), f"{page.name} runs no command"


def podman_environment() -> dict[str, str] | str:
    """The variables podman needs here, or why container blocks cannot run."""
    reason = os.environ.get("PROMOTE_CONTAINER_SKIP")
    if reason:
        return reason
    if shutil.which("podman") is None:
        return "podman is not installed: run scripts/podman-setup.sh (as root)"
    conf = os.environ.get("CONTAINERS_CONF") or str(
        Path(
            os.environ.get("PROMOTE_PODMAN_CACHE")
            or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "promote-podman"
        )
        / "containers.conf"
    )
    if not Path(conf).is_file():
        return 'no containers.conf for podman: run `eval "$(scripts/podman-setup.sh)"`'
    base = os.environ.get("PROMOTE_BASE_IMAGE", DEFAULT_BASE_IMAGE)
    exists = subprocess.run(
        ["podman", "image", "exists", base],
        env={**os.environ, "CONTAINERS_CONF": conf},
        capture_output=True,
        check=False,
    )
    if exists.returncode != 0:
        return f"no base image {base}: run scripts/podman-setup.sh (as root)"
    # `make image` reads BASE_IMAGE from the environment: the registry-free base image here.
    return {"CONTAINERS_CONF": conf, "BASE_IMAGE": base}


def shell_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PROMOTE_HOME"] = str(home)
    env["PROMOTE_REPO"] = str(ROOT)  # the pages' `$PROMOTE_REPO`: where promote was cloned
    env.update(NO_COLOR="1", TERM="dumb", GIT_PAGER="cat", PAGER="cat")
    env.update(GIT_AUTHOR_NAME="Ann", GIT_AUTHOR_EMAIL="ann@example.com")
    env.update(GIT_COMMITTER_NAME="Ann", GIT_COMMITTER_EMAIL="ann@example.com")
    return env


def reader_folder(folder: Path) -> Path:
    """A folder as the reader has it: the example notebook and the data it reads."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / NOTEBOOK, folder / NOTEBOOK)
    shutil.copytree(EXAMPLES / "data", folder / "data", dirs_exist_ok=True)
    return folder


def run_page(page: Path, cwd: Path, home: Path) -> list[str]:
    """Run the page's blocks in order; fail on the first mismatch.

    Returns lines for the report: the blocks skipped, and the slowest commands.
    """
    blocks, _ = parse_page(page.read_text())
    podman = podman_environment()
    ports = {"8000": str(free_port()), "8001": str(free_port())}
    env = shell_environment(home)
    if isinstance(podman, dict):
        env.update(podman)
    skipped: list[str] = []
    shell = Shell(cwd, env)
    try:
        for block in (b for b in blocks if b.kind != "finally"):
            reason = why_not(block, podman, env["PATH"])
            if reason:
                skipped.append(f"{page.name}, line {block.line}: skipped: {reason}")
                continue
            run_block(page, block, shell, ports)
    finally:
        for block in (b for b in blocks if b.kind == "finally"):
            for command in block.commands:
                shell.run(substitute(command.text, ports), timeout=120)
        shell.close()
    slowest = sorted(shell.times, reverse=True)[:3]
    return skipped + [f"{page.name}: {seconds:.0f} s for `{text}`" for seconds, text in slowest]


def why_not(block: Block, podman: dict[str, str] | str, path: str) -> str | None:
    """Why this block cannot run here (its commands found on ``path``), or None."""
    if block.container and isinstance(podman, str):
        return podman
    missing = [tool for tool in block.needs if shutil.which(tool, path=path) is None]
    if missing:
        return f"{', '.join(missing)} not installed"
    if block.cluster and not os.environ.get("PROMOTE_DOCS_CLUSTER"):
        return "applies to a cluster: set PROMOTE_DOCS_CLUSTER=1 to run it on kubectl's context"
    if block.cluster and not reaches_cluster():
        return "kubectl reaches no Kubernetes cluster"
    return None


@functools.cache
def reaches_cluster() -> bool:
    if shutil.which("kubectl") is None:
        return False
    info = subprocess.run(
        ["kubectl", "cluster-info", "--request-timeout=5s"], capture_output=True, check=False
    )
    return info.returncode == 0


def substitute(text: str, ports: dict[str, str]) -> str:
    for port, free in ports.items():
        text = text.replace(port, free)
    return text


def run_block(page: Path, block: Block, shell: Shell, ports: dict[str, str]) -> None:
    where = f"{page.name}, line {block.line}"
    if block.kind in {"file", "cell"}:
        code, cwd = shell.run("pwd")
        folder = Path(cwd.strip().splitlines()[-1])
        if block.kind == "file":
            path = folder / block.target[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text)
        else:
            set_cell(folder / block.target[0], int(block.target[1]), block.text)
        return
    for index, command in enumerate(block.commands):
        code, output = shell.run(substitute(command.text, ports))
        actual = [line.rstrip() for line in output.splitlines()]
        following = block.commands[index + 1].text if index + 1 < len(block.commands) else ""
        assert code == 0 or following == "echo $?", (
            f"{where}: `{command.text}` exited {code}:\n{output[-6000:]}"
        )
        missing = matches(command.expected, actual)
        assert missing is None, (
            f"{where}: `{command.text}` did not print {missing!r}; it printed:\n{output[-6000:]}"
        )


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """The tutorial, run once from a folder holding only the example notebook and its data.

    The how-to guides then run in the same folder, where the tutorial left the example
    promoted, installed and trained (`review-sentiment/`): the project is built once.
    """
    folder = reader_folder(tmp_path_factory.mktemp("docs") / "work")
    home = tmp_path_factory.mktemp("promote-home")
    return folder, home, run_page(TUTORIAL, folder, home)


@pytest.mark.slow
def test_tutorial(
    tutorial: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A reader with only the notebook follows the tutorial to a container answering /predict."""
    folder, _, lines = tutorial
    assert (folder / PROJECT / "artifacts" / "model.json").is_file()
    report(capsys, lines)


@pytest.mark.slow
@pytest.mark.parametrize("page", HOW_TOS, ids=lambda p: p.stem)
def test_how_to(
    page: Path, tutorial: tuple[Path, Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, home, _ = tutorial
    report(capsys, run_page(page, folder, home))


def report(capsys: pytest.CaptureFixture[str], lines: list[str]) -> None:
    with capsys.disabled():
        print("\n  " + "\n  ".join(lines))


def test_the_runner_compares_trimmed_output() -> None:
    actual = ["a", "b 12.3 s", "c", "d"]
    assert matches(["a", "...", "d"], actual) is None
    assert matches(["b ... s", "d"], actual) is None
    assert matches(["a", "c"], actual) is None
    assert matches(["d", "a"], actual) == "a"
    assert matches(["x"], actual) == "x"
