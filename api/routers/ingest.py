"""Segment-compatible ingestion: `/v1/track|identify|page|alias|batch` (role ingest).

A lean path: the raw body is validated in one pass (pydantic-core parses the JSON), stored with
its outbox row in one transaction, then 202. Journey work happens later in the processor.
`add_ingest_routes` puts these routes on the application itself (not through an included
router, which FastAPI resolves lazily per request) with the `LeanRoute` class."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.deps import AdminDep, IngestDep, SessionDep
from api.lean_route import LeanEndpoint, LeanRoute
from rejse.errors import DomainError
from rejse.events import deadletters, ingest
from rejse.events.schemas import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    SINGLE_SCHEMAS,
    BatchItem,
    IngestAccepted,
    SegmentMessageBase,
)
from rejse.events.writer import writer_for
from rejse.runtime import Runtime

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed JSON"},
    413: {"description": "event over 32 KB or batch over 500 KB"},
    422: {"description": "invalid fields (each named in `errors`)"},
}


def _json(content: Any, status_code: int) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def error_response(exc: DomainError) -> Response:
    errors = getattr(exc, "errors", None) or (
        [{"field": exc.field, "message": exc.message}] if exc.field else []
    )
    return _json({"detail": exc.message, "errors": errors}, status_code=exc.status_code)


async def _read(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit():
        if int(length) > limit:
            raise DomainError(
                f"body is larger than {limit // 1024} KB", field="body", status_code=413
            )
        return await request.body()  # bounded by the checked Content-Length
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise DomainError(
                f"body is larger than {limit // 1024} KB", field="body", status_code=413
            )
    return bytes(body)


async def store(
    request: Request,
    runtime: Runtime,
    rows: Sequence[dict[str, Any]],
    buckets: Sequence[int],
    *,
    source: str = "api",
) -> Response:
    """Durably store (group commit with concurrent requests), then 202."""
    writer = writer_for(request.app.state, runtime.engine)
    accepted, duplicates = await writer.submit(rows, buckets, source=source)
    return _json({"accepted": accepted, "duplicates": duplicates}, status_code=202)


def _single(type_: str) -> tuple[LeanEndpoint, type[SegmentMessageBase]]:
    schema = SINGLE_SCHEMAS[type_]

    async def endpoint(request: Request, _: IngestDep) -> Response:
        try:
            row, bucket = ingest.parse_single(type_, await _read(request, MAX_EVENT_BYTES))
        except DomainError as exc:
            return error_response(exc)
        return await store(request, request.app.state.runtime, [row], [bucket])

    endpoint.__name__ = f"ingest_{type_}"
    endpoint.__doc__ = (
        f"Segment `{type_}` call. `userId` or `anonymousId` is required; "
        "`messageId` makes it idempotent. Answers 202 once stored."
    )
    return endpoint, schema


async def ingest_batch(request: Request, _: IngestDep) -> Response:
    """Up to 500 KB of Segment messages (each with `type`), stored all-or-nothing."""
    try:
        rows, buckets = ingest.parse_batch(await _read(request, MAX_BATCH_BYTES))
    except DomainError as exc:
        return error_response(exc)
    return await store(request, request.app.state.runtime, rows, buckets)


_BATCH_BODY = {
    "type": "object",
    "title": "BatchIn",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "minItems": 1, "items": BatchItem.model_json_schema()},
        "context": {"type": "object"},
        "sentAt": {"type": "string", "format": "date-time"},
    },
}


def add_ingest_routes(app: FastAPI) -> None:
    """`/v1/track|identify|page|alias|batch` directly on the app (the hot path)."""

    def add(
        path: str,
        endpoint: LeanEndpoint,
        body_schema: dict[str, Any],
        summary: str | None = None,
    ) -> None:
        app.router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            status_code=202,
            response_model=IngestAccepted,
            responses=_ERRORS,
            summary=summary,
            tags=["ingest"],
            route_class_override=LeanRoute,
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body_schema}},
                }
            },
        )

    for type_ in ("track", "identify", "page", "alias"):
        endpoint, schema = _single(type_)
        add(
            f"/v1/{type_}",
            endpoint,
            schema.model_json_schema(),
            f"{type_.capitalize()} (Segment spec)",
        )
    add("/v1/batch", ingest_batch, _BATCH_BODY)


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
def list_dead_letters(
    session: SessionDep,
    _: AdminDep,
    include_retried: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterPublic]:
    """Events the processor gave up on after its retries (newest first)."""
    return [
        DeadLetterPublic(**d.model_dump())
        for d in deadletters.list_dead_letters(
            session, include_retried=include_retried, limit=limit
        )
    ]


@admin.post("/{dead_letter_id}/retry", response_model=DeadLetterPublic)
def retry_dead_letter(dead_letter_id: int, session: SessionDep, _: AdminDep) -> DeadLetterPublic:
    """Put the event back on the outbox; the processor picks it up again."""
    dead = deadletters.retry_dead_letter(session, dead_letter_id=dead_letter_id)
    session.commit()
    return DeadLetterPublic(**dead.model_dump())


router = admin
