"""Where the generated service's cold start and idle memory go.

Run: `.venv/bin/python benchmarks/service_startup.py [--notebook NB] [--runs N] [--workdir DIR]
[--json out.json]`. Needs uv (in .venv).

It promotes an example notebook (default: the breast cancer classifier), installs the project
in a fresh venv as ``make install`` does (uv, bytecode compiled) and trains it, then:

1. **Cold start**, ``--runs`` times each, alternately: the project's ``<project>-serve``, a
   bare FastAPI app (the floor), a hand-written FastAPI + joblib app (``service_speed.py``'s
   ``floor`` and ``minimal``) and, to show what skops costs at start, the project's service on
   the same model saved as a joblib pickle (as the template saves a model skops cannot save:
   ``skops.io`` is then not imported), from process start to the first 200 of ``/ready``: wall time,
   the CPU time of the server's processes at that moment (user + system, from /proc: on a
   shared machine the steadier figure), the resident memory then, and once warmed (one
   ``/predict``, 0.5 s). Each in two modes: ``compiled`` (the venv's bytecode, as
   ``make install`` and the image's pip leave it) and ``source`` (``PYTHONDONTWRITEBYTECODE=1``
   and an empty ``PYTHONPYCACHEPREFIX``: every module is compiled again at each start, as when
   the venv has no bytecode and Python may not write it).
2. **Phases** of the service's start in one process (compiled): the CPU time and resident
   memory each step adds, the big libraries first in the order the service needs them, then
   the rest of the service's modules, ``create_app()`` and the lifespan (load the model, warm
   it up, serve it).
3. **Imports** (``python -X importtime``): the modules imported by the service's modules and
   by loading the model, and the import time by top-level package (self time; importtime's own
   overhead inflates the total).
4. **Memory**: of the resident memory of the started service, what is private (Python's
   objects and native heaps) and what is mapped from shared libraries (shared between workers),
   from /proc/PID/smaps; and what Python allocated, by package, at ``/ready`` (tracemalloc,
   in a separate process, as tracemalloc slows the start).

Prints tables and writes JSON (default ``benchmarks/results/service_startup.json``). Not a test:
figures vary by machine and load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from service_common import (
    EXAMPLES,
    ROOT,
    cpu_seconds,
    find_uv,
    post,
    rss_mib,
    run,
    scratch_directory,
    started,
)
from service_speed import FLOOR_APP, MINIMAL_APP, prepare_project

NOTEBOOK = EXAMPLES / "breast_cancer_classifier.ipynb"
# The libraries the service needs before /ready, imported one by one in this order by the phase
# profile (each step counts only what the ones before did not import).
LIBRARIES = (
    "uvicorn",
    "fastapi",
    "pydantic_settings",
    "prometheus_client",
    "numpy",
    "pandas",
    "sklearn",
    "skops.io",
)
# importtime nodes whose cumulative time is reported on their own, when imported.
NODES = ("fastapi", "pandas", "sklearn", "scipy.stats", "skops.io", "pytest")

PHASES = """
import asyncio, importlib, json, os, sys, time

def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

marks = [["interpreter", time.process_time(), rss()]]

def mark(label):
    marks.append([label, time.process_time(), rss()])

package = sys.argv[1]
for name in sys.argv[2].split(","):
    importlib.import_module(name)
    mark("import " + name)
importlib.import_module(package + ".entrypoints")
app_module = importlib.import_module(package + ".service.app")
mark("import the service's own modules (and the rest)")
app = app_module.create_app()
mark("create_app()")

async def lifespan():
    async with app.router.lifespan_context(app):
        mark("lifespan: load the model, warm up, serve")

asyncio.run(lifespan())
print(json.dumps(marks))
"""

TRACED = """
import asyncio, importlib, json, sys, tracemalloc
from collections import Counter
tracemalloc.start()
package = sys.argv[1]
importlib.import_module(package + ".entrypoints")
app = importlib.import_module(package + ".service.app").create_app()
by_package = Counter()

async def lifespan():
    async with app.router.lifespan_context(app):
        snapshot = tracemalloc.take_snapshot()
        for stat in snapshot.statistics("filename"):
            name = stat.traceback[0].filename
            if "site-packages/" in name:
                name = name.split("site-packages/", 1)[1].split("/", 1)[0]
            elif "/src/" + package + "/" in name:
                name = package
            elif name.startswith("<"):
                name = "(code of the modules imported: importlib)"
            else:
                name = "(standard library)"
            by_package[name] += stat.size

asyncio.run(lifespan())
print(json.dumps({"total": sum(by_package.values()), "by_package": by_package.most_common()}))
"""

# The counterfactual: the same model saved as the template saves a model skops cannot save (a
# joblib pickle, with its manifest), so that the service starts without importing skops.io.
AS_PICKLE = """
import hashlib, importlib, json, shutil, sys
from pathlib import Path
import joblib
artifacts = importlib.import_module(sys.argv[1] + ".artifacts")
modelfile = importlib.import_module(sys.argv[1] + ".modelfile")  # the model file's format
source, target = Path(sys.argv[2]), Path(sys.argv[3])
target.mkdir()
for path in source.iterdir():
    if path.is_file() and path.name not in (*modelfile.MODEL_FILES, modelfile.MANIFEST_FILE):
        shutil.copy(path, target / path.name)
