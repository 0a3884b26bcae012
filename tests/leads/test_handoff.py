"""AQL hand-off end to end on the time-skipping Temporal server with fake CRM/Slack servers."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from sqlmodel import Session, select

from rejse.contracts import ProcessedEvent
from rejse.leads.control import HandoffDispatcher, start_handoff_workflow
from rejse.leads.runtypes import HandoffInput, HandoffResult, handoff_id
from rejse.models.leads import Lead
from rejse.roles import Role
from rejse.scoring.subscriber import ScoringSubscriber
from tests.conftest import auth
from tests.leads.conftest import handoff_worker, hubspot_adapter, new_profile, new_rep


def track(pid: str, name: str, **props) -> ProcessedEvent:
    now = dt.datetime.now(dt.UTC)
    return ProcessedEvent(
        event_id=uuid.uuid4().hex,
        profile_id=pid,
        type="track",
        event=name,
        properties=props,
        timestamp=now,
        received_at=now,
    )


def derived_events(pid: str, derived) -> list[ProcessedEvent]:
    now = dt.datetime.now(dt.UTC)
    return [
        ProcessedEvent(
            event_id=uuid.uuid4().hex,
            profile_id=pid,
            type="internal",
            event=name,
            properties=props,
            timestamp=now,
            received_at=now,
        )
        for name, props in derived
    ]


async def wait_for(predicate, seconds: float = 20.0):
    """The first truthy value of `predicate()`; TimeoutError when none comes in `seconds`."""
    async with asyncio.timeout(seconds):
        # polled: the predicates ask the database or a workflow query, which signal nothing
        while not (value := await predicate()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return value


def lead_of(engine, pid: str) -> Lead | None:
    with Session(engine) as s:
        return s.exec(select(Lead).where(Lead.profile_id == pid)).first()


async def test_events_over_the_aql_threshold_hand_off_once(
    trt, session, model, hubspot, slack, client, keys, time_env
):
    pid = new_profile(session, country="DK", company="Holm ApS")
    rep = new_rep(session, "Anna", webhook=f"{slack.url}/hook/anna", crm_owner_id="77")
    sub, dispatcher = ScoringSubscriber(), HandoffDispatcher(trt, search_attributes=False)
    stage_events: list[ProcessedEvent] = []
    for name in ("Checkout Started", "Demo Requested", "Demo Requested", "Checkout Started"):
        stage_events += derived_events(pid, sub.apply(session, track(pid, name)))
        session.commit()
    aql = [e for e in stage_events if e.properties["to"] == "aql"]
    assert len(aql) == 1
    async with handoff_worker(trt, time_env.client, crm_adapter=hubspot_adapter(hubspot)):
        await dispatcher.dispatch(stage_events)
        await dispatcher.dispatch(aql)  # at-least-once delivery: a repeat is harmless
        handle = time_env.client.get_workflow_handle(handoff_id(pid), result_type=HandoffResult)
        await wait_for(lambda: _phase(handle, "waiting"))
        lead = lead_of(trt.engine, pid)
        assert lead.rep_id == rep
        assert lead.status == "assigned"
        assert lead.crm_status == "synced"
        # the CRM got the contact upsert and one task associated with it, owned by the rep
        upsert = [r for r in hubspot.received if r.path.endswith("/batch/upsert")]
        assert len(upsert) == 1
        assert upsert[0].json["inputs"][0]["id"] == "ida2@example.dk"
        assert upsert[0].json["inputs"][0]["properties"]["company"] == "Holm ApS"
        assert len(hubspot.tasks) == 1
        task = hubspot.tasks[0]
        assert task["properties"]["hubspot_owner_id"] == "77"
        assert task["associations"][0]["to"]["id"] == lead.crm_ref
        # the rep was notified, without PII in the push
        pushes = slack.for_hook("anna")
        assert len(pushes) == 1
        assert "New lead" in pushes[0].json["text"]
        assert "ida2@example.dk" not in pushes[0].json["text"]
        # the sales list shows the profile with its reason and contact data
        r = await client.get("/api/sales/next", params={"rep": rep}, headers=auth(keys[Role.sales]))
        assert r.status_code == 200, r.text
        [item] = r.json()
        assert item["profile_id"] == pid
        assert item["lead_id"] == lead.id
        assert "score 1" in item["reason"]
        assert "recent: Checkout Started" in item["reason"]
        assert "crossed the AQL threshold" in item["reason"]
        assert item["contact"] == {
            "name": "Ida Holm",
            "email": "ida2@example.dk",
            "phone": None,
            "company": "Holm ApS",
        }
        # the outcome ends the hand-off
        r = await client.post(
            f"/api/sales/leads/{lead.id}/outcome",
            json={"outcome": "contacted"},
            headers=auth(keys[Role.sales]),
        )
        assert r.status_code == 200, r.text
        result = await handle.result()
        assert result.status == "contacted"
        # the same stage event delivered again after the hand-off ended: no second lead
        await dispatcher.dispatch(aql)
        again = time_env.client.get_workflow_handle(handoff_id(pid), result_type=HandoffResult)
        assert (await again.result()).status == "skipped:duplicate"
    with Session(trt.engine) as s:
        assert len(s.exec(select(Lead)).all()) == 1
    r = await client.get("/api/sales/metrics", headers=auth(keys[Role.analyst]))
    m = r.json()
    assert m["aqls_created"] == 1
    assert m["contacted"] == 1
    assert m["share_contacted_within_sla"] == 1.0


async def _phase(handle, phase: str) -> bool:
    try:
        return await handle.query("phase") == phase
    except Exception:  # noqa: BLE001 - not started yet
        return False


async def test_no_outcome_reminder_then_reassignment(trt, session, model, slack, time_env):
    pid = new_profile(session)
    anna = new_rep(session, "Anna", webhook=f"{slack.url}/hook/anna")
    bo = new_rep(session, "Bo", webhook=f"{slack.url}/hook/bo")
    async with handoff_worker(trt, time_env.client):
        start = await time_env.get_current_time()
        handle = await start_handoff_workflow(
            time_env.client,
            task_queue=trt.settings.task_queue,
            search_attributes=False,
            request=HandoffInput(
                profile_id=pid, reason="test", source="test", trigger_key="t1", crm=False
            ),
        )
        result = await handle.result()
    assert result.status == "expired"
    lead = lead_of(trt.engine, pid)
    kinds = [(h["kind"], h.get("rep_id")) for h in lead.history]
    assert kinds == [
        ("created", None),
        ("assigned", anna),
        ("reminded", None),
        ("assigned", bo),
        ("reminded", None),
        ("expired", None),
    ]
    at = {i: dt.datetime.fromisoformat(h["at"]) - start for i, h in enumerate(lead.history)}
    assert dt.timedelta(hours=4) <= at[2] < dt.timedelta(hours=4, minutes=1)  # reminder after 4h
    assert (
        dt.timedelta(hours=24) <= at[3] < dt.timedelta(hours=24, minutes=1)
    )  # reassigned after 24h
    assert [p.json["text"].split(" ")[0] for p in slack.for_hook("anna")] == ["New", "Reminder:"]
    assert [p.json["text"].split(" ")[0] for p in slack.for_hook("bo")] == ["Lead", "Reminder:"]
    assert lead.status == "expired"
    assert lead.rep_id == bo
    assert lead.reassignments == 1


async def test_manager_escalation(trt, session, slack, time_env):
    from tests.leads.conftest import MODEL, activate

    activate(session, {**MODEL, "handoff": {**MODEL["handoff"], "escalation": "manager"}})
    pid = new_profile(session)
    boss = new_rep(session, "Boss", webhook=f"{slack.url}/hook/boss", active=True)
    anna = new_rep(session, "Anna", webhook=f"{slack.url}/hook/anna", manager_id=boss)
    from rejse.leads.schemas import RepUpdate
    from rejse.leads.service import update_rep

    update_rep(session, rep_id=boss, changes=RepUpdate(territories=["none"]))
    session.commit()
    # make Anna the round-robin pick: the boss was assigned most recently
    from rejse.models.leads import SalesRep

    b = session.get(SalesRep, boss)
    b.last_assigned_at = dt.datetime.now(dt.UTC)
    session.add(b)
    session.commit()
    async with handoff_worker(trt, time_env.client):
        handle = await start_handoff_workflow(
            time_env.client,
            task_queue=trt.settings.task_queue,
            search_attributes=False,
            request=HandoffInput(
                profile_id=pid, reason="test", source="test", trigger_key="t2", crm=False
            ),
        )
        await handle.result()
    lead = lead_of(trt.engine, pid)
    assert [h.get("rep_id") for h in lead.history if h["kind"] == "assigned"] == [anna, boss]
    assert slack.for_hook("boss")[0].json["text"].startswith("Lead reassigned to you")


async def test_through_the_real_processor(
    trt, session, model, hubspot, slack, client, keys, time_env
):
    """Segment calls -> ingest API -> event processor (scoring subscriber, hand-off dispatcher)."""
    from rejse.events.processor import EventProcessor
    from rejse.profiles.service import find_by_identifier

    rep = new_rep(session, "Anna", webhook=f"{slack.url}/hook/anna")
    ingest = auth(keys[Role.ingest])
    r = await client.post(
        "/v1/identify",
        headers=ingest,
        json={
            "userId": "u-42",
            "messageId": "m0",
            "traits": {"email": "ole@example.dk", "first_name": "Ole", "country": "DK"},
        },
    )
    assert r.status_code < 300, r.text
    for i, name in enumerate(["Demo Requested", "Checkout Started", "Demo Requested"]):
        r = await client.post(
            "/v1/track",
            headers=ingest,
            json={"userId": "u-42", "event": name, "messageId": f"m{i + 1}"},
        )
        assert r.status_code < 300, r.text
    processor = EventProcessor(
        trt,
        subscribers=[ScoringSubscriber()],
        dispatchers=[HandoffDispatcher(trt, search_attributes=False)],
    )
    async with handoff_worker(trt, time_env.client, crm_adapter=hubspot_adapter(hubspot)):
        await processor.drain()
        await processor.drain()
        with Session(trt.engine) as s:
            pid = find_by_identifier(s, type="email", value="ole@example.dk")
        handle = time_env.client.get_workflow_handle(handoff_id(pid), result_type=HandoffResult)
        await wait_for(lambda: _phase(handle, "waiting"))
        r = await client.get(f"/api/profiles/{pid}/score", headers=auth(keys[Role.analyst]))
        assert r.json()["stage"] == "aql"
        assert r.json()["score"] == pytest.approx(110, rel=1e-3)
        r = await client.get("/api/sales/next", params={"rep": rep}, headers=auth(keys[Role.sales]))
        [item] = r.json()
        assert item["profile_id"] == pid
        assert item["contact"]["email"] == "ole@example.dk"
        assert len(hubspot.tasks) == 1
        assert len(slack.for_hook("anna")) == 1
        await handle.cancel()
    with Session(trt.engine) as s:
        assert len(s.exec(select(Lead)).all()) == 1


async def test_rep_is_emailed_in_their_language(trt, session, model, slack, mailbox, time_env):
    messages, smtp_url = mailbox
    trt.settings = trt.settings.model_copy(update={"smtp_url": smtp_url})
    pid = new_profile(session, company="Holm ApS")
    new_rep(session, "Anna", webhook=f"{slack.url}/hook/anna", locale="da")
    async with handoff_worker(trt, time_env.client):
        handle = await start_handoff_workflow(
            time_env.client,
            task_queue=trt.settings.task_queue,
            search_attributes=False,
            request=HandoffInput(
                profile_id=pid,
                reason="score 55 crossed the AQL threshold",
                source="score_threshold",
                trigger_key="mail",
                crm=False,
            ),
        )
        await wait_for(lambda: _phase(handle, "waiting"))
        await handle.cancel()
    [mail] = messages
    assert mail["To"] == "anna@shop.dk"
    assert mail["Subject"].startswith("lead Ida Holm (score")
    body = (
        next(p for p in mail.walk() if p.get_content_type() == "text/plain")
        .get_payload(decode=True)
        .decode()
    )
    assert "Du har fået et nyt lead." in body
    assert "Hvem: Ida Holm, Holm ApS" in body
    assert "/api/sales/leads/" in body
    assert len(slack.for_hook("anna")) == 1


async def test_journey_activities_and_erase(trt, session, model, time_env):
    """`scoring.add_points` and `leads.start_handoff` as journeys call them; GDPR erase cancels."""
    from temporalio.testing import ActivityEnvironment

    from activities.leads import LeadActivities
    from rejse.contracts import AddScoreRequest, HandoffRequest
    from rejse.leads.control import LeadEraser
    from rejse.models.events import Event
    from rejse.scoring.service import current_score

    pid = new_profile(session)
    new_rep(session, "Anna")
    acts = LeadActivities(trt, search_attributes=False)
    env = ActivityEnvironment()
    for _ in range(2):
        env.run(
            acts.add_points,
            AddScoreRequest(
                idempotency_key="j:1", profile_id=pid, points=55, reason="journey: webinar"
            ),
        )
    assert current_score(session, profile_id=pid).score == 55
    with Session(trt.engine) as s:  # the stage changes became events for the processor
        stored = s.exec(select(Event).where(Event.profile_id == pid)).all()
        assert sorted(e.properties["to"] for e in stored) == ["aql", "lead"]
    async with handoff_worker(trt, time_env.client):
        wf_id = await env.run(
            acts.start_handoff,
            HandoffRequest(profile_id=pid, reason="journey step", source="journey:x", crm=False),
        )
        assert wf_id == handoff_id(pid)
        handle = time_env.client.get_workflow_handle(wf_id)
        await wait_for(lambda: _phase(handle, "waiting"))
        with Session(trt.engine) as s:
            LeadEraser(trt).erase(s, pid)
            s.commit()
        await LeadEraser(trt).cancel_running(pid)
        desc = await handle.describe()
        await wait_for(lambda: _closed(handle))
    with Session(trt.engine) as s:
        assert s.exec(select(Lead).where(Lead.profile_id == pid)).first() is None
    assert desc is not None


async def _closed(handle) -> bool:
    from temporalio.client import WorkflowExecutionStatus

    return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING
