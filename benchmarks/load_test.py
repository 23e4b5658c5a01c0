"""Load test of the generated service: no errors, and memory that stays bounded, under
64 concurrent connections for 60 seconds.

Run: `.venv/bin/python benchmarks/load_test.py [--notebook NB] [--connections 64]
[--duration 60] [--mixed] [--workers N] [--env NAME=VALUE] [--max-growth-mib 50]
[--max-growth-percent 20] [--json FILE]` (``--help`` lists the rest). Needs wrk (Debian:
`apt-get install wrk`) and uv (in .venv).

It promotes an example notebook (default: the breast cancer classifier), installs the project
in a fresh venv with uv and trains it (as ``service_speed.py`` does: ``service_common.py``),
then starts the service the way production does: the project's ``<project>-serve`` (what
``make serve`` and the container's command run: uvicorn, ``WORKERS`` processes, 1 by
default), monitoring on (``--env`` changes a setting), ``/metrics`` scraped every
``--scrape`` seconds. From a second process, wrk (one thread) keeps ``--connections``
connections busy for ``--duration`` seconds with ``POST /predict``, cycling through the
project's sample records; with ``--mixed`` one request in four carries an invalid record (an
empty object, a record without its first field, a record whose values are objects, an
array), which must be answered 422. Each request carries an ``X-Request-ID`` naming its
body, which the service echoes, so that every answer is checked against what its body
should get.

Meanwhile the resident memory (VmRSS, from /proc) of the service's processes (the server
and its workers) is sampled every second. The report gives: requests, requests/s, wrk's
latency p50/p99, errors by kind (expected 422s, unexpected statuses, 5xx among them, socket
errors, timeouts), error lines in the service's log, and the memory before the load (started
and warmed), at its peak, after it (``--settle`` seconds later), and its growth: the median
of the last ``--window`` seconds of the load minus the median of the ``--window`` seconds
after the first ``--warmup`` seconds (and a least-squares slope over the same span).

Exit 1 when a request got an unexpected answer (a status its body should not get, a socket
error, a timeout), when the service logged an error, when a process of the service ended
(a worker that died, even if uvicorn replaced it), or when the growth exceeds
``--max-growth-mib`` (50) or ``--max-growth-percent`` (20) of the memory after warm-up,
whichever is tighter. Prints a table and writes JSON (by default
``benchmarks/results/load_test-<notebook stem>[-mixed][-wN].json``). Not a test: it takes
minutes, and the figures depend on the machine (the load generator shares its CPUs with the
service).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from service_common import (
    EXAMPLES,
    ROOT,
    find_uv,
    find_wrk,
    install_project,
    post,
    rss_by_pid,
    scraping,
    scratch_directory,
    started,
    wrk_json,
)

NOTEBOOK = EXAMPLES / "breast_cancer_classifier.ipynb"
RESULTS = ROOT / "benchmarks" / "results"
MAX_VALID_BODIES = 20  # sample records cycled through

# Bodies: one JSON document a line in $WRK_BODIES; the status each should get in
# $WRK_EXPECT. Each request's X-Request-ID names its body; the service echoes it, and
# `response` counts the answers by "expected:got".
WRK_SCRIPT = """
local bodies, expects = {}, {}
for line in io.lines(os.getenv("WRK_BODIES")) do table.insert(bodies, line) end
for code in string.gmatch(os.getenv("WRK_EXPECT"), "%d+") do
  table.insert(expects, tonumber(code))
end
local headers = {["Content-Type"] = "application/json"}
local sent = 0
statuses = {}

request = function()
  sent = sent + 1
  local index = (sent - 1) % #bodies + 1
  headers["X-Request-ID"] = string.format("load-%d-%d", index, sent)
  return wrk.format("POST", nil, headers, bodies[index])
end

response = function(status, response_headers, body)
  local id = response_headers["x-request-id"] or response_headers["X-Request-ID"] or ""
  local index = tonumber(string.match(id, "^load%-(%d+)%-"))
  local expected = index and expects[index] or 0
  local key = expected .. ":" .. status
  statuses[key] = (statuses[key] or 0) + 1
end

local threads = {}
setup = function(thread) table.insert(threads, thread) end

done = function(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get("statuses")) do
      table.insert(parts, string.format('"%s": %d', key, count))
    end
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, '
    .. '"write_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
    .. '"mean_us": %.1f, "statuses": {%s}}\\n',
    summary.requests, summary.duration, errors.connect, errors.read, errors.write,
    errors.timeout, latency:percentile(50), latency:percentile(99), latency.max,
    latency.mean, table.concat(parts, ", ")))
