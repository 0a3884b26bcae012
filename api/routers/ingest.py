"""Segment-compatible ingestion: `/v1/track|identify|page|screen|group|alias|batch` (role
ingest; the key as Bearer token or as HTTP Basic user name, as the Segment and RudderStack SDKs
send it).

A lean path: the raw body (gzip/deflate decompressed with a bound) is validated in one pass
(pydantic-core parses the JSON), stored with its outbox row in one transaction, then 200
`{"success": true, ...}`. Journey work happens later in the processor.
`add_ingest_routes` puts these routes on the application itself (not through an included
router, which FastAPI resolves lazily per request) with the `LeanRoute` class."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.deps import AdminDep, IngestDep, SessionDep
from api.errors import responses
from api.lean_route import LeanEndpoint, LeanRoute
from rejse.errors import DomainError
from rejse.events import deadletters, ingest
from rejse.events.bodies import content_encoding, read_body, too_large, wire_limit
from rejse.events.schemas import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    SINGLE_SCHEMAS,
    BatchItem,
    IngestResult,
    SegmentMessageBase,
)
from rejse.events.writer import writer_for
from rejse.logging import get_logger
from rejse.runtime import Runtime

log = get_logger("rejse.api.ingest")

# Every error body also carries `code` and `message` (RudderStack's SDK reads them).
_ERRORS: dict[int | str, dict[str, Any]] = {
    **responses(
        (
            400,
            "malformed JSON or compressed data, or a value no database can hold "
            "(integer beyond 64 bits, NaN/Infinity, NUL character), named by its path",
        ),
        (
            413,
            "event over 32 KB or batch over 500 KB (decompressed), or a body that "
            "expands more than 100 times",
        ),
        (415, "Content-Encoding other than gzip, deflate or identity"),
    ),
    401: {"description": "no API key, or an unknown one"},
    403: {"description": "the key's role may not ingest"},
    422: {"description": "invalid fields (each named in `errors`)"},
}

# The `code` of an error answer: RudderStack's SDK reads `code` and `message` from any answer
# but 200, and retries (as if the network had failed) when they are missing.
_CODES = {400: "invalid_request", 413: "too_large", 415: "unsupported_encoding"}


def _json(content: Any, status_code: int) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def error_response(exc: DomainError) -> Response:
    errors = getattr(exc, "errors", None) or (
        [{"field": exc.field, "message": exc.message}] if exc.field else []
    )
    return _json({"detail": exc.message, "errors": errors}, status_code=exc.status_code)


def _v1_error(exc: DomainError) -> Response:
    errors = getattr(exc, "errors", None) or [
        {"field": exc.field or "body", "message": exc.message}
    ]
    code = _CODES.get(exc.status_code, "invalid_messages" if exc.status_code == 422 else "refused")
    body = {"detail": exc.message, "errors": errors, "code": code, "message": exc.message}
    return _json(body, status_code=exc.status_code)


def _declared_length(request: Request) -> int | None:
    """The Content-Length as a number; one of more digits than any real body counts as over
    every limit without int(), which refuses more than 4,300 digits."""
    length = request.headers.get("content-length")
    if not length or not length.isascii() or not length.isdigit():
        return None
    return int(length) if len(length) <= 18 else 2**63


async def _read(request: Request, limit: int) -> bytes:
    """The raw body, at most `limit` bytes (413 otherwise); no decoding (signed webhooks)."""
    length = _declared_length(request)
    if length is not None:
        if length > limit:
            raise too_large(limit)
        return await request.body()  # bounded by the checked Content-Length
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


async def _read_v1(request: Request, limit: int) -> bytes:
    """The body decompressed per Content-Encoding; `limit` applies to the decompressed bytes
    (the declared length of a compressed body only to what it could hold)."""
    encoding = request.headers.get("content-encoding")
    if content_encoding(encoding) is None:
        return await _read(request, limit)
    length = _declared_length(request)
    if length is not None and length > wire_limit(limit):
        raise too_large(limit)
    return await read_body(request.stream(), encoding=encoding, limit=limit)


async def _submit(
    request: Request,
    runtime: Runtime,
    rows: Sequence[dict[str, Any]],
    buckets: Sequence[int],
    *,
    source: str,
) -> tuple[int, int]:
    """Durably store (group commit with concurrent requests); (accepted, duplicates)."""
    writer = writer_for(request.app.state, runtime.engine)
    return await writer.submit(rows, buckets, source=source)


async def store(
    request: Request,
    runtime: Runtime,
    rows: Sequence[dict[str, Any]],
    buckets: Sequence[int],
    *,
    source: str = "api",
) -> Response:
    """Durably store, then 202 `{"accepted", "duplicates"}` (the webhooks' answer)."""
    accepted, duplicates = await _submit(request, runtime, rows, buckets, source=source)
    return _json({"accepted": accepted, "duplicates": duplicates}, status_code=202)


async def _accept(
    request: Request,
    rows: Sequence[dict[str, Any]],
    buckets: Sequence[int],
    errors: Sequence[dict[str, Any]] = (),
    rejected: int = 0,
) -> Response:
    """Durably store, then 200 `{"success": true, ...}`: what Segment's API answers and the
    SDKs count as delivered (RudderStack's takes nothing else)."""
    runtime: Runtime = request.app.state.runtime
    accepted, duplicates = await _submit(request, runtime, rows, buckets, source="api")
    body = {
        "success": True,
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected,
        "errors": list(errors),
    }
    return _json(body, status_code=200)


def _single(type_: str) -> tuple[LeanEndpoint, type[SegmentMessageBase]]:
    schema = SINGLE_SCHEMAS[type_]

    async def endpoint(request: Request, _: IngestDep) -> Response:
        try:
            row, bucket = ingest.parse_single(type_, await _read_v1(request, MAX_EVENT_BYTES))
        except DomainError as exc:
            return _v1_error(exc)
        return await _accept(request, [row], [bucket])

    endpoint.__name__ = f"ingest_{type_}"
    endpoint.__doc__ = (
        f"Segment `{type_}` call. `userId` or `anonymousId` is required; "
        "`messageId` makes it idempotent. Answers 200 `success` once stored."
    )
    return endpoint, schema


async def ingest_batch(request: Request, _: IngestDep) -> Response:
    """Up to 500 KB of Segment messages (each with `type`). A bad message is refused alone:
    the others are stored, and `rejected`/`errors` name it by index and field. Only a batch
    with no good message, or a bad envelope, is refused as a whole."""
    try:
        parsed = ingest.split_batch(await _read_v1(request, MAX_BATCH_BYTES))
    except DomainError as exc:
        return _v1_error(exc)
    if parsed.errors:
        # Which fields (not their values, which may be personal data) and how many.
        log.info(
            "ingest_messages_rejected",
            rejected=parsed.rejected,
            fields=sorted(
                {".".join(e["field"].split(".")[2:3]) or "message" for e in parsed.errors}
            ),
        )
    return await _accept(request, parsed.rows, parsed.buckets, parsed.errors, parsed.rejected)


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
    """`/v1/track|identify|page|screen|group|alias|batch` directly on the app (the hot path)."""

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
            status_code=200,
            response_model=IngestResult,
            responses=_ERRORS,
            summary=summary,
            tags=["ingest"],
            route_class_override=LeanRoute,
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body_schema}},
                    "description": "JSON; `Content-Encoding: gzip` or `deflate` welcome",
                }
            },
        )

    for type_ in ("track", "identify", "page", "screen", "group", "alias"):
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


@admin.post(
    "/{dead_letter_id}/retry",
    response_model=DeadLetterPublic,
    responses=responses(
        (404, "No such dead letter, or its event was erased"), (409, "Retried already")
    ),
)
def retry_dead_letter(
    dead_letter_id: Annotated[int, Path(ge=1, le=2**31 - 1)], session: SessionDep, _: AdminDep
) -> DeadLetterPublic:
    """Put the event back on the outbox; the processor picks it up again."""
    dead = deadletters.retry_dead_letter(session, dead_letter_id=dead_letter_id)
    session.commit()
    return DeadLetterPublic(**dead.model_dump())


router = admin
