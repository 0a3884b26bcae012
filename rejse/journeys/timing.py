"""Time arithmetic for waits, deterministic (the workflow passes its own `now`)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rejse.durations import parse_duration


def zone(name: str | None) -> dt.tzinfo:
    if not name:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def next_time_of_day(now: dt.datetime, hhmm: str, tz_name: str | None) -> dt.datetime:
    """The next moment (strictly after `now`) the profile's wall clock shows `hhmm`."""
    tz = zone(tz_name)
    local = now.astimezone(tz)
    hour, minute = (int(p) for p in hhmm.split(":"))
    day = local.date()
    for _ in range(3):
        candidate = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)
        if candidate.astimezone(dt.UTC) > now:
            return candidate.astimezone(dt.UTC)
        day += dt.timedelta(days=1)
    raise AssertionError("unreachable")


def delay_until(now: dt.datetime, when: dt.datetime) -> dt.timedelta:
    return max(when - now, dt.timedelta(0))


__all__ = ["delay_until", "next_time_of_day", "parse_duration", "zone"]