end
"""


@dataclass(frozen=True)
class Body:
    label: str
    document: Any
    expect: int


@dataclass(frozen=True)
class Growth:
    """Memory growth under load, from (seconds since the load started, MiB) samples."""

    baseline_mib: float  # median of the window after warm-up
    final_mib: float  # median of the last window
    growth_mib: float
    growth_percent: float
    slope_mib_per_min: float  # least squares over warm-up end .. load end


def memory_growth(
    samples: Sequence[tuple[float, float]], warmup: float, window: float, duration: float
) -> Growth:
    """Growth between the ``window`` seconds after ``warmup`` and the last ``window``
    seconds of a ``duration``-second load (medians, so one spike does not decide)."""
    if warmup + 2 * window > duration:
        raise ValueError(
            f"a {duration:g} s load leaves no two {window:g} s windows after a {warmup:g} s "
            "warm-up: lengthen --duration or shorten --warmup / --window"
        )
    first = [mib for at, mib in samples if warmup <= at < warmup + window]
    last = [mib for at, mib in samples if duration - window <= at <= duration]
    if not first or not last:
        raise ValueError("no memory sample in the first or the last window")
    baseline, final = statistics.median(first), statistics.median(last)
    span = [(at, mib) for at, mib in samples if warmup <= at <= duration]
    times, mibs = [at for at, _ in span], [mib for _, mib in span]
    slope = statistics.linear_regression(times, mibs).slope if len(span) > 1 else 0.0
    return Growth(
        baseline_mib=baseline,
        final_mib=final,
        growth_mib=final - baseline,
        growth_percent=100 * (final - baseline) / baseline,
        slope_mib_per_min=60 * slope,
    )


def growth_bound(baseline_mib: float, max_mib: float, max_percent: float) -> float:
    """The growth allowed: ``max_mib`` or ``max_percent`` of the baseline, the tighter."""
    return min(max_mib, baseline_mib * max_percent / 100)


def classify(statuses: Mapping[str, int]) -> dict[str, int]:
    """wrk's ``"expected:got"`` counts as: ok (2xx for a valid body), expected 422s, and
    unexpected answers (any other pair), with the 5xx among them."""
    kinds = {"ok": 0, "expected_422": 0, "unexpected": 0, "server_errors": 0}
    for key, count in statuses.items():
        expected, got = (int(part) for part in key.split(":"))
        if expected == 200 and 200 <= got < 300:
            kinds["ok"] += count
        elif expected == 422 and got == 422:
            kinds["expected_422"] += count
        else:
            kinds["unexpected"] += count
        if got >= 500:
            kinds["server_errors"] += count
    return kinds


def failures(report: Mapping[str, Any], max_mib: float, max_percent: float) -> list[str]:
    """Why the run fails (empty: it passes)."""
    found = []
    errors = report["errors"]
    if errors["unexpected"]:
        pairs = ", ".join(
            f"{count} x {key.split(':')[1]} for a body that should get {key.split(':')[0]}"
            for key, count in sorted(report["statuses"].items())
            if key not in {"200:200", "422:422"}
        )
        found.append(f"{errors['unexpected']} unexpected answers ({pairs})")
    sockets = errors["connect"] + errors["read"] + errors["write"]
    if sockets:
        found.append(f"{sockets} socket errors")
    if errors["timeouts"]:
        found.append(f"{errors['timeouts']} timeouts")
    if report["requests"] == 0:
        found.append("no request was answered")
    if report["log_errors"]:
        found.append(f"the service logged {report['log_errors']} errors")
    if not report["service_alive_after"]:
        found.append("the service exited during the load")
    if report["processes"]["replaced"]:
        found.append(
            f"{report['processes']['replaced']} of the service's processes ended during the "
            "load (a worker died)"
        )
    memory = report["memory"]
    bound = growth_bound(memory["growth"]["baseline_mib"], max_mib, max_percent)
    if memory["growth"]["growth_mib"] > bound:
        found.append(
            f"memory grew by {memory['growth']['growth_mib']:.1f} MiB under load, "
            f"more than the bound of {bound:.1f} MiB"
        )
    return found


def bodies(records: Sequence[Mapping[str, Any]], mixed: bool) -> list[Body]:
    """The sample records (valid, 200), and with ``mixed`` invalid ones (422) every 4th."""
    valid = [
        Body(f"sample record {index}", dict(record), 200)
        for index, record in enumerate(records[:MAX_VALID_BODIES])
    ]
    if not mixed:
        return valid
    record = dict(records[0])
    first = next(iter(record))
    invalid = [
        Body("empty object", {}, 422),
        Body(f"record without {first!r}", {k: v for k, v in record.items() if k != first}, 422),
        Body("values are objects", {key: {"value": 1} for key in record}, 422),
        Body("an array, not an object", [record], 422),
    ]
    cycle = max(len(valid), len(invalid)) * 3
    mixed_bodies = []
    for index in range(cycle):
        mixed_bodies.append(valid[index % len(valid)])
        if index % 3 == 2:
            mixed_bodies.append(invalid[(index // 3) % len(invalid)])
    return mixed_bodies


class MemorySampler:
    """Sample the resident memory of a process tree every ``period`` seconds, in a thread."""

    def __init__(self, pid: int, period: float = 1.0) -> None:
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, float, int]] = []  # (monotonic time, MiB, processes)
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            found = rss_by_pid(self.pid)
            self.pids.update(found)
            self.samples.append((time.monotonic(), sum(found.values()), len(found)))
            if self._stop.wait(self.period):
                return

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def log_errors(log: Path) -> list[str]:
    """Lines of the service's log at level ERROR or above, or that are not JSON (a
    traceback printed past the logging)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            found.append(line)
            continue
        if not isinstance(entry, dict) or entry.get("level") in {"ERROR", "CRITICAL"}:
            found.append(line)
    return found


