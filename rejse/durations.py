"""ISO-8601 durations (`P3D`, `PT5S`, `P1DT12H`), parsed with pydantic. Months and years are
refused: their length depends on the calendar, so journeys and rules use days or weeks."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from pydantic import TypeAdapter, ValidationError

_ADAPTER = TypeAdapter(dt.timedelta)


class DurationError(ValueError):
    pass


def parse_duration(value: object) -> dt.timedelta:
    if not isinstance(value, str):
        raise DurationError(f"{value!r} is not an ISO-8601 duration such as 'P3D' or 'PT5S'")
    return _parse(value)


@lru_cache(maxsize=1024)  # conditions re-read the same few windows on every event
def _parse(value: str) -> dt.timedelta:
    if not value.startswith("P"):
        raise DurationError(f"{value!r} is not an ISO-8601 duration such as 'P3D' or 'PT5S'")
    date_part = value[1:].split("T", 1)[0]
    if "Y" in date_part or "M" in date_part:
        raise DurationError(f"{value!r}: years and months are not allowed; use days (e.g. 'P30D')")
    try:
        delta = _ADAPTER.validate_python(value)
    except ValidationError:
        raise DurationError(
            f"{value!r} is not an ISO-8601 duration such as 'P3D' or 'PT5S'"
        ) from None
    if delta <= dt.timedelta(0):
        raise DurationError(f"{value!r} must be longer than zero")
    return delta


def is_duration(value: object) -> bool:
    try:
        parse_duration(value)
    except DurationError:
        return False
    return True
