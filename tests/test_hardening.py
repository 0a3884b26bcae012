"""No input makes the control plane answer 500, store half a record or log PII.

Each group holds one input rule (docs/development.md, "Input rules"), exercised over the real app
(httpx on the ASGI app, or uvicorn on a loopback port where the wire matters) on SQLite and on
PostgreSQL: nulls where null means nothing, values that fit their columns and times with a UTC
value, the signature header, bounded integers, body limits and auth before the body, NUL and
NaN, database errors in the log, the documented 422 body."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

import fastapi.routing
import httpx
import jsonschema_rs
import pytest
import structlog
import uvicorn
from fastapi import FastAPI, Path, Query
from fastapi.routing import APIRoute
from sqlmodel import Session, select

from api.deps import SessionDep
from rejse import signatures
from rejse.events import webhooks as hooks
from rejse.models.events import Event
from rejse.models.leads import SalesRep
from rejse.models.profiles import ProfileIdentifier
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
    "OutcomeCreate": {"note", "reason"},  # no note, no loss reason given
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


@pytest.mark.parametrize("since", NO_UTC_TIME)
async def test_a_metrics_since_with_no_utc_value_is_422(client, keys, since):
    r = await client.get(
        "/api/sales/metrics", params={"since": since}, headers=auth(keys[Role.marketer])
    )
    assert r.status_code == 422, r.text
    assert fields(r) == ["since"]


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


# ----------------------------------------------------------------------------- body limits, auth


class Body:
    """An ASGI request body of `size` bytes in 64 KB chunks, made as it is read; counts what
    the app pulled."""

    CHUNK = 64 * 1024

    def __init__(self, size: int, fill: bytes = b"x") -> None:
        self.left = size
        self.chunk = fill * self.CHUNK
        self.pulled = 0

    async def receive(self) -> dict[str, Any]:
        if self.left <= 0:
            await asyncio.sleep(3600)  # a client that sends nothing more
        part = self.chunk[: min(self.CHUNK, self.left)]
        self.left -= len(part)
        self.pulled += len(part)
        return {"type": "http.request", "body": part, "more_body": self.left > 0}


async def asgi_request(
    app, method: str, path: str, body: Body, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """One request straight through the ASGI interface; (status, JSON body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, body.receive, send), 10)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(content)


JSON = {"content-type": "application/json"}
FIFTY_MB = 50 * MB


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "streamed"])
async def test_no_key_is_401_before_a_50_mb_body_is_read(app, length):
    body = Body(FIFTY_MB)
    headers = {**JSON, "content-length": str(FIFTY_MB)} if length else JSON
    status, answer = await asgi_request(app, "POST", "/api/sales/reps", body, headers)
    assert status == 401, answer
    assert body.pulled == 0


async def test_the_guards_answers_are_logged_by_route_template(app, log_lines):
    status, _ = await asgi_request(app, "PATCH", "/api/sales/reps/rep_1", Body(10), JSON)
    assert status == 401
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    (logged,) = [r for r in records if r["event"] == "http_request"]
    assert logged["route"] == "/api/sales/reps/{rep_id}"
    assert logged["status"] == 401


async def test_a_wrong_role_is_403_before_a_50_mb_body_is_read(app, keys):
    body = Body(FIFTY_MB)
    headers = {**JSON, **auth(keys[Role.analyst]), "content-length": str(FIFTY_MB)}
    status, answer = await asgi_request(app, "POST", "/api/sales/reps", body, headers)
    assert status == 403, answer
    assert body.pulled == 0


async def test_a_declared_length_over_the_limit_is_413_unread(app, keys):
    body = Body(FIFTY_MB)
    headers = {**JSON, **auth(keys[Role.sales]), "content-length": str(FIFTY_MB)}
    status, answer = await asgi_request(app, "POST", "/api/sales/reps", body, headers)
    assert status == 413, answer
    assert fields_of(answer) == ["body"]
    assert body.pulled == 0


@pytest.mark.parametrize(("length", "status"), [("9" * 5000, 413), ("12x", 400)])
async def test_an_absurd_content_length_is_refused_unread(app, keys, length, status):
    body = Body(1024)
    headers = {**JSON, **auth(keys[Role.sales]), "content-length": length}
    answer_status, answer = await asgi_request(app, "POST", "/api/sales/reps", body, headers)
    assert answer_status == status, answer
    assert body.pulled == 0


