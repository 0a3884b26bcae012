"""Schemas of the sales API: reps, leads, outcomes, the sales list and its metrics."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field, HttpUrl


def _no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL text cannot hold NUL characters
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]

OUTCOMES = ("contacted", "meeting", "won", "lost", "not_relevant")
Outcome = Literal["contacted", "meeting", "won", "lost", "not_relevant"]


class RepBase(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    email: EmailStr
    territories: list[Annotated[Text, Field(max_length=100)]] = Field(
        default_factory=list, description="trait values, e.g. countries: DK, SE"
    )
    active: bool = True
    manager_id: Text | None = Field(default=None, max_length=32)
    webhook_url: HttpUrl | None = Field(
        default=None, description="Slack-compatible incoming webhook"
    )
    crm_owner_id: Text | None = Field(
        default=None, max_length=100, description="owner/user id in the CRM"
    )
    locale: Literal["da", "sv", "en"] = Field(
        default="en", description="language of the rep's emails"
    )


class RepCreate(RepBase):
    pass


class RepUpdate(BaseModel):
    name: Text | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    territories: list[Annotated[Text, Field(max_length=100)]] | None = None
    active: bool | None = None
    manager_id: Text | None = Field(default=None, max_length=32)
    webhook_url: HttpUrl | None = None
    crm_owner_id: Text | None = Field(default=None, max_length=100)
    locale: Literal["da", "sv", "en"] | None = None


class RepPublic(RepBase):
    id: str
    created_at: dt.datetime
    last_assigned_at: dt.datetime | None = None
    webhook_url: str | None = None  # type: ignore[assignment]


class OutcomeCreate(BaseModel):
    outcome: Outcome
    note: Text | None = Field(default=None, max_length=1000)


class LeadPublic(BaseModel):
    id: str
    profile_id: str
    workflow_id: str
    source: str
    reason: str
    score: float
    status: str
    rep_id: str | None
    assigned_at: dt.datetime | None
    due_at: dt.datetime | None
    reminded_at: dt.datetime | None
    reassignments: int
    history: list[dict[str, Any]]
    crm_status: str
    crm_error: str | None
    crm_ref: str | None
    crm_task_id: str | None
    outcome: str | None
    outcome_at: dt.datetime | None
    first_contact_at: dt.datetime | None
    created_at: dt.datetime


class Contact(BaseModel):
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None


class NextItem(BaseModel):
    lead_id: str
    profile_id: str
    rep_id: str | None
    priority: float
    score: float
    reason: str
    due_at: dt.datetime | None
    overdue: bool
    contact: Contact


class Metrics(BaseModel):
    since: dt.datetime | None
    aqls_created: int
    open: int
    overdue: int
    contacted: int
    contacted_within_sla: int
    share_contacted_within_sla: float | None
    median_time_to_contact_seconds: float | None
    by_outcome: dict[str, int]
    conversion_by_outcome: dict[str, float]
