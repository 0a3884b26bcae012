"""Outbound HTTP to other services (CRMs, SMS providers, webhooks) and the one rule that
classifies every answer:

- 2xx: success, the response is returned;
- 5xx, 408, timeouts and connection errors: `Transient`, try again later;
- 429: `RateLimited` (a `Transient`) carrying the delay the server asked for in Retry-After;
- anything else (other 4xx, and redirects, which are not followed): `Rejected`, final.

`application_error` turns one of these into the `ApplicationError` an activity raises, so
Temporal retries exactly the transient ones. Messages carry only the caller's `what` label and
the status: never the URL (it may hold a token) nor the answer's text (it may echo personal
data; a `Rejected` keeps it in `detail` for the caller to store, not to log)."""

from __future__ import annotations

import datetime as dt
import email.utils
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

DEFAULT_RETRY_AFTER = 30.0
DETAIL_CHARS = 400


class OutboundError(Exception):
    """A call to another service did not succeed. `what` is the caller's PII-free label
    ("hubspot contact upsert"), `status` the HTTP status (None when there was no answer)."""

    def __init__(self, what: str, problem: str | None = None, *, status: int | None = None) -> None:
        super().__init__(f"{what}: {problem or status or 'failed'}")
        self.what = what
        self.status = status


class Transient(OutboundError):
    """Try again later: 5xx, 408, timeouts, connection errors."""


class RateLimited(Transient):
    """429: try again after `retry_after` seconds."""

    def __init__(
        self,
        what: str,
        problem: str | None = None,
        *,
        status: int | None = 429,
        retry_after: float = DEFAULT_RETRY_AFTER,
    ) -> None:
        super().__init__(what, problem or f"{status} rate limited", status=status)
        self.retry_after = retry_after


class Rejected(OutboundError):
    """The service refused the request; retrying cannot help. `detail` is the answer's text
    (first 400 characters): it may echo personal data, so it is stored, never logged."""

    def __init__(
        self, what: str, problem: str | None = None, *, status: int | None = None, detail: str = ""
    ) -> None:
        super().__init__(what, problem, status=status)
        self.detail = detail


def parse_retry_after(
    value: str | None, *, default: float = DEFAULT_RETRY_AFTER, now: dt.datetime | None = None
) -> float:
    """Retry-After as delay seconds or an HTTP date, in seconds from `now` (never negative);
    `default` when absent or garbled."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are GMT
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def _detail(response: httpx.Response) -> str:
    return response.text.strip().replace("\n", " ")[:DETAIL_CHARS]


def check(response: httpx.Response, *, what: str) -> httpx.Response:
    """Return a 2xx response; raise the class matching any other status."""
    status = response.status_code
    if 200 <= status < 300:
        return response
    if status == 429:
        raise RateLimited(
            what, status=status, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 500 or status == 408:
        raise Transient(what, status=status)
    raise Rejected(what, status=status, detail=_detail(response))


def request(
    client: httpx.Client, method: str, url: str, *, what: str, **kwargs: Any
) -> httpx.Response:
    """`client.request(method, url, **kwargs)`, checked; a transport failure (connection
    refused, timeout, broken connection) is `Transient`."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise Transient(what, type(exc).__name__) from None
    return check(response, what=what)


def application_error(exc: OutboundError, *, kind: str) -> ApplicationError:
    """The Temporal form of `exc` for an activity to raise: `{kind}Rejected` non-retryable,
    anything else `{kind}Transient`, after Retry-After when rate limited."""
    if isinstance(exc, Rejected):
        return ApplicationError(str(exc), type=f"{kind}Rejected", non_retryable=True)
    delay = None
    if isinstance(exc, RateLimited):
        # at least a second: a Retry-After date already past must not read as "no delay"
        delay = dt.timedelta(seconds=max(exc.retry_after, 1.0))
    return ApplicationError(str(exc), type=f"{kind}Transient", next_retry_delay=delay)
