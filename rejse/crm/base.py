"""What every CRM adapter receives and raises."""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass
from typing import Protocol

import httpx


class CrmError(Exception):
    pass


class CrmTransient(CrmError):
    """Try again later (5xx, 408, timeouts, connection errors)."""


class CrmRateLimited(CrmError):
    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CrmRejected(CrmError):
    """The CRM refused the data (4xx validation); retrying cannot help. `detail` holds the
    CRM's answer (may echo personal data: stored on the lead, never logged)."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


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


def parse_retry_after(
    value: str | None, *, default: float = 30.0, now: dt.datetime | None = None
) -> float:
    """Retry-After as delay seconds or an HTTP date (RFC 9110); `default` when absent/garbled."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def _short(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:400]


def check(response: httpx.Response, *, what: str) -> httpx.Response:
    """Return a 2xx response; raise the error class matching any other status."""
    status = response.status_code
    if 200 <= status < 300:
        return response
    if status == 429:
        raise CrmRateLimited(
            f"{what}: 429 rate limited",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status >= 500 or status == 408:
        raise CrmTransient(f"{what}: {status}")
    raise CrmRejected(f"{what}: {status}", detail=_short(response))


def send(client: httpx.Client, method: str, url: str, *, what: str, **kwargs) -> httpx.Response:
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise CrmTransient(f"{what}: {type(exc).__name__}") from None
    return check(response, what=what)
