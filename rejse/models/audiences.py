"""Audiences: saved conditions over profiles, their current members, and when to look again.

Membership is exact and kept as events arrive (`rejse.audiences`). A time window
(`within: P90D`, days since the last order, a decaying score) can change the answer with no new
event, so each (audience, profile) pair whose answer can change by time alone has one
`audience_recheck` row with the moment it can next change; a scheduler job sweeps the due ones.
"""

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime, utcnow


class Audience(SQLModel, table=True):
    __tablename__ = "audience"

    key: str = Field(primary_key=True, max_length=64)  # [a-z0-9_-], referenced by conditions
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    condition: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    # The segmentation canvas (seed 001): facts, sales, value, existing/potential, B2B/B2C,
    # priority. Descriptive; it does not change who is a member.
    canvas: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    trigger_existing: bool = Field(default=False)  # creation fires "Audience Entered" for all
    version: int = Field(default=1)  # +1 on each change of the condition
    size: int = Field(default=0)  # members now, kept with the membership rows
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    computed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class AudienceMembership(SQLModel, table=True):
    """One row per current member; leaving deletes the row (history is on the timeline)."""

    __tablename__ = "audience_membership"
    __table_args__ = (sa.Index("ix_audience_membership_profile", "profile_id"),)

    audience_key: str = Field(primary_key=True, max_length=64)
    profile_id: str = Field(primary_key=True, max_length=32)
    entered_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AudienceRecheck(SQLModel, table=True):
    """The next moment time alone can change whether the profile is in the audience (members
    and non-members alike)."""

    __tablename__ = "audience_recheck"
    __table_args__ = (
        sa.Index("ix_audience_recheck_due", "due_at"),
        sa.Index("ix_audience_recheck_profile", "profile_id"),
    )

    audience_key: str = Field(primary_key=True, max_length=64)
    profile_id: str = Field(primary_key=True, max_length=32)
    due_at: dt.datetime = Field(sa_type=UTCDateTime)
