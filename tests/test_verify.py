"""``promote verify`` without a container engine: its refusals and errors, and its probes
against a stand-in service. The real build, run and probes are in test_container.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from promote import verify
from promote.cli import main

SHA = "f3d5cd310cfe277eddb73c6d2be6d45707e6720291b515fe072f4c6ded482279"
RECORD = {"radius": 10.3, "colour": "red"}


def make_project(directory: Path, *, trained: bool = True) -> Path:
    """The files verify reads before it needs an engine: answers, Dockerfile, artifacts."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".copier-answers.yml").write_text("project_name: Demo-Service\n")
    (directory / "Dockerfile").write_text("FROM scratch\n")
    if trained:
        artifacts = directory / "artifacts"
        artifacts.mkdir()
        (artifacts / "model.json").write_text(json.dumps({"file": "model.skops", "sha256": SHA}))
        sample = {"records": [RECORD], "predictions": [1]}
        (artifacts / "sample.json").write_text(json.dumps(sample))
    return directory


def verify_fails(capsys: pytest.CaptureFixture[str], project: Path, *words: str) -> str:
    assert main(["verify", str(project)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: Cannot verify {project}: ")
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    return err


def test_a_directory_promote_did_not_generate_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verify_fails(capsys, tmp_path, "no .copier-answers.yml", "promote NOTEBOOK -o DIR")


def test_a_missing_directory_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    verify_fails(capsys, tmp_path / "nowhere", "it is not a directory")


def test_an_untrained_project_is_refused_with_the_command_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path / "demo", trained=False)
    verify_fails(capsys, project, "no trained model", "make install train")


def test_an_engine_that_does_not_answer_at_docker_host_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "demo")
    host = f"unix://{tmp_path}/nothing-here.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    verify_fails(capsys, project, f"no container engine answers at DOCKER_HOST={host}", "unset")


def test_no_engine_and_no_podman_says_how_to_get_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "demo")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(verify, "_from_env", lambda _timeout: (None, "connection refused"))
    monkeypatch.setattr(verify.shutil, "which", lambda _name: None)
    verify_fails(
        capsys,
        project,
        "no Docker engine answers (connection refused)",
        "podman is not installed",
        "Install and start Docker",
        "apt-get install podman",
    )


