"""`LeadHandoffWorkflow` (id `handoff:{profile}`): CRM upsert -> assign a rep -> CRM task ->
notify -> wait for the outcome with an SLA (reminder, then reassignment/escalation), all
side effects in activities. The SLA policy is pinned at the start (from the active model)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from rejse.leads.runtypes import (
        ASSIGN,
        CRM_REJECTED,
        CRM_TASK,
        CRM_UPSERT,
        DIGEST,
        DIGEST_WORKFLOW,
        HANDOFF_WORKFLOW,
        MARK,
        NOTIFY,
        NOTIFY_REJECTED,
        OPEN,
        DigestInput,
        HandoffInput,
        HandoffPlan,
        HandoffResult,
        LeadStep,
    )

DB_TIMEOUT = dt.timedelta(seconds=30)
DB_RETRY = RetryPolicy(
    initial_interval=dt.timedelta(seconds=1), maximum_interval=dt.timedelta(seconds=30)
)
# CRM outages are retried for a day with backoff capped at two minutes: a 503 for ten minutes
# ends in success; 429 waits for Retry-After (next_retry_delay); CrmRejected (4xx) never retries.
CRM_RETRY = RetryPolicy(
    initial_interval=dt.timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=dt.timedelta(minutes=2),
    maximum_attempts=0,
    non_retryable_error_types=[CRM_REJECTED],
)
CRM_SCHEDULE_TO_CLOSE = dt.timedelta(hours=24)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=dt.timedelta(seconds=2),
    maximum_interval=dt.timedelta(minutes=1),
    maximum_attempts=10,
    non_retryable_error_types=[NOTIFY_REJECTED],
)


@workflow.defn(name=HANDOFF_WORKFLOW)
class LeadHandoffWorkflow:
    def __init__(self) -> None:
        self._outcome: str | None = None
        self._phase = "starting"

    @workflow.signal
    def outcome(self, outcome: str) -> None:
        self._outcome = outcome

    @workflow.query
    def phase(self) -> str:
        return self._phase

    async def _db(self, name: str, arg: object, result_type: type | None = None) -> Any:
        """A bookkeeping activity; its result is what the converter makes of `result_type`."""
        return await workflow.execute_activity(
            name,
            arg,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            result_type=result_type,
        )

    async def _crm(self, name: str, lead_id: str) -> bool:
        try:
            return bool(
                await workflow.execute_activity(
                    name,
                    LeadStep(lead_id=lead_id),
                    start_to_close_timeout=dt.timedelta(seconds=60),
                    schedule_to_close_timeout=CRM_SCHEDULE_TO_CLOSE,
                    retry_policy=CRM_RETRY,
                )
            )
        except ActivityError as exc:
            rejected = isinstance(exc.cause, ApplicationError) and exc.cause.type == CRM_REJECTED
            if not rejected:  # out of time; a rejection was recorded by the activity
                await self._db(
                    MARK,
                    LeadStep(
                        lead_id=lead_id, kind="crm_failed", detail=str(exc.cause or exc)[:500]
                    ),
                )
            return False

    async def _notify(self, lead_id: str, kind: str, step: int) -> bool:
        """False when the lead is closed already (its outcome was recorded)."""
        try:
            sent: int = await workflow.execute_activity(
                NOTIFY,
                LeadStep(lead_id=lead_id, kind=kind, step=step),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=NOTIFY_RETRY,
                result_type=int,
            )
        except ActivityError:
            workflow.logger.warning("lead notification failed", extra={"lead_id": lead_id})
            return True
        return sent >= 0

    async def _wait(self, seconds: float) -> bool:
        """True when an outcome arrived within `seconds`."""
        try:
            await workflow.wait_condition(
                lambda: self._outcome is not None, timeout=dt.timedelta(seconds=max(seconds, 1))
            )
        except TimeoutError:
            return False
        return True

    @workflow.run
    async def run(self, request: HandoffInput) -> HandoffResult:
        plan: HandoffPlan = await self._db(OPEN, request, result_type=HandoffPlan)
        if plan.skip or plan.lead_id is None:
            return HandoffResult(lead_id=plan.lead_id, status=f"skipped:{plan.skip}")
        lead_id = plan.lead_id
        synced = False
        if plan.crm:
            self._phase = "crm"
            synced = await self._crm(CRM_UPSERT, lead_id)
        self._phase = "assigning"
        await self._db(ASSIGN, LeadStep(lead_id=lead_id, step=0, kind="new"))
        if synced:
            await self._crm(CRM_TASK, lead_id)
        await self._notify(lead_id, "new", 0)
        self._phase = "waiting"
        step = 0
        while True:
            if await self._wait(plan.reminder_after_s):
                return HandoffResult(lead_id=lead_id, status=self._outcome or "")
            if not await self._notify(lead_id, "reminder", step):
                return HandoffResult(lead_id=lead_id, status="closed")
            await self._db(MARK, LeadStep(lead_id=lead_id, kind="reminded", step=step))
            if await self._wait(plan.escalate_after_s - plan.reminder_after_s):
                return HandoffResult(lead_id=lead_id, status=self._outcome or "")
            if step >= plan.max_escalations:
                break
            step += 1
            await self._db(ASSIGN, LeadStep(lead_id=lead_id, step=step, kind="escalate"))
            await self._notify(lead_id, "reassigned", step)
        self._phase = "unattended"
        if await self._wait(plan.expire_after_s):
            return HandoffResult(lead_id=lead_id, status=self._outcome or "")
        await self._db(MARK, LeadStep(lead_id=lead_id, kind="expired"))
        return HandoffResult(lead_id=lead_id, status="expired")


@workflow.defn(name=DIGEST_WORKFLOW)
class SalesDigestWorkflow:
    """One rep's daily digest (id `digest:{rep}:{day}`, started by the scheduler)."""

    @workflow.run
    async def run(self, request: DigestInput) -> bool:
        pushed: bool = await workflow.execute_activity(
            DIGEST,
            request,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
            result_type=bool,
        )
        return pushed
