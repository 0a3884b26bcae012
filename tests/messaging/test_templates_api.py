"""/api/templates: create, version, get, list, preview; validation errors name field and line."""

from __future__ import annotations

from rejse.roles import Role
from tests.conftest import auth
from tests.messaging.conftest import CHECKOUT, mette
from tests.messaging.test_sandbox import heap_frozen

DRAFT = {
    "key": "winback/come_back",
    "channel": "email",
    "description": "Win-back",
    "variants": {
        "da": {
            "subject": "Vi savner dig, {{ profile.traits.first_name | default('ven') }}",
            "html": "<p>Hej {{ profile.traits.first_name | default('') }}</p>"
            "<p>{{ cart.total | money }}</p>",
        },
        "en": {"subject": "We miss you", "html": "<p>Hi</p>", "text": "Hi"},
    },
}


async def test_create_version_get_list_preview(client, keys, runtime):
    marketer, analyst = auth(keys[Role.marketer]), auth(keys[Role.analyst])
    r = await client.post("/api/templates", json=DRAFT, headers=marketer)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1
    assert r.json()["origin"] == "api"
    assert (await client.post("/api/templates", json=DRAFT, headers=marketer)).status_code == 409
    assert (await client.post("/api/templates", json=DRAFT, headers=analyst)).status_code == 403

    v2 = {**DRAFT, "variants": {"da": {"subject": "Kom tilbage", "html": "<p>v2</p>"}}}
    r = await client.post("/api/templates/winback/come_back/versions", json=v2, headers=marketer)
    assert r.status_code == 201
    assert r.json()["version"] == 2
    r = await client.get("/api/templates/winback/come_back", headers=analyst)
    assert r.json()["version"] == 2
    assert r.json()["variants"]["da"]["subject"] == "Kom tilbage"
    r = await client.get("/api/templates/winback/come_back?version=1", headers=analyst)
    assert r.json()["variants"]["en"]["subject"] == "We miss you"

    r = await client.get("/api/templates", headers=analyst)
    listed = {(t["key"], t["channel"]): t for t in r.json()}
    assert listed[("winback/come_back", "email")]["version"] == 2
    assert listed[("abandoned_cart/reminder", "email")]["origin"] == "file"
    assert listed[("abandoned_cart/reminder", "email")]["locales"] == ["da", "en", "sv"]

    r = await client.get("/api/templates/abandoned_cart/free_shipping", headers=analyst)
    assert r.json()["origin"] == "file"
    assert "{% extends" in r.json()["variants"]["da"]["html"]

    pid = mette(runtime)
    r = await client.post(
        "/api/templates/abandoned_cart/reminder/preview",
        json={"profile_id": pid, "trigger": CHECKOUT},
        headers=analyst,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["locale"] == "da"
    assert body["subject"] == "Mette, din kurv venter stadig på dig"
    assert "Regnjakke Aarhus" in body["text"]
    assert "butik.example.dk" in body["text"]
    r = await client.post(
        "/api/templates/abandoned_cart/reminder/preview", json={"locale": "sv"}, headers=analyst
    )
    assert r.json()["locale"] == "sv"
    assert "varukorg" in r.json()["subject"]
    r = await client.post(
        "/api/templates/x/preview",
        json={"variants": DRAFT["variants"], "locale": "da"},
        headers=analyst,
    )
    assert r.status_code == 200
    assert r.json()["subject"] == "Vi savner dig, Mette"


async def test_api_template_overrides_file_template(client, keys):
    marketer = auth(keys[Role.marketer])
    body = {
        "key": "abandoned_cart/reminder",
        "channel": "email",
        "variants": {"da": {"subject": "Overstyret", "html": "<p>{{ cart.url }}</p>"}},
    }
    assert (await client.post("/api/templates", json=body, headers=marketer)).status_code == 201
    r = await client.post(
        "/api/templates/abandoned_cart/reminder/preview", json={"locale": "da"}, headers=marketer
    )
    assert r.json()["subject"] == "Overstyret"
    assert r.json()["version"] == 1
    r = await client.post(
        "/api/templates/abandoned_cart/reminder/preview", json={"locale": "sv"}, headers=marketer
    )
    assert r.json()["version"] is None
    assert "varukorg" in r.json()["subject"]


async def test_broken_and_unsafe_templates_rejected_with_field_and_line(client, keys):
    marketer = auth(keys[Role.marketer])
    broken = {
        "key": "broken/one",
        "channel": "email",
        "variants": {
            "da": {"subject": "ok", "html": "<p>\n{% for line in cart.lines %}\n{{ line.title }\n"}
        },
    }
    r = await client.post("/api/templates", json=broken, headers=marketer)
    assert r.status_code == 422, r.text
    err = r.json()["errors"][0]
    assert err["field"] == "variants.da.html"
    assert err["message"].startswith("line 3: syntax error")

    unsafe = {
        "key": "broken/two",
        "channel": "email",
        "variants": {"en": {"subject": "{{ ''.__class__.__mro__ }}", "html": "<p>x</p>"}},
    }
    r = await client.post("/api/templates", json=unsafe, headers=marketer)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "variants.en.subject"
    assert "refused by the template sandbox" in r.json()["errors"][0]["message"]

    for bad, field in [
        ({**broken, "key": "Bad Key!"}, "key"),
        ({**broken, "variants": {"fr": {"subject": "a", "html": "b"}}}, "variants.fr"),
        ({**broken, "variants": {"da": {"html": "b"}}}, "variants.da.subject"),
        (
            {**broken, "channel": "sms", "variants": {"da": {"text": "{{ nope }}"}}},
            "variants.da.text",
        ),
    ]:
        r = await client.post("/api/templates", json=bad, headers=marketer)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["field"] == field
    r = await client.get("/api/templates", headers=marketer)
    assert not [t for t in r.json() if t["key"].startswith("broken")]  # nothing half-written
    assert (await client.get("/api/templates/nope/none", headers=marketer)).status_code == 404


async def test_preview_with_odd_trigger_data_never_500(client, keys):
    analyst = auth(keys[Role.analyst])
    odd_triggers = [
        {"properties": [1, 2]},
        {"properties": {"products": "nope", "value": "NaN", "currency": 42}},
        {
            "properties": {
                "line_items": [{"quantity": "Infinity", "price": "1e999999"}, None, 5],
                "total_price": {"x": 1},
                "abandoned_checkout_url": ["a"],
            }
        },
    ]
    for trigger in odd_triggers:
        r = await client.post(
            "/api/templates/abandoned_cart/reminder/preview",
            json={"trigger": trigger, "locale": "da"},
            headers=analyst,
        )
        assert r.status_code in (200, 422), (trigger, r.text)
    r = await client.post("/api/templates/../../etc/passwd/preview", json={}, headers=analyst)
    assert r.status_code == 404
    r = await client.post(
        "/api/templates/x/preview",
        json={"variants": {"da": {"subject": "{{ profile.traits.nope }}", "html": "x"}}},
        headers=analyst,
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "template.subject"


# ----------------------------------------------------------------------------- limits

HUNDRED_MB = (
    "{% set ns = namespace(s='x' * 100000) %}{% for i in range(10) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}<p>{{ ns.s | length }}</p>"
)
CUBIC = (
    "<p>{% for i in range(extra.n) %}{% for j in range(extra.n) %}"
    "{% for k in range(extra.n) %}{{ i }}{% endfor %}{% endfor %}{% endfor %}</p>"
)


async def test_template_building_a_100_mb_string_is_refused_at_save_and_not_stored(client, keys):
    import tracemalloc

    marketer = auth(keys[Role.marketer])
    body = {
        "key": "bomb/concat",
        "channel": "email",
        "variants": {"en": {"subject": "Hi", "html": "<p>Hi</p>\n" + HUNDRED_MB}},
    }
    tracemalloc.start()
    try:
        r = await client.post("/api/templates", json=body, headers=marketer)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "variants.en.html"
    assert error["message"].startswith("line 2: ")
    assert "too large" in error["message"]
    assert peak < 30_000_000, f"{peak:,} bytes allocated"
    r = await client.get("/api/templates/bomb/concat", headers=marketer)
    assert r.status_code == 404


async def test_analyst_preview_with_cubic_extra_loops_ends_quickly_with_422(client, keys):
    import time

    marketer, analyst = auth(keys[Role.marketer]), auth(keys[Role.analyst])
    body = {"key": "bomb/cubic", "variants": {"en": {"subject": "Hi", "html": CUBIC}}}
    r = await client.post("/api/templates", json=body, headers=marketer)
    assert r.status_code == 201, r.text  # the sample data has no extra.n: nothing to stop
    with heap_frozen():
        started = time.monotonic()
        r = await client.post(
            "/api/templates/bomb/cubic/preview", json={"extra": {"n": 300}}, headers=analyst
        )
        elapsed = time.monotonic() - started
    assert r.status_code == 422, r.text[:300]
    assert elapsed < 2, f"preview took {elapsed:.1f} s"
    [error] = r.json()["errors"]
    assert error["field"] == "template.html"
    assert "line 1" in error["message"]
    assert "too much work" in error["message"] or "takes too long" in error["message"]
    # the same draft, unsaved, is stopped the same way
    r = await client.post(
        "/api/templates/bomb/draft/preview",
        json={"variants": body["variants"], "extra": {"n": 300}},
        headers=analyst,
    )
    assert r.status_code == 422, r.text[:300]


async def test_configured_output_cap_applies_to_save_and_preview(client, keys, runtime):
    marketer = auth(keys[Role.marketer])
    runtime.settings.template_max_html_bytes = 8_192
    html = "<p>{% for i in range(100) %}{{ 'x' * 100 }}{% endfor %}</p>"  # 10 KB
    r = await client.post(
        "/api/templates",
        json={"key": "big/html", "variants": {"da": {"subject": "Hej", "html": html}}},
        headers=marketer,
    )
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "variants.da.html"
    assert "html output is over 8,192 bytes" in error["message"]
    runtime.settings.template_max_html_bytes = 16_384
    r = await client.post(
        "/api/templates",
        json={"key": "big/html", "variants": {"da": {"subject": "Hej", "html": html}}},
        headers=marketer,
    )
    assert r.status_code == 201, r.text
    runtime.settings.template_max_html_bytes = 8_192
    r = await client.post("/api/templates/big/html/preview", json={}, headers=marketer)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "template.html"


async def test_send_over_the_limits_fails_for_good_with_its_reason_in_the_log(
    client, keys, runtime
):
    """At send time the message fails permanently (no retry, no hang) and says why."""
    import time

    from sqlmodel import Session

    from rejse.contracts import SendRequest
    from rejse.messaging import template_store
    from rejse.messaging.sender import send_message
    from tests.messaging.conftest import NOON

    loops = CUBIC.replace("extra.n", "trigger.properties.n")
    with Session(runtime.engine) as s:
        template_store.create_template(
            s,
            key="bomb/send",
            channel="email",
            variants={"da": {"subject": "Hej", "html": loops}},
            templates_dir=runtime.settings.templates_dir,
        )
        s.commit()
    pid = mette(runtime)
    request = SendRequest(
        idempotency_key=f"test:{pid}:bomb",
        profile_id=pid,
        channel="email",
        template="bomb/send",
        trigger={"event": "Checkout Started", "properties": {"n": 300}},
    )
    with heap_frozen():
        started = time.monotonic()
        result = send_message(runtime.settings, runtime.engine, request, now=NOON)
        elapsed = time.monotonic() - started
    assert elapsed < 5, f"{elapsed:.1f} s"
    assert result.status == "failed"
    assert result.reason is not None
    assert result.reason.startswith("template_error: html: line 1: ")
    r = await client.get(f"/api/messages?profile_id={pid}", headers=auth(keys[Role.analyst]))
    [logged] = r.json()
    assert logged["status"] == "failed"
    assert logged["reason"] == result.reason
    assert logged["body_html"] is None
