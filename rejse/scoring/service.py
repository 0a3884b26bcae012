"""Scoring against the database: model versions, per-event scoring, manual points, the score
breakdown, explicit stage changes, merges and erasure. Keyword-only service functions."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col, delete, select

from rejse import funnel_changes as funnel
from rejse.contracts import ProcessedEvent
from rejse.db import id_chunks, utcnow
from rejse.errors import DomainError, NotFound
from rejse.models.leads import ProfileScore, ScoreCounter, ScoreGrant, ScoringModel
from rejse.models.profiles import STAGES, Profile
from rejse.scoring.definition import STAGE_RANK, ScoringDefinition, validate_definition
from rejse.scoring.engine import (
    CompiledModel,
    capped_points,
    decay_factor,
    period_start,
    stages_crossed,
)
from rejse.timeline import add_entry

STAGE_CHANGED = "Lifecycle Stage Changed"
RECENT_KEEP = 5
Derived = list[tuple[str, dict[str, Any]]]

# --------------------------------------------------------------------------- model versions

_generation = 0  # bumped on activation in this process; other processes see it within the TTL


def create_model(
    session: Session, *, definition: ScoringDefinition, activate: bool = False
) -> ScoringModel:
    validate_definition(definition)
    latest = session.exec(select(sa.func.max(ScoringModel.version))).one()
    row = ScoringModel(version=(latest or 0) + 1, definition=definition.model_dump(mode="json"))
    session.add(row)
    session.flush()
    if activate:
        activate_model(session, version=row.version)
    return row


def activate_model(session: Session, *, version: int) -> ScoringModel:
    global _generation
    row = session.get(ScoringModel, version)
    if row is None:
        raise NotFound(f"no scoring model version {version}", field="version")
    session.exec(
        sa.update(ScoringModel).where(col(ScoringModel.version) != version).values(active=False)
    )
    row.active = True
    row.activated_at = utcnow()
    session.add(row)
    session.flush()
    _generation += 1
    return row


def list_models(session: Session) -> list[ScoringModel]:
    return list(session.exec(select(ScoringModel).order_by(col(ScoringModel.version).desc())))


def active_row(session: Session) -> ScoringModel | None:
    return session.exec(select(ScoringModel).where(col(ScoringModel.active).is_(True))).first()


class ModelCache:
    """The active model, compiled, re-read at most every `ttl` seconds (or on activation)."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: CompiledModel | None = None
        self._key: tuple[float, int] = (0.0, -1)

    def get(self, session: Session) -> CompiledModel | None:
        with self._lock:
            loaded_at, generation = self._key
            if generation == _generation and time.monotonic() - loaded_at < self.ttl:
                return self._value
        row = active_row(session)
        value = None
        if row is not None:
            value = CompiledModel.build(
                row.version, ScoringDefinition.model_validate(row.definition)
            )
        with self._lock:
            self._value, self._key = value, (time.monotonic(), _generation)
        return value


def compiled_active(session: Session) -> CompiledModel | None:
    row = active_row(session)
    return (
        CompiledModel.build(row.version, ScoringDefinition.model_validate(row.definition))
        if row
        else None
    )


# --------------------------------------------------------------------------- score state


# The hot path (one event) reads and writes with core SQL on the session's connection: the
# processor writes profiles the same way, and ORM bookkeeping costs more than the statements.
_PS = ProfileScore.__table__  # type: ignore[attr-defined]
_COUNTER = ScoreCounter.__table__  # type: ignore[attr-defined]
_STATE_FIELDS = (
    "behaviour",
    "fit",
    "breakdown",
    "fit_breakdown",
    "decayed_at",
    "stage",
    "recent",
    "suppressed_until",
    "updated_at",
)


@dataclass
class ScoreState:
    profile_id: str
    decayed_at: dt.datetime
    updated_at: dt.datetime
    stage: str = "subscriber"
    behaviour: float = 0.0
    fit: float = 0.0
    breakdown: dict[str, float] = field(default_factory=dict)
    fit_breakdown: dict[str, float] = field(default_factory=dict)
    recent: list[dict[str, Any]] = field(default_factory=list)
    suppressed_until: dt.datetime | None = None
    new: bool = False
    since: dt.datetime | None = None  # a new state: when it entered the funnel
    entry_logged: bool = False


