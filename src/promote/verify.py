"""``promote verify``: build a generated project's image, run it as production would, call it.

The image is built with the docker SDK from the project's own Dockerfile (its ``BASE_IMAGE``
build argument from ``--base-image``; ``wheels/``, when ``make wheels`` filled it, makes the
build offline). The container then runs the way the project's Kubernetes manifest runs it: as
the image's non-root user, with a read-only root file system and a small tmpfs on ``/tmp``, all
capabilities dropped and no privilege escalation. The probes are the calls a platform makes
before sending traffic: ``/health`` and ``/ready`` (timed from ``run``: the cold start), one
``POST /predict`` with the service's own OpenAPI example (compared with the prediction recorded
at training in ``artifacts/sample.json``), ``/version`` (the model's sha256), ``/metrics`` and a
wrong-typed field, which must get a 422 naming it.

The engine is the one the docker SDK finds (``DOCKER_HOST``, else the default socket); when none
answers and podman is installed, a private ``podman system service`` on a socket in a temporary
directory serves the Docker API for the duration of the run. The container is always removed;
the image stays, tagged as ``make image`` tags it, so what was verified is what you push.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml

from promote.errors import PromoteError

__all__ = [
    "Check",
    "Engine",
    "Verification",
    "VerifyError",
    "connect",
    "healthcheck",
    "verify",
]

BUILD_TIMEOUT = 1800  # seconds the engine may take to build (an HTTP timeout of the SDK)
READY_TIMEOUT = 60.0
SERVICE_START_TIMEOUT = 30.0  # seconds for a private podman service to answer
PROBE_API_VERSION = "1.24"  # any: only used to ask the engine for its own
LOG_LINES = 15  # lines of a build or container log quoted in an error
TMPFS = {"/tmp": "rw,size=64m,mode=1777"}  # as the Kubernetes manifest's emptyDir on /tmp
ROOT_USERS = frozenset({"", "root", "0", "0:0", "root:root"})

Progress = Callable[[str], None]


class VerifyError(PromoteError):
    """The image could not be built, started or probed; the message says what to do."""

    def __init__(self, project: Path, reason: str) -> None:
        super().__init__(f"Cannot verify {project}: {reason}")
        self.project = project
        self.reason = reason


@dataclass(frozen=True)
class Check:
    """One probe of the running container: what was asked, whether it held, what was seen."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Verification:
    """What ``verify`` built, measured and saw."""

    project: Path
    image: str
    engine: str
    build_seconds: float
    image_bytes: int
    user: str
    offline: bool
    cold_start_seconds: float
    prediction: Any
    checks: tuple[Check, ...]
    logs: str = ""  # the container's last log lines, kept when a check failed

    @property
    def ok(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)


@dataclass
class Engine:
    """A docker SDK client and a description of what answers it."""

    client: docker.DockerClient
    name: str

    @property
    def podman(self) -> bool:
        return "podman" in self.name.lower()


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def connect(timeout: int = BUILD_TIMEOUT, project: Path | None = None) -> Iterator[Engine]:
    """A client of the engine ``DOCKER_HOST`` (or the default socket) names; else of a private
    podman service, stopped on exit. ``VerifyError`` when neither can be had."""
    where = project or Path.cwd()
    host = os.environ.get("DOCKER_HOST")
    client, reason = _from_env(timeout)
    if client is not None:
        try:
            how = f"at DOCKER_HOST={host}" if host else "at the default socket"
            yield Engine(client, _describe(client, how))
        finally:
            client.close()
        return
    if host:
        raise VerifyError(
            where,
            f"no container engine answers at DOCKER_HOST={host} ({reason}). Start that engine "
            "(for podman: `podman system service --time=0 unix:///tmp/podman.sock &`), or unset "
            "DOCKER_HOST to let promote use the default Docker socket or start podman itself.",
        )
    podman = shutil.which("podman")
    if podman is None:
        raise VerifyError(
            where,
            f"no container engine: no Docker engine answers ({reason}) and podman is not "
            "installed. Install and start Docker (https://docs.docker.com/engine/install/), or "
            "install podman (`apt-get install podman`; promote then starts it by itself), or "
            "set DOCKER_HOST to the socket of a running engine.",
        )
    with _podman_service(podman, timeout, where) as client:
        yield Engine(client, _describe(client, "a podman service promote started"))


