"""What the service benchmarks share: set up a trained project, start a server, drive wrk,
read a process tree's CPU time and memory from /proc.

Used by ``service_speed.py`` and ``load_test.py`` (run them as scripts: this directory is
then on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "notebooks"
START_TIMEOUT = 120.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def run(command: list[str], cwd: Path | None = None, **env: str) -> str:
    """Run a command; exit with its output if it fails."""
    completed = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed.stdout


def find_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian), brew install wrk (macOS)")
    return wrk


def find_uv() -> str:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        sys.exit("uv is not installed: run `make setup` (it installs uv into .venv)")
    return uv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def post(url: str, body: Any, headers: Mapping[str, str] | None = None) -> int:
    """POST ``body`` as JSON; the status, 4xx and 5xx included."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def tree_pids(root: int) -> list[int]:
    """``root`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def cpu_seconds(root: int) -> float:
    """User + system CPU time of a process tree."""
    total = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def rss_by_pid(root: int) -> dict[int, float]:
    """Resident memory of each process of a tree, in MiB."""
    found: dict[int, float] = {}
    for pid in tree_pids(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    found[pid] = int(line.split()[1]) / 1024
    return found


def rss_mib(root: int) -> float:
    """Resident memory of a process tree, in MiB."""
    return sum(rss_by_pid(root).values())


@contextlib.contextmanager
def started(
    name: str, command: list[str], env: Mapping[str, str], ready_path: str, log: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """Start a server on a free port (``{port}`` in ``command``, and ``PORT``); yield it, its
    URL and its cold start in seconds (to the first 200 of ``ready_path``); stop it after."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    full_env = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(port)}
    with log.open("w") as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=full_env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                sys.exit(f"{name} exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if get(url + ready_path) == 200:
                    break
            if time.perf_counter() - start > START_TIMEOUT:
                sys.exit(f"{name} not ready in {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.02)
        yield process, url, time.perf_counter() - start
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def scraping(url: str, period: float, enabled: bool = True) -> Iterator[None]:
    """GET ``url``/metrics every ``period`` seconds while the block runs, as Prometheus would."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(period):
            with contextlib.suppress(OSError):
                get(url + "/metrics")

    thread = threading.Thread(target=loop, daemon=True)
    if enabled:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if enabled:
            thread.join()


def wrk_json(
    wrk: str,
    url: str,
    script: Path,
    connections: int,
    duration: int,
    timeout: float = 10.0,
    **env: str,
) -> dict[str, Any]:
    """Run wrk (one thread) with a Lua script whose ``done`` prints one JSON line; parse it."""
    output = run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            f"{timeout:g}s",
            "-s",
            str(script),
            url,
        ],
        None,
        **env,
    )
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def install_project(notebook: Path, scratch: Path, uv: str) -> tuple[Path, str]:
    """Promote the notebook into ``scratch/project``, install it in a fresh venv with uv (its
    pins, then the project without dependencies, bytecode compiled, as ``make install`` does)
    and train it (``make train``'s command). Return the project directory and the project's
    name."""
    sys.path.insert(0, str(ROOT / "src"))
    from promote.api import promote

    project = scratch / "project"
    result = promote(notebook, project, lock=False)
    name = result.plan.project_name
    python = project / ".venv" / "bin" / "python"
    run([uv, "venv", "--quiet", "--python", sys.executable, str(project / ".venv")])
    install = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python)]
    run([*install, "-r", "requirements.txt"], project)
    run([*install, "--no-deps", "-e", "."], project)
    run([str(project / ".venv" / "bin" / f"{name}-train")], project)
    return project, name


@contextlib.contextmanager
def scratch_directory(workdir: Path | None, prefix: str) -> Iterator[Path]:
    """``workdir`` emptied (kept after), or a temporary directory (removed after)."""
    if workdir is not None:
        scratch = workdir.resolve()
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        yield scratch
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        yield Path(directory)