# Statements built once; executed with parameters (statement construction dominates otherwise).
_READ = sa.select(_PS).where(_PS.c.profile_id == sa.bindparam("_pid"))
_INSERT = _PS.insert()
_UPDATE = (
    _PS.update()
    .where(_PS.c.profile_id == sa.bindparam("_pid"))
    .values({f: sa.bindparam(f) for f in _STATE_FIELDS})
)
_COUNTER_KEY = (_COUNTER.c.profile_id == sa.bindparam("_pid")) & (
    _COUNTER.c.rule_id == sa.bindparam("_rule")
)
_COUNTER_READ = sa.select(_COUNTER.c.period_start, _COUNTER.c.points).where(_COUNTER_KEY)
_COUNTER_UPDATE = (
    _COUNTER.update()
    .where(_COUNTER_KEY)
    .values(period_start=sa.bindparam("period_start"), points=sa.bindparam("points"))
)


def read_state(session: Session, profile_id: str) -> ScoreState | None:
    row = session.connection().execute(_READ, {"_pid": profile_id}).mappings().first()
    return ScoreState(**dict(row)) if row else None


def _load_state(session: Session, profile_id: str, at: dt.datetime) -> tuple[ScoreState, bool]:
    state = read_state(session, profile_id)
    if state is not None:
        return state, False
    stage = _profile_column(session, profile_id, "lifecycle_stage")
    stage = stage if stage in STAGE_RANK else "subscriber"
    return ScoreState(
        profile_id=profile_id, stage=stage, decayed_at=at, updated_at=at, new=True, since=at
    ), True


def _log_entry(session: Session, state: ScoreState) -> None:
    """A new state enters the funnel in its first stage (once, before any change of it)."""
    if state.new and not state.entry_logged:
        funnel.record_change(
            session,
            profile_id=state.profile_id,
            from_stage=None,
            to_stage=state.stage,
            at=state.since or state.decayed_at,
            reason="entered",
        )
        state.entry_logged = True


def _move(session: Session, state: ScoreState, stage: str, at: dt.datetime, reason: str) -> None:
    """Every change of `state.stage` goes through here: the funnel's history in the same
    transaction."""
    _log_entry(session, state)
    funnel.record_change(
        session,
        profile_id=state.profile_id,
        from_stage=state.stage,
        to_stage=stage,
        at=at,
        reason=reason,
    )
    state.stage = stage


def _save(session: Session, state: ScoreState) -> None:
    values = {f: getattr(state, f) for f in _STATE_FIELDS}
    conn = session.connection()
    _log_entry(session, state)
    if state.new:
        conn.execute(_INSERT, {"profile_id": state.profile_id, **values})
        state.new = False
    else:
        conn.execute(_UPDATE, {"_pid": state.profile_id, **values})


def _decay_to(state: ScoreState, model: CompiledModel | None, at: dt.datetime) -> None:
    """Apply decay up to `at` (lazy: exact from the half-life, whatever the gap)."""
    if at <= state.decayed_at:
        return
    factor = decay_factor(model.half_life if model else None, at - state.decayed_at)
    if factor != 1.0:
        state.behaviour *= factor
        state.breakdown = {k: v * factor for k, v in state.breakdown.items()}
    state.decayed_at = at


def total(state: ScoreState) -> float:
    return state.behaviour + state.fit


_PROFILE = Profile.__table__  # type: ignore[attr-defined]


_MIRROR = (
    _PROFILE.update()
    .where(_PROFILE.c.id == sa.bindparam("_pid"))
    .values(lead_score=sa.bindparam("lead_score"), lifecycle_stage=sa.bindparam("lifecycle_stage"))
)


def _mirror(session: Session, state: ScoreState) -> None:
    """Copy score and stage onto the profile row (core SQL: no ORM identity-map work)."""
    session.connection().execute(
        _MIRROR,
        {
            "_pid": state.profile_id,
            "lifecycle_stage": state.stage,
            "lead_score": round(total(state), 4),
        },
    )


