"""Composition root: which subscribers, dispatchers, erasers, workflows, activities, scheduler
jobs and background services make up rejse, and the parts built from them.

Nothing it composes imports it: the event processor, the scheduler, the worker and the API app
receive their collaborators as arguments from here (through `rejse.up` and the CLI) or from a
test. Each domain adds its parts here; nothing registers globally. Imports stay inside the
functions so that importing this module is cheap (`rejse up` imports while Temporal boots)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from rejse.contracts import EventDispatcher, InTransactionSubscriber, ProfileEraser
from rejse.runtime import Runtime

if TYPE_CHECKING:
    import asyncio

    from fastapi import FastAPI

    from rejse.events.processor import EventProcessor
    from rejse.scheduler import ScheduledJob

BackgroundService = Callable[["asyncio.Event"], Coroutine[Any, Any, None]]


def in_transaction_subscribers(runtime: Runtime) -> list[InTransactionSubscriber]:
    """Run inside the event processor's transaction (attribution, scoring, customer value,
    audiences)."""
    from rejse.analytics.attribution import AttributionSubscriber
    from rejse.audiences.subscriber import AudienceSubscriber
    from rejse.maturity.flags import FlagsSubscriber
    from rejse.profiles.value import CustomerValueSubscriber
    from rejse.scoring.subscriber import ScoringSubscriber

    # Audiences last: they read the score and customer value this event left.
    # Attribution reads none of the others' writes.
    return [
        AttributionSubscriber(),
        ScoringSubscriber(),
        CustomerValueSubscriber(),
        FlagsSubscriber(),  # after customer value: reads the order count it left
        AudienceSubscriber(),
    ]


def event_dispatchers(runtime: Runtime) -> list[EventDispatcher]:
    """Run after commit, talk to Temporal (journey triggers and signals, lead hand-offs)."""
    from rejse.journeys.dispatcher import JourneyDispatcher
    from rejse.leads.control import HandoffDispatcher

    return [JourneyDispatcher(runtime), HandoffDispatcher(runtime)]


def profile_erasers(runtime: Runtime) -> list[ProfileEraser]:
    """GDPR erase: each domain deletes its data and cancels its workflows."""
    from rejse.audiences.service import AudienceEraser
    from rejse.journeys.dispatcher import JourneyEraser
    from rejse.leads.control import LeadEraser
    from rejse.maturity.flags import FlagsEraser
    from rejse.messaging.service import MessagingEraser

    return [
        MessagingEraser(),
        JourneyEraser(runtime),
        LeadEraser(runtime),
        AudienceEraser(),
        FlagsEraser(),
    ]


def workflows() -> list[type]:
    from workflows.journey import JourneyWorkflow
    from workflows.lead_handoff import LeadHandoffWorkflow, SalesDigestWorkflow

    return [JourneyWorkflow, LeadHandoffWorkflow, SalesDigestWorkflow]


def activities(runtime: Runtime) -> list[Callable[..., Any]]:
    from activities.crm import CrmActivities
    from activities.journeys import JourneyActivities
    from activities.leads import LeadActivities
    from activities.messaging import MessagingActivities

    return [
        MessagingActivities(runtime).send,
        *JourneyActivities(runtime).all(),
        *LeadActivities(runtime).all(),
        *CrmActivities(runtime).all(),
    ]


def activity_names() -> frozenset[str]:
    """The names of the activities journey steps call, as `activities()` registers them (a
    test holds the two together). Publishing a journey checks its steps against these, without
    building activity objects."""
    from rejse.contracts import ADD_SCORE, SEND_MESSAGE, START_HANDOFF

    return frozenset({SEND_MESSAGE, ADD_SCORE, START_HANDOFF})


def event_processor(runtime: Runtime, **options: Any) -> EventProcessor:
    """The event processor with every subscriber and dispatcher (`options`: batch size, ...)."""
    from rejse.events.processor import EventProcessor

    return EventProcessor(
        runtime,
        subscribers=in_transaction_subscribers(runtime),
        dispatchers=event_dispatchers(runtime),
        **options,
    )


def background_services(runtime: Runtime) -> list[BackgroundService]:
    """Long-running loops started next to the Temporal worker (`rejse worker`, `rejse up`).
    Each is `async def run(stop: asyncio.Event) -> None` and returns when `stop` is set."""
    return [event_processor(runtime).run]


def scheduler_jobs(runtime: Runtime) -> list[ScheduledJob]:
    """Periodic jobs for the one scheduler process (`rejse up`, `rejse scheduler`). A job only
    starts Temporal workflows with deterministic ids, so a double fire is harmless
    (see `rejse.scheduler`); the audience recheck sweep writes rows instead, each change once
    and each event under a deterministic message id."""
    from rejse.analytics.attribution import scheduler_jobs as analytics_jobs
    from rejse.analytics.funnel import scheduler_jobs as funnel_jobs
    from rejse.audiences.sweep import scheduler_jobs as audience_jobs
    from rejse.journeys.schedule import scheduler_jobs as journey_jobs
    from rejse.leads.control import scheduled_jobs as lead_jobs

    return [
        *journey_jobs(runtime),
        *lead_jobs(),
        *audience_jobs(runtime),
        *funnel_jobs(runtime),
        *analytics_jobs(runtime),
    ]


def api_app(runtime: Runtime) -> FastAPI:
    """The FastAPI app with the erasers GDPR erase runs and the activity names publishing
    checks against."""
    from api.app import create_app

    return create_app(
        runtime, profile_erasers=profile_erasers(runtime), activity_names=activity_names()
    )
