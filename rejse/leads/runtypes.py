"""What `LeadHandoffWorkflow`, `SalesDigestWorkflow` and their activities share: workflow and
activity names, workflow ids and the payloads they pass (pydantic, PII-free)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

HANDOFF_WORKFLOW = "LeadHandoffWorkflow"
DIGEST_WORKFLOW = "SalesDigestWorkflow"

OPEN = "leads.open"
ASSIGN = "leads.assign"
NOTIFY = "leads.notify"
MARK = "leads.mark"
DIGEST = "leads.digest"
CRM_UPSERT = "crm.upsert_contact"
CRM_TASK = "crm.create_task"

# The ApplicationError types the workflows' retry policies treat as final.
CRM_REJECTED = "CrmRejected"
NOTIFY_REJECTED = "NotifyRejected"


def handoff_id(profile_id: str) -> str:
    """One running hand-off per profile."""
    return f"handoff:{profile_id}"


def digest_id(rep_id: str, day: dt.date) -> str:
    """One digest per rep and day: a second scheduler fire finds it started."""
    return f"digest:{rep_id}:{day.isoformat()}"


class HandoffInput(BaseModel):
    profile_id: str
    reason: str
    source: str
    trigger_key: str  # idempotency of the start (event id, journey step)
    crm: bool = True


class HandoffPlan(BaseModel):
    lead_id: str | None
    skip: str | None = None  # why no hand-off happens (suppressed, duplicate, erased)
    reminder_after_s: float = 4 * 3600
    escalate_after_s: float = 24 * 3600
    expire_after_s: float = 14 * 86400
    max_escalations: int = 2
    crm: bool = True


class LeadStep(BaseModel):
    lead_id: str
    step: int = 0
    kind: str = ""  # notify: new, reminder, reassigned; mark: reminded, expired, crm_failed
    detail: str | None = None


class HandoffResult(BaseModel):
    lead_id: str | None
    status: str


class DigestInput(BaseModel):
    rep_id: str
    day: dt.date
