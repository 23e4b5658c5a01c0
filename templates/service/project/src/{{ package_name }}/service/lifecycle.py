"""Which model version answers a request: serving, canary or shadow, fallback, circuit breaker.

The service loads the serving version (``registry.py``: the one ``serving.json`` points
at, else the artifacts directory itself) and, depending on the settings (``config.py``):

* ``CANDIDATE_MODE=shadow``: a candidate (``CANDIDATE_VERSION``, by default the newest
  version that never served) predicts every request too, in a background thread, after
  the answer is computed; its predictions are logged and compared with the served ones
  (``model_shadow_comparisons_total``), never returned;
* ``CANDIDATE_MODE=canary``: the candidate answers a share ``CANARY_SHARE`` of the
  requests, chosen by a hash of the request id (a client that resends its
  ``X-Request-ID`` gets the same version);
* ``MODEL_FALLBACK=previous``: the version that served before is loaded too, and answers
  when the serving one fails.

A model *fails* when predicting raises anything but the input being refused (TypeError
and ValueError are answered 422, as before). Then the request gets the fallback:
``error`` (503), ``previous`` (the previous version's answer) or ``default``
(``FALLBACK_VALUE`` as the prediction); a failing canary falls back to the serving
version first. Each version has a circuit breaker: after ``CIRCUIT_BREAKER_FAILURES``
failures in a row it is not called for ``CIRCUIT_BREAKER_RESET_SECONDS``, then one trial
request decides whether it closes again.

Every answer names the version that made it: ``model_version`` in the body, the
``X-Model-Version`` header, and the request's log lines. Per-version metrics are in
``metrics.py`` (``model_version_*``).
"""

import contextlib
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from ..artifacts import LoadedModel
from ..inference import InvalidRecordError, predict
from .config import ServiceSettings
from .metrics import Metrics

logger = logging.getLogger(__name__)

Role = Literal["serving", "canary", "shadow", "previous", "default"]
DEFAULT_VERSION = "fallback-default"  # model_version of an answer made of FALLBACK_VALUE
SHADOW_MAX_PENDING = 1000  # shadow requests queued at most; more are skipped and counted
SHADOW_LOGGED_RECORDS = 100  # predictions per shadow log line at most


class ModelUnavailableError(Exception):
    """The model failed (or its circuit is open) and the fallback is ``error``: 503."""


