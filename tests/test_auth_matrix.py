"""The auth matrix: every route of the app has a row in ROUTE_RULES, and every role gets what
its row says.

ADDING A ROUTE? Add one row to ROUTE_RULES below, in your domain's group:

    ("POST", "/api/journeys"): {Role.marketer},     # the roles you gave require(); admin is implied
    ("GET", "/api/journeys"): {Role.marketer, Role.analyst},
    # no API key: say why
    ("POST", "/webhooks/shopify"): Public("signed with the shop's HMAC secret"),

The key is (HTTP method in upper case, the route's path template exactly as declared, with its
`{param}`s). When a route has no row, the failure message prints the row to paste.

The tests fail when
- a route has no row, or a row names a route that does not exist (any more);
- a row differs from the roles the route's `require(...)` dependency allows (`check.allowed_roles`),
  or a Public row's route does depend on `require(...)`, or a non-public route does not;
- a call disagrees with the row: an allowed role must not get 401/403, any other role gets 403,
  no key gets 401. Each route is called with dummy path params ("x") and an empty JSON body, so a
  404/422 (or another error) for an allowed role is fine: this test is about the auth decision.
Public routes are not called (a signed webhook answers 401 to a bad signature by design).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import fastapi.routing
import httpx
import pytest
from fastapi.routing import APIRoute

from rejse import wiring
from rejse.db import make_engine
from rejse.roles import Role
from rejse.runtime import Runtime
from rejse.settings import Settings
from tests.conftest import auth


@dataclass(frozen=True)
class Public:
    """A route that takes no API key, with the reason it is safe."""

    reason: str


ROUTE_RULES: dict[tuple[str, str], set[Role] | Public] = {
    # operations (foundation)
    ("GET", "/healthz"): Public("liveness probe; says nothing but 'ok'"),
    ("GET", "/metrics"): {Role.analyst},
    ("GET", "/readyz"): Public("readiness probe for load balancers; reports only ok/unreachable"),
    # API keys (foundation)
    ("GET", "/api/keys"): {Role.admin},
    ("POST", "/api/keys"): {Role.admin},
    ("DELETE", "/api/keys/{key_id}"): {Role.admin},
    # events and profiles
    ("POST", "/v1/track"): {Role.ingest},
    ("POST", "/v1/identify"): {Role.ingest},
    ("POST", "/v1/page"): {Role.ingest},
    ("POST", "/v1/screen"): {Role.ingest},
    ("POST", "/v1/group"): {Role.ingest},
    ("POST", "/v1/alias"): {Role.ingest},
    ("POST", "/v1/batch"): {Role.ingest},
    ("POST", "/webhooks/shopify"): Public(
        "Shopify delivery: X-Shopify-Hmac-Sha256 over the raw body with the shop's secret; "
        "401 otherwise"
    ),
    ("POST", "/webhooks/generic/{source}"): Public(
        "X-Rejse-Signature t=,v1= HMAC with the source's secret, 300 s tolerance; 401 otherwise"
    ),
    ("GET", "/api/dead-letters"): {Role.admin},
    ("POST", "/api/dead-letters/{dead_letter_id}/retry"): {Role.admin},
    ("GET", "/api/webhook-sources"): {Role.admin},
    ("POST", "/api/webhook-sources"): {Role.admin},
    ("DELETE", "/api/webhook-sources/{source_id}"): {Role.admin},
    ("GET", "/api/profiles/lookup"): {Role.marketer, Role.analyst},
    ("GET", "/api/profiles/{profile_id}"): {Role.marketer, Role.analyst},
    ("DELETE", "/api/profiles/{profile_id}"): {Role.admin},
    ("PUT", "/api/profiles/{profile_id}/consents/{channel}"): {Role.marketer},
    ("GET", "/api/profiles/{profile_id}/export"): {Role.admin},
    ("GET", "/api/profiles/{profile_id}/timeline"): {Role.marketer, Role.analyst},
    ("PATCH", "/api/profiles/{profile_id}/traits"): {Role.marketer},
    # journeys
    ("GET", "/api/journeys"): {Role.marketer, Role.analyst},
    ("POST", "/api/journeys"): {Role.marketer},
    ("GET", "/api/journeys/{key}"): {Role.marketer, Role.analyst},
    ("PUT", "/api/journeys/{key}"): {Role.marketer},
    ("POST", "/api/journeys/{key}/archive"): {Role.marketer},
    ("GET", "/api/journeys/{key}/diagram"): {Role.marketer, Role.analyst},
    ("POST", "/api/journeys/{key}/enter"): {Role.marketer},
    ("GET", "/api/journeys/{key}/entries"): {Role.marketer, Role.analyst},
    ("GET", "/api/journeys/{key}/entries/{entry_id}"): {Role.marketer, Role.analyst},
    ("POST", "/api/journeys/{key}/pause"): {Role.marketer},
    ("POST", "/api/journeys/{key}/publish"): {Role.marketer},
    ("POST", "/api/journeys/{key}/resume"): {Role.marketer},
    ("GET", "/api/journeys/{key}/runs"): {Role.marketer, Role.analyst},
    ("GET", "/api/journeys/{key}/stats"): {Role.marketer, Role.analyst},
    # the A/B programme (analytics)
    ("GET", "/api/experiments"): {Role.marketer, Role.analyst},
    ("GET", "/api/experiments/{journey}/{step}"): {Role.marketer, Role.analyst},
    ("GET", "/api/experiments/{journey}/{step}/chart.{fmt}"): {Role.marketer, Role.analyst},
    # audiences
    ("GET", "/api/audiences"): {Role.marketer, Role.analyst},
    ("POST", "/api/audiences"): {Role.marketer},
    ("POST", "/api/audiences/preview"): {Role.marketer, Role.analyst},
    ("GET", "/api/audiences/{key}"): {Role.marketer, Role.analyst},
    ("PUT", "/api/audiences/{key}"): {Role.marketer},
    ("DELETE", "/api/audiences/{key}"): {Role.marketer},
    ("GET", "/api/audiences/{key}/members"): {Role.marketer, Role.analyst},
    ("GET", "/api/audiences/{key}/export"): {Role.marketer, Role.analyst},
    # campaign analytics
    ("GET", "/api/analytics/journeys"): {Role.marketer, Role.analyst},
    ("GET", "/api/analytics/journeys/chart.{fmt}"): {Role.marketer, Role.analyst},
    ("GET", "/api/analytics/journeys/{key}"): {Role.marketer, Role.analyst},
    ("GET", "/api/analytics/journeys/{key}/chart.{fmt}"): {Role.marketer, Role.analyst},
    ("GET", "/api/analytics/journeys/{key}/days"): {Role.marketer, Role.analyst},
    ("GET", "/api/analytics/journeys/{key}/days/chart.{fmt}"): {Role.marketer, Role.analyst},
    ("GET", "/api/analytics/journeys/{key}/steps"): {Role.marketer, Role.analyst},
    ("GET", "/api/analytics/journeys/{key}/steps/chart.{fmt}"): {Role.marketer, Role.analyst},
    ("GET", "/api/analytics/journeys/{key}/versions"): {Role.marketer, Role.analyst},
    ("GET", "/api/analytics/journeys/{key}/versions/chart.{fmt}"): {Role.marketer, Role.analyst},
    ("PUT", "/api/analytics/journeys/{key}/attribution"): {Role.marketer},
    ("PUT", "/api/analytics/journeys/{key}/targets"): {Role.marketer},
    ("GET", "/api/analytics/templates"): {Role.marketer, Role.analyst},
    ("GET", "/api/analytics/templates/chart.{fmt}"): {Role.marketer, Role.analyst},
    # lead scoring and sales
    ("GET", "/api/profiles/{profile_id}/score"): {Role.marketer, Role.analyst, Role.sales},
    ("POST", "/api/profiles/{profile_id}/stage"): {Role.marketer, Role.sales},
    ("GET", "/api/sales/leads/{lead_id}"): {Role.sales},
    ("POST", "/api/sales/leads/{lead_id}/outcome"): {Role.sales},
    ("GET", "/api/sales/metrics"): {Role.sales, Role.marketer, Role.analyst},
    ("GET", "/api/sales/next"): {Role.sales},
    ("GET", "/api/sales/reps"): {Role.sales},
    ("POST", "/api/sales/reps"): {Role.sales},
    ("GET", "/api/sales/reps/{rep_id}"): {Role.sales},
    ("PATCH", "/api/sales/reps/{rep_id}"): {Role.sales},
    # the lead funnel and sales figures (analytics): read by marketers, analysts and sales
    ("GET", "/api/analytics/funnel"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/funnel/chart.{fmt}"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/funnel/export.csv"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/funnel/daily"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/funnel/daily/chart.{fmt}"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/funnel/daily/export.csv"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/reps"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/reps/chart.{fmt}"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/reps/export.csv"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/pipeline"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/pipeline/chart.{fmt}"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/pipeline/export.csv"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/lost"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/lost/chart.{fmt}"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/lost/export.csv"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/uncalled"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/uncalled/chart.{fmt}"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/analytics/sales/uncalled/export.csv"): {Role.marketer, Role.analyst, Role.sales},
    ("GET", "/api/scoring/models"): {Role.marketer, Role.analyst},
    ("POST", "/api/scoring/models"): {Role.marketer},
    ("GET", "/api/scoring/models/active"): {Role.marketer, Role.analyst},
    ("GET", "/api/scoring/models/{version}"): {Role.marketer, Role.analyst},
    ("POST", "/api/scoring/models/{version}/activate"): {Role.marketer},
    # the data-maturity assessment (analytics): marketers assess, analysts read
    ("GET", "/api/maturity"): {Role.marketer, Role.analyst},
    ("POST", "/api/maturity"): {Role.marketer},
    ("GET", "/api/maturity/chart.{fmt}"): {Role.marketer, Role.analyst},
    ("GET", "/api/maturity/prefill"): {Role.marketer, Role.analyst},
    ("GET", "/api/maturity/prefill/chart.{fmt}"): {Role.marketer, Role.analyst},
    ("GET", "/api/maturity/{assessment_id}"): {Role.marketer, Role.analyst},
    ("GET", "/api/maturity/{assessment_id}/chart.{fmt}"): {Role.marketer, Role.analyst},
    # messaging
    ("GET", "/api/messages"): {Role.marketer, Role.analyst},
    ("GET", "/api/messages/{message_id}"): {Role.marketer, Role.analyst},
    ("GET", "/api/templates"): {Role.marketer, Role.analyst},
    ("POST", "/api/templates"): {Role.marketer},
    ("GET", "/api/templates/{key:path}"): {Role.marketer, Role.analyst},
    ("POST", "/api/templates/{key:path}/preview"): {Role.marketer, Role.analyst},
    ("POST", "/api/templates/{key:path}/versions"): {Role.marketer},
    ("GET", "/t/c/{token}"): Public(
        "click redirect; an HMAC-signed token names message and link (no open redirect)"
    ),
    ("GET", "/t/o/{token}"): Public(
        "open pixel in emails; HMAC-signed token, always answers the same gif"
    ),
    ("GET", "/u/{token}"): Public(
        "unsubscribe confirmation page from an email link; HMAC-signed token"
    ),
    ("POST", "/u/{token}"): Public(
        "RFC 8058 one-click unsubscribe from mail clients; HMAC-signed token"
    ),
    ("GET", "/p/{token}"): Public("preference centre page from an email link; HMAC-signed token"),
    ("POST", "/p/{token}"): Public(
        "preference centre form; the same HMAC-signed token as the page it was sent from"
    ),
    ("GET", "/v1/inbox/{user_id}"): {Role.ingest},
    ("POST", "/v1/inbox/{user_id}/{message_id}/read"): {Role.ingest},
}

# The documentation pages and the files they load (api/app.py): public, outside the matrix.
DOC_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static-offline-docs"}
# The web console signs in with a session cookie, not a bearer key: its routes have their own
# matrix, tests/console/test_console_matrix.py, which fails for a console route without a row.
CONSOLE_PREFIX = "/console"


# ----------------------------------------------------------------------------- helpers


def _iter_routes(app) -> list:
    """Flat (path, methods, dependant, route) view of the app. FastAPI >= 0.16x includes routers
    lazily (`app.routes` holds included-router nodes), `routing.iter_route_contexts` flattens
    them with the router-level dependencies applied; older versions list APIRoutes directly."""
    iter_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if iter_contexts is None:
        return [
            (
                getattr(r, "path", None),
                getattr(r, "methods", None) or set(),
                getattr(r, "dependant", None),
                r,
            )
            for r in app.routes
        ]
    return [
        (
            c.path,
            getattr(c, "methods", None) or set(),
            getattr(c, "dependant", None),
            c.original_route,
        )
        for c in iter_contexts(app.routes)
    ]


def required_roles(dependant) -> frozenset[Role] | None:
    """The roles the route's `require(...)` dependencies allow (intersection), None if none."""
    found: frozenset[Role] | None = None
    stack = [dependant]
    while stack:
        current = stack.pop()
        for dep in current.dependencies:
            allowed = getattr(dep.call, "allowed_roles", None)
            if allowed is not None:
                found = frozenset(allowed) if found is None else found & frozenset(allowed)
            stack.append(dep)
    return found


