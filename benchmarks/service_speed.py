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
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service_common import (
    EXAMPLES,
    ROOT,
    cpu_seconds,
    find_uv,
    find_wrk,
    install_project,
    post,
    rss_mib,
    run,
    scraping,
    scratch_directory,
    started,
    wrk_json,
)

NOTEBOOK = EXAMPLES / "breast_cancer_classifier.ipynb"
CONNECTIONS = (1, 16)
SCRAPE_PERIOD = 5.0
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


def measure(server: Server, wrk: str, scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One round of one server: cold start, idle memory, then each endpoint and concurrency."""
    script = scratch / "post.lua"
    row: dict[str, Any] = {"cells": {}}
    log = scratch / f"{server.name}.log"
    with started(server.name, server.command, server.env, server.ready_path, log) as (
        process,
        url,
        cold,
    ):
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
                with scraping(url, SCRAPE_PERIOD, server.scrape):
                    result = wrk_json(
                        wrk,
                        url + path,
                        script,
                        connections,
                        args.duration,
                        WRK_BODY=str(body_file),
                    )
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
    """Promote, install and train the project; export its model to joblib for the others."""
    project, name = install_project(notebook, scratch, uv)
    sys.path.insert(0, str(ROOT / "src"))
    from promote.planning import package_name

    python = project / ".venv" / "bin" / "python"
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
    wrk = find_wrk()
    uv = find_uv()

    with scratch_directory(args.workdir, "service-speed-") as scratch:
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
