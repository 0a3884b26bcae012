"""console-b's pages in a real browser (Playwright driving /usr/bin/chromium): find a profile
by email and erase it (admin, with the confirmation; an analyst finds no erase), a rep records
an outcome and the lead leaves the list, the manager page's figures, a template preview per
locale and an edit whose syntax error is shown at its line, the maturity form prefilled and
its result; bad input on each form shows the field's error. Every page is photographed to
test-artefacts/console/."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from rejse.models.profiles import Profile
from rejse.roles import Role
from tests.console.conftest import browser_sign_in, screenshot
from tests.console.pages_data import (
    new_lead,
    new_profile,
    new_rep,
    recount_maturity_flags,
    rep_key,
)

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def _field_error(page, name: str) -> str:
    return await page.locator(f'.field-error[data-field="{name}"]').inner_text()


async def test_admin_finds_a_profile_by_email_and_erases_it(page, keys, session: Session):
    pid = new_profile(session)
    await browser_sign_in(page, keys[Role.admin])
    await page.goto("/console/profiles")
    await page.get_by_label("Identifikator").fill("")
    await page.get_by_role("button", name="Søg").click()  # the browser's own check: required
    await page.get_by_label("Identifikator").fill("x" * 300)
    await page.get_by_role("button", name="Søg").click()
    assert "Højst 255 tegn." in await _field_error(page, "q")
    await page.get_by_label("Identifikator").fill("ida.holm@example.dk")
    await page.get_by_role("button", name="Søg").click()
    await page.wait_for_url(f"**/console/profiles/{pid}")
    assert "ida.holm@example.dk" in await page.get_by_test_id("identifiers").inner_text()
    await screenshot(page, "profile")
    await page.get_by_role("link", name="Slet profilen…").click()
    await page.wait_for_url(f"**/console/profiles/{pid}/erase")
    await page.get_by_label(f"Skriv profilens id ({pid}) for at bekræfte").fill("slet")
    await page.get_by_role("button", name="Slet for altid").click()
    assert "Skriv profilens id præcis som vist." in await _field_error(page, "confirm")
    await screenshot(page, "profile-erase-confirm")
    session.expire_all()
    assert session.get(Profile, pid).erased_at is None
    await page.get_by_label(f"Skriv profilens id ({pid}) for at bekræfte").fill(pid)
    await page.get_by_role("button", name="Slet for altid").click()
    await page.wait_for_url(f"**/console/profiles/{pid}?notice=erased*")
    assert await page.get_by_test_id("erased").inner_text() == f"Profil {pid} er slettet."
    await screenshot(page, "profile-erased")
    session.expire_all()
    assert session.get(Profile, pid).erased_at is not None


async def test_analyst_sees_no_erase(page, keys, session: Session):
    pid = new_profile(session)
    await browser_sign_in(page, keys[Role.analyst])
    await page.goto("/console/profiles")
    await screenshot(page, "profiles-search")
    await page.get_by_label("Identifikator").fill("ida.holm@example.dk")
    await page.get_by_role("button", name="Søg").click()
    await page.wait_for_url(f"**/console/profiles/{pid}")
    assert await page.get_by_role("link", name="Slet profilen…").count() == 0
    assert await page.get_by_role("link", name="Eksportér (JSON)").count() == 0
    await page.goto(f"/console/profiles/{pid}/erase")
    assert await page.get_by_text("Din rolle må ikke dette.").is_visible()


async def test_rep_records_an_outcome_and_the_manager_sees_the_figures(
    page, keys, runtime, session
):
    anna = new_rep(session, "Anna")
    pid = new_profile(session, "jens@example.dk", first_name="Jens")
    other = new_profile(session, "ole@example.dk", first_name="Ole")
    lead = new_lead(session, pid, anna, 1, hours_left=-2)
    kept = new_lead(session, other, anna, 2)
    await browser_sign_in(page, rep_key(runtime, anna))
    await page.goto("/console/sales")
    rows = page.get_by_test_id("next-list")
    assert "jens@example.dk" in await rows.inner_text()
    assert "SLA overdue" in await rows.inner_text()
    await screenshot(page, "sales-list")
    await page.locator(f'tr[data-lead="{lead}"] a').first.click()
    await page.wait_for_url(f"**/console/sales/leads/{lead}")
    await page.get_by_label("Årsag (kun tabt / ikke relevant)").select_option("price")
    await page.get_by_role("button", name="Vundet").click()  # a reason with "won": refused
    assert "En årsag hører kun til" in await _field_error(page, "reason")
    await screenshot(page, "sales-lead")
    await page.get_by_label("Årsag (kun tabt / ikke relevant)").select_option("")
    await page.get_by_label("Note (valgfri)").fill("Ringet op, møde fredag")
    await page.get_by_role("button", name="Møde aftalt").click()
    await page.wait_for_url("**/console/sales?done=*")
    assert await page.get_by_test_id("recorded").is_visible()
    assert await page.locator(f'tr[data-lead="{lead}"]').count() == 0
    assert await page.locator(f'tr[data-lead="{kept}"]').count() == 1
    await page.goto("/console/sales/team")
    figures = page.locator(f'[data-testid="rep-figures"] tr[data-rep="{anna}"] td')
    assert await figures.nth(0).inner_text() == "2"  # AQLs
    assert await page.get_by_test_id("uncalled-total").inner_text() == "1 i alt, 0 over frist."
    await page.get_by_label("Fra (dato)").fill("i går")
    await page.get_by_role("button", name="Vis").click()
    assert "Skriv en dato som 2026-11-30." in await _field_error(page, "from")
    await screenshot(page, "sales-team")


async def test_template_preview_per_locale_and_an_edit_with_a_syntax_error(page, keys, session):
    new_profile(session, first_name="Karen")
    await browser_sign_in(page, keys[Role.marketer])
    await page.goto("/console/templates")
    await screenshot(page, "templates")
    await page.get_by_role("link", name="abandoned_cart/reminder").first.click()
    subjects = {}
    for name, loc in (("Dansk", "da"), ("Svensk", "sv"), ("Engelsk", "en")):
        await page.get_by_role("link", name=name, exact=True).click()
        await page.wait_for_url(f"**locale={loc}*")
        subjects[loc] = await page.get_by_test_id("subject").inner_text()
    assert len(set(subjects.values())) == 3
    await page.get_by_label("Profil (id eller e-mail)").fill("nobody@example.dk")
    await page.get_by_role("button", name="Vis").click()
    assert "Ingen profil" in await _field_error(page, "profile")
    await page.get_by_label("Profil (id eller e-mail)").fill("ida.holm@example.dk")
    await page.get_by_role("button", name="Vis").click()
    frame = page.frame_locator("iframe.preview")
    assert "Karen" in await frame.locator("body").inner_text()
    await screenshot(page, "template-preview")
    await page.get_by_role("link", name="Redigér (ny version)").click()
    html = page.locator('textarea[name="variants.da.html"]')
    await html.fill("<p>Hej</p>\n<p>{% if profile.first_name %}Hej igen</p>\n")
    await page.get_by_role("button", name="Gem").click()
    assert "line 2" in await _field_error(page, "variants.da.html")
    marked = page.locator('[data-testid="source"] li.error-line')
    assert await marked.get_attribute("data-line") == "2"
    await screenshot(page, "template-edit-error")


async def test_maturity_form_prefilled_submitted_and_the_result(page, keys, session):
    new_profile(session, industry="retail")
    recount_maturity_flags(session)
    await browser_sign_in(page, keys[Role.marketer])
    await page.goto("/console/maturity")
    assert await page.locator('input[name="readiness.structural"][value="5"]').is_checked()
    await screenshot(page, "maturity-form")
    answers = (
        ("goal_importance", "5"),
        ("data_contribution", "4"),
        ("expectancy", "4"),
        ("transactional", "4"),  # the marketer knows better than the suggestion
        ("activity", "4"),
    )
    for name, value in answers:
        await page.locator(f'input[name="readiness.{name}"][value="{value}"]').check()
    await page.locator('input[name="progress.collect"][value="3"]').check()  # one of four: refused
    await page.get_by_role("button", name="Vurdér").click()
    assert "Besvar alle fire" in await _field_error(page, "progress.analyse")
    for name in ("collect", "analyse", "permission", "success"):
        await page.locator(f'input[name="progress.{name}"][value="4"]').check()
    await page.get_by_role("button", name="Vurdér").click()
    await page.wait_for_url("**/console/maturity/mat_*")
    assert await page.get_by_test_id("position").inner_text() == "Startposition: Bevæger"
    assert await page.get_by_test_id("chart").is_visible()
    assert await page.get_by_test_id("workshop").count() >= 1
    await screenshot(page, "maturity-result")
