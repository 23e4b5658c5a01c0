"""FastAPI application serving the trained model.

* ``GET /health``: liveness, always 200 while the process is up;
* ``GET /ready``: 200 once the model is loaded and warmed, 503 with the reason before;
* ``GET /schema``: the input the model expects, with an example record;
* ``POST /predict``: one JSON record in, ``{"prediction": ..., "probabilities": ...,
  "model_version": ...}`` out (``warnings`` too when values lie outside what training saw);
* ``POST /predict/batch``: a JSON array of records in (at most ``MAX_BATCH_SIZE``), a
  JSON array of predictions out, in the same order;
* ``GET /version``: project, package and model versions (the model's SHA-256, its version
  in the registry, the candidate's);
* ``GET /metrics``: Prometheus metrics (see ``metrics.py``), with the drift of the live
  input and predictions from the training data (``monitoring.py``);
* ``POST /feedback``: ``{"request_id", "label"}``, the true label of a prediction made
  earlier, for the live accuracy (or error) metrics.

After each prediction ``hooks.on_prediction`` runs: by default it logs a sample of the
predictions as JSON lines (``PREDICTION_LOG``); edit ``hooks.py`` to do more.

Invalid input is answered with 422 naming the field (and the record's index in a batch),
an oversized body with 413, a missing or wrong API key (when ``API_KEY`` is set) with 401,
no model with 503. Settings come from the environment (``config.py``).

The model is loaded when the application starts (in its lifespan), never at import time:
the version the registry's ``serving.json`` points at (``registry.py``), else the artifacts
directory itself, else the notebook's own model (``artifacts/notebook``, which
``promote --execute`` captured) until a first version is in the registry. A promotion or a rollback (``make promote-model``, ``make rollback``)
takes effect within ``MODEL_RELOAD_SECONDS`` without a restart: the service reads
``serving.json`` that often, loads and warms the version it names in a worker thread, and
switches to it between requests; a version that fails to load is logged and counted, and
the one serving before keeps serving. A
candidate (shadow or canary), the previous version (fallback) and the circuit breakers are
set up by ``lifecycle.py``. If the artifacts are missing the service still starts, and
reports why it is not ready.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from .. import PACKAGE_NAME, PROJECT_NAME, PROMOTE_VERSION, TEMPLATE_VERSION, __version__
from .. import reference as ref
from ..artifacts import (
    MANIFEST_FILE,
    SAMPLE_FILE,
    SCHEMA_FILE,
    LoadedModel,
    ModelArtifactError,
    load,
)
from ..inference import (
    FieldError,
    InvalidRecordError,
    predict,
    record_json_schema,
    validate_record,
)
from ..registry import NOTEBOOK_MODEL_DIR, VERSION_FILE, Registry, RegistryError
from ..validation import check_record
from . import hooks
from .config import ServiceSettings
from .lifecycle import CircuitBreaker, ModelUnavailableError, Router, Slot
from .logs import model_version, request_id
from .metrics import Metrics
from .middleware import (
    API_KEY_HEADER,
    MODEL_VERSION_HEADER,
    ApiKeyMiddleware,
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
)
from .monitoring import (
    AlreadyLabelledError,
    DriftMonitor,
    UnknownRequestError,
    feedback_tracker,
)

logger = logging.getLogger(__name__)

NOT_TRAINED = "model not trained: run make train"
UNVERSIONED = "unversioned"  # an artifacts directory outside the registry, without version.json
# Answered without an API key even when one is required (probes of the orchestrator).
OPEN_PATHS = frozenset({"/health", "/ready"})

# OpenAPI responses, typed as FastAPI's ``responses`` parameter expects them.
NOT_LOADED: dict[int | str, dict[str, Any]] = {503: {"description": "The model is not loaded"}}
INVALID: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body cannot be decoded (not UTF-8 JSON)"},
    413: {"description": "The body is larger than MAX_BODY_BYTES"},
    422: {"description": "The input does not match the model input (fields named)"},
}


class Health(BaseModel):
    status: str


class Prediction(BaseModel):
    prediction: Any
    probabilities: dict[str, float | None] | None = None
    index: list[Any] | None = None  # a forecast's index labels (its steps' timestamps)
    interval: dict[str, Any] | None = None  # a forecast's interval: level, lower, upper
    model_version: str | None = None  # the version that answered (always set)
    warnings: list[str] | None = None  # values training never saw (INPUT_CHECKS=warn)


class Feedback(BaseModel):
    request_id: str  # the X-Request-ID of the prediction's answer
    label: Any  # the true value
    index: int = Field(default=0, ge=0)  # which record of a batch (0 for /predict)


class FeedbackResult(BaseModel):
    request_id: str
    index: int
    label: Any
    prediction: Any
    correct: bool | None = None  # classification
    absolute_error: float | None = None  # regression


class Version(BaseModel):
    project: str
    package: str
    version: str
    model_sha256: str | None  # of the model file; null while no model is loaded
    promote_version: str
    template_version: str
    model_version: str | None = None  # in the registry; null while no model is loaded
    candidate_version: str | None = None  # loaded beside it (CANDIDATE_MODE)
    candidate_mode: str = "off"


@dataclass
class ModelState:
    """The model being served, or why there is none."""

    loaded: LoadedModel | None = None
    reason: str = "model not loaded yet"
    monitor: DriftMonitor | None = None  # with MONITORING_ENABLED, once loaded
    task: ref.Task = "classification"  # or regression: how /feedback labels are scored
    version: str | None = None  # the serving version's name in the registry
    router: Router | None = None  # which version answers (lifecycle.py), once loaded

    def require(self) -> LoadedModel:
        if self.loaded is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=self.reason)
        return self.loaded


def artifacts_dir_from_env() -> Path:
    """The artifacts directory: $ARTIFACTS_DIR, by default ``artifacts``."""
    return ServiceSettings().artifacts_dir


def load_model(state: ModelState, directory: Path) -> None:
    """Load the artifacts into ``state`` and warm the model up on the saved sample.

    On failure ``state`` records the reason instead, and the service is not ready.
    """
    try:
        loaded = load(directory)
        records = loaded.sample.get("records", [])[:1]
        if records:
            predict(loaded, records)  # the first prediction pays for lazy initialisation
    except FileNotFoundError as error:
        state.reason = NOT_TRAINED
        logger.warning("%s (%s)", NOT_TRAINED, error)
    except ModelArtifactError as error:  # changed, untrusted or from other library versions
        state.reason = f"the model in {directory} was not loaded: {error}"
        logger.error("%s", state.reason)
    except Exception:
        state.reason = f"failed to load the model from {directory}: see the service log"
        logger.exception("failed to load or warm up the model from %s", directory)
    else:
        state.loaded = loaded
        logger.info(
            "loaded the model from %s",
            directory.resolve(),
            extra={"fields": {"model_sha256": loaded.model_sha256}},
        )


def serving_source(registry: Registry, directory: Path) -> tuple[Path, str]:
    """Where the serving model is, and its version: the registry's pointer, else
    ``directory`` (named by its version.json, if any), else, when ``directory`` holds no
    model, the notebook's own model that ``promote --execute`` captured
    (``directory/notebook``, version ``notebook``)."""
    version = registry.serving()
    if version is not None:
        try:
            return registry.path(version), version
        except RegistryError:
            logger.exception("serving.json points at a missing version")
    captured = directory / NOTEBOOK_MODEL_DIR
    if not (directory / MANIFEST_FILE).is_file() and (captured / SCHEMA_FILE).is_file():
        directory = captured
    try:
        published = json.loads((directory / VERSION_FILE).read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        published = None
    return directory, str(published or UNVERSIONED)


def load_version(registry: Registry, version: str | None, role: str) -> LoadedModel | None:
    """Load and warm up one more version (candidate, previous); None, logged, on failure."""
    if version is None:
        logger.warning("no %s version to load from %s", role, registry.root)
        return None
    try:
        loaded = load(registry.path(version))
        records = loaded.sample.get("records", [])[:1]
        if records:
            predict(loaded, records)
    except Exception:
        logger.exception("failed to load the %s version %s", role, version)
        return None
    logger.info("loaded the %s version %s", role, version, extra={"fields": {"role": role}})
    return loaded


def build_router(
    settings: ServiceSettings, metrics: Metrics, registry: Registry, state: ModelState
) -> Router:
    """The serving version, and the candidate and previous ones the settings ask for."""
    assert state.loaded is not None and state.version is not None

    def slot(version: str, loaded: LoadedModel) -> Slot:
        breaker = CircuitBreaker(
            settings.circuit_breaker_failures, settings.circuit_breaker_reset_seconds
        )
        return Slot(version, loaded, breaker)

    candidate = previous = None
    if settings.candidate_mode != "off":
        name = settings.candidate_version or registry.latest_candidate()
        loaded = load_version(registry, name, settings.candidate_mode)
        candidate = slot(name, loaded) if name and loaded else None
    if settings.model_fallback == "previous":
        history = registry.history()
        name = history[-1] if history else None
        loaded = load_version(registry, name, "previous")
        previous = slot(name, loaded) if name and loaded else None
    return Router(settings, metrics, slot(state.version, state.loaded), candidate, previous)


def field_errors(errors: Sequence[FieldError], *where: int) -> list[dict[str, Any]]:
    """422 details in FastAPI's shape: ``loc`` is ``["body", (index,) field]``."""
    return [
        {"loc": ["body", *where, error.field], "msg": error.message, "type": "value_error"}
        for error in errors
    ]


