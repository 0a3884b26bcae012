"""Shopify and generic webhooks: signatures, dedupe, topic mapping."""

import json
import time

import pytest
import sqlalchemy as sa
from sqlmodel import select

from rejse.events.processor import EventProcessor
from rejse.events.webhooks import sign_shopify
from rejse.models.events import Event
from rejse.profiles.service import find_by_identifier, load_snapshot
from rejse.roles import Role
from rejse.signatures import sign, verify
from tests.conftest import auth
from tests.events.helpers import EXAMPLES

SECRET = "shop-secret-0123456789abcdef"


def count(session) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(Event))


@pytest.fixture
async def shop(client, keys):
    r = await client.post(
        "/api/webhook-sources",
        json={"kind": "shopify", "name": "butik.myshopify.com", "secret": SECRET},
        headers=auth(keys[Role.admin]),
    )
    assert r.status_code == 201, r.text
    return r.json()


def shopify_headers(body: bytes, topic: str, webhook_id: str, secret: str = SECRET) -> dict:
    return {
        "X-Shopify-Hmac-Sha256": sign_shopify(body, secret),
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Shop-Domain": "butik.myshopify.com",
        "Content-Type": "application/json",
    }


async def test_signed_shopify_payloads_are_accepted_and_mapped(client, shop, runtime, session):
    checkout = (EXAMPLES / "shopify_checkouts_create.json").read_bytes()
    order = (EXAMPLES / "shopify_orders_create.json").read_bytes()
    r = await client.post(
        "/webhooks/shopify",
        content=checkout,
        headers=shopify_headers(checkout, "checkouts/create", "wh-1"),
    )
    assert r.status_code == 202
    assert r.json() == {"accepted": 2, "duplicates": 0}  # the buyer's names + the checkout
    r = await client.post(
        "/webhooks/shopify", content=order, headers=shopify_headers(order, "orders/create", "wh-2")
    )
    assert r.status_code == 202
    assert r.json()["accepted"] == 1
    names, started, completed = session.exec(
        select(Event).order_by(Event.received_at, Event.type)
    ).all()
    assert names.type == "identify"
    assert names.traits == {
        "email": "mette.hansen@example.dk",
        "phone": "+4520123456",
        "first_name": "Mette",
        "last_name": "Hansen",
    }
    assert started.event == "Checkout Started"
    assert completed.event == "Order Completed"
    token = "7c1b2d0f9a4e4f6b8c3d2e1f0a9b8c7d"
    assert started.properties["checkout_id"] == token == completed.properties["checkout_id"]
    assert started.properties["abandoned_checkout_url"].startswith(
        "https://butik.example.dk/checkouts/"
    )
    assert started.properties["value"] == 1249.0
    assert started.properties["currency"] == "DKK"
    assert [p["sku"] for p in started.properties["products"]] == ["RJ-AAR-M-NV", "US-3P-3942"]
    await EventProcessor(runtime, subscribers=[], dispatchers=[]).drain()
    pid = find_by_identifier(session, type="email", value="mette.hansen@example.dk")
    assert pid == find_by_identifier(session, type="shopify_customer_id", value="7012345678901")
    snap = load_snapshot(session, profile_id=pid)
    assert snap.consents == {"email": "granted"}
    assert snap.locale == "da-DK"
    assert snap.traits["first_name"] == "Mette"
    assert snap.traits["last_name"] == "Hansen"


async def test_a_guest_checkout_takes_the_names_of_its_billing_address(
    client, shop, runtime, session
):
    guest = json.loads((EXAMPLES / "shopify_checkouts_create.json").read_bytes())
    del guest["customer"]
    guest.update(
        email="anna.berg@example.se",
        token="guest-token-1",
        cart_token="guest-cart-1",
        billing_address={"first_name": " Anna ", "last_name": "Berg", "city": "Malmö"},
    )
    nameless = {**guest, "email": "nobody@example.se", "token": "t2", "cart_token": "c2"}
    nameless["billing_address"] = {"first_name": "", "last_name": None, "city": "Lund"}
    for n, payload in enumerate((guest, nameless)):
        body = json.dumps(payload).encode()
        r = await client.post(
            "/webhooks/shopify",
            content=body,
            headers=shopify_headers(body, "checkouts/create", f"wh-guest-{n}"),
        )
        assert r.status_code == 202, r.text
    # a checkout without any name stays one event
    assert r.json() == {"accepted": 1, "duplicates": 0}
    await EventProcessor(runtime, subscribers=[], dispatchers=[]).drain()
    anna = find_by_identifier(session, type="email", value="anna.berg@example.se")
    traits = load_snapshot(session, profile_id=anna).traits
    assert traits["first_name"] == "Anna"
    assert traits["last_name"] == "Berg"
    nobody = find_by_identifier(session, type="email", value="nobody@example.se")
    assert "first_name" not in load_snapshot(session, profile_id=nobody).traits