def api_routes(app) -> list[tuple[str, str, object]]:
    """(method, path template, dependant) of every APIRoute."""
    out = []
    for path, methods, dependant, route in _iter_routes(app):
        if isinstance(route, APIRoute) and path not in DOC_PATHS and not _console(path):
            out.extend((method, path, dependant) for method in sorted(methods))
    return out


def non_api_paths(app) -> list[str]:
    return [
        str(path)
        for path, _, _, route in _iter_routes(app)
        if not isinstance(route, APIRoute) and path not in DOC_PATHS and not _console(path)
    ]


def _console(path: object) -> bool:
    return str(path) == CONSOLE_PREFIX or str(path).startswith(CONSOLE_PREFIX + "/")


def row_text(method: str, path: str, allowed: frozenset[Role] | None) -> str:
    if allowed is None:
        value = 'Public("<why no API key is needed>")'
    else:
        roles = sorted(allowed - {Role.admin}) or [Role.admin]
        value = "{" + ", ".join(f"Role.{r.value}" for r in roles) + "}"
    return f'    ("{method}", "{path}"): {value},'


def expected_roles(rule: set[Role]) -> frozenset[Role]:
    return frozenset(rule) | {Role.admin}


def dummy_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def introspection_app():
    settings = Settings(environment="test", database_url="sqlite://")
    return wiring.api_app(Runtime.create(settings, engine=make_engine("sqlite://")))


