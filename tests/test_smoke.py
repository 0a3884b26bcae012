from rejse.roles import Role
from tests.conftest import auth


async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status_code == 200


async def test_keys_roundtrip(client, keys):
    r = await client.post(
        "/api/keys", json={"name": "shop", "role": "ingest"}, headers=auth(keys[Role.admin])
    )
    assert r.status_code == 201, r.text
    raw = r.json()["key"]
    r = await client.get("/api/keys", headers=auth(raw))
    assert r.status_code == 403


async def test_time_env(time_env):
    assert await time_env.client.service_client.check_health()
