"""Ingestion: raw request bytes -> validated Segment messages -> event rows, stored durably
(events + outbox in one transaction) before the API answers. No framework code.

A single call is all or nothing. A batch is split: each message is validated on its own and a
bad one is refused alone (the answer names its index and field) while the good ones are
stored, because an SDK cannot repair a message it has already queued, and refusing the whole
batch would lose every good event sent with the bad one. Only a batch whose envelope is wrong
(not JSON, over 500 KB, no `batch` list, a bad top-level `context`) or whose every message is
bad is refused as a whole."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    UNSTORABLE,
    BatchEnvelope,
    BatchIn,
    BatchItem,
    SegmentMessageBase,
)
from rejse.events.service import event_row
from rejse.events.store import bucket_for, store_events
from rejse.events.values import might_be_unstorable
from rejse.ids import ulid
from rejse.metrics import EVENTS_ACCEPTED, EVENTS_BY_OUTCOME, EVENTS_DUPLICATE

TOO_LARGE = "too_large"  # internal problem kind of an oversized batch message

# (field, message, kind): kind is the pydantic error type, UNSTORABLE or TOO_LARGE
Problem = tuple[str, str, str]


class InvalidEvents(DomainError):
    """Validation failed; `errors` lists every field with its message (and, in a batch, the
    message's `index`)."""

    def __init__(self, errors: list[dict[str, Any]], status_code: int = 422):
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        super().__init__(
            summary, field=errors[0]["field"] if errors else None, status_code=status_code
        )
        self.errors = errors


def _problems(exc: ValidationError, prefix: str = "") -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()))
        sub = str((err.get("ctx") or {}).get("path") or "") if err["type"] == UNSTORABLE else ""
        if sub:
            loc = f"{loc}.{sub}" if loc else sub
        where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "body")
        out.append((where, err.get("msg", "invalid"), err["type"]))
    return out


def _status(problems: Sequence[Problem]) -> int:
    """400 when every problem is a value no database can hold, 413 when every one is a
    message over its size, 422 otherwise."""
    kinds = {kind for _, _, kind in problems}
    if kinds == {UNSTORABLE}:
        return 400
    if kinds == {TOO_LARGE}:
        return 413
    return 422


def _too_large(what: str, limit: int, field: str) -> DomainError:
    return DomainError(f"{what} is larger than {limit // 1024} KB", field=field, status_code=413)


def _check_rules(msg: SegmentMessageBase, type_: str, prefix: str) -> list[Problem]:
    p = f"{prefix}." if prefix else ""
    problems: list[Problem] = []

    def add(name: str, message: str) -> None:
        problems.append((f"{p}{name}", message, "missing"))

    if msg.userId is None and msg.anonymousId is None:
        add("userId", "userId or anonymousId is required")
    if type_ == "track" and not getattr(msg, "event", None):
        add("event", "event is required for track")
    if type_ == "group" and not getattr(msg, "groupId", None):
        add("groupId", "groupId is required for group")
    if type_ == "alias":
        if not getattr(msg, "previousId", None):
            add("previousId", "previousId is required for alias")
        if msg.userId is None:
            add("userId", "userId is required for alias")
    return problems


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
    if type_ in ("page", "screen"):
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
        group_id=getattr(msg, "groupId", None),
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
            body, context={"shallow": not might_be_unstorable(body)}
        )
    except ValidationError as exc:
        raise _as_error(exc) from None
    problems = _check_rules(msg, type_, "")
    if problems:
        raise InvalidEvents(_entries(problems), _status(problems))
    return _row(msg, type_, utcnow())


