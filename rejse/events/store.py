"""Durable storage of incoming events: event rows + outbox rows in the caller's transaction,
bulk (executemany) and idempotent on `message_id` (insert-or-ignore on SQLite and PostgreSQL)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from rejse.models.events import OUTBOX_BUCKETS, Event, OutboxEntry

EVENT = Event.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxEntry.__table__  # type: ignore[attr-defined]


def bucket_for(identity_key: str) -> int:
    """The outbox partition of an identity key: events of one key are processed in order."""
    return zlib.crc32(identity_key.encode()) % OUTBOX_BUCKETS


def insert_ignore(conn: Connection, table: sa.Table) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` for the connection's dialect."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database dialect {dialect}")


def store_events(conn: Connection, rows: Sequence[dict[str, Any]], buckets: Sequence[int]) -> int:
    """Insert event rows (dicts with every `event` column) and one outbox row per newly stored
    event. Returns how many were new; the rest were duplicates of a known `message_id`."""
    if not rows:
        return 0
    stmt = insert_ignore(conn, EVENT).returning(EVENT.c.id)
    if len(rows) == 1:
        inserted = [r[0] for r in conn.execute(stmt, rows[0])]
    else:
        inserted = [r[0] for r in conn.execute(stmt, list(rows))]
    if not inserted:
        return 0
    by_id = {row["id"]: (row, bucket) for row, bucket in zip(rows, buckets)}
    outbox = []
    for event_id in inserted:
        row, bucket = by_id[event_id]
        outbox.append({"event_id": event_id, "bucket": bucket, "state": "pending",
                       "attempts": 0, "available_at": row["received_at"], "last_error": None,
                       "processed": None})
    conn.execute(OUTBOX.insert(), outbox)
    return len(inserted)