joblib.dump(artifacts.load(source).model, target / modelfile.JOBLIB_MODEL_FILE)
data = (target / modelfile.JOBLIB_MODEL_FILE).read_bytes()
manifest = {
    "version": modelfile.MANIFEST_VERSION,
    "file": modelfile.JOBLIB_MODEL_FILE,
    "format": "joblib",
    "skops_error": "benchmarks/service_startup.py: the same model, as a pickle",
    "sha256": hashlib.sha256(data).hexdigest(),
    "versions": modelfile.library_versions(),
}
(target / modelfile.MANIFEST_FILE).write_text(json.dumps(manifest))
"""

IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def cold_starts(
    contenders: dict[str, tuple[list[str], dict[str, str]]],
    single: dict[str, Any],
    runs: int,
    scratch: Path,
) -> dict[str, dict[str, Any]]:
    """Start each contender ``runs`` times in each mode, alternately; medians and every run."""
    empty_cache = scratch / "empty-pycache"
    empty_cache.mkdir(exist_ok=True)
    modes = {
        "compiled": {},
        "source": {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(empty_cache)},
    }
    samples: dict[str, list[dict[str, float]]] = {}
    for number in range(runs):
        for mode, mode_env in modes.items():
            for name, (command, env) in contenders.items():
                print(f"run {number + 1}/{runs}: {name} ({mode})", flush=True)
                log = scratch / f"{name}-{mode}.log"
                with started(name, command, {**env, **mode_env}, "/ready", log) as (
                    process,
                    url,
                    cold,
                ):
                    sample = {
                        "wall_s": cold,
                        "cpu_s": cpu_seconds(process.pid),
                        "rss_ready_mib": rss_mib(process.pid),
                    }
                    post(url + "/predict", single)
                    time.sleep(0.5)
                    sample["rss_idle_mib"] = rss_mib(process.pid)
                samples.setdefault(f"{name} ({mode})", []).append(sample)
    return {
        key: {
            **{metric: statistics.median(s[metric] for s in runs_) for metric in runs_[0]},
            "runs": runs_,
        }
        for key, runs_ in samples.items()
    }


def phases(python: Path, package: str, env: dict[str, str]) -> list[dict[str, Any]]:
    marks = json.loads(
        run([str(python), "-c", PHASES, package, ",".join(LIBRARIES)], None, **env).splitlines()[-1]
    )
    rows = []
    for (_, cpu_before, rss_before), (label, cpu, rss) in itertools.pairwise(marks):
        rows.append(
            {
                "phase": label,
                "cpu_ms": 1000 * (cpu - cpu_before),
                "rss_mib": rss,
                "rss_added_mib": rss - rss_before,
            }
        )
    rows.insert(
        0,
        {
            "phase": "interpreter",
            "cpu_ms": 1000 * marks[0][1],
            "rss_mib": marks[0][2],
            "rss_added_mib": marks[0][2],
        },
    )
    return rows


def imports(python: Path, package: str, env: dict[str, str]) -> dict[str, Any]:
    """-X importtime of what the service imports before it is ready (its modules, then what
    loading the model imports): by top-level package."""
    code = (
        f"import os, pathlib, uvicorn, {package}.entrypoints, {package}.service.app\n"
        f"from {package}.artifacts import load\n"
        "load(pathlib.Path(os.environ['ARTIFACTS_DIR']))"
    )
    completed = subprocess.run(
        [str(python), "-X", "importtime", "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_importtime(completed.stderr)


def parse_importtime(text: str) -> dict[str, Any]:
    """What ``-X importtime`` wrote: the modules imported, the self time by top-level package
    (largest 12) and the cumulative time of the NODES imported."""
    self_by_package: Counter[str] = Counter()
    cumulative: dict[str, float] = {}
    modules = 0
    for line in text.splitlines():
        match = IMPORT_LINE.match(line)
        if match is None:
            continue
        modules += 1
        own, total, name = int(match[1]), int(match[2]), match[4]
        self_by_package[name.split(".")[0]] += own
        if name in NODES:
            cumulative[name] = total / 1000
    return {
        "modules": modules,
        "total_self_ms": sum(self_by_package.values()) / 1000,
        "self_ms_by_package": [(k, v / 1000) for k, v in self_by_package.most_common(12)],
        "cumulative_ms": cumulative,
    }


def memory_map(pid: int) -> dict[str, float]:
    """The resident memory of one process from /proc/PID/smaps: private anonymous memory
    (Python's objects, native heaps) against pages mapped from files (shared libraries)."""
    found: Counter[str] = Counter()
    kind = "anonymous"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            path = fields[5] if len(fields) > 5 else ""
            kind = "files" if path.startswith("/") else "anonymous"
        elif fields[0] == "Rss:":
            found[kind] += int(fields[1]) / 1024
    return dict(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK)
    parser.add_argument("--runs", type=int, default=3, help="cold starts per server and mode")
    parser.add_argument("--workdir", type=Path, help="keep the project and venvs here")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "service_startup.json"
    )
    args = parser.parse_args()
    uv = find_uv()
    load_before = os.getloadavg()
    with scratch_directory(args.workdir, "service-startup-") as scratch:
        print(f"promoting {args.notebook.name}, installing and training ...", flush=True)
        project, name = prepare_project(args.notebook, scratch, uv)
        sys.path.insert(0, str(ROOT / "src"))
        from promote.planning import package_name

        package = package_name(name)
        venv_bin = project / ".venv" / "bin"
        artifacts = {"ARTIFACTS_DIR": str(project / "artifacts")}
        apps = scratch / "apps"
        apps.mkdir(exist_ok=True)
        (apps / "floor_app.py").write_text(FLOOR_APP)
        (apps / "minimal_app.py").write_text(MINIMAL_APP)
        uvicorn = [
            str(venv_bin / "python"),
            "-m",
            "uvicorn",
            "--app-dir",
            str(apps),
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--log-level",
            "warning",
        ]
        contenders = {
            "floor": ([*uvicorn, "floor_app:app"], {}),
            "minimal": (
                [*uvicorn, "minimal_app:app"],
                {"MODEL_FILE": str(scratch / "model.joblib")},
            ),
            "generated": ([str(venv_bin / f"{name}-serve")], artifacts),
            "generated, pickled model": (
                [str(venv_bin / f"{name}-serve")],
                {"ARTIFACTS_DIR": str(scratch / "pickled-artifacts")},
            ),
        }
        run(
            [str(venv_bin / "python"), "-c", AS_PICKLE, package, artifacts["ARTIFACTS_DIR"],
             str(scratch / "pickled-artifacts")]
        )  # fmt: skip
        single = json.loads((project / "artifacts" / "sample.json").read_text())["records"][0]
        starts = cold_starts(contenders, single, args.runs, scratch)
        print("profiling the phases, the imports and the memory ...", flush=True)
        phase_rows = phases(venv_bin / "python", package, artifacts)
        import_summary = imports(venv_bin / "python", package, artifacts)
        with started(
            "generated",
            [str(venv_bin / f"{name}-serve")],
            artifacts,
            "/ready",
            scratch / "generated-map.log",
        ) as (process, url, _):
            post(url + "/predict", single)
            time.sleep(0.5)
            mapped = memory_map(process.pid)
        traced = json.loads(
            run([str(venv_bin / "python"), "-c", TRACED, package], None, **artifacts).splitlines()[
                -1
            ]
        )
    summary = {
        "notebook": args.notebook.name,
        "runs": args.runs,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "cold_start": starts,
        "phases": phase_rows,
        "imports": import_summary,
        "memory_map_mib": mapped,
        "traced": traced,
    }
    print_tables(summary)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.json}")


