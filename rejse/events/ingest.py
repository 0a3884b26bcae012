"""Ingestion: raw request bytes -> validated Segment messages -> event rows, stored durably
(events + outbox in one transaction) before the API answers 202. No framework code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from rejse.db import utcnow
from rejse.errors import DomainError
from rejse.events.schemas import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    SINGLE_SCHEMAS,
    BatchIn,
    SegmentMessageBase,
    needs_deep_check,
)
from rejse.events.service import event_row
from rejse.events.store import bucket_for, store_events
from rejse.ids import ulid
from rejse.metrics import EVENTS_ACCEPTED, EVENTS_DUPLICATE


class InvalidEvents(DomainError):
    """Validation failed; `errors` lists every field with its message."""

    def __init__(self, errors: list[dict[str, str]], status_code: int = 422):
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        super().__init__(
            summary, field=errors[0]["field"] if errors else None, status_code=status_code
        )
        self.errors = errors


def _errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()))
        field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "body")
        out.append({"field": field, "message": err.get("msg", "invalid")})
    return out


def _too_large(what: str, limit: int, field: str) -> DomainError:
    return DomainError(f"{what} is larger than {limit // 1024} KB", field=field, status_code=413)


def _check_rules(msg: SegmentMessageBase, type_: str, prefix: str) -> list[dict[str, str]]:
    p = f"{prefix}." if prefix else ""
    errors = []
    if msg.userId is None and msg.anonymousId is None:
        errors.append({"field": f"{p}userId", "message": "userId or anonymousId is required"})
    if type_ == "track" and not getattr(msg, "event", None):
        errors.append({"field": f"{p}event", "message": "event is required for track"})
    if type_ == "alias":
        if not getattr(msg, "previousId", None):
            errors.append(
                {"field": f"{p}previousId", "message": "previousId is required for alias"}
            )
        if msg.userId is None:
            errors.append({"field": f"{p}userId", "message": "userId is required for alias"})
    return errors


def corrected_timestamp(
    timestamp: dt.datetime | None, sent_at: dt.datetime | None, received_at: dt.datetime
) -> dt.datetime:
    """Segment's clock-skew correction: receivedAt - (sentAt - timestamp)."""
    if timestamp is None:
        return received_at
    timestamp = _aware(timestamp)
    if sent_at is None:
        return timestamp
    try:
        return received_at - (_aware(sent_at) - timestamp)
    except OverflowError:
        raise DomainError(
            "timestamp and sentAt are too far apart", field="timestamp", status_code=422
        ) from None


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _row(
    msg: SegmentMessageBase,
    type_: str,
    received_at: dt.datetime,
    batch_context: dict[str, Any] | None = None,
    batch_sent_at: dt.datetime | None = None,
    source: str = "api",
) -> tuple[dict[str, Any], int]:
    properties = msg.properties
    if type_ == "page":
        name, category = getattr(msg, "name", None), getattr(msg, "category", None)
        if name is not None or category is not None:
            properties = {
                **properties,
                **({"name": name} if name is not None else {}),
                **({"category": category} if category is not None else {}),
            }
    context = {**batch_context, **msg.context} if batch_context else msg.context
    row = event_row(
        type=type_,
        message_id=msg.messageId or f"srv-{ulid()}",
        timestamp=corrected_timestamp(msg.timestamp, msg.sentAt or batch_sent_at, received_at),
        received_at=received_at,
        event=getattr(msg, "event", None),
        user_id=msg.userId,
        anonymous_id=msg.anonymousId,
        previous_id=getattr(msg, "previousId", None),
        properties=properties,
        traits=msg.traits,
        context=context,
        source=source,
    )
    # Events of one identity key keep their order (browser sessions carry the anonymousId).
    return row, bucket_for(msg.anonymousId or msg.userId or "")


def parse_single(type_: str, body: bytes) -> tuple[dict[str, Any], int]:
    """Validate one `/v1/<type>` body; raises DomainError (400/413/422) naming the field."""
    if len(body) > MAX_EVENT_BYTES:
        raise _too_large("event", MAX_EVENT_BYTES, "body")
    try:
        msg = SINGLE_SCHEMAS[type_].model_validate_json(
            body, context={"shallow": not needs_deep_check(body)}
        )
    except ValidationError as exc:
        raise _as_error(exc) from None
    errors = _check_rules(msg, type_, "")
    if errors:
        raise InvalidEvents(errors)
    return _row(msg, type_, utcnow())


def parse_batch(body: bytes) -> tuple[list[dict[str, Any]], list[int]]:
    if len(body) > MAX_BATCH_BYTES:
        raise _too_large("batch", MAX_BATCH_BYTES, "body")
    if len(body) > MAX_EVENT_BYTES:  # only then can a single event be over its limit
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError:
            raw = None
        items = raw.get("batch") if isinstance(raw, dict) else None
        for i, item in enumerate(items if isinstance(items, list) else []):
            if len(orjson.dumps(item)) > MAX_EVENT_BYTES:
                raise _too_large(f"event batch.{i}", MAX_EVENT_BYTES, f"batch.{i}")
    try:
        envelope = BatchIn.model_validate_json(
            body, context={"shallow": not needs_deep_check(body)}
        )
    except ValidationError as exc:
        raise _as_error(exc) from None
    received_at = utcnow()
    rows, buckets, errors = [], [], []
    for i, msg in enumerate(envelope.batch):
        prefix = f"batch.{i}"
        item_errors = _check_rules(msg, msg.type, prefix)
        if item_errors:
            errors.extend(item_errors)
            continue
        row, bucket = _row(msg, msg.type, received_at, envelope.context, envelope.sentAt)
        rows.append(row)
        buckets.append(bucket)
    if errors:  # all or nothing: never a partial silent write
        raise InvalidEvents(errors)
    return rows, buckets


def _as_error(exc: ValidationError) -> DomainError:
    errors = _errors(exc)
    if any(e.get("type") == "json_invalid" for e in exc.errors(include_url=False)):
        return DomainError("malformed JSON: " + errors[0]["message"], field="body")
    if any(
        e.get("type") == "model_type" and not e.get("loc") for e in exc.errors(include_url=False)
    ):
        return DomainError("the body must be a JSON object", field="body")
    return InvalidEvents(errors)


def accept(
    engine: Engine, rows: Sequence[dict[str, Any]], buckets: Sequence[int], *, source: str = "api"
) -> tuple[int, int]:
    """Store in one transaction; returns (accepted, duplicates)."""
    with engine.begin() as conn:
        accepted = store_events(conn, rows, buckets)
    duplicates = len(rows) - accepted
    EVENTS_ACCEPTED.labels(source).inc(accepted)
    if duplicates:
        EVENTS_DUPLICATE.labels(source).inc(duplicates)
    return accepted, duplicates
