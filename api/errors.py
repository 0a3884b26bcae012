"""Error responses and what is logged about errors.

Every 4xx body is `{"detail": str, "errors": [{"field": str, "message": str}]}` (`errors` empty
when no field is to blame), and `/openapi.json` documents exactly that body for every 422. A
500 says nothing about its cause; the log names the error's class, SQLSTATE and constraint and
where it was raised, never its message: a database error's message echoes the failing row's
values (an email in a unique violation), and any other message may hold request data."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from rejse.errors import DomainError
from rejse.inputs import MAX_CONTROL_PLANE_BODY
from rejse.logging import get_logger

log = get_logger("rejse.api")

INTERNAL_ERROR = {"detail": "internal error; see server logs"}
# The database could not be reached (down, restarting, the pool exhausted, SQLite locked):
# nothing was stored, and the client may send the same request again.
DATABASE_UNAVAILABLE = {"detail": "the database is unavailable; retry", "errors": []}
DATABASE_RETRY_AFTER = "5"


DISK_FULL = {"detail": "the database's disk is full; nothing was stored, retry", "errors": []}


def database_unavailable(exc: BaseException) -> bool:
    """The error means the database was not reachable, not that the request was wrong."""
    return isinstance(exc, OperationalError | PoolTimeout)


def unavailable_body(exc: BaseException) -> dict[str, Any]:
    """What a 503 for `exc` says: a full disk (SQLite's SQLITE_FULL, PostgreSQL's 53100) by
    name, so an operator reading a client's log knows where to look."""
    driver = getattr(exc, "orig", None)
    if (
        getattr(driver, "sqlite_errorname", None) == "SQLITE_FULL"
        or getattr(driver, "sqlstate", None) == "53100"
    ):
        return DISK_FULL
    return DATABASE_UNAVAILABLE


LIMIT_TEXT = f"{MAX_CONTROL_PLANE_BODY / 1024 / 1024:g} MB"

# Unique and exclusion violations: another request stored the same key first (PostgreSQL's
# SQLSTATE, SQLite's extended error names).
_CONFLICT_SQLSTATES = frozenset({"23505", "23P01"})
_CONFLICT_SQLITE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


def _loc(loc: Sequence[object]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_payload(errors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    details = [
        {
            # A JSON syntax error's location is a character offset, not a field.
            "field": "body" if e.get("type") == "json_invalid" else _loc(e.get("loc", ())),
            "message": e.get("msg", "invalid"),
        }
        for e in errors
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    return {"detail": summary, "errors": details}


def field_error(field: str, message: str, *, status_code: int = 422) -> JSONResponse:
    """The 4xx body for one field."""
    return JSONResponse(
        {"detail": f"{field}: {message}", "errors": [{"field": field, "message": message}]},
        status_code=status_code,
    )


def describe_error(exc: BaseException) -> dict[str, Any]:
    """What may be logged about `exc`: its class and its cause's, the driver's SQLSTATE (or
    SQLite's error name), the constraint and table it names, and the frames it passed through
    (file, line, function). Never a message: those echo values."""
    info: dict[str, Any] = {"error": type(exc).__name__}
    driver = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    cause = driver if driver is not None else (exc.__cause__ or exc.__context__)
    if cause is not None:
        info["cause"] = type(cause).__name__
    if driver is not None:
        sqlstate = getattr(driver, "sqlstate", None)
        if sqlstate:
            info["sqlstate"] = str(sqlstate)
        diag = getattr(driver, "diag", None)  # psycopg: the server's fields, one by one
        for name, attribute in (
            ("constraint", "constraint_name"),
            ("table", "table_name"),
            ("column", "column_name"),
        ):
            value = getattr(diag, attribute, None) if diag is not None else None
            if value:
                info[name] = str(value)
        sqlite_name = getattr(driver, "sqlite_errorname", None)
        if sqlite_name:
            info["sqlite_error"] = str(sqlite_name)
    info["where"] = [
        f"{'/'.join(PurePath(f.filename).parts[-2:])}:{f.lineno} in {f.name}"
        for f in traceback.extract_tb(exc.__traceback__)[-10:]
    ]
    return info


def is_conflict(exc: IntegrityError) -> bool:
    """A unique (or exclusion) violation: the same key was stored by another request first."""
    driver = exc.orig
    return (
        getattr(driver, "sqlstate", None) in _CONFLICT_SQLSTATES
        or getattr(driver, "sqlite_errorname", None) in _CONFLICT_SQLITE
    )


def _route(request: Request) -> str | None:
    return getattr(request.scope.get("route"), "path", None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_payload(list(exc.errors())), status_code=422)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        errors = [{"field": exc.field, "message": exc.message}] if exc.field else []
        return JSONResponse({"detail": exc.message, "errors": errors}, status_code=exc.status_code)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        if is_conflict(exc):
            # Two requests raced for the same unique value; the loser may simply retry.
            log.warning("database_conflict", route=_route(request), **describe_error(exc))
            return JSONResponse(
                {"detail": "a record with the same key was stored meanwhile; retry", "errors": []},
                status_code=409,
            )
        log.error("unhandled_error", route=_route(request), **describe_error(exc))
        return JSONResponse(INTERNAL_ERROR, status_code=500)

    @app.exception_handler(OperationalError)
    async def _unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database_unavailable", route=_route(request), **describe_error(exc))
        return JSONResponse(
            unavailable_body(exc),
            status_code=503,
            headers={"Retry-After": DATABASE_RETRY_AFTER},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Reached only by errors outside the request context middleware (which answers the
        # rest itself, see api.middleware): logged the same way.
        log.error("unhandled_error", route=_route(request), **describe_error(exc))
        return JSONResponse(INTERNAL_ERROR, status_code=500)

    document_validation_errors(app)


# ----------------------------------------------------------------------------- OpenAPI

FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError",
    "type": "object",
    "required": ["field", "message"],
    "properties": {
        "field": {
            "type": "string",
            "description": "the culprit: a dotted path into the body (`traits.tags.1`), a "
            "parameter's name, or `body` for the body as a whole",
        },
        "message": {"type": "string"},
    },
}
VALIDATION_FAILED_SCHEMA: dict[str, Any] = {
    "title": "ValidationFailed",
    "type": "object",
    "required": ["detail", "errors"],
    "properties": {
        "detail": {"type": "string", "description": "one line naming the fields (up to five)"},
        "errors": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/FieldError"},
            "description": "every field that failed, each with its message",
        },
    },
}
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail", "errors"],
    "properties": {
        "detail": {"type": "string", "description": "what is wrong, in one line"},
        "errors": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/FieldError"},
            "description": "the field to blame, when there is one (else empty)",
        },
    },
}
_VALIDATION_REF = {"$ref": "#/components/schemas/ValidationFailed"}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_AUTH_ERROR_REF = {"$ref": "#/components/schemas/AuthError"}  # api.app documents it

# What each documented error status means when a route says no more. The body is always
# `Error` (422: `ValidationFailed`, the same shape): DomainError's handler writes it.
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request is refused; `errors` names the field to blame",
    404: "No such record; `errors` names the parameter or field that named it",
    401: "No valid credentials (API key or signature)",
    409: "The record's state does not allow this (or the same key was stored meanwhile)",
    413: "The body is over the operation's size limit",
    415: "A Content-Encoding the operation does not take",
    422: "Invalid input; `errors` names each field",
    503: "A service the operation needs (Temporal) is unavailable; retry later",
}

