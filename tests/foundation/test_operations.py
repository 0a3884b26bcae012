"""/healthz, /readyz (database and Temporal), /metrics (admin, analyst) and request ids."""

from __future__ import annotations

import httpx
import pytest

from rejse import wiring
from rejse.db import make_engine
from rejse.roles import Role
from rejse.runtime import Runtime
from tests.conftest import auth
from tests.foundation.procs import free_port


def _client(runtime: Runtime) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=wiring.api_app(runtime)), base_url="http://testserver"
    )


async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_is_200_when_database_and_temporal_answer(settings, engine, time_env):
    async with _client(
        Runtime.create(settings, engine=engine, temporal_client=time_env.client)
    ) as c:
        r = await c.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "temporal": "ok"}


async def test_readyz_is_503_when_temporal_is_down(settings, engine):
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with _client(Runtime.create(down, engine=engine)) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"] == {"database": "ok", "temporal": "unreachable"}


async def test_readyz_is_503_when_the_database_is_down(settings, time_env):
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/nope")
    async with _client(
        Runtime.create(settings, engine=engine, temporal_client=time_env.client)
    ) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"] == {"database": "unreachable", "temporal": "ok"}


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.admin, 200), (Role.analyst, 200), (Role.marketer, 403), (Role.ingest, 403), (None, 401)],
)
async def test_metrics(client, keys, role, status):
    await client.get("/healthz")
    r = await client.get("/metrics", headers=auth(keys[role]) if role else {})
    assert r.status_code == status
    if status == 200:
        assert r.headers["content-type"].startswith("text/plain")
        assert 'rejse_http_requests_total{method="GET",route="/healthz",status="200"}' in r.text


async def test_request_id_is_echoed_or_made(client):
    r = await client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert r.headers["x-request-id"] == "req-123"
    r = await client.get("/healthz")
    assert len(r.headers["x-request-id"]) == 32


async def test_database_errors_never_carry_values(engine):
    """Errors end up in logs: the statement's parameters (emails, names) are hidden."""
    import sqlalchemy as sa

    with pytest.raises(sa.exc.DBAPIError) as caught, engine.connect() as conn:
        conn.execute(
            sa.text("SELECT * FROM no_such_table WHERE email = :e"), {"e": "alice@example.com"}
        )
    assert "alice@example.com" not in str(caught.value)
    assert "parameters hidden" in str(caught.value)
