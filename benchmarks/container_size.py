"""The generated project's container image, size and build time, beside `mlflow models
build-docker` on the same model.

Run: `.venv/bin/python benchmarks/container_size.py [--notebook NB] [--runs N] [--no-mlflow]
[--keep-images] [--workdir DIR] [--json out.json]`. Needs podman set up as
`scripts/podman-setup.sh` does it (a containers.conf, and a base image built without a registry,
``localhost/python-base:3.11`` by default: ``--base-image``); see ../shared/CONTAINERS.md.

It promotes an example notebook (default: the breast cancer classifier), installs and trains the
project as ``make install train`` do, downloads its wheels (``make wheels``: the build is then
offline) and builds its image with podman as ``make image`` does (``--format docker``, the base
image as a build argument): once without the layer cache (the build time), then again with it
(a rebuild after a change to nothing). It reports the image's size, what its layers and its
site-packages hold, and runs it ``--runs`` times as production would (non-root, read-only root
file system, tmpfs on /tmp): the cold start from ``podman run`` to the first 200 of ``/ready``,
the CPU time and resident memory of the service's processes then (read on the host from /proc).

Then MLflow (``--no-mlflow`` skips it), installed with uv in a venv of its own, on the same model
saved with ``mlflow.sklearn.save_model``: ``mlflow models build-docker`` is tried against a
private ``podman system service`` (it needs ``python:<version>-slim`` from Docker Hub, which no
registry here serves: the failure is reported as it comes), and MLflow's own Dockerfile
(``mlflow models generate-dockerfile --env-manager local``, MLflow's slim variant: a
python-slim base, no Java, no virtualenv) is built with podman on the same local base image as
ours (its ``FROM`` replaced, a venv added for the ``python`` and ``pip`` its steps call; pip and
apt reach their indexes through the host's CA bundle, mounted for the build). That build is
labelled as what it is: MLflow's steps on our base, not the image build-docker makes. The figures
MLflow documents are printed beside, with their source.

Prints tables and writes JSON (default ``benchmarks/results/container_size.json``). Not a test:
figures vary by machine, load and network.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service_common import (
    EXAMPLES,
    ROOT,
    START_TIMEOUT,
    cpu_seconds,
    find_uv,
    free_port,
    get,
    post,
    rss_mib,
    scratch_directory,
)
from service_speed import prepare_mlflow, prepare_project

NOTEBOOK = EXAMPLES / "breast_cancer_classifier.ipynb"
BASE_IMAGE = "localhost/python-base:3.11"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_TIMEOUT = 1800
# What MLflow's maintainers wrote about the image build-docker makes, for a scikit-learn model.
DOCUMENTED = [
    {
        "figure": "more than 3.7 GB, a build of more than 5 minutes (before MLflow 2.10.1)",
        "source": "https://github.com/mlflow/mlflow/pull/10954",
        "quote": "few MB of scikit-learn model becomes > 3.7GB image after `build-image` "
        "command. Also the long building time (> 5 minutes)",
    },
    {
        "figure": "less than 1 GB for a small scikit-learn model (MLflow 2.10.1 and later: no "
        "Java, a python-slim base, no virtualenv in the image)",
        "source": "https://github.com/mlflow/mlflow/issues/2426#issuecomment (B-Step62, "
        "2024-02-01)",
        "quote": "the image size for a small scikit-learn model is now reduced to less than 1GB",
    },
]


def containers_conf() -> str | None:
    """$CONTAINERS_CONF, else the file scripts/podman-setup.sh writes (None if neither)."""
    configured = os.environ.get("CONTAINERS_CONF")
    if configured:
        return configured
    cache = os.environ.get("PROMOTE_PODMAN_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "promote-podman"
    )
    default = Path(cache) / "containers.conf"
    return str(default) if default.is_file() else None


def timed(
    command: list[str],
    cwd: Path | None = None,
    timeout: int = BUILD_TIMEOUT,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run a command: wall and CPU time (user + system of its children), and its output's
    tail when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "wall_s": timeout, "error": f"timeout after {timeout} s"}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = {
        "ok": completed.returncode == 0,
        "wall_s": time.perf_counter() - start,
        "cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
    }
    if completed.returncode != 0:
        lines = [line for line in (completed.stdout + completed.stderr).splitlines() if line]
        result["error"] = "\n".join(lines[-8:])
    result["stdout"] = completed.stdout + completed.stderr
    return result


def podman(*arguments: str) -> str:
    completed = subprocess.run(["podman", *arguments], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        sys.exit(f"podman {' '.join(arguments)} failed:\n{completed.stderr[-2000:]}")
    return completed.stdout


def image_size(reference: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", reference).strip())


def layers(reference: str) -> list[dict[str, Any]]:
    """The image's layers (podman history), largest first: size and the step that made it."""
    history = json.loads(podman("history", "--format", "json", reference))
    found = [
        {"size": int(entry.get("size") or 0), "step": _step(entry.get("CreatedBy") or "")}
        for entry in history
    ]
    return sorted(found, key=lambda layer: -layer["size"])


