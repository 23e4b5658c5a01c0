"""How fast the generated service answers, beside what a user would write or pick instead.

Run: `.venv/bin/python benchmarks/service_speed.py [--notebook NB] [--duration S] [--rounds N]
[--no-mlflow] [--json out.json]`. Needs wrk (Debian: `apt-get install wrk`) and uv (in .venv).

It promotes an example notebook (default: the breast cancer classifier, 30 numeric features),
installs the project in a fresh venv with uv and trains it, then serves the same model (the
project's artifacts; the other contenders read it exported with joblib) with, each in one
uvicorn process on 127.0.0.1:

* ``floor``: a bare FastAPI app that reads the body and returns a constant (the framework's
  own cost, no model);
* ``minimal``: a hand-written FastAPI app, as a user would write it in twenty lines:
  ``joblib.load`` at import, ``pd.DataFrame(records)``, ``predict`` and ``predict_proba``;
* ``generated``: the project's own ``<project>-serve``, monitoring on (the default) with the
  drift recomputed every 5 s and /metrics scraped every 5 s during the load (the default is
  every 30 s: this is the heavier case);
* ``generated-nomon``: the same with ``MONITORING_ENABLED=false`` (same scrapes);
* ``mlflow``: ``mlflow models serve --env-manager local`` on the same model saved with
  ``mlflow.sklearn.save_model``, from a venv of its own (``--no-mlflow`` skips it; skipped with
  the reason when MLflow does not install). It answers labels only, no probabilities.

Load comes from wrk (one thread, in a second process) for ``--duration`` seconds per cell:
``POST /predict`` with one record and ``POST /predict/batch`` with ``--batch`` records, at 1 and
16 connections. Servers run one after the other, in rounds (floor, minimal, generated,
generated-nomon, mlflow, then again), and the table gives the median over the rounds of:
requests/s, records/s, p50/p95/p99 latency (wrk's), the server's CPU time per request (user +
system of its processes, from /proc), its resident memory once started and warmed, and its cold
start (process start to the first 200 of its readiness route). It also times
``model.predict`` in the project's venv on one row (no HTTP), the in-process floor. Prints a
table and writes JSON. Not a test: figures vary by machine (and the client shares its CPUs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebooks" / "breast_cancer_classifier.ipynb"
CONNECTIONS = (1, 16)
START_TIMEOUT = 120.0
SCRAPE_PERIOD = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# MLflow's own venv: the model's libraries at the project's versions, MLflow unpinned (latest).
MLFLOW_INSTALL_TIMEOUT = 600

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open(os.getenv("WRK_BODY"), "r")
wrk.body = file:read("*a")
file:close()

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "non_2xx": %d, '
    .. '"p50_us": %d, "p95_us": %d, "p99_us": %d, "mean_us": %.1f}\\n',
    summary.requests, summary.duration,
    errors.connect + errors.read + errors.write + errors.timeout, errors.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean))
end
"""

FLOOR_APP = '''"""The floor: FastAPI reading the body and answering a constant."""
from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/predict")
@app.post("/predict/batch")
async def predict(request: Request) -> dict[str, int]:
    await request.body()
    return {"prediction": 0}
'''

MINIMAL_APP = '''"""A minimal hand-written service for the same model.joblib."""
import os
from typing import Any

import joblib
import pandas as pd
from fastapi import Body, FastAPI

model = joblib.load(os.environ["MODEL_FILE"])
app = FastAPI()


def answer(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    frame = pd.DataFrame(records)
    predictions = model.predict(frame).tolist()
    if not hasattr(model, "predict_proba"):
        return [{"prediction": p} for p in predictions]
    classes = [str(c) for c in model.classes_]
    return [
        {"prediction": p, "probabilities": dict(zip(classes, row))}
        for p, row in zip(predictions, model.predict_proba(frame).tolist())
    ]


@app.get("/ready")
def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/predict")
def predict(record: dict[str, Any] = Body()) -> dict[str, Any]:
    return answer([record])[0]


@app.post("/predict/batch")
def predict_batch(records: list[dict[str, Any]] = Body()) -> list[dict[str, Any]]:
    return answer(records)
'''

IN_PROCESS = """
import json, os, sys, time
import joblib, pandas as pd
model = joblib.load(sys.argv[3])
record = json.load(open(os.path.join(sys.argv[1], "sample.json")))["records"][0]
frame = pd.DataFrame([record])
model.predict(frame)
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    model.predict(pd.DataFrame([record]))
    times.append(time.perf_counter() - start)
times.sort()
p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
print(json.dumps({"p50_us": p50 * 1e6, "p99_us": p99 * 1e6}))
"""

