"""A local model registry: immutable model versions and a pointer to the one that serves.

``make train`` records every trained model as a new version, in a folder of its own that is
never written again (its files are made read-only)::

    <registry>/                  MODEL_REGISTRY_DIR, by default <ARTIFACTS_DIR>/registry
      versions/v1/               the artifacts (artifacts.save) and version.json
      versions/v2/ ...
      serving.json               {"version": "v2", "history": ["v1"], "rolled_back": [],
                                  "updated": ...}
      events.jsonl               one line per registration, promotion and rollback

``version.json`` describes the version: ``version``, ``created`` (UTC), ``source`` (trained
by the pipeline, or captured from the notebook by ``promote --execute``: ``make
adopt-notebook-model``, ``adopt_notebook_model``), ``metrics``,
``data_fingerprint`` (SHA-256, rows and columns of the training rows as requests carry them),
``code_version`` (the git commit, and whether the work tree had changes; null outside
git), ``libraries`` (Python and the versions of the libraries the model needs),
``parent`` (the version serving when it was trained), ``data_check`` and ``gate`` (the
reports of ``validation.py`` and ``gate.py``), ``parity`` (whether the saved artifacts,
loaded back, predict the saved sample as the trained model did: ``reload_parity``) and
``files``.

A version serves once ``serving.json`` points at it: the gate does that after training
when the version passes, ``make promote-model`` by hand, ``make rollback`` goes back to the
version that served before (``history``). Each change also copies the serving version's
files into ``ARTIFACTS_DIR`` itself (with its ``version.json``), for what reads that
directory directly (``make image``, older tools). A running service reads ``serving.json``
every ``MODEL_RELOAD_SECONDS`` and switches to the version it names (``service/app.py``).
"""

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import gate

if TYPE_CHECKING:
    from . import validation
    from .artifacts import Schema, TrainingOutput

# The artifacts, the data checks, numpy and pandas (and through them scikit-learn and skops)
# are imported where they are needed, so that `<project>-model rollback` and the other
# pointer changes start in a fraction of a second.

logger = logging.getLogger(__name__)

VERSIONS_DIR = "versions"
SERVING_FILE = "serving.json"
EVENTS_FILE = "events.jsonl"
VERSION_FILE = "version.json"
VERSION_PREFIX = "v"
# The notebook's own fitted model, captured by ``promote --execute`` (``<ARTIFACTS_DIR>/notebook``,
# kept in git): the service serves it until a version serves; ``adopt_notebook_model``
# records it as a version.
NOTEBOOK_MODEL_DIR = "notebook"
# Libraries recorded with every version, besides the one the model's class comes from.
RECORDED_LIBRARIES = ("numpy", "pandas", "scikit-learn", "scipy", "joblib", "pandera")


class RegistryError(Exception):
    """A registry operation that cannot be done (unknown version, nothing to roll back)."""


@dataclass(frozen=True)
class TrainingOutcome:
    """What ``record_training`` did with a newly trained model."""

    version: str
    serving: bool  # the version serves now
    data_report: "validation.DataReport"
    gate_report: gate.GateReport
    mlflow: str = ""  # where the version went in MLflow, or why not; "" when MLflow is off

    def text(self) -> str:
        verdict = (
            f"{self.version} now serves"
            if self.serving
            else f"{self.version} is kept as a candidate and does not serve: "
            f"promote it by hand with `make promote-model VERSION={self.version}`"
        )
        lines = [self.data_report.text(), self.gate_report.text(), verdict]
        return "\n".join(lines + ([f"mlflow: {self.mlflow}"] if self.mlflow else []))


