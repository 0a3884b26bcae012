"""The audiences API through the app: create, read, change and delete audiences with their
current size, preview a draft, page through members, see a profile's audiences and customer
value; each role's rights and each bad input's 4xx naming the field, on both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session, select

from rejse.models.audiences import Audience, AudienceMembership
from rejse.models.journeys import Journey
from rejse.models.profiles import Profile
from rejse.roles import Role
from tests.audiences.api_helpers import profile, published_journey, seed_members
from tests.conftest import auth

DK = {"trait": "country", "op": "eq", "value": "DK"}


def definition(key: str = "danes", **over):
    return {"key": key, "name": "Danes", "condition": DK, **over}


@pytest.fixture
def marketer(keys):
    return auth(keys[Role.marketer])


@pytest.fixture
def analyst(keys):
    return auth(keys[Role.analyst])


def fields(r) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


def audience_rows(engine) -> dict[str, Audience]:
    with Session(engine) as s:
        return {a.key: a for a in s.exec(select(Audience))}


def member_rows(engine, key: str) -> set[str]:
    with Session(engine) as s:
        rows = s.exec(select(AudienceMembership).where(AudienceMembership.audience_key == key))
        return {m.profile_id for m in rows}


# ----------------------------------------------------------------------------- CRUD


async def test_create_read_list_update_delete(client, engine, marketer, analyst):
    ida = profile(engine, country="DK", first_name="Ida")
    bo = profile(engine, country="DK", first_name="Bo")
    profile(engine, country="SE", first_name="Sven")
    body = definition(
        description="everyone in Denmark",
        canvas={"facts": "lives in DK", "kind": "existing", "market": "b2c", "priority": 2},
    )
    r = await client.post("/api/audiences", json=body, headers=marketer)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"] == "danes"
    assert created["size"] == 2
    assert created["version"] == 1
    assert created["computed_at"] is not None
    assert created["canvas"]["market"] == "b2c"
    assert created["canvas"]["priority"] == 2
    assert created["condition"] == DK
    assert created["journeys"] == []
    assert member_rows(engine, "danes") == {ida, bo}

    r = await client.get("/api/audiences", headers=analyst)
    assert r.status_code == 200
    assert [(a["key"], a["size"]) for a in r.json()] == [("danes", 2)]

    r = await client.get("/api/audiences/danes", headers=analyst)
    assert r.status_code == 200
    assert r.json()["size"] == 2
    assert r.json()["description"] == "everyone in Denmark"

    # the same key in the body, or none: both change the audience
    swedes = {"trait": "country", "op": "eq", "value": "SE"}
    r = await client.put(
        "/api/audiences/danes", json=definition(condition=swedes), headers=marketer
    )
    assert r.status_code == 200, r.text
    assert r.json()["size"] == 1
    assert r.json()["version"] == 2
    body = {k: v for k, v in definition(condition=DK).items() if k != "key"}
    r = await client.put("/api/audiences/danes", json=body, headers=marketer)
    assert r.status_code == 200, r.text
    assert r.json()["size"] == 2
    assert member_rows(engine, "danes") == {ida, bo}

    r = await client.delete("/api/audiences/danes", headers=marketer)
    assert r.status_code == 204
    assert r.content == b""
    assert (await client.get("/api/audiences/danes", headers=analyst)).status_code == 404
    assert audience_rows(engine) == {}
    assert member_rows(engine, "danes") == set()


async def test_unknown_key_is_404_on_every_route(client, marketer, analyst):
    for method, path, headers, body in (
        ("GET", "/api/audiences/nope", analyst, None),
        ("PUT", "/api/audiences/nope", marketer, definition("nope")),
        ("DELETE", "/api/audiences/nope", marketer, None),
        ("GET", "/api/audiences/nope/members", analyst, None),
        ("GET", "/api/audiences/nope/export", analyst, None),
    ):
        r = await client.request(method, path, json=body, headers=headers)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["detail"]


async def test_an_existing_key_is_409_and_changes_nothing(client, engine, marketer):
    profile(engine, country="DK")
    assert (await client.post("/api/audiences", json=definition(), headers=marketer)).is_success
    again = definition(name="Other", condition={"trait": "country", "op": "eq", "value": "SE"})
    r = await client.post("/api/audiences", json=again, headers=marketer)
    assert r.status_code == 409, r.text
    assert fields(r) == ["key"]
    stored = audience_rows(engine)["danes"]
    assert (stored.name, stored.condition, stored.size) == ("Danes", DK, 1)


# ----------------------------------------------------------------------------- bad input


async def test_invalid_conditions_are_422_naming_the_field_and_save_nothing(
    client, engine, marketer
):
    bad_op = {"all": [DK, {"trait": "country", "op": "like", "value": "D%"}]}
    for body, field in (
        (definition(condition=bad_op), "condition.all[1].op"),
        (definition(condition={"audience": "ghosts"}), "condition.audience"),
        (definition(condition={"all": [DK, {"audience": "ghosts"}]}), "condition.all[1].audience"),
        (definition(key="Not A Slug"), "key"),
        (definition(canvas={"priority": 9}), "canvas.priority"),
        ({k: v for k, v in definition().items() if k != "name"}, "name"),
    ):
        r = await client.post("/api/audiences", json=body, headers=marketer)
        assert r.status_code == 422, (body, r.text)
        assert field in fields(r), (body, r.json())
        assert r.json()["detail"]
    assert audience_rows(engine) == {}


async def test_a_cycle_between_audiences_is_422_and_leaves_both_as_they_were(
    client, engine, marketer
):
    profile(engine, country="DK")
    r = await client.post("/api/audiences", json=definition("a"), headers=marketer)
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/audiences", json=definition("b", condition={"audience": "a"}), headers=marketer
    )
    assert r.status_code == 201, r.text
    assert r.json()["size"] == 1
    r = await client.put(
        "/api/audiences/a", json=definition("a", condition={"audience": "b"}), headers=marketer
    )
    assert r.status_code == 422, r.text
    assert any(f.startswith("condition") for f in fields(r)), r.json()
    stored = audience_rows(engine)
    assert stored["a"].condition == DK
    assert stored["a"].version == 1
    assert stored["b"].condition == {"audience": "a"}
    # an audience naming itself is the shortest cycle
    r = await client.post(
        "/api/audiences", json=definition("c", condition={"audience": "c"}), headers=marketer
    )
    assert r.status_code == 422, r.text
    assert "c" not in audience_rows(engine)


async def test_put_with_another_key_is_422(client, engine, marketer):
    profile(engine, country="DK")
    assert (await client.post("/api/audiences", json=definition(), headers=marketer)).is_success
    r = await client.put("/api/audiences/danes", json=definition("swedes"), headers=marketer)
    assert r.status_code == 422, r.text
    assert fields(r) == ["key"]
    assert set(audience_rows(engine)) == {"danes"}
    r = await client.put(
        "/api/audiences/danes",
        json=definition(condition={"any": [{"trait": "x", "op": "gte"}]}),
        headers=marketer,
    )
    assert r.status_code == 422, r.text
    assert fields(r) == ["condition.any[0].value"]
    assert audience_rows(engine)["danes"].condition == DK


# ----------------------------------------------------------------------------- in use


async def test_delete_is_409_naming_the_journeys_and_audiences_that_use_it(
    client, engine, marketer, analyst
):
    profile(engine, country="DK")
    assert (
        await client.post("/api/audiences", json=definition("vip"), headers=marketer)
    ).is_success
    r = await client.post(
        "/api/audiences",
        json=definition("vip-dk", condition={"all": [{"audience": "vip"}, DK]}),
        headers=marketer,
    )
    assert r.status_code == 201, r.text
    published_journey(
        engine,
        "vip-welcome",
        {
            "name": "VIP welcome",
            "trigger": {"type": "audience_entered", "audience": "vip"},
            "steps": [],
        },
    )
    published_journey(
        engine,
        "branchy",
        {
            "name": "Branchy",
            "steps": [{"id": "b", "type": "branch", "condition": {"not": {"audience": "vip"}}}],
        },
    )
    # a journey that only names a similar key does not count
    published_journey(engine, "other", {"name": "Other", "note": '"vip"', "audience": "vip-x"})

    r = await client.get("/api/audiences/vip", headers=analyst)
    assert r.json()["journeys"] == ["branchy", "vip-welcome"]
    r = await client.delete("/api/audiences/vip", headers=marketer)
    assert r.status_code == 409, r.text
    assert fields(r) == ["key"]
    detail = r.json()["detail"]
    for user in ("branchy", "vip-welcome", "vip-dk"):
        assert user in detail
    assert "other" not in detail.replace("vip-welcome", "")
    assert "vip" in audience_rows(engine)

    # once nothing uses it, it goes
    assert (await client.delete("/api/audiences/vip-dk", headers=marketer)).status_code == 204
    r = await client.delete("/api/audiences/vip", headers=marketer)
    assert r.status_code == 409
    assert "vip-dk" not in r.json()["detail"]
    # archived journeys do not hold it either
    with Session(engine) as s:
        for journey in s.exec(select(Journey)):
            journey.status = "archived"
            s.add(journey)
        s.commit()
    assert (await client.delete("/api/audiences/vip", headers=marketer)).status_code == 204


# ----------------------------------------------------------------------------- roles


async def test_marketer_writes_analyst_reads_sales_and_ingest_are_refused(client, engine, keys):
    profile(engine, country="DK")
    seed_members(engine, "seeded", 3)
    calls = [
        ("POST", "/api/audiences", definition()),
        ("GET", "/api/audiences", None),
        ("GET", "/api/audiences/seeded", None),
        ("PUT", "/api/audiences/seeded", definition("seeded")),
        ("POST", "/api/audiences/preview", {"condition": DK}),
        ("GET", "/api/audiences/seeded/members", None),
        ("GET", "/api/audiences/seeded/export", None),
        ("DELETE", "/api/audiences/danes", None),
    ]
    writes = {"POST /api/audiences", "PUT /api/audiences/seeded", "DELETE /api/audiences/danes"}
    for role in (Role.analyst, Role.sales, Role.ingest, Role.marketer, Role.admin):
        for method, path, body in calls:
            r = await client.request(method, path, json=body, headers=auth(keys[role]))
            label = f"{method} {path}"
            if role in (Role.marketer, Role.admin) or (
                role == Role.analyst and label not in writes
            ):
                assert r.status_code < 300, (role, label, r.status_code, r.text)
            else:
                assert r.status_code == 403, (role, label, r.status_code)
    r = await client.get("/api/audiences", headers=auth(keys[Role.analyst]))
    assert [a["key"] for a in r.json()] == ["seeded"]
    assert (await client.get("/api/audiences")).status_code == 401


# ----------------------------------------------------------------------------- preview


async def test_preview_gives_size_and_a_sample_and_saves_nothing(client, engine, analyst):
    ida = profile(engine, country="DK", first_name="Ida", email="ida@example.dk", city="Aarhus")
    bo = profile(engine, country="DK", first_name="Bo")
    profile(engine, country="SE", first_name="Sven")
    erased = profile(engine, country="DK", first_name="Gone")
    with Session(engine) as s:
        row = s.get(Profile, erased)
        assert row is not None
        row.erased_at = dt.datetime.now(dt.UTC)
        s.add(row)
        s.commit()
    r = await client.post(
        "/api/audiences/preview",
        json={"condition": DK, "traits": ["first_name", "city"]},
        headers=analyst,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["size"] == 2
    assert [s["id"] for s in body["sample"]] == [bo, ida]  # newest first
    first = {s["id"]: s for s in body["sample"]}
    assert first[ida]["email"] == "ida@example.dk"
    assert first[ida]["traits"] == {"first_name": "Ida", "city": "Aarhus"}
    assert first[bo]["email"] is None
    assert first[bo]["traits"] == {"first_name": "Bo"}
    # sample caps the list, not the size; the default traits are the usual names
    r = await client.post(
        "/api/audiences/preview", json={"condition": DK, "sample": 1}, headers=analyst
    )
    assert r.json()["size"] == 2
    assert len(r.json()["sample"]) == 1
    assert r.json()["sample"][0]["traits"] == {"first_name": "Bo", "country": "DK"}
    assert audience_rows(engine) == {}
    with Session(engine) as s:
        assert list(s.exec(select(AudienceMembership))) == []


async def test_preview_of_a_malformed_draft_is_422_naming_the_field(client, analyst):
    for body, field in (
        (
            {"condition": {"all": [DK, {"trait": "x", "op": "like", "value": 1}]}},
            "condition.all[1].op",
        ),
        ({"condition": {"any": []}}, "condition.any"),
        ({"condition": {"not": {"audience": "ghosts"}}}, "condition.not.audience"),
        ({"condition": {"event": "Order Completed", "within": "90 days"}}, "condition.within"),
        ({"condition": DK, "sample": 101}, "sample"),
        ({"condition": DK, "sample": -1}, "sample"),
        ({"condition": DK, "traits": [""]}, "traits.0"),
        ({}, "condition"),
    ):
        r = await client.post("/api/audiences/preview", json=body, headers=analyst)
        assert r.status_code == 422, (body, r.text)
        assert field in fields(r), (body, r.json())


# ----------------------------------------------------------------------------- members


async def test_members_are_keyset_paged_by_profile_id(client, engine, analyst):
    ids = seed_members(engine, "many", 25)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        params = {"limit": 10} | ({"after": after} if after else {})
        r = await client.get("/api/audiences/many/members", params=params, headers=analyst)
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        seen += page["profile_ids"]
        after = page["next"]
        if after is None:
            break
        assert after == page["profile_ids"][-1]
    assert seen == ids
    assert pages == 3
    # exactly a full last page: no empty page after it
    r = await client.get("/api/audiences/many/members", params={"limit": 25}, headers=analyst)
    assert r.json() == {"profile_ids": ids, "next": None}
    r = await client.get("/api/audiences/many/members", headers=analyst)
    assert len(r.json()["profile_ids"]) == 25  # default 100
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"after": "x" * 65}, "after"),
    ):
        r = await client.get("/api/audiences/many/members", params=params, headers=analyst)
        assert r.status_code == 422, (params, r.text)
        assert fields(r) == [field]


# ----------------------------------------------------------------------------- profiles


async def test_a_profile_shows_its_audiences_and_customer_value(client, engine, analyst):
    (pid,) = seed_members(engine, "vip", 1)
    seed_members(engine, "loyal", 0)
    with Session(engine) as s:
        s.add(AudienceMembership(audience_key="loyal", profile_id=pid))
        row = s.get(Profile, pid)
        assert row is not None
        first = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
        last = dt.datetime(2024, 5, 6, tzinfo=dt.UTC)
        row.order_count, row.revenue, row.currency = 4, 1000.0, "DKK"
        row.first_order_at, row.last_order_at = first, last
        s.add(row)
        s.commit()
    other = profile(engine, country="SE")
    r = await client.get(f"/api/profiles/{pid}", headers=analyst)
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(body["audiences"]) == ["loyal", "vip"]
    value = body["customer_value"]
    assert value["order_count"] == 4
    assert value["revenue"] == 1000.0
    assert value["currency"] == "DKK"
    assert value["average_order_value"] == 250.0
    assert dt.datetime.fromisoformat(value["first_order_at"]) == first
    assert dt.datetime.fromisoformat(value["last_order_at"]) == last
    r = await client.get(f"/api/profiles/{other}", headers=analyst)
    assert r.json()["audiences"] == []
    assert r.json()["customer_value"] == {
        "order_count": 0,
        "revenue": 0.0,
        "currency": None,
        "average_order_value": None,
        "first_order_at": None,
        "last_order_at": None,
    }


# ----------------------------------------------------------------------------- OpenAPI


async def test_openapi_documents_each_audience_route_and_its_errors(client):
    doc = (await client.get("/openapi.json")).json()
    paths = doc["paths"]
    expected = {
        ("post", "/api/audiences"): {"201", "409", "422"},
        ("get", "/api/audiences"): {"200"},
        ("post", "/api/audiences/preview"): {"200", "422"},
        ("get", "/api/audiences/{key}"): {"200", "404", "422"},
        ("put", "/api/audiences/{key}"): {"200", "404", "422"},
        ("delete", "/api/audiences/{key}"): {"204", "404", "409", "422"},
        ("get", "/api/audiences/{key}/members"): {"200", "404", "422"},
        ("get", "/api/audiences/{key}/export"): {"200", "404", "422"},
    }
    for (method, path), statuses in expected.items():
        documented = set(paths[path][method]["responses"]) - {"401", "403", "413", "429"}
        assert documented == statuses, (method, path, documented)
    export = paths["/api/audiences/{key}/export"]["get"]["responses"]["200"]
    assert set(export["content"]) == {"text/csv"}
    profile_schema = doc["components"]["schemas"]["ProfilePublic"]["properties"]
    assert {"customer_value", "audiences"} <= set(profile_schema)
