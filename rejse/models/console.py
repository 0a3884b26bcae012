"""Console sessions: an API key exchanged for a browser session (`rejse.console.sessions`).

Only the SHA-256 of the session token is stored, so the table cannot be replayed as cookies.
`key_id` is the signed-in key: the key is read again on every request, so revoking it ends
every session it started."""

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime, utcnow


class ConsoleSession(SQLModel, table=True):
    __tablename__ = "console_session"
    __table_args__ = (sa.Index("ix_console_session_key", "key_id"),)

    id: str = Field(primary_key=True, max_length=64)  # sha256 hex of the cookie's token
    key_id: str = Field(max_length=32)  # api_key.id (plain id: keys are the foundation's)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    language: str | None = Field(default=None, max_length=8)  # da, sv, en; None: the browser's