class CircuitBreaker:
    """Closed while calls succeed; open (no calls) after ``failures`` failures in a row,
    for ``reset_seconds``; then one trial call closes it again or reopens it."""

    def __init__(
        self, failures: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = failures
        self.reset_seconds = reset_seconds
        self.clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        """Whether the model may be called now."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial or self.clock() - self._opened_at < self.reset_seconds:
                return False
            self._trial = True  # half open: this call decides
            return True

    def record(self, succeeded: bool) -> None:
        with self._lock:
            self._trial = False
            if succeeded:
                self._failures = 0
                self._opened_at = None
                return
            self._failures += 1
            if self._failures >= self.threshold:
                self._opened_at = self.clock()


@dataclass
class Slot:
    """One loaded model version."""

    version: str
    loaded: LoadedModel
    breaker: CircuitBreaker


@dataclass(frozen=True)
class Answer:
    """The predictions of a request and the version that made them."""

    results: list[dict[str, Any]]
    version: str
    role: Role
    loaded: LoadedModel = field(repr=False)


class Router:
    """Sends each request to a model version and applies the fallback."""

    def __init__(
        self,
        settings: ServiceSettings,
        metrics: Metrics,
        serving: Slot,
        candidate: Slot | None = None,
        previous: Slot | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.serving = serving
        self.mode = settings.candidate_mode if candidate is not None else "off"
        self.candidate = candidate
        self.previous = previous
        self._shadow = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._pending = 0
        self._pending_lock = threading.Lock()
        self.announce()

    def slots(self) -> list[tuple[Slot, str]]:
        """The versions loaded, with their roles."""
        roles = [
            (self.serving, "serving"),
            (self.candidate, self.mode),
            (self.previous, "previous"),
        ]
        return [(slot, role) for slot, role in roles if slot is not None]

    def announce(self) -> None:
        """Label the versions this router holds in ``model_version_info``."""
        for slot, role in self.slots():
            self.metrics.version_info.labels(slot.version, role).set(1)

    def predict(self, records: Sequence[Mapping[str, Any]], key: str) -> Answer:
        """The answer to a request; ``key`` (the request id) chooses canary or serving."""
        if (
            self.mode == "canary"
            and self.candidate is not None
            and in_share(key, self.settings.canary_share)
        ):
            answer = self._call(self.candidate, "canary", records, refuse_input=False)
            if answer is not None:
                return answer
        answer = self._call(self.serving, "serving", records, refuse_input=True)
        if answer is not None:
            if self.mode == "shadow" and self.candidate is not None:
                self._submit_shadow(self.candidate, records, answer, key)
            return answer
        return self._fallback(records)

    def wait_for_shadow(self) -> None:
        """Wait until the shadow predictions submitted so far are done (for tests)."""
        self._shadow.submit(lambda: None).result()

    def close(self) -> None:
        self._shadow.shutdown(wait=False, cancel_futures=True)

    def retire(self) -> None:
        """Stop routing: another router took over (a promoted or rolled-back version)."""
        self.close()
        for slot, role in self.slots():
            with contextlib.suppress(KeyError):
                self.metrics.version_info.remove(slot.version, role)

    def _fallback(self, records: Sequence[Mapping[str, Any]]) -> Answer:
        choice = self.settings.model_fallback
        self.metrics.fallbacks.labels(choice).inc()
        if choice == "previous" and self.previous is not None:
            answer = self._call(self.previous, "previous", records, refuse_input=False)
            if answer is not None:
                return answer
        if choice == "default":
            value = fallback_value(self.settings.fallback_value)
            self.metrics.version_predictions.labels(DEFAULT_VERSION, "default").inc(len(records))
            results = [{"prediction": value} for _ in records]
            return Answer(results, DEFAULT_VERSION, "default", self.serving.loaded)
        raise ModelUnavailableError(
            f"the model {self.serving.version} failed and no fallback answered "
            f"(MODEL_FALLBACK={choice}): see the service log"
        )

    def _call(
        self, slot: Slot, role: Role, records: Sequence[Mapping[str, Any]], refuse_input: bool
    ) -> Answer | None:
        """Predict with one version; None when it failed or its circuit is open.

        With ``refuse_input``, input the model refuses (InvalidRecordError, TypeError,
        ValueError) propagates, to be answered 422; otherwise it counts as a failure.
        """
        if not slot.breaker.allow():
            self.metrics.version_failures.labels(slot.version, "circuit_open").inc()
            return None
        start = time.perf_counter()
        try:
            results = predict(slot.loaded, records)
        except (InvalidRecordError, TypeError, ValueError):
            if refuse_input:
                slot.breaker.record(succeeded=True)  # the model works; the input is wrong
                raise
            self._failed(slot, role)
            return None
        except Exception:
            self._failed(slot, role)
            return None
        slot.breaker.record(succeeded=True)
        self.metrics.circuit_open.labels(slot.version).set(0)
        self.metrics.version_latency.labels(slot.version, role).observe(time.perf_counter() - start)
        self.metrics.version_predictions.labels(slot.version, role).inc(len(results))
        return Answer(results, slot.version, role, slot.loaded)

    def _failed(self, slot: Slot, role: Role) -> None:
        logger.exception(
            "model version %s failed (%s)",
            slot.version,
            role,
            extra={"fields": {"failed_version": slot.version, "role": role}},
        )
        slot.breaker.record(succeeded=False)
        self.metrics.version_failures.labels(slot.version, "error").inc()
        self.metrics.circuit_open.labels(slot.version).set(1 if slot.breaker.is_open else 0)

    def _submit_shadow(
        self, slot: Slot, records: Sequence[Mapping[str, Any]], served: Answer, key: str
    ) -> None:
        with self._pending_lock:
            if self._pending >= SHADOW_MAX_PENDING:
                self.metrics.version_failures.labels(slot.version, "shadow_skipped").inc()
                return
            self._pending += 1
        copied = [dict(record) for record in records]
        self._shadow.submit(self._run_shadow, slot, copied, served, key)

    def _run_shadow(
        self, slot: Slot, records: list[dict[str, Any]], served: Answer, key: str
    ) -> None:
        try:
            shadow = self._call(slot, "shadow", records, refuse_input=False)
            if shadow is None:
                return
            pairs = list(
                zip(
                    [result["prediction"] for result in served.results],
                    [result["prediction"] for result in shadow.results],
                    strict=True,
                )
            )
            agree = sum(same_prediction(one, other) for one, other in pairs)
            comparisons = self.metrics.shadow_comparisons
            comparisons.labels(slot.version, "agree").inc(agree)
            comparisons.labels(slot.version, "disagree").inc(len(pairs) - agree)
            for one, other in pairs:
                if _is_number(one) and _is_number(other):
                    self.metrics.shadow_difference.labels(slot.version).observe(abs(one - other))
            logger.info(
                "shadow predictions of %s",
                slot.version,
                extra={
                    "fields": {
                        "request_id": key,
                        "model_version": served.version,
                        "shadow_version": slot.version,
                        "agree": agree,
                        "records": len(pairs),
                        "served": [one for one, _ in pairs[:SHADOW_LOGGED_RECORDS]],
                        "shadow": [other for _, other in pairs[:SHADOW_LOGGED_RECORDS]],
                    }
                },
            )
        except Exception:
            logger.exception("the shadow comparison of %s failed", slot.version)
        finally:
            with self._pending_lock:
                self._pending -= 1


def in_share(key: str, share: float) -> bool:
    """Whether ``key`` falls in the first ``share`` of the hash space (uniform over keys)."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def same_prediction(one: Any, other: Any) -> bool:
    """Equal predictions; numbers within a relative 1e-9."""
    if _is_number(one) and _is_number(other):
        return math.isclose(one, other, rel_tol=1e-9, abs_tol=1e-12)
    return bool(one == other)


def fallback_value(setting: str | None) -> Any:
    """FALLBACK_VALUE as JSON (``0``, ``"no"``, ``null``), else as the string it is."""
    if setting is None:
        return None
    try:
        return json.loads(setting)
    except ValueError:
        return setting


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
