"""Templates never print `None`: a checkout without a recovery URL leaves the button and the
link out (every shipped abandoned-cart template, every locale, html and text); a missing value
renders empty, also in a marketer's own template."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rejse.messaging.render_context import build_context
from rejse.messaging.rendering import Rendered, render, render_part
from rejse.messaging.sandbox import compile_part, engines
from rejse.messaging.template_lookup import resolve
from tests.messaging.conftest import CHECKOUT

LOCALES = ("da", "sv", "en")
EMAILS = ("abandoned_cart/reminder", "abandoned_cart/free_shipping")
# the label of the recovery button and link, per template and locale
LABELS = {
    ("abandoned_cart/reminder", "da"): "Gå til din kurv",
    ("abandoned_cart/reminder", "sv"): "Gå till din varukorg",
    ("abandoned_cart/reminder", "en"): "Return to your basket",
    ("abandoned_cart/free_shipping", "da"): "Gennemfør med fri fragt",
    ("abandoned_cart/free_shipping", "sv"): "Slutför med fri frakt",
    ("abandoned_cart/free_shipping", "en"): "Complete with free shipping",
}
LINKS = {"unsubscribe": "https://rejse.example/u/tok", "preferences": "https://rejse.example/p/tok"}


def checkout(*, url: bool) -> dict[str, Any]:
    trigger = copy.deepcopy(CHECKOUT)
    if not url:
        del trigger["properties"]["abandoned_checkout_url"]
    return trigger


def profile(locale: str, **traits: Any) -> dict[str, Any]:
    return {
        "id": "prf_test",
        "traits": traits,
        "email": "kunde@example.dk",
        "phone": "+4520123456",
        "locale": locale,
        "timezone": "Europe/Copenhagen",
        "user_id": None,
        "lifecycle_stage": None,
        "lead_score": 0.0,
    }


def rendered(channel: str, key: str, locale: str, trigger: dict[str, Any], **traits) -> Rendered:
    context = build_context(
        profile=profile(locale, **traits),
        trigger=trigger,
        journey={"key": "abandoned-cart", "version": 1, "step": "reminder_1"},
        links=LINKS if channel == "email" else {},
        message={"id": "msg_test"},
    )
    return render(resolve(key=key, channel=channel, locale=locale), context)


def printed(out: Rendered) -> list[str]:
    return [part for part in (out.subject, out.html, out.text) if part is not None]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("key", EMAILS)
def test_checkout_without_recovery_url_leaves_button_and_link_out(key, locale):
    out = rendered("email", key, locale, checkout(url=False), first_name="Mette")
    for part in printed(out):
        assert "None" not in part
    assert out.html is not None
    assert out.text is not None
    assert 'href="None"' not in out.html
    assert 'href=""' not in out.html
    assert LABELS[key, locale] not in out.html
    assert LABELS[key, locale] not in out.text
    # the rest of the email is all there
    assert "Regnjakke Aarhus" in out.text
    assert "Regnjakke Aarhus" in out.html
    assert LINKS["unsubscribe"] in out.text


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("key", EMAILS)
def test_checkout_with_recovery_url_keeps_button_and_link(key, locale):
    out = rendered("email", key, locale, checkout(url=True))
    url = CHECKOUT["properties"]["abandoned_checkout_url"]
    assert out.html is not None
    assert out.text is not None
    assert f'href="{url.replace("&", "&amp;")}"' in out.html
    assert LABELS[key, locale] in out.html
    assert f"{LABELS[key, locale]}: {url}" in out.text


@pytest.mark.parametrize("locale", LOCALES)
def test_sms_and_in_app_without_url_or_total_print_no_none(locale):
    trigger = checkout(url=False)
    del trigger["properties"]["total_price"]
    for item in trigger["properties"]["line_items"]:
        del item["price"]
    for channel in ("sms", "in_app"):
        out = rendered(channel, "abandoned_cart/reminder", locale, trigger, first_name=None)
        for part in printed(out):
            assert "None" not in part, (channel, part)
            assert ":  " not in part, (channel, part)  # no label left dangling before a gap


@pytest.mark.parametrize("locale", LOCALES)
def test_lines_without_price_and_a_null_trait_print_no_none(locale):
    trigger = checkout(url=False)
    del trigger["properties"]["total_price"]
    for item in trigger["properties"]["line_items"]:
        del item["price"]
        item["variant_title"] = None
    out = rendered("email", "abandoned_cart/reminder", locale, trigger, first_name=None)
    for part in printed(out):
        assert "None" not in part
    assert out.text is not None
    assert " x  = " not in out.text  # no empty price arithmetic for a line without a price
    assert "Regnjakke Aarhus" in out.text


def test_a_marketers_template_prints_a_missing_value_as_empty():
    eng = engines()
    context = build_context(profile=profile("da"), trigger=checkout(url=False))
    for part in ("text", "html"):
        template = compile_part(eng, part, "[{{ cart.url }}][{{ profile.user_id }}]")
        assert render_part(template, {**context, "locale": "da"}, part=part) == "[][]"
