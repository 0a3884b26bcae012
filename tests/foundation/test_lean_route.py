"""`LeanRoute` (the ingestion hot path's route class) checks keys exactly like `require(...)`
and refuses to build a route whose auth it could not run."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from api.deps import IngestDep, SessionDep
from api.lean_route import LeanRoute
from rejse.roles import Role
from tests.conftest import auth


async def _endpoint(request: Request, principal: IngestDep) -> Response:
    return Response(principal.role.value)


async def test_lean_route_answers_401_403_and_passes_the_principal(runtime, keys):
    app = FastAPI()
    app.state.runtime = runtime
    app.router.add_api_route("/lean", _endpoint, methods=["POST"], route_class_override=LeanRoute)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as c:
        assert (await c.post("/lean")).status_code == 401
        assert (await c.post("/lean", headers={"Authorization": "Bearer nope"})).status_code == 401
        assert (await c.post("/lean", headers=auth(keys[Role.marketer]))).status_code == 403
        r = await c.post("/lean", headers=auth(keys[Role.ingest]))
        assert r.status_code == 200
        assert r.text == "ingest"


async def _no_auth(request: Request) -> Response:
    return Response("open")


async def _extra_dependency(
    request: Request, principal: IngestDep, session: SessionDep
) -> Response:
    return Response("never")


@pytest.mark.parametrize("endpoint", [_no_auth, _extra_dependency])
def test_lean_route_refuses_a_route_it_could_not_authorise(endpoint):
    app = FastAPI()
    with pytest.raises(TypeError, match="exactly one require"):
        app.router.add_api_route(
            "/lean", endpoint, methods=["POST"], route_class_override=LeanRoute
        )
