"""The console's sales pages over HTTP: a rep-bound key sees its own list and leads, an
outcome takes the lead off the list, the manager page's figures, and bad input on every form
gives the field's error on the page."""

from __future__ import annotations

from sqlmodel import Session

from rejse.models.leads import Lead
from rejse.roles import Role
from tests.console.conftest import csrf_of, sign_in
from tests.console.pages_data import new_lead, new_profile, new_rep, rep_key


def _setup(session: Session, runtime):
    anna, bo = new_rep(session, "Anna"), new_rep(session, "Bo")
    p1 = new_profile(session, "ida@example.dk")
    p2 = new_profile(session, "jens@example.dk", first_name="Jens")
    p3 = new_profile(session, "ole@example.dk", first_name="Ole")
    l1 = new_lead(session, p1, anna, 1)
    l2 = new_lead(session, p2, anna, 2, hours_left=-3)  # overdue: first in the list
    l3 = new_lead(session, p3, bo, 3)
    return anna, bo, (l1, l2, l3), rep_key(runtime, anna)


async def test_rep_records_an_outcome_and_the_lead_leaves_the_list(console, runtime, session):
    anna, bo, (l1, l2, l3), key = _setup(session, runtime)
    await sign_in(console, key)
    r = await console.get("/console/sales")
    assert r.status_code == 200
    assert l1 in r.text
    assert l2 in r.text
    assert l3 not in r.text
    assert r.text.index(l2) < r.text.index(l1)  # overdue first
    assert "SLA overdue" in r.text
    assert "jens@example.dk" in r.text
    assert (await console.get(f"/console/sales/leads/{l3}")).status_code == 404  # Bo's
    page = await console.get(f"/console/sales/leads/{l2}")
    assert page.status_code == 200
    assert "reached AQL" in page.text
    csrf = csrf_of(page.text)
    r = await console.post(
        f"/console/sales/leads/{l2}/outcome",
        data={"csrf_token": csrf, "outcome": "meeting", "note": "call on Monday"},
    )
    assert r.status_code == 303
    listing = await console.get(r.headers["location"])
    assert 'data-lead="' + l2 not in listing.text
    assert 'data-lead="' + l1 in listing.text
    assert "Møde aftalt" in listing.text
    session.expire_all()
    assert session.get(Lead, l2).status == "meeting"


async def test_outcome_bad_input_names_the_field(console, runtime, session):
    _, _, (l1, _, _), key = _setup(session, runtime)
    csrf = await sign_in(console, key)
    url = f"/console/sales/leads/{l1}/outcome"
    r = await console.post(url, data={"csrf_token": csrf, "outcome": "maybe"})
    assert r.status_code == 422
    assert 'data-field="outcome"' in r.text
    r = await console.post(url, data={"csrf_token": csrf, "outcome": "won", "reason": "price"})
    assert r.status_code == 422
    assert 'data-field="reason"' in r.text
    r = await console.post(url, data={"csrf_token": csrf, "outcome": "lost", "reason": "nope"})
    assert r.status_code == 422
    assert 'data-field="reason"' in r.text
    r = await console.post(url, data={"csrf_token": csrf, "outcome": "lost", "note": "x" * 1001})
    assert r.status_code == 422
    assert 'data-field="note"' in r.text
    r = await console.post(url, data={"outcome": "won"})  # no CSRF token
    assert r.status_code == 403
    session.expire_all()
    assert session.get(Lead, l1).status == "assigned"


async def test_manager_picks_the_rep_and_sees_the_team(console, runtime, session, keys):
    anna, bo, (l1, l2, l3), _ = _setup(session, runtime)
    await sign_in(console, keys[Role.sales])  # unbound: a manager
    r = await console.get("/console/sales")
    assert all(lead in r.text for lead in (l1, l2, l3))
    r = await console.get("/console/sales", params={"rep": bo})
    assert l3 in r.text
    assert l1 not in r.text
    r = await console.get("/console/sales", params={"rep": "rep_nobody"})
    assert r.status_code == 422
    assert 'data-field="rep"' in r.text
    team = await console.get("/console/sales/team")
    assert team.status_code == 200
    assert f'data-rep="{anna}"' in team.text
    assert f'data-rep="{bo}"' in team.text
    assert "3 i alt, 1 over frist." in team.text  # the AQLs nobody called
    for params, field in (
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-11-10", "to": "2026-11-01"}, "to"),
        ({"rep": "rep_nobody"}, "rep"),
    ):
        r = await console.get("/console/sales/team", params=params)
        assert r.status_code == 422, params
        assert f'data-field="{field}"' in r.text, params


async def test_bound_rep_sees_only_its_own_figures(console, runtime, session):
    anna, bo, _, key = _setup(session, runtime)
    await sign_in(console, key)
    team = await console.get("/console/sales/team", params={"rep": bo})
    assert f'data-rep="{anna}"' in team.text
    assert f'data-rep="{bo}"' not in team.text


async def test_roles_of_the_sales_pages(console, keys, runtime, session):
    _setup(session, runtime)
    await sign_in(console, keys[Role.marketer])
    assert (await console.get("/console/sales")).status_code == 403
    assert (await console.get("/console/sales/team")).status_code == 200  # figures: read roles
