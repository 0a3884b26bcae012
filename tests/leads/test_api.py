"""Scoring and sales API: versions, validation errors naming the field, reps, outcomes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session

from rejse.errors import DomainError
from rejse.leads import service as leads
from rejse.leads.control import LeadEraser
from rejse.leads.runtypes import HandoffInput
from rejse.models.leads import Lead, ProfileScore
from rejse.roles import Role
from rejse.scoring import service as scoring
from tests.conftest import auth
from tests.leads.conftest import MODEL, new_profile, new_rep


async def test_model_versions(client, keys):
    m, a = auth(keys[Role.marketer]), auth(keys[Role.analyst])
    r = await client.post("/api/scoring/models", json=MODEL, headers=m)
    assert r.status_code == 201
    assert r.json()["version"] == 1
    assert not r.json()["active"]
    r = await client.post(
        "/api/scoring/models?activate=true", json={**MODEL, "half_life": None}, headers=m
    )
    assert r.json()["version"] == 2
    assert r.json()["active"]
    r = await client.post("/api/scoring/models/1/activate", headers=m)
    assert r.json()["active"]
    r = await client.get("/api/scoring/models/active", headers=a)
    assert r.json()["version"] == 1
    assert [v["active"] for v in (await client.get("/api/scoring/models", headers=a)).json()] == [
        False,
        True,
    ]
    assert (await client.post("/api/scoring/models", json=MODEL, headers=a)).status_code == 403
    assert (await client.post("/api/scoring/models/9/activate", headers=m)).status_code == 404


async def test_bad_model_is_4xx_naming_the_field(client, keys):
    m = auth(keys[Role.marketer])
    bad = {**MODEL, "event_rules": [{"id": "x", "event": "A", "points": "many"}]}
    r = await client.post("/api/scoring/models", json=bad, headers=m)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "event_rules.0.points"
    bad = {**MODEL, "thresholds": {"lead": 80, "aql": 50}}
    r = await client.post("/api/scoring/models", json=bad, headers=m)
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "thresholds.aql"
    r = await client.get("/api/scoring/models", headers=m)
    assert r.json() == []  # nothing half-written


async def test_profile_score_and_explicit_stage(client, keys, session, model):
    pid = new_profile(session)
    scoring.add_points(session, profile_id=pid, points=60, reason="webinar", idempotency_key="k")
    session.commit()
    r = await client.get(f"/api/profiles/{pid}/score", headers=auth(keys[Role.analyst]))
    body = r.json()
    assert body["score"] == 60
    assert body["stage"] == "aql"
    assert body["breakdown"] == {"manual:webinar": 60}
    r = await client.post(
        f"/api/profiles/{pid}/stage",
        json={"stage": "lead", "reason": "not ready"},
        headers=auth(keys[Role.marketer]),
    )
    assert r.json() == {"profile_id": pid, "previous": "aql", "stage": "lead"}
    r = await client.post(
        f"/api/profiles/{pid}/stage",
        json={"stage": "vip", "reason": "x"},
        headers=auth(keys[Role.marketer]),
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "stage"
    assert (
        await client.get("/api/profiles/nope/score", headers=auth(keys[Role.analyst]))
    ).status_code == 404


async def test_reps_crud(client, keys):
    s = auth(keys[Role.sales])
    r = await client.post(
        "/api/sales/reps",
        headers=s,
        json={"name": "Anna", "email": "anna@shop.dk", "territories": ["DK"]},
    )
    assert r.status_code == 201, r.text
    rep = r.json()["id"]
    r = await client.post(
        "/api/sales/reps", headers=s, json={"name": "Bo", "email": "not-an-email"}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "email"
    r = await client.post(
        "/api/sales/reps",
        headers=s,
        json={"name": "Bo", "email": "bo@shop.dk", "manager_id": "rep_missing"},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "manager_id"
    r = await client.patch(f"/api/sales/reps/{rep}", headers=s, json={"active": False})
    assert r.json()["active"] is False
    assert r.json()["territories"] == ["DK"]
    assert len((await client.get("/api/sales/reps", headers=s)).json()) == 1
    assert (
        await client.get("/api/sales/reps", headers=auth(keys[Role.marketer]))
    ).status_code == 403


def _lead(session: Session, pid: str, key: str = "t") -> Lead:
    plan = leads.open_lead(
        session,
        lead_id=key + "0" * (32 - len(key)),
        workflow_id=f"handoff:{pid}",
        request=HandoffInput(profile_id=pid, reason="r", source="test", trigger_key=key),
    )
    leads.assign(session, lead_id=plan.lead_id, step=0, escalate=False)
    session.commit()
    return leads.get_lead(session, lead_id=plan.lead_id)


async def test_outcomes_won_and_not_relevant(trt, client, keys, session, model):
    s = auth(keys[Role.sales])
    new_rep(session, "Anna")
    won_pid, nr_pid = new_profile(session), new_profile(session, country="SE")
    won, nr = _lead(session, won_pid, "a"), _lead(session, nr_pid, "b")
    for _ in range(2):  # a repeated post acts once
        r = await client.post(
            f"/api/sales/leads/{won.id}/outcome", json={"outcome": "won"}, headers=s
        )
        assert r.status_code == 200
        assert r.json()["status"] == "won"
    assert [h["kind"] for h in r.json()["history"]].count("outcome") == 1
    assert session.get(ProfileScore, won_pid).stage == "customer"
    r = await client.post(
        f"/api/sales/leads/{nr.id}/outcome", json={"outcome": "not_relevant"}, headers=s
    )
    assert r.status_code == 200
    session.expire_all()
    # suppressed: a new hand-off for this profile is skipped
    plan = leads.open_lead(
        session,
        lead_id="c" * 32,
        workflow_id="w",
        request=HandoffInput(profile_id=nr_pid, reason="r", source="x", trigger_key="again"),
    )
    assert plan.skip == "suppressed"
    r = await client.post(f"/api/sales/leads/{nr.id}/outcome", json={"outcome": "maybe"}, headers=s)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "outcome"
    r = await client.get("/api/sales/metrics", headers=auth(keys[Role.marketer]))
    m = r.json()
    assert m["aqls_created"] == 2
    assert m["by_outcome"]["won"] == 1
    assert m["conversion_by_outcome"]["won"] == 0.5
    assert m["median_time_to_contact_seconds"] is not None
    assert m["share_contacted_within_sla"] == 1.0
    # an AQL nobody called, past its due time, is visible; one still inside its window is not
    # held against
    ignored = _lead(session, new_profile(session, x=1, y=2, z=3), "c")
    ignored.due_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    session.add(ignored)
    _lead(session, new_profile(session, x=1, y=2, z=3, w=4), "d")
    session.commit()
    m = (await client.get("/api/sales/metrics", headers=auth(keys[Role.analyst]))).json()
    assert m["aqls_created"] == 4
    assert m["open"] == 2
    assert m["overdue"] == 1
    assert m["share_contacted_within_sla"] == pytest.approx(2 / 3, abs=1e-3)


def test_territory_assignment(session, model):
    from tests.leads.conftest import activate

    activate(session, {**MODEL, "handoff": {**MODEL["handoff"], "assignment": "territory"}})
    dk = new_rep(session, "Dorte", territories=["dk"])
    se = new_rep(session, "Sven", territories=["SE"])
    assert _lead(session, new_profile(session, country="SE"), "s").rep_id == se
    assert _lead(session, new_profile(session, country="DK", x=1), "d").rep_id == dk
    assert _lead(session, new_profile(session, country="NO", x=1, y=2), "n").rep_id in {dk, se}


def test_erase(session, model, runtime):
    pid = new_profile(session)
    new_rep(session, "Anna")
    scoring.add_points(session, profile_id=pid, points=5, reason="x", idempotency_key="e")
    lead = _lead(session, pid, "e")
    LeadEraser(runtime).erase(session, pid)
    session.commit()
    assert session.get(ProfileScore, pid) is None
    session.refresh(lead)
    assert lead.profile_id == "erased"
    assert lead.status == "expired"
    with pytest.raises(DomainError) as err:  # an erased person's lead takes no outcome
        leads.record_outcome(session, lead_id=lead.id, outcome="won")
    assert err.value.status_code == 409


async def test_unstorable_input_is_4xx_never_500(client, keys):
    m, s = auth(keys[Role.marketer]), auth(keys[Role.sales])
    bad = {**MODEL, "event_rules": [{"id": "a", "event": "X\u0000", "points": 1}]}
    r = await client.post("/api/scoring/models", json=bad, headers=m)
    assert r.status_code == 422  # NUL and NaN: 422 naming the field, like any invalid value
    assert r.json()["errors"][0]["field"] == "event_rules.0.event"
    body = '{"event_rules": [{"id": "a", "event": "X", "points": NaN}]}'
    r = await client.post(
        "/api/scoring/models", content=body, headers={**m, "content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "event_rules.0.points"
    r = await client.get(f"/api/scoring/models/{2**40}", headers=m)
    assert r.status_code == 422
    r = await client.post(
        "/api/sales/reps", headers=s, json={"name": "A\u0000", "email": "a@shop.dk"}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "name"
