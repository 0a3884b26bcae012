"""Tables of lead scoring, sales reps, leads (hand-offs) and their CRM state."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime, utcnow


class ScoringModel(SQLModel, table=True):
    """One immutable version of the scoring model; exactly one version is active."""

    __tablename__ = "scoring_model"

    version: int = Field(primary_key=True)
    definition: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    active: bool = False
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    activated_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class ProfileScore(SQLModel, table=True):
    """Score state of one profile. `behaviour` and `breakdown` are as of `decayed_at`
    (decay is applied lazily from the half-life); `fit` is not decayed."""

    __tablename__ = "profile_score"

    profile_id: str = Field(primary_key=True, max_length=64)
    behaviour: float = 0.0
    fit: float = 0.0
    breakdown: dict[str, float] = Field(default_factory=dict, sa_type=sa.JSON)
    fit_breakdown: dict[str, float] = Field(default_factory=dict, sa_type=sa.JSON)
    decayed_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    stage: str = Field(default="subscriber", max_length=20)
    recent: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=sa.JSON
    )  # last few scored events
    suppressed_until: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ScoreCounter(SQLModel, table=True):
    """Points granted by one capped rule in the current period (one row per profile x rule)."""

    __tablename__ = "score_counter"

    profile_id: str = Field(primary_key=True, max_length=64)
    rule_id: str = Field(primary_key=True, max_length=80)
    period_start: dt.datetime = Field(sa_type=UTCDateTime)
    points: float = 0.0


class ScoreGrant(SQLModel, table=True):
    """Idempotency record of points added by journeys (`scoring.add_points`)."""

    __tablename__ = "score_grant"

    idempotency_key: str = Field(primary_key=True, max_length=200)
    profile_id: str = Field(max_length=64, index=True)
    points: float
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SalesRep(SQLModel, table=True):
    __tablename__ = "sales_rep"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    territories: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    active: bool = True
    manager_id: str | None = Field(default=None, max_length=32)
    webhook_url: str | None = Field(default=None, max_length=1000)
    crm_owner_id: str | None = Field(default=None, max_length=100)
    locale: str = Field(default="en", max_length=10)  # of the rep's emails: da, sv, en
    last_assigned_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Lead(SQLModel, table=True):
    """One hand-off of a profile to sales (one `LeadHandoffWorkflow` run)."""

    __tablename__ = "lead"
    __table_args__ = (
        sa.Index("ix_lead_rep_status", "rep_id", "status"),
        # the sales figures (0018_lead_met): the median hours to contact reads the contacted
        # leads in rep order, the AQLs nobody called are counted and listed oldest first; on
        # PostgreSQL both are index-only reads (INCLUDE), SQLite keeps the partial keys
        sa.Index(
            "ix_lead_contacted_rep",
            "rep_id",
            postgresql_where=sa.text("first_contact_at IS NOT NULL"),
            sqlite_where=sa.text("first_contact_at IS NOT NULL"),
            postgresql_include=["first_contact_at", "assigned_at", "created_at"],
        ),
        sa.Index(
            "ix_lead_uncalled",
            "created_at",
            "id",
            postgresql_where=sa.text("first_contact_at IS NULL"),
            sqlite_where=sa.text("first_contact_at IS NULL"),
            postgresql_include=["rep_id", "status", "due_at"],
        ),
    )

    id: str = Field(primary_key=True, max_length=32)
    profile_id: str = Field(max_length=64, index=True)
    trigger_key: str = Field(max_length=200, unique=True)  # idempotency of the start
    workflow_id: str = Field(max_length=200)
    source: str = Field(max_length=200)
    reason: str = Field(max_length=500)
    score: float = 0.0
    status: str = Field(
        default="open", max_length=20
    )  # open, assigned, contacted, meeting, won, lost, not_relevant, expired
    rep_id: str | None = Field(default=None, max_length=32)
    assigned_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminded_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    reassignments: int = 0
    history: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    notifications: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # keys sent
    crm_enabled: bool = True
    crm_status: str = Field(default="pending", max_length=20)  # pending, synced, failed, skipped
    crm_error: str | None = Field(default=None, max_length=1000)
    crm_ref: str | None = Field(default=None, max_length=200)
    crm_task_id: str | None = Field(default=None, max_length=200)
    outcome: str | None = Field(default=None, max_length=20)
    # reached a meeting at some point: set with a `meeting` outcome, never unset (a won lead
    # keeps it), so the sales figures count meetings without reading every lead's history
    met: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    outcome_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_contact_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