class Registry:
    """The versions under ``root``; the serving one is also published to ``artifacts_dir``."""

    def __init__(self, root: Path, artifacts_dir: Path | None = None) -> None:
        self.root = root
        self.artifacts_dir = artifacts_dir

    # --- reading ---------------------------------------------------------------------

    def versions(self) -> list[str]:
        """Every version, oldest first."""
        folder = self.root / VERSIONS_DIR
        if not folder.is_dir():
            return []
        found = [path.name for path in folder.iterdir() if _number(path.name)]
        return sorted(found, key=_number)

    def path(self, version: str) -> Path:
        """The folder of ``version``; RegistryError when there is none."""
        folder = self.root / VERSIONS_DIR / version
        if not _number(version) or not (folder / VERSION_FILE).is_file():
            known = ", ".join(self.versions()) or "none yet: run make train"
            raise RegistryError(f"no model version {version!r} in {self.root} (versions: {known})")
        return folder

    def info(self, version: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path(version) / VERSION_FILE).read_text())
        return data

    def pointer(self) -> dict[str, Any]:
        """The content of serving.json (``{}`` when nothing serves yet)."""
        try:
            data: dict[str, Any] = json.loads((self.root / SERVING_FILE).read_text())
        except FileNotFoundError:
            return {}
        return data

    def serving(self) -> str | None:
        """The serving version, or None."""
        version = self.pointer().get("version")
        return str(version) if version else None

    def history(self) -> list[str]:
        """The versions that served before the current one, oldest first."""
        return [str(version) for version in self.pointer().get("history", [])]

    def rolled_back(self) -> list[str]:
        """The versions rolled back from, oldest first."""
        return [str(version) for version in self.pointer().get("rolled_back", [])]

    def status(self, version: str) -> str:
        """serving, served before, rolled back or candidate."""
        if version == self.serving():
            return "serving"
        if version in self.history():
            return "served before"
        return "rolled back" if version in self.rolled_back() else "candidate"

    def candidates(self) -> list[str]:
        """Versions that never served, oldest first."""
        served = {*self.history(), *self.rolled_back(), self.serving()}
        return [version for version in self.versions() if version not in served]

    def latest_candidate(self) -> str | None:
        """The newest version that never served and is newer than the serving one."""
        serving = _number(self.serving() or "")
        newer = [version for version in self.candidates() if _number(version) > serving]
        return newer[-1] if newer else None

    def schema(self, version: str) -> "Schema":
        from .artifacts import SCHEMA_FILE, Schema

        return Schema.from_json(json.loads((self.path(version) / SCHEMA_FILE).read_text()))

    # --- writing ---------------------------------------------------------------------

    def add(self, write: Callable[[Path], None], info: Mapping[str, Any]) -> str:
        """Record a new version: ``write(folder)`` writes its artifacts, ``info`` goes into
        its version.json. Returns the version's name; its files are then read-only."""
        versions = self.root / VERSIONS_DIR
        versions.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".new-", dir=versions))
        try:
            write(staging)
            files = sorted([*(path.name for path in staging.iterdir()), VERSION_FILE])
            while True:
                version = f"{VERSION_PREFIX}{max(map(_number, self.versions()), default=0) + 1}"
                content = {"version": version, **info, "files": files}
                _write_json(staging / VERSION_FILE, content)
                for path in staging.iterdir():
                    path.chmod(0o444)
                try:
                    staging.rename(versions / version)
                except OSError as error:
                    if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    (staging / VERSION_FILE).chmod(0o644)  # another run took the name
                    continue
                break
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._event("registered", version)
        return version

    def set_serving(self, version: str, event: str, reason: str = "") -> None:
        """Make ``version`` the serving one; the current one goes onto the history."""
        self.path(version)
        current = self.serving()
        history = self.history()
        if current is not None and current != version:
            history.append(current)
        rolled_back = [item for item in self.rolled_back() if item != version]
        self._point(version, [item for item in history if item != version], rolled_back)
        self._event(event, version, previous=current, reason=reason)

    def rollback(self) -> tuple[str, str]:
        """Serve the version that served before the current one: ``(from, to)``."""
        current, history = self.serving(), self.history()
        if current is None or not history:
            raise RegistryError(
                "nothing to roll back to: "
                + ("no version serves yet" if current is None else f"{current} is the first")
            )
        target = history.pop()
        self._point(target, history, [*self.rolled_back(), current])
        self._event("rolled back", target, previous=current)
        return current, target

    def publish(self) -> None:
        """Copy the serving version's files into the artifacts directory."""
        version = self.serving()
        if self.artifacts_dir is None or version is None:
            return
        source = self.path(version)
        target = self.artifacts_dir
        target.mkdir(parents=True, exist_ok=True)
        before: list[str] = []
        with contextlib.suppress(OSError, ValueError):
            before = json.loads((target / VERSION_FILE).read_text()).get("files", [])
        files = self.info(version)["files"]
        for name in files:
            temporary = target / f".{name}.publishing"
            shutil.copyfile(source / name, temporary)
            os.replace(temporary, target / name)
        for name in set(before) - set(files):
            (target / name).unlink(missing_ok=True)

    def _point(self, version: str, history: list[str], rolled_back: list[str]) -> None:
        pointer = {
            "version": version,
            "history": history,
            "rolled_back": rolled_back,
            "updated": _now(),
        }
        temporary = self.root / f".{SERVING_FILE}.new"
        _write_json(temporary, pointer)
        os.replace(temporary, self.root / SERVING_FILE)
        self.publish()

    def _event(self, event: str, version: str, **fields: Any) -> None:
        entry = {"time": _now(), "event": event, "version": version, **fields}
        with (self.root / EVENTS_FILE).open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")


