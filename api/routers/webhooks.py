"""Webhooks in (authenticated by signature only, public routes) and their sources (admin).

- `POST /webhooks/shopify`: `X-Shopify-Hmac-Sha256` over the raw body, dedupe on
  `X-Shopify-Webhook-Id`, topic from `X-Shopify-Topic`.
- `POST /webhooks/generic/{source}`: `X-Rejse-Signature: t=<unix>,v1=<hex>` over
  `"<t>.<raw body>"`, 300 s tolerance, several v1 values; body = a Segment message or batch.
- `/api/webhook-sources`: shops and generic sources with their secrets (shown once)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import AdminDep, RuntimeDep, SessionDep
from api.errors import NOT_FOUND, responses
from api.ratelimit import enforce
from api.routers.ingest import _json, _read, error_response, store
from rejse import signatures
from rejse.db import utcnow
from rejse.errors import DomainError
from rejse.events import ingest
from rejse.events import webhooks as hooks
from rejse.events.schemas import MAX_BATCH_BYTES, IngestAccepted, check_json
from rejse.inputs import Omittable, Text
from rejse.models.events import WebhookSource
from rejse.runtime import Runtime

router = APIRouter(tags=["webhooks"])
public = APIRouter(prefix="/webhooks")
admin = APIRouter(prefix="/api/webhook-sources")

_UNAUTHORIZED = {"detail": "invalid or missing signature"}


def _secrets(runtime: Runtime, kind: str, name: str | None) -> list[str]:
    with Session(runtime.engine) as session:
        return hooks.secrets_for(session, kind=kind, name=name)


@public.post(
    "/shopify",
    status_code=202,
    response_model=IngestAccepted,
    responses=responses(
        (400, "Malformed JSON, not an object, or a value no database can hold"),
        (401, "Bad or missing signature"),
        (413, "The body is over 500 KB"),
    ),
)
async def shopify_webhook(request: Request, runtime: RuntimeDep) -> Response:
    """Shopify webhooks: checkouts/create|update -> `Checkout Started`, orders/create ->
    `Order Completed`, customers/create|update -> identify. Other topics: 202, ignored."""
    try:
        body = await _read(request, MAX_BATCH_BYTES)
    except DomainError as exc:
        return error_response(exc)
    shop = request.headers.get("x-shopify-shop-domain")
    secrets = await run_in_threadpool(_secrets, runtime, "shopify", shop)
    if not hooks.verify_shopify(body, request.headers.get("x-shopify-hmac-sha256"), secrets):
        return _json(_UNAUTHORIZED, status.HTTP_401_UNAUTHORIZED)
    await enforce(request, f"shopify:{(shop or '')[:255]}", scope="ingest")
    topic = request.headers.get("x-shopify-topic", "")
    webhook_id = (
        request.headers.get("x-shopify-webhook-id")
        or hashlib.sha256(topic.encode() + b"\0" + body).hexdigest()
    )
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return error_response(DomainError("malformed JSON", field="body"))
    if not isinstance(payload, dict):
        return error_response(DomainError("the body must be a JSON object", field="body"))
    try:
        check_json(payload)
    except ValueError as exc:
        return error_response(DomainError(str(exc), field="body"))  # 400, as /v1 answers
    mapped = hooks.map_shopify(
        topic, payload, message_id=f"shopify:{webhook_id[:200]}", shop=shop, received_at=utcnow()
    )
    if not mapped:
        return _json({"accepted": 0, "duplicates": 0}, 202)
    rows, buckets = [row for row, _ in mapped], [bucket for _, bucket in mapped]
    return await store(request, runtime, rows, buckets, source="shopify")


@public.post(
    "/generic/{source}",
    status_code=202,
    response_model=IngestAccepted,
    responses=responses(
        (400, "Malformed JSON, or a value no database can hold"),
        (401, "Bad, missing or expired signature, or no such source"),
        (413, "The body (or a message in it) is over its size limit"),
        (422, "Invalid messages; `errors` names each field (and message index)"),
    ),
)
async def generic_webhook(source: str, request: Request, runtime: RuntimeDep) -> Response:
    """A signed Segment message (with `type`) or `{"batch": [...]}` from a registered source."""
    try:
        body = await _read(request, MAX_BATCH_BYTES)
    except DomainError as exc:
        return error_response(exc)
    secrets = await run_in_threadpool(_secrets, runtime, "generic", source[:255])
    if not secrets or not signatures.verify(
        body, request.headers.get("x-rejse-signature"), secrets
    ):
        return _json(_UNAUTHORIZED, status.HTTP_401_UNAUTHORIZED)
    await enforce(request, f"generic:{source[:255]}", scope="ingest")
    try:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise DomainError("malformed JSON", field="body") from None
        if isinstance(parsed, dict) and "batch" in parsed and "type" not in parsed:
            rows, buckets = ingest.parse_batch(body)
        else:
            rows, buckets = ingest.parse_batch(orjson.dumps({"batch": [parsed]}))
    except DomainError as exc:
        return error_response(exc)
    for row in rows:
        row["source"] = f"generic:{source}"[:60]
        row["message_id"] = f"{source}:{row['message_id']}"[:300]
    return await store(request, runtime, rows, buckets, source="generic")


class SourceCreate(BaseModel):
    kind: Literal["shopify", "generic"]
    name: str = Field(
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9._*-]+$",
        description="shop domain (shopify; `*` = any shop) or source name (generic)",
    )
    secret: Omittable[Text] = Field(
        default=None,
        min_length=16,
        max_length=255,
        description="the signing secret; generated when left out",
    )


class SourcePublic(BaseModel):
    id: str
    kind: str
    name: str
    secret: str = Field(description="masked")
    created_at: dt.datetime
    disabled_at: dt.datetime | None


class SourceCreated(SourcePublic):
    secret: str = Field(description="the signing secret, shown only now")


def _source(row: WebhookSource, *, reveal: bool = False) -> dict[str, Any]:
    data = row.model_dump()
    data["secret"] = row.secret if reveal else hooks.mask(row.secret)
    return data


@admin.post(
    "",
    status_code=201,
    response_model=SourceCreated,
    responses=responses((409, "An active source of this kind and name exists")),
)
def create_source(body: SourceCreate, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    row = hooks.create_source(session, kind=body.kind, name=body.name, secret=body.secret)
    session.commit()
    return _source(row, reveal=True)


@admin.get("", response_model=list[SourcePublic])
def list_sources(session: SessionDep, _: AdminDep) -> list[dict[str, Any]]:
    return [_source(r) for r in hooks.list_sources(session)]


@admin.delete("/{source_id}", response_model=SourcePublic, responses=NOT_FOUND)
def disable_source(source_id: str, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    row = hooks.disable_source(session, source_id=source_id)
    session.commit()
    return _source(row)


router.include_router(public)
router.include_router(admin)