def _step(created_by: str) -> str:
    step = re.sub(r"^/bin/sh -c (#\(nop\) )?", "", created_by).strip()
    return re.sub(r"\s+", " ", step)[:90]


SITE_PACKAGES = """
import json, os, sys
root = sys.argv[1]
sizes = {}
for name in os.listdir(root):
    total = 0
    for folder, _, files in os.walk(os.path.join(root, name)):
        for file in files:
            path = os.path.join(folder, file)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    if os.path.isfile(os.path.join(root, name)):
        total = os.path.getsize(os.path.join(root, name))
    key = name.split("-")[0]  # numpy-2.4.6.dist-info and numpy.libs count with numpy
    key = key[: -len(".libs")] if key.endswith(".libs") else key
    sizes[key] = sizes.get(key, 0) + total
print(json.dumps(sorted(sizes.items(), key=lambda item: -item[1])))
"""


def site_packages(reference: str, venv: str = "/opt/venv") -> list[tuple[str, int]]:
    """The size of each entry of the image's site-packages, largest first."""
    path = f"{venv}/lib/python3.11/site-packages"
    output = podman("run", "--rm", "--entrypoint", "python3", reference, "-c", SITE_PACKAGES, path)
    return [(name, size) for name, size in json.loads(output)]


@contextlib.contextmanager
def container(reference: str, port: int) -> Iterator[str]:
    """Run the image as production does (non-root, read-only, tmpfs on /tmp); remove it after."""
    name = f"promote-bench-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp:rw,size=64m,mode=1777",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-p", f"127.0.0.1:{port}:8080", reference,
    )  # fmt: skip
    try:
        yield name
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "5", name], capture_output=True, check=False)


def cold_start(reference: str, single: dict[str, Any]) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    with container(reference, port) as name:
        while True:
            with contextlib.suppress(OSError):
                if get(url + "/ready") == 200:
                    break
            if time.perf_counter() - start > START_TIMEOUT:
                logs = subprocess.run(
                    ["podman", "logs", name], capture_output=True, text=True, check=False
                )
                sys.exit(f"the container is not ready in {START_TIMEOUT} s:\n{logs.stdout[-2000:]}")
            time.sleep(0.02)
        wall = time.perf_counter() - start
        pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).strip())
        sample = {"wall_s": wall, "cpu_s": cpu_seconds(pid), "rss_ready_mib": rss_mib(pid)}
        post(url + "/predict", single)
        time.sleep(0.5)
        sample["rss_idle_mib"] = rss_mib(pid)
    return sample


