"""Trigger routing (the processor's `EventDispatcher`) and the Temporal calls of the journey
control plane: starts of new runs, signals to running runs, pause/resume/archive and the GDPR
eraser.

Per batch: one database transaction decides every entry (re-entry rules, `journey_run` rows);
then, per profile and in event order, new runs are started and each event is signalled to the
profile's running runs (for `wait_for_event` and `exit_when`). Idempotent per `event_id`: a
re-delivered trigger finds its `journey_run` row and is only re-sent to a run that is still
active, so a finished run is never started again (see `start_entry`); workflows ignore event
ids they have seen.

Start, not signal-with-start: this dispatcher itself decides, against `journey_run`, whether an
event starts a run or is signalled to a running one (re-entry rules need that table anyway), so
the start half of a signal-with-start never meets a running run, and its signal half only
repeated the trigger that `RunInput` already carries. A plain start is the lighter server call
(bench.journeys shows both). Runs started by the earlier signal-with-start still replay: the
workflow drops a start signal that repeats its trigger."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlmodel import Session, col, select, update
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from rejse import analytics_deltas as deltas
from rejse.contracts import DispatchUnavailable, ProcessedEvent
from rejse.db import session_scope
from rejse.journeys import runtypes as rt
from rejse.journeys.definition import JourneyDefinition, WaitForEventStep
from rejse.journeys.entry import (
    TRIGGERED_BY_EVENTS,
    Entry,
    entry_workflow_id,
    plan_entry,
    runs_by_workflow,
    trigger_matches,
)
from rejse.journeys.service import published_definitions, set_status, workflow_ids_of
from rejse.logging import get_logger
from rejse.models.journeys import (
    ACTIVE_RUN_STATUSES,
    Journey,
    JourneyRun,
    JourneyStep,
    JourneyVersion,
)
from rejse.runtime import Runtime
from rejse.temporal import SA_JOURNEY, SA_PROFILE_ID

log = get_logger("rejse.journeys")

_Start = tuple[Literal["start"], Entry]
_Signal = tuple[Literal["signal"], tuple[str, ProcessedEvent]]  # (workflow id, event)
# an event that may enter a journey: (event, journey, definition, workflow id)
_Candidate = tuple[ProcessedEvent, Journey, JourneyDefinition, str]


@dataclass
class _Plan:
    """What to tell Temporal for one profile, in order."""

    actions: list[_Start | _Signal] = field(default_factory=list)


_SA_SUPPORT: dict[int, bool] = {}


async def search_attributes(
    client: Client, *, journey_key: str, profile_id: str
) -> TypedSearchAttributes | None:
    """`RejseProfileId` and `RejseJourney` (opaque ids), where the server knows them: the
    time-skipping test server cannot register custom search attributes, so there are none."""
    supported = _SA_SUPPORT.get(id(client))
    if supported is None:
        try:
            found = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=client.namespace)
            )
            supported = all(k.name in found.custom_attributes for k in (SA_PROFILE_ID, SA_JOURNEY))
        except RPCError:
            supported = False
        _SA_SUPPORT[id(client)] = supported
    if not supported:
        return None
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_PROFILE_ID, profile_id),
            SearchAttributePair(SA_JOURNEY, journey_key),
        ]
    )


class PreviousRunClosing(Exception):
    """A re-entry's workflow id still runs the previous run: it has recorded its end in
    `journey_run` but has not closed yet (a window of milliseconds). Raised so the processor
    retries the event after its backoff, when the id is free; the entry is then a re-delivery."""


async def start_entry(client: Client, runtime: Runtime, entry: Entry) -> bool:
    """Start one planned entry (the trigger travels in its input); False if this entry's run
    already exists. A first entry uses `REJECT_DUPLICATE`: an id that ever ran is never started
    again by it. A re-entry uses `ALLOW_DUPLICATE` (the previous run has closed); `journey_run`
    keeps a re-delivered re-entry from starting again once its run has ended."""
    inp = entry.run_input
    try:
        await client.start_workflow(
            rt.WORKFLOW_NAME,
            inp,
            id=entry.workflow_id,
            task_queue=runtime.settings.task_queue,
            id_reuse_policy=(
                WorkflowIDReusePolicy.REJECT_DUPLICATE
                if inp.entry_no == 1
                else WorkflowIDReusePolicy.ALLOW_DUPLICATE
            ),
            search_attributes=await search_attributes(
                client, journey_key=inp.journey_key, profile_id=inp.profile_id
            ),
        )
        return True
    except WorkflowAlreadyStartedError:
        if inp.entry_no > 1 and not entry.redelivery:
            raise PreviousRunClosing(inp.journey_key) from None
        return False


async def signal(client: Client, workflow_id: str, name: str, arg: object) -> bool:
    """Signal the latest run of `workflow_id`; False when it is not running (any more)."""
    try:
        await client.get_workflow_handle(workflow_id).signal(name, arg)
        return True
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return False
        raise


UNAVAILABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)


def temporal_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says Temporal cannot be reached (down, restarting, too slow to answer),
    rather than that this event or run is at fault."""
    if isinstance(exc, RPCError):
        return exc.status in UNAVAILABLE
    return isinstance(exc, TimeoutError | ConnectionError)


