"""No input makes the control plane answer 500, store half a record or log PII.

Each group holds one input rule (docs/development.md, "Input rules"), exercised over the real app
(httpx on the ASGI app, or uvicorn on a loopback port where the wire matters) on SQLite and on
PostgreSQL: nulls where null means nothing, values that fit their columns and times with a UTC
value, the signature header, bounded integers, body limits and auth before the body, NUL and
NaN, database errors in the log, the documented 422 body."""

from __future__ import annotations

from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI, Path, Query
from fastapi.routing import APIRoute
from sqlmodel import Session

from rejse import signatures
from rejse.events import webhooks as hooks
from rejse.models.leads import SalesRep
from rejse.profiles.service import create_profile
from rejse.roles import Role
from tests.conftest import auth
from tests.test_auth_matrix import introspection_app

SECRET = "generic-secret-0123456789abcdef"
MB = 1024 * 1024


def fields(r: httpx.Response) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


@pytest.fixture
def profile_id(session: Session) -> str:
    pid = create_profile(session, traits={"first_name": "Ida"})
    session.commit()
    return pid


# ----------------------------------------------------------------------------- null


@pytest.fixture
async def rep(client, keys) -> str:
    r = await client.post(
        "/api/sales/reps",
        headers=auth(keys[Role.sales]),
        json={"name": "Anna", "email": "anna@shop.dk", "territories": ["DK"]},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def test_null_territories_are_refused_and_the_reps_stay_readable(client, keys, rep):
    s = auth(keys[Role.sales])
    r = await client.patch(f"/api/sales/reps/{rep}", headers=s, json={"territories": None})
    assert r.status_code == 422, r.text
    assert fields(r) == ["territories"]
    r = await client.get("/api/sales/reps", headers=s)
    assert r.status_code == 200, r.text
    assert r.json()[0]["territories"] == ["DK"]


@pytest.mark.parametrize("field", ["name", "email", "active", "territories", "locale"])
async def test_a_rep_field_that_holds_a_value_refuses_null(client, keys, rep, session, field):
    s = auth(keys[Role.sales])
    r = await client.patch(
        f"/api/sales/reps/{rep}", headers=s, json={field: None, "crm_owner_id": "u-1"}
    )
    assert r.status_code == 422, r.text
    assert fields(r) == [field]
    session.expire_all()
    assert session.get(SalesRep, rep).crm_owner_id is None  # nothing of the request was saved


async def test_null_clears_where_clearing_is_meant(client, keys, rep):
    s = auth(keys[Role.sales])
    r = await client.patch(
        f"/api/sales/reps/{rep}",
        headers=s,
        json={"crm_owner_id": "u-1", "webhook_url": "https://hooks.example.dk/x"},
    )
    assert r.status_code == 200, r.text
    r = await client.patch(
        f"/api/sales/reps/{rep}", headers=s, json={"crm_owner_id": None, "webhook_url": None}
    )
    assert r.status_code == 200, r.text
    assert r.json()["crm_owner_id"] is None
    assert r.json()["webhook_url"] is None
    assert r.json()["territories"] == ["DK"]  # omitted: unchanged


async def test_null_in_other_request_bodies_is_refused(client, keys, session):
    pid = create_profile(session, traits={"first_name": "Ida"})
    session.commit()
    r = await client.put(
        f"/api/profiles/{pid}/consents/email",
        json={"status": "granted", "source": "web", "at": None},
        headers=auth(keys[Role.marketer]),
    )
    assert r.status_code == 422, r.text
    assert fields(r) == ["at"]
    r = await client.post(
        "/api/webhook-sources",
        json={"kind": "generic", "name": "shop", "secret": None},
        headers=auth(keys[Role.admin]),
    )
    assert r.status_code == 422, r.text
    assert fields(r) == ["secret"]


# A request field may be null only where null means "none" or "clear". These are those
# fields, per request schema of the routes below; every other field of theirs refuses null.
NULL_MEANS_NONE = {
    "RepCreate": {"manager_id", "webhook_url", "crm_owner_id"},
    "RepUpdate": {"manager_id", "webhook_url", "crm_owner_id"},
    "OutcomeCreate": {"note"},
    "KeyCreate": {"rep_id"},
    "EnterRequest": {"idempotency_key"},
    "PublishRequest": {"version"},
    "ScoringDefinition": {"half_life"},
    "EventRule": {"condition", "cap"},
}
MY_TAGS = {"sales", "scoring", "profiles", "journeys", "keys", "webhooks", "operations"}


def _nullable(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(
        alt.get("type") == "null" for alt in prop.get("anyOf", []) + prop.get("oneOf", [])
    )


def _request_schemas(doc: dict[str, Any]) -> set[str]:
    """Names of the component schemas reachable from the request bodies of MY_TAGS' routes."""
    components = doc["components"]["schemas"]
    todo, seen = [], set()
    for ops in doc["paths"].values():
        for op in ops.values():
            if MY_TAGS & set(op.get("tags", [])) and "requestBody" in op:
                todo.append(op["requestBody"])
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in seen:
                    seen.add(name)
                    todo.append(components[name])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return seen


async def test_request_schemas_document_null_only_where_it_means_none(client):
    doc = (await client.get("/openapi.json")).json()
    wrong = []
    for name in sorted(_request_schemas(doc)):
        for prop, schema in doc["components"]["schemas"][name].get("properties", {}).items():
            if _nullable(schema) and prop not in NULL_MEANS_NONE.get(name, set()):
                wrong.append(f"{name}.{prop} accepts null")
    assert not wrong, "\n".join(wrong)


# ----------------------------------------------------------------------------- sizes and times


@pytest.mark.parametrize(("trait", "length"), [("locale", 35), ("timezone", 64)])
async def test_a_trait_that_fills_a_column_must_fit_it(client, keys, profile_id, trait, length):
    h = auth(keys[Role.marketer])
    url = f"/api/profiles/{profile_id}/traits"
    r = await client.patch(url, json={"traits": {trait: "x" * (length + 1)}}, headers=h)
    assert r.status_code == 422, r.text
    assert fields(r) == [f"traits.{trait}"]
    r = await client.patch(url, json={"traits": {trait: "x" * length}}, headers=h)
    assert r.status_code == 200, r.text


async def test_a_rep_webhook_url_must_fit_its_column(client, keys, rep):
    s = auth(keys[Role.sales])
    long = "https://hooks.example.dk/" + "\u00e6" * 300  # percent-encoded: 6 characters each
    for r in (
        await client.patch(f"/api/sales/reps/{rep}", headers=s, json={"webhook_url": long}),
        await client.post(
            "/api/sales/reps",
            headers=s,
            json={"name": "Bo", "email": "bo@shop.dk", "webhook_url": long},
        ),
    ):
        assert r.status_code == 422, r.text
        assert fields(r) == ["webhook_url"]


NO_UTC_TIME = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.mark.parametrize("at", NO_UTC_TIME)
async def test_a_consent_time_with_no_utc_value_is_422(client, keys, profile_id, at):
    r = await client.put(
        f"/api/profiles/{profile_id}/consents/email",
        json={"status": "granted", "source": "web", "at": at},
        headers=auth(keys[Role.marketer]),
    )
    assert r.status_code == 422, r.text
    assert fields(r) == ["at"]


async def test_a_time_without_a_zone_is_utc(client, keys, profile_id):
    r = await client.put(
        f"/api/profiles/{profile_id}/consents/email",
        json={"status": "granted", "source": "web", "at": "2026-11-20T10:00:00"},
        headers=auth(keys[Role.marketer]),
    )
    assert r.status_code == 200, r.text
    assert r.json()["consents"]["email"]["at"] == "2026-11-20T10:00:00Z"


# ----------------------------------------------------------------------------- signatures


NOW = 1_800_000_000


def _v1(body: bytes, t: str) -> str:
    return signatures.sign(SECRET, body, timestamp=int(t)).split(",v1=")[1]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("t=\u00b2,v1=" + "0" * 64, id="superscript-digit"),
        pytest.param("t=" + "9" * 5000 + ",v1=" + "0" * 64, id="5000-digit-t"),
        pytest.param("t=\u0661\u0668\u0660\u0660,v1=" + "0" * 64, id="arabic-indic-digits"),
        pytest.param("v1=" + "0" * 64, id="no-t"),
        pytest.param(f"t={NOW}", id="no-v1"),
        pytest.param(f"t={NOW},v1=", id="empty-v1"),
        pytest.param(f"t={NOW},v1=\u00e9{'0' * 63}", id="non-ascii-v1"),
        pytest.param(f"t={NOW},v1={'g' * 64}", id="non-hex-v1"),
        pytest.param(f"t={NOW},v1={'0' * 5000}", id="long-v1"),
        pytest.param(f"t=-{NOW},v1={'0' * 64}", id="negative-t"),
        pytest.param(f"t={NOW},garbage,v1={'0' * 64}", id="part-without-equals"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_signature_headers_are_refused_not_raised(header):
    assert signatures.verify(b"{}", header, [SECRET], now=NOW) is False


def test_a_duplicate_timestamp_is_refused():
    body = b'{"type": "track"}'
    good = _v1(body, str(NOW))
    assert signatures.verify(body, f"t={NOW},v1={good}", [SECRET], now=NOW)
    # Which t did the sender mean? Refuse rather than pick one.
    header = f"t={NOW},t={NOW},v1={good}"
    assert signatures.verify(body, header, [SECRET], now=NOW) is False
    header = f"t={NOW - 10_000},t={NOW},v1={good}"
    assert signatures.verify(body, header, [SECRET], now=NOW) is False


def test_several_v1_values_still_rotate_secrets():
    body = b"{}"
    good = _v1(body, str(NOW))
    header = f"t={NOW},v1={'0' * 64},v1={good.upper()}"
    assert signatures.verify(body, header, [SECRET], now=NOW)
    assert signatures.verify(body, f" t={NOW} , v1={good} ", [SECRET], now=NOW)


@pytest.fixture
def generic_source(session: Session) -> str:
    hooks.create_source(session, kind="generic", name="shop", secret=SECRET)
    session.commit()
    return "/webhooks/generic/shop"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"t=\xb2,v1=" + b"0" * 64, id="superscript-digit"),
        pytest.param(b"t=" + b"9" * 5000 + b",v1=" + b"0" * 64, id="5000-digit-t"),
        pytest.param(b"t=1,t=2,v1=" + b"0" * 64, id="duplicate-t"),
        pytest.param(b"t=1800000000,v1=\xe9" + b"0" * 63, id="non-ascii-v1"),
        pytest.param(b"v1=" + b"0" * 64, id="no-t"),
    ],
)
async def test_a_malformed_signature_is_401_on_the_webhook(client, generic_source, header):
    body = b'{"type": "track", "event": "X", "userId": "u1"}'
    r = await client.post(
        generic_source,
        content=body,
        headers=[(b"content-type", b"application/json"), (b"x-rejse-signature", header)],
    )
    assert r.status_code == 401, r.text