async def test_a_streamed_body_passing_the_limit_is_413_once_it_passes(app, keys):
    body = Body(FIFTY_MB)
    status, answer = await asgi_request(
        app, "POST", "/api/sales/reps", body, {**JSON, **auth(keys[Role.sales])}
    )
    assert status == 413, answer
    assert body.pulled <= MB + Body.CHUNK


def fields_of(answer: dict[str, Any]) -> list[str]:
    return [e["field"] for e in answer["errors"]]


@pytest.mark.parametrize(
    ("key", "status"), [(None, 401), ("nope", 401), (Role.analyst, 403), (Role.marketer, 403)]
)
async def test_malformed_json_gets_the_auth_answer_first(client, keys, key, status):
    headers = dict(JSON)
    if key == "nope":
        headers |= auth("rjk_00000000_nope")
    elif key is not None:
        headers |= auth(keys[key])
    r = await client.post("/api/sales/reps", content=b'{"name": "A", ', headers=headers)
    assert r.status_code == status, r.text


async def test_malformed_json_with_the_right_key_is_422(client, keys):
    r = await client.post(
        "/api/sales/reps",
        content=b'{"name": "A", ',
        headers={**JSON, **auth(keys[Role.sales])},
    )
    assert r.status_code == 422, r.text
    assert fields(r) == ["body"]


async def test_a_body_under_the_limit_passes(client, keys):
    r = await client.post(
        "/api/sales/reps",
        json={"name": "Anna", "email": "anna@shop.dk", "territories": ["x" * 100] * 9000},
        headers=auth(keys[Role.sales]),
    )
    assert 900_000 < len(r.request.content) < MB
    assert r.status_code == 201, r.text


async def test_ingest_keeps_its_own_limits(client, keys):
    r = await client.post(
        "/v1/batch",
        content=b'{"batch": [' + b" " * (600 * 1024) + b"]}",
        headers={**JSON, **auth(keys[Role.ingest])},
    )
    assert r.status_code == 413, r.text
    r = await client.post(
        "/v1/track", json={"userId": "u1", "event": "X"}, headers=auth(keys[Role.ingest])
    )
    assert r.status_code in (200, 202), r.text