def create_app(
    artifacts_dir: Path | None = None, settings: ServiceSettings | None = None
) -> FastAPI:
    """Create the application; it loads the model from ``artifacts_dir`` on start-up.

    ``settings`` default to the environment's (``config.py``); ``artifacts_dir``, when
    given, overrides their ``artifacts_dir``.
    """
    settings = settings if settings is not None else ServiceSettings()
    directory = artifacts_dir if artifacts_dir is not None else settings.artifacts_dir
    registry = Registry(settings.model_registry_dir or directory / "registry")
    state = ModelState()
    metrics = Metrics()
    feedback = feedback_tracker(settings, metrics) if settings.monitoring_enabled else None

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        source, version = serving_source(registry, directory)
        await run_in_threadpool(load_model, state, source)
        if state.loaded is not None:
            logger.info("serving model version %s", version, extra={"fields": {"version": version}})
            await run_in_threadpool(serve, application, state.loaded, version)
        watcher = (
            asyncio.create_task(watch_registry(application))
            if settings.model_reload_seconds > 0
            else None
        )
        yield
        logger.info("shutting down")
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if state.router is not None:
            state.router.close()
        if state.monitor is not None:
            state.monitor.stop()
        metrics.process_stopped()

    async def watch_registry(application: FastAPI) -> None:
        """Serve the version serving.json names whenever it changes (promote-model, rollback)."""
        failed: str | None = None  # a version that did not load is not tried again and again
        while True:
            await asyncio.sleep(settings.model_reload_seconds)
            try:
                wanted = registry.serving()
                if wanted is None or wanted in {state.version, failed}:
                    continue
                if await run_in_threadpool(switch_to, application, wanted):
                    failed = None
                else:
                    failed = wanted
            except Exception:  # the watcher must outlive any surprise; the model keeps serving
                logger.exception("checking the registry for a new serving version failed")

    def switch_to(application: FastAPI, version: str) -> bool:
        """Load ``version``, then serve it instead of the current one; False if it failed."""
        loaded = load_version(registry, version, "serving")
        if loaded is None:
            metrics.model_reloads.labels("failed").inc()
            logger.error(
                "version %s was not loaded; %s keeps serving",
                version,
                state.version or "nothing",
                extra={"fields": {"version": version}},
            )
            return False
        was = state.version or "nothing"
        serve(application, loaded, version)
        metrics.model_reloads.labels("loaded").inc()
        logger.info(
            "now serving model version %s (was %s)",
            version,
            was,
            extra={"fields": {"version": version}},
        )
        return True

    def serve(application: FastAPI, loaded: LoadedModel, version: str) -> None:
        """Make ``loaded`` (``version``) the serving model, at start-up or instead of another:
        its router (candidate, previous), its drift reference and its metric labels."""
        router = build_router(settings, metrics, registry, ModelState(loaded, version=version))
        before, old_router, old_monitor = state.loaded, state.router, state.monitor
        state.router, state.loaded, state.version = router, loaded, version
        application.state.router = router
        if old_router is not None:
            old_router.retire()
            router.announce()  # labels the old router shared with this one were just removed
        if old_monitor is not None:
            old_monitor.stop()
        state.monitor = None
        start_monitoring(loaded)
        if before is not None and before is not loaded:
            with contextlib.suppress(KeyError):
                metrics.model_info.remove(__version__, before.model_sha256)
        metrics.model_info.labels(__version__, loaded.model_sha256).set(1)
        metrics.model_loaded.set(1)

    def start_monitoring(loaded: LoadedModel) -> None:
        if loaded.schema.kind == "forecast":
            # A forecast request carries no input data to measure drift on (forecast.py):
            # requests, their horizons and the values forecast are counted instead.
            state.task = "regression"
            return
        if loaded.reference is not None:
            state.task = loaded.reference["task"]
        else:
            state.task = ref.prediction_task(loaded.model, loaded.sample.get("predictions", []))
        if settings.monitoring_enabled:
            state.monitor = DriftMonitor(loaded, settings, metrics)
            if metrics.multiprocess_dir is not None:
                state.monitor.start()  # one of several workers: scrapes reach only some

    def after_prediction(
        endpoint: str,
        loaded: LoadedModel,
        version: str,
        records: Sequence[Mapping[str, Any]],
        results: Sequence[dict[str, Any]],
    ) -> None:
        """Monitoring and hooks, on the request path: each step is cheap."""
        current = request_id.get()
        answers = [result["prediction"] for result in results]
        if loaded.schema.kind == "forecast":
            metrics.observe_forecasts(records, answers)
            answers = []  # no feedback: a label is one value, a forecast many
        if state.monitor is not None:
            state.monitor.observe(records, answers)
        if feedback is not None and answers:
            feedback.remember(current, answers)
        for index, (record, result) in enumerate(zip(records, results, strict=True)):
            context = hooks.PredictionContext(
                current, endpoint, index, loaded.model_sha256, settings, version
            )
            try:
                hooks.on_prediction(dict(record), result, context)
            except Exception:
                logger.exception("hooks.on_prediction failed")

    app = FastAPI(
        title=PROJECT_NAME,
        version=__version__,
        description="Predictions of the model trained by this project's pipeline.",
        lifespan=lifespan,
    )

    def reject(endpoint: str, reason: str, detail: Any, error: Exception) -> HTTPException:
        metrics.prediction_errors.labels(endpoint, reason).inc()
        if reason == "rejected":
            # The records match the schema, but the model refuses them (for example a
            # category it never saw during training).
            logger.warning("the model rejected the input: %s", error)
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)

    def check_values(
        endpoint: str, loaded: LoadedModel, records: Sequence[Mapping[str, Any]], batch: bool
    ) -> list[list[str]]:
        """Values training never saw (``validation.py``): counted and returned as warnings,
        or answered 422 with INPUT_CHECKS=reject."""
        if settings.input_checks == "off":
            return [[] for _ in records]
        found = [
            check_record(loaded.schema, record, settings.data_range_margin) for record in records
        ]
        if settings.input_checks == "reject" and any(found):
            where = [[index] if batch else [] for index in range(len(records))]
            detail = [
                {
                    "loc": ["body", *where[index], item.field],
                    "msg": item.message,
                    "type": item.check,
                }
                for index, violations in enumerate(found)
                for item in violations
            ]
            raise reject(endpoint, "out_of_training_range", detail, ValueError("unseen values"))
        for violations in found:
            for item in violations:
                metrics.input_violations.labels(item.field, item.check).inc()
        if any(found):
            fields = sorted({item.field for violations in found for item in violations})
            logger.warning(
                "request values training never saw, in %s",
                ", ".join(fields),
                extra={"fields": {"features": fields}},
            )
        return [[f"{item.field}: {item.message}" for item in violations] for violations in found]

    def run_model(
        endpoint: str, records: Sequence[Mapping[str, Any]], response: Response, batch: bool
    ) -> list[Prediction]:
        state.require()
        router = state.router  # one read: a reload may swap it meanwhile
        assert router is not None  # set with the loaded model
        loaded = router.serving.loaded
        warnings = check_values(endpoint, loaded, records, batch)
        try:
            answer = router.predict(records, request_id.get() or "")
        except InvalidRecordError as error:
            raise reject(endpoint, "invalid", field_errors(error.errors), error) from error
        except (TypeError, ValueError) as error:
            detail = [{"loc": ["body"], "msg": f"the model rejected the input: {error}"}]
            raise reject(endpoint, "rejected", detail, error) from error
        except ModelUnavailableError as error:
            metrics.prediction_errors.labels(endpoint, "model_failed").inc()
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(error)) from error
        model_version.set(answer.version)
        response.headers[MODEL_VERSION_HEADER] = answer.version
        metrics.predictions.labels(endpoint).inc(len(answer.results))
        after_prediction(endpoint, answer.loaded, answer.version, records, answer.results)
        return [
            Prediction.model_validate(
                {
                    **result,
                    "model_version": answer.version,
                    **({"warnings": found} if found else {}),
                }
            )
            for result, found in zip(answer.results, warnings, strict=True)
        ]

    @app.get("/health")
    def health() -> Health:
        return Health(status="ok")

    @app.get("/ready", responses=NOT_LOADED)
    def ready() -> Health:
        state.require()
        return Health(status="ready")

    @app.get("/schema", responses=NOT_LOADED)
    def schema() -> dict[str, Any]:
        loaded = state.require()
        examples = loaded.sample.get("records", [])
        return {"input": loaded.schema.to_json(), "example": examples[0] if examples else None}

    # Plain `def` endpoints: FastAPI runs them in its threadpool, so the CPU-bound
    # prediction does not block the event loop.
    @app.post("/predict", response_model_exclude_unset=True, responses={**INVALID, **NOT_LOADED})
    def predict_record(record: Annotated[dict[str, Any], Body()], response: Response) -> Prediction:
        [result] = run_model("/predict", [record], response, batch=False)
        return result

    @app.post(
        "/predict/batch",
        response_model_exclude_unset=True,
        responses={**INVALID, **NOT_LOADED},
    )
    def predict_batch(
        records: Annotated[list[dict[str, Any]], Body()], response: Response
    ) -> list[Prediction]:
        loaded = state.require()
        endpoint = "/predict/batch"
        if not 1 <= len(records) <= settings.max_batch_size:
            message = f"send between 1 and {settings.max_batch_size} records, not {len(records)}"
            detail = [{"loc": ["body"], "msg": message, "type": "value_error"}]
            raise reject(endpoint, "invalid", detail, ValueError(message))
        errors = [
            detail
            for index, record in enumerate(records)
            for detail in field_errors(validate_record(loaded.schema, record), index)
        ]
        if errors:
            raise reject(endpoint, "invalid", errors, ValueError("invalid records"))
        return run_model(endpoint, records, response, batch=True)

    @app.get("/version")
    def version() -> Version:
        return Version(
            project=PROJECT_NAME,
            package=PACKAGE_NAME,
            version=__version__,
            model_sha256=state.loaded.model_sha256 if state.loaded is not None else None,
            promote_version=PROMOTE_VERSION,
            template_version=TEMPLATE_VERSION,
            model_version=state.version,
            candidate_version=candidate.version
            if state.router is not None and (candidate := state.router.candidate) is not None
            else None,
            candidate_mode=state.router.mode if state.router is not None else "off",
        )

    @app.post(
        "/feedback",
        responses={
            404: {"description": "No prediction is kept under this request id and index"},
            409: {"description": "This prediction has a label already"},
            **INVALID,
            **NOT_LOADED,
        },
    )
    def post_feedback(body: Feedback) -> FeedbackResult:
        loaded = state.require()
        if feedback is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail="feedback is off (MONITORING_ENABLED=false)"
            )
        try:
            outcome = feedback.label(body.request_id, body.index, body.label, state.task)
        except UnknownRequestError as error:
            detail = (
                f"no prediction {body.index} under request id {body.request_id!r}: the "
                f"predictions of the last {settings.feedback_max_pending} requests are kept"
            )
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=detail) from error
        except AlreadyLabelledError as error:
            detail = f"prediction {body.index} of {body.request_id!r} has a label already"
            raise HTTPException(status.HTTP_409_CONFLICT, detail=detail) from error
        except ValueError as error:
            errors = [{"loc": ["body", "label"], "msg": str(error), "type": "value_error"}]
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=errors) from error
        context = hooks.PredictionContext(
            body.request_id,
            "/feedback",
            body.index,
            loaded.model_sha256,
            settings,
            state.version or "",
        )
        try:
            hooks.on_feedback(body.label, outcome.prediction, context)
        except Exception:
            logger.exception("hooks.on_feedback failed")
        return FeedbackResult(
            request_id=body.request_id,
            index=body.index,
            label=body.label,
            prediction=outcome.prediction,
            correct=outcome.correct,
            absolute_error=outcome.absolute_error,
        )

    @app.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    def prometheus_metrics() -> Response:
        if state.monitor is not None:
            state.monitor.update()  # the drift gauges, when due
        content, media_type = metrics.render()
        return Response(content=content, media_type=media_type)

    def example_record() -> dict[str, Any] | None:
        """The first sample record saved at training (artifacts/sample.json), if any."""
        if state.loaded is not None:
            records = state.loaded.sample.get("records", [])
        else:
            try:
                records = json.loads((directory / SAMPLE_FILE).read_text()).get("records", [])
            except (OSError, ValueError, AttributeError):
                return None
        return records[0] if records and isinstance(records[0], dict) else None

    def openapi() -> dict[str, Any]:
        """OpenAPI with the model's record schema and a real example, once it is loaded."""
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        single = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
        batch = document["paths"]["/predict/batch"]["post"]["requestBody"]["content"][
            "application/json"
        ]
        if state.loaded is not None:
            record = record_json_schema(state.loaded.schema)
            single["schema"] = record
            batch["schema"] = {
                "type": "array",
                "items": record,
                "minItems": 1,
                "maxItems": settings.max_batch_size,
            }
        example = example_record()
        if example is not None:
            single["example"] = example
            batch["example"] = [example]
        if settings.requires_api_key:
            components = document.setdefault("components", {})
            components.setdefault("securitySchemes", {})["ApiKey"] = {
                "type": "apiKey",
                "in": "header",
                "name": API_KEY_HEADER,
            }
            document["security"] = [{"ApiKey": []}]
        if state.loaded is not None:
            app.openapi_schema = document  # final: cache it
        return document

    app.openapi = openapi  # type: ignore[method-assign]

    # The last added is the outermost: request id, logs and metrics see every answer,
    # 401 comes before the body is read, 413 as soon as it is too large.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.api_key is not None and settings.requires_api_key:
        app.add_middleware(
            ApiKeyMiddleware, api_key=settings.api_key.get_secret_value(), open_paths=OPEN_PATHS
        )
    endpoints = frozenset(getattr(route, "path", "") for route in app.routes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, endpoints=endpoints)
    return app