def _from_env(timeout: int, base_url: str | None = None) -> tuple[Any, str]:
    """A client of the engine ``docker.from_env()`` (or ``base_url``) finds, if it answers;
    else ``None`` and why not.

    The SDK asks the engine its API version while constructing a client, and leaks the socket
    when a unix socket refuses the connection (docker/docker-py pull request 3356, open in
    docker 7.2); so a unix socket is first tried here, then a
    client with a fixed version (which sends nothing until asked) asks, and is closed whatever
    the answer.
    """
    options: dict[str, Any] = {"timeout": timeout, "version": PROBE_API_VERSION}
    try:
        if base_url is None:
            probe = docker.from_env(**options)
        else:
            probe = docker.DockerClient(base_url=base_url, **options)
    except docker.errors.DockerException as error:  # a malformed DOCKER_HOST, for example
        return None, _first_line(error)
    try:
        refused = _unix_socket_refuses(probe)
        if refused:
            return None, refused
        api_version = str(probe.api.version(api_version=False)["ApiVersion"])
    except (docker.errors.DockerException, OSError, KeyError, TypeError, ValueError) as error:
        return None, _first_line(error)
    finally:
        probe.close()
    options["version"] = api_version
    if base_url is None:
        return docker.from_env(**options), ""
    return docker.DockerClient(base_url=base_url, **options), ""


def _unix_socket_refuses(client: Any) -> str:
    """Why the client's unix socket refuses a connection ("" if it accepts or is not one)."""
    adapter = client.api.get_adapter(client.api.base_url)
    path = getattr(adapter, "socket_path", None)
    if not isinstance(path, str):
        return ""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        try:
            probe.connect(path)
        except OSError as error:
            return f"{path}: {error.strerror or error}"
    return ""


def _describe(client: docker.DockerClient, how: str) -> str:
    try:
        version = client.version()
    except (docker.errors.DockerException, OSError):
        return how
    components = version.get("Components") or [{}]
    name = components[0].get("Name") or "engine"
    return f"{name} {version.get('Version', '?')}, {how}"


