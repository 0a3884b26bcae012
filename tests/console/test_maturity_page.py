"""The console's data-maturity pages over HTTP: the form prefilled from rejse's data, the
result with the 2x2 and the recommendations in Danish and English, and bad input."""

from __future__ import annotations

from sqlmodel import Session

from rejse.models.maturity import MaturityAssessment
from rejse.roles import Role
from tests.console.conftest import csrf_of, sign_in
from tests.console.pages_data import new_profile, recount_maturity_flags

ANSWERS = {
    "readiness.goal_importance": "5",
    "readiness.data_contribution": "4",
    "readiness.expectancy": "5",
    "readiness.structural": "2",
    "readiness.transactional": "1",
    "readiness.activity": "2",
}


def _checked(html: str, name: str) -> str | None:
    for part in html.split(f'name="{name}" value="')[1:]:
        value, rest = part.split('"', 1)
        if rest.lstrip().startswith("checked"):
            return value
    return None


async def test_form_is_prefilled_and_the_result_shows_position_and_advice(
    console, keys, session: Session
):
    new_profile(session, industry="retail")  # structural data on every live profile
    recount_maturity_flags(session)
    await sign_in(console, keys[Role.marketer])
    page = await console.get("/console/maturity")
    assert page.status_code == 200
    assert _checked(page.text, "readiness.structural") == "5"  # 1 of 1 profiles
    assert _checked(page.text, "readiness.transactional") == "1"
    assert _checked(page.text, "readiness.goal_importance") is None  # not data: asked
    r = await console.post(
        "/console/maturity",
        data={"csrf_token": csrf_of(page.text), "company": "Holm ApS", **ANSWERS},
    )
    assert r.status_code == 303
    result = await console.get(r.headers["location"])
    assert result.status_code == 200
    assert "Startposition: Beundrer" in result.text
    assert 'data-testid="chart"' in result.text
    assert 'data-testid="workshop"' in result.text
    assert 'data-testid="way-forward"' in result.text
    row = session.query(MaturityAssessment).one()
    assert row.start_position == "beundrer"
    assert row.company == "Holm ApS"
    await console.post(
        "/console/language", data={"csrf_token": csrf_of(result.text), "language": "en"}
    )
    english = await console.get(r.headers["location"])
    assert "Start position: Admirer" in english.text
    assert 'lang="en"' in english.text


async def test_bad_answers_name_their_fields(console, keys):
    await sign_in(console, keys[Role.marketer])
    page = await console.get("/console/maturity")
    csrf = csrf_of(page.text)
    r = await console.post(
        "/console/maturity",
        data={"csrf_token": csrf, **ANSWERS, "readiness.expectancy": "9", "readiness.activity": ""},
    )
    assert r.status_code == 422
    assert 'data-field="readiness.expectancy"' in r.text
    assert 'data-field="readiness.activity"' in r.text
    r = await console.post(
        "/console/maturity", data={"csrf_token": csrf, **ANSWERS, "progress.collect": "3"}
    )
    assert r.status_code == 422
    assert 'data-field="progress.analyse"' in r.text
    r = await console.post(
        "/console/maturity", data={"csrf_token": csrf, **ANSWERS, "company": "x" * 201}
    )
    assert r.status_code == 422
    assert 'data-field="company"' in r.text
    assert (await console.get("/console/maturity/mat_nope")).status_code == 404


async def test_analyst_reads_but_cannot_assess(console, keys):
    csrf = await sign_in(console, keys[Role.analyst])
    page = await console.get("/console/maturity")
    assert page.status_code == 200
    assert 'type="submit" class="button">' not in page.text.split("<main")[1]
    r = await console.post("/console/maturity", data={"csrf_token": csrf, **ANSWERS})
    assert r.status_code == 403


async def test_the_form_reuses_a_recent_prefill_until_asked_for_a_fresh_one(
    console, keys, session: Session
):
    new_profile(session, industry="retail")
    recount_maturity_flags(session)
    await sign_in(console, keys[Role.analyst])
    page = await console.get("/console/maturity")
    assert _checked(page.text, "readiness.structural") == "5"
    for n in range(3):  # now 1 of 4 profiles has structural data: 25 % -> 2
        new_profile(session, f"p{n}@example.dk")
    recount_maturity_flags(session)
    kept = await console.get("/console/maturity")
    assert _checked(kept.text, "readiness.structural") == "5"  # the one computed before
    assert 'data-testid="computed"' in kept.text
    fresh = await console.get("/console/maturity", params={"fresh": "1"})
    assert _checked(fresh.text, "readiness.structural") == "2"
    again = await console.get("/console/maturity")
    assert _checked(again.text, "readiness.structural") == "2"
    assert (await console.get("/console/maturity", params={"fresh": "2"})).status_code == 422