@dataclass(frozen=True)
class GateSettings:
    """The settings of the data check and the gate (``service/config.py``)."""

    training_data_checks: str = "enforce"  # enforce, warn or off
    data_range_margin: float = 0.1  # validation.DEFAULT_RANGE_MARGIN
    promotion_tolerance: float = 0.01
    promotion_metrics: str = ""
    mlflow_tracking_uri: str | None = None  # set: each version is logged to MLflow too
    mlflow_model_name: str = ""  # the registered model's name (default: the project's)


def record_training(
    result: "TrainingOutput", registry: Registry, settings: GateSettings
) -> TrainingOutcome:
    """Check, register and gate a newly trained model; it serves if it passes."""
    from . import validation
    from .artifacts import request_input, save, to_json_safe

    features = request_input(result)  # what requests carry: the layer the schema describes
    serving = registry.serving()
    metrics = {str(name): float(value) for name, value in result.metrics.items()}
    if serving is None or settings.training_data_checks == "off":
        against = "" if serving is None else validation.OFF
        data_report = validation.DataReport(against, len(features))
    else:
        data_report = validation.check_training_data(
            features,
            registry.schema(serving),
            against=serving,
            margin=settings.data_range_margin,
        )
    data_passed = data_report.passed or settings.training_data_checks == "warn"
    with tempfile.TemporaryDirectory(prefix="model-") as scratch:
        staged = Path(scratch)
        save(result, staged)
        parity_problem = reload_parity(staged)
        gate_report = gate.evaluate(
            metrics,
            registry.info(serving)["metrics"] if serving is not None else None,
            against=serving or "",
            data_passed=data_passed,
            tolerance=settings.promotion_tolerance,
            metrics_setting=settings.promotion_metrics,
            parity_problem=parity_problem,
        )
        info = {
            "created": _now(),
            "source": "trained by the pipeline (make train)",
            "metrics": to_json_safe(metrics),
            "data_fingerprint": data_fingerprint(features),
            "code_version": code_version(),
            "libraries": library_versions(result.model),
            "parent": serving,
            "data_check": data_report.to_json(),
            "parity": {"passed": not parity_problem, "problem": parity_problem or None},
            "gate": gate_report.to_json(),
        }

        def write(folder: Path) -> None:
            shutil.copytree(staged, folder, dirs_exist_ok=True)

        version = registry.add(write, info)
    if gate_report.passed:
        registry.set_serving(version, "promoted", reason="passed the gate")
    mlflow = ""
    if settings.mlflow_tracking_uri:
        mlflow = _log_to_mlflow(registry, version, gate_report.passed, settings)
    return TrainingOutcome(version, gate_report.passed, data_report, gate_report, mlflow)


def adopt_notebook_model(registry: Registry, folder: Path) -> tuple[str, bool]:
    """Record the notebook's captured model (``folder``) as a new version, with where it
    came from (``source``) and its reload parity; it serves if nothing serves yet and it
    predicts its sample as the notebook did. Returns ``(version, serving)``."""
    from .artifacts import ARTIFACT_FILES, MANIFEST_FILE

    missing = [name for name in ARTIFACT_FILES if not (folder / name).is_file()]
    if missing:
        raise RegistryError(
            f"no servable notebook model in {folder} (missing {', '.join(missing)}): promote "
            "the notebook with --execute (or run make capture); a notebook model the service "
            "cannot serve as it is (see tests/parity/notebook.json) is not recorded"
        )
    described = folder / VERSION_FILE
    captured = json.loads(described.read_text()) if described.is_file() else {}
    sha256 = json.loads((folder / MANIFEST_FILE).read_text()).get("sha256")
    for version in registry.versions():
        manifest = registry.path(version) / MANIFEST_FILE
        if manifest.is_file() and json.loads(manifest.read_text()).get("sha256") == sha256:
            raise RegistryError(f"the notebook's model is already recorded, as {version}")
    problem = reload_parity(folder)
    serving = registry.serving()
    info = {
        "created": _now(),
        "source": captured.get("source", "captured from the notebook"),
        "metrics": json.loads((folder / "metrics.json").read_text()),
        "data_fingerprint": None,
        "code_version": None,
        "libraries": captured.get("libraries", {}),
        "parent": serving,
        "data_check": None,
        "parity": {"passed": not problem, "problem": problem or None},
        "gate": None,
    }

    def write(target: Path) -> None:
        for path in folder.iterdir():
            if path.is_file() and path.name != VERSION_FILE:
                shutil.copyfile(path, target / path.name)

    version = registry.add(write, info)
    if serving is None and not problem:
        registry.set_serving(version, "promoted", reason="the notebook's own model")
        return version, True
    return version, False


