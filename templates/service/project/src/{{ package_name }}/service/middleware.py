"""ASGI middleware: request id, access log and metrics; API key; request body size limit.

Pure ASGI (not ``BaseHTTPMiddleware``) so that bodies are streamed, never buffered whole,
and so that the request id set here is seen by the endpoint and everything it logs.
"""

import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Collection
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logs import request_id
from .metrics import UNMATCHED, Metrics

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
MODEL_VERSION_HEADER = "x-model-version"  # set by the prediction endpoints; logged here
API_KEY_HEADER = "x-api-key"
# A client's request id is reused only when it is short and plain (it goes into logs).
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


async def send_json(
    send: Send, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    content = json.dumps(body).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    raw_headers += [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": content})


def header(scope: Scope, name: str) -> str | None:
    """The value of a request header (``name`` in lower case), or None."""
    wanted = name.encode()
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    """Give each request an id (``X-Request-ID``), log it as JSON and count it."""

    def __init__(self, app: ASGIApp, metrics: Metrics, endpoints: Collection[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, REQUEST_ID_HEADER)
        current = given if given and REQUEST_ID_PATTERN.match(given) else uuid.uuid4().hex
        token = request_id.set(current)
        path = scope["path"]
        endpoint = path if path in self.endpoints else UNMATCHED
        method = scope["method"]
        status = 500  # what the client gets if the application fails before answering
        version: str | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, version
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == MODEL_VERSION_HEADER.encode():
                        version = value.decode("latin-1")
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != REQUEST_ID_HEADER.encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), current.encode()))
                message = {**message, "headers": headers}
            await send(message)

        in_progress = self.metrics.in_progress.labels(endpoint)
        in_progress.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            in_progress.dec()
            self.metrics.requests.labels(endpoint, method, str(status)).inc()
            self.metrics.latency.labels(endpoint, method).observe(elapsed)
            fields = {
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
            }
            if version is not None:
                fields["model_version"] = version
            logger.info("%s %s %s", method, path, status, extra={"fields": fields})
            request_id.reset(token)


class ApiKeyMiddleware:
    """Answer 401 unless the request has ``X-API-Key: <key>``; ``open_paths`` are exempt."""

    def __init__(self, app: ASGIApp, api_key: str, open_paths: Collection[str]) -> None:
        self.app = app
        self.api_key = api_key.encode()
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        given = header(scope, API_KEY_HEADER)
        if given is None or not hmac.compare_digest(given.encode(), self.api_key):
            detail = "missing API key" if given is None else "invalid API key"
            await send_json(
                send,
                401,
                {"detail": f"{detail}: send the X-API-Key header"},
                {"www-authenticate": "ApiKey"},
            )
            return
        await self.app(scope, receive, send)


class BodyTooLargeError(HTTPException):
    """Raised while reading a body that passes the limit; FastAPI answers it as 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body larger than {max_bytes} bytes")


class BodySizeLimitMiddleware:
    """Answer 413 to a request whose body is larger than ``max_bytes``.

    A declared ``Content-Length`` is checked before anything is read; a body sent without
    one (chunked) is counted while it is read, and refused as soon as it is too large.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = {"detail": f"request body larger than {self.max_bytes} bytes"}
        declared = header(scope, "content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_json(send, 413, detail, {"connection": "close"})
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if started:
                raise
            await send_json(send, 413, detail, {"connection": "close"})
