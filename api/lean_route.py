"""A route class for the ingestion hot path (FastAPI's documented `route_class` hook).

FastAPI solves an endpoint's dependencies per request; on a single-event `/v1/track` that was
about a seventh of the request. A lean endpoint reads its own body from the `Request` and needs
only the caller's key checked, so its handler runs the route's declared `require(...)` check
itself (the very same function, through `check.from_request`, with the same schemes: bearer,
and for ingestion HTTP Basic) and then calls the endpoint. The declared dependency stays: it
documents the route's key in OpenAPI and in the auth matrix.

A refused key is answered in the ingestion error shape (`detail`, `errors`, and the `code` and
`message` analytics SDKs read: RudderStack's SDK retries an answer without `code`).

A lean endpoint has the signature `async def endpoint(request: Request, principal: <XDep>)`
and returns a `Response`; a route without exactly one `require(...)` check is refused at start.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from api.deps import Principal

# What a lean endpoint is: it reads its own body and gets the checked caller.
LeanEndpoint = Callable[[Request, Principal], Coroutine[Any, Any, Response]]

_CODES = {401: "unauthorized", 403: "forbidden", 429: "rate_limited"}


def refused(exc: HTTPException) -> Response:
    detail = str(exc.detail)
    body = {
        "detail": detail,
        "errors": [{"field": "authorization", "message": detail}],
        "code": _CODES.get(exc.status_code, "refused"),
        "message": detail,
    }
    return Response(
        orjson.dumps(body),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type="application/json",
    )


class LeanRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        checks = [
            d.call
            for d in self.dependant.dependencies
            if d.call is not None and getattr(d.call, "allowed_roles", None) is not None
        ]
        if len(checks) != 1 or len(self.dependant.dependencies) != 1:
            raise TypeError(
                f"lean route {self.path}: needs exactly one require(...) dependency "
                "and nothing else"
            )
        authorise: Callable[[Request], Coroutine[Any, Any, Principal]] = checks[0].from_request  # type: ignore[attr-defined]  # set by require()
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            try:
                principal = await authorise(request)
            except HTTPException as exc:  # 401/403/429
                return refused(exc)
            response: Response = await endpoint(request, principal)
            return response

        return handler