def _profile_column(session: Session, profile_id: str, column: str) -> Any:
    """One column of the profile row, read fresh (the processor writes profiles with core SQL)."""
    return (
        session.connection()
        .execute(sa.select(_PROFILE.c[column]).where(_PROFILE.c.id == profile_id))
        .scalar()
    )


def _grant(state: ScoreState, key: str, points: float) -> None:
    state.behaviour += points
    breakdown = dict(state.breakdown)
    breakdown[key] = breakdown.get(key, 0.0) + points
    state.breakdown = breakdown


def _advance_stage(
    session: Session, state: ScoreState, model: CompiledModel | None, at: dt.datetime
) -> Derived:
    if model is None:
        return []
    derived: Derived = []
    score = total(state)
    for stage in stages_crossed(state.stage, score, model.definition.thresholds):
        previous = state.stage
        _move(session, state, stage, at, "score_threshold")
        add_entry(
            session,
            profile_id=state.profile_id,
            kind="stage",
            at=at,
            summary=f"stage {previous} -> {stage} (score {score:.1f})",
            data={"from": previous, "to": stage, "score": score, "reason": "score_threshold"},
        )
        derived.append(
            (
                STAGE_CHANGED,
                {
                    "from": previous,
                    "to": stage,
                    "score": round(score, 4),
                    "reason": "score_threshold",
                },
            )
        )
    return derived


def score_event(session: Session, *, model: CompiledModel | None, event: ProcessedEvent) -> Derived:
    """Apply one processed event: merges, fit (when traits changed), event rules, stages."""
    derived: Derived = []
    at = event.timestamp
    for old in event.merged_from:
        merge_scores(session, into=event.profile_id, from_profile=old, model=model, at=at)
    is_rule_event = (
        model is not None and event.event is not None and event.event in model.rules_by_event
    )
    if model is None or not (is_rule_event or event.traits or event.merged_from):
        return derived
    state, new = _load_state(session, event.profile_id, at)
    at = max(at, state.decayed_at)
    _decay_to(state, model, at)
    changed = False
    if (event.traits or new) and model.fit_rules:
        traits = {**(_profile_column(session, event.profile_id, "traits") or {}), **event.traits}
        fit = model.fit(traits, now=at)
        if fit != state.fit_breakdown:
            before = state.fit
            state.fit_breakdown, state.fit = fit, sum(fit.values())
            add_entry(
                session,
                profile_id=event.profile_id,
                kind="score",
                at=at,
                summary=f"fit {before:+.1f} -> {state.fit:+.1f}",
                data={"fit": fit, "event_id": event.event_id},
            )
            changed = True
    if is_rule_event:
        for rule in model.matching_rules(event.event, event.properties, now=at):
            points = rule.points
            if rule.cap is not None:
                points = _apply_cap(
                    session,
                    event.profile_id,
                    rule.id,
                    rule.cap.points,
                    model.cap_periods[rule.id],
                    points,
                    at,
                )
            if points == 0:
                continue
            _grant(state, rule.id, points)
            state.recent = (
                [
                    {
                        "event": rule.event,
                        "rule": rule.id,
                        "points": points,
                        "high_intent": rule.high_intent,
                        "at": at.isoformat(),
                    }
                ]
                + list(state.recent)
            )[:RECENT_KEEP]
            add_entry(
                session,
                profile_id=event.profile_id,
                kind="score",
                at=at,
                summary=f"{points:+.1f} points: rule {rule.id} ({rule.event})",
                data={
                    "rule": rule.id,
                    "points": points,
                    "event_id": event.event_id,
                    "score": round(total(state), 4),
                },
            )
            changed = True
    derived += _advance_stage(session, state, model, at)
    if changed or derived or new:
        state.updated_at = utcnow()
        _save(session, state)
        _mirror(session, state)
    return derived


