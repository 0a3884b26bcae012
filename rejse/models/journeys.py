"""Journeys: definitions (immutable versions), runs (one row per Temporal run) and step log."""

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime, utcnow

JOURNEY_STATUSES = ("draft", "published", "paused", "archived")
ACTIVE_RUN_STATUSES = ("running", "held")
RUN_STATUSES = ("running", "held", "completed", "converted", "exited", "cancelled", "failed")


class Journey(SQLModel, table=True):
    """The journey's lifecycle; its definitions live in `journey_version`."""

    __tablename__ = "journey"

    key: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    status: str = Field(default="draft", max_length=20)
    latest_version: int = 1
    published_version: int | None = None
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class JourneyVersion(SQLModel, table=True):
    """One immutable definition of a journey. Runs pin the version they entered with."""

    __tablename__ = "journey_version"

    journey_key: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    definition: dict[str, Any] = Field(sa_type=sa.JSON)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class JourneyRun(SQLModel, table=True):
    """One entry of a profile into a journey (one Temporal workflow run)."""

    __tablename__ = "journey_run"
    __table_args__ = (
        sa.UniqueConstraint("workflow_id", "trigger_event_id", name="uq_journey_run_trigger"),
        sa.Index("ix_journey_run_journey_entered", "journey_key", "entered_at"),  # runs list
        sa.Index("ix_journey_run_journey_status_entered", "journey_key", "status", "entered_at"),
        sa.Index("ix_journey_run_profile_status", "profile_id", "status"),
        sa.Index("ix_journey_run_workflow", "workflow_id"),
        sa.Index("ix_journey_run_workflow_entry", "workflow_id", "entry_no", unique=True),
    )

    id: str = Field(primary_key=True, max_length=32)
    workflow_id: str = Field(max_length=255)
    journey_key: str = Field(max_length=64)
    version: int
    profile_id: str = Field(max_length=64)
    trigger_event_id: str = Field(max_length=255)
    entry_no: int = Field(
        default=1, sa_column_kwargs={"server_default": "1"}
    )  # 1, 2... per workflow id
    status: str = Field(default="running", max_length=20)
    current_step: str | None = Field(default=None, max_length=64)
    step_since: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    entered_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    converted: bool = False
    variant: str | None = Field(default=None, max_length=64)


class JourneyStep(SQLModel, table=True):
    """Each step a run entered, with the outcome of sends (for per-step stats)."""

    __tablename__ = "journey_step"
    __table_args__ = (
        sa.Index("ix_journey_step_journey", "journey_key", "step_id"),
        sa.Index("ix_journey_step_run", "run_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=32)
    journey_key: str = Field(max_length=64)
    version: int
    step_id: str = Field(max_length=64)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=20)


ENTRY_STATUSES = ("running", "done", "cancelled")


class JourneyEntry(SQLModel, table=True):
    """One entry of many profiles at once: a schedule fire or a manual entry of an audience
    (`rejse.journeys.bulk`). Its members are entered page by page after `cursor` (profile id
    order) at the configured rate; `entered` and `skipped` count the profiles done so far of
    `total` (the members when it began). A driver holds `lease_owner` until `lease_until` so
    two drivers never plan the same page."""

    __tablename__ = "journey_entry"
    __table_args__ = (sa.Index("ix_journey_entry_status", "status"),)

    journey_key: str = Field(primary_key=True, max_length=64)
    id: str = Field(primary_key=True, max_length=64)  # schedule-20261123T0800Z, manual-<hash>
    source: str = Field(max_length=20)  # schedule / manual
    audience: str | None = Field(default=None, max_length=64)  # None: every live profile
    fired_at: dt.datetime = Field(sa_type=UTCDateTime)  # the trigger's time
    properties: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)  # trigger's
    total: int = 0
    entered: int = 0
    skipped: int = 0  # in the journey already, or its re-entry rule said no
    cursor: str | None = Field(default=None, max_length=64)  # the last profile id done
    status: str = Field(default="running", max_length=20)
    lease_owner: str | None = Field(default=None, max_length=32)
    lease_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