MLFLOW_SAVE = """
import sys, joblib, mlflow.sklearn
mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2])
"""


@dataclass
class Server:
    """How to start one contender, and what to send it."""

    name: str
    command: list[str]
    env: dict[str, str]
    ready_path: str
    single: tuple[str, Any]  # (path, JSON body) for one record
    batch: tuple[str, Any]  # ... for a batch
    scrape: bool = False  # scrape /metrics during the load, as Prometheus would
    results: list[dict[str, Any]] = field(default_factory=list)


def run(command: list[str], cwd: Path | None = None, **env: str) -> str:
    """Run a command; exit with its output if it fails."""
    completed = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed.stdout


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


def post(url: str, body: Any) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        return int(response.status)


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


def rss_mib(root: int) -> float:
    """Resident memory of a process tree, in MiB."""
    total = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@contextlib.contextmanager
def started(server: Server, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """Start a server on a free port; yield it, its URL and its cold start in seconds."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in server.command]
    env = {**os.environ, **server.env, "HOST": "127.0.0.1", "PORT": str(port)}
    with log.open("w") as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                sys.exit(f"{server.name} exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if get(url + server.ready_path) == 200:
                    break
            if time.perf_counter() - start > START_TIMEOUT:
                sys.exit(
                    f"{server.name} not ready in {START_TIMEOUT} s:\n{log.read_text()[-3000:]}"
                )
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
def scraping(url: str, enabled: bool) -> Iterator[None]:
    """Scrape /metrics every SCRAPE_PERIOD seconds while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(SCRAPE_PERIOD):
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


def load(
    wrk: str, url: str, body_file: Path, script: Path, connections: int, duration: int
) -> dict[str, Any]:
    output = run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        WRK_BODY=str(body_file),
    )
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def measure(server: Server, wrk: str, scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One round of one server: cold start, idle memory, then each endpoint and concurrency."""
    script = scratch / "post.lua"
    row: dict[str, Any] = {"cells": {}}
    with started(server, scratch / f"{server.name}.log") as (process, url, cold):
        row["cold_start_s"] = cold
        for path, body in (server.single, server.batch):
            post(url + path, body)  # warm: the first prediction pays for lazy initialisation
        time.sleep(0.5)
        row["idle_rss_mib"] = rss_mib(process.pid)
        for label, (path, body), records in (
            ("predict", server.single, 1),
            ("batch", server.batch, args.batch),
        ):
            body_file = scratch / f"{server.name}-{label}.json"
            body_file.write_text(json.dumps(body))
            for connections in CONNECTIONS:
                before = cpu_seconds(process.pid)
                with scraping(url, server.scrape):
                    result = load(wrk, url + path, body_file, script, connections, args.duration)
                cpu = cpu_seconds(process.pid) - before
                seconds = result["duration_us"] / 1e6
                result.update(
                    rps=result["requests"] / seconds,
                    records_per_s=result["requests"] * records / seconds,
                    cpu_ms_per_request=1000 * cpu / max(result["requests"], 1),
                )
                row["cells"][f"{label}@{connections}"] = result
    return row


def prepare_project(notebook: Path, scratch: Path, uv: str) -> tuple[Path, str]:
    """Promote the notebook, install the project in its venv and train it."""
    sys.path.insert(0, str(ROOT / "src"))
    from promote.api import promote
    from promote.planning import package_name

    project = scratch / "project"
    result = promote(notebook, project, lock=False)
    name = result.plan.project_name
    python = project / ".venv" / "bin" / "python"
    run([uv, "venv", "--quiet", "--python", sys.executable, str(project / ".venv")])
    run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "-r", "requirements.txt"],
        project,
    )
    run([uv, "pip", "install", "--quiet", "--python", str(python), "--no-deps", "-e", "."], project)
    run([str(project / ".venv" / "bin" / f"{name}-train")], project)
    # The trained model as a plain joblib file, for the hand-written app and MLflow.
    export = (
        "import pathlib, sys, joblib\n"
        f"from {package_name(name)}.artifacts import load\n"
        "joblib.dump(load(pathlib.Path(sys.argv[1])).model, sys.argv[2])"
    )
    run([str(python), "-c", export, str(project / "artifacts"), str(scratch / "model.joblib")])
    return project, name


def prepare_mlflow(project: Path, scratch: Path, uv: str) -> tuple[Path | None, str]:
    """MLflow in a venv of its own, and the model saved in its format; or None and why."""
    venv = scratch / "mlflow-venv"
    pins = [
        line
        for line in (project / "requirements-runtime.txt").read_text().splitlines()
        if line.split("==")[0].lower() in {"scikit-learn", "pandas", "numpy", "scipy", "joblib"}
    ]
    start = time.perf_counter()
    try:
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin" / "python"),
                "mlflow",
                *pins,
            ],
            check=True,
            timeout=MLFLOW_INSTALL_TIMEOUT,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        return None, f"MLflow did not install in its own venv: {error}"
    took = time.perf_counter() - start
    model = scratch / "mlflow-model"
    shutil.rmtree(model, ignore_errors=True)
    run(
        [
            str(venv / "bin" / "python"),
            "-c",
            MLFLOW_SAVE,
            str(scratch / "model.joblib"),
            str(model),
        ]
    )
    version = run(
        [str(venv / "bin" / "python"), "-c", "import mlflow; print(mlflow.__version__)"]
    ).strip()
    return model, f"MLflow {version}, installed with uv in {took:.0f} s"


def servers(
    project: Path, name: str, scratch: Path, mlflow_model: Path | None, batch: int
) -> list[Server]:
    records = json.loads((project / "artifacts" / "sample.json").read_text())["records"]
    many = [records[i % len(records)] for i in range(batch)]
    apps = scratch / "apps"
    apps.mkdir(exist_ok=True)
    (apps / "floor_app.py").write_text(FLOOR_APP)
    (apps / "minimal_app.py").write_text(MINIMAL_APP)
    python = str(project / ".venv" / "bin" / "python")
    uvicorn = [
        python,
        "-m",
        "uvicorn",
        "--app-dir",
        str(apps),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    serve = [str(project / ".venv" / "bin" / f"{name}-serve")]
    generated_env = {
        "ARTIFACTS_DIR": str(project / "artifacts"),
        "DRIFT_INTERVAL_SECONDS": str(SCRAPE_PERIOD),
    }
    contenders = [
        Server(
            "floor",
            [*uvicorn, "floor_app:app"],
            {},
            "/ready",
            ("/predict", records[0]),
            ("/predict/batch", many),
        ),
        Server(
            "minimal",
            [*uvicorn, "minimal_app:app"],
            {"MODEL_FILE": str(scratch / "model.joblib")},
            "/ready",
            ("/predict", records[0]),
            ("/predict/batch", many),
        ),
        Server(
            "generated",
            serve,
            generated_env,
            "/ready",
            ("/predict", records[0]),
            ("/predict/batch", many),
            scrape=True,
        ),
        Server(
            "generated-nomon",
            serve,
            {**generated_env, "MONITORING_ENABLED": "false"},
            "/ready",
            ("/predict", records[0]),
            ("/predict/batch", many),
            scrape=True,
        ),
    ]
    if mlflow_model is not None:
        bin_dir = scratch / "mlflow-venv" / "bin"
        mlflow = str(bin_dir / "mlflow")
        mlflow_env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}  # it runs `uvicorn`
        contenders.append(
            Server(
                "mlflow",
                [
                    mlflow,
                    "models",
                    "serve",
                    "-m",
                    str(mlflow_model),
                    "--env-manager",
                    "local",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "{port}",
                ],
                mlflow_env,
                "/ping",
                ("/invocations", {"dataframe_records": [records[0]]}),
                ("/invocations", {"dataframe_records": many}),
            )
        )
    return contenders


def summarise(server: Server) -> dict[str, Any]:
    """Medians over the rounds."""
    rounds = server.results
    cells = {}
    for key in rounds[0]["cells"]:
        values = [r["cells"][key] for r in rounds]
        cells[key] = {
            metric: statistics.median(v[metric] for v in values)
            for metric in (
                "rps",
                "records_per_s",
                "p50_us",
                "p95_us",
                "p99_us",
                "cpu_ms_per_request",
            )
        } | {"errors": sum(v["socket_errors"] + v["non_2xx"] for v in values)}
    return {
        "cold_start_s": statistics.median(r["cold_start_s"] for r in rounds),
        "idle_rss_mib": statistics.median(r["idle_rss_mib"] for r in rounds),
        "cells": cells,
        "rounds": rounds,
    }


def print_table(summary: dict[str, Any], in_process: dict[str, float]) -> None:
    header = (
        f"{'server':<16}{'endpoint':<15}{'conns':>5}{'req/s':>9}{'rec/s':>9}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'CPU ms/req':>11}{'errors':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, data in summary["servers"].items():
        for key, cell in data["cells"].items():
            label, connections = key.split("@")
            endpoint = "/predict" if label == "predict" else f"batch of {summary['batch']}"
            print(
                f"{name:<16}{endpoint:<15}{connections:>5}"
                f"{cell['rps']:>9.0f}{cell['records_per_s']:>9.0f}"
                f"{cell['p50_us'] / 1000:>8.2f}{cell['p95_us'] / 1000:>8.2f}"
                f"{cell['p99_us'] / 1000:>8.2f}"
                f"{cell['cpu_ms_per_request']:>11.2f}{cell['errors']:>7}"
            )
    print()
    print(f"{'server':<16}{'cold start s':>13}{'idle MiB':>10}")
    for name, data in summary["servers"].items():
        print(f"{name:<16}{data['cold_start_s']:>13.2f}{data['idle_rss_mib']:>10.0f}")
    print(
        f"\nmodel.predict in process, one row: p50 {in_process['p50_us'] / 1000:.2f} ms, "
        f"p99 {in_process['p99_us'] / 1000:.2f} ms"
    )
    servers_ = summary["servers"]
    for key in servers_["generated"]["cells"] if "generated" in servers_ else []:
        ratios = []
        on = servers_["generated"]["cells"][key]["rps"]
        for other in ("generated-nomon", "minimal", "mlflow"):
            if other in servers_:
                ratios.append(f"{on / servers_[other]['cells'][key]['rps']:.2f}x {other}")
        gap = ""
        if "floor" in servers_:
            floor = servers_["floor"]["cells"][key]["p50_us"]
            over = (servers_["generated"]["cells"][key]["p50_us"] - floor) / 1000
            gap = f"; p50 {over:+.2f} ms over the floor"
        print(f"generated {key}: {', '.join(ratios)}{gap}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per cell")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100, help="records per /predict/batch")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument(
        "--servers",
        help="comma-separated subset of floor,minimal,generated,generated-nomon,mlflow",
    )
    parser.add_argument("--workdir", type=Path, help="keep the project and venvs here")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "service_speed.json")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian), brew install wrk (macOS)")
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        sys.exit("uv is not installed: run `make setup` (it installs uv into .venv)")

    with contextlib.ExitStack() as stack:
        if args.workdir is not None:
            scratch = args.workdir.resolve()
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
        else:
            scratch = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="service-speed-"))
            )
        (scratch / "post.lua").write_text(WRK_SCRIPT)
        print(f"promoting {args.notebook.name}, installing and training ...", flush=True)
        project, name = prepare_project(args.notebook, scratch, uv)
        mlflow_model, mlflow_note = (None, "MLflow skipped (--no-mlflow or --servers)")
        if not args.no_mlflow and (not args.servers or "mlflow" in args.servers):
            print("installing MLflow in its own venv ...", flush=True)
            mlflow_model, mlflow_note = prepare_mlflow(project, scratch, uv)
        print(mlflow_note, flush=True)
        in_process = json.loads(
            run(
                [
                    str(project / ".venv" / "bin" / "python"),
                    "-c",
                    IN_PROCESS,
                    str(project / "artifacts"),
                    "2000",
                    str(scratch / "model.joblib"),
                ]
            )
        )
        contenders = servers(project, name, scratch, mlflow_model, args.batch)
        if args.servers:
            wanted = set(args.servers.split(","))
            contenders = [server for server in contenders if server.name in wanted]
        for number in range(args.rounds):
            for server in contenders:
                print(f"round {number + 1}/{args.rounds}: {server.name}", flush=True)
                server.results.append(measure(server, wrk, scratch, args))
        summary = {
            "notebook": args.notebook.name,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "batch": args.batch,
            "connections": list(CONNECTIONS),
            "machine": {
                "cpus": os.cpu_count(),
                "load_average_at_end": os.getloadavg(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            "mlflow": mlflow_note,
            "in_process_predict": in_process,
            "servers": {server.name: summarise(server) for server in contenders},
        }
    print()
    print_table(summary, in_process)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
