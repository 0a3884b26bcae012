"""Salesforce: Lead upsert by external id (`PATCH .../sobjects/Lead/{field}/{value}`)."""

from __future__ import annotations

from typing import Any

import httpx

from rejse.crm.base import CrmLead
from rejse.outbound import request


class SalesforceAdapter:
    name = "salesforce"

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        api_version: str = "v60.0",
        external_id_field: str = "Rejse_Profile_Id__c",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.path = f"/services/data/{api_version}/sobjects/Lead/{external_id_field}"
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {token}"},
        )

    def _patch(self, lead: CrmLead, fields: dict[str, Any], *, what: str) -> httpx.Response:
        return request(
            self.client,
            "PATCH",
            f"{self.path}/{lead.profile_id}",
            what=what,
            json={k: v for k, v in fields.items() if v is not None},
        )

    def upsert_contact(self, lead: CrmLead) -> str:
        # LastName and Company are required on a Salesforce Lead.
        response = self._patch(
            lead,
            {
                "LastName": lead.last_name or "[not provided]",
                "FirstName": lead.first_name,
                "Email": lead.email,
                "Phone": lead.phone,
                "Company": lead.company or "[not provided]",
                "Country": lead.country,
                "LeadSource": "rejse",
                "Description": lead.reason[:1000],
            },
            what="salesforce lead upsert",
        )
        if response.status_code == 204 or not response.content:
            return lead.profile_id  # updated: Salesforce answers 204 without a body
        return str(response.json().get("id") or lead.profile_id)

    def create_task(self, lead: CrmLead, *, contact_ref: str) -> str | None:
        if lead.owner_id:
            self._patch(lead, {"OwnerId": lead.owner_id}, what="salesforce lead owner")
        return None
