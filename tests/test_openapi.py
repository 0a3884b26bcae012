"""The OpenAPI document behind /docs builds, and every operation declares the bearer scheme
unless it is a public route (health, signed webhooks, signed tracking links)."""

from tests.test_auth_matrix import ROUTE_RULES, Public


async def test_openapi_document_builds_and_documents_auth(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            rule = ROUTE_RULES.get((method.upper(), path))
            if rule is None or isinstance(rule, Public):
                continue
            assert op.get("security"), f"{method.upper()} {path} does not document its API key"


async def test_docs_page_is_served(client):
    r = await client.get("/docs")
    assert r.status_code == 200
    assert "swagger" in r.text.lower()
