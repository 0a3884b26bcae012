"""The code that starts and stops the leads workflows: the hand-off starter, the after-commit
dispatcher that hands AQLs to sales, the GDPR eraser and the daily-digest scheduler job.

Every start uses a deterministic workflow id (`handoff:{profile}`, `digest:{rep}:{day}`), so a
re-delivered event or a second scheduler fire finds the workflow started and does nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

from sqlmodel import Session
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from rejse.contracts import ProcessedEvent
from rejse.db import session_scope
from rejse.leads import service as leads
from rejse.leads.runtypes import (
    DIGEST_WORKFLOW,
    HANDOFF_WORKFLOW,
    DigestInput,
    HandoffInput,
    HandoffResult,
    digest_id,
    handoff_id,
)
from rejse.runtime import Runtime
from rejse.scheduler import ScheduledJob, start_workflow_once
from rejse.scoring import service as scoring
from rejse.temporal import SA_PROFILE_ID


async def start_handoff_workflow(
    client: Client, *, task_queue: str, request: HandoffInput, search_attributes: bool = True
) -> WorkflowHandle[object, HandoffResult]:
    """Start `handoff:{profile}`; an already running hand-off is fine (returns its handle)."""
    wf_id = handoff_id(request.profile_id)
    attrs = (
        TypedSearchAttributes([SearchAttributePair(SA_PROFILE_ID, request.profile_id)])
        if search_attributes
        else None
    )
    try:
        return await client.start_workflow(
            HANDOFF_WORKFLOW,
            request,
            id=wf_id,
            task_queue=task_queue,
            search_attributes=attrs,
            result_type=HandoffResult,
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle(wf_id, result_type=HandoffResult)


class HandoffDispatcher:
    """After commit: a `Lifecycle Stage Changed` event to `aql` starts `handoff:{profile}`.
    Idempotent per event id (the lead's trigger key), and one running hand-off per profile."""

    name = "lead_handoff"

    def __init__(self, runtime: Runtime, *, search_attributes: bool = True) -> None:
        self.runtime = runtime
        self.search_attributes = search_attributes

    async def dispatch(self, events: Sequence[ProcessedEvent]) -> None:
        wanted = [
            e
            for e in events
            if e.event == scoring.STAGE_CHANGED and e.properties.get("to") == "aql"
        ]
        if not wanted:
            return
        client = await self.runtime.temporal.client()
        for e in wanted:
            score = e.properties.get("score")
            reason = (
                f"score {score:.0f} crossed the AQL threshold"
                if isinstance(score, int | float)
                else "reached the AQL stage"
            )
            await start_handoff_workflow(
                client,
                task_queue=self.runtime.settings.task_queue,
                search_attributes=self.search_attributes,
                request=HandoffInput(
                    profile_id=e.profile_id,
                    reason=reason,
                    source="score_threshold",
                    trigger_key=f"event:{e.event_id}",
                ),
            )


class LeadEraser:
    """GDPR erase: scores and leads go; a running hand-off is cancelled after the commit."""

    name = "leads"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def erase(self, session: Session, profile_id: str) -> None:
        scoring.erase_scores(session, profile_id=profile_id)
        leads.erase_leads(session, profile_id=profile_id)

    async def cancel_running(self, profile_id: str) -> None:
        client = await self.runtime.temporal.client()
        handle = client.get_workflow_handle(handoff_id(profile_id))
        try:
            desc = await handle.describe()
            if desc.status == WorkflowExecutionStatus.RUNNING:
                await handle.cancel()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise


async def start_digests(runtime: Runtime, *, day: dt.date | None = None) -> int:
    """Scheduler job: one `digest:{rep}:{day}` workflow per active rep with a webhook (a double
    fire finds them started and does nothing). Returns how many were started now."""
    today = day or dt.datetime.now(dt.UTC).date()

    def reps() -> list[str]:
        with session_scope(runtime.engine) as session:
            return [r.id for r in leads.list_reps(session) if r.active and r.webhook_url]

    started = 0
    for rep_id in await asyncio.to_thread(reps):
        started += await start_workflow_once(
            runtime,
            DIGEST_WORKFLOW,
            DigestInput(rep_id=rep_id, day=today),
            id=digest_id(rep_id, today),
        )
    return started


def scheduled_jobs() -> list[ScheduledJob]:
    async def digests(runtime: Runtime) -> None:  # a job's result is not used
        await start_digests(runtime)

    return [ScheduledJob(id="sales_digest", trigger="0 7 * * 1-5", func=digests)]
