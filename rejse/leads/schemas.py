"""Schemas of the sales API: reps, leads, outcomes, the sales list and its metrics."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    EmailStr,
    Field,
    HttpUrl,
    UrlConstraints,
    ValidationInfo,
    field_validator,
)

from rejse.inputs import Omittable, Text

WEBHOOK_URL_LENGTH = 1000  # sales_rep.webhook_url


def _fits_column(url: HttpUrl) -> HttpUrl:
    # The URL as stored: percent-encoding can make it several times longer than what was sent.
    if len(str(url)) > WEBHOOK_URL_LENGTH:
        raise ValueError(f"at most {WEBHOOK_URL_LENGTH} characters, percent-encoded")
    return url


WebhookUrl = Annotated[
    HttpUrl, UrlConstraints(max_length=WEBHOOK_URL_LENGTH), AfterValidator(_fits_column)
]

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
    webhook_url: WebhookUrl | None = Field(
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
    """A partial change: a field left out stays as it is. Null clears `manager_id`,
    `webhook_url` and `crm_owner_id`; the other fields always hold a value, so null is refused
    for them (422 naming the field)."""

    name: Omittable[Text] = Field(default=None, min_length=1, max_length=200)
    email: Omittable[EmailStr] = None
    territories: Omittable[list[Annotated[Text, Field(max_length=100)]]] = Field(
        default=None, description="replaces the list; [] for none"
    )
    active: Omittable[bool] = None
    manager_id: Text | None = Field(default=None, max_length=32, description="null: no manager")
    webhook_url: WebhookUrl | None = Field(default=None, description="null: no chat notifications")
    crm_owner_id: Text | None = Field(default=None, max_length=100, description="null: none")
    locale: Omittable[Literal["da", "sv", "en"]] = None


class RepPublic(RepBase):
    id: str
    created_at: dt.datetime
    last_assigned_at: dt.datetime | None = None
    webhook_url: str | None = None  # type: ignore[assignment]


LossReason = Literal[
    "price", "timing", "competitor", "no_budget", "no_need", "no_response", "other"
]


class OutcomeCreate(BaseModel):
    outcome: Outcome
    note: Text | None = Field(default=None, max_length=1000)
    reason: LossReason | None = Field(
        default=None, description="why the lead was lost (`lost` or `not_relevant` only)"
    )

    @field_validator("reason")
    @classmethod
    def _only_when_lost(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("outcome") not in ("lost", "not_relevant"):
            raise ValueError("a reason goes with the outcomes lost and not_relevant only")
        return value


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
