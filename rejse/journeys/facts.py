"""Facts about one profile for branch conditions, read from the database (in an activity)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from rejse.conditions import matches
from rejse.contracts import ProfileSnapshot


@dataclass
class ProfileFacts:
    session: Session
    profile: ProfileSnapshot
    properties: Mapping[str, Any] = field(default_factory=dict)
    audiences: Collection[str] = field(default_factory=frozenset)  # no audiences domain yet

    @property
    def traits(self) -> Mapping[str, Any]:
        return self.profile.traits

    @property
    def score(self) -> float:
        return self.profile.lead_score

    @property
    def consents(self) -> Mapping[str, str]:
        return self.profile.consents

    def count_events(
        self, event: str, *, since: dt.datetime | None, where: Mapping[str, Any] | None
    ) -> int:
        from rejse.models.events import Event

        stmt = select(Event.properties).where(
            Event.profile_id == self.profile.id, Event.event == event
        )
        if since is not None:
            stmt = stmt.where(Event.timestamp >= since)
        if not where:
            return len(self.session.exec(stmt).all())
        return sum(
            1
            for props in self.session.exec(stmt)
            if matches(where, {"properties": props or {}, "event": event})
        )
