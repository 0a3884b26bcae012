"""The console's auth matrix: every console route has a row here, and every role gets what its
row says, signed in through the console's own sign-in (a session cookie, not a bearer key).

ADDING A CONSOLE PAGE? Add a row per route, the roles you gave `kit.require(...)` (admin is
implied), or `Public(reason)` for the sign-in pages and the static files. The failure message
prints the row to paste.

- no session: GET is 303 to the sign-in page, anything else a 401 page;
- a role outside the row: a 403 page;
- a role in the row: neither 401 nor 403 nor a redirect to the sign-in page (404, 422 for the
  dummy path "x" are fine: this is about the auth decision). Posts carry the CSRF token.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from rejse.roles import Role
from tests.console.conftest import sign_in
from tests.test_auth_matrix import Public, _iter_routes, introspection_app

M, A, S = Role.marketer, Role.analyst, Role.sales

CONSOLE_RULES: dict[tuple[str, str], set[Role] | Public] = {
    ("GET", "/console"): Public("front door: sends the visitor to sign-in or to their home page"),
    ("GET", "/console/sign-in"): Public("the sign-in form itself"),
    ("POST", "/console/sign-in"): Public("exchanges an API key for a session; CSRF-checked"),
    ("POST", "/console/language"): Public("the language choice, also before sign-in; CSRF"),
    ("POST", "/console/sign-out"): {M, A, S},
    ("GET", "/console/overview"): {M, A},
    ("GET", "/console/overview/chart/{name}.svg"): {M, A},
    ("GET", "/console/journeys"): {M, A},
    ("GET", "/console/journeys/new"): {M},
    ("POST", "/console/journeys/new"): {M},
    ("GET", "/console/journeys/{key}"): {M, A},
    ("GET", "/console/journeys/{key}/edit"): {M},
    ("POST", "/console/journeys/{key}/edit"): {M},
    ("POST", "/console/journeys/{key}/publish"): {M},
    ("POST", "/console/journeys/{key}/{action}"): {M},
    ("GET", "/console/audiences"): {M, A},
    ("GET", "/console/audiences/new"): {M},
    ("POST", "/console/audiences/new"): {M},
    ("POST", "/console/audiences/preview"): {M, A},
    ("GET", "/console/audiences/{key}"): {M, A},
    ("GET", "/console/audiences/{key}/edit"): {M},
    ("POST", "/console/audiences/{key}/edit"): {M},
    ("POST", "/console/audiences/{key}/delete"): {M},
    ("GET", "/console/audiences/{key}/export.csv"): {M, A},
    # console-b: profiles, templates, sales, data maturity
    ("GET", "/console/profiles"): {M, A},
    ("GET", "/console/profiles/{profile_id}"): {M, A},
    ("GET", "/console/profiles/{profile_id}/export"): {Role.admin},
    ("GET", "/console/profiles/{profile_id}/erase"): {Role.admin},
    ("POST", "/console/profiles/{profile_id}/erase"): {Role.admin},
    ("GET", "/console/templates"): {M, A},
    ("GET", "/console/templates/view"): {M, A},
    ("GET", "/console/templates/frame"): {M, A},
    ("GET", "/console/templates/edit"): {M},
    ("POST", "/console/templates/edit"): {M},
    ("GET", "/console/sales"): {S},
    ("GET", "/console/sales/leads/{lead_id}"): {S},
    ("POST", "/console/sales/leads/{lead_id}/outcome"): {S},
    ("GET", "/console/sales/team"): {M, A, S},
    ("GET", "/console/maturity"): {M, A},
    ("POST", "/console/maturity"): {M},
    ("GET", "/console/maturity/{assessment_id}"): {M, A},
}
SIGN_OUT = "/console/sign-out"
STATIC = "/console/static"  # the vendored htmx and our CSS: public files of the package


def console_routes(app) -> list[tuple[str, str, object]]:
    out = []
    for path, methods, dependant, route in _iter_routes(app):
        if str(path) == "/console" or str(path).startswith("/console/"):
            if isinstance(route, APIRoute):
                out.extend((m, path, dependant) for m in sorted(methods))
            else:
                assert path == STATIC, f"console route {path} is no page route"
    return out


def console_roles(dependant) -> frozenset[Role] | None:
    found = None
    stack = [dependant]
    while stack:
        current = stack.pop()
        for dep in current.dependencies:
            allowed = getattr(dep.call, "console_roles", None)
            if allowed is not None:
                found = frozenset(allowed) if found is None else found & frozenset(allowed)
            stack.append(dep)
    return found


def row_text(method: str, path: str, allowed: frozenset[Role] | None) -> str:
    if allowed is None:
        return f'    ("{method}", "{path}"): Public("<why no session is needed>"),'
    roles = sorted(allowed - {Role.admin}) or [Role.admin]
    return f'    ("{method}", "{path}"): {{{", ".join(f"Role.{r.value}" for r in roles)}}},'


def test_every_console_route_has_a_row_and_every_row_a_route():
    routes = console_routes(introspection_app())
    missing = [
        row_text(m, p, console_roles(d)) for m, p, d in routes if (m, p) not in CONSOLE_RULES
    ]
    assert not missing, "console routes without a row in CONSOLE_RULES:\n" + "\n".join(missing)
    present = {(m, p) for m, p, _ in routes}
    stale = [repr(k) for k in CONSOLE_RULES if k not in present]
    assert not stale, "rows for console routes that do not exist:\n" + "\n".join(stale)


def test_console_rows_match_the_routes_require():
    problems = []
    for method, path, dependant in console_routes(introspection_app()):
        rule = CONSOLE_RULES.get((method, path))
        allowed = console_roles(dependant)
        if rule is None:
            continue
        if isinstance(rule, Public):
            if allowed is not None:
                problems.append(f"{method} {path}: Public, but it requires {sorted(allowed)}")
        elif allowed != frozenset(rule) | {Role.admin}:
            problems.append(f"{method} {path}: row should be\n{row_text(method, path, allowed)}")
    assert not problems, "\n".join(problems)


def _dummy(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_each_role_gets_what_its_console_row_says(app, keys):
    import httpx

    clients: dict[Role, tuple[httpx.AsyncClient, str]] = {}
    transport = httpx.ASGITransport(app=app)
    anonymous = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    try:
        for role in Role:
            if role is Role.ingest:
                continue  # cannot sign in (tests/console/test_sessions.py)
            c = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            clients[role] = (c, await sign_in(c, keys[role]))
        wrong = []
        # Sign-out last: it ends the sessions the other calls use.
        routes = sorted(console_routes(introspection_app()), key=lambda r: r[1] == SIGN_OUT)
        for method, path, _ in routes:
            rule = CONSOLE_RULES.get((method, path))
            if rule is None or isinstance(rule, Public):
                continue
            url = _dummy(path)
            r = await anonymous.request(method, url, data={})
            expected = 303 if method == "GET" else 401
            if r.status_code != expected:
                wrong.append(f"{method} {path} signed out: {r.status_code}, expected {expected}")
            for role, (c, csrf) in clients.items():
                data = {"csrf_token": csrf} if method != "GET" else None
                r = await c.request(method, url, data=data)
                to_sign_in = "/sign-in?next=" in r.headers.get("location", "")
                allowed = role is Role.admin or role in rule
                if allowed and (r.status_code in (401, 403) or to_sign_in):
                    wrong.append(f"{method} {path} as {role.value}: {r.status_code}")
                if not allowed and r.status_code != 403:
                    wrong.append(f"{method} {path} as {role.value}: {r.status_code}, expected 403")
                if r.status_code >= 500:
                    wrong.append(f"{method} {path} as {role.value}: {r.status_code}")
        assert not wrong, "\n".join(wrong)
    finally:
        await anonymous.aclose()
        for c, _ in clients.values():
            await c.aclose()