def _apply_cap(
    session: Session,
    profile_id: str,
    rule_id: str,
    cap: float,
    period: dt.timedelta,
    points: float,
    at: dt.datetime,
) -> float:
    start = period_start(at, period)
    conn = session.connection()
    key = {"_pid": profile_id, "_rule": rule_id}
    row = conn.execute(_COUNTER_READ, key).first()
    so_far = 0.0
    if row is not None and row.period_start == start:
        so_far = row.points
    elif row is not None and start < row.period_start:  # a late event of an earlier period
        return capped_points(points, cap, 0.0)
    granted = capped_points(points, cap, so_far)
    if row is None:
        conn.execute(
            _COUNTER.insert(),
            {
                "profile_id": profile_id,
                "rule_id": rule_id,
                "period_start": start,
                "points": granted,
            },
        )
    else:
        conn.execute(_COUNTER_UPDATE, {**key, "period_start": start, "points": so_far + granted})
    return granted


def add_points(
    session: Session,
    *,
    profile_id: str,
    points: float,
    reason: str,
    idempotency_key: str,
    at: dt.datetime | None = None,
) -> Derived:
    """Points from a journey's `score` step (once per idempotency key)."""
    if session.get(ScoreGrant, idempotency_key) is not None:
        return []
    at = at or utcnow()
    model = compiled_active(session)
    state, _ = _load_state(session, profile_id, at)
    _decay_to(state, model, max(at, state.decayed_at))
    _grant(state, f"manual:{reason[:60]}", points)
    session.add(
        ScoreGrant(idempotency_key=idempotency_key, profile_id=profile_id, points=points, at=at)
    )
    add_entry(
        session,
        profile_id=profile_id,
        kind="score",
        at=at,
        summary=f"{points:+.1f} points: {reason[:200]}",
        data={"reason": reason[:200], "points": points, "score": round(total(state), 4)},
    )
    derived = _advance_stage(session, state, model, at)
    state.updated_at = utcnow()
    _save(session, state)
    _mirror(session, state)
    return derived


# --------------------------------------------------------------------------- reads and changes


class ScoreView(BaseModel):
    profile_id: str
    score: float
    behaviour: float
    fit: float
    stage: str
    model_version: int | None
    as_of: dt.datetime
    breakdown: dict[str, float]  # rule id -> points now (decay applied)
    fit_breakdown: dict[str, float]
    recent: list[dict[str, Any]]
    suppressed_until: dt.datetime | None = None


def current_score(
    session: Session, *, profile_id: str, now: dt.datetime | None = None
) -> ScoreView:
    """The score now, decay applied (read only: nothing is written)."""
    view = current_scores(session, profile_ids=[profile_id], now=now).get(profile_id)
    if view is None:
        raise NotFound(f"no profile {profile_id!r}", field="profile_id")
    return view


def current_scores(
    session: Session, *, profile_ids: Iterable[str], now: dt.datetime | None = None
) -> dict[str, ScoreView]:
    """`current_score` of many profiles in three reads (the model, the states, the stages of
    profiles without a state); unknown and erased profiles without a state are left out."""
    now = now or utcnow()
    wanted = list(dict.fromkeys(profile_ids))
    model = compiled_active(session)
    version = model.version if model else None
    views: dict[str, ScoreView] = {}
    conn = session.connection()
    for chunk in id_chunks(wanted):
        for row in conn.execute(sa.select(_PS).where(_PS.c.profile_id.in_(chunk))).mappings():
            state = ScoreState(**dict(row))
            factor = decay_factor(model.half_life if model else None, now - state.decayed_at)
            behaviour = state.behaviour * factor
            views[state.profile_id] = ScoreView(
                profile_id=state.profile_id,
                score=round(behaviour + state.fit, 4),
                behaviour=round(behaviour, 4),
                fit=state.fit,
                stage=state.stage,
                model_version=version,
                as_of=now,
                breakdown={k: round(v * factor, 4) for k, v in state.breakdown.items()},
                fit_breakdown=dict(state.fit_breakdown),
                recent=list(state.recent),
                suppressed_until=state.suppressed_until,
            )
    stateless = [pid for pid in wanted if pid not in views]
    for chunk in id_chunks(stateless):
        rows = session.exec(
            select(Profile.id, Profile.lifecycle_stage).where(
                col(Profile.id).in_(chunk), col(Profile.erased_at).is_(None)
            )
        )
        for pid, stage in rows:
            views[pid] = ScoreView(
                profile_id=pid,
                score=0.0,
                behaviour=0.0,
                fit=0.0,
                stage=stage if stage in STAGE_RANK else "subscriber",
                model_version=version,
                as_of=now,
                breakdown={},
                fit_breakdown={},
                recent=[],
            )
    return views