# ----------------------------------------------------------------------------- tests


def test_every_route_has_a_row_and_every_row_a_route():
    app = introspection_app()
    routes = api_routes(app)
    missing = [row_text(m, p, required_roles(r)) for m, p, r in routes if (m, p) not in ROUTE_RULES]
    assert not missing, (
        "routes without a row in ROUTE_RULES (tests/test_auth_matrix.py); add these rows "
        "(check the roles are what you mean):\n" + "\n".join(missing)
    )
    present = {(m, p) for m, p, _ in routes}
    stale = [f"{k!r}" for k in ROUTE_RULES if k not in present]
    assert not stale, (
        "rows in ROUTE_RULES for routes that do not exist; remove them:\n" + "\n".join(stale)
    )
    others = non_api_paths(app)
    assert not others, f"non-API routes escape the auth matrix: {others}"


def test_rows_match_the_routes_require():
    problems = []
    for method, path, route in api_routes(introspection_app()):
        rule = ROUTE_RULES.get((method, path))
        if rule is None:
            continue  # reported by the test above
        allowed = required_roles(route)
        if isinstance(rule, Public):
            if allowed is not None:
                problems.append(
                    f"{method} {path}: row says Public but the route uses require(); "
                    f"row should be:\n{row_text(method, path, allowed)}"
                )
            elif not rule.reason.strip():
                problems.append(f"{method} {path}: Public needs a reason")
        elif allowed is None:
            problems.append(
                f"{method} {path}: row lists roles but the route has no require() "
                "dependency: anyone could call it"
            )
        elif expected_roles(rule) != allowed:
            problems.append(
                f"{method} {path}: row says {sorted(expected_roles(rule))}, require() "
                f"allows {sorted(allowed)}; row should be:\n{row_text(method, path, allowed)}"
            )
    assert not problems, "\n".join(problems)