@dataclass
class ParsedBatch:
    """The stored-to-be rows of a batch and the problems of the messages refused."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    buckets: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # {index, field, message}
    status: int = 422  # what refusing all of it would answer (see `_status`)

    @property
    def rejected(self) -> int:
        return len({e["index"] for e in self.errors})


def split_batch(body: bytes) -> ParsedBatch:
    """Validate a `/v1/batch` body message by message. Raises DomainError (400/413/422) only
    when the envelope is wrong or no message is good; otherwise the bad messages are listed
    in `errors` and the good ones are in `rows`."""
    if len(body) > MAX_BATCH_BYTES:
        raise _too_large("batch", MAX_BATCH_BYTES, "body")
    validation = {"shallow": not might_be_unstorable(body)}
    envelope: BatchEnvelope | None = None
    oversized: set[int] = set()
    if len(body) > MAX_EVENT_BYTES:  # only then can a single message be over its limit
        envelope = _envelope(body, validation)
        oversized = {
            i for i, item in enumerate(envelope.batch) if _encoded_size(item) > MAX_EVENT_BYTES
        }
    messages: list[tuple[int, BatchItem]] = []
    problems: list[tuple[int, Problem]] = []
    context: dict[str, Any]
    sent_at: dt.datetime | None
    full: BatchIn | None = None
    if not oversized:
        try:  # the common case: one pass over the whole body
            full = BatchIn.model_validate_json(body, context=validation)
        except ValidationError as exc:
            if not _only_message_errors(exc):
                raise _as_error(exc) from None
    if full is not None:
        messages = list(enumerate(full.batch))
        context, sent_at = full.context, full.sentAt
    else:  # some message is bad: validate each on its own
        envelope = envelope or _envelope(body, validation)
        context, sent_at = envelope.context, envelope.sentAt
        for i, item in enumerate(envelope.batch):
            if i in oversized:
                message = f"event is larger than {MAX_EVENT_BYTES // 1024} KB"
                problems.append((i, (f"batch.{i}", message, TOO_LARGE)))
                continue
            try:
                messages.append((i, BatchItem.model_validate(item, context=validation)))
            except ValidationError as exc:
                problems.extend((i, p) for p in _problems(exc, f"batch.{i}"))
    out = ParsedBatch()
    received_at = utcnow()
    for i, msg in messages:
        rules = _check_rules(msg, msg.type, f"batch.{i}")
        if rules:
            problems.extend((i, p) for p in rules)
            continue
        try:
            row, bucket = _row(msg, msg.type, received_at, context, sent_at)
        except DomainError as exc:
            problems.append((i, (f"batch.{i}.{exc.field}", exc.message, "invalid")))
            continue
        out.rows.append(row)
        out.buckets.append(bucket)
    problems.sort(key=lambda p: p[0])
    out.errors = [{"index": i, "field": f, "message": m} for i, (f, m, _) in problems]
    out.status = _status([p for _, p in problems])
    if not out.rows:  # nothing good in it: refuse the batch, naming every problem
        raise InvalidEvents(out.errors, out.status)
    return out


def parse_batch(body: bytes) -> tuple[list[dict[str, Any]], list[int]]:
    """A batch all or nothing (signed webhooks): any bad message refuses the request."""
    parsed = split_batch(body)
    if parsed.errors:
        raise InvalidEvents(parsed.errors, parsed.status)
    return parsed.rows, parsed.buckets


def _envelope(body: bytes, validation: dict[str, Any]) -> BatchEnvelope:
    try:
        return BatchEnvelope.model_validate_json(body, context=validation)
    except ValidationError as exc:
        raise _as_error(exc) from None


def _only_message_errors(exc: ValidationError) -> bool:
    """Every problem lies inside a message (`batch.<i>...`), none in the envelope."""
    return all(
        len(loc) >= 2 and loc[0] == "batch" and isinstance(loc[1], int)
        for loc in (err.get("loc", ()) for err in exc.errors(include_url=False))
    )


def _encoded_size(item: Any) -> int:
    try:
        return len(orjson.dumps(item))
    except TypeError:  # an integer orjson cannot write: the size still counts
        return len(json.dumps(item))


def _entries(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    return [{"field": f, "message": m} for f, m, _ in problems]


def _as_error(exc: ValidationError) -> DomainError:
    errors = exc.errors(include_url=False)
    problems = _problems(exc)
    if any(e.get("type") == "json_invalid" for e in errors):
        return DomainError("malformed JSON: " + problems[0][1], field="body")
    if any(e.get("type") == "model_type" and not e.get("loc") for e in errors):
        return DomainError("the body must be a JSON object", field="body")
    return InvalidEvents(_entries(problems), _status(problems))


def accept(
    engine: Engine, rows: Sequence[dict[str, Any]], buckets: Sequence[int], *, source: str = "api"
) -> tuple[int, int]:
    """Store in one transaction; returns (accepted, duplicates)."""
    with engine.begin() as conn:
        accepted = store_events(conn, rows, buckets)
    duplicates = len(rows) - accepted
    EVENTS_ACCEPTED.labels(source).inc(accepted)
    EVENTS_BY_OUTCOME.labels("accepted").inc(accepted)
    if duplicates:
        EVENTS_DUPLICATE.labels(source).inc(duplicates)
        EVENTS_BY_OUTCOME.labels("duplicate").inc(duplicates)
    return accepted, duplicates
