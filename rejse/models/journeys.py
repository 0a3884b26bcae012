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
        sa.Index("ix_journey_run_journey_status", "journey_key", "status"),
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
