"""The generated container image really builds and serves: promote an example notebook,
install and train the project, download its wheels, then ``promote verify`` it: build its image
with podman (no layer cache), run it as non-root with a read-only root file system, and call
/health, /ready, /predict (the prediction recorded at training), /version, /metrics and a
wrong-typed field (422). The project's own ``make image`` then builds it again from the cache.

``promote verify`` drives podman through the docker SDK: no Docker engine answers here, so it
starts a private ``podman system service`` and stops it afterwards; this test opens its own the
same way (``promote.verify.connect``) to inspect and remove the images. The machine set-up is
``scripts/podman-setup.sh`` (see ../shared/CONTAINERS.md): it installs podman, writes a
containers.conf and creates a registry-free base image. The test is skipped, with the reason,
when podman or that set-up is missing, or when ``PROMOTE_CONTAINER_SKIP`` says why it cannot
run here.

Environment: ``CONTAINERS_CONF`` (default: the file podman-setup.sh writes),
``PROMOTE_BASE_IMAGE`` (default ``localhost/python-base:3.11``).

It prints what ``promote verify`` measured: the build time (no layer cache), the image size and
the cold start (from ``run`` to the first 200 from /ready).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from helpers import EXAMPLES
from project_harness import install_project, run, venv_command

from promote.cli import main
from promote.verify import connect, healthcheck

pytestmark = [pytest.mark.container, pytest.mark.slow]

NOTEBOOK = EXAMPLES / "breast_cancer_classifier.ipynb"
PROJECT_NAME = "breast-cancer-classifier"
DEFAULT_BASE_IMAGE = "localhost/python-base:3.11"


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
def podman_env() -> Iterator[dict[str, str]]:
    """The environment for podman, set for the module; skips it when podman cannot be used."""
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
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_CONF", env["CONTAINERS_CONF"])
        yield {**env, "PROMOTE_BASE_IMAGE": base_image}


@pytest.fixture(scope="module")
def client(podman_env: dict[str, str]) -> Iterator[docker.DockerClient]:
    """A docker SDK client on the engine ``promote verify`` finds (here: a podman service of
    its own, stopped afterwards)."""
    assert os.environ["CONTAINERS_CONF"] == podman_env["CONTAINERS_CONF"]
    with connect() as engine:
        yield engine.client


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example notebook promoted, installed in a fresh venv and trained."""
    project = tmp_path_factory.mktemp("container") / "project"
    assert main([str(NOTEBOOK), "-o", str(project)]) == 0
    install_project(project)
    run([venv_command(project, f"{PROJECT_NAME}-train")], project)
    assert (project / "artifacts" / "model.skops").is_file()
    return project


def measure(output: str, label: str) -> str:
    """A figure of the verify report: the text after its label."""
    found = re.search(rf"^{label}\s+(.+)$", output, re.MULTILINE)
    assert found, f"no {label!r} line in:\n{output}"
    return found.group(1)


def test_promote_verify_builds_runs_read_only_and_serves(
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

    try:
        base_image = podman_env["PROMOTE_BASE_IMAGE"]
        options = ["--no-cache", "--tag", tag, "--base-image", base_image]
        code = main(["verify", str(project), *options])
        output, errors = capsys.readouterr()
        assert code == 0, output + errors
        assert "FAIL" not in output
        for check in (
            "HEALTHCHECK: in the image",
            "POST /predict: 200, the prediction recorded at training",
            "422 for a wrong type: \"not a number\" for 'mean radius': 422",
            "GET /health: 200",
            "GET /version: 200, model sha256",
            "GET /metrics: 200",
        ):
            assert f"ok   {check}" in output, output
        assert "run as      user 10001:10001, read-only root file system" in output
        assert '"prediction": ' in measure(output, "/predict")
        with capsys.disabled():
            print(
                f"\ncontainer: build {measure(output, 'build')} (no layer cache), "
                f"image {measure(output, 'size')}, cold start {measure(output, 'cold start')}"
            )

        # The container is gone, the image stays, tagged.
        assert not client.containers.list(all=True, filters={"ancestor": tag})
        image = client.images.get(tag)
        assert image.attrs["Config"].get("User") == "10001:10001"
        assert "PORT=8080" in image.attrs["Config"].get("Env", [])

        # The project's own `make image` works with podman too (now from the layer cache).
        make_tag = f"{tag.removesuffix(':latest')}-make:latest"
        run(
            ["make", "image", f"IMAGE={make_tag}", f"BASE_IMAGE={base_image}"],
            project,
            CONTAINERS_CONF=podman_env["CONTAINERS_CONF"],
        )
        assert healthcheck(client, make_tag), "HEALTHCHECK was dropped by make image"
    finally:
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
