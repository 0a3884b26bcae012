"""A test-only workflow that sends through SEND_MESSAGE at planned times and honours
`deferred` (quiet hours) like a journey does."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from rejse.contracts import SEND_MESSAGE, SendRequest, SendResult


class PlannedSend(BaseModel):
    at: dt.datetime
    request: SendRequest
    timeout_seconds: float = 30


class SendOutcome(BaseModel):
    step: str | None
    status: str
    reason: str | None = None
    deferred_until: list[dt.datetime] = []
    finished_at: dt.datetime


@workflow.defn(name="test-send-plan")
class SendPlanWorkflow:
    @workflow.run
    async def run(self, plan: list[PlannedSend]) -> list[SendOutcome]:
        out = []
        for item in plan:
            wait = (item.at - workflow.now()).total_seconds()
            if wait > 0:
                await workflow.sleep(wait)
            deferred = []
            while True:
                result: SendResult = await workflow.execute_activity(
                    SEND_MESSAGE,
                    item.request,
                    result_type=SendResult,
                    start_to_close_timeout=dt.timedelta(seconds=item.timeout_seconds),
                    retry_policy=RetryPolicy(
                        initial_interval=dt.timedelta(milliseconds=200),
                        maximum_interval=dt.timedelta(seconds=2),
                    ),
                )
                if result.status != "deferred" or result.retry_at is None:
                    break
                deferred.append(result.retry_at)
                await workflow.sleep(max((result.retry_at - workflow.now()).total_seconds(), 1))
            out.append(
                SendOutcome(
                    step=item.request.step_id,
                    status=result.status,
                    reason=result.reason,
                    deferred_until=deferred,
                    finished_at=workflow.now(),
                )
            )
        return out
