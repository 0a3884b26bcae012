"""The shapes of the maturity assessment's texts (`rejse.maturity.texts`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PositionText:
    name: str
    who: str
    typical: str
    challenge: str
    way_forward: str
    motto: str | None = None


@dataclass(frozen=True)
class ScenarioText:
    name: str
    description: str
    main_challenge: str
    way_forward: str


@dataclass(frozen=True)
class Workshop:
    title: str
    purpose: str
    participants: str
    duration_minutes: int
    agenda: tuple[str, ...]
