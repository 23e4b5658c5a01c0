"""Command-line entry points, installed as ``<project>-train``, ``<project>-serve`` and
``<project>-model``.

``<project>-train`` records the trained model as a new version in the registry
(``registry.py``); it serves only if its data check and the promotion gate pass. It exits
with 0 when the new version serves, 3 when the gate keeps it as a candidate, 1 when the
data check failed (the version is kept as a candidate too). ``--report FILE`` also writes
the report to FILE (Markdown).

``<project>-model`` manages the versions: ``list``, ``show [VERSION]``, ``promote
[VERSION]`` (the newest candidate by default), ``rollback`` and ``adopt-notebook``, which
records the notebook's own model (``artifacts/notebook``, captured by ``promote --execute``)
as a version; it serves if nothing serves yet.

Configuration comes from the environment (see ``service/config.py``), among others:

* ``ARTIFACTS_DIR``: where the trained model is written and read (default ``artifacts``);
* ``HOST`` / ``PORT``: where the service listens (default 127.0.0.1:8000);
* ``LOG_LEVEL``: DEBUG, INFO (default), WARNING or ERROR; logs are JSON lines on stderr;
* ``WORKERS``: server processes (default 1).
"""

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .registry import (
    NOTEBOOK_MODEL_DIR,
    GateSettings,
    Registry,
    RegistryError,
    TrainingOutcome,
    adopt_notebook_model,
    record_training,
)
from .service.config import ServiceSettings
from .service.logs import configure_logging
from .service.metrics import MULTIPROCESS_DIR_VARIABLE

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

# Seconds uvicorn gives a worker to answer its health check (its default, 5, kills workers
# still importing pandas and the model's libraries on a busy machine, again and again).
WORKER_HEALTHCHECK_TIMEOUT = 30


EXIT_SERVING = 0
EXIT_DATA_CHECK_FAILED = 1
EXIT_CANDIDATE = 3


def train(argv: Sequence[str] | None = None) -> None:
    """Run the training pipeline, record the model as a new version and gate it."""
    parser = argparse.ArgumentParser(description="Train the model and record a new version.")
    parser.add_argument("--report", type=Path, help="also write the report to this file")
    options = parser.parse_args(argv)
    settings = ServiceSettings()
    configure_logging(settings.log_level)
    # Imported here so that serving never imports the training code.
    from . import pipeline

    logger.info("training: running pipeline.run()")
    result = pipeline.run()
    for name, value in sorted(result.metrics.items()):
        logger.info("metric %s = %s", name, value)
    registry = registry_from(settings)
    outcome = record_training(
        result,
        registry,
        GateSettings(
            training_data_checks=settings.training_data_checks,
            data_range_margin=settings.data_range_margin,
            promotion_tolerance=settings.promotion_tolerance,
            promotion_metrics=settings.promotion_metrics,
            mlflow_tracking_uri=settings.mlflow_tracking_uri,
            mlflow_model_name=settings.mlflow_model_name,
        ),
    )
    fields = {
        "model_version": outcome.version,
        "serving": outcome.serving,
        "data_check_passed": outcome.data_report.passed,
        "gate_passed": outcome.gate_report.passed,
    }
    logger.info(
        "recorded model version %s in %s",
        outcome.version,
        registry.root.resolve(),
        extra={"fields": fields},
    )
    print(outcome.text())
    if options.report is not None:
        options.report.write_text(markdown_report(outcome, registry), encoding="utf-8")
    if not outcome.data_report.passed and settings.training_data_checks == "enforce":
        sys.exit(EXIT_DATA_CHECK_FAILED)
    sys.exit(EXIT_SERVING if outcome.serving else EXIT_CANDIDATE)


