"""JourneyWorkflow: one generic interpreter of a pinned journey version, for one profile.

A loop over steps. Waits are timers that a goal event interrupts (`exit_when` ends the run from any
step, mid-wait included, as converted); `wait_for_event` waits on signals; every side effect is an
activity. Events arrive by the `event` signal (ids already seen are ignored, so a re-delivered
event acts once). `set_paused` holds the run before its next step until resumed.

Changing what this interpreter does for an existing history needs `workflow.patched()`; the
replay test over `tests/journeys/histories/` fails otherwise."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from rejse.contracts import (
        ADD_SCORE,
        SEND_MESSAGE,
        START_HANDOFF,
        AddScoreRequest,
        HandoffRequest,
        ProcessedEvent,
        SendRequest,
        SendResult,
    )
    from rejse.journeys import definition as jd
    from rejse.journeys import runtypes as rt
    from rejse.journeys.matching import event_matches
    from rejse.journeys.split import HOLDOUT, assign
    from rejse.journeys.timing import delay_until, next_time_of_day, parse_duration

QUICK: dict[str, Any] = {
    "start_to_close_timeout": dt.timedelta(seconds=10),
    "retry_policy": RetryPolicy(maximum_interval=dt.timedelta(minutes=1)),
}
SLOW: dict[str, Any] = {
    "start_to_close_timeout": dt.timedelta(minutes=2),
    "retry_policy": RetryPolicy(maximum_interval=dt.timedelta(minutes=5)),
}
# The database bookkeeping (run begun, step entered, outcome, run finished, branch facts) runs as
# local activities: in the worker's workflow task, a marker in the history instead of a schedule,
# a task and a completion on the server. Each one is idempotent (a local activity runs again when
# its workflow task is retried after a worker crash) and short; a local activity cannot
# heartbeat, so nothing long or with side effects outside the database goes here (the send and
# the webhook stay regular activities). Retries past `local_retry_threshold` (1 min) back off with
# a server timer, like a regular activity's.
LOCAL: dict[str, Any] = {
    "start_to_close_timeout": dt.timedelta(seconds=10),
    "retry_policy": RetryPolicy(maximum_interval=dt.timedelta(minutes=1)),
}
# Sends retry at least once a minute: after a relay outage the held messages go out within a
# minute of its return, not up to five (tests/reliability: the SMTP server down for 5 minutes).
SEND: dict[str, Any] = {
    "start_to_close_timeout": dt.timedelta(minutes=2),
    "retry_policy": RetryPolicy(maximum_interval=dt.timedelta(minutes=1)),
}

# runs one step (id, its model) and returns the id of the next one, None to end the run
StepHandler = Callable[[str, Any], Awaitable[str | None]]


@workflow.defn(name=rt.WORKFLOW_NAME)
class JourneyWorkflow:
    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.events: list[ProcessedEvent] = []
        self.goals: list[tuple[str, dict[str, Any]]] | None = None
        self.converted = False
        self.paused = False
        self.step: str | None = None
        self.step_first_event = 0
        self.after_last_wait = 0  # events from here on count for the next wait_for_event
        self.waiting = False  # idle in a wait, for the `state` query
        # step type -> its handler; `exit` is not here: the loop ends the run on it
        self.handlers: dict[str, StepHandler] = {
            "wait": self._wait,
            "wait_for_event": self._wait_for_event,
            "branch": self._branch,
            "split": self._split,
            "send": self._send,
            "update_profile": self._update_profile,
            "score": self._score,
            "crm_handoff": self._handoff,
            "notify_sales": self._handoff,
            "webhook": self._webhook,
        }

    # ------------------------------------------------------------------ signals and query

    @workflow.signal(name=rt.SIGNAL_EVENT)
    def on_event(self, ev: ProcessedEvent) -> None:
        if ev.event_id in self.seen:
            return
        self.seen.add(ev.event_id)
        self.events.append(ev)
        self._check_goal(ev)

    @workflow.signal(name=rt.SIGNAL_PAUSED)
    def set_paused(self, paused: bool) -> None:
        self.paused = paused

    @workflow.query
    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "paused": self.paused,
            "converted": self.converted,
            "waiting": self.waiting,
        }

    def _check_goal(self, ev: ProcessedEvent) -> None:
        if self.goals is None:  # signal before run(): checked once the goals are known
            return
        if any(event_matches(ev, name, where) for name, where in self.goals):
            self.converted = True

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: rt.RunInput) -> str:
        self.inp = inp
        self.defn = jd.JourneyDefinition.model_validate(inp.definition)
        self.context = {"trigger": inp.trigger.model_dump(mode="json")}
        self.visits = dict(inp.visits)
        self.variant = inp.variant
        self.seen.update(inp.seen_event_ids)
        self.seen.add(inp.trigger.event_id)
        # runs started by signal-with-start (before the dispatcher used plain starts) got their
        # trigger as a start signal too: it is the trigger, not an event after entry
        self.events = [e for e in self.events if e.event_id != inp.trigger.event_id]
        self.goals = [
            (g.event, jd.resolve_match(g.match, self.context)) for g in self.defn.exit_when
        ]
        for ev in self.events:
            self._check_goal(ev)
        self.timezone = inp.timezone
        # histories from before it ran every bookkeeping step as regular activities
        self.local = workflow.patched(rt.PATCH_LOCAL_BOOKKEEPING)
        if not inp.begun:
            ctx = await self._bookkeeping(rt.BEGIN_RUN, inp, rt.RunContext)
            self.timezone, self.paused = ctx.timezone, ctx.paused or self.paused
            if not ctx.active:
                return "cancelled"

        step_id: str | None = inp.resume_at or self.defn.start
        status = "completed"
        while step_id is not None and not self.converted:
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(self._carry_over(step_id))
            self.step = step_id
            self.step_first_event = len(self.events)  # events from here on count for this step
            self.visits[step_id] = self.visits.get(step_id, 0) + 1
            ctx = await self._bookkeeping(
                rt.RECORD_STEP,
                rt.StepRecord(
                    run_id=inp.run_id,
                    journey_key=inp.journey_key,
                    version=inp.version,
                    profile_id=inp.profile_id,
                    step_id=step_id,
                    step_type=self.defn.steps[step_id].type,
                    at=workflow.now(),
                    visit=self.visits[step_id],
                ),
                rt.RunContext,
            )
            if not ctx.active:
                return "cancelled"
            self.paused = ctx.paused or self.paused
            self.waiting = True
            await workflow.wait_condition(lambda: not self.paused or self.converted)
            self.waiting = False
            if self.converted:
                break
            if self.defn.steps[step_id].type == "exit":
                status = "exited"
                break
            step_id = await self._run_step(step_id)
        if self.converted:
            status = "converted"
        await self._bookkeeping(
            rt.FINISH_RUN,
            rt.FinishRecord(
                run_id=inp.run_id,
                journey_key=inp.journey_key,
                profile_id=inp.profile_id,
                status=status,
                step_id=self.step,
                at=workflow.now(),
            ),
        )
        return status

    async def _bookkeeping(self, name: str, arg: Any, result_type: type | None = None) -> Any:
        """A database bookkeeping activity: local since PATCH_LOCAL_BOOKKEEPING."""
        if self.local:
            return await workflow.execute_local_activity(
                name, arg, result_type=result_type, **LOCAL
            )
        return await workflow.execute_activity(name, arg, result_type=result_type, **QUICK)

    def _carry_over(self, step_id: str) -> rt.RunInput:
        return self.inp.model_copy(
            update={
                "resume_at": step_id,
                "seen_event_ids": sorted(self.seen)[-1000:],
                "visits": self.visits,
                "variant": self.variant,
                "timezone": self.timezone,
                "begun": True,
            }
        )

    def _key(self, step_id: str) -> str:
        """Idempotency key: workflow id + ":" + step id (+ re-entry / revisit suffixes)."""
        key = f"{workflow.info().workflow_id}:{step_id}"
        if self.inp.entry_no > 1:
            key += f"@{self.inp.entry_no}"
        if self.visits.get(step_id, 1) > 1:
            key += f"#{self.visits[step_id]}"
        return key

    async def _sleep(self, delay: dt.timedelta) -> bool:
        """Sleep unless a goal event arrives first; True if the time ran out."""
        self.waiting = True
        try:
            await workflow.wait_condition(lambda: self.converted, timeout=delay)
            return False
        except TimeoutError:
            return True
        finally:
            self.waiting = False
            self.after_last_wait = len(self.events)

    async def _run_step(self, step_id: str) -> str | None:
        step = self.defn.steps[step_id]
        handler = self.handlers.get(step.type)
        if handler is None:  # validation makes this unreachable
            raise ValueError(f"unknown step type {step.type!r}")
        return await handler(step_id, step)

    async def _wait(self, step_id: str, step: jd.WaitStep) -> str | None:
        if step.for_:
            await self._sleep(parse_duration(step.for_))
        else:
            target = next_time_of_day(workflow.now(), step.until or "00:00", self.timezone)
            await self._sleep(delay_until(workflow.now(), target))
        return step.next

    async def _wait_for_event(self, step_id: str, step: jd.WaitForEventStep) -> str | None:
        # Events count from the end of the last wait (or the entry): the steps in between
        # (sends, branches, webhooks) take activity time, and an event that arrives during
        # them happened after the customer got here. Before this patch only events from
        # the step's own start counted, so one during the previous activity was missed.
        start = (
            self.after_last_wait
            if workflow.patched(rt.PATCH_WAIT_SINCE_LAST_WAIT)
            else self.step_first_event
        )
        expected = jd.resolve_match(step.match, self.context)

        def arrived() -> bool:
            return self.converted or any(
                event_matches(e, step.event, expected) for e in self.events[start:]
            )

        self.waiting = True
        try:
            await workflow.wait_condition(arrived, timeout=parse_duration(step.timeout))
            return step.on_event
        except TimeoutError:
            return step.on_timeout
        finally:
            self.waiting = False
            self.after_last_wait = len(self.events)

    async def _branch(self, step_id: str, step: jd.BranchStep) -> str | None:
        chosen = await self._bookkeeping(
            rt.CHOOSE_BRANCH,
            rt.BranchInput(
                profile_id=self.inp.profile_id,
                conditions=[c.when for c in step.if_],
                properties=self.inp.trigger.properties,
                at=workflow.now(),
            ),
            int,
        )
        return step.if_[chosen].next if chosen >= 0 else step.else_

    async def _update_profile(self, step_id: str, step: jd.UpdateProfileStep) -> str | None:
        await workflow.execute_activity(
            rt.UPDATE_PROFILE,
            rt.UpdateProfileInput(profile_id=self.inp.profile_id, traits=step.traits),
            **QUICK,
        )
        return step.next

    async def _score(self, step_id: str, step: jd.ScoreStep) -> str | None:
        await workflow.execute_activity(
            ADD_SCORE,
            AddScoreRequest(
                idempotency_key=self._key(step_id),
                profile_id=self.inp.profile_id,
                points=step.points,
                reason=step.reason,
            ),
            **QUICK,
        )
        return step.next

    async def _handoff(self, step_id: str, step: jd.HandoffStep) -> str | None:
        await workflow.execute_activity(
            START_HANDOFF,
            HandoffRequest(
                profile_id=self.inp.profile_id,
                reason=step.reason,
                source=f"journey:{self.inp.journey_key}",
                crm=step.type == "crm_handoff",
            ),
            result_type=str,
            **QUICK,
        )
        return step.next

    async def _webhook(self, step_id: str, step: jd.WebhookStep) -> str | None:
        await workflow.execute_activity(
            rt.CALL_WEBHOOK,
            rt.WebhookInput(
                idempotency_key=self._key(step_id),
                url=step.url,
                journey_key=self.inp.journey_key,
                step_id=step_id,
                profile_id=self.inp.profile_id,
                body=step.body,
                trigger=self.context["trigger"],
            ),
            **SLOW,
        )
        return step.next

    async def _split(self, step_id: str, step: jd.SplitStep) -> str | None:
        variant = assign(
            step, journey_key=self.inp.journey_key, step_id=step_id, profile_id=self.inp.profile_id
        )
        self.variant = variant
        await self._bookkeeping(
            rt.RECORD_OUTCOME,
            rt.OutcomeRecord(
                run_id=self.inp.run_id, step_id=step_id, outcome=variant, variant=variant
            ),
        )
        if variant == HOLDOUT:
            # held out: nothing is sent, but a goal inside the window still counts (comparison)
            await self._sleep(parse_duration(step.holdout.window if step.holdout else "P7D"))
            return None
        return next(v.next for v in step.variants if v.key == variant)

    async def _send(self, step_id: str, step: jd.SendStep) -> str | None:
        request = SendRequest(
            idempotency_key=self._key(step_id),
            profile_id=self.inp.profile_id,
            channel=step.channel,
            template=step.template,
            transactional=step.transactional,
            journey_key=self.inp.journey_key,
            journey_version=self.inp.version,
            step_id=step_id,
            trigger=self.context["trigger"],
        )
        while True:
            result = await workflow.execute_activity(
                SEND_MESSAGE, request, result_type=SendResult, **SEND
            )
            if result.status != "deferred" or result.retry_at is None:
                break
            # quiet hours: hold until the window opens (a goal event still ends the run)
            if not await self._sleep(delay_until(workflow.now(), result.retry_at)):
                return step.next  # a goal ended the hold: the loop stops before `next`
        await self._bookkeeping(
            rt.RECORD_OUTCOME,
            rt.OutcomeRecord(run_id=self.inp.run_id, step_id=step_id, outcome=result.status),
        )
        return step.next
