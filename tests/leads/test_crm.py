"""CRM adapters against fake servers that check the request shape, and the hand-off's retry
behaviour: a 503 outage of ten minutes, a 429 with Retry-After, a 400 that stops retrying."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlmodel import Session, select

from rejse.crm.base import CrmLead
from rejse.crm.salesforce import SalesforceAdapter
from rejse.crm.webhook import WebhookAdapter
from rejse.leads.control import start_handoff_workflow
from rejse.leads.runtypes import HandoffInput
from rejse.models.leads import Lead
from rejse.outbound import RateLimited, Rejected, Transient, parse_retry_after
from rejse.roles import Role
from rejse.signatures import verify
from rejse.temporal import SA_PROFILE_ID
from tests.conftest import auth
from tests.leads.conftest import handoff_worker, hubspot_adapter, new_profile, new_rep
from tests.leads.fakes import TOKEN, FakeSalesforce, FakeWebhook

LEAD = CrmLead(
    lead_id="l1",
    profile_id="prf_01ABCDEF",
    email="ida@example.dk",
    first_name="Ida",
    last_name="Holm",
    score=62,
    reason="score 62 crossed the AQL threshold",
    owner_id="005XX",
)


def test_hubspot_upsert_and_task_shape(hubspot):
    adapter = hubspot_adapter(hubspot)
    ref = adapter.upsert_contact(LEAD)
    assert adapter.upsert_contact(LEAD) == ref  # idempotent: same contact
    assert len(hubspot.contacts) == 1
    task_id = adapter.create_task(LEAD, contact_ref=ref)
    assert task_id
    assert hubspot.tasks[0]["properties"]["hubspot_owner_id"] == "005XX"
    assert hubspot.received[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_hubspot_error_classes(hubspot):
    adapter = hubspot_adapter(hubspot)
    hubspot.fail_next(503)
    with pytest.raises(Transient):
        adapter.upsert_contact(LEAD)
    hubspot.fail_next(429, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as err:
        adapter.upsert_contact(LEAD)
    assert err.value.retry_after == 7
    hubspot.fail_next(400)
    with pytest.raises(Rejected):
        adapter.upsert_contact(LEAD)
    with pytest.raises(Rejected):  # no email: nothing to upsert by
        adapter.upsert_contact(CrmLead(lead_id="l2", profile_id="p", email=None))


def test_retry_after_http_date():
    now = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
    assert parse_retry_after("Mon, 23 Nov 2026 06:01:00 GMT", now=now) == 60
    assert parse_retry_after(None) == 30
    assert parse_retry_after("soon") == 30


def test_salesforce_upsert_by_external_id():
    with FakeSalesforce() as fake:
        adapter = SalesforceAdapter(base_url=fake.url, token=TOKEN)
        assert adapter.upsert_contact(LEAD).startswith("00Q")  # 201 created
        assert adapter.upsert_contact(LEAD) == LEAD.profile_id  # 204 updated
        adapter.create_task(LEAD, contact_ref="x")  # sets the owner
        assert fake.leads[LEAD.profile_id]["OwnerId"] == "005XX"
        assert fake.leads[LEAD.profile_id]["Email"] == "ida@example.dk"
        assert {r.method for r in fake.received} == {"PATCH"}
        assert (
            fake.received[0].path
            == f"/services/data/v60.0/sobjects/Lead/Rejse_Profile_Id__c/{LEAD.profile_id}"
        )


def test_signed_webhook():
    with FakeWebhook() as fake:
        WebhookAdapter(url=f"{fake.url}/hook/crm", secret="s3cret").upsert_contact(LEAD)
        [req] = fake.for_hook("crm")
        assert verify(req.body, req.headers["x-rejse-signature"], ["s3cret"])
        assert not verify(req.body, req.headers["x-rejse-signature"], ["other"])
        assert req.headers["idempotency-key"] == "l1:upsert"
        assert json.loads(req.body)["type"] == "lead.qualified"


async def _run_handoff(trt, time_env, hubspot, pid):
    async with handoff_worker(trt, time_env.client, crm_adapter=hubspot_adapter(hubspot)):
        start = await time_env.get_current_time()
        handle = await start_handoff_workflow(
            time_env.client,
            task_queue=trt.settings.task_queue,
            search_attributes=False,
            request=HandoffInput(profile_id=pid, reason="test", source="test", trigger_key=pid),
        )
        result = await handle.result()  # runs to expiry with time skipping (no outcome)
    with Session(trt.engine) as s:
        lead = s.exec(select(Lead).where(Lead.profile_id == pid)).one()
    return start, result, lead


def _at(lead: Lead, kind: str) -> dt.datetime:
    return next(dt.datetime.fromisoformat(h["at"]) for h in lead.history if h["kind"] == kind)


async def test_crm_503_for_ten_minutes_then_success(trt, session, model, hubspot, time_env):
    pid = new_profile(session)
    new_rep(session, "Anna")
    hubspot.fail_next(503, times=14)  # backoff 1, 2, 4, ... 120 s: about ten minutes
    start, result, lead = await _run_handoff(trt, time_env, hubspot, pid)
    assert lead.crm_status == "synced"
    assert lead.crm_task_id
    assert len([r for r in hubspot.received if r.path.endswith("/upsert")]) == 15
    assert _at(lead, "crm_synced") - start >= dt.timedelta(minutes=10)
    assert result.status == "expired"


async def test_crm_429_honours_retry_after(runtime, session, model, hubspot, dev_env):
    """On the dev server (the time-skipping test server ignores `next_retry_delay`)."""
    from rejse.temporal import TemporalConnector
    from tests.leads.test_handoff import wait_for

    runtime.temporal = TemporalConnector(runtime.settings, dev_env.client)
    pid = new_profile(session)
    new_rep(session, "Anna")
    hubspot.fail_next(429, headers={"Retry-After": "2"})
    async with handoff_worker(runtime, dev_env.client, crm_adapter=hubspot_adapter(hubspot)):
        handle = await start_handoff_workflow(  # with the RejseProfileId search attribute
            dev_env.client,
            task_queue=runtime.settings.task_queue,
            search_attributes=True,
            request=HandoffInput(profile_id=pid, reason="test", source="test", trigger_key=pid),
        )

        async def synced():
            with Session(runtime.engine) as s:
                lead = s.exec(select(Lead).where(Lead.profile_id == pid)).first()
                return lead if lead and lead.crm_status == "synced" else None

        await wait_for(synced, seconds=30)
        desc = await handle.describe()
        assert desc.typed_search_attributes.get(SA_PROFILE_ID) == pid
        await handle.cancel()
    first, second = [r.at for r in hubspot.received if r.path.endswith("/upsert")]
    assert 2.0 <= second - first < 4.0  # waited for Retry-After, not the 1 s backoff


async def test_crm_400_stops_and_shows_on_the_lead(
    trt, session, model, hubspot, time_env, client, keys
):
    pid = new_profile(session)
    new_rep(session, "Anna")
    hubspot.fail_next(400)
    _, _result, lead = await _run_handoff(trt, time_env, hubspot, pid)
    assert len(hubspot.received) == 1
    assert not hubspot.tasks
    assert lead.rep_id is not None  # sales still got the lead
    r = await client.get(f"/api/sales/leads/{lead.id}", headers=auth(keys[Role.sales]))
    body = r.json()
    assert body["crm_status"] == "failed"
    assert "400" in body["crm_error"]
    assert "VALIDATION_ERROR" in body["crm_error"]  # the CRM's answer, on the lead
    r = await client.get(
        "/api/sales/next", params={"rep": "rep_nobody"}, headers=auth(keys[Role.sales])
    )
    assert r.status_code == 404
    assert r.json()["errors"][0]["field"] == "rep"