def set_stage(
    session: Session, *, profile_id: str, stage: str, reason: str, at: dt.datetime | None = None
) -> tuple[str, str]:
    """An explicit stage change (either direction), recorded on the timeline."""
    if stage not in STAGE_RANK:
        raise DomainError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}", field="stage")
    at = at or utcnow()
    state, _ = _load_state(session, profile_id, at)
    previous = state.stage
    if previous != stage:
        _move(session, state, stage, at, reason)
        state.updated_at = utcnow()
        _save(session, state)
        add_entry(
            session,
            profile_id=profile_id,
            kind="stage",
            at=at,
            summary=f"stage {previous} -> {stage} ({reason[:200]})",
            data={"from": previous, "to": stage, "reason": reason[:200]},
        )
        _mirror(session, state)
    return previous, stage


def suppress(session: Session, *, profile_id: str, until: dt.datetime) -> None:
    state, _ = _load_state(session, profile_id, utcnow())
    state.suppressed_until = until
    _save(session, state)


def is_suppressed(session: Session, *, profile_id: str, now: dt.datetime) -> bool:
    state = read_state(session, profile_id)
    return bool(state and state.suppressed_until and state.suppressed_until > now)


def merge_scores(
    session: Session, *, into: str, from_profile: str, model: CompiledModel | None, at: dt.datetime
) -> None:
    """Fold a merged-away profile's score into the survivor (decay both to `at`, add)."""
    old = read_state(session, from_profile)
    if old is None:
        return
    state, _ = _load_state(session, into, at)
    at = max(at, state.decayed_at, old.decayed_at)
    _decay_to(state, model, at)
    _decay_to(old, model, at)
    for key, value in old.breakdown.items():
        _grant(state, key, value)
    if STAGE_RANK[old.stage] > STAGE_RANK[state.stage]:
        _move(session, state, old.stage, at, "merged")
    funnel.record_change(
        session,
        profile_id=from_profile,
        from_stage=old.stage,
        to_stage=None,
        at=at,
        reason=f"merged into {into}",
    )
    if old.suppressed_until and (
        state.suppressed_until is None or old.suppressed_until > state.suppressed_until
    ):
        state.suppressed_until = old.suppressed_until
    state.recent = sorted(
        list(state.recent) + list(old.recent), key=lambda r: r["at"], reverse=True
    )[:RECENT_KEEP]
    _save(session, state)
    conn = session.connection()
    conn.execute(_PS.delete().where(_PS.c.profile_id == from_profile))
    conn.execute(_COUNTER.delete().where(_COUNTER.c.profile_id == from_profile))


def erase_scores(session: Session, *, profile_id: str) -> None:
    state = read_state(session, profile_id)
    if state is not None:
        funnel.record_change(
            session,
            profile_id=profile_id,
            from_stage=state.stage,
            to_stage=None,
            at=utcnow(),
            reason="erased",
        )
    funnel.erase_history(session, profile_id=profile_id)
    for table in (ProfileScore, ScoreCounter, ScoreGrant):
        session.exec(delete(table).where(col(table.profile_id) == profile_id))


def publish_stage_changes(session: Session, derived: Derived, *, profile_id: str, key: str) -> None:
    """Stage changes made outside the processor (journey points, API, sales outcome) become
    `Lifecycle Stage Changed` events too, once per `key` (journeys, the hand-off dispatcher)."""
    from rejse.events.service import record_internal_event

    for name, props in derived:
        record_internal_event(
            session,
            profile_id=profile_id,
            event=name,
            properties=props,
            message_id=f"stage:{key}:{props.get('to')}",
            source="scoring",
        )
