"""Request ids, access logs, HTTP metrics and the input guard (pure ASGI, cheap on the
ingestion path).

`RequestContextMiddleware` wraps every request: request id in and out, metrics and the access
log per route template, and the last word on an unexpected error (a 500 whose log names the
error's class and where, never its message). Inside it `InputGuard` applies the rules no
endpoint can apply itself, because FastAPI reads and parses a body before it runs any
dependency:

- first the route's API key (401 without one, 403 for a role the route does not allow): on
  the control plane (`/api/...`) always, elsewhere when the request holds a NUL;
- a NUL character in a path parameter, or in a query parameter the route reads: 422 naming
  the parameter (on every route);
- on the control plane, before a byte of the body is read: the body's size (413 for a
  `Content-Length` over `MAX_CONTROL_PLANE_BODY`, or as soon as a streamed body passes it);
- then a JSON body that is not UTF-8 (422 naming the body, as malformed JSON is), or one
  holding what the databases do not store alike (NUL, NaN/Infinity, integers
  beyond 64 bits) or cannot store at all (an unpaired surrogate): 422 naming the field.

`/v1` ingestion and the signed webhooks keep their own limits and checks."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import parse_qsl

import fastapi.routing
import structlog
from fastapi import HTTPException
from fastapi.routing import APIRoute
from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import (
    DATABASE_RETRY_AFTER,
    INTERNAL_ERROR,
    LIMIT_TEXT,
    database_unavailable,
    describe_error,
    unavailable_body,
)
from rejse.events.values import find_unstorable, might_be_unstorable
from rejse.inputs import (
    MAX_CONTROL_PLANE_BODY,
    NUL_MESSAGE,
    find_lone_surrogate,
    may_hold_surrogate,
)
from rejse.logging import get_logger
from rejse.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = get_logger("rejse.http")

CONTROL_PLANE = "/api/"

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
        # The guard runs inside the request context, so that its answers carry a request id and
        # are counted and logged like any other.
        self.app = InputGuard(app)

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
        started = False
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code, started
            if message["type"] == "http.response.start":
                started = True
                status_code = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # noqa: BLE001 - the last word on an unexpected error
            if database_unavailable(exc):
                # The database is away (restarting, unreachable): nothing was stored, say so
                # and when to retry, instead of a 500 that reads as a bug.
                log.warning(
                    "database_unavailable",
                    route=getattr(scope.get("route"), "path", "<unmatched>"),
                    **describe_error(exc),
                )
                if not started:
                    await _json(
                        send_wrapper,
                        503,
                        unavailable_body(exc),
                        [("Retry-After", DATABASE_RETRY_AFTER)],
                    )
                return
            # Answered and logged here instead of raised on: the server would log the error
            # with its message, and a database error's message holds the failing row's values.
            log.error(
                "unhandled_error",
                route=getattr(scope.get("route"), "path", "<unmatched>"),
                **describe_error(exc),
            )
            if not started:
                await _json(send_wrapper, 500, INTERNAL_ERROR)
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


async def _json(
    send: Send, status: int, body: dict[str, Any], headers: Sequence[tuple[str, str]] = ()
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _field_error(send: Send, status: int, field: str, message: str) -> None:
    await _json(
        send,
        status,
        {"detail": f"{field}: {message}", "errors": [{"field": field, "message": message}]},
    )


# A route's key check run on the request alone (`require(...)`'s `from_request`).
KeyCheck = Callable[[Request], Coroutine[Any, Any, Any]]


class _Route:
    """What the guard needs of one route: how it matches, its key checks and the names of its
    query parameters."""

    __slots__ = ("checks", "context", "query_names")

    def __init__(self, context: Any) -> None:
        self.context = context
        checks: list[KeyCheck] = []
        names: set[str] = set()
        stack = [context.dependant] if isinstance(context.original_route, APIRoute) else []
        while stack:
            dependant = stack.pop()
            stack.extend(dependant.dependencies)
            names.update(param.alias for param in dependant.query_params)
            if getattr(dependant.call, "allowed_roles", None) is not None:
                checks.append(dependant.call.from_request)
        self.checks = checks
        self.query_names = frozenset(names)


class InputGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[_Route] = []
        self._built_for: tuple[int, int] | None = None

    def _index(self, scope: Scope) -> list[_Route]:
        """The app's routes in the order its router tries them, rebuilt when routes change."""
        routes = scope["app"].router.routes
        key = (id(routes), len(routes))
        if key != self._built_for:
            self._routes = [_Route(c) for c in fastapi.routing.iter_route_contexts(routes)]
            self._built_for = key
        return self._routes

    def _match(self, scope: Scope) -> tuple[_Route, dict[str, Any]] | None:
        for route in self._index(scope):
            match, child = route.context.matches(scope)
            if match is Match.FULL:
                return route, child
        return None  # no such route, or another method: the router answers 404/405

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        query: bytes = scope.get("query_string", b"")
        nul = "\x00" in path or b"%00" in query or b"\x00" in query
        if not nul and not path.startswith(CONTROL_PLANE):
            await self.app(scope, receive, send)  # the ingestion hot path: two cheap tests
            return
        found = self._match(scope) if "app" in scope else None
        if found is None:
            await self.app(scope, receive, send)
            return
        route, child = found
        # What the router would set: the access log and the metrics name the route's template
        # for the guard's answers too.
        scope["route"] = route.context.original_route
        # The key first, whatever else is wrong: a caller without the right key learns nothing
        # about the route's input.
        if route.checks and not await self._authorized(scope, route.checks, send):
            return
        if nul and await self._refuse_nul(route, child, query, send):
            return
        if not path.startswith(CONTROL_PLANE):
            await self.app(scope, receive, send)
            return
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        json_body = bool(body) and _is_json(scope)
        if json_body and not _is_utf8(body):
            # JSON is UTF-8 (RFC 8259); FastAPI would answer a 400 of its own shape.
            await _field_error(send, 422, "body", "not UTF-8 text")
            return
        if json_body and (might_be_unstorable(body) or may_hold_surrogate(body)):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None  # malformed: FastAPI answers 422 naming the body
            problem = (
                find_unstorable(parsed) or find_lone_surrogate(parsed)
                if parsed is not None
                else None
            )
            if problem is not None:
                field, message = problem
                await _field_error(send, 422, field or "body", message)
                return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    async def _refuse_nul(route: _Route, child: dict[str, Any], query: bytes, send: Send) -> bool:
        """422 for a NUL in a path parameter or in a query parameter the route reads (others
        it ignores, so they reach no database)."""
        for name, value in child.get("path_params", {}).items():
            if isinstance(value, str) and "\x00" in value:
                await _field_error(send, 422, name, NUL_MESSAGE)
                return True
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if name in route.query_names and "\x00" in value:
                await _field_error(send, 422, name, NUL_MESSAGE)
                return True
        return False

    @staticmethod
    async def _authorized(scope: Scope, checks: list[KeyCheck], send: Send) -> bool:
        """The route's own `require(...)` checks, run on the headers alone; the route runs them
        again (a key-cache hit)."""
        request = Request(scope)
        try:
            for check in checks:
                await check(request)
        except HTTPException as exc:
            body: dict[str, Any] = {"detail": exc.detail}
            if exc.status_code == 429:  # the rate limit: the `Error` body
                body["errors"] = []
            await _json(send, exc.status_code, body, list((exc.headers or {}).items()))
            return False
        return True

    @staticmethod
    async def _read_body(scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once a 413 is sent: a declared length over the limit is
        refused unread, a streamed body as soon as it passes the limit."""
        limit = MAX_CONTROL_PLANE_BODY
        too_large = f"the body is over {LIMIT_TEXT}, the control plane's limit"
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit():
                    await _field_error(send, 400, "content-length", "not a number of bytes")
                    return None
                # A length of more digits than any real one is over the limit without int(),
                # which refuses more than 4,300 digits.
                if len(value) > 18 or int(value) > limit:
                    await _field_error(send, 413, "body", too_large)
                    return None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body and the disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _field_error(send, 413, "body", too_large)
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _is_utf8(body: bytes) -> bool:
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that hands out the buffered body once, then the client's own."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