@contextlib.contextmanager
def _podman_service(podman: str, timeout: int, where: Path) -> Iterator[docker.DockerClient]:
    """``podman system service`` on a socket of its own, for the duration of the block."""
    # Unix socket paths are limited to about 100 bytes: a short directory, in /tmp if it exists.
    base = "/tmp" if Path("/tmp").is_dir() else None
    directory = Path(tempfile.mkdtemp(prefix="promote-podman-", dir=base))
    socket_path = directory / "podman.sock"
    log = directory / "service.log"
    client: docker.DockerClient | None = None
    with log.open("w") as output:
        service = subprocess.Popen(
            [podman, "system", "service", "--time=0", f"unix://{socket_path}"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        client = _wait_for_podman(service, socket_path, log, timeout, where)
        yield client
    finally:
        if client is not None:
            client.close()
        service.terminate()
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_for_podman(
    service: subprocess.Popen[bytes], socket_path: Path, log: Path, timeout: int, where: Path
) -> Any:
    deadline = time.monotonic() + SERVICE_START_TIMEOUT
    while True:
        if service.poll() is not None or time.monotonic() > deadline:
            raise VerifyError(
                where,
                "podman is installed but `podman system service` did not start "
                f"({_tail(log.read_text(errors='replace')) or 'no output'}). Check that "
                "`podman info` works (see CONTAINERS_CONF), or set DOCKER_HOST to a running "
                "engine.",
            )
        if socket_path.exists():
            client, _reason = _from_env(timeout, f"unix://{socket_path}")
            if client is not None:
                return client
        time.sleep(0.1)


def healthcheck(client: docker.DockerClient, reference: str) -> Any:
    """The image's HEALTHCHECK. podman's Docker-compatible inspect leaves it out, so then ask
    podman's own API on the same socket (a Docker engine has it in the compatible one)."""
    config = client.images.get(reference).attrs.get("Config") or {}
    if config.get("Healthcheck"):
        return config["Healthcheck"]
    with contextlib.suppress(docker.errors.DockerException, OSError, ValueError):
        response = client.api.get(f"{client.api.base_url}/v4.0.0/libpod/images/{reference}/json")
        if response.status_code == 200:
            return response.json().get("Healthcheck")
    return None


# ---------------------------------------------------------------------------------------------
# The project
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Project:
    path: Path
    name: str
    sample: dict[str, Any]
    model_sha256: str | None
    offline: bool


def _read_project(directory: Path) -> _Project:
    project = directory.resolve()
    if not project.is_dir():
        raise VerifyError(directory, "it is not a directory. Name a project's directory.")
    answers_file = project / ".copier-answers.yml"
    if not answers_file.is_file():
        raise VerifyError(
            directory,
            "it has no .copier-answers.yml, so it is not a project promote generated. Run "
            "`promote verify DIR` on the directory `promote NOTEBOOK -o DIR` or `promote new "
            "DIR` wrote.",
        )
    if not (project / "Dockerfile").is_file():
        raise VerifyError(directory, "it has no Dockerfile to build the image from.")
    try:
        answers = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise VerifyError(
            directory, f".copier-answers.yml is not valid YAML ({_first_line(error)})."
        ) from error
    name = answers.get("project_name") if isinstance(answers, dict) else None
    artifacts = project / "artifacts"
    manifest = _json_file(artifacts / "model.json")
    if manifest is None:
        raise VerifyError(
            directory,
            f"there is no trained model in {artifacts} (model.json), and the image serves the "
            f"model trained beforehand. Run `make install train` in {directory} first.",
        )
    sample = _json_file(artifacts / "sample.json") or {}
    return _Project(
        path=project,
        name=str(name or project.name),
        sample=sample if isinstance(sample, dict) else {},
        model_sha256=manifest.get("sha256") if isinstance(manifest, dict) else None,
        offline=any((project / "wheels").glob("*.whl")),
    )


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Build, run, probe
# ---------------------------------------------------------------------------------------------


def verify(
    directory: Path,
    *,
    base_image: str | None = None,
    tag: str | None = None,
    no_cache: bool = False,
    ready_timeout: float = READY_TIMEOUT,
    progress: Progress | None = None,
) -> Verification:
    """Build the project's image, run it read-only as non-root, probe it, remove the container.

    Raises ``VerifyError`` when there is no engine, the build fails, or the container does not
    become ready; a probe that fails is a failed ``Check`` in the result.
    """
    say = progress or (lambda _message: None)
    project = _read_project(directory)
    with connect(project=directory) as engine:
        # The name `make image` gives it: podman's CLI puts a short name under localhost/,
        # where its Docker API would put it under docker.io/library/.
        image_tag = tag or ("localhost/" * engine.podman) + f"{project.name.lower()}:latest"
        say(f"building {image_tag} with {engine.name}" + (" (offline: wheels/)" * project.offline))
        started = time.monotonic()
        image = _build(engine.client, project, directory, image_tag, base_image, no_cache)
        build_seconds = time.monotonic() - started
        config = image.attrs.get("Config") or {}
        user = str(config.get("User") or "")
        if user in ROOT_USERS:
            raise VerifyError(
                directory,
                f"the image {image_tag} runs as root (no USER in the Dockerfile's last stage). "
                "Add `USER 10001:10001` after creating that user, as the template's Dockerfile "
                "does.",
            )
        health = healthcheck(engine.client, image.id)
        checks = [Check("HEALTHCHECK", bool(health), "in the image" if health else "missing")]
        say(f"running {image_tag} as user {user}, read-only, tmpfs on /tmp")
        run = _run_and_probe(engine.client, image, user, project, directory, ready_timeout)
        return Verification(
            project=project.path,
            image=image_tag,
            engine=engine.name,
            build_seconds=build_seconds,
            image_bytes=int(image.attrs.get("Size") or 0),
            user=user,
            offline=project.offline,
            cold_start_seconds=run.cold_start,
            prediction=run.prediction,
            checks=(*checks, *run.checks),
            logs=run.logs,
        )


def _build(
    client: docker.DockerClient,
    project: _Project,
    directory: Path,
    tag: str,
    base_image: str | None,
    no_cache: bool,
) -> Any:
    buildargs = {"BASE_IMAGE": base_image} if base_image else {}
    try:
        image, _ = client.images.build(
            path=str(project.path),
            tag=tag,
            buildargs=buildargs,
            nocache=no_cache,
            rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as error:
        lines = "".join(str(c.get("stream") or c.get("error") or "") for c in error.build_log)
        hint = (
            ""
            if project.offline
            else " If the build cannot reach the package index, download the wheels first "
            "(`make wheels`): the Dockerfile then installs from wheels/ with no network."
        )
        raise VerifyError(
            directory,
            f"the image did not build ({_first_line(error.msg)}). The build log ends with:\n"
            f"{_tail(lines)}\n{hint.strip()}".rstrip(),
        ) from error
    except (docker.errors.DockerException, OSError) as error:
        raise VerifyError(
            directory, f"the engine failed while building the image: {_first_line(error)}."
        ) from error
    image.reload()
    return image


@dataclass(frozen=True)
class _Run:
    cold_start: float
    prediction: Any
    checks: tuple[Check, ...]
    logs: str


def _run_and_probe(
    client: docker.DockerClient,
    image: Any,
    user: str,
    project: _Project,
    directory: Path,
    ready_timeout: float,
) -> _Run:
    config = image.attrs.get("Config") or {}
    environment = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    container_port = int(environment.get("PORT", "8080"))
    port = _free_port()
    started = time.monotonic()
    container = None
    try:
        container = client.containers.run(
            image.id,
            detach=True,
            user=user,
            read_only=True,
            tmpfs=TMPFS,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ports={f"{container_port}/tcp": ("127.0.0.1", port)},
        )
        url = f"http://127.0.0.1:{port}"
        _wait_ready(container, url, started + ready_timeout, directory, ready_timeout)
        cold_start = time.monotonic() - started
        prediction, checks = _probe(url, project)
        logs = "" if all(c.passed for c in checks) else _logs(container)
        return _Run(cold_start, prediction, tuple(checks), logs)
    except docker.errors.DockerException as error:
        logs = _logs(container) if container is not None else ""
        raise VerifyError(
            directory,
            f"the engine could not run the image ({_first_line(error)})."
            + (f" The container's last log lines:\n{logs}" if logs else ""),
        ) from error
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.DockerException, OSError):
                container.remove(force=True)


def _wait_ready(container: Any, url: str, deadline: float, directory: Path, limit: float) -> None:
    """Poll /health, then /ready, until /ready answers 200; stop at an exit or the deadline."""
    healthy = False
    while True:
        container.reload()
        if container.status in ("exited", "dead"):
            code = container.attrs.get("State", {}).get("ExitCode")
            raise VerifyError(
                directory,
                f"the container stopped (exit code {code}) before /ready answered. Its last "
                f"log lines:\n{_logs(container)}",
            )
        with contextlib.suppress(OSError):
            healthy = healthy or _request("GET", f"{url}/health")[0] == 200
            if healthy and _request("GET", f"{url}/ready")[0] == 200:
                return
        if time.monotonic() > deadline:
            what = "/ready" if healthy else "/health"
            raise VerifyError(
                directory,
                f"the container did not answer {what} within {limit:g} s (raise it with "
                f"--timeout if loading the model takes longer). Its last log lines:\n"
                f"{_logs(container)}",
            )
        time.sleep(0.1)


def _probe(url: str, project: _Project) -> tuple[Any, list[Check]]:
    """The calls a platform makes before sending traffic; each a ``Check``."""
    checks: list[Check] = []
    openapi = _get_json(f"{url}/openapi.json")
    body_schema = _predict_schema(openapi)
    records = project.sample.get("records") or []
    record = body_schema.get("example")
    if not isinstance(record, dict):
        record = records[0] if records and isinstance(records[0], dict) else None
    prediction: Any = None
    if record is None:
        checks.append(
            Check(
                "POST /predict",
                False,
                "no example record: neither the OpenAPI document nor artifacts/sample.json has one",
            )
        )
    else:
        prediction, check = _predict(url, record, project)
        checks.append(check)
        checks.append(_wrong_type(url, record, body_schema))
    checks.append(_expect(url, "/health", lambda body: body.get("status") == "ok"))
    checks.append(_version(url, project))
    checks.append(_metrics(url))
    return prediction, checks


def _predict(url: str, record: dict[str, Any], project: _Project) -> tuple[Any, Check]:
    try:
        status, text = _request("POST", f"{url}/predict", record)
    except OSError as error:
        return None, Check("POST /predict", False, f"no answer ({error})")
    answer = _loads(text)
    if status != 200 or not isinstance(answer, dict) or "prediction" not in answer:
        return answer, Check("POST /predict", False, f"{status}: {text[:300]}")
    records = project.sample.get("records") or []
    expected = project.sample.get("predictions") or []
    if records and expected and records[0] == record:
        if not _same(answer["prediction"], expected[0]):
            return answer, Check(
                "POST /predict",
                False,
                f"answered {answer['prediction']!r}, but the model predicted {expected[0]!r} "
                "for this record at training (artifacts/sample.json)",
            )
        return answer, Check("POST /predict", True, "200, the prediction recorded at training")
    return answer, Check("POST /predict", True, "200")


def _wrong_type(url: str, record: dict[str, Any], body_schema: dict[str, Any]) -> Check:
    """A field given a value of the wrong type must get a 422 that names it."""
    properties = body_schema.get("properties") or {}
    wrong: tuple[str, Any] | None = None
    for name, spec in properties.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind in ("number", "integer", "boolean"):
            wrong = (name, "not a number" if kind != "boolean" else [1])
            break
        if kind == "string" and wrong is None:
            wrong = (name, [1, 2])
    if wrong is None:
        first = next(iter(record), None)
        if first is None:
            return Check("422 for a wrong type", False, "the example record has no field")
        wrong = (first, {"not": "a value"})
    name, value = wrong
    try:
        status, text = _request("POST", f"{url}/predict", {**record, name: value})
    except OSError as error:
        return Check("422 for a wrong type", False, f"no answer ({error})")
    named = name in text
    return Check(
        "422 for a wrong type",
        status == 422 and named,
        f"{json.dumps(value)} for {name!r}: {status}"
        + ("" if named or status != 422 else ", without naming the field"),
    )


def _version(url: str, project: _Project) -> Check:
    def same_model(body: dict[str, Any]) -> bool:
        return project.model_sha256 is None or body.get("model_sha256") == project.model_sha256

    check = _expect(url, "/version", same_model)
    if check.passed and project.model_sha256:
        return Check(check.name, True, f"200, model sha256 {project.model_sha256[:12]}")
    if not check.passed and check.detail.startswith("200"):
        return Check(check.name, False, "200, but not the sha256 of artifacts/model.json")
    return check


def _metrics(url: str) -> Check:
    try:
        status, text = _request("GET", f"{url}/metrics")
    except OSError as error:
        return Check("GET /metrics", False, f"no answer ({error})")
    passed = status == 200 and "# TYPE " in text
    return Check("GET /metrics", passed, f"{status}" + ("" if passed else f": {text[:200]}"))


def _expect(url: str, path: str, holds: Callable[[dict[str, Any]], bool]) -> Check:
    name = f"GET {path}"
    try:
        status, text = _request("GET", f"{url}{path}")
    except OSError as error:
        return Check(name, False, f"no answer ({error})")
    body = _loads(text)
    passed = status == 200 and isinstance(body, dict) and holds(body)
    return Check(name, passed, f"{status}" + ("" if passed else f": {text[:200]}"))


def _predict_schema(openapi: Any) -> dict[str, Any]:
    """The JSON schema of ``POST /predict``'s body in the service's OpenAPI document."""
    try:
        schema = openapi["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
    except (KeyError, TypeError):
        return {}
    return schema if isinstance(schema, dict) else {}


def _same(answer: Any, expected: Any) -> bool:
    numbers = (int, float)
    if isinstance(answer, numbers) and isinstance(expected, numbers):
        return math.isclose(answer, expected, rel_tol=1e-6, abs_tol=1e-9)
    return bool(answer == expected)


def _request(method: str, url: str, body: Any = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), error.read().decode(errors="replace")


def _get_json(url: str) -> Any:
    with contextlib.suppress(OSError):
        status, text = _request("GET", url)
        if status == 200:
            return _loads(text)
    return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _logs(container: Any) -> str:
    try:
        return _tail(container.logs(tail=LOG_LINES).decode(errors="replace")) or "(none)"
    except (docker.errors.DockerException, OSError) as error:
        return f"(no logs: {_first_line(error)})"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(text: str, lines: int = LOG_LINES) -> str:
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(f"  {line}" for line in kept[-lines:])


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