@pytest.mark.parametrize("case", ["tampered", "wrong_secret", "missing_header"])
async def test_bad_shopify_signature_is_401_and_stores_nothing(client, shop, session, case):
    body = (EXAMPLES / "shopify_checkouts_create.json").read_bytes()
    headers = shopify_headers(
        body, "checkouts/create", "wh-1", secret="wrong" if case == "wrong_secret" else SECRET
    )
    if case == "tampered":
        body = body.replace(b"1249.00", b"1.00")
    if case == "missing_header":
        del headers["X-Shopify-Hmac-Sha256"]
    r = await client.post("/webhooks/shopify", content=body, headers=headers)
    assert r.status_code == 401
    assert count(session) == 0


async def test_same_webhook_id_three_times_is_stored_once(client, shop, session):
    body = (EXAMPLES / "shopify_checkouts_create.json").read_bytes()
    answers = []
    for _ in range(3):
        r = await client.post(
            "/webhooks/shopify",
            content=body,
            headers=shopify_headers(body, "checkouts/update", "wh-same"),
        )
        answers.append(r.json())
    assert answers == [{"accepted": 2, "duplicates": 0}] + [{"accepted": 0, "duplicates": 2}] * 2
    assert count(session) == 2


async def test_secret_from_environment(client, session, monkeypatch):
    monkeypatch.setenv("REJSE_SHOPIFY_SECRET", "env-secret-abcdefghijklmnop")
    body = (EXAMPLES / "shopify_orders_create.json").read_bytes()
    r = await client.post(
        "/webhooks/shopify",
        content=body,
        headers=shopify_headers(
            body, "orders/create", "wh-env", secret="env-secret-abcdefghijklmnop"
        ),
    )
    assert r.status_code == 202
    assert count(session) == 1


async def test_unknown_topic_is_acknowledged_and_ignored(client, shop, session):
    body = b'{"id": 1}'
    r = await client.post(
        "/webhooks/shopify", content=body, headers=shopify_headers(body, "products/update", "wh-x")
    )
    assert r.status_code == 202
    assert count(session) == 0


async def test_sources_secret_is_shown_once(client, keys, shop):
    assert shop["secret"] == SECRET
    listed = (await client.get("/api/webhook-sources", headers=auth(keys[Role.admin]))).json()
    assert SECRET not in json.dumps(listed)
    r = await client.post(
        "/api/webhook-sources",
        json={"kind": "generic", "name": "crm"},
        headers=auth(keys[Role.admin]),
    )
    assert len(r.json()["secret"]) >= 32
    r = await client.delete(f"/api/webhook-sources/{shop['id']}", headers=auth(keys[Role.admin]))
    assert r.json()["disabled_at"] is not None


async def test_generic_webhook_signature_rotation_and_tolerance(client, keys, session):
    r = await client.post(
        "/api/webhook-sources",
        json={"kind": "generic", "name": "pos"},
        headers=auth(keys[Role.admin]),
    )
    secret = r.json()["secret"]
    body = json.dumps(
        {"type": "track", "userId": "u-1", "event": "Store Visit", "messageId": "pos-1"}
    ).encode()
    old = sign("old-secret-rotated-away-123", body)
    new_v1 = sign(secret, body).split(",")[1]
    r = await client.post(
        "/webhooks/generic/pos", content=body, headers={"X-Rejse-Signature": f"{old},{new_v1}"}
    )
    assert r.status_code == 202
    assert r.json() == {"accepted": 1, "duplicates": 0}
    stale = sign(secret, body, timestamp=int(time.time()) - 301)
    r = await client.post(
        "/webhooks/generic/pos", content=body, headers={"X-Rejse-Signature": stale}
    )
    assert r.status_code == 401
    r = await client.post(
        "/webhooks/generic/pos",
        content=body + b" ",
        headers={"X-Rejse-Signature": sign(secret, body)},
    )
    assert r.status_code == 401
    r = await client.post(
        "/webhooks/generic/unknown", content=body, headers={"X-Rejse-Signature": sign(secret, body)}
    )
    assert r.status_code == 401
    batch = json.dumps({"batch": [{"type": "identify", "userId": "u-2"}]}).encode()
    r = await client.post(
        "/webhooks/generic/pos", content=batch, headers={"X-Rejse-Signature": sign(secret, batch)}
    )
    assert r.status_code == 202
    assert count(session) == 2


def test_verify_rejects_garbage():
    assert not verify(b"x", "nonsense", ["s"])
    assert not verify(b"x", "t=abc,v1=00", ["s"])
    assert not verify(b"x", None, ["s"])


async def test_signed_but_unstorable_payload_is_400(client, shop, session):
    """A value no database can hold is refused as /v1 refuses it: 400 naming the body."""
    body = b'{"token": "a\\u0000b", "email": "x@example.dk", "cart_token": "c\\u0000"}'
    r = await client.post(
        "/webhooks/shopify",
        content=body,
        headers=shopify_headers(body, "checkouts/create", "wh-nul"),
    )
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "body"
    assert count(session) == 0