async def test_a_signed_webhook_still_gets_in(client, generic_source):
    body = b'{"type": "track", "event": "X", "userId": "u1"}'
    r = await client.post(
        generic_source,
        content=body,
        headers={
            "content-type": "application/json",
            "x-rejse-signature": signatures.sign(SECRET, body),
        },
    )
    assert r.status_code == 202, r.text


# ----------------------------------------------------------------------------- bounded integers


def _unbounded_ints(app) -> list[str]:
    found = []
    for context in fastapi.routing.iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        stack = [context.dependant]
        while stack:
            dependant = stack.pop()
            stack.extend(dependant.dependencies)
            params = (
                dependant.path_params
                + dependant.query_params
                + dependant.header_params
                + dependant.cookie_params
            )
            for param in params:
                annotation = str(param.field_info.annotation)
                if "int" not in annotation or "str" in annotation:
                    continue
                limits = {type(m).__name__ for m in param.field_info.metadata}
                if not limits & {"Le", "Lt"}:
                    methods = ",".join(sorted(context.methods or ()))
                    found.append(f"{methods} {context.path}: {param.name} ({annotation})")
    return found


def test_every_integer_parameter_has_an_upper_bound():
    unbounded = _unbounded_ints(introspection_app())
    assert not unbounded, "integer parameters without le=/lt=:\n" + "\n".join(unbounded)


