"""Sales figures: per rep (and `/api/sales/metrics?rep=`), the pipeline by phase with ages,
lost leads and why, AQLs nobody called; a rep-bound key sees its own rep only; the counts equal
a recount of the lead rows, the charts and CSV carry the JSON's numbers."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from rejse.analytics import sales_figures as sf
from rejse.leads import service as leads
from rejse.models.leads import Lead
from rejse.profiles.service import create_profile
from rejse.roles import Role
from tests.analytics.test_charts import texts
from tests.conftest import auth
from tests.leads.conftest import activate, assigned_lead, new_rep
from tests.leads.test_rep_keys import bound_key

BASE = "/api/analytics/sales"
NOW = dt.datetime.now(dt.UTC)


def lead(session: Session, rep_id: str, key: str, created: dt.datetime) -> str:
    pid = create_profile(session, traits={"n": key}, identifiers={"email": f"{key}@ex.dk"})
    return assigned_lead(session, rep_id=rep_id, key=key, profile_id=pid, at=created)


@pytest.fixture
def team(session: Session) -> dict[str, str]:
    activate(session)
    anna, bo = new_rep(session, "Anna"), new_rep(session, "Bo")
    day = dt.timedelta(days=1)
    t = {"anna": anna, "bo": bo}
    t["a1"] = lead(session, anna, "a1", NOW - 10 * day)
    t["a2"] = lead(session, anna, "a2", NOW - 8 * day)
    t["a3"] = lead(session, anna, "a3", NOW - 4 * day)  # nobody called; SLA (24 h) passed
    t["b1"] = lead(session, bo, "b1", NOW - 6 * day)
    t["b2"] = lead(session, bo, "b2", NOW - 5 * day)
    t["b3"] = lead(session, bo, "b3", NOW - 2 * day)
    leads.record_outcome(session, lead_id=t["a1"], outcome="contacted", now=NOW - 9 * day)
    leads.record_outcome(
        session, lead_id=t["a1"], outcome="lost", reason="price", now=NOW - 7 * day
    )
    leads.record_outcome(session, lead_id=t["a2"], outcome="meeting", now=NOW - 7 * day)
    leads.record_outcome(session, lead_id=t["a2"], outcome="won", now=NOW - 3 * day)
    leads.record_outcome(session, lead_id=t["b1"], outcome="not_relevant", now=NOW - 5 * day)
    leads.mark(session, lead_id=t["b2"], kind="expired", now=NOW - 2 * day)
    leads.record_outcome(session, lead_id=t["b3"], outcome="meeting", now=NOW - day)
    session.commit()
    return t


async def test_per_rep_figures_match_a_recount(client, keys, session, team):
    r = await client.get(BASE + "/reps", headers=auth(keys[Role.marketer]))
    assert r.status_code == 200, r.text
    rows = {row["rep_name"]: row for row in r.json()["reps"]}
    assert set(rows) == {"Anna", "Bo"}
    anna, bo = rows["Anna"], rows["Bo"]
    assert (anna["leads"], anna["won"], anna["lost"], anna["uncalled"], anna["overdue"]) == (
        3,
        1,
        1,
        1,
        1,
    )
    assert (anna["contacted"], anna["meetings"], anna["win_rate"]) == (2, 1, 0.5)
    assert anna["median_hours_to_contact"] == 24.0  # a1 and a2 contacted a day after hand-off
    assert (bo["not_relevant"], bo["expired"], bo["meetings"], bo["open"], bo["win_rate"]) == (
        1,
        1,
        1,
        1,
        0.0,
    )
    # The raw rows, counted by SQL
    recount = {
        (rep, status): n
        for rep, status, n in session.execute(
            sa.select(Lead.rep_id, Lead.status, sa.func.count()).group_by(Lead.rep_id, Lead.status)
        )
    }
    for name, rep in (("Anna", team["anna"]), ("Bo", team["bo"])):
        for status in ("won", "lost", "not_relevant", "expired"):
            assert rows[name][status] == recount.get((rep, status), 0)
        assert rows[name]["leads"] == sum(n for (r_, _), n in recount.items() if r_ == rep)

    svg = await client.get(BASE + "/reps/chart.svg", headers=auth(keys[Role.analyst]))
    assert {"Anna", "Bo", "3", "2", "1"} <= set(texts(svg.content))
    table = await client.get(BASE + "/reps/export.csv", headers=auth(keys[Role.analyst]))
    csv_rows = {row["rep_name"]: row for row in csv.DictReader(io.StringIO(table.text))}
    assert csv_rows["Anna"]["won"] == "1"
    assert csv_rows["Bo"]["expired"] == "1"


async def test_metrics_per_rep_and_rep_bound_keys(client, keys, team):
    h = auth(keys[Role.analyst])
    everyone = (await client.get("/api/sales/metrics", headers=h)).json()
    assert everyone["aqls_created"] == 6
    r = await client.get("/api/sales/metrics", params={"rep": team["anna"]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["aqls_created"] == 3
    assert r.json()["by_outcome"]["won"] == 1
    r = await client.get("/api/sales/metrics", params={"rep": "rep_nobody"}, headers=h)
    assert r.status_code == 404
    assert r.json()["errors"][0]["field"] == "rep"

    bo = auth(await bound_key(client, keys, team["bo"]))
    mine = (await client.get("/api/sales/metrics", headers=bo)).json()
    assert mine["aqls_created"] == 3
    assert mine["by_outcome"]["won"] == 0
    r = await client.get("/api/sales/metrics", params={"rep": team["anna"]}, headers=bo)
    assert r.status_code == 404
    assert r.json()["errors"][0]["field"] == "rep"
    reps = (await client.get(BASE + "/reps", headers=bo)).json()["reps"]
    assert [row["rep_id"] for row in reps] == [team["bo"]]
    for path in ("/reps", "/pipeline", "/lost", "/uncalled", "/uncalled/chart.svg"):
        r = await client.get(BASE + path, params={"rep": team["anna"]}, headers=bo)
        assert r.status_code == 404, path
    uncalled = (await client.get(BASE + "/uncalled", headers=bo)).json()
    assert [row["lead_id"] for row in uncalled["leads"]] == [team["b2"]]


async def test_pipeline_by_phase_with_ages(client, keys, session, team):
    figures = sf.pipeline(session, now=NOW)
    phases = {p.phase: p for p in figures.phases}
    assert {p: phases[p].leads for p in sf.PHASES} == {
        "open": 0,
        "assigned": 1,
        "contacted": 0,
        "meeting": 1,
        "won": 1,
        "lost": 1,
        "not_relevant": 1,
        "expired": 1,
    }
    assert figures.open_leads == 2
    assert phases["assigned"].median_age_days == 4.0
    assert phases["meeting"].median_days_in_phase == 1.0
    assert phases["won"].median_days_in_phase == 3.0
    assert phases["lost"].oldest_age_days == 10.0
    r = await client.get(BASE + "/pipeline", headers=auth(keys[Role.sales]))
    assert [p["leads"] for p in r.json()["phases"]] == [0, 1, 0, 1, 1, 1, 1, 1]
    svg = await client.get(
        BASE + "/pipeline/chart.svg", params={"lang": "da"}, headers=auth(keys[Role.sales])
    )
    assert {"tildelt", "møde", "vundet", "udløbet", "1", "0"} <= set(texts(svg.content))


async def test_lost_leads_and_why(client, keys, team):
    r = await client.get(BASE + "/lost", headers=auth(keys[Role.analyst]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["lost_leads"] == 3
    assert [(x["outcome"], x["reason"], x["leads"]) for x in body["reasons"]] == [
        ("lost", "price", 1),
        ("not_relevant", "unspecified", 1),
        ("expired", "not_contacted", 1),
    ]
    svg = await client.get(BASE + "/lost/chart.svg", headers=auth(keys[Role.analyst]))
    assert {"lost: price", "expired: not contacted", "1"} <= set(texts(svg.content))
    table = await client.get(BASE + "/lost/export.csv", headers=auth(keys[Role.analyst]))
    assert [row["reason"] for row in csv.DictReader(io.StringIO(table.text))] == [
        "price",
        "unspecified",
        "not_contacted",
    ]
    # The period is on the hand-off: only b1, b2 and b3 were created in the last 6 days.
    since = (NOW - dt.timedelta(days=6)).date().isoformat()
    r = await client.get(BASE + "/lost", params={"from": since}, headers=auth(keys[Role.analyst]))
    assert [x["outcome"] for x in r.json()["reasons"]] == ["not_relevant", "expired"]


async def test_a_reason_goes_with_a_loss_only(client, keys, team):
    r = await client.post(
        f"/api/sales/leads/{team['b3']}/outcome",
        json={"outcome": "won", "reason": "price"},
        headers=auth(keys[Role.sales]),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "reason"
    r = await client.post(
        f"/api/sales/leads/{team['b3']}/outcome",
        json={"outcome": "lost", "reason": "competitor"},
        headers=auth(keys[Role.sales]),
    )
    assert r.status_code == 200, r.text
    lost = (await client.get(BASE + "/lost", headers=auth(keys[Role.sales]))).json()
    assert ("lost", "competitor", 1) in [
        (x["outcome"], x["reason"], x["leads"]) for x in lost["reasons"]
    ]


async def test_aqls_nobody_called(client, keys, team):
    r = await client.get(BASE + "/uncalled", headers=auth(keys[Role.marketer]))
    body = r.json()
    assert body["total"] == 2
    assert body["overdue"] == 2
    assert [row["lead_id"] for row in body["leads"]] == [team["b2"], team["a3"]]  # oldest first
    assert body["by_rep"] == dict(sorted({team["anna"]: 1, team["bo"]: 1}.items()))
    svg = await client.get(BASE + "/uncalled/chart.svg", headers=auth(keys[Role.marketer]))
    assert {team["anna"], team["bo"], "1"} <= set(texts(svg.content))
    limited = await client.get(
        BASE + "/uncalled", params={"limit": 1}, headers=auth(keys[Role.marketer])
    )
    assert limited.json()["total"] == 2
    assert len(limited.json()["leads"]) == 1


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/reps", {"rep": "rep_nobody"}, 404, "rep"),
        ("/pipeline/chart.png", {"rep": "rep_nobody"}, 404, "rep"),
        ("/lost/export.csv", {"from": "2026-11-10", "to": "2026-11-01"}, 422, "to"),
        ("/reps", {"from": "2026-11-10", "to": "2026-11-01"}, 422, "to"),
        ("/uncalled", {"limit": 0}, 422, "limit"),
    ],
)
async def test_bad_input_names_the_field(client, keys, team, path, params, status, field):
    r = await client.get(BASE + path, params=params, headers=auth(keys[Role.analyst]))
    assert r.status_code == status, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_a_rep_without_leads_gets_a_row_of_zeros(client, keys, session):
    """A new rep (no lead yet) is a row of zeros, in JSON, CSV and chart alike (it was a 500:
    the missing group's default held one figure too many)."""
    rep = new_rep(session, "Nyansat")
    r = await client.get("/api/analytics/sales/reps", headers=auth(keys[Role.analyst]))
    assert r.status_code == 200, r.text
    rows = {row["rep_id"]: row for row in r.json()["reps"]}
    assert rows[rep]["leads"] == rows[rep]["won"] == rows[rep]["expired"] == 0
    for path in ("/api/analytics/sales/reps/export.csv", "/api/analytics/sales/reps/chart.svg"):
        assert (await client.get(path, headers=auth(keys[Role.analyst]))).status_code == 200


async def test_meetings_count_the_kept_met_flag(session, team):
    """A `meeting` outcome sets lead.met and a later outcome keeps it: a2 (meeting, then won)
    is Anna's meeting through the flag, not through a scan of its history."""
    a1, a2, b3 = (session.get(Lead, team[k]) for k in ("a1", "a2", "b3"))
    assert (a1.met, a2.met, b3.met) == (False, True, True)
    assert a2.status == "won"
    anna = next(r for r in sf.per_rep(session, now=NOW).reps if r.rep_id == team["anna"])
    assert anna.meetings == 1
    # The figure reads the column: without it the won lead is no meeting, history or not
    session.execute(sa.update(Lead).where(Lead.id == team["a2"]).values(met=False))
    anna = next(r for r in sf.per_rep(session, now=NOW).reps if r.rep_id == team["anna"])
    assert anna.meetings == 0
    session.rollback()


async def test_an_erased_leads_meeting_still_counts(session, team):
    """Erasure strips the history's outcomes, the figures stay: the flag keeps the meeting."""
    a2 = session.get(Lead, team["a2"])
    leads.erase_leads(session, profile_id=a2.profile_id)
    session.commit()
    assert "outcome" not in {k for h in session.get(Lead, team["a2"]).history for k in h}
    anna = next(r for r in sf.per_rep(session, now=NOW).reps if r.rep_id == team["anna"])
    assert anna.meetings == 1
