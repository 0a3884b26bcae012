"""Side effects of `JourneyWorkflow`: the journey_run bookkeeping, branch facts, profile updates
and signed webhooks. Sync methods run on the worker's thread pool.

A webhook goes only to public addresses (`rejse.netguard`: the name is resolved once, every
address checked, the checked one connected to) unless `REJSE_WEBHOOK_ALLOW_PRIVATE`; a refused
target, like a receiver's 4xx, fails the step for good and is recorded on the step and the run."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from rejse import analytics_deltas as deltas
from rejse import netguard, signatures
from rejse.analytics import attribution
from rejse.conditions import evaluate
from rejse.db import session_scope, utcnow
from rejse.journeys import runtypes as rt
from rejse.journeys.arms import run_arms
from rejse.journeys.facts import load_facts
from rejse.logging import get_logger
from rejse.models.journeys import ACTIVE_RUN_STATUSES, Journey, JourneyRun, JourneyStep
from rejse.outbound import OutboundError, Rejected, Transient, application_error, request
from rejse.runtime import Runtime
from rejse.timeline import add_entry

log = get_logger("rejse.journeys")


class JourneyActivities:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.begin_run,
            self.record_step,
            self.record_outcome,
            self.finish_run,
            self.choose_branch,
            self.update_profile,
            self.call_webhook,
        ]

    def _context(self, session: Session, journey_key: str, run: JourneyRun | None) -> rt.RunContext:
        journey = session.get(Journey, journey_key)
        archived = journey is None or journey.status == "archived"
        cancelled = run is None or run.status == "cancelled"
        return rt.RunContext(
            paused=bool(journey and journey.status == "paused"), active=not (archived or cancelled)
        )

    @activity.defn(name=rt.BEGIN_RUN)
    def begin_run(self, inp: rt.RunInput) -> rt.RunContext:
        """The journey's state for this run (the row is written before the start) and the
        profile's time zone for `wait until`."""
        from rejse.profiles.service import load_snapshot

        with session_scope(self.runtime.engine) as session:
            run = session.get(JourneyRun, inp.run_id)  # None: erased meanwhile -> inactive
            snapshot = load_snapshot(session, profile_id=inp.profile_id)
            ctx = self._context(session, inp.journey_key, run)
            ctx.timezone = snapshot.timezone if snapshot else None
            return ctx

    @activity.defn(name=rt.RECORD_STEP)
    def record_step(self, rec: rt.StepRecord) -> rt.RunContext:
        with session_scope(self.runtime.engine) as session:
            run = session.get(JourneyRun, rec.run_id)
            ctx = self._context(session, rec.journey_key, run)
            if run is None or not ctx.active:
                return ctx
            if not self._step_recorded(session, rec):
                session.add(
                    JourneyStep(
                        run_id=rec.run_id,
                        journey_key=rec.journey_key,
                        version=rec.version,
                        step_id=rec.step_id,
                        at=rec.at,
                    )
                )
                deltas.step_entered(session, run, rec.step_id, previous=run.current_step)
                add_entry(
                    session,
                    profile_id=run.profile_id,
                    kind="journey_step",
                    summary=f"journey {rec.journey_key} v{rec.version}: {rec.step_id} "
                    f"({rec.step_type})",
                    data={
                        "journey": rec.journey_key,
                        "version": rec.version,
                        "step": rec.step_id,
                        "run_id": rec.run_id,
                    },
                    at=rec.at,
                )
            run.current_step = rec.step_id
            run.step_since = rec.at
            run.status = "held" if ctx.paused else "running"
            session.add(run)
            return ctx

    def _step_recorded(self, session: Session, rec: rt.StepRecord) -> bool:
        """A retried activity must not log the step twice. A local one (since
        PATCH_LOCAL_BOOKKEEPING) may run again with a later `at` when its workflow task is
        retried after a worker crash: then the visit number tells (the run's rows of this step
        so far); older histories send no visit and are matched by the last row's step and time."""
        if rec.visit:
            rows = session.exec(
                select(sa.func.count()).where(
                    JourneyStep.run_id == rec.run_id, JourneyStep.step_id == rec.step_id
                )
            ).one()
            return rows >= rec.visit
        last = session.exec(
            select(JourneyStep)
            .where(JourneyStep.run_id == rec.run_id)
            .order_by(col(JourneyStep.id).desc())
            .limit(1)
        ).first()
        return last is not None and last.step_id == rec.step_id and last.at == rec.at

    @activity.defn(name=rt.RECORD_OUTCOME)
    def record_outcome(self, rec: rt.OutcomeRecord) -> None:
        with session_scope(self.runtime.engine) as session:
            step = session.exec(
                select(JourneyStep)
                .where(JourneyStep.run_id == rec.run_id, JourneyStep.step_id == rec.step_id)
                .order_by(col(JourneyStep.id).desc())
                .limit(1)
            ).first()
            first_time = False
            if step is not None and rec.variant is not None:  # a split: the run's arm
                first_time = (
                    session.exec(
                        select(sa.func.count()).where(
                            JourneyStep.run_id == rec.run_id,
                            JourneyStep.step_id == rec.step_id,
                            JourneyStep.outcome == rec.outcome,
                        )
                    ).one()
                    == 0
                )  # not counted again on a second pass or a retried activity
            if step is not None:
                step.outcome = rec.outcome
                session.add(step)
            if rec.variant is not None:
                run = session.get(JourneyRun, rec.run_id)
                if run is not None:
                    run.variant = rec.variant
                    session.add(run)
                    if first_time:
                        deltas.arm_entered(session, run, rec.step_id, rec.outcome)

    @activity.defn(name=rt.FINISH_RUN)
    def finish_run(self, rec: rt.FinishRecord) -> None:
        with session_scope(self.runtime.engine) as session:
            run = session.get(JourneyRun, rec.run_id)
            # cancelled, or already finished: a local activity may run again (its workflow task
            # retried after a worker crash) and must not log or count the end twice
            if run is None or run.status not in ACTIVE_RUN_STATUSES:
                return
            previous_status, previous_step = run.status, run.current_step
            run.status = rec.status
            run.converted = rec.status == "converted"
            run.current_step = rec.step_id
            run.ended_at = rec.at
            session.add(run)
            deltas.run_ended(
                session, run, previous_status=previous_status, previous_step=previous_step
            )
            if run.converted and previous_status != "converted":
                goal = attribution.goal_reached(session, run, at=rec.at)
                deltas.arm_converted(
                    session, run, run_arms(session, run), revenue_units=goal.revenue_units
                )
            add_entry(
                session,
                profile_id=run.profile_id,
                kind="journey_step",
                summary=f"journey {rec.journey_key}: {rec.status}",
                data={"journey": rec.journey_key, "status": rec.status, "run_id": rec.run_id},
                at=rec.at,
            )

    @activity.defn(name=rt.CHOOSE_BRANCH)
    def choose_branch(self, inp: rt.BranchInput) -> int:
        """Index of the first condition that holds for the profile, -1 for `else`."""
        with Session(self.runtime.engine) as session:
            facts = load_facts(session, inp.profile_id, now=inp.at, properties=inp.properties)
            for n, cond in enumerate(inp.conditions):
                if evaluate(cond, facts, now=inp.at):
                    return n
        return -1

    @activity.defn(name=rt.UPDATE_PROFILE)
    def update_profile(self, inp: rt.UpdateProfileInput) -> None:
        from rejse.errors import DomainError
        from rejse.maturity.flags import follow_traits
        from rejse.profiles.service import patch_traits

        with session_scope(self.runtime.engine) as session:
            try:
                profile = patch_traits(session, profile_id=inp.profile_id, traits=inp.traits)
                follow_traits(session, profile)
            except DomainError as exc:  # erased or unknown: nothing to update, do not retry
                raise ApplicationError(exc.message, non_retryable=True) from None

    @activity.defn(name=rt.CALL_WEBHOOK)
    def call_webhook(self, inp: rt.WebhookInput) -> None:
        """POST a JSON body signed like our inbound webhooks: `X-Rejse-Signature: t=..,v1=..`
        (HMAC-SHA256 of "<t>.<body>" with the secret key) plus an `Idempotency-Key` header."""
        body = json.dumps(
            {
                "journey": inp.journey_key,
                "step": inp.step_id,
                "profile_id": inp.profile_id,
                "data": inp.body,
                "trigger": {
                    "event": inp.trigger.get("event"),
                    "event_id": inp.trigger.get("event_id"),
                },
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            signatures.HEADER: signatures.sign(self.runtime.settings.secret_key, body),
            "Idempotency-Key": inp.idempotency_key,
        }
        try:
            target = netguard.pin(
                inp.url, allow_private=self.runtime.settings.webhook_allow_private
            )
        except netguard.BlockedAddress as exc:
            self._step_failed(inp, outcome="refused", reason=str(exc))
            log.warning("journey_webhook_refused", journey=inp.journey_key, step=inp.step_id)
            raise ApplicationError(
                f"journey webhook: {exc}", type="WebhookRefused", non_retryable=True
            ) from None
        except netguard.Unresolvable as exc:  # DNS may answer later: like an outage
            raise application_error(
                Transient("journey webhook", str(exc)), kind="Webhook"
            ) from None
        # classified like every other outbound call, so a receiver's 4xx ends the step at once
        # (WebhookRejected) while an outage or a 429 (after its Retry-After) is waited out
        try:
            with httpx.Client(timeout=10) as client:
                request(
                    client,
                    "POST",
                    target.url,
                    what="journey webhook",
                    content=body,
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                )
        except OutboundError as exc:
            if isinstance(exc, Rejected):
                self._step_failed(inp, outcome="rejected", reason=str(exc))
            raise application_error(exc, kind="Webhook") from None

    def _step_failed(self, inp: rt.WebhookInput, *, outcome: str, reason: str) -> None:
        """A step that failed for good: its outcome, the run `failed` (its workflow fails with
        the activity), and a timeline entry with the reason (no URL: it may hold a token)."""
        workflow_id = activity.info().workflow_id
        with session_scope(self.runtime.engine) as session:
            run = session.exec(
                select(JourneyRun)
                .where(
                    JourneyRun.workflow_id == workflow_id,
                    col(JourneyRun.status).in_(ACTIVE_RUN_STATUSES),
                )
                .order_by(col(JourneyRun.entered_at).desc())
                .limit(1)
            ).first()
            if run is None:
                return
            step = session.exec(
                select(JourneyStep)
                .where(JourneyStep.run_id == run.id, JourneyStep.step_id == inp.step_id)
                .order_by(col(JourneyStep.id).desc())
                .limit(1)
            ).first()
            if step is not None:
                step.outcome = outcome
                session.add(step)
            now = utcnow()
            previous_status, previous_step = run.status, run.current_step
            run.status, run.ended_at, run.current_step = "failed", now, inp.step_id
            session.add(run)
            deltas.run_ended(
                session, run, previous_status=previous_status, previous_step=previous_step
            )
            add_entry(
                session,
                profile_id=run.profile_id,
                kind="journey_step",
                summary=f"journey {inp.journey_key}: step {inp.step_id} failed: {reason}"[:500],
                data={
                    "journey": inp.journey_key,
                    "step": inp.step_id,
                    "run_id": run.id,
                    "status": "failed",
                    "reason": reason,
                },
                at=now,
            )
