"""Who enters a journey: trigger matching, the deterministic workflow id and the re-entry rule.

Re-entry is enforced here, against `journey_run`, before any workflow start, and it is scoped
to the run identity (journey, profile, entry key value): two checkouts of one customer are two
runs; the same checkout again is no new run while its run is active, and afterwards only as the
rule allows (`never`, `after_exit`, or `{"cooldown": "P7D"}` counted from the last entry's event
time)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from rejse import analytics_deltas as deltas
from rejse.conditions import resolve_path
from rejse.contracts import ProcessedEvent
from rejse.durations import parse_duration
from rejse.journeys.definition import (
    AUDIENCE_EVENTS,
    AudienceTrigger,
    Cooldown,
    EventTrigger,
    JourneyDefinition,
)
from rejse.journeys.matching import event_matches
from rejse.journeys.runtypes import RunInput
from rejse.models.journeys import ACTIVE_RUN_STATUSES, Journey, JourneyRun, JourneyVersion


def entry_token(value: Any) -> str:
    """An entry key value as it appears in a workflow id: a short SHA-256, so an email or phone
    used as an entry key never shows up in Temporal."""
    return hashlib.sha256(str(value).encode()).hexdigest()[:16]


def workflow_id_for(key: str, profile_id: str, entry_value: Any | None) -> str:
    base = f"journey:{key}:{profile_id}"
    return base if entry_value is None else f"{base}:{entry_token(entry_value)}"


TRIGGERED_BY_EVENTS = ("event", "audience_entered", "audience_left")  # the dispatcher's


def trigger_matches(defn: JourneyDefinition, ev: ProcessedEvent) -> bool:
    """An event trigger: its event and match. An audience trigger: the internal membership
    event (`Audience Entered` / `Audience Exited`) of its audience; a tracked event that only
    bears the name does not enter anyone."""
    trigger = defn.trigger
    if isinstance(trigger, EventTrigger):
        return event_matches(ev, trigger.event, trigger.match)
    if isinstance(trigger, AudienceTrigger):
        return (
            ev.type == "internal"
            and ev.event == AUDIENCE_EVENTS[trigger.type]
            and ev.properties.get("audience") == trigger.audience
        )
    return False


def entry_value_of(defn: JourneyDefinition, ev: ProcessedEvent) -> Any | None:
    if not defn.entry_key:
        return None
    value = resolve_path(ev.model_dump(mode="json"), defn.entry_key)
    return None if value in (None, "") else value


@dataclass(frozen=True)
class Entry:
    workflow_id: str
    run_input: RunInput
    redelivery: bool  # the same trigger event again: start only if it never started


def entry_workflow_id(journey: Journey, defn: JourneyDefinition, event: ProcessedEvent) -> str:
    return workflow_id_for(journey.key, event.profile_id, entry_value_of(defn, event))


def runs_by_workflow(session: Session, workflow_ids: set[str]) -> dict[str, list[JourneyRun]]:
    """Earlier runs of these workflow ids, latest entry first (one query for a whole batch)."""
    out: dict[str, list[JourneyRun]] = {w: [] for w in workflow_ids}
    if workflow_ids:
        for row in session.exec(
            select(JourneyRun)
            .where(col(JourneyRun.workflow_id).in_(workflow_ids))
            .order_by(col(JourneyRun.entry_no).desc())
        ):
            out[row.workflow_id].append(row)
    return out


def plan_entry(
    session: Session,
    *,
    journey: Journey,
    defn: JourneyDefinition,
    event: ProcessedEvent,
    workflow_id: str | None = None,
    earlier: list[JourneyRun] | None = None,
) -> Entry | None:
    """Decide whether `event` starts a run; if so add its `journey_run` row to the session and
    return what to start. None: no new run (one is active, or re-entry forbids).
    `workflow_id` overrides the id made from the entry key (scheduled entries); `earlier` are
    the runs of that id, latest entry first, when the caller has loaded them (then it must
    flush, and the new row is put in front of `earlier`)."""
    wid = workflow_id or entry_workflow_id(journey, defn, event)
    flush = earlier is None
    rows = earlier if earlier is not None else runs_by_workflow(session, {wid})[wid]
    for row in rows:
        if row.trigger_event_id == event.event_id:
            if row.status not in ACTIVE_RUN_STATUSES:
                return None
            pinned = session.get(JourneyVersion, (journey.key, row.version))
            definition = pinned.definition if pinned else defn.dump()
            return Entry(wid, _input(journey, definition, event, row), redelivery=True)
    if any(r.status in ACTIVE_RUN_STATUSES for r in rows):
        return None
    if rows and not reentry_allowed(defn, last_entered=rows[0].entered_at, at=event.timestamp):
        return None
    run = JourneyRun(
        id=uuid.uuid4().hex,
        workflow_id=wid,
        journey_key=journey.key,
        version=journey.published_version or 1,
        profile_id=event.profile_id,
        trigger_event_id=event.event_id,
        status="running",
        entry_no=rows[0].entry_no + 1 if rows else 1,
        entered_at=event.timestamp,
        step_since=event.timestamp,
    )
    session.add(run)
    deltas.run_entered(session, run)
    entry = Entry(wid, _input(journey, defn.dump(), event, run), redelivery=False)
    if flush:
        session.flush()
    else:
        rows.insert(0, run)
    return entry


def reentry_allowed(defn: JourneyDefinition, *, last_entered: dt.datetime, at: dt.datetime) -> bool:
    rule = defn.reentry
    if rule == "never":
        return False
    if isinstance(rule, Cooldown):
        return at >= last_entered + parse_duration(rule.cooldown)
    return True  # after_exit


def _input(
    journey: Journey, definition: dict[str, Any], event: ProcessedEvent, run: JourneyRun
) -> RunInput:
    return RunInput(
        run_id=run.id,
        journey_key=journey.key,
        version=run.version,
        definition=definition,
        profile_id=event.profile_id,
        trigger=event,
        entry_no=run.entry_no,
    )
