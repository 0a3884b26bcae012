"""Rate limits on the API (`rejse.ratelimits`): every key check (`api.deps.require`) counts
the request against its key's limit for the path's scope (`/v1` and `/webhooks`: ingestion,
the rest: control plane) once the key and role are right; the signed webhooks count against
their source. Over the limit: 429 with `Retry-After` (seconds) and the `Error` body.

A request is counted once, though the control plane's input guard runs the key check before
the route does (a mark in the ASGI scope)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from rejse.ratelimits import RateLimiter, Scope, build_rate_limiter
from rejse.runtime import Runtime

_COUNTED = "rejse.rate_limit_counted"
INGEST_PREFIXES = ("/v1/", "/webhooks/")

RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds until the caller's rate-limit window ends",
        "schema": {"type": "integer", "minimum": 1},
    }
}
RATE_LIMITED_RESPONSE: dict[str, Any] = {
    "description": "Over the rate limit of this API key (webhooks: of this source); "
    "retry after `Retry-After` seconds. Nothing of the request was accepted",
    "headers": RETRY_AFTER,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


class RateLimited(HTTPException):
    def __init__(self, limit: str, retry_after: int) -> None:
        super().__init__(
            429,
            f"rate limit exceeded ({limit}); retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def scope_of(path: str) -> Scope:
    return "ingest" if path.startswith(INGEST_PREFIXES) else "control"


async def enforce(request: Request, caller: str, *, scope: Scope | None = None) -> None:
    """Count this request for `caller` (once per request); raise `RateLimited` when over."""
    if request.scope.get(_COUNTED):
        return
    request.scope[_COUNTED] = True
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        return
    which = scope or scope_of(request.url.path)
    if limiter.blocking:
        refusal = await run_in_threadpool(limiter.hit, which, caller)
    else:
        refusal = limiter.hit(which, caller)
    if refusal is not None:
        raise RateLimited(refusal.limit, refusal.retry_after)


def install_rate_limits(app: FastAPI, runtime: Runtime) -> None:
    """The app's limiter and the answer for a `RateLimited` raised in a route."""
    app.state.rate_limiter = build_rate_limiter(runtime.settings, runtime.engine)

    @app.exception_handler(RateLimited)
    async def _rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail, "errors": []}, status_code=429, headers=exc.headers
        )


def add_rate_limit_responses(doc: dict[str, Any]) -> dict[str, Any]:
    """Document the 429 on every operation a limit applies to: those that take a key, and the
    signed webhooks."""
    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if operation.get("security") or path.startswith("/webhooks/"):
                operation["responses"].setdefault("429", RATE_LIMITED_RESPONSE)
    return doc
