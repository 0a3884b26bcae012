"""`GET /api/messages` shows what was sent without its live tokens: a reader of the log (an
analyst key) cannot unsubscribe, change the preferences of, or click for the recipient with any
link from the answer, and the bodies stay readable."""

from __future__ import annotations

import re

from sqlmodel import Session

from rejse.messaging.sender import send_message
from rejse.models.messaging import Message
from rejse.profiles.service import load_snapshot
from rejse.roles import Role
from tests.conftest import auth
from tests.messaging.conftest import NOON, mette
from tests.messaging.test_channels import req

URL = re.compile(r"https?://[^\s\"'<>]+")
LIVE_TOKEN = re.compile(r"/(?:u|p|t/[oc])/[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")


def _consents(runtime, pid: str) -> dict[str, str]:
    with Session(runtime.engine) as s:
        snap = load_snapshot(s, profile_id=pid)
        assert snap is not None
        return dict(snap.consents)


async def test_analyst_cannot_change_consent_with_any_url_from_the_message_log(
    client, keys, runtime
):
    pid = mette(runtime)
    sent = send_message(runtime.settings, runtime.engine, req(pid, "email"), now=NOON)
    assert sent.status == "sent"
    with Session(runtime.engine) as s:
        stored = s.get(Message, sent.message_id)
        assert stored is not None
        raw = f"{stored.body_html}\n{stored.body_text}"
    # the stored message holds live links: the test would prove nothing otherwise
    assert LIVE_TOKEN.search(raw), raw[:500]
    before = _consents(runtime, pid)

    analyst = auth(keys[Role.analyst])
    listed = await client.get(f"/api/messages?profile_id={pid}", headers=analyst)
    single = await client.get(f"/api/messages/{sent.message_id}", headers=analyst)
    assert listed.status_code == 200, listed.text
    assert single.status_code == 200, single.text
    [row] = listed.json()
    assert row == single.json()
    shown = "\n".join(row[k] or "" for k in ("subject", "body_text", "body_html"))
    assert not LIVE_TOKEN.search(shown), shown
    # readable: the text and the links' places are still there
    assert "Regnjakke Aarhus" in shown
    assert "http://testserver/u/\u2026" in shown
    assert "http://testserver/t/c/\u2026" in row["body_html"]

    urls = {u.rstrip(".,)") for u in URL.findall(shown)}
    ours = sorted(u for u in urls if u.startswith("http://testserver/"))
    assert ours, "the body should still show where its links went"
    for url in ours:
        path = url.removeprefix("http://testserver")
        for method in ("GET", "POST"):
            r = await client.request(
                method,
                path,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                content="List-Unsubscribe=One-Click&unsubscribe_all=on",
            )
            # the open pixel answers with its image whatever the token; it counts nothing here
            allowed = (200, 405) if path.startswith("/t/o/") else (404, 405)
            assert r.status_code in allowed, (method, path, r.status_code)
    assert _consents(runtime, pid) == before
    with Session(runtime.engine) as s:
        after = s.get(Message, sent.message_id)
        assert after is not None
        assert (after.status, after.open_count, after.click_count) == ("sent", 0, 0)
