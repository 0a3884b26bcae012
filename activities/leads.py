"""Side effects of lead scoring and `LeadHandoffWorkflow`: open/assign/mark leads, notify reps
(Slack-compatible webhook), journeys' `scoring.add_points` and `leads.start_handoff`, plus the
after-commit dispatcher that starts hand-offs and the GDPR eraser."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import httpx
from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from rejse.contracts import (
    ADD_SCORE,
    START_HANDOFF,
    AddScoreRequest,
    HandoffRequest,
    ProcessedEvent,
)
from rejse.db import session_scope
from rejse.leads import service as leads
from rejse.leads.notifications import push_text, render_email
from rejse.leads.schemas import (
    Contact,
    DigestInput,
    HandoffInput,
    HandoffPlan,
    HandoffResult,
    LeadStep,
)
from rejse.logging import get_logger
from rejse.models.leads import SalesRep
from rejse.runtime import Runtime
from rejse.scoring import service as scoring
from rejse.temporal import SA_PROFILE_ID

log = get_logger("rejse.leads")

WORKFLOW = "LeadHandoffWorkflow"
OPEN = "leads.open"
ASSIGN = "leads.assign"
NOTIFY = "leads.notify"
MARK = "leads.mark"
DIGEST = "leads.digest"
DIGEST_WORKFLOW = "SalesDigestWorkflow"


def _now() -> dt.datetime:
    """Temporal's time of this attempt (the server clock: skipped time in tests)."""
    return activity.info().current_attempt_scheduled_time.astimezone(dt.UTC)


def handoff_id(profile_id: str) -> str:
    return f"handoff:{profile_id}"


async def start_handoff_workflow(
    client: Client, *, task_queue: str, request: HandoffInput, search_attributes: bool = True
) -> WorkflowHandle:
    """Start `handoff:{profile}`; an already running hand-off is fine (returns its handle)."""
    wf_id = handoff_id(request.profile_id)
    attrs = (
        TypedSearchAttributes([SearchAttributePair(SA_PROFILE_ID, request.profile_id)])
        if search_attributes
        else None
    )
    try:
        return await client.start_workflow(
            WORKFLOW,
            request,
            id=wf_id,
            task_queue=task_queue,
            search_attributes=attrs,
            result_type=HandoffResult,
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle(wf_id, result_type=HandoffResult)


class LeadActivities:
    def __init__(self, runtime: Runtime, *, search_attributes: bool = True) -> None:
        self.runtime = runtime
        self.search_attributes = search_attributes
        self.http = httpx.Client(timeout=10.0)

    def all(self) -> list:
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

    def _link(self, lead) -> str:
        return f"{self.runtime.settings.effective_public_url}/api/sales/leads/{lead.id}"

    def _push(self, url: str, text: str) -> None:
        try:
            response = self.http.post(url, json={"text": text})
        except httpx.TransportError as exc:
            raise ApplicationError(
                f"webhook: {type(exc).__name__}", type="NotifyTransient"
            ) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ApplicationError(f"webhook: {response.status_code}", type="NotifyTransient")
        if response.status_code >= 400:
            raise ApplicationError(
                f"webhook: {response.status_code}", type="NotifyRejected", non_retryable=True
            )

    def _email(self, kind: str, step: int, lead, rep: SalesRep, contact: Contact) -> None:
        from rejse.messaging.channels import Outgoing, PermanentFailure, SmtpEmail

        subject, text, html = render_email(
            kind,
            lead,
            rep,
            contact,
            link=self._link(lead),
            templates_dir=self.runtime.settings.templates_dir,
        )
        out = Outgoing(
            message_id=f"lead-{lead.id}-{kind}-{step}-{rep.id}",
            to=rep.email,
            subject=subject,
            text=text,
            html=html or None,
            headers={},
        )
        try:
            SmtpEmail(self.runtime.settings).deliver(out)
        except PermanentFailure as exc:
            raise ApplicationError(
                f"email: {exc}", type="NotifyRejected", non_retryable=True
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
        try:
            response = self.http.post(rep.webhook_url, json={"text": text})
        except httpx.TransportError as exc:
            raise ApplicationError(
                f"webhook: {type(exc).__name__}", type="NotifyTransient"
            ) from None
        if response.status_code >= 400:
            raise ApplicationError(
                f"webhook: {response.status_code}",
                type="NotifyTransient",
                non_retryable=400 <= response.status_code < 500 and response.status_code != 429,
            )
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
                if isinstance(score, (int, float))
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
    import asyncio

    from rejse.scheduler import start_workflow_once

    day = day or dt.datetime.now(dt.UTC).date()

    def reps() -> list[str]:
        with session_scope(runtime.engine) as session:
            return [r.id for r in leads.list_reps(session) if r.active and r.webhook_url]

    started = 0
    for rep_id in await asyncio.to_thread(reps):
        started += await start_workflow_once(
            runtime,
            DIGEST_WORKFLOW,
            DigestInput(rep_id=rep_id, day=day),
            id=f"digest:{rep_id}:{day.isoformat()}",
        )
    return started


def scheduled_jobs() -> list:
    from rejse.scheduler import ScheduledJob

    return [ScheduledJob(id="sales_digest", trigger="0 7 * * 1-5", func=start_digests)]
