"""Profiles: read by id or identifier, timeline, traits, consent, GDPR export and erase.

Roles: reads marketer/analyst; traits and consent marketer; export and erase admin."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import AdminDep, ProfileErasersDep, ReadDep, RuntimeDep, SessionDep, WriteDep
from api.errors import NOT_FOUND, responses
from rejse.audiences.service import profile_audiences
from rejse.errors import DomainError, NotFound
from rejse.inputs import Instant, Omittable, Text
from rejse.maturity import flags
from rejse.models.profiles import Profile
from rejse.profiles import gdpr, service
from rejse.profiles.consent import set_consent
from rejse.profiles.identifiers import KNOWN_TYPES

router = APIRouter(prefix="/api/profiles", tags=["profiles"])


class ConsentPublic(BaseModel):
    status: str
    source: str
    at: dt.datetime


class CustomerValue(BaseModel):
    """What the profile has bought, kept from `Order Completed` and `Order Refunded` events."""

    order_count: int
    revenue: float = Field(description="net of refunds, in `currency`")
    currency: str | None = Field(description="the shop's currency (ISO 4217)")
    average_order_value: float | None = Field(description="revenue / order_count; null: no orders")
    first_order_at: dt.datetime | None
    last_order_at: dt.datetime | None


class ProfilePublic(BaseModel):
    id: str
    traits: dict[str, Any]
    groups: dict[str, Any] = Field(
        default_factory=dict,
        description="Segment group calls: group id -> its traits, first_seen_at, last_seen_at",
    )
    identifiers: dict[str, list[str]]
    consents: dict[str, ConsentPublic]
    locale: str | None
    timezone: str | None
    lifecycle_stage: str | None
    lead_score: float
    event_count: int
    first_seen_at: dt.datetime | None
    last_seen_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    erased_at: dt.datetime | None
    merged_from: list[str] = Field(description="profile ids folded into this one")
    customer_value: CustomerValue
    audiences: list[str] = Field(description="keys of the audiences the profile is in now")


class TimelineItem(BaseModel):
    at: dt.datetime
    kind: str
    summary: str
    data: dict[str, Any]


class TraitsPatch(BaseModel):
    traits: dict[Annotated[Text, Field(min_length=1, max_length=200)], Any] = Field(
        description="traits to set, the others stay as they are; null removes a trait",
        min_length=1,
        max_length=200,
    )


class ConsentUpdate(BaseModel):
    status: Literal["granted", "denied", "revoked"]
    source: Text = Field(
        min_length=1, max_length=100, description="e.g. preference centre, support"
    )
    at: Omittable[Instant] = Field(
        default=None, description="when it was given (no zone: UTC); left out: now"
    )


class ErasurePublic(BaseModel):
    profile_id: str
    at: dt.datetime
    summary: dict[str, Any]
    cancel_failed: list[str] = []


def _public(session: Session, profile_id: str) -> ProfilePublic:
    profile = service.get_live_profile(session, profile_id)
    consents = service.consents_of(session, profile.id)
    return ProfilePublic(
        **profile.model_dump(exclude={"traits"}),
        traits=profile.traits or {},
        identifiers=service.identifiers_of(session, profile.id),
        consents={
            c: ConsentPublic(status=r.status, source=r.source, at=r.at) for c, r in consents.items()
        },
        merged_from=gdpr.merged_ids(session, profile.id),
        customer_value=CustomerValue(
            order_count=profile.order_count,
            revenue=profile.revenue,
            currency=profile.currency,
            average_order_value=(
                profile.revenue / profile.order_count if profile.order_count > 0 else None
            ),
            first_order_at=profile.first_order_at,
            last_order_at=profile.last_order_at,
        ),
        audiences=profile_audiences(session, profile.id),
    )


ERASED = "The profile is erased"


@router.get(
    "/lookup",
    response_model=ProfilePublic,
    responses=responses((400, "Not exactly one identifier given"), 404),
)
def lookup_profile(
    session: SessionDep,
    _: ReadDep,
    email: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    phone: str | None = None,
    type: Annotated[str | None, Query(max_length=32, description="any identifier type")] = None,
    value: Annotated[str | None, Query(max_length=255)] = None,
) -> ProfilePublic:
    """Find a profile by one identifier: `?email=`, `?user_id=`, `?anonymous_id=`, `?phone=`,
    or `?type=loyalty_id&value=...`."""
    given = {
        k: v
        for k, v in (
            ("email", email),
            ("user_id", user_id),
            ("anonymous_id", anonymous_id),
            ("phone", phone),
        )
        if v is not None
    }
    if type is not None or value is not None:
        if not type or not value:
            raise DomainError("give both type and value", field="type" if not type else "value")
        given[type] = value
    if len(given) != 1:
        raise DomainError(
            f"give exactly one identifier ({', '.join(KNOWN_TYPES)}, or type+value)", field="query"
        )
    ((type_, val),) = given.items()
    pid = service.find_by_identifier(session, type=type_, value=val)
    if pid is None:
        raise NotFound("no profile with that identifier", field=type_)
    return _public(session, pid)


@router.get("/{profile_id}", response_model=ProfilePublic, responses=NOT_FOUND)
def get_profile(profile_id: str, session: SessionDep, _: ReadDep) -> ProfilePublic:
    """A profile by id (a merged-away id answers with the surviving profile)."""
    return _public(session, profile_id)


@router.get("/{profile_id}/timeline", response_model=list[TimelineItem], responses=NOT_FOUND)
def get_timeline(
    profile_id: str,
    session: SessionDep,
    _: ReadDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Events, messages, journey steps, score changes, merges and consent, newest first."""
    return service.timeline(session, profile_id=profile_id, limit=limit)


