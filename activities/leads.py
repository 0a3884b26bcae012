"""Side effects of `LeadHandoffWorkflow` and `SalesDigestWorkflow` (open, assign and mark
leads; notify reps by chat push and email; push the daily digest) and the journey steps
`scoring.add_points` and `leads.start_handoff`. Starters, dispatcher, eraser and scheduler jobs
live in `rejse.leads.control`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from rejse import outbound
from rejse.contracts import (
    ADD_SCORE,
    START_HANDOFF,
    AddScoreRequest,
    HandoffRequest,
)
from rejse.db import session_scope
from rejse.leads import service as leads
from rejse.leads.control import start_handoff_workflow
from rejse.leads.notifications import EMAIL_TEMPLATE, email_context, push_text
from rejse.leads.runtypes import (
    ASSIGN,
    DIGEST,
    MARK,
    NOTIFY,
    NOTIFY_REJECTED,
    OPEN,
    DigestInput,
    HandoffInput,
    HandoffPlan,
    LeadStep,
)
from rejse.leads.schemas import Contact
from rejse.logging import get_logger
from rejse.messaging.channels import PermanentFailure
from rejse.messaging.staff_email import send_staff_email
from rejse.models.leads import Lead, SalesRep
from rejse.runtime import Runtime
from rejse.scoring import service as scoring

log = get_logger("rejse.leads")


def _now() -> dt.datetime:
    """Temporal's time of this attempt (the server clock: skipped time in tests)."""
    return activity.info().current_attempt_scheduled_time.astimezone(dt.UTC)