def model(argv: Sequence[str] | None = None) -> None:
    """Manage the model versions: list, show, promote, rollback."""
    parser = argparse.ArgumentParser(description="Manage the model versions in the registry.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the versions, their status and metrics")
    show = commands.add_parser("show", help="print a version's version.json")
    show.add_argument("version", nargs="?", help="default: the serving version")
    promote = commands.add_parser("promote", help="make a version serve, without the gate")
    promote.add_argument("version", nargs="?", help="default: the newest candidate")
    commands.add_parser("rollback", help="serve the version that served before")
    commands.add_parser(
        "adopt-notebook", help="record the notebook's own captured model as a version"
    )
    options = parser.parse_args(argv)
    settings = ServiceSettings()
    configure_logging(settings.log_level)
    registry = registry_from(settings)
    try:
        if options.command == "list":
            print(version_table(registry))
        elif options.command == "show":
            version = options.version or registry.serving()
            if version is None:
                raise RegistryError("no version serves yet: run make train")
            print(json.dumps(registry.info(version), indent=2))
        elif options.command == "promote":
            version = options.version or registry.latest_candidate()
            if version is None:
                raise RegistryError("no candidate newer than the serving version to promote")
            registry.set_serving(version, "promoted by hand")
            print(
                f"{version} now serves; a running service switches to it within MODEL_RELOAD_SECONDS"
            )
        elif options.command == "adopt-notebook":
            version, serving = adopt_notebook_model(
                registry, settings.artifacts_dir / NOTEBOOK_MODEL_DIR
            )
            problem = registry.info(version)["parity"]["problem"]
            print(
                f"recorded the notebook's model as {version}; "
                + (
                    "it serves now"
                    if serving
                    else f"it does not serve: {problem}"
                    if problem
                    else f"it is a candidate: make promote-model VERSION={version}"
                )
            )
        else:
            before, after = registry.rollback()
            print(
                f"rolled back from {before} to {after}; "
                "a running service switches to it within MODEL_RELOAD_SECONDS"
            )
    except RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def registry_from(settings: ServiceSettings) -> Registry:
    return Registry(settings.registry_dir, settings.artifacts_dir)


def version_table(registry: Registry) -> str:
    """One line per version: name, status, creation time and metrics."""
    lines = []
    for version in registry.versions():
        info = registry.info(version)
        status = registry.status(version)
        metrics = ", ".join(f"{name}={value:.4g}" for name, value in info["metrics"].items())
        lines.append(f"{version:6} {status:13} {info['created']}  {metrics}")
    return "\n".join(lines) or "no versions yet: run make train"


def markdown_report(outcome: TrainingOutcome, registry: Registry) -> str:
    """The training report in Markdown (for a CI job summary or a pull request)."""
    status = "serves now" if outcome.serving else "is kept as a candidate"
    return (
        f"## Model version {outcome.version} {status}\n\n"
        f"```text\n{outcome.text()}\n```\n\n"
        f"### Versions\n\n```text\n{version_table(registry)}\n```\n"
    )


def serve() -> None:
    """Serve the trained model over HTTP until SIGTERM or SIGINT.

    On either signal the server stops accepting connections and gives the requests in
    flight up to ``SHUTDOWN_TIMEOUT`` seconds to finish.

    With ``WORKERS`` > 1, uvicorn runs that many worker processes (and restarts one that
    dies); their metrics go through files in ``PROMETHEUS_MULTIPROC_DIR``, emptied first (a
    temporary directory, removed at exit, when the variable is unset).
    """
    # Imported here so that the other commands start quickly.
    import uvicorn

    settings = ServiceSettings()
    configure_logging(settings.log_level)
    given = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    several = settings.workers > 1
    directory = Path(given) if given else None
    if several and directory is None:
        directory = Path(tempfile.mkdtemp(prefix="metrics-"))
    if directory is not None:
        empty_metrics_directory(directory)
        os.environ[MULTIPROCESS_DIR_VARIABLE] = str(directory)  # read by every worker
        logger.info("serving with %d worker(s); metrics in %s", settings.workers, directory)
    # The application (pandas, the model's libraries) is imported where it is served: in
    # each worker, which then answers uvicorn's health checks of its workers in time.
    app: FastAPI | str = f"{__package__}.entrypoints:worker_app"
    if not several:
        from .service.app import create_app

        app = create_app(settings=settings)
    try:
        uvicorn.run(
            app,
            factory=several,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_config=None,  # keep the JSON logging configured here
            access_log=False,  # the application logs each request, with its id
            timeout_graceful_shutdown=settings.shutdown_timeout,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT,
        )
    finally:
        if directory is not None and not given:
            shutil.rmtree(directory, ignore_errors=True)


def worker_app() -> "FastAPI":
    """The application of one worker process: uvicorn imports and calls this in each."""
    from .service.app import create_app

    settings = ServiceSettings()
    configure_logging(settings.log_level)
    return create_app(settings=settings)


def empty_metrics_directory(directory: Path) -> None:
    """Create ``directory``, or remove the files a previous run left in it: the metrics
    (``*.db``) and the predictions kept for ``POST /feedback`` (``*.sqlite3*``)."""
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in [*directory.glob("*.db"), *directory.glob("*.sqlite3*")]:
        leftover.unlink()
