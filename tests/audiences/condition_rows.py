"""Rows for condition tests: profiles with events, consents, scores, memberships and customer
value, written in bulk with Core (so hundreds of examples stay fast), and both evaluators run
over them."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from rejse.audiences.facts import load_facts
from rejse.audiences.sql import profiles_matching
from rejse.conditions import evaluate
from rejse.models.audiences import AudienceMembership
from rejse.models.events import Event
from rejse.models.leads import ProfileScore, ScoringModel
from rejse.models.profiles import Consent, Profile

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC)
TABLES = [
    t.__table__ for t in (Event, Consent, ProfileScore, AudienceMembership, ScoringModel, Profile)
]  # type: ignore[attr-defined]
_ids = itertools.count()


@dataclass
class Row:
    traits: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, dt.datetime, Any]] = field(default_factory=list)  # name, at, props
    consents: dict[str, str] = field(default_factory=dict)
    score: tuple[float, float, dt.datetime] | None = None  # behaviour, fit, decayed_at
    audiences: set[str] = field(default_factory=set)
    order_count: int = 0
    revenue: float = 0.0
    first_order_at: dt.datetime | None = None
    last_order_at: dt.datetime | None = None
    erased: bool = False


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(table.delete())


def insert(engine: Engine, rows: list[Row], *, half_life: str | None = "P30D") -> list[str]:
    """Write the rows (and an active scoring model with `half_life`); their profile ids."""
    ids = [f"prf_{next(_ids):026d}" for _ in rows]
    profiles, events, consents, scores, members = [], [], [], [], []
    for pid, row in zip(ids, rows, strict=True):
        profiles.append(
            {
                "id": pid,
                "traits": row.traits,
                "groups": {},
                "lead_score": 0.0,
                "event_count": len(row.events),
                "order_count": row.order_count,
                "revenue": row.revenue,
                "first_order_at": row.first_order_at,
                "last_order_at": row.last_order_at,
                "created_at": NOW,
                "updated_at": NOW,
                "erased_at": NOW if row.erased else None,
            }
        )
        for n, (name, at, props) in enumerate(row.events):
            eid = f"evt_{pid}_{n}"
            events.append(
                {
                    "id": eid,
                    "message_id": eid,
                    "type": "track",
                    "event": name,
                    "profile_id": pid,
                    "properties": props,
                    "traits": {},
                    "context": {},
                    "timestamp": at,
                    "received_at": at,
                    "source": "api",
                }
            )
        consents += [
            {"profile_id": pid, "channel": c, "status": s, "source": "test", "at": NOW}
            for c, s in row.consents.items()
        ]
        if row.score is not None:
            behaviour, fit, decayed_at = row.score
            scores.append(
                {
                    "profile_id": pid,
                    "behaviour": behaviour,
                    "fit": fit,
                    "breakdown": {},
                    "fit_breakdown": {},
                    "decayed_at": decayed_at,
                    "stage": "subscriber",
                    "recent": [],
                    "updated_at": NOW,
                }
            )
        members += [
            {"audience_key": a, "profile_id": pid, "entered_at": NOW} for a in row.audiences
        ]
    with engine.begin() as conn:
        conn.execute(
            ScoringModel.__table__.insert(),  # type: ignore[attr-defined]
            {
                "version": 1,
                "definition": {"half_life": half_life},
                "active": True,
                "created_at": NOW,
            },
        )
        for model, values in (
            (Profile, profiles),
            (Event, events),
            (Consent, consents),
            (ProfileScore, scores),
            (AudienceMembership, members),
        ):
            if values:
                conn.execute(model.__table__.insert(), values)  # type: ignore[attr-defined]
    return ids


def by_sql(
    engine: Engine, cond: Mapping[str, Any], *, now: dt.datetime = NOW, **kw: Any
) -> set[str]:
    with Session(engine) as session:
        return set(session.execute(profiles_matching(session, cond, now=now, **kw)).scalars())


def in_memory(
    engine: Engine, cond: Mapping[str, Any], ids: list[str], *, now: dt.datetime = NOW
) -> set[str]:
    with Session(engine) as session:
        out = set()
        for pid in ids:
            facts = load_facts(session, pid, now=now)
            if facts.found and evaluate(cond, facts, now=now):
                out.add(pid)
        return out