class LeadActivities:
    def __init__(self, runtime: Runtime, *, search_attributes: bool = True) -> None:
        self.runtime = runtime
        self.search_attributes = search_attributes
        self.http = httpx.Client(timeout=10.0)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.open,
            self.assign,
            self.notify,
            self.mark,
            self.add_points,
            self.start_handoff,
            self.digest,
        ]

    @activity.defn(name=OPEN)
    def open(self, request: HandoffInput) -> HandoffPlan:
        info = activity.info()
        if info.workflow_id is None or info.workflow_run_id is None:
            # only LeadHandoffWorkflow schedules this activity: the lead is named by its run
            raise RuntimeError(f"activity {OPEN} runs only inside a workflow")
        lead_id = info.workflow_run_id.replace("-", "")
        with session_scope(self.runtime.engine) as session:
            return leads.open_lead(
                session, lead_id=lead_id, workflow_id=info.workflow_id, request=request, now=_now()
            )

    @activity.defn(name=ASSIGN)
    def assign(self, step: LeadStep) -> str | None:
        with session_scope(self.runtime.engine) as session:
            return leads.assign(
                session,
                lead_id=step.lead_id,
                step=step.step,
                escalate=step.kind == "escalate",
                now=_now(),
            )

    @activity.defn(name=MARK)
    def mark(self, step: LeadStep) -> None:
        with session_scope(self.runtime.engine) as session:
            leads.mark(
                session, lead_id=step.lead_id, kind=step.kind, detail=step.detail, now=_now()
            )

    def _link(self, lead: Lead) -> str:
        return f"{self.runtime.settings.effective_public_url}/api/sales/leads/{lead.id}"

    def _push(self, url: str, text: str) -> None:
        """A Slack-compatible chat push; retried or final by the one outbound rule."""
        try:
            outbound.request(self.http, "POST", url, what="rep webhook", json={"text": text})
        except outbound.OutboundError as exc:
            raise outbound.application_error(exc, kind="Notify") from None

    def _email(self, kind: str, step: int, lead: Lead, rep: SalesRep, contact: Contact) -> None:
        try:
            send_staff_email(
                self.runtime.settings,
                message_id=f"lead-{lead.id}-{kind}-{step}-{rep.id}",
                to=rep.email,
                template=EMAIL_TEMPLATE,
                locale=rep.locale,
                context=email_context(kind, lead, rep, contact, link=self._link(lead)),
                templates_dir=self.runtime.settings.templates_dir,
            )
        except PermanentFailure as exc:
            raise ApplicationError(
                f"email: {exc}", type=NOTIFY_REJECTED, non_retryable=True
            ) from None
        except Exception as exc:  # noqa: BLE001 - SMTP/network trouble: retried by the workflow
            raise ApplicationError(f"email: {type(exc).__name__}", type="NotifyTransient") from None

    @activity.defn(name=NOTIFY)
    def notify(self, step: LeadStep) -> int:
        """Tell the rep (and, on reassignment, the previous rep's manager): a Slack-compatible
        webhook push and, when SMTP is configured, an email in the rep's language. Once per
        (channel, kind, step, rep): the key is recorded right after each delivery.
        Returns how many were sent, or -1 when the lead is no longer open."""
        with session_scope(self.runtime.engine) as session:
            lead = leads.get_lead(session, lead_id=step.lead_id)
            if lead.status not in leads.OPEN_STATUSES:
                return -1  # outcome recorded (a lost signal must not nag)
            targets: list[tuple[str, SalesRep]] = []
            rep = session.get(SalesRep, lead.rep_id) if lead.rep_id else None
            if rep is not None:
                targets.append((step.kind, rep))
            if step.kind == "reassigned":
                previous = next(
                    (
                        h.get("previous")
                        for h in reversed(lead.history)
                        if h["kind"] == "assigned" and h.get("step") == step.step
                    ),
                    None,
                )
                old = session.get(SalesRep, previous) if previous else None
                manager = session.get(SalesRep, old.manager_id) if old and old.manager_id else None
                if manager is not None and manager.id != (rep.id if rep else None):
                    targets.append(("escalated", manager))
            contact = leads.contact_of(session, profile_id=lead.profile_id)
        smtp = bool(self.runtime.settings.smtp_url)
        sent = 0
        for kind, target in targets:
            key = f"{kind}:{step.step}:{target.id}"
            if target.webhook_url and key not in lead.notifications:
                self._push(target.webhook_url, push_text(kind, lead, link=self._link(lead)))
                with session_scope(self.runtime.engine) as session:
                    leads.record_notification(session, lead_id=lead.id, key=key)
                sent += 1
            if smtp and f"email:{key}" not in lead.notifications:
                self._email(kind, step.step, lead, target, contact)
                with session_scope(self.runtime.engine) as session:
                    leads.record_notification(session, lead_id=lead.id, key=f"email:{key}")
                sent += 1
        log.info("lead_notified", lead_id=lead.id, kind=step.kind, sent=sent)
        return sent

    @activity.defn(name=DIGEST)
    def digest(self, request: DigestInput) -> bool:
        """Push the rep's daily digest to their webhook; False when there is nothing to send."""
        with session_scope(self.runtime.engine) as session:
            rep = session.get(SalesRep, request.rep_id)
            if rep is None or not rep.active or not rep.webhook_url:
                return False
            text = leads.digest_text(
                session,
                rep_id=rep.id,
                day=request.day,
                public_url=self.runtime.settings.effective_public_url,
            )
        if text is None:
            return False
        self._push(rep.webhook_url, text)
        return True

    @activity.defn(name=ADD_SCORE)
    def add_points(self, request: AddScoreRequest) -> None:
        with session_scope(self.runtime.engine) as session:
            derived = scoring.add_points(
                session,
                profile_id=request.profile_id,
                points=request.points,
                reason=request.reason,
                idempotency_key=request.idempotency_key,
            )
            scoring.publish_stage_changes(
                session, derived, profile_id=request.profile_id, key=request.idempotency_key
            )

    @activity.defn(name=START_HANDOFF)
    async def start_handoff(self, request: HandoffRequest) -> str:
        info = activity.info()
        client = await self.runtime.temporal.client()
        handle = await start_handoff_workflow(
            client,
            task_queue=self.runtime.settings.task_queue,
            search_attributes=self.search_attributes,
            request=HandoffInput(
                profile_id=request.profile_id,
                reason=request.reason,
                source=request.source,
                crm=request.crm,
                trigger_key=f"{info.workflow_id}:{info.activity_id}",
            ),
        )
        return handle.id
