"""Durable storage of incoming events: event rows + outbox rows in the caller's transaction,
bulk (executemany) and idempotent on `message_id` (insert-or-ignore on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from rejse.db import driver_mark, driver_value, from_sqlite_time, sqlite_time
from rejse.events.values import find_unstorable, might_be_unstorable
from rejse.models.events import OUTBOX_BUCKETS, Event, OutboxEntry

EVENT = Event.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxEntry.__table__  # type: ignore[attr-defined]


def bucket_for(identity_key: str) -> int:
    """The outbox partition of an identity key: events of one key are processed in order."""
    return zlib.crc32(identity_key.encode()) % OUTBOX_BUCKETS


EVENT_COLUMNS = tuple(c.name for c in EVENT.c)
OUTBOX_COLUMNS = ("event_id", "bucket", "state", "attempts", "available_at")
_JSON_COLUMNS = frozenset({"properties", "traits", "context"})
_TIME_COLUMNS = frozenset({"timestamp", "received_at", "processed_at"})
_ROWS_PER_STATEMENT = 500


class UnstorableEvent(ValueError):
    """An event value JSON cannot carry faithfully; refused when written, so no row exists that
    the processor could not read back."""


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:  # an integer beyond 64 bits, a lone surrogate, a non-JSON type
        raise UnstorableEvent(f"event value cannot be stored as JSON: {exc}") from None


# Per column: 0 = as is, 1 = JSON text, 2 = UTC datetime (text on SQLite). Precomputed: this
# runs for every column of every ingested event.
_KINDS = tuple(
    (name, 1 if name in _JSON_COLUMNS else 2 if name in _TIME_COLUMNS else 0)
    for name in EVENT_COLUMNS
)


def _values(row: dict[str, Any], sqlite: bool, times: dict[dt.datetime, str]) -> list[Any]:
    out: list[Any] = []
    append = out.append
    for name, kind in _KINDS:
        value = row[name]
        if kind == 1:
            value = _json(value) if value else "{}"
        elif kind == 2 and sqlite and value is not None:
            text = times.get(value)
            if text is None:
                text = times[value] = sqlite_time(value)
            value = text
        append(value)
    return out


def store_events(conn: Connection, rows: Sequence[dict[str, Any]], buckets: Sequence[int]) -> int:
    return len(store_events_returning(conn, rows, buckets))


def store_events_returning(
    conn: Connection, rows: Sequence[dict[str, Any]], buckets: Sequence[int]
) -> set[str]:
    """Insert event rows (dicts with every `event` column) and one outbox row per newly stored
    event. Returns how many were new; the rest were duplicates of a known `message_id`.

    This is the ingestion hot path, so it speaks the driver's SQL directly: one multi-row
    `INSERT ... ON CONFLICT DO NOTHING RETURNING id` for the events and one executemany for the
    outbox (values serialised the way the SQLAlchemy column types would)."""
    if not rows:
        return set()
    sqlite = conn.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    one = "(" + ", ".join([mark] * len(EVENT_COLUMNS)) + ")"
    by_id = {row["id"]: (row, bucket) for row, bucket in zip(rows, buckets, strict=True)}
    outbox: list[tuple[Any, ...]] = []
    times: dict[dt.datetime, str] = {}  # a batch shares received_at (and often timestamps)
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        params: list[Any] = []
        for row in chunk:
            params.extend(_values(row, sqlite, times))
        sql = (
            f"INSERT INTO event ({', '.join(EVENT_COLUMNS)}) VALUES "  # noqa: S608 - our column names and placeholders; values are bound
            + ", ".join([one] * len(chunk))
            + " ON CONFLICT DO NOTHING RETURNING id"
        )
        for (event_id,) in conn.exec_driver_sql(sql, tuple(params)).all():
            row, bucket = by_id[event_id]
            at = row["received_at"]
            outbox.append(
                (
                    event_id,
                    bucket,
                    "pending",
                    0,
                    times.get(at) or sqlite_time(at) if sqlite else at,
                )
            )
    if outbox:
        conn.exec_driver_sql(
            f"INSERT INTO event_outbox ({', '.join(OUTBOX_COLUMNS)}) VALUES ("  # noqa: S608 - our column names and placeholders; values are bound
            + ", ".join([mark] * len(OUTBOX_COLUMNS))
            + ")",
            outbox,
        )
    return {o[0] for o in outbox}


def mark_processed(conn: Connection, updates: Sequence[tuple[str, str, dt.datetime]]) -> None:
    """Stamp events (event id, profile id, processed at) in one executemany."""
    if not updates:
        return
    m = driver_mark(conn)
    conn.exec_driver_sql(
        f"UPDATE event SET profile_id = {m}, processed_at = {m} WHERE id = {m}",  # noqa: S608 - placeholders only; values are bound
        [(pid, driver_value(conn, at), event_id) for event_id, pid, at in updates],
    )


LOAD_EVENT_COLUMNS = (
    "id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "previous_id",
    "group_id",
    "profile_id",
    "properties",
    "traits",
    "context",
    "timestamp",
    "received_at",
    "source",
)
_LOAD_JSON = ("properties", "traits", "context")


class Undecodable(ValueError):
    """A stored row the loader cannot turn back into the event it was (its message names the
    column and the kind of problem, never a value)."""


@dataclass(frozen=True)
class Loaded:
    """An available outbox row with its event row decoded."""

    outbox_id: int
    state: str
    attempts: int
    processed: dict[str, Any] | None
    row: dict[str, Any]


@dataclass(frozen=True)
class Unloadable:
    """An available outbox row whose event (or saved processing state) cannot be decoded."""

    outbox_id: int
    event_id: str
    attempts: int
    reason: str


def decode_json(text: str | bytes | None, column: str) -> Any:
    """Stored JSON text as the event had it. orjson reads what it can represent exactly; text
    that may hold an integer beyond 64 bits, NaN/Infinity or a NUL (written by older code or
    by hand) is read exactly and checked, and refused with `Undecodable`."""
    if not text:
        return None
    if not might_be_unstorable(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise Undecodable(f"{column}: not valid JSON ({exc.msg})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise Undecodable(f"{column}: not valid JSON ({message})") from None
    problem = find_unstorable(value)
    if problem is not None:
        raise Undecodable(f"{column}: {problem[1]}") from None
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode_row(
    row: dict[str, Any], processed: Any, *, sqlite: bool
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Decoded in place like the column types would; `Undecodable` names what failed."""
    for name in _LOAD_JSON:
        value = decode_json(row[name], name)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise Undecodable(f"{name}: a JSON {type(value).__name__}, not an object")
        row[name] = value
    for name in ("timestamp", "received_at"):
        value = row[name]
        if sqlite:
            try:
                value = from_sqlite_time(value)
            except (TypeError, ValueError):
                raise Undecodable(f"{name}: not a datetime") from None
        row[name] = value
    state = decode_json(processed, "processed")
    if state is not None and not isinstance(state, dict):
        raise Undecodable(f"processed: a JSON {type(state).__name__}, not an object")
    return row, state


