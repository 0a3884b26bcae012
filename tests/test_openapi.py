"""The OpenAPI document behind /docs builds, every operation declares the bearer scheme unless it
is a public route (health, signed webhooks, signed tracking links), and the documentation pages
work on a machine without internet: everything they load is served by the app itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from rejse.roles import Role
from tests.conftest import auth
from tests.servers import serve
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


# ----------------------------------------------------------------------------- offline docs


class _Assets(HTMLParser):
    """Every URL the page makes a browser load: scripts, stylesheets and icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (kind, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(("script", a["src"] or ""))
        elif tag == "link" and a.get("href"):
            self.urls.append((a.get("rel") or "link", a["href"] or ""))
        elif tag == "img" and a.get("src"):
            self.urls.append(("img", a["src"] or ""))


# what a browser accepts for each kind of asset
EXPECTED_TYPES = {
    "script": ("text/javascript", "application/javascript"),
    "stylesheet": ("text/css",),
    "shortcut icon": ("image/",),
    "icon": ("image/",),
    "img": ("image/",),
}


@pytest.fixture
def served(app) -> Iterator[str]:
    """The app under uvicorn on a loopback port: the pages are fetched as a browser would."""
    with serve(app) as url:
        yield url


@pytest.mark.parametrize(("page", "marker"), [("/docs", "SwaggerUIBundle"), ("/redoc", "<redoc")])
async def test_docs_pages_load_only_what_the_app_serves(served, page, marker):
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{served}{page}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/html")
        assert marker in r.text
        parser = _Assets()
        parser.feed(r.text)
        kinds = {kind for kind, _ in parser.urls}
        assert "script" in kinds, f"{page} loads no script: {parser.urls}"
        host = urlsplit(served).netloc
        for kind, ref in parser.urls:
            absolute = urljoin(f"{served}{page}", ref)
            assert urlsplit(absolute).netloc == host, f"{page} loads {ref} from elsewhere"
            asset = await http.get(absolute)
            assert asset.status_code == 200, f"{page}: {ref} answered {asset.status_code}"
            content_type = asset.headers.get("content-type", "")
            assert content_type.startswith(EXPECTED_TYPES[kind]), f"{ref}: {content_type}"
            assert asset.content, f"{ref} is empty"
        # nothing else on the page names another host: no web fonts, no CDN, no online
        # validator badge (Swagger UI fetches one from its own site unless told not to)
        others = {urlsplit(u).netloc for u in re.findall(r"https?://[^\s'\"<>)]+", r.text)} - {host}
        assert not others, f"{page} names other hosts: {sorted(others)}"
        if page == "/docs":
            assert '"validatorUrl": null' in r.text
        # the document the page renders is this app's own, unchanged
        spec = re.search(r"""(?:url:\s*'|spec-url=")([^'"]+)""", r.text)
        assert spec, f"{page} names no OpenAPI document"
        assert spec.group(1) == "/openapi.json"
        assert (await http.get(urljoin(served, spec.group(1)))).status_code == 200


# ----------------------------------------------------------------------------- auth answers


async def test_every_operation_with_a_key_documents_its_401_and_403(client, keys):
    doc = (await client.get("/openapi.json")).json()
    schema = doc["components"]["schemas"]["AuthError"]
    secured = [
        (method, path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if op.get("security")
    ]
    assert secured
    for method, path, op in secured:
        for status in ("401", "403"):
            answer = op["responses"].get(status)
            assert answer, f"{method.upper()} {path} does not document its {status}"
            ref = answer["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/AuthError"
        assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
    # the real answers have the documented shape
    no_key = await client.get("/api/keys")
    wrong_role = await client.get("/api/keys", headers=auth(keys[Role.ingest]))
    for r, status in ((no_key, 401), (wrong_role, 403)):
        assert r.status_code == status
        body = r.json()
        assert set(body) <= set(schema["properties"])
        assert isinstance(body["detail"], str)
        assert body["detail"]
    assert no_key.headers["www-authenticate"].startswith("Bearer")


# ----------------------------------------------------------------------------- error statuses


def test_responses_helper_documents_rejse_error_bodies():
    """`api.errors.responses(...)` on a decorator documents each status with the `Error` body
    the domain error handler really writes, a status's own description when given."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from api.errors import install_error_handlers, responses
    from rejse.errors import Conflict, NotFound

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/things/{thing_id}", responses=responses(404, (409, "the thing is erased")))
    def thing(thing_id: int) -> dict[str, int]:
        if thing_id == 1:
            raise NotFound("no thing 1", field="thing_id")
        raise Conflict("the thing is erased", field="thing_id")

    with TestClient(app) as http:
        doc = http.get("/openapi.json").json()
        answers = doc["paths"]["/things/{thing_id}"]["get"]["responses"]
        schema = doc["components"]["schemas"]["Error"]
        assert answers["409"]["description"] == "the thing is erased"
        assert answers["404"]["description"].startswith("No such record")
        for status in ("404", "409"):
            body = answers[status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Error"}
            r = http.get(f"/things/{1 if status == '404' else 2}")
            assert r.status_code == int(status)
            assert set(r.json()) == set(schema["required"]) == set(schema["properties"])
            assert r.json()["errors"] == [{"field": "thing_id", "message": r.json()["detail"]}]


async def test_metrics_are_documented_as_the_prometheus_text_they_are(client, keys):
    doc = (await client.get("/openapi.json")).json()
    documented = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(documented) == ["text/plain"]
    r = await client.get("/metrics", headers=auth(keys[Role.analyst]))
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == "text/plain"


async def test_readyz_documents_its_503_with_the_body_it_answers(client):
    """Temporal is not running in this test: /readyz answers 503 on purpose, as documented."""
    doc = (await client.get("/openapi.json")).json()
    answers = doc["paths"]["/readyz"]["get"]["responses"]
    r = await client.get("/readyz")
    assert r.status_code == 503
    schema = answers["503"]["content"]["application/json"]["schema"]
    assert schema == answers["200"]["content"]["application/json"]["schema"]
    assert set(r.json()) == set(schema["required"])
    assert r.json()["status"] in schema["properties"]["status"]["enum"]
    assert r.json()["checks"]["temporal"] == "unreachable"


async def test_every_documented_error_names_the_body_it_answers_with(client, keys):
    """Each 4xx/5xx of the document has a JSON body schema (a client can read `detail` and
    `errors` from any of them), and real answers of the routes that lacked one match it."""
    import jsonschema_rs  # schemathesis' own validator

    doc = (await client.get("/openapi.json")).json()
    missing = [
        f"{method.upper()} {path} {status}"
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        for status, answer in op["responses"].items()
        if int(status) >= 400 and not answer.get("content", {}).get("application/json")
    ]
    assert not missing, "no body documented:\n" + "\n".join(missing)

    def check(path: str, r: httpx.Response) -> None:
        answer = doc["paths"][path]["post"]["responses"][str(r.status_code)]
        schema = {**answer["content"]["application/json"]["schema"], **doc}
        jsonschema_rs.validate(schema, r.json())

    bad = {"content-type": "application/json", **auth(keys[Role.ingest])}
    r = await client.post("/v1/track", content=b"{not json", headers=bad)
    assert r.status_code == 400
    check("/v1/track", r)
    r = await client.post("/webhooks/shopify", content=b"{}", headers=bad)
    assert r.status_code == 401
    check("/webhooks/shopify", r)
