"""Generic CRM: a signed JSON webhook (`X-Rejse-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 of
"<t>.<body>" with the shared secret). Receivers dedupe on `Idempotency-Key`."""

from __future__ import annotations

import json
from typing import Any

import httpx

from rejse import signatures
from rejse.crm.base import CrmLead
from rejse.outbound import request


class WebhookAdapter:
    name = "webhook"

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url, self.secret = url, secret
        self.client = httpx.Client(timeout=timeout, transport=transport)

    def _post(self, kind: str, key: str, payload: dict[str, Any]) -> httpx.Response:
        body = json.dumps({"type": kind, **payload}, separators=(",", ":"), default=str).encode()
        return request(
            self.client,
            "POST",
            self.url,
            what=f"webhook {kind}",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                signatures.HEADER: signatures.sign(self.secret, body),
            },
        )

    def upsert_contact(self, lead: CrmLead) -> str:
        self._post(
            "lead.qualified",
            f"{lead.lead_id}:upsert",
            {
                "lead_id": lead.lead_id,
                "profile_id": lead.profile_id,
                "email": lead.email,
                "phone": lead.phone,
                "first_name": lead.first_name,
                "last_name": lead.last_name,
                "company": lead.company,
                "country": lead.country,
                "score": lead.score,
                "stage": lead.stage,
                "reason": lead.reason,
            },
        )
        return lead.profile_id

    def create_task(self, lead: CrmLead, *, contact_ref: str) -> str | None:
        self._post(
            "lead.assigned",
            f"{lead.lead_id}:assigned",
            {
                "lead_id": lead.lead_id,
                "profile_id": lead.profile_id,
                "owner_id": lead.owner_id,
                "due_at": lead.due_at.isoformat() if lead.due_at else None,
            },
        )
        return None
