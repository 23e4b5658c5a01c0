"""Command-line entry points, installed as ``<project>-train`` and ``<project>-serve``.

Configuration comes from the environment:

* ``ARTIFACTS_DIR``: where the trained model is written and read (default ``artifacts``);
* ``HOST`` / ``PORT``: where the service listens (default 127.0.0.1:8000).
"""

import logging
import os

import uvicorn

from .artifacts import save
from .service.app import artifacts_dir_from_env, create_app

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def train() -> None:
    """Run the training pipeline and save the model artifacts."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # Imported here so that serving never imports the training code.
    from . import pipeline

    directory = artifacts_dir_from_env()
    logger.info("training: running pipeline.run()")
    result = pipeline.run()
    for name, value in sorted(result.metrics.items()):
        logger.info("metric %s = %s", name, value)
    save(result, directory)
    logger.info("saved the model artifacts to %s", directory.resolve())


def serve() -> None:
    """Serve the trained model over HTTP."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    uvicorn.run(create_app(), host=host, port=port)
