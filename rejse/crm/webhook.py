"""Generic CRM: a signed JSON webhook (`X-Rejse-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 of
"<t>.<body>" with the shared secret). Receivers dedupe on `Idempotency-Key`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from rejse.crm.base import CrmLead, send


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300, now: int | None = None) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((int(time.time()) if now is None else now) - t) > tolerance:
        return False
    expected = sign(secret, body, timestamp=t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookAdapter:
    name = "webhook"

    def __init__(self, *, url: str, secret: str, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url, self.secret = url, secret
        self.client = httpx.Client(timeout=timeout, transport=transport)

    def _post(self, kind: str, key: str, payload: dict) -> httpx.Response:
        body = json.dumps({"type": kind, **payload}, separators=(",", ":"), default=str).encode()
        return send(self.client, "POST", self.url, what=f"webhook {kind}", content=body, headers={
            "Content-Type": "application/json", "Idempotency-Key": key,
            "X-Rejse-Signature": sign(self.secret, body)})

    def upsert_contact(self, lead: CrmLead) -> str:
        self._post("lead.qualified", f"{lead.lead_id}:upsert", {
            "lead_id": lead.lead_id, "profile_id": lead.profile_id, "email": lead.email,
            "phone": lead.phone, "first_name": lead.first_name, "last_name": lead.last_name,
            "company": lead.company, "country": lead.country, "score": lead.score,
            "stage": lead.stage, "reason": lead.reason})
        return lead.profile_id

    def create_task(self, lead: CrmLead, *, contact_ref: str) -> str | None:
        self._post("lead.assigned", f"{lead.lead_id}:assigned", {
            "lead_id": lead.lead_id, "profile_id": lead.profile_id, "owner_id": lead.owner_id,
            "due_at": lead.due_at.isoformat() if lead.due_at else None})
        return None
