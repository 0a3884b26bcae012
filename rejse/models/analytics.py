"""Campaign analytics: per-journey attribution settings and KPI targets, attributed
conversions, and the counters the KPIs are read from (docs/analytics.md).

Counters are kept in two tables. Every change (a run entered, a message delivered, opened,
clicked, an unsubscribe, a conversion) appends one `analytics_delta` row in the transaction
that made the change: an insert, so concurrent senders, workers and processors never wait on
one hot counter row. A periodic fold (`rejse.analytics.rollups.fold`) moves the deltas into
`analytics_rollup`, summed per key; readers add the deltas not yet folded, so figures are exact
at any moment."""

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime, utcnow

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # autoincrement on both backends

DEFAULT_CONVERSION_EVENT = "Order Completed"
DEFAULT_ATTRIBUTION_WINDOW = "P5D"
REVENUE_SCALE = 10_000  # revenue is counted in 1/10,000 of the currency unit: exact sums


class AnalyticsJourney(SQLModel, table=True):
    """A journey's attribution settings and KPI targets (absent: the defaults, no targets)."""

    __tablename__ = "analytics_journey"

    journey_key: str = Field(primary_key=True, max_length=64)
    conversion_event: str = Field(default=DEFAULT_CONVERSION_EVENT, max_length=200)
    attribution_window: str = Field(default=DEFAULT_ATTRIBUTION_WINDOW, max_length=40)
    targets: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)  # metric -> {min|max}
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AnalyticsConversion(SQLModel, table=True):
    """One attributed conversion: a run's goal (`kind` goal) or a conversion event within the
    window after a touch (`kind` window), credited to the last touch (message) or, for a goal
    reached before any message, to the step the run was at. `id`: event id + ":" + the run or
    message credited, so an event is credited once. No profile id: the row stays when a
    profile is erased, as the counters do, and says nothing about who bought."""

    __tablename__ = "analytics_conversion"
    __table_args__ = (sa.Index("ix_analytics_conversion_journey_day", "journey_key", "day"),)

    id: str = Field(primary_key=True, max_length=120)
    event_id: str | None = Field(default=None, max_length=40)  # None: the goal event unknown
    kind: str = Field(max_length=10)  # goal / window
    journey_key: str = Field(max_length=200)
    version: int
    step_id: str = Field(max_length=200)
    channel: str = Field(default="", max_length=20)
    template: str = Field(default="", max_length=200)
    day: dt.date  # the day the credited message was created (or the run entered)
    run_id: str | None = Field(default=None, max_length=32)
    message_id: str | None = Field(default=None, max_length=40)
    touch: str | None = Field(default=None, max_length=10)  # send / open / click
    touch_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    revenue_units: int = Field(default=0, sa_type=sa.BigInteger)
    currency: str | None = Field(default=None, max_length=3)
    at: dt.datetime = Field(sa_type=UTCDateTime)  # the conversion's time
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AnalyticsPending(SQLModel, table=True):
    """A conversion event the processor noted, until `rejse.analytics.attribution.settle`
    credits it (or finds no touch in a window) and deletes it: a few seconds at most."""

    __tablename__ = "analytics_pending"
    __table_args__ = (sa.Index("ix_analytics_pending_at", "at"),)

    event_id: str = Field(primary_key=True, max_length=40)
    profile_id: str = Field(max_length=64)
    event: str = Field(max_length=200)
    at: dt.datetime = Field(sa_type=UTCDateTime)
    revenue_units: int = Field(default=0, sa_type=sa.BigInteger)
    currency: str | None = Field(default=None, max_length=3)


class AnalyticsDelta(SQLModel, table=True):
    """One change of a counter, appended in the changing transaction; folded away later."""

    __tablename__ = "analytics_delta"
    __table_args__ = (sa.Index("ix_analytics_delta_journey", "journey_key", "day"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True)
    )
    journey_key: str = Field(max_length=200)  # "" for messages outside journeys
    version: int = 0
    step_id: str = Field(default="", max_length=200)  # "" for the journey as a whole
    day: dt.date
    channel: str = Field(default="", max_length=20)
    template: str = Field(default="", max_length=200)
    metric: str = Field(max_length=100)
    n: int = Field(default=0, sa_type=sa.BigInteger)
    revenue_units: int = Field(default=0, sa_type=sa.BigInteger)


class AnalyticsRollup(SQLModel, table=True):
    """The folded counters: one row per key and metric."""

    __tablename__ = "analytics_rollup"

    journey_key: str = Field(primary_key=True, max_length=200)
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    step_id: str = Field(primary_key=True, max_length=200)
    day: dt.date = Field(primary_key=True)
    channel: str = Field(primary_key=True, max_length=20)
    template: str = Field(primary_key=True, max_length=200)
    metric: str = Field(primary_key=True, max_length=100)
    n: int = Field(default=0, sa_type=sa.BigInteger)
    revenue_units: int = Field(default=0, sa_type=sa.BigInteger)
