"""Data-maturity assessments (the "Brug Kundedata" workbook, `rejse.maturity`): the answers a
company gave and what they came to, one row per assessment, so its progress shows over time.

The texts (position, scenario, challenge, way forward, workshops) are not stored: they are
rendered from the stored keys in the language asked for, so an old assessment reads in Danish
or English alike."""

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime, utcnow


class MaturityAssessment(SQLModel, table=True):
    __tablename__ = "maturity_assessment"
    __table_args__ = (sa.Index("ix_maturity_assessment_created", "created_at", "id"),)

    id: str = Field(primary_key=True, max_length=32)  # mat_<26 chars>, sorts by creation
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str | None = Field(default=None, max_length=64)  # the API key's id
    company: str | None = Field(default=None, max_length=200)  # a label for charts
    goal: str | None = Field(default=None, max_length=2000)  # question 1's goal, in words
    # {"readiness": {six answers}, "progress": {four answers} | null}
    answers: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    motivation: float  # scores in [0, 1] (rejse.maturity.model.score)
    customer_data: float
    competence: float | None = None
    success: float | None = None
    start_position: str = Field(max_length=16)  # rejse.maturity.model.StartPosition
    progress_scenario: str | None = Field(default=None, max_length=16)  # ProgressScenario


class MaturityProfileData(SQLModel, table=True):
    """Which kinds of customer data one live profile carries (`rejse.maturity.flags`, kept by
    the event processor), so the prefill counts flags instead of scanning every profile's
    traits and events. A row per live profile that has had an event; erased and merged-away
    profiles have none."""

    __tablename__ = "maturity_profile_data"

    profile_id: str = Field(primary_key=True, max_length=64)
    structural: bool = False
    transactional: bool = False
    activity: bool = False
