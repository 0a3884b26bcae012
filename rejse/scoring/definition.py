"""The scoring model definition (what marketers POST) and its validation."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from rejse.conditions import validate_condition
from rejse.durations import DurationError, parse_duration
from rejse.errors import DomainError
from rejse.models.profiles import STAGES

STAGE_RANK = {s: i for i, s in enumerate(STAGES)}
ScoreStage = Literal["lead", "aql", "sql"]  # stages a threshold may move a profile into
SCORE_STAGES: tuple[ScoreStage, ...] = ("lead", "aql", "sql")
RULE_ID = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


Points = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]


class Cap(BaseModel):
    points: Points = Field(gt=0, description="most points this rule grants per period")
    per: str = Field(description="period as ISO-8601 duration, e.g. P1D")


class EventRule(BaseModel):
    id: str = Field(pattern=RULE_ID)
    event: str = Field(min_length=1, max_length=200)
    condition: dict[str, Any] | None = Field(
        default=None, description="on the event's properties: `property` leaves, all/any/not"
    )
    points: Points
    cap: Cap | None = None
    high_intent: bool = Field(default=False, description="shown as a reason in the sales list")


class FitRule(BaseModel):
    id: str = Field(pattern=RULE_ID)
    condition: dict[str, Any] = Field(description="on the profile's traits: `trait` leaves")
    points: Points


class HandoffPolicy(BaseModel):
    reminder_after: str = "PT4H"
    escalate_after: str = "PT24H"
    escalation: Literal["reassign", "manager"] = "reassign"
    max_escalations: int = Field(default=2, ge=0, le=10)
    expire_after: str = "P14D"
    suppress_for: str = "P90D"
    assignment: Literal["round_robin", "territory"] = "round_robin"
    territory_trait: str = "country"


def _default_thresholds() -> dict[ScoreStage, float]:
    return {"lead": 10.0, "aql": 50.0}


class ScoringDefinition(BaseModel):
    event_rules: list[EventRule] = Field(default_factory=list)
    fit_rules: list[FitRule] = Field(default_factory=list)
    half_life: str | None = Field(
        default="P30D", description="decay of behaviour points; null: none"
    )
    thresholds: dict[ScoreStage, Points] = Field(default_factory=_default_thresholds)
    handoff: HandoffPolicy = Field(default_factory=HandoffPolicy)


def _leaf_kinds(cond: Any) -> Iterator[str]:
    if not isinstance(cond, Mapping):
        return
    for group in ("all", "any"):
        if group in cond and isinstance(cond[group], list):
            for c in cond[group]:
                yield from _leaf_kinds(c)
            return
    if "not" in cond:
        yield from _leaf_kinds(cond["not"])
        return
    yield from (
        k for k in ("trait", "property", "event", "score", "audience", "consent") if k in cond
    )


def _check_duration(value: str, field: str) -> None:
    try:
        parse_duration(value)
    except DurationError as exc:
        raise DomainError(str(exc), field=field) from None


def _storable(value: Any, path: str) -> None:
    """JSON columns on PostgreSQL hold neither NUL characters nor NaN/Infinity."""
    if isinstance(value, str) and "\x00" in value:
        raise DomainError("must not contain NUL characters", field=path)
    if isinstance(value, float) and not math.isfinite(value):
        raise DomainError("must be a finite number", field=path)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _storable(key, path)
            _storable(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _storable(item, f"{path}.{i}")


def validate_definition(d: ScoringDefinition) -> None:
    """Raise `DomainError` naming the first bad field."""
    for name, value in d.model_dump(mode="python").items():
        _storable(value, name)
    seen: set[str] = set()
    for i, rule in enumerate(d.event_rules):
        if rule.id in seen:
            raise DomainError(f"rule id {rule.id!r} is used twice", field=f"event_rules.{i}.id")
        seen.add(rule.id)
        if rule.condition is not None:
            issues = validate_condition(rule.condition, path=f"event_rules.{i}.condition")
            if issues:
                raise DomainError(issues[0].message, field=issues[0].field)
            if set(_leaf_kinds(rule.condition)) - {"property"}:
                raise DomainError(
                    "event rule conditions may only test the event's properties "
                    "(`property` leaves)",
                    field=f"event_rules.{i}.condition",
                )
        if rule.cap is not None:
            _check_duration(rule.cap.per, f"event_rules.{i}.cap.per")
    for i, fit in enumerate(d.fit_rules):
        if fit.id in seen:
            raise DomainError(f"rule id {fit.id!r} is used twice", field=f"fit_rules.{i}.id")
        seen.add(fit.id)
        issues = validate_condition(fit.condition, path=f"fit_rules.{i}.condition")
        if issues:
            raise DomainError(issues[0].message, field=issues[0].field)
        if set(_leaf_kinds(fit.condition)) - {"trait"}:
            raise DomainError(
                "fit rule conditions may only test traits (`trait` leaves)",
                field=f"fit_rules.{i}.condition",
            )
    if d.half_life is not None:
        _check_duration(d.half_life, "half_life")
    ordered = [(s, d.thresholds[s]) for s in SCORE_STAGES if s in d.thresholds]
    for (s1, v1), (s2, v2) in itertools.pairwise(ordered):
        if v2 <= v1:
            raise DomainError(
                f"threshold of {s2!r} must be higher than that of {s1!r}", field=f"thresholds.{s2}"
            )
    h = d.handoff
    for name in ("reminder_after", "escalate_after", "expire_after", "suppress_for"):
        _check_duration(getattr(h, name), f"handoff.{name}")
    if parse_duration(h.reminder_after) >= parse_duration(h.escalate_after):
        raise DomainError(
            "reminder_after must be shorter than escalate_after", field="handoff.reminder_after"
        )
