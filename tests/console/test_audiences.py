"""The audiences pages over HTTP, on both databases: list with sizes, the builder's preview
(htmx fragment and the no-JS form), create and edit with the canvas, members with keyset
paging, the CSV export, delete; bad input at its field; an analyst sees and never changes."""

from __future__ import annotations

import json
import re

from sqlmodel import Session

from rejse.audiences import service
from rejse.roles import Role
from tests.audiences.api_helpers import profile, seed_members
from tests.console.conftest import sign_in

DK = {"trait": "country", "op": "eq", "value": "DK"}


def _post_forms(html: str) -> list[str]:
    actions = re.findall(r'<form method="post" action="([^"]+)"', html)
    return [a for a in actions if a not in ("/console/language", "/console/sign-out")]


def _form(csrf: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf, **fields}


async def test_preview_as_you_type_and_without_javascript(console, keys, engine):
    profile(engine, country="DK", first_name="Ida", email="ida@example.com")
    profile(engine, country="DK", first_name="Bo")
    profile(engine, country="SE", first_name="Sven")
    csrf = await sign_in(console, keys[Role.marketer])
    # htmx: the fragment alone
    r = await console.post(
        "/console/audiences/preview",
        data=_form(csrf, condition=json.dumps(DK)),
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200
    assert 'data-preview-size="2"' in r.text
    assert "ida@example.com" in r.text
    assert "<html" not in r.text
    # a draft that cannot be counted: the message in the fragment (htmx swaps 200s only)
    r = await console.post(
        "/console/audiences/preview",
        data=_form(csrf, condition='{"trait": "country", "op": "sort of"}'),
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200
    assert 'data-field="condition"' in r.text
    # without JavaScript: the whole builder back, with the preview and the form's values
    r = await console.post(
        "/console/audiences/preview",
        data=_form(csrf, key="dk", name="Danes", condition=json.dumps(DK)),
    )
    assert r.status_code == 200
    assert 'data-preview-size="2"' in r.text
    assert 'value="Danes"' in r.text
    r = await console.post("/console/audiences/preview", data=_form(csrf, condition="{nope"))
    assert r.status_code == 422
    assert 'data-field="condition"' in r.text
    with Session(engine) as s:
        assert service.list_audiences(s) == []  # a preview saves nothing


async def test_create_with_canvas_list_page_edit_and_delete(console, keys, engine):
    for name in ("Ida", "Bo"):
        profile(engine, country="DK", first_name=name)
    csrf = await sign_in(console, keys[Role.marketer])
    r = await console.get("/console/audiences/new")
    for name in ("key", "name", "condition", "canvas.facts", "canvas.kind", "canvas.priority"):
        assert f'for="f-{name}"' in r.text, name  # every input has its label
    r = await console.post(
        "/console/audiences/new",
        data=_form(
            csrf,
            key="danes",
            name="Danes",
            condition=json.dumps(DK),
            **{
                "canvas.facts": "Lives in Denmark",
                "canvas.kind": "existing",
                "canvas.market": "b2c",
                "canvas.priority": "2",
            },
        ),
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/console/audiences/danes?saved=1"
    with Session(engine) as s:
        a = service.get_audience(s, "danes")
        assert a.size == 2
        assert a.canvas["facts"] == "Lives in Denmark"
        assert a.canvas["priority"] == 2
    r = await console.get("/console/audiences")
    assert 'data-audience="danes"' in r.text
    assert 'data-size="2"' in r.text
    r = await console.get("/console/audiences/danes?saved=1")
    assert "Lives in Denmark" in r.text
    assert "Målgruppen er gemt." in r.text
    r = await console.get("/console/audiences/danes/edit")
    assert "Lives in Denmark" in r.text
    r = await console.post(
        "/console/audiences/danes/edit",
        data=_form(
            csrf,
            name="Danes",
            condition=json.dumps({"trait": "first_name", "op": "eq", "value": "Bo"}),
        ),
    )
    assert r.status_code == 303
    with Session(engine) as s:
        assert service.get_audience(s, "danes").size == 1
    r = await console.post("/console/audiences/danes/delete", data=_form(csrf))
    assert r.status_code == 303
    with Session(engine) as s:
        assert not service.audience_exists(s, "danes")


async def test_bad_input_is_shown_at_its_field(console, keys, engine):
    csrf = await sign_in(console, keys[Role.marketer])
    cases = [
        ({"key": "Not A Slug", "name": "x", "condition": json.dumps(DK)}, "key", 422),
        ({"key": "ok", "name": "", "condition": json.dumps(DK)}, "name", 422),
        ({"key": "ok", "name": "x", "condition": "{"}, "condition", 422),
        ({"key": "ok", "name": "x", "condition": "[1]"}, "condition", 422),
        ({"key": "ok", "name": "x", "condition": '{"audience": "nope"}'}, "condition", 422),
        ({"key": "ok", "name": "x", "condition": '{"trait": "a", "op": "??"}'}, "condition", 422),
        (
            {"key": "ok", "name": "x", "condition": json.dumps(DK), "canvas.priority": "9"},
            "canvas.priority",
            422,
        ),
        (
            {"key": "ok", "name": "x", "condition": json.dumps(DK), "canvas.kind": "alien"},
            "canvas.kind",
            422,
        ),
    ]
    for fields, field, status in cases:
        r = await console.post("/console/audiences/new", data=_form(csrf, **fields))
        assert r.status_code == status, (fields, r.status_code)
        assert f'id="f-{field}-error"' in r.text, (field, fields)
    await console.post(
        "/console/audiences/new", data=_form(csrf, key="dk", name="x", condition=json.dumps(DK))
    )
    r = await console.post(
        "/console/audiences/new", data=_form(csrf, key="dk", name="x", condition=json.dumps(DK))
    )
    assert r.status_code == 409
    assert 'id="f-key-error"' in r.text
    r = await console.post("/console/audiences/dk/edit", data=_form(csrf, name="x", condition="1"))
    assert r.status_code == 422
    assert 'id="f-condition-error"' in r.text
    r = await console.post(
        "/console/audiences/nope/edit", data=_form(csrf, name="x", condition="{}")
    )
    assert r.status_code == 404
    r = await console.get("/console/audiences/dk/export.csv?identifiers=" + ",".join(["x"] * 20))
    assert r.status_code == 422
    assert "text/html" in r.headers["content-type"]
    with Session(engine) as s:
        assert [a.key for a in service.list_audiences(s)] == ["dk"]  # nothing half-saved


async def test_members_keyset_paging_and_export(console, keys, engine):
    ids = seed_members(engine, "dk", 120)
    await sign_in(console, keys[Role.analyst])
    r = await console.get("/console/audiences/dk")
    assert r.status_code == 200
    shown = re.findall(r'<li><a href="/console/profiles/([^"]+)">', r.text)
    assert shown == ids[:50]
    after = re.search(r'\?after=([^"]+)" rel="next"', r.text).group(1)
    r = await console.get(f"/console/audiences/dk?after={after}")
    assert re.findall(r'<li><a href="/console/profiles/([^"]+)">', r.text) == ids[50:100]
    r = await console.get(f"/console/audiences/dk?after={ids[99]}")
    assert re.findall(r'<li><a href="/console/profiles/([^"]+)">', r.text) == ids[100:]
    assert 'rel="next"' not in r.text
    r = await console.get("/console/audiences/dk/export.csv?identifiers=email&traits=first_name")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert lines[0].startswith("profile_id")
    assert len(lines) == 121


async def test_an_analyst_previews_but_never_changes(console, keys, engine):
    seed_members(engine, "dk", 3)
    csrf = await sign_in(console, keys[Role.analyst])
    for url in ("/console/audiences", "/console/audiences/dk"):
        r = await console.get(url)
        assert r.status_code == 200
        assert _post_forms(r.text) == [], url
        assert "/edit" not in r.text
        assert "/console/audiences/new" not in r.text
    r = await console.post(
        "/console/audiences/preview",
        data=_form(csrf, condition=json.dumps(DK)),
        headers={"HX-Request": "true"},
    )
    assert 'data-preview-size="3"' in r.text
    for url in (
        "/console/audiences/new",
        "/console/audiences/dk/edit",
        "/console/audiences/dk/delete",
    ):
        r = await console.post(url, data=_form(csrf, key="x", name="x", condition="{}"))
        assert r.status_code == 403, url
    with Session(engine) as s:
        assert service.audience_exists(s, "dk")
