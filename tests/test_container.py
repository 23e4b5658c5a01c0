"""The generated container image really builds and serves: promote an example notebook,
install and train the project, download its wheels, build its image with podman, run it, and
call /health, /ready and /predict over HTTP.

Podman is driven through the docker SDK against podman's Docker-compatible socket (a
``podman system service`` started here and stopped afterwards), as promote's own image probes
are. The machine set-up is ``scripts/podman-setup.sh`` (see ../shared/CONTAINERS.md): it
installs podman, writes a containers.conf and creates a registry-free base image. The test is
skipped, with the reason, when podman or that set-up is missing, or when
``PROMOTE_CONTAINER_SKIP`` says why it cannot run here.

Environment: ``CONTAINERS_CONF`` (default: the file podman-setup.sh writes),
``PROMOTE_BASE_IMAGE`` (default ``localhost/python-base:3.11``).

It prints the build time (a build with no layer cache), the image size and the cold start
(from ``run`` to the first 200 from /ready).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from helpers import EXAMPLES
from project_harness import free_port, http, install_project, run, stop, venv_command

from promote.cli import main

pytestmark = [pytest.mark.container, pytest.mark.slow]

NOTEBOOK = EXAMPLES / "breast_cancer_classifier.ipynb"
PROJECT_NAME = "breast-cancer-classifier"
DEFAULT_BASE_IMAGE = "localhost/python-base:3.11"
BUILD_TIMEOUT = 900
START_TIMEOUT = 60.0
SOCKET_TIMEOUT = 30.0


def containers_conf() -> str:
    """The containers.conf to use: $CONTAINERS_CONF, else the one podman-setup.sh writes."""
    configured = os.environ.get("CONTAINERS_CONF")
    if configured:
        return configured
    cache = os.environ.get("PROMOTE_PODMAN_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "promote-podman"
    )
    default = Path(cache) / "containers.conf"
    if not default.is_file():
        pytest.skip('no containers.conf for podman: run `eval "$(scripts/podman-setup.sh)"`')
    return str(default)


@pytest.fixture(scope="module")
def podman_env() -> dict[str, str]:
    """The environment for podman; skips the module when podman cannot be used here."""
    reason = os.environ.get("PROMOTE_CONTAINER_SKIP")
    if reason:
        pytest.skip(reason)
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: run scripts/podman-setup.sh (as root)")
    env = {"CONTAINERS_CONF": containers_conf()}
    base_image = os.environ.get("PROMOTE_BASE_IMAGE", DEFAULT_BASE_IMAGE)
    exists = subprocess.run(
        ["podman", "image", "exists", base_image],
        env={**os.environ, **env},
        capture_output=True,
        check=False,
    )
    if exists.returncode != 0:
        pytest.skip(f"no base image {base_image}: run scripts/podman-setup.sh (as root)")
    return {**env, "PROMOTE_BASE_IMAGE": base_image}


@pytest.fixture(scope="module")
def client(podman_env: dict[str, str]) -> Iterator[docker.DockerClient]:
    """A docker SDK client on a podman API service of its own, stopped afterwards."""
    directory = tempfile.mkdtemp(prefix="promote-podman-")  # short: socket paths are limited
    socket_path = Path(directory) / "podman.sock"
    log = Path(directory) / "service.log"
    with log.open("w") as output:
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
            env={**os.environ, "CONTAINERS_CONF": podman_env["CONTAINERS_CONF"]},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    sdk = None
    try:
        deadline = time.monotonic() + SOCKET_TIMEOUT
        while not socket_path.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"podman system service did not start:\n{log.read_text()}")
            time.sleep(0.1)
        sdk = docker.DockerClient(base_url=f"unix://{socket_path}", timeout=BUILD_TIMEOUT)
        assert sdk.ping()
        yield sdk
    finally:
        if sdk is not None:
            sdk.close()
        stop(service)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example notebook promoted, installed in a fresh venv and trained."""
    project = tmp_path_factory.mktemp("container") / "project"
    assert main([str(NOTEBOOK), "-o", str(project)]) == 0
    install_project(project)
    run([venv_command(project, f"{PROJECT_NAME}-train")], project)
    assert (project / "artifacts" / "model.skops").is_file()
    return project


def healthcheck(client: docker.DockerClient, reference: str) -> Any:
    """The image's HEALTHCHECK: podman's Docker-compatible inspect leaves it out, so ask
    podman's own API, on the same socket (a Docker engine has it in the compatible one)."""
    config = client.images.get(reference).attrs["Config"]
    if config.get("Healthcheck"):
        return config["Healthcheck"]
    response = client.api.get(f"{client.api.base_url}/v4.0.0/libpod/images/{reference}/json")
    if response.status_code != 200:
        return None
    return response.json().get("Healthcheck")