def test_a_podman_that_cannot_serve_is_reported_and_its_socket_directory_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "demo")
    podman = tmp_path / "podman"
    podman.write_text("#!/bin/sh\necho 'Error: cannot set up the user namespace' >&2\nexit 125\n")
    podman.chmod(0o755)
    socket_directories = set(Path("/tmp").glob("promote-podman-*"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(verify, "_from_env", lambda _timeout: (None, "connection refused"))
    monkeypatch.setattr(verify.shutil, "which", lambda _name: str(podman))
    verify_fails(
        capsys, project, "`podman system service` did not start", "cannot set up the user namespace"
    )
    assert set(Path("/tmp").glob("promote-podman-*")) == socket_directories


class StandIn(BaseHTTPRequestHandler):
    """Answers like a generated service; ``broken`` makes every probe see a fault."""

    broken = False

    def do_GET(self) -> None:
        if self.path == "/openapi.json":
            schema = {
                "type": "object",
                "properties": {"radius": {"type": "number"}, "colour": {"type": "string"}},
                "example": RECORD,
            }
            content = {"application/json": {"schema": schema}}
            self.answer(
                200, {"paths": {"/predict": {"post": {"requestBody": {"content": content}}}}}
            )
        elif self.path == "/health":
            self.answer(200, {"status": "ok"})
        elif self.path == "/version":
            self.answer(200, {"model_sha256": "0" * 64 if self.broken else SHA})
        elif self.path == "/metrics":
            self.answer(500 if self.broken else 200, "# TYPE requests_total counter\n")
        else:
            self.answer(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.broken and not isinstance(body.get("radius"), float):
            detail = [{"loc": ["body", "radius"], "msg": "expected number"}]
            self.answer(422, {"detail": detail})
        else:
            self.answer(200, {"prediction": 0 if self.broken else 1})

    def answer(self, status: int, body: Any) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(params=[False, True], ids=["sound", "broken"])
def stand_in(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    handler = type("Handler", (StandIn,), {"broken": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", request.param
    finally:
        server.shutdown()
        server.server_close()


def test_the_probes_see_what_a_platform_would(tmp_path: Path, stand_in: tuple[str, bool]) -> None:
    url, broken = stand_in
    project = verify._read_project(make_project(tmp_path / "demo"))
    prediction, checks = verify._probe(url, project)
    seen = {check.name: check for check in checks}
    assert set(seen) == {
        "POST /predict",
        "422 for a wrong type",
        "GET /health",
        "GET /version",
        "GET /metrics",
    }
    assert seen["GET /health"].passed
    if not broken:
        assert prediction == {"prediction": 1}
        assert all(check.passed for check in checks), checks
        assert seen["POST /predict"].detail == "200, the prediction recorded at training"
        assert seen["422 for a wrong type"].detail == "\"not a number\" for 'radius': 422"
        assert seen["GET /version"].detail == f"200, model sha256 {SHA[:12]}"
    else:
        assert "answered 0, but the model predicted 1" in seen["POST /predict"].detail
        assert not seen["422 for a wrong type"].passed
        assert seen["422 for a wrong type"].detail.endswith(": 200")
        assert seen["GET /version"].detail == "200, but not the sha256 of artifacts/model.json"
        assert not seen["GET /metrics"].passed


def test_failed_probes_exit_1_naming_each_with_the_container_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "demo")
    failed = verify.Verification(
        project=project,
        image="demo-service:latest",
        engine="Docker 27.0, at the default socket",
        build_seconds=12.5,
        image_bytes=250_000_000,
        user="10001:10001",
        offline=False,
        cold_start_seconds=1.5,
        prediction={"prediction": 0},
        checks=(
            verify.Check("GET /health", True, "200"),
            verify.Check("GET /metrics", False, "500: boom"),
        ),
        logs="  ValueError: boom",
    )
    monkeypatch.setattr(verify, "verify", lambda *_args, **_kwargs: failed)
    assert main(["verify", str(project)]) == 1
    out, err = capsys.readouterr()
    assert "cold start  1.50 s from run to /ready" in out
    assert "FAIL GET /metrics: 500: boom" in out
    assert "verified" not in out
    assert f"the image of {project} does not serve as it should: GET /metrics: 500: boom." in err
    assert "ValueError: boom" in err


class FailingBuilds:
    """A client whose engine fails the build the way a Dockerfile's RUN fails."""

    class images:  # named as the SDK names it
        @staticmethod
        def build(**_options: Any) -> Any:
            log = [{"stream": f"Step {n}/9 : RUN ...\n"} for n in range(1, 20)] + [
                {"stream": "ERROR: Could not find a version that satisfies numpy==2.4.6\n"},
                {"error": "The command '/bin/sh -c pip install' returned a non-zero code: 1"},
            ]
            raise docker.errors.BuildError(log[-1]["error"], iter(log))


def test_a_failed_build_quotes_the_end_of_its_log_and_suggests_offline_wheels(
    tmp_path: Path,
) -> None:
    directory = make_project(tmp_path / "demo")
    project = verify._read_project(directory)
    with pytest.raises(verify.VerifyError) as raised:
        verify._build(FailingBuilds(), project, directory, "demo:latest", None, False)
    message = raised.value.message
    assert message.startswith(f"Cannot verify {directory}: the image did not build (The command")
    assert "Could not find a version that satisfies numpy==2.4.6" in message
    assert "Step 19/9" in message and "Step 2/9" not in message  # the end of the log only
    assert "`make wheels`" in message


class StoppedContainer:
    """A container whose service exited at start-up."""

    status = "exited"
    attrs = {"State": {"ExitCode": 3}}

    def reload(self) -> None:
        pass

    def logs(self, tail: int) -> bytes:
        lines = [f"line {n}" for n in range(40)] + ["ArtifactError: no model in /app/artifacts"]
        return "\n".join(lines[-tail:]).encode()


def test_a_container_that_stops_before_ready_is_reported_with_its_last_log_lines(
    tmp_path: Path,
) -> None:
    with pytest.raises(verify.VerifyError) as raised:
        verify._wait_ready(StoppedContainer(), "http://127.0.0.1:9", 0.0, tmp_path, 60.0)
    message = raised.value.message
    assert "the container stopped (exit code 3) before /ready answered" in message
    assert message.endswith("ArtifactError: no model in /app/artifacts")
    assert "line 20" not in message