def load_test(
    project: Path, name: str, scratch: Path, wrk: str, args: argparse.Namespace
) -> dict[str, Any]:
    records = json.loads((project / "artifacts" / "sample.json").read_text())["records"]
    chosen = bodies(records, args.mixed)
    body_file = scratch / "bodies.jsonl"
    body_file.write_text("".join(json.dumps(body.document) + "\n" for body in chosen))
    script = scratch / "load.lua"
    script.write_text(WRK_SCRIPT)
    env = {
        "ARTIFACTS_DIR": str(project / "artifacts"),
        "WORKERS": str(args.workers),
        **dict(item.split("=", 1) for item in args.env),
    }
    log = scratch / "service.log"
    command = [str(project / ".venv" / "bin" / f"{name}-serve")]
    with started(name, command, env, "/ready", log) as (process, url, cold):
        # Warm up, and check that each body gets what it should before loading.
        wrong = []
        for body in {body.label: body for body in chosen}.values():
            status = post(url + "/predict", body.document)
            if status != body.expect:
                wrong.append(f"{body.label}: {status}, not {body.expect}")
        time.sleep(1.0)
        before = sum(rss_by_pid(process.pid).values())
        with MemorySampler(process.pid) as sampler, scraping(url, args.scrape):
            start = time.monotonic()
            result = wrk_json(
                wrk,
                url + "/predict",
                script,
                args.connections,
                args.duration,
                args.timeout,
                WRK_BODIES=str(body_file),
                WRK_EXPECT=",".join(str(body.expect) for body in chosen),
            )
            time.sleep(args.settle)
        after = sum(rss_by_pid(process.pid).values())
        alive = process.poll() is None
        pids_at_end = set(rss_by_pid(process.pid))
    samples = [(at - start, mib) for at, mib, _ in sampler.samples]
    during = [mib for at, mib in samples if 0 <= at <= args.duration]
    growth = memory_growth(samples, args.warmup, args.window, args.duration)
    seconds = result["duration_us"] / 1e6
    kinds = classify(result["statuses"])
    logged = log_errors(log)
    return {
        "project": name,
        "cold_start_s": cold,
        "bodies": [{"label": body.label, "expect": body.expect} for body in chosen],
        "probes_wrong": wrong,
        "requests": result["requests"],
        "requests_per_s": result["requests"] / seconds,
        "latency_ms": {
            "p50": result["p50_us"] / 1000,
            "p99": result["p99_us"] / 1000,
            "max": result["max_us"] / 1000,
            "mean": result["mean_us"] / 1000,
        },
        "statuses": result["statuses"],
        "errors": {
            **kinds,
            "connect": result["connect_errors"],
            "read": result["read_errors"],
            "write": result["write_errors"],
            "timeouts": result["timeouts"],
        },
        "log_errors": len(logged),
        "log_error_lines": logged[:20],
        "service_alive_after": alive,
        "processes": {
            "seen": len(sampler.pids),
            "at_end": len(pids_at_end),
            "replaced": len(sampler.pids - pids_at_end),
        },
        "memory": {
            "before_mib": before,
            "peak_mib": max(during, default=before),
            "after_mib": after,
            "growth": asdict(growth),
            "samples": [[round(at, 2), round(mib, 2)] for at, mib in samples],
        },
    }