def build(project: Path, tag: str, base_image: str, cache: bool) -> dict[str, Any]:
    command = ["podman", "build", "--format", "docker", "--build-arg", f"BASE_IMAGE={base_image}"]
    command += [] if cache else ["--no-cache"]
    return timed([*command, "-t", tag, str(project)])


@contextlib.contextmanager
def podman_service(scratch: Path) -> Iterator[str]:
    """A private ``podman system service`` for the docker SDK; its DOCKER_HOST."""
    directory = Path(tempfile.mkdtemp(prefix="bench-podman-", dir="/tmp"))
    sock = directory / "podman.sock"
    with (scratch / "podman-service.log").open("w") as log:
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{sock}"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline and service.poll() is None:
            time.sleep(0.1)
        yield f"unix://{sock}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        shutil.rmtree(directory, ignore_errors=True)


def mlflow_images(
    project: Path, scratch: Path, uv: str, base_image: str, tag: str
) -> dict[str, Any]:
    """``mlflow models build-docker`` as documented, and MLflow's Dockerfile on our base."""
    model, note = prepare_mlflow(project, scratch, uv)
    found: dict[str, Any] = {"mlflow": note}
    if model is None:
        return found
    mlflow = str(scratch / "mlflow-venv" / "bin" / "mlflow")
    print("trying `mlflow models build-docker` (podman's Docker API) ...", flush=True)
    with podman_service(scratch) as docker_host:
        attempt = timed(
            [mlflow, "models", "build-docker", "-m", str(model), "-n", f"{tag}-build-docker"],
            env={"DOCKER_HOST": docker_host},
        )
    output = attempt.get("stdout", "") + "\n" + attempt.get("error", "")
    first = re.search(r"STEP 1/(\d+): FROM (\S+)", output)
    reason = re.search(
        r"^.*(pinging container registry|no such host|manifest unknown|Error).*$",
        output,
        re.MULTILINE,
    ) or re.search(r"^.*(registry|pull).*$", output, re.MULTILINE)
    found["build_docker"] = {
        **{key: value for key, value in attempt.items() if key != "stdout"},
        "from": first[2] if first else None,
        "steps": int(first[1]) if first else None,
        "reason": reason[0].strip()[:300] if reason and not attempt["ok"] else None,
    }
    if attempt["ok"]:
        reference = f"{tag}-build-docker"
        found["build_docker"]["image_bytes"] = image_size(reference)
    print("building MLflow's own Dockerfile on the local base image ...", flush=True)
    context = scratch / "mlflow-dockerfile"
    generated = timed(
        [mlflow, "models", "generate-dockerfile", "-m", str(model), "-d", str(context),
         "--env-manager", "local"]
    )  # fmt: skip
    if not generated["ok"]:
        found["dockerfile"] = {"ok": False, "error": generated.get("error")}
        return found
    dockerfile = (context / "Dockerfile").read_text()
    original_from = re.search(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    found["dockerfile_from"] = original_from[1] if original_from else None
    adapted = re.sub(
        r"^FROM \S+",
        f"FROM {base_image}\n# the local base has python3 only: a venv gives `python` and `pip`\n"
        "RUN python3 -m venv /opt/venv\nENV PATH=/opt/venv/bin:$PATH",
        dockerfile,
        count=1,
        flags=re.MULTILINE,
    )
    (context / "Dockerfile").write_text(adapted)
    mount = [f"--volume={CA_BUNDLE}:{CA_BUNDLE}:ro"] if CA_BUNDLE.is_file() else []
    result = timed(
        ["podman", "build", "--format", "docker", "--no-cache", *mount,
         "-t", f"{tag}-mlflow-dockerfile", str(context)]
    )  # fmt: skip
    entry = {key: value for key, value in result.items() if key != "stdout"}
    if result["ok"]:
        reference = f"{tag}-mlflow-dockerfile"
        entry["image_bytes"] = image_size(reference)
        entry["layers"] = layers(reference)[:6]
        entry["site_packages"] = site_packages(reference)[:12]
    found["dockerfile"] = entry
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK)
    parser.add_argument("--base-image", default=os.environ.get("PROMOTE_BASE_IMAGE", BASE_IMAGE))
    parser.add_argument("--runs", type=int, default=3, help="cold starts of the container")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--keep-images", action="store_true", help="do not remove the images")
    parser.add_argument("--workdir", type=Path, help="keep the project and venvs here")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "container_size.json"
    )
    args = parser.parse_args()
    if shutil.which("podman") is None:
        sys.exit(
            "podman is not installed: run scripts/podman-setup.sh (see ../shared/CONTAINERS.md)"
        )
    conf = containers_conf()
    if conf is None:
        sys.exit('no containers.conf for podman: run `eval "$(scripts/podman-setup.sh)"`')
    os.environ["CONTAINERS_CONF"] = conf
    exists = subprocess.run(["podman", "image", "exists", args.base_image], check=False)
    if exists.returncode != 0:
        sys.exit(f"no base image {args.base_image}: run scripts/podman-setup.sh, or --base-image")
    uv = find_uv()
    load_before = os.getloadavg()
    tag = f"localhost/promote-bench-{uuid.uuid4().hex[:8]}"
    created = [tag, f"{tag}-build-docker", f"{tag}-mlflow-dockerfile"]
    with scratch_directory(args.workdir, "container-size-") as scratch:
        try:
            summary = measure(args, scratch, uv, tag)
        finally:
            if not args.keep_images:
                for reference in created:
                    subprocess.run(
                        ["podman", "rmi", "-f", reference], capture_output=True, check=False
                    )
    summary["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "platform": platform.platform(),
        "podman": podman("--version").strip(),
    }
    print_tables(summary)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.json}")


