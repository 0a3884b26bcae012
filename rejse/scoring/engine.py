"""Score arithmetic without a database: lazy exponential decay, caps per period, fit points
and threshold stages. Everything here is O(rules of one event), never O(history)."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rejse.conditions import StaticFacts, evaluate
from rejse.durations import parse_duration
from rejse.scoring.definition import (
    SCORE_STAGES,
    STAGE_RANK,
    EventRule,
    FitRule,
    ScoreStage,
    ScoringDefinition,
)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def decay_factor(half_life: dt.timedelta | None, elapsed: dt.timedelta) -> float:
    """Share of behaviour points left after `elapsed`: 0.5 ** (elapsed / half_life)."""
    if half_life is None or elapsed <= dt.timedelta(0):
        return 1.0
    return math.pow(0.5, elapsed / half_life)


def period_start(at: dt.datetime, period: dt.timedelta) -> dt.datetime:
    """Start of the fixed period (aligned to the Unix epoch) that contains `at`."""
    n = (at - EPOCH) // period
    return EPOCH + n * period


def stages_crossed(current: str, total: float, thresholds: Mapping[ScoreStage, float]) -> list[str]:
    """Stages above `current` whose threshold `total` reaches, in order. Never downwards."""
    rank = STAGE_RANK.get(current, 0)
    return [
        s
        for s in SCORE_STAGES
        if s in thresholds and STAGE_RANK[s] > rank and total >= thresholds[s]
    ]


@dataclass(frozen=True)
class CompiledModel:
    version: int
    definition: ScoringDefinition
    half_life: dt.timedelta | None
    rules_by_event: Mapping[str, list[EventRule]]
    cap_periods: Mapping[str, dt.timedelta] = field(default_factory=dict)

    @classmethod
    def build(cls, version: int, definition: ScoringDefinition) -> CompiledModel:
        by_event: dict[str, list[EventRule]] = defaultdict(list)
        periods: dict[str, dt.timedelta] = {}
        for rule in definition.event_rules:
            by_event[rule.event].append(rule)
            if rule.cap:
                periods[rule.id] = parse_duration(rule.cap.per)
        half_life = parse_duration(definition.half_life) if definition.half_life else None
        return cls(version, definition, half_life, dict(by_event), periods)

    def matching_rules(
        self, event: str | None, properties: Mapping[str, Any], *, now: dt.datetime
    ) -> list[EventRule]:
        rules = self.rules_by_event.get(event or "", [])
        if not rules:
            return []
        facts = StaticFacts(properties=properties)
        return [r for r in rules if r.condition is None or evaluate(r.condition, facts, now=now)]

    def fit(self, traits: Mapping[str, Any], *, now: dt.datetime) -> dict[str, float]:
        facts = StaticFacts(traits=traits)
        return {
            r.id: r.points
            for r in self.definition.fit_rules
            if evaluate(r.condition, facts, now=now)
        }

    @property
    def fit_rules(self) -> list[FitRule]:
        return self.definition.fit_rules


def capped_points(points: float, cap: float | None, granted_in_period: float) -> float:
    """Points a capped rule may still grant in its period (negative points are never capped)."""
    if cap is None or points <= 0:
        return points
    return max(0.0, min(points, cap - granted_in_period))
