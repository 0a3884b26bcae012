"""Send guards, pure functions with explicit clocks: consent, quiet hours, frequency cap."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rejse.quiet_hours import QuietHours

BLOCKING_CONSENT = ("denied", "revoked")


def consent_reason(consents: dict[str, str], channel: str, *, require_opt_in: bool) -> str | None:
    """None when a marketing message may go out on `channel`, else the reason it may not."""
    status = consents.get(channel)
    if status in BLOCKING_CONSENT:
        return f"no_consent ({channel} {status})"
    if require_opt_in and status != "granted":
        return f"no_consent ({channel} not granted)"
    return None


def zone(name: str | None, default: str) -> ZoneInfo:
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_until(now: dt.datetime, quiet: QuietHours | None, tz: ZoneInfo) -> dt.datetime | None:
    """None if `now` is outside the quiet window, else the UTC time the window ends."""
    if quiet is None:
        return None
    local = now.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return None
    end_day = local.date()
    if quiet.start > quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
        end_day += dt.timedelta(days=1)
    # Wall-clock end in the local zone (DST-aware via zoneinfo), then back to UTC.
    end_local = dt.datetime.combine(end_day, quiet.end, tzinfo=tz)
    return end_local.astimezone(dt.UTC)


def over_frequency_cap(
    sent_at: Iterable[dt.datetime], *, now: dt.datetime, cap: int, window: dt.timedelta
) -> bool:
    """True when `cap` marketing messages were already sent within `window` before `now`."""
    if cap <= 0:
        return False
    since = now - window
    return sum(1 for at in sent_at if since < at <= now) >= cap
