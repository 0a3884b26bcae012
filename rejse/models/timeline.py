import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime, utcnow


class TimelineEntry(SQLModel, table=True):
    """One line on a profile's timeline written by any domain (messages, journey steps, score
    changes, merges, consent). Raw events are read from the events table beside these."""

    __tablename__ = "timeline_entry"
    __table_args__ = (sa.Index("ix_timeline_profile_at", "profile_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(max_length=64)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    kind: str = Field(max_length=40)  # message, journey_step, score, merge, consent, stage, ...
    summary: str = Field(max_length=500)  # human-readable, no PII
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
