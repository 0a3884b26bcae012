"""The `rejse.contracts.SEND_MESSAGE` activity: journeys and the lead hand-off send through it.

Sync, runs on the worker's thread pool. Results: `sent`, `skipped` (guard, with reason),
`deferred` (quiet hours: sleep until `retry_at`, then call again with the same idempotency key),
`failed` (permanent: invalid address, provider 4xx/5xx SMTP, template error; visible in the
message log). Transient problems raise, so Temporal retries with backoff.
"""

from __future__ import annotations

from temporalio import activity

from rejse.contracts import SEND_MESSAGE, SendRequest, SendResult
from rejse.db import utcnow
from rejse.messaging.sender import send_message
from rejse.metrics import MESSAGES
from rejse.runtime import Runtime


class MessagingActivities:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @activity.defn(name=SEND_MESSAGE)
    def send(self, request: SendRequest) -> SendResult:
        # The later of the server's clock for this attempt and the wall clock: wall time in
        # production (also when the attempt waited in a backlog), the skipped time in
        # time-skipping tests, so frequency windows and quiet hours agree with the workflow.
        scheduled = activity.info().current_attempt_scheduled_time
        now = max(scheduled, utcnow()) if scheduled else utcnow()
        try:
            result = send_message(
                self.runtime.settings,
                self.runtime.engine,
                request,
                now=now,
                after_handoff=self.after_handoff,
            )
        except BaseException:
            MESSAGES.labels(request.channel, "error").inc()  # Temporal retries the attempt
            raise
        MESSAGES.labels(request.channel, result.status).inc()
        return result

    def after_handoff(self, message_id: str) -> None:
        """Runs after a delivery is recorded (a seam for fault-injection tests)."""
