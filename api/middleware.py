"""Request ids, access logs and HTTP metrics (pure ASGI, cheap on the ingestion path)."""

from __future__ import annotations

import os
import time

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rejse.logging import get_logger
from rejse.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = get_logger("rejse.http")

# The labelled metric children per (method, route template, status): a bounded set, looked up
# once instead of through prometheus-client's locked label lookup on every request.
_CHILDREN: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}


def _children(method: str, template: str, status: str) -> tuple[Counter, Histogram]:
    key = (method, template, status)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = (
            HTTP_REQUESTS.labels(method, template, status),
            HTTP_LATENCY.labels(method, template),
        )
    return found


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or os.urandom(16).hex()
        status_code = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            # The route template, never the raw path or query (they can hold identifiers).
            template = getattr(route, "path", "<unmatched>")
            method = scope.get("method", "")
            requests, latency = _children(method, template, str(status_code))
            requests.inc()
            latency.observe(elapsed)
            if status_code >= 400 or elapsed > 1.0:
                log.info(
                    "http_request",
                    method=method,
                    route=template,
                    status=status_code,
                    ms=round(elapsed * 1000, 1),
                )
            structlog.contextvars.unbind_contextvars("request_id")
