"""Console sign-in: an API key for a session cookie (flags, hashed token), roles that cannot
sign in, revocation, idle expiry, sign-out, CSRF, languages and bad input. Both databases."""

from __future__ import annotations

import datetime as dt
import hashlib

import httpx
from sqlmodel import Session, select

from rejse.keys import revoke_key
from rejse.models.console import ConsoleSession
from rejse.roles import Role, key_id
from tests.console.conftest import csrf_of, sign_in


async def _post_sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    page = await client.get("/console/sign-in")
    return await client.post(
        "/console/sign-in", data={"csrf_token": csrf_of(page.text), "api_key": key}
    )


def _cookie_header(r: httpx.Response, name: str) -> str:
    found = [c for c in r.headers.get_list("set-cookie") if c.startswith(name + "=")]
    assert found, f"no {name} cookie in {r.headers.get_list('set-cookie')}"
    return found[0]


async def test_sign_in_sets_a_strict_httponly_cookie_and_stores_only_its_hash(
    console, keys, engine
):
    r = await _post_sign_in(console, keys[Role.marketer])
    assert r.status_code == 303
    assert r.headers["location"] == "/console"
    cookie = _cookie_header(r, "rejse_console")
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/console" in flags
    assert "secure" not in flags  # plain http: a Secure cookie would never come back
    token = cookie.split(";")[0].split("=", 1)[1]
    with Session(engine) as s:
        rows = list(s.exec(select(ConsoleSession)))
    assert [row.id for row in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert rows[0].key_id == key_id(keys[Role.marketer])
    assert token not in {row.id for row in rows}
    # ... and the session opens the pages of its role
    assert (await console.get("/console/overview")).status_code == 200


async def test_the_cookie_is_secure_over_tls(app, keys):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        r = await _post_sign_in(c, keys[Role.analyst])
    assert r.status_code == 303
    flags = [p.strip().lower() for p in _cookie_header(r, "rejse_console").split(";")]
    assert "secure" in flags
    assert "httponly" in flags
    assert "samesite=strict" in flags


async def test_an_ingest_key_cannot_sign_in(console, keys, engine):
    r = await _post_sign_in(console, keys[Role.ingest])
    assert r.status_code == 403
    assert 'data-field="api_key"' in r.text
    assert "indsamlingsnøgle" in r.text  # the field's message, in Danish by default
    assert not [c for c in r.headers.get_list("set-cookie") if c.startswith("rejse_console=")]
    with Session(engine) as s:
        assert list(s.exec(select(ConsoleSession))) == []


async def test_unknown_and_empty_keys_show_the_error_at_the_field(console):
    r = await _post_sign_in(console, "rjk_00000000_nope")
    assert r.status_code == 401
    assert 'id="f-api_key-error"' in r.text
    assert 'aria-invalid="true"' in r.text
    r = await _post_sign_in(console, "   ")
    assert r.status_code == 422
    assert 'id="f-api_key-error"' in r.text


async def test_a_revoked_key_ends_its_sessions_at_once(console, keys, engine):
    await sign_in(console, keys[Role.marketer])
    assert (await console.get("/console/overview")).status_code == 200
    with Session(engine) as s:
        revoke_key(s, key_id=key_id(keys[Role.marketer]))
        s.commit()
    r = await console.get("/console/overview")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/sign-in?next=%2Fconsole%2Foverview")
    assert "ended=1" in r.headers["location"]
    with Session(engine) as s:
        assert list(s.exec(select(ConsoleSession))) == []  # the row is gone, not just refused


async def test_an_idle_session_expires(console, keys, engine, runtime):
    await sign_in(console, keys[Role.analyst])
    idle = dt.timedelta(minutes=runtime.settings.console_idle_minutes)
    with Session(engine) as s:
        row = s.exec(select(ConsoleSession)).one()
        row.last_seen_at = row.last_seen_at - idle + dt.timedelta(minutes=1)
        s.add(row)
        s.commit()
    assert (await console.get("/console/overview")).status_code == 200  # within: refreshed
    with Session(engine) as s:
        row = s.exec(select(ConsoleSession)).one()
        row.last_seen_at = row.last_seen_at - idle - dt.timedelta(seconds=1)
        s.add(row)
        s.commit()
    r = await console.get("/console/overview")
    assert r.status_code == 303
    assert "/console/sign-in" in r.headers["location"]


async def test_signing_in_sweeps_sessions_idle_too_long(app, keys, engine, runtime):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as old:
        await sign_in(old, keys[Role.marketer])
    idle = dt.timedelta(minutes=runtime.settings.console_idle_minutes)
    with Session(engine) as s:
        row = s.exec(select(ConsoleSession)).one()
        row.last_seen_at = row.last_seen_at - idle - dt.timedelta(minutes=1)
        s.add(row)
        s.commit()
        stale = row.id
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as new:
        await sign_in(new, keys[Role.analyst])
    with Session(engine) as s:
        ids = [r.id for r in s.exec(select(ConsoleSession))]
    assert len(ids) == 1
    assert stale not in ids


async def test_sign_out_deletes_the_session_and_the_old_cookie_is_worthless(console, keys, engine):
    csrf = await sign_in(console, keys[Role.marketer])
    token = console.cookies.get("rejse_console")
    r = await console.post("/console/sign-out", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert r.headers["location"] == "/console/sign-in?out=1"
    with Session(engine) as s:
        assert list(s.exec(select(ConsoleSession))) == []
    console.cookies.set("rejse_console", token, domain="testserver.local", path="/console")
    assert (await console.get("/console/overview")).status_code == 303


async def test_a_forged_post_without_the_csrf_token_is_refused(console, keys, engine):
    await sign_in(console, keys[Role.marketer])
    for data in ({}, {"csrf_token": "0" * 64}):
        r = await console.post("/console/sign-out", data=data)
        assert r.status_code == 403
        assert "sikkerhedstoken" in r.text
    with Session(engine) as s:
        assert len(list(s.exec(select(ConsoleSession)))) == 1  # still signed in
    # the sign-in form too: a token from another browser's pre-session cookie is refused
    r = await console.post("/console/sign-in", data={"api_key": keys[Role.marketer]})
    assert r.status_code == 403


async def test_another_sessions_csrf_token_is_refused(app, keys):
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as a,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as b,
    ):
        csrf_a = await sign_in(a, keys[Role.marketer])
        await sign_in(b, keys[Role.marketer])
        r = await b.post("/console/sign-out", data={"csrf_token": csrf_a})
        assert r.status_code == 403


async def test_language_from_the_browser_then_from_the_choice(console, keys):
    r = await console.get("/console/sign-in", headers={"Accept-Language": "sv-SE,en;q=0.5"})
    assert '<html lang="sv">' in r.text
    assert "Logga in" in r.text
    r = await console.get("/console/sign-in", headers={"Accept-Language": "fr, en;q=0.3"})
    assert '<html lang="en">' in r.text
    r = await console.get("/console/sign-in")
    assert '<html lang="da">' in r.text  # default
    csrf = await sign_in(console, keys[Role.analyst])
    r = await console.post(
        "/console/language",
        data={"csrf_token": csrf, "language": "en", "next": "/console/overview"},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/console/overview"
    r = await console.get("/console/overview", headers={"Accept-Language": "sv"})
    assert '<html lang="en">' in r.text
    assert "Overview" in r.text
    r = await console.post("/console/language", data={"csrf_token": csrf, "language": "xx"})
    assert r.status_code == 422
    assert 'data-field="language"' in r.text


async def test_next_goes_only_to_console_pages(console, keys):
    page = await console.get("/console/sign-in?next=/console/overview")
    assert 'name="next" value="/console/overview"' in page.text
    r = await console.post(
        "/console/sign-in",
        data={
            "csrf_token": csrf_of(page.text),
            "api_key": keys[Role.marketer],
            "next": "https://evil.example/",
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/console"


async def test_bad_form_input_is_a_page_naming_the_field_never_a_500(console, keys):
    csrf = await sign_in(console, keys[Role.marketer])
    r = await console.post(
        "/console/language", data={"csrf_token": csrf, "language": "da\x00", "next": "x"}
    )
    assert r.status_code == 422
    assert 'data-field="language"' in r.text
    r = await console.post(
        "/console/language",
        content=b"csrf_token=" + csrf.encode() + b"&language=" + b"d" * (1024 * 1024 + 1),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413
    assert "text/html" in r.headers["content-type"]
    r = await console.post(
        "/console/language",
        content=b"csrf_token=" + csrf.encode() + b"&language=\xff",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code in (400, 422)
    assert "text/html" in r.headers["content-type"]
    r = await console.get("/console/sign-in?ended=7")
    assert r.status_code == 422
    assert 'data-field="ended"' in r.text
    r = await console.get("/console/overview/chart/nope.svg")
    assert r.status_code == 422
    assert 'data-field="name"' in r.text


async def test_pages_send_security_headers(console, keys):
    r = await console.get("/console/sign-in")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"].startswith("no-store")
    js = await console.get("/console/static/htmx.min.js")
    assert js.status_code == 200
    assert "htmx" in js.text
