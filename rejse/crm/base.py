"""What every CRM adapter receives and implements. Adapters raise `rejse.outbound`'s
`Transient` / `RateLimited` / `Rejected`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CrmLead:
    lead_id: str
    profile_id: str
    email: str | None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    country: str | None = None
    score: float = 0.0
    stage: str = "aql"
    reason: str = ""
    owner_id: str | None = None  # the rep's id in the CRM (HubSpot owner, Salesforce user)
    due_at: dt.datetime | None = None


class CrmAdapter(Protocol):
    name: str

    def upsert_contact(self, lead: CrmLead) -> str:
        """Create or update the person; returns the CRM's id for it. Idempotent."""
        ...

    def create_task(self, lead: CrmLead, *, contact_ref: str) -> str | None:
        """Give the assigned owner something to do (a task, an owner change). Returns its id."""
        ...