def _log_to_mlflow(registry: Registry, version: str, serving: bool, settings: GateSettings) -> str:
    """Log the version to MLflow (``mlflow_registry.py``); what happened, in a line."""
    from . import PROJECT_NAME, mlflow_registry

    assert settings.mlflow_tracking_uri
    name = settings.mlflow_model_name or PROJECT_NAME
    try:
        record = mlflow_registry.log_version(
            version,
            registry.path(version),
            registry.info(version),
            serving=serving,
            tracking_uri=settings.mlflow_tracking_uri,
            model_name=name,
        )
    except ImportError as error:
        logger.error("MLFLOW_TRACKING_URI is set but mlflow cannot be imported: %s", error)
        return f"not logged: mlflow cannot be imported ({error}): pip install -e '.[mlflow]'"
    except Exception as error:  # MLflow unreachable or refusing: the local version stays
        logger.exception("logging %s to MLflow failed", version)
        return f"not logged: {type(error).__name__}: {error}"
    alias = f", alias {mlflow_registry.SERVING_ALIAS!r}" if serving else ""
    return f"run {record.run_id}, registered model {record.model_name!r} version " + (
        f"{record.model_version}{alias}"
    )


def reload_parity(folder: Path) -> str:
    """Load the artifacts just saved in ``folder`` as the service will, and predict the saved
    sample: the answers must be the trained model's. Returns what differs ("" when nothing)."""
    from . import inference
    from .artifacts import load

    try:
        loaded = load(folder)
        records = loaded.sample.get("records", [])
        expected = loaded.sample.get("predictions", [])
        answers = [result["prediction"] for result in inference.predict(loaded, records)]
    except Exception as error:  # any failure here is the finding
        return f"it does not load or predict ({type(error).__name__}: {error})"
    if len(answers) != len(expected):
        return f"{len(answers)} predictions for the {len(expected)} sample records"
    for index, (answer, trained) in enumerate(zip(answers, expected, strict=True)):
        if not _same_answer(answer, trained):
            return f"sample record {index}: {answer!r} from the saved model, {trained!r} trained"
    return ""


def _same_answer(one: Any, other: Any) -> bool:
    if isinstance(one, int | float) and isinstance(other, int | float):
        both_nan = math.isnan(one) and math.isnan(other)
        return both_nan or math.isclose(one, other, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(one, list) and isinstance(other, list):
        return len(one) == len(other) and all(map(_same_answer, one, other))
    return bool(one == other)


def data_fingerprint(features: Any) -> dict[str, Any]:
    """SHA-256 of the model input, with its number of rows and its columns."""
    import numpy as np
    import pandas as pd

    digest = hashlib.sha256()
    columns: list[str] = []
    if isinstance(features, pd.DataFrame):
        columns = [str(name) for name in features.columns]
        digest.update(json.dumps([columns, [str(t) for t in features.dtypes]]).encode())
        digest.update(pd.util.hash_pandas_object(features, index=True).to_numpy().tobytes())
    elif isinstance(features, np.ndarray):
        digest.update(f"{features.shape}{features.dtype}".encode())
        digest.update(np.ascontiguousarray(features).tobytes())
    else:
        for item in features:
            digest.update(str(item).encode() + b"\0")
    return {"sha256": digest.hexdigest(), "rows": len(features), "columns": columns}


def code_version() -> dict[str, Any] | None:
    """The git commit of the working directory and whether it has changes; None outside
    git (``GITHUB_SHA`` is used when git is not installed)."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        sha = os.environ.get("GITHUB_SHA")
        return {"commit": sha, "dirty": None} if sha else None
    return {"commit": commit, "dirty": dirty}


def library_versions(model: Any) -> dict[str, str]:
    """Python's version and the installed versions of the libraries the model needs."""
    root = type(model).__module__.partition(".")[0]
    names = {*metadata.packages_distributions().get(root, []), *RECORDED_LIBRARIES}
    versions = {"python": platform.python_version()}
    for name in sorted(names):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def _git(*args: str) -> str:
    completed = subprocess.run(
        ["git", *args], capture_output=True, text=True, timeout=10, check=True
    )
    return completed.stdout.strip()


def _number(version: str) -> int:
    """The number of a version's name (``v12``: 12); 0 for a name that is not a version."""
    digits = version[len(VERSION_PREFIX) :]
    if not version.startswith(VERSION_PREFIX) or not digits.isdigit():
        return 0
    return int(digits)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
