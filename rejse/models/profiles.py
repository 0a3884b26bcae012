"""The golden customer record: profiles, their identifiers, consents, merges and erasures.

Other domains read profiles through `rejse.profiles.service.load_snapshot`; SQL over all
profiles must skip erased ones (`erased_at IS NULL`). Merged-away profiles have no row here:
`profile_merge` maps their id to the survivor."""

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime, utcnow

# Lifecycle stages in funnel order (the one list): a merge keeps the furthest stage of the two,
# lead scoring moves a profile up through its thresholds.
STAGES = ("subscriber", "lead", "aql", "sql", "opportunity", "customer")


class Profile(SQLModel, table=True):
    __tablename__ = "profile"
    # the live profiles, counted from the index by the maturity prefill (0021_profile_live)
    __table_args__ = (
        sa.Index(
            "ix_profile_live",
            "erased_at",
            postgresql_where=sa.text("erased_at IS NULL"),
            sqlite_where=sa.text("erased_at IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=32)  # prf_<26 chars>, opaque
    traits: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    # Segment `group` calls: group id -> {"traits": {...}, "first_seen_at", "last_seen_at"}
    # (ISO times of the group calls); the accounts the person belongs to.
    groups: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    locale: str | None = Field(default=None, max_length=35)
    timezone: str | None = Field(default=None, max_length=64)
    lifecycle_stage: str | None = Field(default=None, max_length=32)  # written by leads
    lead_score: float = Field(default=0.0)  # written by leads
    event_count: int = Field(default=0)
    # Customer value, kept by the processor from order events (`rejse.profiles.value`):
    # orders counted once each, revenue net of refunds, in the shop's currency.
    order_count: int = Field(default=0)
    revenue: float = Field(default=0.0)
    currency: str | None = Field(default=None, max_length=3)
    first_order_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_order_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_seen_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_seen_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    erased_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class ProfileIdentifier(SQLModel, table=True):
    """One identifier value belongs to exactly one profile (unique type + value)."""

    __tablename__ = "profile_identifier"
    __table_args__ = (sa.UniqueConstraint("type", "value", name="uq_identifier_type_value"),)

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(max_length=32, index=True)
    type: str = Field(max_length=32)  # user_id, anonymous_id, email, phone, device_id, ...
    value: str = Field(max_length=255)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Consent(SQLModel, table=True):
    """Current consent per profile and channel; history in `consent_change`."""

    __tablename__ = "consent"

    profile_id: str = Field(primary_key=True, max_length=32)
    channel: str = Field(primary_key=True, max_length=32)
    status: str = Field(max_length=16)  # granted / denied / revoked
    source: str = Field(max_length=100)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConsentChangeRecord(SQLModel, table=True):
    __tablename__ = "consent_change"
    __table_args__ = (sa.Index("ix_consent_change_profile", "profile_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(max_length=32)
    channel: str = Field(max_length=32)
    status: str = Field(max_length=16)
    source: str = Field(max_length=100)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProfileMerge(SQLModel, table=True):
    """`from_profile_id` was folded into `into_profile_id`; keeps old ids resolvable."""

    __tablename__ = "profile_merge"

    from_profile_id: str = Field(primary_key=True, max_length=32)
    into_profile_id: str = Field(max_length=32, index=True)
    event_id: str | None = Field(default=None, max_length=64)  # the event that caused it
    reason: str = Field(max_length=200)  # identifier types, no values
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ErasedIdentifier(SQLModel, table=True):
    """Salted hash of an erased identifier (type + value): a later event carrying it starts a
    new, empty profile and never re-links to erased data."""

    __tablename__ = "erased_identifier"

    digest: str = Field(primary_key=True, max_length=64)
    erased_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProfileErasure(SQLModel, table=True):
    """PII-free audit record of a GDPR erase."""

    __tablename__ = "profile_erasure"

    id: int | None = Field(default=None, primary_key=True)
    profile_id: str = Field(max_length=32, index=True)
    requested_by: str | None = Field(default=None, max_length=64)  # API key id
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    summary: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)  # counts per domain
