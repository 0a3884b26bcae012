"""Values a JSON column cannot hold the same way on SQLite and PostgreSQL (integers beyond 64
bits, NaN/Infinity, NUL characters in strings or keys) are refused at the edge: 400 naming the
field by its path, nothing stored. The checker is reusable (`rejse.events.values`)."""

import json

import pytest
import sqlalchemy as sa
from sqlmodel import select

from rejse.errors import DomainError
from rejse.models.events import Event
from rejse.roles import Role
from tests.conftest import auth

HUGE = "1" + "0" * 400  # the integer that stopped the processor: a float overflow on reading


def track(extra: str) -> bytes:
    return ('{"userId": "u", "event": "E", ' + extra + "}").encode()


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(Event))


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/track", track(f'"properties": {{"total": {HUGE}}}'), "properties.total"),
        ("/v1/track", track(f'"properties": {{"total": -{HUGE}}}'), "properties.total"),
        ("/v1/track", track('"properties": {"total": 9223372036854775808}'), "properties.total"),
        ("/v1/track", track('"properties": {"total": -9223372036854775809}'), "properties.total"),
        (
            "/v1/track",
            track('"properties": {"id": 123456789012345678901234567890}'),
            "properties.id",
        ),
        ("/v1/track", track('"properties": {"total": 1e400}'), "properties.total"),
        ("/v1/track", track('"properties": {"total": -2.5E+309}'), "properties.total"),
        ("/v1/track", track('"properties": {"total": NaN}'), "properties.total"),
        ("/v1/track", track('"properties": {"total": -Infinity}'), "properties.total"),
        (
            "/v1/track",
            track(f'"properties": {{"products": [{{"sku": "A"}}, {{"price": {HUGE}}}]}}'),
            "properties.products.1.price",
        ),
        ("/v1/track", track('"context": {"page": {"x": Infinity}}'), "context.page.x"),
        ("/v1/track", track('"properties": {"note": "a\\u0000b"}'), "properties.note"),
        ("/v1/track", track('"properties": {"k\\u0000": 1}'), "properties.k\\u0000"),
        ("/v1/track", b'{"userId": "a\\u0000b", "event": "E"}', "userId"),
        ("/v1/track", b'{"userId": "u", "event": "E\\u0000"}', "event"),
        ("/v1/identify", b'{"userId": "u", "traits": {"name": "x\\u0000"}}', "traits.name"),
        ("/v1/group", b'{"userId": "u", "groupId": "g", "traits": {"n": NaN}}', "traits.n"),
        (
            "/v1/batch",
            (
                '{"batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"total": '
                + HUGE
                + "}}]}"
            ).encode(),
            "batch.0.properties.total",
        ),
        (
            "/v1/batch",
            b'{"context": {"x": NaN}, "batch": [{"type": "track", "userId": "u", "event": "E"}]}',
            "context.x",
        ),
    ],
)
async def test_unstorable_values_get_400_naming_the_field(client, keys, engine, path, body, field):
    r = await client.post(
        path, content=body, headers={**auth(keys[Role.ingest]), "content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.json()
    assert count(engine) == 0


async def test_the_64_bit_bounds_and_large_finite_numbers_are_kept(client, keys, session):
    properties = {
        "max": 2**63 - 1,
        "min": -(2**63),
        "big": 1.7976931348623157e308,
        "tiny": 5e-324,
        "id": "123456789012345678901234567890",  # a long id as a string is fine
        "code": "e1234",
    }
    r = await client.post(
        "/v1/track",
        content=json.dumps({"userId": "u", "event": "E", "properties": properties}).encode(),
        headers={**auth(keys[Role.ingest]), "content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert session.exec(select(Event)).one().properties == properties


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": {"b": [1, 2, 2**64]}}, ("traits.a.b.2", "integer")),
        ({"a": float("nan")}, ("traits.a", "NaN")),
        ({"a": float("-inf")}, ("traits.a", "NaN")),
        ({"a": ["x\x00"]}, ("traits.a.0", "NUL")),
        ({"a\x00b": 1}, ("traits.a\\u0000b", "NUL")),
        ({"a": [True, None, 1.5, "ok", {"b": -(2**63)}]}, None),
    ],
)
def test_the_checker_names_the_path(value, problem):
    from rejse.events.values import check_storable, find_unstorable

    found = find_unstorable(value, path="traits")
    if problem is None:
        assert found is None
        check_storable(value, path="traits")
        return
    assert found is not None
    assert found[0] == problem[0]
    assert problem[1] in found[1]
    with pytest.raises(DomainError) as err:
        check_storable(value, path="traits")
    assert err.value.status_code == 400
    assert err.value.field == problem[0]
