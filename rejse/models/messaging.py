"""Messaging tables: API-managed templates (immutable versions) and the message log."""

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime, utcnow


class MessageTemplate(SQLModel, table=True):
    """One immutable version of an API-managed template. `variants` maps a locale (`da`, `sv`,
    `en`) to its parts (`subject`, `html`, `text`). The newest version of (key, channel)
    overrides the file template of the same key and locale."""

    __tablename__ = "message_template"
    __table_args__ = (
        sa.UniqueConstraint("key", "channel", "version", name="uq_message_template_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, index=True)
    channel: str = Field(max_length=20)
    version: int
    description: str | None = Field(default=None, max_length=500)
    variants: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Message(SQLModel, table=True):
    """The message log: one row per send request (idempotency key), whatever happened to it.

    status: queued -> sending -> sent -> opened/clicked; or skipped (reason), failed (reason),
    bounced (reason), deferred (quiet hours; reason + retry_at)."""

    __tablename__ = "message"
    __table_args__ = (
        sa.Index("ix_message_profile_sent", "profile_id", "sent_at"),
        sa.Index("ix_message_journey_step", "journey_key", "step_id"),
        sa.Index("ix_message_inbox", "inbox_user", "channel"),
    )

    id: str = Field(primary_key=True, max_length=40)
    idempotency_key: str = Field(sa_column=sa.Column(sa.String(300), unique=True, nullable=False))
    profile_id: str = Field(max_length=64, index=True)
    channel: str = Field(max_length=20)
    template: str = Field(max_length=200)
    template_version: int | None = None  # None: file template
    locale: str | None = Field(default=None, max_length=10)
    transactional: bool = False
    journey_key: str | None = Field(default=None, max_length=200)
    journey_version: int | None = None
    step_id: str | None = Field(default=None, max_length=200)
    status: str = Field(default="queued", max_length=20)
    reason: str | None = Field(default=None, max_length=500)
    to_address: str | None = Field(default=None, max_length=320)  # PII: erased on GDPR delete
    inbox_user: str | None = Field(default=None, max_length=200)  # in_app: the user id it is for
    subject: str | None = None
    body_text: str | None = Field(default=None, sa_type=sa.Text)
    body_html: str | None = Field(default=None, sa_type=sa.Text)
    links: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # click-tracked targets
    provider_id: str | None = Field(default=None, max_length=200)
    attempts: int = 0
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    opened_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    clicked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    read_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    retry_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    open_count: int = 0
    click_count: int = 0
