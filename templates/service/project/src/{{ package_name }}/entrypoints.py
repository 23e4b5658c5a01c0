"""Command-line entry points, installed as ``<project>-train`` and ``<project>-serve``.

Configuration comes from the environment (see ``service/config.py``), among others:

* ``ARTIFACTS_DIR``: where the trained model is written and read (default ``artifacts``);
* ``HOST`` / ``PORT``: where the service listens (default 127.0.0.1:8000);
* ``LOG_LEVEL``: DEBUG, INFO (default), WARNING or ERROR; logs are JSON lines on stderr.
"""

import logging

import uvicorn

from .artifacts import save
from .service.app import create_app
from .service.config import ServiceSettings
from .service.logs import configure_logging

logger = logging.getLogger(__name__)


def train() -> None:
    """Run the training pipeline and save the model artifacts."""
    settings = ServiceSettings()
    configure_logging(settings.log_level)
    # Imported here so that serving never imports the training code.
    from . import pipeline

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
    """
    settings = ServiceSettings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings=settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the JSON logging configured above
        access_log=False,  # the application logs each request, with its id
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )
