"""The key comes first: a request with no key is 401 and one with a role the route does not
allow is 403, however malformed the rest of it is (a NUL in a path or query parameter, a
malformed or oversized body, a query value of the wrong type). Only an allowed key learns what
is wrong with its input."""

from __future__ import annotations

import pytest

from rejse.roles import Role
from tests.conftest import auth

JSON = {"content-type": "application/json"}

# (method, url, body, a role the route refuses, what an allowed role gets, its field)
MALFORMED = [
    ("GET", "/api/journeys/abandoned-cart?version=%00", None, Role.ingest, "version"),
    ("GET", "/api/journeys/j%00", None, Role.ingest, "key"),
    ("GET", "/api/journeys/j/runs?profile_id=p%00", None, Role.ingest, "profile_id"),
    ("GET", "/api/profiles/lookup?email=a%00b%40shop.dk", None, Role.ingest, "email"),
    ("GET", "/api/sales/next?rep=r%00", None, Role.ingest, "rep"),
    ("GET", "/v1/inbox/u%00", None, Role.analyst, "user_id"),
    ("GET", "/v1/inbox/u?limit=%00", None, Role.analyst, "limit"),
    ("GET", "/v1/inbox/u?limit=many", None, Role.analyst, "limit"),
    ("POST", "/api/keys", b'{"name": ', Role.marketer, "body"),
    ("POST", "/api/keys", b'{"name": "k\\u0000", "role": "admin"}', Role.marketer, "name"),
]


def _request(client, method, url, body, headers):
    content = body if body is not None else None
    return client.request(method, url, content=content, headers={**JSON, **headers})


@pytest.mark.parametrize(("method", "url", "body", "refused", "field"), MALFORMED)
async def test_no_key_is_401_before_any_input_check(client, method, url, body, refused, field):
    r = await _request(client, method, url, body, {})
    assert r.status_code == 401, r.text


@pytest.mark.parametrize(("method", "url", "body", "refused", "field"), MALFORMED)
async def test_a_refused_role_is_403_before_any_input_check(
    client, keys, method, url, body, refused, field
):
    r = await _request(client, method, url, body, auth(keys[refused]))
    assert r.status_code == 403, r.text


@pytest.mark.parametrize(("method", "url", "body", "refused", "field"), MALFORMED)
async def test_an_allowed_role_learns_which_field_is_wrong(
    client, keys, method, url, body, refused, field
):
    r = await _request(client, method, url, body, auth(keys[Role.admin]))
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]


# ----------------------------------------------------------------------------- bodies not UTF-8


@pytest.mark.parametrize(
    ("method", "url"),
    [("POST", "/api/keys"), ("PATCH", "/api/sales/reps/rep_x"), ("POST", "/api/sales/reps")],
)
async def test_a_json_body_that_is_not_utf8_is_422_naming_the_body(client, keys, method, url):
    """JSON is UTF-8 (RFC 8259): other bytes are refused like malformed JSON, with rejse's body
    (FastAPI answered 400 with a body of its own, documented nowhere)."""
    r = await client.request(
        method, url, content=b'{"name": "k\xff"}', headers={**JSON, **auth(keys[Role.admin])}
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "body", "message": "not UTF-8 text"}]


# ----------------------------------------------------------------------------- Content-Length


@pytest.mark.parametrize("path", ["/v1/track", "/webhooks/shopify", "/webhooks/generic/shop"])
async def test_a_content_length_of_thousands_of_digits_is_413_not_500(client, keys, path):
    """int() refuses more than 4,300 digits: such a length is over any limit, unparsed."""
    request = client.build_request(
        "POST", path, content=b"{}", headers={**JSON, **auth(keys[Role.ingest])}
    )
    request.headers["content-length"] = "9" * 5000
    r = await client.send(request)
    assert r.status_code == 413, r.text
    assert r.json()["errors"][0]["field"] == "body"
