"""Profile API: lookup by id / identifier, timeline, traits, consent, GDPR export and erase."""

import httpx
import sqlalchemy as sa
from sqlmodel import select

from api.app import create_app
from rejse.events.processor import EventProcessor
from rejse.models.events import Event
from rejse.models.profiles import ProfileErasure, ProfileIdentifier
from rejse.models.timeline import TimelineEntry
from rejse.roles import Role
from rejse.timeline import add_entry
from tests.conftest import auth
from tests.events.helpers import example


async def ingest_example(client, keys, runtime):
    r = await client.post(
        "/v1/batch", json=example("segment_batch.json"), headers=auth(keys[Role.ingest])
    )
    assert r.status_code == 200
    await EventProcessor(runtime, subscribers=[], dispatchers=[]).drain()
    r = await client.get(
        "/api/profiles/lookup",
        params={"user_id": "cust-7012345678901"},
        headers=auth(keys[Role.analyst]),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_get_by_id_and_by_any_identifier(client, keys, runtime):
    profile = await ingest_example(client, keys, runtime)
    h = auth(keys[Role.analyst])
    for params in (
        {"email": "Mette.Hansen@example.dk"},
        {"anonymous_id": "anon-5f1c2a"},
        {"type": "user_id", "value": "cust-7012345678901"},
    ):
        r = await client.get("/api/profiles/lookup", params=params, headers=h)
        assert r.json()["id"] == profile["id"], params
    r = await client.get(f"/api/profiles/{profile['id']}", headers=h)
    body = r.json()
    assert body["traits"]["first_name"] == "Mette"
    assert body["event_count"] == 4
    assert body["identifiers"]["email"] == ["mette.hansen@example.dk"]
    r = await client.get("/api/profiles/lookup", params={"email": "nobody@example.dk"}, headers=h)
    assert r.status_code == 404
    assert r.json()["errors"][0]["field"] == "email"
    r = await client.get("/api/profiles/lookup", headers=h)
    assert r.status_code == 400
    assert (await client.get("/api/profiles/prf_nope", headers=h)).status_code == 404


async def test_timeline_has_all_four_events_and_entries(client, keys, runtime, session):
    profile = await ingest_example(client, keys, runtime)
    add_entry(session, profile_id=profile["id"], kind="message", summary="email sent")
    session.commit()
    r = await client.get(
        f"/api/profiles/{profile['id']}/timeline", headers=auth(keys[Role.marketer])
    )
    items = r.json()
    events = [i for i in items if i["kind"] == "event"]
    assert [e["summary"] for e in reversed(events)] == [
        "page: Regnjakke Aarhus",
        "track: Product Added",
        "identify",
        "track: Checkout Started",
    ]
    assert any(i["kind"] == "message" for i in items)
    assert items == sorted(items, key=lambda i: i["at"], reverse=True)


async def test_traits_patch_and_consent(client, keys, runtime):
    profile = await ingest_example(client, keys, runtime)
    pid = profile["id"]
    r = await client.patch(
        f"/api/profiles/{pid}/traits",
        json={"traits": {"vip": True, "country": None}},
        headers=auth(keys[Role.marketer]),
    )
    assert r.status_code == 200
    assert r.json()["traits"]["vip"] is True
    assert "country" not in r.json()["traits"]
    assert (
        await client.patch(
            f"/api/profiles/{pid}/traits",
            json={"traits": {"x": 1}},
            headers=auth(keys[Role.analyst]),
        )
    ).status_code == 403
    r = await client.put(
        f"/api/profiles/{pid}/consents/email",
        json={"status": "granted", "source": "preference centre", "at": "2026-11-20T10:00:00Z"},
        headers=auth(keys[Role.marketer]),
    )
    assert r.json()["consents"]["email"]["status"] == "granted"
    r = await client.put(
        f"/api/profiles/{pid}/consents/email",
        json={"status": "revoked", "source": "support call"},
        headers=auth(keys[Role.marketer]),
    )
    assert r.json()["consents"]["email"] == {
        **r.json()["consents"]["email"],
        "status": "revoked",
        "source": "support call",
    }
    r = await client.put(
        f"/api/profiles/{pid}/consents/email",
        json={"status": "maybe", "source": "x"},
        headers=auth(keys[Role.marketer]),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "status"


async def test_export_and_erase(client, keys, runtime, session):
    profile = await ingest_example(client, keys, runtime)
    pid = profile["id"]
    h = auth(keys[Role.admin])
    r = await client.get(f"/api/profiles/{pid}/export", headers=h)
    export = r.json()
    assert len(export["events"]) == 4
    assert len(export["identifiers"]) == 3
    assert (
        await client.get(f"/api/profiles/{pid}/export", headers=auth(keys[Role.marketer]))
    ).status_code == 403
    r = await client.delete(f"/api/profiles/{pid}", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["events"] == 4
    session.expire_all()
    assert session.exec(select(Event)).all() == []
    assert session.exec(select(ProfileIdentifier)).all() == []
    assert session.exec(select(TimelineEntry).where(TimelineEntry.profile_id == pid)).all() == []
    audit = session.exec(select(ProfileErasure)).one()
    assert "mette" not in str(audit.model_dump()).lower()
    body = (await client.get(f"/api/profiles/{pid}", headers=auth(keys[Role.analyst]))).json()
    assert body["erased_at"]
    assert body["traits"] == {}
    assert body["identifiers"] == {}
    assert (await client.delete(f"/api/profiles/{pid}", headers=h)).status_code == 409

    # The old batch re-sent (new messageIds, old timestamps) does not bring the data back ...
    batch = example("segment_batch.json")
    for item in batch["batch"]:
        item["messageId"] += "-resent"
    await client.post("/v1/batch", json=batch, headers=auth(keys[Role.ingest]))
    await EventProcessor(runtime, subscribers=[], dispatchers=[]).drain()
    session.expire_all()
    assert session.exec(select(Event)).all() == []
    assert session.scalar(sa.select(sa.func.count()).select_from(ProfileIdentifier)) == 0
    # ... while a new event of the same person starts a new, empty profile.
    await client.post(
        "/v1/track",
        json={"userId": "cust-7012345678901", "event": "Product Viewed"},
        headers=auth(keys[Role.ingest]),
    )
    await EventProcessor(runtime, subscribers=[], dispatchers=[]).drain()
    r = await client.get(
        "/api/profiles/lookup",
        params={"user_id": "cust-7012345678901"},
        headers=auth(keys[Role.analyst]),
    )
    fresh = r.json()
    assert fresh["id"] != pid
    assert fresh["traits"] == {}
    assert fresh["event_count"] == 1


async def test_erase_calls_every_eraser_the_app_was_given(client, keys, runtime, session):
    """The app runs exactly the erasers the composition root handed it."""
    calls = []

    class Eraser:
        name = "test"

        def erase(self, session, profile_id):
            calls.append(("erase", profile_id))

        async def cancel_running(self, profile_id):
            calls.append(("cancel", profile_id))

    profile = await ingest_example(client, keys, runtime)
    app = create_app(runtime, profile_erasers=[Eraser()], activity_names=frozenset())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as own:
        r = await own.delete(f"/api/profiles/{profile['id']}", headers=auth(keys[Role.admin]))
    assert r.status_code == 200
    assert calls == [("erase", profile["id"]), ("cancel", profile["id"])]