def measure(args: argparse.Namespace, scratch: Path, uv: str, tag: str) -> dict[str, Any]:
    print(f"promoting {args.notebook.name}, installing and training ...", flush=True)
    project, _ = prepare_project(args.notebook, scratch, uv)
    print("downloading the wheels (make wheels) ...", flush=True)
    wheels = timed(["make", "wheels"], cwd=project)
    if not wheels["ok"]:
        sys.exit(f"make wheels failed:\n{wheels['error']}")
    wheel_bytes = sum(p.stat().st_size for p in (project / "wheels").glob("*.whl"))
    print("building the image without the layer cache ...", flush=True)
    cold = build(project, tag, args.base_image, cache=False)
    if not cold["ok"]:
        sys.exit(f"the image did not build:\n{cold['error']}")
    # A build with --no-cache does not always leave layers a later build reuses (here, the
    # first build after it ran every step again): the rebuild is the faster of two.
    print("building it again with the layer cache, twice ...", flush=True)
    cached = min(
        (build(project, tag, args.base_image, cache=True) for _ in range(2)),
        key=lambda result: result["wall_s"],
    )
    print("building it again after a change to src/ ...", flush=True)
    init = next((project / "src").glob("*/__init__.py"))
    init.write_text(init.read_text() + "\n# changed by benchmarks/container_size.py\n")
    changed = build(project, tag, args.base_image, cache=True)
    single = json.loads((project / "artifacts" / "sample.json").read_text())["records"][0]
    starts = []
    for number in range(args.runs):
        print(f"cold start {number + 1}/{args.runs} ...", flush=True)
        starts.append(cold_start(tag, single))
    summary: dict[str, Any] = {
        "notebook": args.notebook.name,
        "base_image": args.base_image,
        "base_image_bytes": image_size(args.base_image),
        "wheels": {"wall_s": wheels["wall_s"], "bytes": wheel_bytes},
        "build": {"wall_s": cold["wall_s"], "cpu_s": cold["cpu_s"]},
        "rebuild_cached": {"wall_s": cached["wall_s"], "cpu_s": cached["cpu_s"]},
        "rebuild_after_code_change": {"wall_s": changed["wall_s"], "cpu_s": changed["cpu_s"]},
        "image_bytes": image_size(tag),
        "layers": layers(tag)[:6],
        "site_packages": site_packages(tag)[:12],
        "cold_start": {
            "runs": starts,
            **{key: sorted(s[key] for s in starts)[len(starts) // 2] for key in starts[0]},
        },
        "documented_mlflow": DOCUMENTED,
    }
    if not args.no_mlflow:
        summary["mlflow"] = mlflow_images(project, scratch, uv, args.base_image, tag)
    return summary


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def print_tables(summary: dict[str, Any]) -> None:
    print(f"\nbase image {summary['base_image']}: {_mb(summary['base_image_bytes'])}")
    print(
        f"wheels (make wheels): {_mb(summary['wheels']['bytes'])} in "
        f"{summary['wheels']['wall_s']:.0f} s"
    )
    print(f"\n{'image':<58}{'size':>9}{'build wall':>12}{'build CPU':>11}")
    print(
        f"{'generated project (podman, no cache)':<58}{_mb(summary['image_bytes']):>9}"
        f"{summary['build']['wall_s']:>11.1f}s{summary['build']['cpu_s']:>10.1f}s"
    )
    print(
        f"{'generated project (podman, cached rebuild)':<58}{'':>9}"
        f"{summary['rebuild_cached']['wall_s']:>11.1f}s{summary['rebuild_cached']['cpu_s']:>10.1f}s"
    )
    print(
        f"{'generated project (podman, rebuild after a change to src/)':<58}{'':>9}"
        f"{summary['rebuild_after_code_change']['wall_s']:>11.1f}s"
        f"{summary['rebuild_after_code_change']['cpu_s']:>10.1f}s"
    )
    mlflow = summary.get("mlflow") or {}
    attempt = mlflow.get("build_docker")
    if attempt is not None:
        if attempt["ok"]:
            print(
                f"{'mlflow models build-docker':<58}{_mb(attempt['image_bytes']):>9}"
                f"{attempt['wall_s']:>11.1f}s{attempt['cpu_s']:>10.1f}s"
            )
        else:
            last = attempt.get("error", "").splitlines()[-1:] or ["?"]
            print(f"{'mlflow models build-docker':<58}{'failed':>9}  {last[0][:120]}")
            print(f"{'':<60}FROM {attempt.get('from')}: {attempt.get('reason')}")
    dockerfile = mlflow.get("dockerfile")
    if dockerfile is not None:
        label = "MLflow's Dockerfile on the same local base (not build-docker's)"
        if dockerfile.get("ok"):
            print(
                f"{label:<58}{_mb(dockerfile['image_bytes']):>9}"
                f"{dockerfile['wall_s']:>11.1f}s{dockerfile['cpu_s']:>10.1f}s"
            )
        else:
            last = (dockerfile.get("error") or "").splitlines()[-1:] or ["?"]
            print(f"{label:<58}{'failed':>9}  {last[0][:120]}")
    for documented in summary["documented_mlflow"]:
        print(f"{'mlflow build-docker, documented':<58}  {documented['figure']}")
        print(f"{'':<60}({documented['source']})")
    print("\nlargest layers of the generated image:")
    for layer in summary["layers"]:
        print(f"  {_mb(layer['size']):>8}  {layer['step']}")
    print("largest entries of its site-packages:")
    print("  " + ", ".join(f"{name} {_mb(size)}" for name, size in summary["site_packages"]))
    start = summary["cold_start"]
    print(
        f"\ncontainer cold start (median of {len(start['runs'])}): {start['wall_s']:.2f} s wall, "
        f"{start['cpu_s']:.2f} s CPU to /ready; resident memory {start['rss_ready_mib']:.0f} MiB "
        f"at /ready, {start['rss_idle_mib']:.0f} MiB warmed"
    )


if __name__ == "__main__":
    main()