def build_failure(error: docker.errors.BuildError) -> str:
    lines = [str(chunk.get("stream") or chunk.get("error") or "") for chunk in error.build_log]
    return f"the image did not build: {error.msg}\n" + "".join(lines)[-6000:]


def container_logs(container: Any) -> str:
    try:
        return str(container.logs().decode(errors="replace"))[-6000:]
    except docker.errors.APIError as error:
        return f"(no logs: {error})"


def report(capsys: pytest.CaptureFixture[str], **measures: str) -> None:
    with capsys.disabled():
        print("\ncontainer: " + ", ".join(f"{name} {value}" for name, value in measures.items()))


def test_generated_image_builds_and_serves(
    podman_env: dict[str, str],  # first: skip before promoting and installing anything
    client: docker.DockerClient,
    trained_project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = trained_project
    tag = f"localhost/promote-test-{uuid.uuid4().hex[:12]}:latest"
    images_before = {image.id for image in client.images.list(all=True)}

    # Offline wheels: pip in RUN cannot reach the index from the image here.
    run(["make", "wheels", f"WHEELS_PIP={sys.executable} -m pip"], project)
    assert any((project / "wheels").glob("scikit_learn-*.whl"))

    container = None
    try:
        started = time.monotonic()
        try:
            image, _ = client.images.build(
                path=str(project),
                tag=tag,
                buildargs={"BASE_IMAGE": podman_env["PROMOTE_BASE_IMAGE"]},
                nocache=True,
                rm=True,
                forcerm=True,
            )
        except docker.errors.BuildError as error:
            pytest.fail(build_failure(error))
        build_seconds = time.monotonic() - started
        image.reload()
        config = image.attrs["Config"]
        assert config.get("User") not in (None, "", "root", "0"), "the image runs as root"
        assert "PORT=8080" in config.get("Env", [])
        assert healthcheck(client, tag), "HEALTHCHECK was dropped"
        size_mb = image.attrs["Size"] / 1e6

        port = free_port()
        started = time.monotonic()
        container = client.containers.run(tag, detach=True, ports={"8080/tcp": ("127.0.0.1", port)})
        url = f"http://127.0.0.1:{port}"
        deadline = started + START_TIMEOUT
        health = ready = 0
        while ready != 200:
            container.reload()
            if container.status in ("exited", "dead"):
                pytest.fail(f"the container stopped:\n{container_logs(container)}")
            if time.monotonic() > deadline:
                pytest.fail(f"no /health and /ready in time:\n{container_logs(container)}")
            try:
                health = health or http("GET", f"{url}/health")[0]
                if health == 200:
                    ready = http("GET", f"{url}/ready")[0]
            except OSError:
                pass
            if ready != 200:
                time.sleep(0.1)
        cold_start = time.monotonic() - started

        sample = json.loads((project / "artifacts" / "sample.json").read_text())
        status, body = http("POST", f"{url}/predict", sample["records"][0])
        assert status == 200, body
        assert body["prediction"] == sample["predictions"][0]

        report(
            capsys,
            build=f"{build_seconds:.1f} s (no layer cache, offline wheels)",
            image=f"{size_mb:.0f} MB",
            cold_start=f"{cold_start:.2f} s to /ready",
        )

        # The project's own `make image` works with podman too (now from the layer cache).
        make_tag = f"{tag.removesuffix(':latest')}-make:latest"
        base_image = podman_env["PROMOTE_BASE_IMAGE"]
        run(
            ["make", "image", f"IMAGE={make_tag}", f"BASE_IMAGE={base_image}"],
            project,
            CONTAINERS_CONF=podman_env["CONTAINERS_CONF"],
        )
        assert healthcheck(client, make_tag), "HEALTHCHECK was dropped by make image"
    finally:
        if container is not None:
            container.remove(force=True)
        remove_new_images(client, images_before)


def remove_new_images(client: docker.DockerClient, before: set[str]) -> None:
    """Remove the images this test made: its tags and the untagged builder stages."""
    for image in client.images.list(all=True):
        if image.id in before:
            continue
        if image.tags and not all(t.startswith("localhost/promote-test-") for t in image.tags):
            continue  # tagged by someone else meanwhile
        # A parent may be gone with its child already.
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(image.id, force=True)
