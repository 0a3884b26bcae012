"""Error responses: every 4xx names the field or the problem; no 500 leaks internals."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rejse.logging import get_logger

log = get_logger("rejse.api")


class DomainError(Exception):
    """Raised by service functions for a rejected request; `field` names the culprit."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status_code is not None:
            self.status_code = status_code


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


def _loc(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_payload(errors: list[dict]) -> dict:
    details = [{"field": _loc(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in errors]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    return {"detail": summary, "errors": details}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_payload(list(exc.errors())), status_code=422)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        body: dict = {"detail": exc.message}
        if exc.field:
            body["errors"] = [{"field": exc.field, "message": exc.message}]
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", route=getattr(request.scope.get("route"), "path", None))
        return JSONResponse({"detail": "internal error; see server logs"}, status_code=500)
