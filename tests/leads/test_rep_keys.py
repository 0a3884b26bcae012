"""Sales keys bound to a rep: the rep sees and changes only their own leads; an unbound sales
key (or admin) sees everything, as a manager does."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from rejse.cli import app as cli_app
from rejse.models.auth import ApiKey
from rejse.models.leads import Lead
from rejse.roles import Role
from tests.conftest import auth
from tests.leads.conftest import assigned_lead, new_profile, new_rep


def lead_for(session: Session, rep_id: str, key: str, **traits) -> str:
    """An open lead assigned to `rep_id`."""
    return assigned_lead(session, rep_id=rep_id, key=key, profile_id=new_profile(session, **traits))


@pytest.fixture
def team(session: Session, model) -> dict[str, str]:
    anna, bo = new_rep(session, "Anna"), new_rep(session, "Bo")
    return {
        "anna": anna,
        "bo": bo,
        "anna_lead": lead_for(session, anna, "a"),
        "bo_lead": lead_for(session, bo, "b", x=1),
    }


async def bound_key(client, keys, rep_id: str) -> str:
    r = await client.post(
        "/api/keys",
        json={"name": "Anna's phone", "role": "sales", "rep_id": rep_id},
        headers=auth(keys[Role.admin]),
    )
    assert r.status_code == 201, r.text
    assert r.json()["rep_id"] == rep_id
    return r.json()["key"]


async def test_a_key_is_bound_to_a_rep_and_shows_it(client, keys, team):
    await bound_key(client, keys, team["anna"])
    listed = (await client.get("/api/keys", headers=auth(keys[Role.admin]))).json()
    assert [k["rep_id"] for k in listed if k["name"] == "Anna's phone"] == [team["anna"]]
    assert {k["rep_id"] for k in listed if k["name"] != "Anna's phone"} == {None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "k", "role": "marketer", "rep_id": "REP"}, "rep_id"),
        ({"name": "k", "role": "sales", "rep_id": "rep_nobody"}, "rep_id"),
        ({"name": "k", "role": "sales", "rep_id": ""}, "rep_id"),
    ],
)
async def test_only_a_sales_key_binds_and_only_to_a_rep_that_exists(
    client, keys, team, session, body, field
):
    body = {**body, "rep_id": body["rep_id"].replace("REP", team["anna"])}
    before = len(session.exec(select(ApiKey)).all())
    r = await client.post("/api/keys", json=body, headers=auth(keys[Role.admin]))
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    session.expire_all()
    assert len(session.exec(select(ApiKey)).all()) == before


async def test_a_bound_key_sees_only_its_reps_leads(client, keys, team):
    anna = auth(await bound_key(client, keys, team["anna"]))
    r = await client.get("/api/sales/next", headers=anna)
    assert r.status_code == 200, r.text
    assert [i["lead_id"] for i in r.json()] == [team["anna_lead"]]
    r = await client.get(f"/api/sales/next?rep={team['anna']}", headers=anna)
    assert [i["lead_id"] for i in r.json()] == [team["anna_lead"]]
    r = await client.get(f"/api/sales/next?rep={team['bo']}", headers=anna)
    assert r.status_code == 404, r.text
    assert r.json()["errors"][0]["field"] == "rep"
    assert (
        await client.get(f"/api/sales/leads/{team['anna_lead']}", headers=anna)
    ).status_code == 200
    r = await client.get(f"/api/sales/leads/{team['bo_lead']}", headers=anna)
    assert r.status_code == 404
    assert r.json()["errors"][0]["field"] == "lead_id"
    # the same answer as for a lead that does not exist: nothing to learn from it
    missing = await client.get(f"/api/sales/leads/{'z' * 32}", headers=anna)
    assert r.json()["detail"].replace(team["bo_lead"], "?") == missing.json()["detail"].replace(
        "z" * 32, "?"
    )


async def test_a_bound_key_records_outcomes_only_on_its_reps_leads(client, keys, team, session):
    anna = auth(await bound_key(client, keys, team["anna"]))
    r = await client.post(
        f"/api/sales/leads/{team['bo_lead']}/outcome", json={"outcome": "lost"}, headers=anna
    )
    assert r.status_code == 404, r.text
    session.expire_all()
    assert session.get(Lead, team["bo_lead"]).outcome is None
    r = await client.post(
        f"/api/sales/leads/{team['anna_lead']}/outcome", json={"outcome": "contacted"}, headers=anna
    )
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "contacted"


async def test_a_bound_key_sees_its_own_rep_and_figures_and_changes_no_rep(client, keys, team):
    anna = auth(await bound_key(client, keys, team["anna"]))
    r = await client.get("/api/sales/reps", headers=anna)
    assert [rep["id"] for rep in r.json()] == [team["anna"]]
    assert (await client.get(f"/api/sales/reps/{team['anna']}", headers=anna)).status_code == 200
    assert (await client.get(f"/api/sales/reps/{team['bo']}", headers=anna)).status_code == 404
    r = await client.patch(f"/api/sales/reps/{team['bo']}", json={"active": False}, headers=anna)
    assert r.status_code == 403, r.text
    r = await client.patch(
        f"/api/sales/reps/{team['anna']}", json={"territories": ["DK", "SE"]}, headers=anna
    )
    assert r.status_code == 403, r.text
    r = await client.post(
        "/api/sales/reps", json={"name": "Cy", "email": "cy@shop.dk"}, headers=anna
    )
    assert r.status_code == 403, r.text
    r = await client.get("/api/sales/metrics", headers=anna)
    assert r.json()["aqls_created"] == 1
    r = await client.get("/api/sales/metrics", headers=auth(keys[Role.sales]))
    assert r.json()["aqls_created"] == 2


@pytest.mark.parametrize("role", [Role.sales, Role.admin])
async def test_an_unbound_sales_key_or_admin_sees_every_rep(client, keys, team, role):
    h = auth(keys[role])
    r = await client.get("/api/sales/next", headers=h)
    assert {i["lead_id"] for i in r.json()} == {team["anna_lead"], team["bo_lead"]}
    r = await client.get(f"/api/sales/next?rep={team['bo']}", headers=h)
    assert [i["lead_id"] for i in r.json()] == [team["bo_lead"]]
    assert (await client.get(f"/api/sales/leads/{team['bo_lead']}", headers=h)).status_code == 200
    assert len((await client.get("/api/sales/reps", headers=h)).json()) == 2
    r = await client.patch(f"/api/sales/reps/{team['bo']}", json={"active": False}, headers=h)
    assert r.status_code == 200, r.text


@pytest.fixture
def cli(db_url, engine, monkeypatch):
    monkeypatch.setenv("REJSE_DATABASE_URL", db_url)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli_app, list(args), catch_exceptions=False)


def test_the_cli_binds_a_sales_key_to_a_rep(cli, runtime, team, session):
    created = cli("keys", "create", "--role", "sales", "--rep", team["anna"], "--name", "anna")
    assert created.exit_code == 0, created.output
    raw = created.stdout.strip().splitlines()[-1]
    key_id, role = runtime.keys.resolve(raw)
    assert role is Role.sales
    assert runtime.keys.rep_of(key_id) == team["anna"]
    assert session.get(ApiKey, key_id).rep_id == team["anna"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "marketer", "--rep", "REP"], "only a sales key"),
        (["--role", "sales", "--rep", "rep_nobody"], "no rep"),
    ],
)
def test_the_cli_refuses_a_binding_that_cannot_hold(cli, team, session, args, message):
    args = [a.replace("REP", team["anna"]) for a in args]
    with pytest.raises(Exception, match=f"--rep: .*{message}"):
        cli("keys", "create", *args)
    assert session.exec(select(ApiKey).where(ApiKey.rep_id.is_not(None))).all() == []
