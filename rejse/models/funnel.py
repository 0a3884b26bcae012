"""Tables of the lead funnel: every lifecycle stage change as it happens, and its daily rollup.

`stage_change` gets one row in the transaction that changes a profile's stage (scoring
thresholds, an explicit change, a won lead, a merge, an erase); a profile entering the funnel
(its first score state) is a change from no stage, leaving it (merged away, erased) one to no
stage. `stage_daily` holds the same changes counted per UTC day and (from, to) pair; a fold
moves rows marked unfolded into it, and readers add the unfolded rest in the same statement,
so every count is exact at any moment without a shared counter row the processor would lock."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime

NO_STAGE = ""  # from_stage/to_stage of stage_daily: entered or left the funnel


class StageChange(SQLModel, table=True):
    __tablename__ = "stage_change"
    __table_args__ = (
        sa.Index("ix_stage_change_profile", "profile_id", "id"),
        # covers the median's columns: an index-only read of a period (PostgreSQL)
        sa.Index("ix_stage_change_at", "at", postgresql_include=["from_stage", "seconds_in_from"]),
        sa.Index(
            "ix_stage_change_unfolded",
            "id",
            postgresql_where=sa.text("NOT folded"),
            sqlite_where=sa.text("NOT folded"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(max_length=64)  # "erased" after a GDPR erase
    from_stage: str | None = Field(default=None, max_length=20)  # None: entered the funnel
    to_stage: str | None = Field(default=None, max_length=20)  # None: left it
    at: dt.datetime = Field(sa_type=UTCDateTime)
    reason: str = Field(max_length=200)
    # Time spent in from_stage (since the change that entered it), when that change is known.
    seconds_in_from: float | None = None
    folded: bool = False


class StageDaily(SQLModel, table=True):
    __tablename__ = "stage_daily"

    day: dt.date = Field(primary_key=True)
    from_stage: str = Field(primary_key=True, max_length=20)
    to_stage: str = Field(primary_key=True, max_length=20)
    changes: int = 0