# Traits that also fill a profile column (as text): their values must fit it. The JSON of the
# traits keeps any length; PostgreSQL refuses a longer value for the column, SQLite keeps it.
def _length(column: str) -> int:
    length = getattr(sa.inspect(Profile).columns[column].type, "length", None)
    if not isinstance(length, int):
        raise TypeError(f"profile.{column} is not a sized text column")
    return length


_COLUMN_TRAITS = {name: _length(name) for name in ("locale", "timezone")}


def _check_column_traits(traits: dict[str, Any]) -> None:
    for name, length in _COLUMN_TRAITS.items():
        value = traits.get(name)
        if value not in (None, "") and len(str(value)) > length:
            raise DomainError(
                f"at most {length} characters", field=f"traits.{name}", status_code=422
            )


@router.patch(
    "/{profile_id}/traits",
    response_model=ProfilePublic,
    responses=responses(
        404, (409, "The profile is erased, or an identifier trait belongs to another profile")
    ),
)
def patch_traits(
    profile_id: str, body: TraitsPatch, session: SessionDep, _: WriteDep
) -> ProfilePublic:
    """Set the traits sent (null removes one); the others stay as they are."""
    _check_column_traits(body.traits)
    profile = service.patch_traits(session, profile_id=profile_id, traits=body.traits)
    flags.follow_traits(session, profile)
    session.commit()
    return _public(session, profile.id)


@router.put(
    "/{profile_id}/consents/{channel}",
    response_model=ProfilePublic,
    responses=responses((400, "Not a channel name"), 404, (409, ERASED)),
)
def put_consent(
    profile_id: str, channel: str, body: ConsentUpdate, session: SessionDep, _: WriteDep
) -> ProfilePublic:
    """Grant, deny or revoke consent for one channel (email, sms, push, in_app, ...)."""
    profile = service.get_live_profile(session, profile_id)
    if profile.erased_at is not None:
        raise DomainError("profile is erased", field="profile_id", status_code=409)
    set_consent(
        session,
        profile_id=profile.id,
        channel=channel,
        status=body.status,
        source=body.source,
        at=body.at,
    )
    session.commit()
    return _public(session, profile.id)


@router.get("/{profile_id}/export", responses=NOT_FOUND)
def export_profile(profile_id: str, session: SessionDep, _: AdminDep) -> dict[str, Any]:
    """GDPR export: everything held about the profile, as JSON."""
    return gdpr.export_profile(session, profile_id=profile_id)


@router.delete(
    "/{profile_id}", response_model=ErasurePublic, responses=responses(404, (409, ERASED))
)
async def erase_profile(
    profile_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    erasers: ProfileErasersDep,
    principal: AdminDep,
) -> ErasurePublic:
    """GDPR erase: PII and events removed, running journeys cancelled, audit record kept."""
    audit = gdpr.erase_profile(
        session,
        profile_id=profile_id,
        secret=runtime.settings.secret_key,
        erasers=erasers,
        requested_by=principal.key_id,
    )
    session.commit()
    failed = await gdpr.cancel_after_erase(erasers, audit)
    return ErasurePublic(
        profile_id=audit.profile_id, at=audit.at, summary=audit.summary, cancel_failed=failed
    )
