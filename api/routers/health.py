"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import RuntimeDep, require
from rejse.roles import Role
from rejse.runtime import Runtime
from rejse.state_metrics import state_registry

router = APIRouter(tags=["operations"])

_CHECK = {"type": "string", "enum": ["ok", "unreachable"]}
READINESS: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready"]},
        "checks": {
            "type": "object",
            "required": ["database", "temporal"],
            "properties": {"database": _CHECK, "temporal": _CHECK},
        },
    },
}


@router.get("/healthz")
async def healthz() -> dict[str, Any]:  # documented as a free-form object: keep it so
    return {"status": "ok"}


def _db_ok(runtime: Runtime) -> bool:
    try:
        with runtime.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001
        return False


async def _within(check: Awaitable[bool], seconds: float = 3.0) -> bool:
    """A check that does not answer in time counts as unreachable."""
    try:
        return await asyncio.wait_for(check, seconds)
    except TimeoutError:
        return False


@router.get(
    "/readyz",
    responses={
        200: {
            "description": "The database and Temporal answer",
            "content": {"application/json": {"schema": READINESS}},
        },
        503: {
            "description": "The database or Temporal does not answer (`checks` says which)",
            "content": {"application/json": {"schema": READINESS}},
        },
    },
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    db_ok, temporal_ok = await asyncio.gather(
        _within(asyncio.to_thread(_db_ok, runtime)), _within(runtime.temporal.ping())
    )
    checks = {
        "database": "ok" if db_ok else "unreachable",
        "temporal": "ok" if temporal_ok else "unreachable",
    }
    ready = db_ok and temporal_ok
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    dependencies=[Depends(require(Role.analyst))],
    response_class=PlainTextResponse,
    responses={200: {"description": "Prometheus text exposition format"}},
)
def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus metrics; scrape with an admin or analyst key as bearer token. This process's
    counters, then what the database says (processor lag, outbox, journey runs by state)."""
    state = getattr(request.app.state, "state_metrics", None)
    if state is None:
        state = request.app.state.state_metrics = state_registry(runtime.engine)
    return Response(generate_latest() + generate_latest(state), media_type=CONTENT_TYPE_LATEST)
