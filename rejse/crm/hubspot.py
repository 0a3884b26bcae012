"""HubSpot CRM v3: contact batch upsert by email, then a task associated with the contact."""

from __future__ import annotations

import datetime as dt

import httpx

from rejse.crm.base import CrmLead
from rejse.outbound import Rejected, request

TASK_TO_CONTACT = 204  # HUBSPOT_DEFINED association type id: task -> contact


class HubSpotAdapter:
    name = "hubspot"

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {token}"},
        )

    def upsert_contact(self, lead: CrmLead) -> str:
        if not lead.email:
            raise Rejected(
                "hubspot contact upsert",
                "the profile has no email (contacts are upserted by email)",
            )
        props = {
            "email": lead.email,
            "firstname": lead.first_name,
            "lastname": lead.last_name,
            "phone": lead.phone,
            "company": lead.company,
            "country": lead.country,
            "hs_lead_status": "NEW",
        }
        body = {
            "inputs": [
                {
                    "id": lead.email,
                    "idProperty": "email",
                    "properties": {k: v for k, v in props.items() if v},
                }
            ]
        }
        response = request(
            self.client,
            "POST",
            "/crm/v3/objects/contacts/batch/upsert",
            what="hubspot contact upsert",
            json=body,
        )
        results = response.json().get("results") or []
        if not results or not results[0].get("id"):
            raise Rejected("hubspot contact upsert", "no contact id in the answer")
        return str(results[0]["id"])

    def create_task(self, lead: CrmLead, *, contact_ref: str) -> str | None:
        due = lead.due_at or dt.datetime.now(dt.UTC)
        props = {
            "hs_timestamp": due.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "hs_task_subject": f"Contact new lead (score {lead.score:.0f})",
            "hs_task_body": f"{lead.reason} — rejse lead {lead.lead_id}",
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": "HIGH",
        }
        if lead.owner_id:
            props["hubspot_owner_id"] = lead.owner_id
        body = {
            "properties": props,
            "associations": [
                {
                    "to": {"id": contact_ref},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": TASK_TO_CONTACT,
                        }
                    ],
                }
            ],
        }
        response = request(
            self.client, "POST", "/crm/v3/objects/tasks", what="hubspot task", json=body
        )
        return str(response.json().get("id") or "") or None
