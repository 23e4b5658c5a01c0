"""Command-line entry points, installed as ``<project>-train`` and ``<project>-serve``.

Configuration comes from the environment (see ``service/config.py``), among others:

* ``ARTIFACTS_DIR``: where the trained model is written and read (default ``artifacts``);
* ``HOST`` / ``PORT``: where the service listens (default 127.0.0.1:8000);
* ``LOG_LEVEL``: DEBUG, INFO (default), WARNING or ERROR; logs are JSON lines on stderr;
* ``WORKERS``: server processes (default 1).
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from .service.config import ServiceSettings
from .service.logs import configure_logging
from .service.metrics import MULTIPROCESS_DIR_VARIABLE

logger = logging.getLogger(__name__)

# Seconds uvicorn gives a worker to answer its health check (its default, 5, kills workers
# still importing pandas and the model's libraries on a busy machine, again and again).
WORKER_HEALTHCHECK_TIMEOUT = 30


def train() -> None:
    """Run the training pipeline and save the model artifacts."""
    settings = ServiceSettings()
    configure_logging(settings.log_level)
    # Imported here so that serving never imports the training code.
    from . import pipeline
    from .artifacts import save

    directory = settings.artifacts_dir
    logger.info("training: running pipeline.run()")
    result = pipeline.run()
    for name, value in sorted(result.metrics.items()):
        logger.info("metric %s = %s", name, value)
    save(result, directory)
    logger.info("saved the model artifacts to %s", directory.resolve())


def serve() -> None:
    """Serve the trained model over HTTP until SIGTERM or SIGINT.

    On either signal the server stops accepting connections and gives the requests in
    flight up to ``SHUTDOWN_TIMEOUT`` seconds to finish.

    With ``WORKERS`` > 1, uvicorn runs that many worker processes (and restarts one that
    dies); their metrics go through files in ``PROMETHEUS_MULTIPROC_DIR``, emptied first (a
    temporary directory, removed at exit, when the variable is unset).
    """
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


def worker_app() -> FastAPI:
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
