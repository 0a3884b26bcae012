"""Segment-compatible ingestion: `/v1/track|identify|page|alias|batch` (role ingest).

A lean path: the raw body is validated in one pass (pydantic-core parses the JSON), stored with
its outbox row in one transaction, then 202. Journey work happens later in the processor."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.deps import AdminDep, IngestDep, SessionDep
from rejse.errors import DomainError
from rejse.events import deadletters, ingest
from rejse.events.schemas import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    SINGLE_SCHEMAS,
    BatchItem,
    IngestAccepted,
)
from rejse.events.writer import writer_for

v1 = APIRouter(prefix="/v1", tags=["ingest"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed JSON"}, 413: {"description": "event over 32 KB or batch over 500 KB"},
    422: {"description": "invalid fields (each named in `errors`)"},
}


def _json(content: Any, status_code: int) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def error_response(exc: DomainError) -> Response:
    errors = getattr(exc, "errors", None) or ([{"field": exc.field, "message": exc.message}]
                                               if exc.field else [])
    return _json({"detail": exc.message, "errors": errors}, status_code=exc.status_code)


async def _read(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit():
        if int(length) > limit:
            raise DomainError(f"body is larger than {limit // 1024} KB", field="body",
                              status_code=413)
        return await request.body()      # bounded by the checked Content-Length
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise DomainError(f"body is larger than {limit // 1024} KB", field="body",
                              status_code=413)
    return bytes(body)


async def store(request: Request, runtime, rows, buckets, *, source: str = "api") -> Response:
    """Durably store (group commit with concurrent requests), then 202."""
    writer = writer_for(request.app.state, runtime.engine)
    accepted, duplicates = await writer.submit(rows, buckets, source=source)
    return _json({"accepted": accepted, "duplicates": duplicates}, status_code=202)


def _single(type_: str):
    schema = SINGLE_SCHEMAS[type_]

    async def endpoint(request: Request, _: IngestDep) -> Response:
        try:
            row, bucket = ingest.parse_single(type_, await _read(request, MAX_EVENT_BYTES))
        except DomainError as exc:
            return error_response(exc)
        return await store(request, request.app.state.runtime, [row], [bucket])

    endpoint.__name__ = f"ingest_{type_}"
    endpoint.__doc__ = (f"Segment `{type_}` call. `userId` or `anonymousId` is required; "
                        "`messageId` makes it idempotent. Answers 202 once stored.")
    return endpoint, schema


for _type in ("track", "identify", "page", "alias"):
    _endpoint, _schema = _single(_type)
    v1.add_api_route(
        f"/{_type}", _endpoint, methods=["POST"], status_code=202, response_model=IngestAccepted,
        responses=_ERRORS, summary=f"{_type.capitalize()} (Segment spec)",
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": _schema.model_json_schema()}}}},
    )


@v1.post("/batch", status_code=202, response_model=IngestAccepted, responses=_ERRORS,
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"type": "object", "title": "BatchIn", "required": ["batch"],
                            "properties": {
                                "batch": {"type": "array", "minItems": 1,
                                          "items": BatchItem.model_json_schema()},
                                "context": {"type": "object"},
                                "sentAt": {"type": "string", "format": "date-time"}}}}}}})
async def ingest_batch(request: Request, _: IngestDep) -> Response:
    """Up to 500 KB of Segment messages (each with `type`), stored all-or-nothing."""
    try:
        rows, buckets = ingest.parse_batch(await _read(request, MAX_BATCH_BYTES))
    except DomainError as exc:
        return error_response(exc)
    return await store(request, request.app.state.runtime, rows, buckets)


# ----------------------------------------------------------------------------- dead letters (admin)

admin = APIRouter(prefix="/api/dead-letters", tags=["ingest"])


class DeadLetterPublic(BaseModel):
    id: int
    event_id: str
    stage: str
    error: str
    attempts: int
    at: dt.datetime
    retried_at: dt.datetime | None


@admin.get("", response_model=list[DeadLetterPublic])
def list_dead_letters(session: SessionDep, _: AdminDep, include_retried: bool = False,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list:
    """Events the processor gave up on after its retries (newest first)."""
    return [DeadLetterPublic(**d.model_dump()) for d in
            deadletters.list_dead_letters(session, include_retried=include_retried, limit=limit)]


@admin.post("/{dead_letter_id}/retry", response_model=DeadLetterPublic)
def retry_dead_letter(dead_letter_id: int, session: SessionDep, _: AdminDep) -> DeadLetterPublic:
    """Put the event back on the outbox; the processor picks it up again."""
    dead = deadletters.retry_dead_letter(session, dead_letter_id=dead_letter_id)
    session.commit()
    return DeadLetterPublic(**dead.model_dump())


router = APIRouter()
router.include_router(v1)
router.include_router(admin)
