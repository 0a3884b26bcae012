"""A route class for the ingestion hot path (FastAPI's documented `route_class` hook).

FastAPI solves an endpoint's dependencies per request; on a single-event `/v1/track` that was
about a seventh of the request. A lean endpoint reads its own body from the `Request` and needs
only the caller's key checked, so its handler runs the route's declared `require(...)` check
itself (the very same function, with the same bearer scheme) and then calls the endpoint.
The declared dependency stays: it documents the route's key in OpenAPI and in the auth matrix.

A lean endpoint has the signature `async def endpoint(request: Request, principal: <XDep>)`
and returns a `Response`; a route without exactly one `require(...)` check is refused at start.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.deps import Principal, bearer

# What a lean endpoint is: it reads its own body and gets the checked caller.
LeanEndpoint = Callable[[Request, Principal], Coroutine[Any, Any, Response]]


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
        check, endpoint = checks[0], self.endpoint

        async def handler(request: Request) -> Response:
            principal = await check(request, await bearer(request))  # 401/403 as HTTPException
            response: Response = await endpoint(request, principal)
            return response

        return handler
