"""FastAPI application serving the trained model.

* ``GET /health``: liveness, always 200 while the process is up;
* ``GET /ready``: 200 once the model is loaded, 503 with the reason before;
* ``GET /schema``: the input the model expects, with an example record;
* ``POST /predict``: one JSON record in, ``{"prediction": ..., "probabilities": ...}`` out.

The model is loaded from the artifacts directory when the application starts (in its
lifespan), never at import time. If the artifacts are missing the service still starts,
and reports why it is not ready.
"""

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from .. import PROJECT_NAME, __version__
from ..artifacts import LoadedModel, load
from ..inference import InvalidRecordError, predict

logger = logging.getLogger(__name__)

DEFAULT_ARTIFACTS_DIR = "artifacts"
NOT_TRAINED = "model not trained: run make train"


class Health(BaseModel):
    status: str


class Prediction(BaseModel):
    prediction: Any
    probabilities: dict[str, float | None] | None = None


@dataclass
class ModelState:
    """The model being served, or why there is none."""

    loaded: LoadedModel | None = None
    reason: str = "model not loaded yet"

    def require(self) -> LoadedModel:
        if self.loaded is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=self.reason)
        return self.loaded


def artifacts_dir_from_env() -> Path:
    """The artifacts directory: $ARTIFACTS_DIR, by default ``artifacts``."""
    return Path(os.environ.get("ARTIFACTS_DIR", DEFAULT_ARTIFACTS_DIR))


def load_model(state: ModelState, directory: Path) -> None:
    """Load the artifacts into ``state``; on failure record the reason instead."""
    try:
        state.loaded = load(directory)
    except FileNotFoundError as error:
        state.reason = NOT_TRAINED
        logger.warning("%s (%s)", NOT_TRAINED, error)
    except Exception:
        state.reason = f"failed to load the model from {directory}: see the service log"
        logger.exception("failed to load the model from %s", directory)
    else:
        logger.info("loaded the model from %s", directory.resolve())


def create_app(artifacts_dir: Path | None = None) -> FastAPI:
    """Create the application; it loads the model from ``artifacts_dir`` on start-up.

    Without ``artifacts_dir`` the directory comes from $ARTIFACTS_DIR (default
    ``artifacts``), read at start-up.
    """
    state = ModelState()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        directory = artifacts_dir if artifacts_dir is not None else artifacts_dir_from_env()
        await run_in_threadpool(load_model, state, directory)
        yield

    app = FastAPI(title=PROJECT_NAME, version=__version__, lifespan=lifespan)

    @app.get("/health")
    def health() -> Health:
        return Health(status="ok")

    @app.get("/ready", responses={503: {"description": "The model is not loaded"}})
    def ready() -> Health:
        state.require()
        return Health(status="ready")

    @app.get("/schema", responses={503: {"description": "The model is not loaded"}})
    def schema() -> dict[str, Any]:
        loaded = state.require()
        examples = loaded.sample.get("records", [])
        return {"input": loaded.schema.to_json(), "example": examples[0] if examples else None}

    # A plain `def` endpoint: FastAPI runs it in its threadpool, so the CPU-bound
    # prediction does not block the event loop.
    @app.post(
        "/predict",
        response_model_exclude_unset=True,
        responses={
            422: {"description": "The record does not match the model input"},
            503: {"description": "The model is not loaded"},
        },
    )
    def predict_record(record: Annotated[dict[str, Any], Body()]) -> Prediction:
        loaded = state.require()
        try:
            [result] = predict(loaded, [record])
        except InvalidRecordError as error:
            detail = [
                {"loc": ["body", e.field], "msg": e.message, "type": "value_error"}
                for e in error.errors
            ]
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from error
        except (TypeError, ValueError) as error:
            # The record matches the schema, but the model rejects it (for example a
            # category it never saw during training).
            logger.warning("the model rejected a record: %s", error)
            detail = [{"loc": ["body"], "msg": f"the model rejected the input: {error}"}]
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from error
        return Prediction(**result)

    return app