@pytest.fixture
def served(app) -> Iterator[tuple[str, int]]:
    """The app under uvicorn on a loopback port: the wire as a client sees it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


async def _answer_before_the_body(served, headers: str) -> bytes:
    """Send the head of a 50 MB request and 1 KB of its body; the answer must come anyway."""
    reader, writer = await asyncio.open_connection(*served)
    try:
        writer.write(
            (
                "POST /api/sales/reps HTTP/1.1\r\nHost: testserver\r\n"
                f"Content-Type: application/json\r\nContent-Length: {FIFTY_MB}\r\n{headers}\r\n"
            ).encode()
            + b"x" * 1024
        )
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()


async def test_over_the_wire_no_key_is_answered_without_the_body(served):
    head = await _answer_before_the_body(served, "")
    assert head.startswith(b"HTTP/1.1 401"), head


async def test_over_the_wire_a_big_body_is_413_without_reading_it(served, keys):
    head = await _answer_before_the_body(served, f"Authorization: Bearer {keys[Role.sales]}\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head


# ----------------------------------------------------------------------------- NUL and NaN


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"traits": {"name": "A\\u0000B"}}', "traits.name"),
        ('{"traits": {"score": NaN}}', "traits.score"),
        ('{"traits": {"score": -Infinity}}', "traits.score"),
        ('{"traits": {"score": 1e999}}', "traits.score"),
        ('{"traits": {"tags": ["a", "b\\u0000"]}}', "traits.tags.1"),
        ('{"traits": {"deep": {"er": [{"x": NaN}]}}}', "traits.deep.er.0.x"),
        ('{"traits": {"a\\u0000": 1}}', "traits.a\\u0000"),
        ('{"traits": {"a": "x\\ud800y"}}', "traits.a"),
        ('{"traits": {"tags": ["\\uDC00"]}}', "traits.tags.0"),
        ('{"traits": {"\\udc00": 1}}', "traits"),
    ],
)
async def test_nul_and_nan_in_a_trait_patch_are_422_naming_the_field(
    client, keys, profile_id, body, field
):
    r = await client.patch(
        f"/api/profiles/{profile_id}/traits",
        content=body,
        headers={**JSON, **auth(keys[Role.marketer])},
    )
    assert r.status_code == 422, r.text
    assert fields(r) == [field]
    r = await client.get(f"/api/profiles/{profile_id}", headers=auth(keys[Role.analyst]))
    assert r.json()["traits"] == {"first_name": "Ida"}


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        (
            "PUT",
            "/api/profiles/{pid}/consents/email",
            '{"status": "granted", "source": "w\\u0000"}',
            "source",
        ),
        ("POST", "/api/journeys", '{"key": "j", "name": "J\\u0000", "steps": []}', "name"),
        (
            "POST",
            "/api/journeys/j/enter",
            '{"profile_id": "{pid}", "properties": {"v": NaN}}',
            "properties.v",
        ),
        (
            "POST",
            "/api/sales/reps",
            '{"name": "A", "email": "a@shop.dk", "territories": ["D\\u0000K"]}',
            "territories.0",
        ),
        ("POST", "/api/sales/leads/x/outcome", '{"outcome": "won", "note": "\\u0000"}', "note"),
        ("POST", "/api/keys", '{"name": "k\\u0000", "role": "admin"}', "name"),
        (
            "POST",
            "/api/templates",
            '{"key": "k", "channel": "email", "subject": "\\u0000"}',
            "subject",
        ),
    ],
)
async def test_nul_and_nan_in_any_control_plane_body_are_422(
    client, keys, profile_id, method, url, body, field
):
    r = await client.request(
        method,
        url.replace("{pid}", profile_id),
        content=body.replace("{pid}", profile_id),
        headers={**JSON, **auth(keys[Role.admin])},
    )
    assert r.status_code == 422, r.text
    assert fields(r) == [field]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/profiles/prf_a%00b", "profile_id"),
        ("/api/profiles/prf_a%00b/timeline", "profile_id"),
        ("/api/profiles/{pid}/consents/em%00ail", "channel"),
        ("/api/profiles/lookup?email=a%00b%40shop.dk", "email"),
        ("/api/journeys/j%00/runs", "key"),
        ("/api/journeys/j/runs?profile_id=p%00", "profile_id"),
        ("/api/sales/leads/l%00", "lead_id"),
        ("/api/sales/next?rep=r%00", "rep"),
        ("/api/messages?profile_id=p%00", "profile_id"),
        ("/v1/inbox/u%00", "user_id"),
    ],
)
async def test_nul_in_a_path_or_query_parameter_is_422_naming_it(
    client, keys, profile_id, url, field
):
    method = "PUT" if "consents" in url else "GET"
    body = {"status": "granted", "source": "web"} if method == "PUT" else None
    r = await client.request(
        method, url.replace("{pid}", profile_id), json=body, headers=auth(keys[Role.admin])
    )
    assert r.status_code == 422, r.text
    assert fields(r) == [field]


async def test_nul_in_a_webhook_source_is_422_naming_it(client):
    r = await client.post("/webhooks/generic/sh%00p", content=b"{}", headers=JSON)
    assert r.status_code == 422, r.text
    assert fields(r) == ["source"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "track", "event": "X", "userId": "u1", "properties": {"a": "b\\u0000"}}',
        b'{"type": "track", "event": "X", "userId": "u1", "properties": {"a": NaN}}',
        b'{"type": "track", "event": "X", "userId": "u1", "properties": {"a": 1e999}}',
    ],
)
async def test_a_signed_webhook_with_nul_or_nan_is_4xx_and_stores_nothing(
    client, generic_source, session, body
):
    r = await client.post(
        generic_source,
        content=body,
        headers={**JSON, "x-rejse-signature": signatures.sign(SECRET, body)},
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["errors"][0]["field"].endswith("properties.a") or fields(r) == ["body"]
    assert session.exec(select(Event)).all() == []


async def test_nul_in_a_query_parameter_the_route_does_not_read_is_ignored(client, keys):
    r = await client.get("/api/sales/reps?utm=%00", headers=auth(keys[Role.sales]))
    assert r.status_code == 200, r.text


async def test_nan_as_a_string_is_just_a_string(client, keys, profile_id):
    r = await client.patch(
        f"/api/profiles/{profile_id}/traits",
        json={"traits": {"note": "NaN and Infinity, \\u0000 as text", "n": 1e300}},
        headers=auth(keys[Role.marketer]),
    )
    assert r.status_code == 200, r.text
    assert r.json()["traits"]["note"] == "NaN and Infinity, \\u0000 as text"


async def test_a_surrogate_pair_is_just_a_character(client, keys, profile_id):
    r = await client.patch(
        f"/api/profiles/{profile_id}/traits",
        content='{"traits": {"mood": "\\ud83d\\ude00"}}',
        headers={**JSON, **auth(keys[Role.marketer])},
    )
    assert r.status_code == 200, r.text
    assert r.json()["traits"]["mood"] == "\U0001f600"


# ----------------------------------------------------------------------------- errors in the log


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """structlog's output as rejse renders it (JSON lines), into a buffer."""
    buffer = io.StringIO()
    previous = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(buffer),
        cache_logger_on_first_use=False,
    )
    try:
        yield buffer
    finally:
        structlog.configure(**previous)