@pytest.fixture
async def matrix_client(settings, engine, dev_env):
    # The dev server, so that whatever the calls start cannot disturb the shared time-skipping
    # server other tests rely on.
    runtime = Runtime.create(settings, engine=engine, temporal_client=dev_env.client)
    transport = httpx.ASGITransport(app=wiring.api_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


# The auth decision does not depend on the database backend: SQLite only, to keep this quick.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_each_role_gets_what_its_row_says(matrix_client, keys):
    wrong = []
    for method, path, _ in api_routes(introspection_app()):
        rule = ROUTE_RULES.get((method, path))
        if rule is None or isinstance(rule, Public):
            continue
        allowed = expected_roles(rule)
        url = dummy_path(path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        r = await matrix_client.request(method, url, json=body)
        if r.status_code != 401:
            wrong.append(f"{method} {path} without a key: {r.status_code}, expected 401")
        for role in Role:
            r = await matrix_client.request(method, url, json=body, headers=auth(keys[role]))
            if role in allowed and r.status_code in (401, 403):
                wrong.append(f"{method} {path} as {role.value}: {r.status_code}, expected access")
            if role not in allowed and r.status_code != 403:
                wrong.append(f"{method} {path} as {role.value}: {r.status_code}, expected 403")
    assert not wrong, "\n".join(wrong)


def test_the_matrix_sees_router_level_and_missing_guards():
    """Guards the helpers above: a router-level require() counts, an unguarded route shows up."""
    from fastapi import APIRouter, Depends, FastAPI

    from api.deps import require

    guarded = APIRouter(prefix="/g", dependencies=[Depends(require(Role.sales))])
    guarded.add_api_route("/a", lambda: None, methods=["GET"])
    open_ = APIRouter()
    open_.add_api_route("/b/{x}", lambda x: None, methods=["POST"])
    app = FastAPI()
    app.include_router(guarded)
    app.include_router(open_)
    found = {(m, p): required_roles(d) for m, p, d in api_routes(app)}
    assert found == {("GET", "/g/a"): frozenset({Role.sales, Role.admin}), ("POST", "/b/{x}"): None}
    assert row_text("POST", "/b/{x}", None).startswith('    ("POST", "/b/{x}"): Public(')
