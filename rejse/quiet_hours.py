"""Quiet hours: a daily window in local time, parsed from settings and checked by the send
guards. A leaf, so that settings can validate the window without importing messaging."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class QuietHours:
    """A daily window in local time during which sends wait; may wrap midnight (21:00-08:00)."""

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        try:
            a, b = (part.strip() for part in text.split("-"))
            start, end = dt.time.fromisoformat(a), dt.time.fromisoformat(b)
        except ValueError:
            raise ValueError(f"quiet hours {text!r} must look like '21:00-08:00'") from None
        if start == end:
            raise ValueError(f"quiet hours {text!r} must not start and end at the same time")
        return cls(start, end)

    def contains(self, local: dt.time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end