def print_tables(summary: dict[str, Any]) -> None:
    print(f"\n{'server (bytecode)':<38}{'wall s':>8}{'CPU s':>8}{'RSS ready':>11}{'RSS idle':>10}")
    for key, row in summary["cold_start"].items():
        print(
            f"{key:<38}{row['wall_s']:>8.2f}{row['cpu_s']:>8.2f}"
            f"{row['rss_ready_mib']:>10.1f}M{row['rss_idle_mib']:>9.1f}M"
        )
    print(f"\n{'phase of the start (compiled)':<52}{'CPU ms':>8}{'+RSS MiB':>10}{'RSS MiB':>9}")
    for row in summary["phases"]:
        print(
            f"{row['phase'][:51]:<52}{row['cpu_ms']:>8.0f}"
            f"{row['rss_added_mib']:>10.1f}{row['rss_mib']:>9.1f}"
        )
    found = summary["imports"]
    print(
        f"\nimports: {found['modules']} modules, {found['total_self_ms']:.0f} ms under "
        "-X importtime; self time by package:"
    )
    print(", ".join(f"{name} {ms:.0f} ms" for name, ms in found["self_ms_by_package"]))
    print(
        "cumulative: "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in found["cumulative_ms"].items())
    )
    mapped = summary["memory_map_mib"]
    traced = summary["traced"]
    print(
        f"\nresident memory of the warmed service: {sum(mapped.values()):.1f} MiB, of which "
        f"anonymous (private) {mapped.get('anonymous', 0):.1f} MiB, mapped from files "
        f"(shared libraries) {mapped.get('files', 0):.1f} MiB"
    )
    print(
        f"traced by tracemalloc at /ready: {traced['total'] / 2**20:.1f} MiB; by package: "
        + ", ".join(f"{name} {size / 2**20:.1f}" for name, size in traced["by_package"][:8])
    )


if __name__ == "__main__":
    main()
