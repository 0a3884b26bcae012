"""The console's template pages over HTTP: the list, a preview per locale with the sample
data or a chosen profile, the sandboxed HTML frame, and the edit form that saves a version or
shows a refused source's error at its line."""

from __future__ import annotations

from sqlmodel import Session

from rejse.models.messaging import MessageTemplate
from rejse.roles import Role
from tests.console.conftest import csrf_of, sign_in
from tests.console.pages_data import new_profile

KEY = "abandoned_cart/reminder"


async def test_list_and_preview_per_locale(console, keys, session: Session):
    pid = new_profile(session, first_name="Karen")
    await sign_in(console, keys[Role.analyst])
    r = await console.get("/console/templates")
    assert r.status_code == 200
    assert KEY in r.text
    subjects = {}
    for loc in ("da", "sv", "en"):
        r = await console.get("/console/templates/view", params={"key": KEY, "locale": loc})
        assert r.status_code == 200, r.text
        assert "frame-src 'self'" in r.headers["content-security-policy"]
        subjects[loc] = r.text.split('data-testid="subject">')[1].split("<")[0]
    assert len(set(subjects.values())) == 3  # three languages
    r = await console.get(
        "/console/templates/view",
        params={"key": KEY, "locale": "da", "profile": "ida.holm@example.dk"},
    )
    assert r.status_code == 200
    assert "Karen" in r.text
    r = await console.get("/console/templates/view", params={"key": KEY, "profile": pid})
    assert "Karen" in r.text
    frame = await console.get("/console/templates/frame", params={"key": KEY, "profile": pid})
    assert frame.status_code == 200
    assert "Karen" in frame.text
    assert "sandbox" in frame.headers["content-security-policy"]
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"
    assert "/edit" not in r.text  # analyst: nothing to change


async def test_preview_bad_input(console, keys):
    await sign_in(console, keys[Role.marketer])
    r = await console.get("/console/templates/view", params={"key": KEY, "profile": "nobody@x.dk"})
    assert r.status_code == 422
    assert 'data-field="profile"' in r.text
    r = await console.get("/console/templates/view", params={"key": KEY, "locale": "de"})
    assert r.status_code == 422
    assert "locale" in r.text
    r = await console.get("/console/templates/view", params={"key": KEY, "channel": "fax"})
    assert r.status_code == 422
    r = await console.get("/console/templates/view", params={"key": "no/such"})
    assert r.status_code == 404
    r = await console.get("/console/templates/view")
    assert r.status_code == 422
    assert "key" in r.text


async def test_edit_saves_a_version_or_shows_the_error_at_its_line(console, keys, session):
    await sign_in(console, keys[Role.marketer])
    page = await console.get("/console/templates/edit", params={"key": KEY})
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    url = "/console/templates/edit?key=abandoned_cart%2Freminder&channel=email"
    bad = "<p>Hej</p>\n<p>{{ profile.first_name }</p>\n"
    form = {
        "csrf_token": csrf,
        "variants.da.subject": "Din kurv",
        "variants.da.html": bad,
    }
    r = await console.post(url, data=form)
    assert r.status_code == 422
    assert 'data-field="variants.da.html"' in r.text
    assert "line 2" in r.text
    assert 'data-line="2"' in r.text  # the source listing marks line 2
    assert bad.split("\n")[1].replace("<", "&lt;").replace(">", "&gt;") in r.text
    assert session.query(MessageTemplate).count() == 0
    r = await console.post(url, data={**form, "description": "x" * 501})
    assert r.status_code == 422
    assert 'data-field="description"' in r.text
    r = await console.post(url, data={"csrf_token": csrf})
    assert r.status_code == 422
    assert 'data-field="variants.da.subject"' in r.text
    r = await console.post(
        url, data={**form, "variants.da.html": "<p>Hej {{ profile.first_name }}</p>"}
    )
    assert r.status_code == 303
    shown = await console.get(r.headers["location"])
    assert "Version 1 er gemt." in shown.text
    assert session.query(MessageTemplate).count() == 1


async def test_analyst_cannot_edit(console, keys):
    csrf = await sign_in(console, keys[Role.analyst])
    assert (await console.get("/console/templates/edit", params={"key": KEY})).status_code == 403
    r = await console.post(
        "/console/templates/edit?key=abandoned_cart%2Freminder",
        data={"csrf_token": csrf, "variants.da.subject": "x", "variants.da.html": "y"},
    )
    assert r.status_code == 403
