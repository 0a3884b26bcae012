"""The journeys pages over HTTP, on both databases: list, journey page with the diagram's
counts, versions, runs; the editor's errors at the step and field they name; publish, pause,
resume, archive; what an analyst sees (no change buttons) and may not post."""

from __future__ import annotations

import json
import re

from sqlmodel import Session

from rejse.journeys import service
from rejse.models.journeys import JourneyRun
from rejse.roles import Role
from tests.console.conftest import csrf_of, sign_in
from tests.journeys.conftest import abandoned_cart, publish

KEY = "abandoned-cart"


def _post_forms(html: str) -> list[str]:
    """The actions of the page's POST forms, less the layout's own (language, sign-out)."""
    actions = re.findall(r'<form method="post" action="([^"]+)"', html)
    return [a for a in actions if a not in ("/console/language", "/console/sign-out")]


async def test_list_and_journey_page_with_live_counts(console, keys, runtime):
    publish(runtime, abandoned_cart())
    with Session(runtime.engine) as s:
        s.add(
            JourneyRun(
                id="run-1",
                workflow_id="journey:abandoned-cart:p-1",
                journey_key=KEY,
                profile_id="p-1",
                trigger_event_id="ev-1",
                version=1,
                status="running",
                current_step="wait_1d",
            )
        )
        s.commit()
    await sign_in(console, keys[Role.marketer])
    r = await console.get("/console/journeys")
    assert r.status_code == 200
    assert f'data-journey="{KEY}"' in r.text
    assert "udgivet" in r.text  # the status, in Danish
    r = await console.get(f"/console/journeys/{KEY}")
    assert r.status_code == 200
    for step in ("wait_1d", "reminder_1", "wait_2d", "reminder_2"):
        assert f'data-step="{step}"' in r.text
    assert 'href="/console/profiles/p-1"' in r.text  # who is where, linked to the profile
    assert "Checkout Started" in r.text
    assert "Order Completed" in r.text
    assert f"/console/journeys/{KEY}/pause" in _post_forms(r.text)
    # the diagram alone, as htmx asks for it every 5 s
    r = await console.get(
        f"/console/journeys/{KEY}", headers={"HX-Request": "true", "HX-Target": "diagram"}
    )
    assert r.text.count('id="diagram"') == 1
    assert "<html" not in r.text


async def test_the_editor_shows_errors_at_their_step_and_field(console, keys, runtime):
    publish(runtime, abandoned_cart())
    csrf = await sign_in(console, keys[Role.marketer])
    bad = abandoned_cart()
    bad["steps"]["wait_1d"]["for"] = "soon"
    bad["steps"]["reminder_1"]["next"] = "nowhere"
    bad["start"] = "nope"
    r = await console.post(
        f"/console/journeys/{KEY}/edit",
        data={"csrf_token": csrf, "definition": json.dumps(bad)},
    )
    assert r.status_code == 422
    assert 'data-field="steps.wait_1d.for"' in r.text
    assert 'data-field="steps.reminder_1.next"' in r.text
    assert 'data-field="start"' in r.text
    assert re.search(r'data-step="wait_1d">.*?ISO-8601', r.text, re.S)
    assert 'id="f-definition-error"' in r.text  # and at the field itself
    assert "soon" in r.text  # the text stays in the editor
    # not JSON at all
    r = await console.post(
        f"/console/journeys/{KEY}/edit", data={"csrf_token": csrf, "definition": '{"key": '}
    )
    assert r.status_code == 422
    assert "linje 1" in r.text
    r = await console.post("/console/journeys/new", data={"csrf_token": csrf, "definition": "[]"})
    assert r.status_code == 422
    assert 'id="f-definition-error"' in r.text
    r = await console.post("/console/journeys/new", data={"csrf_token": csrf, "definition": ""})
    assert r.status_code == 422
    # an existing key
    r = await console.post(
        "/console/journeys/new",
        data={"csrf_token": csrf, "definition": json.dumps(abandoned_cart())},
    )
    assert r.status_code == 422
    assert 'id="f-definition-error"' in r.text
    with Session(runtime.engine) as s:
        assert service.get_journey(s, key=KEY).latest_version == 1  # nothing saved