class JourneyDispatcher:
    """`rejse.contracts.EventDispatcher` for journeys."""

    name = "journeys"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._listens: dict[tuple[str, int], frozenset[str]] = {}  # versions are immutable

    def _listens_to(self, session: Session, key: str, version: int) -> frozenset[str]:
        """Event names a run of this version can react to (goals and wait_for_event steps):
        only those are signalled, so page views do not grow every run's history."""
        found = self._listens.get((key, version))
        if found is None:
            row = session.get(JourneyVersion, (key, version))
            names: set[str] = set()
            if row is not None:
                defn = JourneyDefinition.model_validate(row.definition)
                names = {g.event for g in defn.exit_when} | {
                    s.event for s in defn.steps.values() if isinstance(s, WaitForEventStep)
                }
            found = self._listens[(key, version)] = frozenset(names)
        return found

    async def dispatch(self, events: Sequence[ProcessedEvent]) -> None:
        if not events:
            return
        plans = await asyncio.to_thread(self._plan, list(events))
        if not plans:
            return
        try:
            client = await self.runtime.temporal.client()
        except Exception as exc:  # noqa: BLE001 - no client yet: Temporal cannot be reached
            raise DispatchUnavailable("temporal") from exc
        try:
            await asyncio.gather(*(self._send(client, plan) for plan in plans.values()))
        except Exception as exc:
            if temporal_unavailable(exc):
                raise DispatchUnavailable("temporal") from exc
            raise

    def _plan(self, events: list[ProcessedEvent]) -> dict[str, _Plan]:
        plans: dict[str, _Plan] = defaultdict(_Plan)
        with session_scope(self.runtime.engine) as session:
            merged = {old: ev.profile_id for ev in events for old in ev.merged_from}
            if merged:
                self._follow_merges(session, merged)
            journeys = published_definitions(session, trigger_types=TRIGGERED_BY_EVENTS)
            profiles = {ev.profile_id for ev in events}
            active: dict[str, dict[str, frozenset[str]]] = defaultdict(dict)  # pid -> wid -> events
            for pid, wid, key, version in session.exec(
                select(
                    JourneyRun.profile_id,
                    JourneyRun.workflow_id,
                    JourneyRun.journey_key,
                    JourneyRun.version,
                ).where(
                    col(JourneyRun.profile_id).in_(profiles),
                    col(JourneyRun.status).in_(ACTIVE_RUN_STATUSES),
                )
            ):
                active[pid][wid] = self._listens_to(session, key, version)
            candidates = [
                (ev, journey, defn, entry_workflow_id(journey, defn, ev))
                for ev in events
                for journey, defn in journeys
                if trigger_matches(defn, ev)
            ]
            earlier = runs_by_workflow(session, {c[3] for c in candidates})
            by_event: dict[str, list[_Candidate]] = defaultdict(list)
            for c in candidates:
                by_event[c[0].event_id].append(c)
            for ev in events:
                plan = plans[ev.profile_id]
                for wid, listens in sorted(active[ev.profile_id].items()):
                    if ev.event in listens:
                        plan.actions.append(("signal", (wid, ev)))
                for _, journey, defn, wid in by_event.pop(ev.event_id, ()):
                    entry = plan_entry(
                        session,
                        journey=journey,
                        defn=defn,
                        event=ev,
                        workflow_id=wid,
                        earlier=earlier[wid],
                    )
                    if entry is not None:
                        plan.actions.append(("start", entry))
                        active[ev.profile_id][entry.workflow_id] = self._listens_to(
                            session, journey.key, entry.run_input.version
                        )
            session.flush()
        return {pid: p for pid, p in plans.items() if p.actions}

    @staticmethod
    def _follow_merges(session: Session, merged: dict[str, str]) -> None:
        """Runs of a merged-away profile carry on as runs of the surviving profile."""
        for old, new in merged.items():
            session.exec(
                update(JourneyRun).where(col(JourneyRun.profile_id) == old).values(profile_id=new)
            )

    async def _send(self, client: Client, plan: _Plan) -> None:
        for action in plan.actions:
            if action[0] == "start":
                await start_entry(client, self.runtime, action[1])
            else:
                wid, ev = action[1]
                await signal(client, wid, rt.SIGNAL_EVENT, ev)