def load_outbox(
    conn: Connection, *, now: dt.datetime, buckets: Sequence[int] | None, limit: int
) -> tuple[list[Loaded], list[Unloadable]]:
    """Available outbox rows in id order with their events, and those that cannot be decoded
    (for the dead letters: no retry can change stored text). Driver-level for speed; JSON is
    read as text on both backends and decoded the same way (`decode_json`)."""
    sqlite = conn.dialect.name == "sqlite"
    m = driver_mark(conn)
    where = f"o.available_at <= {m}"
    params: list[Any] = [driver_value(conn, now)]
    if buckets is not None:
        if not buckets:
            return [], []
        where += f" AND o.bucket IN ({', '.join([m] * len(buckets))})"
        params.extend(buckets)
    text = "" if sqlite else "::text"
    cols = ", ".join(f"e.{c}{text}" if c in _LOAD_JSON else f"e.{c}" for c in LOAD_EVENT_COLUMNS)
    sql = (
        f"SELECT o.id, o.state, o.attempts, o.processed{text}, {cols} FROM event_outbox o "  # noqa: S608 - our column names, placeholders and an int
        f"JOIN event e ON e.id = o.event_id WHERE {where} ORDER BY o.id LIMIT {int(limit)}"
    )
    loaded: list[Loaded] = []
    failed: list[Unloadable] = []
    for r in conn.exec_driver_sql(sql, tuple(params)):
        row = dict(zip(LOAD_EVENT_COLUMNS, r[4:], strict=True))
        try:
            row, processed = _decode_row(row, r[3], sqlite=sqlite)
        except Undecodable as exc:
            failed.append(Unloadable(r[0], row["id"], r[2], f"undecodable row: {exc}"))
            continue
        loaded.append(Loaded(r[0], r[1], r[2], processed, row))
    return loaded, failed
