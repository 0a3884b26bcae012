"""The `rejse.contracts.SEND_MESSAGE` activity: journeys and the lead hand-off send through it.

Async: it awaits its send on the worker's event loop and holds no activity thread. Results:
`sent`, `skipped` (guard, with reason), `deferred` (quiet hours: sleep until `retry_at`, then
call again with the same idempotency key), `failed` (permanent: invalid address, provider
4xx/5xx SMTP, template error; visible in the message log). Transient problems raise, so
Temporal retries with backoff.

The worker's concurrent sends are coalesced (`rejse.messaging.coalescer`): each activity waits
while its request goes out in a batch with the others in flight
(`rejse.messaging.sender.send_batch`, on the coalescer's lane threads), with the same guarantees
per request as a single send.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from temporalio import activity

from rejse.contracts import SEND_MESSAGE, SendRequest, SendResult
from rejse.db import utcnow
from rejse.messaging.coalescer import SendCoalescer
from rejse.messaging.sender import send_batch
from rejse.metrics import MESSAGES
from rejse.runtime import Runtime


class MessagingActivities:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.coalescer = SendCoalescer(self._send_batch)

    @activity.defn(name=SEND_MESSAGE)
    async def send(self, request: SendRequest) -> SendResult:
        # The later of the server's clock for this attempt and the wall clock: wall time in
        # production (also when the attempt waited in a backlog), the skipped time in
        # time-skipping tests, so frequency windows and quiet hours agree with the workflow.
        scheduled = activity.info().current_attempt_scheduled_time
        now = max(scheduled, utcnow()) if scheduled else utcnow()
        return await self.send_at(request, now)

    async def send_at(self, request: SendRequest, now: datetime.datetime) -> SendResult:
        """The activity's work at the clock `now` (the benchmark awaits it as the worker
        does)."""
        try:
            result = await self.coalescer.send_async(request, now)
        except BaseException:
            MESSAGES.labels(request.channel, "error").inc()  # Temporal retries the attempt
            raise
        MESSAGES.labels(request.channel, result.status).inc()
        return result

    def _send_batch(
        self, sends: Sequence[tuple[SendRequest, datetime.datetime]]
    ) -> list[SendResult | BaseException]:
        return send_batch(
            self.runtime.settings, self.runtime.engine, sends, after_handoff=self.after_handoff
        )

    def after_handoff(self, message_id: str) -> None:
        """Runs after a delivery is recorded (a seam for fault-injection tests)."""