# --------------------------------------------------------------------------------- control plane


async def tell_runs(
    runtime: Runtime,
    workflow_ids: Sequence[str],
    *,
    paused: bool | None = None,
    cancel: bool = False,
    terminate: bool = False,
) -> int:
    """Pause/resume (signal), cancel (archive) or terminate (erase) runs; returns how many
    answered. Best effort: a run that misses the message learns it at its next step."""
    if not workflow_ids:
        return 0
    try:
        client = await runtime.temporal.client()
    except Exception as exc:  # noqa: BLE001 - best effort; each run learns at its next step
        log.warning("journey_runs_not_told", count=len(workflow_ids), error=type(exc).__name__)
        return 0

    async def one(wid: str) -> bool:
        handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(wid)
        try:
            if terminate:
                await handle.terminate(reason="profile erased")
            elif cancel:
                await handle.cancel()
            else:
                await handle.signal(rt.SIGNAL_PAUSED, bool(paused))
            return True
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                return False
            raise

    results = await asyncio.gather(*(one(w) for w in workflow_ids), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        log.warning("journey_runs_not_told", count=len(failed), error=type(failed[0]).__name__)
    return sum(1 for r in results if r is True)


async def change_status(
    session: Session, runtime: Runtime, *, key: str, status: str
) -> tuple[Journey, int]:
    """Pause, resume or archive a journey and tell its runs (held before their next step,
    let go, or cancelled); commits. Returns the journey and how many runs answered. The one
    way the API and the console change a journey's status."""
    journey = set_status(session, key=key, status=status)
    archived = status == "archived"
    statuses = ("cancelled",) if archived else ("running", "held")
    wids = workflow_ids_of(session, key=key, statuses=statuses)
    session.commit()
    if archived:
        return journey, await tell_runs(runtime, wids, cancel=True)
    return journey, await tell_runs(runtime, wids, paused=status == "paused")


class JourneyEraser:
    """`rejse.contracts.ProfileEraser`: delete the profile's runs and step log; terminate its
    running workflows after commit."""

    name = "journeys"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._pending: dict[str, list[str]] = {}

    def erase(self, session: Session, profile_id: str) -> None:
        runs = list(session.exec(select(JourneyRun).where(JourneyRun.profile_id == profile_id)))
        self._pending[profile_id] = sorted(
            {r.workflow_id for r in runs if r.status in ACTIVE_RUN_STATUSES}
        )
        run_ids = [r.id for r in runs]
        for run in runs:
            deltas.run_erased(session, run)
        if run_ids:
            from sqlmodel import delete

            session.exec(delete(JourneyStep).where(col(JourneyStep.run_id).in_(run_ids)))
            session.exec(delete(JourneyRun).where(col(JourneyRun.id).in_(run_ids)))

    async def cancel_running(self, profile_id: str) -> None:
        wids = self._pending.pop(profile_id, None)
        if wids is None:  # another process erased: find them by id prefix is impossible; rows gone
            return
        await tell_runs(self.runtime, [w for w in wids if f":{profile_id}" in w], terminate=True)


def journey_of(session: Session, key: str) -> tuple[Journey, JourneyDefinition] | None:
    for journey, defn in published_definitions(session):
        if journey.key == key:
            return journey, defn
    return None