async def test_create_edit_publish_pause_resume_archive(console, keys, runtime):
    csrf = await sign_in(console, keys[Role.marketer])
    r = await console.get("/console/journeys/new")
    assert r.status_code == 200
    assert 'for="f-definition"' in r.text
    r = await console.post(
        "/console/journeys/new",
        data={"csrf_token": csrf, "definition": json.dumps(abandoned_cart())},
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/journeys/{KEY}?saved=1"
    page = await console.get(r.headers["location"])
    assert "Version 1 er gemt som kladde." in page.text
    assert "kladde" in page.text
    edited = abandoned_cart()
    edited["name"] = "Forladt kurv"
    r = await console.get(f"/console/journeys/{KEY}/edit")
    assert "checkout_id" in r.text
    r = await console.post(
        f"/console/journeys/{KEY}/edit",
        data={"csrf_token": csrf, "definition": json.dumps(edited)},
    )
    assert r.headers["location"] == f"/console/journeys/{KEY}?saved=2"
    r = await console.post(f"/console/journeys/{KEY}/publish", data={"csrf_token": csrf})
    assert r.status_code == 303
    with Session(runtime.engine) as s:
        j = service.get_journey(s, key=KEY)
        assert (j.status, j.published_version) == ("published", 2)
    r = await console.post(
        f"/console/journeys/{KEY}/publish", data={"csrf_token": csrf, "version": "1"}
    )
    assert r.status_code == 303
    r = await console.post(
        f"/console/journeys/{KEY}/publish", data={"csrf_token": csrf, "version": "x"}
    )
    assert r.status_code == 422
    assert 'data-field="version"' in r.text
    for action, status in (("pause", "paused"), ("resume", "published"), ("archive", "archived")):
        r = await console.post(f"/console/journeys/{KEY}/{action}", data={"csrf_token": csrf})
        assert r.status_code == 303, (action, r.text)
        with Session(runtime.engine) as s:
            assert service.get_journey(s, key=KEY).status == status
    page = await console.get(f"/console/journeys/{KEY}")
    assert _post_forms(page.text) == []  # archived: nothing left to change
    r = await console.post(f"/console/journeys/{KEY}/resume", data={"csrf_token": csrf})
    assert r.status_code == 409
    assert "text/html" in r.headers["content-type"]


async def test_an_analyst_sees_no_change_button_and_may_not_post(console, keys, runtime):
    publish(runtime, abandoned_cart())
    csrf = await sign_in(console, keys[Role.analyst])
    for url in ("/console/journeys", f"/console/journeys/{KEY}"):
        r = await console.get(url)
        assert r.status_code == 200
        assert _post_forms(r.text) == [], url
        assert "/edit" not in r.text
        assert "/console/journeys/new" not in r.text
    for action in ("pause", "archive", "publish", "edit"):
        r = await console.post(f"/console/journeys/{KEY}/{action}", data={"csrf_token": csrf})
        assert r.status_code == 403
    assert (await console.get("/console/journeys/new")).status_code == 403
    with Session(runtime.engine) as s:
        assert service.get_journey(s, key=KEY).status == "published"


async def test_bad_query_and_unknown_journey_are_pages(console, keys, runtime):
    publish(runtime, abandoned_cart())
    csrf = await sign_in(console, keys[Role.marketer])
    r = await console.get(f"/console/journeys/{KEY}?status=sleeping")
    assert r.status_code == 422
    assert 'data-field="status"' in r.text
    r = await console.get(f"/console/journeys/{KEY}?version=99")
    assert r.status_code == 404
    r = await console.get(f"/console/journeys/{KEY}?offset=-1")
    assert r.status_code == 422
    assert 'data-field="offset"' in r.text
    r = await console.get("/console/journeys/nope")
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"]
    r = await console.post("/console/journeys/nope/pause", data={"csrf_token": csrf})
    assert r.status_code == 404
    r = await console.post(f"/console/journeys/{KEY}/explode", data={"csrf_token": csrf})
    assert r.status_code == 422
    assert csrf_of((await console.get("/console/journeys")).text)