def _bounded(n: Annotated[int, Path(le=9)], k: Annotated[int | None, Query(lt=9)] = None):
    return None


def _unbounded(n: int, k: int | None = None):
    return None


def test_the_walker_sees_an_unbounded_parameter():
    app = FastAPI()
    app.add_api_route("/ok/{n}", _bounded, methods=["GET"])
    app.add_api_route("/bad/{n}", _unbounded, methods=["GET"])
    found = _unbounded_ints(app)
    assert len(found) == 2, found
    assert all("/bad/{n}" in f for f in found)


def _unbounded_body_ints(doc: dict[str, Any]) -> list[str]:
    """Integer fields of request bodies without a maximum, as schema paths."""
    found = []
    todo: list[tuple[str, Any]] = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "requestBody" in op:
                todo.append((f"{method.upper()} {path}", op["requestBody"]))
    todo.extend((f"#{name}", s) for name, s in doc["components"]["schemas"].items())
    while todo:
        where, node = todo.pop()
        if isinstance(node, dict):
            if node.get("type") == "integer" and "maximum" not in node:
                found.append(where)
            todo.extend((f"{where}.{k}", v) for k, v in node.items() if k != "$ref")
        elif isinstance(node, list):
            todo.extend((f"{where}[{i}]", v) for i, v in enumerate(node))
    return found


async def test_integer_fields_of_my_request_bodies_are_bounded(client):
    doc = (await client.get("/openapi.json")).json()
    mine = _request_schemas(doc)
    unbounded = [
        f for f in _unbounded_body_ints(doc) if f.startswith("#") and f[1:].split(".")[0] in mine
    ]
    assert not unbounded, unbounded


@pytest.mark.parametrize(
    ("method", "url", "field"),
    [
        ("GET", f"/api/journeys/j/runs?offset={2**63}", "offset"),
        ("GET", f"/api/journeys/j/runs?offset={10**40}", "offset"),
        ("GET", f"/api/journeys/j?version={2**63}", "version"),
        ("GET", f"/api/journeys/j/diagram?version={2**31}", "version"),
        ("GET", f"/api/messages?offset={2**63}", "offset"),
        ("GET", f"/api/templates/welcome?version={2**63}", "version"),
        ("POST", f"/api/dead-letters/{2**63}/retry", "dead_letter_id"),
        ("GET", f"/api/scoring/models/{2**63}", "version"),
    ],
)
async def test_oversized_integers_are_422_naming_the_parameter(client, keys, method, url, field):
    r = await client.request(method, url, headers=auth(keys[Role.admin]))
    assert r.status_code == 422, r.text
    assert fields(r) == [field]


async def test_an_oversized_version_in_a_body_is_422(client, keys):
    r = await client.post(
        "/api/journeys/j/publish", json={"version": 2**63}, headers=auth(keys[Role.marketer])
    )
    assert r.status_code == 422, r.text
    assert fields(r) == ["version"]
