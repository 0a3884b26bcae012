"""Composition root: which subscribers, dispatchers, erasers, workflows, activities and
background services make up rejse. Each domain adds its parts here, nothing else registers
globally. Imports stay inside the functions so that importing this module is cheap."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from rejse.contracts import EventDispatcher, InTransactionSubscriber, ProfileEraser
from rejse.runtime import Runtime

if TYPE_CHECKING:
    from rejse.scheduler import ScheduledJob


def in_transaction_subscribers(runtime: Runtime) -> list[InTransactionSubscriber]:
    """Run inside the event processor's transaction (scoring, audiences)."""
    from rejse.scoring.subscriber import ScoringSubscriber

    subscribers: list[InTransactionSubscriber] = [ScoringSubscriber()]
    return subscribers


def event_dispatchers(runtime: Runtime) -> list[EventDispatcher]:
    """Run after commit, talk to Temporal (journey triggers and signals)."""
    from rejse.journeys.dispatcher import JourneyDispatcher

    dispatchers: list[EventDispatcher] = [JourneyDispatcher(runtime)]
    from activities.leads import HandoffDispatcher

    dispatchers.append(HandoffDispatcher(runtime))
    return dispatchers


def profile_erasers(runtime: Runtime) -> list[ProfileEraser]:
    """GDPR erase: each domain deletes its data and cancels its workflows."""
    from rejse.messaging.service import MessagingEraser

    from rejse.journeys.dispatcher import JourneyEraser

    erasers: list[ProfileEraser] = [MessagingEraser()]
    erasers.append(JourneyEraser(runtime))
    from activities.leads import LeadEraser

    erasers.append(LeadEraser(runtime))
    return erasers


def workflows() -> list[type]:
    from workflows.journey import JourneyWorkflow

    wfs: list[type] = [JourneyWorkflow]
    from workflows.lead_handoff import LeadHandoffWorkflow, SalesDigestWorkflow

    wfs += [LeadHandoffWorkflow, SalesDigestWorkflow]
    return wfs


def activities(runtime: Runtime) -> list[Callable[..., Any]]:
    from activities.messaging import MessagingActivities

    from activities.journeys import JourneyActivities

    acts: list[Callable[..., Any]] = [MessagingActivities(runtime).send]
    acts += JourneyActivities(runtime).all()
    from activities.crm import CrmActivities
    from activities.leads import LeadActivities

    acts += LeadActivities(runtime).all() + CrmActivities(runtime).all()
    return acts


def background_services(runtime: Runtime) -> list[Callable[[Any], Awaitable[None]]]:
    """Long-running loops started next to the Temporal worker (`rejse worker`, `rejse up`).
    Each is `async def run(stop: asyncio.Event) -> None` and returns when `stop` is set."""
    from rejse.events.processor import EventProcessor

    services: list[Callable[[Any], Awaitable[None]]] = [EventProcessor(runtime).run]
    return services


def scheduler_jobs(runtime: Runtime) -> list["ScheduledJob"]:
    """Periodic jobs for the one scheduler process (`rejse up`, `rejse scheduler`). A job only
    starts Temporal workflows with deterministic ids, so a double fire is harmless
    (see `rejse.scheduler`)."""
    from rejse.journeys.schedule import scheduler_jobs as journey_jobs

    jobs: list[ScheduledJob] = journey_jobs(runtime)
    from activities.leads import scheduled_jobs as lead_jobs

    jobs += lead_jobs()
    return jobs