EMAIL = "hemmelig.person@example.dk"


async def test_a_unique_violation_logs_no_values(app, session, engine, log_lines, caplog):
    create_profile(session, identifiers={"email": EMAIL})
    session.commit()

    def duplicate(session: SessionDep) -> dict[str, str]:
        # What a race between two requests that claim the same email ends in.
        session.add(ProfileIdentifier(profile_id="prf_other", type="email", value=EMAIL))
        session.commit()
        return {}

    app.add_api_route("/api/test-duplicate", duplicate, methods=["POST"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.post("/api/test-duplicate")
    logged = log_lines.getvalue() + caplog.text
    assert EMAIL not in logged
    assert "hemmelig" not in logged
    assert r.status_code == 409, r.text
    assert EMAIL not in r.text
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    (record,) = [r for r in records if r["event"] == "database_conflict"]
    assert record["error"] == "IntegrityError"
    if engine.dialect.name == "postgresql":
        assert record["sqlstate"] == "23505"
        assert record["constraint"] == "uq_identifier_type_value"
        assert record["cause"] == "UniqueViolation"
    else:
        assert record["cause"] == "IntegrityError"


async def test_an_unexpected_error_logs_its_class_not_its_message(app, log_lines, caplog):
    def boom() -> None:
        raise RuntimeError(f"could not mail {EMAIL}")

    app.add_api_route("/api/test-boom", boom, methods=["GET"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.get("/api/test-boom")
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error; see server logs"}
    logged = log_lines.getvalue() + caplog.text
    assert EMAIL not in logged
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    (record,) = [r for r in records if r["event"] == "unhandled_error"]
    assert record["error"] == "RuntimeError"
    assert record["route"] == "/api/test-boom"
    assert any("boom" in frame for frame in record["where"])


# ----------------------------------------------------------------------------- the 422 body


async def test_every_documented_422_is_rejses_body(client):
    doc = (await client.get("/openapi.json")).json()
    wrong, count = [], 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            answer = op.get("responses", {}).get("422")
            if answer is None:
                continue
            count += 1
            schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != "#/components/schemas/ValidationFailed":
                wrong.append(f"{method.upper()} {path}: {schema}")
    assert count > 40
    assert not wrong, "\n".join(wrong)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    body = doc["components"]["schemas"]["ValidationFailed"]
    assert set(body["required"]) == {"detail", "errors"}


async def test_every_control_plane_body_documents_its_413(client):
    doc = (await client.get("/openapi.json")).json()
    missing, count = [], 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if not path.startswith("/api/") or "requestBody" not in op:
                continue
            count += 1
            schema = op["responses"].get("413", {}).get("content", {})
            if schema.get("application/json", {}).get("schema", {}).get("$ref") != (
                "#/components/schemas/ValidationFailed"
            ):
                missing.append(f"{method.upper()} {path}")
    assert count > 15
    assert not missing, missing


async def test_real_422s_match_the_documented_body(client, keys, rep):
    doc = (await client.get("/openapi.json")).json()
    validator = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/ValidationFailed", "components": doc["components"]}
    )
    s, m = auth(keys[Role.sales]), auth(keys[Role.marketer])
    answers = [
        await client.patch(f"/api/sales/reps/{rep}", headers=s, json={"territories": None}),
        await client.post(
            "/api/sales/reps",
            headers=s,
            json={"name": "B", "email": "b@shop.dk", "manager_id": "rep_nope"},
        ),
        await client.get("/api/journeys/j/runs?offset=-1", headers=m),
        await client.post("/api/journeys", headers=m, json={"key": "j", "steps": "no"}),
        await client.post("/api/scoring/models", headers=m, json={"event_rules": [{"id": "x"}]}),
        await client.post("/api/sales/reps", headers={**s, **JSON}, content=b"{"),
        await client.post("/v1/track", headers=auth(keys[Role.ingest]), json={"userId": "u"}),
    ]
    for r in answers:
        assert r.status_code == 422, (r.request.url, r.text)
        errors = list(validator.iter_errors(r.json()))
        assert not errors, (r.request.url, r.json(), [str(e) for e in errors])
