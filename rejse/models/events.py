"""Events as received (Segment spec), the outbox the processor drains, dead letters and
webhook sources."""

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime, utcnow

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # autoincrement on both backends
OUTBOX_BUCKETS = 64  # identity-key hash partitions; a processor locks whole buckets


class Event(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = (
        sa.Index("ix_event_profile_ts", "profile_id", "timestamp"),
        # who did X within a window, over all profiles (audiences), read from the index alone
        sa.Index("ix_event_name_ts_profile", "event", "timestamp", "profile_id"),
    )

    id: str = Field(primary_key=True, max_length=40)  # evt_..., ProcessedEvent.event_id
    message_id: str = Field(sa_column=sa.Column(sa.String(300), unique=True, nullable=False))
    type: str = Field(max_length=16)  # track identify page screen group alias internal
    event: str | None = Field(default=None, max_length=200)
    user_id: str | None = Field(default=None, max_length=255)
    anonymous_id: str | None = Field(default=None, max_length=255)
    previous_id: str | None = Field(default=None, max_length=255)
    group_id: str | None = Field(default=None, max_length=255)  # group calls
    profile_id: str | None = Field(default=None, max_length=32)  # set when processed
    properties: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    traits: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    context: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    timestamp: dt.datetime = Field(sa_type=UTCDateTime)
    received_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    processed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    source: str = Field(default="api", max_length=60)  # api, shopify, generic:x, internal


class OutboxEntry(SQLModel, table=True):
    """Work for the processor: `pending` -> `applied` (profile updated) -> row deleted
    (dispatched). Ordered by `id` within a bucket."""

    __tablename__ = "event_outbox"
    __table_args__ = (sa.Index("ix_outbox_bucket_id", "bucket", "id"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True)
    )
    event_id: str = Field(max_length=40)
    bucket: int = Field(default=0)
    state: str = Field(default="pending", max_length=10)
    attempts: int = Field(default=0)
    available_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    processed: dict[str, Any] | None = Field(
        default=None, sa_type=sa.JSON
    )  # ProcessedEvent once applied


class OutboxBucket(SQLModel, table=True):
    """One row per bucket; processors lock rows with FOR UPDATE SKIP LOCKED (PostgreSQL)."""

    __tablename__ = "event_outbox_bucket"

    bucket: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})


class DeadLetter(SQLModel, table=True):
    __tablename__ = "event_dead_letter"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=40, index=True)
    stage: str = Field(max_length=20)  # apply / dispatch
    error: str = Field(max_length=1000)
    attempts: int = Field(default=0)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    retried_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    processed: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)  # set if applied


class WebhookSource(SQLModel, table=True):
    """A shop (kind `shopify`, name = shop domain) or a generic source with its signing secret."""

    __tablename__ = "webhook_source"
    __table_args__ = (sa.UniqueConstraint("kind", "name", name="uq_webhook_source_kind_name"),)

    id: str = Field(primary_key=True, max_length=32)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=255)
    secret: str = Field(max_length=255)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    disabled_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
