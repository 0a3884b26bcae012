"""Property-based fuzzing of the ingestion endpoints: whatever arrives, never a 5xx, and a
rejected request stores nothing."""

import json

import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rejse.models.events import Event
from rejse.roles import Role
from tests.conftest import auth

ENDPOINTS = [
    "/v1/track",
    "/v1/identify",
    "/v1/page",
    "/v1/alias",
    "/v1/batch",
    "/webhooks/shopify",
    "/webhooks/generic/pos",
]
FIELDS = [
    "type",
    "userId",
    "anonymousId",
    "event",
    "name",
    "properties",
    "traits",
    "context",
    "timestamp",
    "sentAt",
    "messageId",
    "previousId",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "",
            "null",
            "2026-11-20T09:10:00+01:00",
            "track",
            "\x00",
            "0",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
        ]
    )
)
values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
messages = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8)
plausible = st.fixed_dictionaries(
    {"userId": st.text(max_size=20) | st.integers()},
    optional={
        "type": st.sampled_from(["track", "identify", "page", "alias", "screen"]),
        "event": st.text(max_size=30),
        "properties": values,
        "traits": values,
        "timestamp": scalars,
        "sentAt": scalars,
        "messageId": st.text(max_size=20),
        "previousId": st.text(max_size=10),
        "context": values,
    },
)


def encode(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


bodies = (
    st.binary(max_size=200)
    | values.map(encode)
    | messages.map(encode)
    | plausible.map(encode)
    | st.lists(plausible | messages, max_size=5).map(lambda b: encode({"batch": b}))
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.sampled_from(ENDPOINTS), body=bodies)
def test_ingestion_never_answers_5xx(app, keys, engine, path, body):
    with TestClient(app) as client:
        before = _count(engine)
        r = client.post(
            path,
            content=body,
            headers={**auth(keys[Role.ingest]), "content-type": "application/json"},
        )
        assert r.status_code < 500, (path, body, r.text)
        if r.status_code >= 400:
            assert _count(engine) == before
            assert r.json()["detail"]


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(Event))