def print_report(report: Mapping[str, Any], bound: float, found: Sequence[str]) -> None:
    errors, memory, latency = report["errors"], report["memory"], report["latency_ms"]
    growth = memory["growth"]
    rows = [
        ("project", report["project"]),
        ("load", f"{report['connections']} connections, {report['duration_s']} s, POST /predict"),
        ("bodies", f"{len(report['bodies'])} ({'mixed' if report['mixed'] else 'valid only'})"),
        ("workers", str(report["workers"])),
        ("service settings", " ".join(report["service_env"]) or "defaults"),
        ("requests", f"{report['requests']}"),
        ("requests/s", f"{report['requests_per_s']:.1f}"),
        (
            "latency p50 / p99 / max",
            f"{latency['p50']:.0f} / {latency['p99']:.0f} / {latency['max']:.0f} ms",
        ),
        ("2xx for valid bodies", f"{errors['ok']}"),
        ("422 for invalid bodies", f"{errors['expected_422']}"),
        ("unexpected answers", f"{errors['unexpected']} (5xx: {errors['server_errors']})"),
        (
            "socket errors",
            f"connect {errors['connect']}, read {errors['read']}, write {errors['write']}",
        ),
        ("timeouts", f"{errors['timeouts']}"),
        ("error lines in the log", f"{report['log_errors']}"),
        (
            "RSS before / peak / after",
            f"{memory['before_mib']:.1f} / {memory['peak_mib']:.1f} / "
            f"{memory['after_mib']:.1f} MiB",
        ),
        (
            "RSS after warm-up / at end",
            f"{growth['baseline_mib']:.1f} / "
            f"{growth['final_mib']:.1f} MiB (medians of {report['window_s']} s)",
        ),
        (
            "growth",
            f"{growth['growth_mib']:+.1f} MiB ({growth['growth_percent']:+.1f}%), "
            f"bound {bound:.1f} MiB; slope {growth['slope_mib_per_min']:+.2f} MiB/min",
        ),
        (
            "machine",
            f"{report['machine']['cpus']} CPUs, load average at end "
            f"{report['machine']['load_average_at_end'][0]:.1f}",
        ),
        ("verdict", "pass" if not found else "FAIL: " + "; ".join(found)),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--mixed", action="store_true", help="one request in 4 invalid (422)")
    parser.add_argument("--workers", type=int, default=1, help="the service's WORKERS")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the service (repeatable), e.g. MONITORING_ENABLED=false",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="wrk's request timeout, s")
    parser.add_argument("--scrape", type=float, default=5.0, help="seconds between /metrics")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before the baseline")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of each median")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before 'after'")
    parser.add_argument("--max-growth-mib", type=float, default=50.0)
    parser.add_argument("--max-growth-percent", type=float, default=20.0)
    parser.add_argument("--workdir", type=Path, help="keep the project here")
    parser.add_argument("--json", type=Path, help="default: benchmarks/results/load_test-...")
    args = parser.parse_args()
    if args.warmup + 2 * args.window > args.duration:
        parser.error("--duration must cover --warmup and two --window")
    if any("=" not in item for item in args.env):
        parser.error("--env takes NAME=VALUE")
    wrk, uv = find_wrk(), find_uv()
    with scratch_directory(args.workdir, "load-test-") as scratch:
        print(f"promoting {args.notebook.name}, installing and training ...", flush=True)
        project, name = install_project(args.notebook, scratch, uv)
        print(
            f"serving {name} ({args.workers} worker(s)); {args.connections} connections for "
            f"{args.duration} s ...",
            flush=True,
        )
        report = load_test(project, name, scratch, wrk, args)
    report = {
        "notebook": args.notebook.name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "connections": args.connections,
        "duration_s": args.duration,
        "mixed": args.mixed,
        "workers": args.workers,
        "service_env": args.env,
        "warmup_s": args.warmup,
        "window_s": args.window,
        "max_growth_mib": args.max_growth_mib,
        "max_growth_percent": args.max_growth_percent,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        **report,
    }
    found = failures(report, args.max_growth_mib, args.max_growth_percent)
    found += [f"before the load, {wrong}" for wrong in report["probes_wrong"]]
    report["failures"] = found
    bound = growth_bound(
        report["memory"]["growth"]["baseline_mib"], args.max_growth_mib, args.max_growth_percent
    )
    print()
    print_report(report, bound, found)
    target = args.json or RESULTS / (
        f"load_test-{args.notebook.stem}{'-mixed' if args.mixed else ''}"
        f"{f'-w{args.workers}' if args.workers != 1 else ''}.json"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {target}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
