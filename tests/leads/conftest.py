"""Fixtures of the leads tests: an active scoring model, profiles, fake HTTP servers, and a
Temporal worker with the hand-off workflow on the time-skipping server."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import pytest
from sqlmodel import Session
from temporalio.worker import Worker

from activities.crm import CrmActivities
from activities.leads import LeadActivities
from rejse.crm.hubspot import HubSpotAdapter
from rejse.leads import service as leads
from rejse.leads.runtypes import HandoffInput
from rejse.leads.schemas import RepCreate
from rejse.models.leads import Lead
from rejse.profiles.service import create_profile
from rejse.runtime import Runtime
from rejse.scoring import service as scoring
from rejse.scoring.definition import ScoringDefinition
from rejse.temporal import TemporalConnector
from tests.leads.fakes import TOKEN, FakeHubSpot, FakeWebhook
from workflows.lead_handoff import LeadHandoffWorkflow, SalesDigestWorkflow

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)

MODEL = {
    "event_rules": [
        {
            "id": "pricing",
            "event": "Page Viewed",
            "points": 5,
            "condition": {"property": "path", "op": "eq", "value": "/pricing"},
            "cap": {"points": 10, "per": "P1D"},
        },
        {"id": "demo", "event": "Demo Requested", "points": 40, "high_intent": True},
        {"id": "checkout", "event": "Checkout Started", "points": 20, "high_intent": True},
    ],
    "fit_rules": [
        {"id": "dk", "condition": {"trait": "country", "op": "eq", "value": "DK"}, "points": 10}
    ],
    "half_life": "P7D",
    "thresholds": {"lead": 10, "aql": 50},
    "handoff": {"reminder_after": "PT4H", "escalate_after": "PT24H", "max_escalations": 1},
}


def activate(session: Session, definition: dict | None = None) -> int:
    row = scoring.create_model(
        session, definition=ScoringDefinition.model_validate(definition or MODEL), activate=True
    )
    session.commit()
    return row.version


@pytest.fixture
def model(session: Session) -> int:
    return activate(session)


def new_profile(session: Session, **traits) -> str:
    pid = create_profile(
        session,
        traits={"first_name": "Ida", "last_name": "Holm", **traits},
        identifiers={"email": f"ida{len(traits)}@example.dk"},
    )
    session.commit()
    return pid


def assigned_lead(
    session: Session, *, rep_id: str, key: str, profile_id: str, at: dt.datetime | None = None
) -> str:
    """An open lead of `profile_id` (trigger `key`, id `key` padded to 32), assigned to
    `rep_id` at `at` (default now)."""
    lead_id = key + "0" * (32 - len(key))
    leads.open_lead(
        session,
        lead_id=lead_id,
        workflow_id=f"handoff:{profile_id}",
        request=HandoffInput(profile_id=profile_id, reason="r", source="test", trigger_key=key),
        now=at,
    )
    leads.assign(session, lead_id=lead_id, step=0, escalate=False, now=at)
    lead = session.get(Lead, lead_id)
    assert lead is not None
    lead.rep_id = rep_id
    session.add(lead)
    session.commit()
    return lead_id


def new_rep(session: Session, name: str, webhook: str | None = None, **kw) -> str:
    rep = leads.create_rep(
        session,
        rep=RepCreate(name=name, email=f"{name.lower()}@shop.dk", webhook_url=webhook, **kw),
    )
    session.commit()
    return rep.id


@pytest.fixture
def hubspot():
    with FakeHubSpot() as fake:
        yield fake


@pytest.fixture
def slack():
    with FakeWebhook() as fake:
        yield fake


@pytest.fixture
def trt(runtime: Runtime, time_env) -> Runtime:
    """The test runtime talking to the time-skipping Temporal server."""
    runtime.temporal = TemporalConnector(runtime.settings, time_env.client)
    return runtime


@asynccontextmanager
async def handoff_worker(runtime: Runtime, client, *, crm_adapter=None):
    with ThreadPoolExecutor(max_workers=8) as pool:
        acts = (
            LeadActivities(runtime, search_attributes=False).all()
            + CrmActivities(runtime, adapter=crm_adapter).all()
        )
        async with Worker(
            client,
            task_queue=runtime.settings.task_queue,
            workflows=[LeadHandoffWorkflow, SalesDigestWorkflow],
            activities=acts,
            activity_executor=pool,
        ):
            yield


def hubspot_adapter(fake: FakeHubSpot) -> HubSpotAdapter:
    return HubSpotAdapter(base_url=fake.url, token=TOKEN)


@pytest.fixture
def mailbox():
    """A real SMTP server (aiosmtpd) on loopback; yields (messages, smtp_url)."""
    import email
    import socket

    from aiosmtpd.controller import Controller

    messages: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            messages.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield messages, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()