Responses = dict[int | str, dict[str, Any]]


def responses(*statuses: int | tuple[int, str]) -> Responses:
    """The `responses=` of a route decorator for the error statuses the route itself can give
    (401/403/413/422 of the key check, size limit and request schema are documented already):
    `responses(404, (409, "the profile is erased"))`. Each gets rejse's error body (a 401 the
    body of a refused key, `AuthError`: `errors` may be left out); a status given as
    `(status, description)` gets its own description. Merge with `|`."""
    out: Responses = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, None)
        schema = _AUTH_ERROR_REF if status == 401 else _ERROR_REF
        out[status] = {
            "description": description or ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": dict(schema)}},
        }
    return out


NOT_FOUND = responses(404)
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _references(node: Any, name: str) -> bool:
    target = f"#/components/schemas/{name}"
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            if current.get("$ref") == target:
                return True
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return False


def rewrite_validation_responses(doc: dict[str, Any]) -> dict[str, Any]:
    """Point every operation's 422 at `ValidationFailed` (rejse's body) instead of FastAPI's
    `HTTPValidationError`, keeping each 422's own description, and document the 413 of every
    control-plane operation that takes a body; drop FastAPI's schemas once nothing names
    them."""

    def body() -> dict[str, Any]:
        return {"application/json": {"schema": dict(_VALIDATION_REF)}}

    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"]["content"] = body()
            if path.startswith("/api/") and "requestBody" in operation:
                responses.setdefault(
                    "413",
                    {
                        "description": f"The body is over {LIMIT_TEXT}, the control plane's "
                        "limit (refused before it is read)",
                        "content": body(),
                    },
                )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["FieldError"] = FIELD_ERROR_SCHEMA
    schemas["ValidationFailed"] = VALIDATION_FAILED_SCHEMA
    schemas["Error"] = ERROR_SCHEMA
    for name in _FASTAPI_SCHEMAS:
        if name in schemas:
            rest = {k: v for k, v in schemas.items() if k != name}
            if not _references({"paths": doc.get("paths", {}), "schemas": rest}, name):
                del schemas[name]
    return doc


def document_validation_errors(app: FastAPI) -> None:
    """Post-process the app's OpenAPI document once, when it is first built."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = rewrite_validation_responses(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
