"""Error responses: every 4xx names the field or the problem; no 500 leaks internals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rejse.errors import DomainError
from rejse.logging import get_logger

log = get_logger("rejse.api")


def _loc(loc: Sequence[object]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_payload(errors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    details = [
        {"field": _loc(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in errors
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    return {"detail": summary, "errors": details}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_payload(list(exc.errors())), status_code=422)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        body: dict[str, Any] = {"detail": exc.message}
        if exc.field:
            body["errors"] = [{"field": exc.field, "message": exc.message}]
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", route=getattr(request.scope.get("route"), "path", None))
        return JSONResponse({"detail": "internal error; see server logs"}, status_code=500)
