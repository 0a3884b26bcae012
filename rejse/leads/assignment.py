"""Choosing a rep: round robin among active reps, optionally limited to a territory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from rejse.models.leads import SalesRep

_LONG_AGO = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def in_territory(rep: SalesRep, value: Any) -> bool:
    if value is None:
        return False
    wanted = str(value).strip().casefold()
    return any(t.strip().casefold() == wanted for t in rep.territories)


def choose_rep(
    reps: Sequence[SalesRep],
    *,
    mode: str,
    territory_value: Any = None,
    exclude: Collection[str] = (),
) -> SalesRep | None:
    """Round robin = the active rep assigned longest ago (never-assigned first, oldest rep first).
    Territory mode picks among reps covering the value and falls back to everyone active."""
    pool = [r for r in reps if r.active and r.id not in exclude]
    if mode == "territory":
        local = [r for r in pool if in_territory(r, territory_value)]
        pool = local or pool
    if not pool:
        return None
    return min(pool, key=lambda r: (r.last_assigned_at or _LONG_AGO, r.created_at, r.id))
