"""The console's profile pages over HTTP: search by any identifier, the profile page, export
and erase (admin only, after the typed confirmation, CSRF-checked); bad input shows the
field's error on the page."""

from __future__ import annotations

import re

from sqlmodel import Session

from rejse.models.profiles import Profile
from rejse.roles import Role
from tests.console.conftest import csrf_of, sign_in
from tests.console.pages_data import new_profile, phone_of


async def test_search_by_each_identifier_finds_the_profile(console, keys, session: Session):
    pid = new_profile(session)
    phone = phone_of("ida.holm@example.dk")
    await sign_in(console, keys[Role.analyst])
    for query, type_ in (
        ("IDA.HOLM@example.dk", ""),
        ("u-ida.holm", ""),
        (phone[:3] + " " + phone[3:7] + " " + phone[7:], "phone"),
        (pid, ""),
        (pid, "profile_id"),
    ):
        r = await console.get("/console/profiles", params={"q": query, "type": type_})
        assert r.status_code == 303, (query, r.text)
        assert r.headers["location"] == f"/console/profiles/{pid}"
    r = await console.get("/console/profiles", params={"q": "nobody@example.dk"})
    assert r.status_code == 200
    assert "Ingen profil har den identifikator." in r.text


async def test_search_bad_input_names_the_field(console, keys):
    await sign_in(console, keys[Role.marketer])
    r = await console.get("/console/profiles", params={"q": "  "})
    assert r.status_code == 422
    assert 'data-field="q"' in r.text
    r = await console.get("/console/profiles", params={"q": "x" * 300})
    assert r.status_code == 422
    assert 'data-field="q"' in r.text
    r = await console.get("/console/profiles", params={"q": "a", "type": "bogus"})
    assert r.status_code == 422
    assert 'data-field="type"' in r.text
    r = await console.get("/console/profiles", params={"q": "a", "type": "other"})
    assert r.status_code == 422
    assert 'data-field="other"' in r.text
    r = await console.get("/console/profiles/" + "x" * 100)
    assert r.status_code == 404


async def test_profile_page_shows_every_part(console, keys, session: Session):
    pid = new_profile(session, country="DK")
    await sign_in(console, keys[Role.analyst])
    r = await console.get(f"/console/profiles/{pid}")
    assert r.status_code == 200
    for text in (
        "ida.holm@example.dk",
        "u-ida.holm",
        "Holm ApS",
        "granted",
        "signup",
        "Page Viewed /pricing",
        "Kundeværdi",
        "Målgrupper",
        "Tidslinje",
        "Beskeder",
    ):
        assert text in r.text, text
    assert "/erase" not in r.text
    assert "/export" not in r.text


async def test_only_admin_exports_and_erases(console, keys, session: Session):
    pid = new_profile(session)
    csrf = await sign_in(console, keys[Role.marketer])
    assert (await console.get(f"/console/profiles/{pid}/export")).status_code == 403
    assert (await console.get(f"/console/profiles/{pid}/erase")).status_code == 403
    r = await console.post(
        f"/console/profiles/{pid}/erase", data={"csrf_token": csrf, "confirm": pid}
    )
    assert r.status_code == 403
    session.expire_all()
    assert session.get(Profile, pid).erased_at is None


async def test_admin_erases_after_confirmation(console, keys, session: Session):
    pid = new_profile(session)
    await sign_in(console, keys[Role.admin])
    r = await console.get(f"/console/profiles/{pid}/export")
    assert r.status_code == 200
    assert r.json()["profile"]["id"] == pid
    assert "attachment" in r.headers["content-disposition"]
    page = await console.get(f"/console/profiles/{pid}/erase")
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    # without the CSRF token: refused, nothing erased
    r = await console.post(f"/console/profiles/{pid}/erase", data={"confirm": pid})
    assert r.status_code == 403
    # a wrong confirmation: the field's error on the page, nothing erased
    r = await console.post(
        f"/console/profiles/{pid}/erase", data={"csrf_token": csrf, "confirm": "yes"}
    )
    assert r.status_code == 422
    assert re.search(r'data-field="confirm"', r.text)
    session.expire_all()
    assert session.get(Profile, pid).erased_at is None
    r = await console.post(
        f"/console/profiles/{pid}/erase", data={"csrf_token": csrf, "confirm": pid}
    )
    assert r.status_code == 303
    session.expire_all()
    assert session.get(Profile, pid).erased_at is not None
    shown = await console.get(r.headers["location"])
    assert "er slettet" in shown.text
    assert "ida.holm@example.dk" not in shown.text
    again = await console.get(f"/console/profiles/{pid}/erase")
    assert again.status_code == 409
