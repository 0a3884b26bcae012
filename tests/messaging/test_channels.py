"""Channels other than SMTP email: the development outbox, SMS through a Twilio-compatible HTTP
API (a local fake server), the in-app inbox and the signed webhook; plus GDPR erase."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from sqlmodel import Session

from rejse.contracts import SendRequest
from rejse.messaging.sender import send_message
from rejse.messaging.service import MessagingEraser, list_messages
from rejse.outbound import Transient
from rejse.roles import Role
from tests.conftest import auth
from tests.messaging.conftest import CHECKOUT, NOON, mette, with_settings


class FakeProvider:
    """A tiny HTTP server recording requests; `replies` is a queue of (status, json) answers."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.replies: list[tuple[int, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, payload = outer.replies.pop(0) if outer.replies else (201, {"sid": "SM123"})
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider():
    with FakeProvider() as p:
        yield p


def req(pid: str, channel: str, step: str = "s1", **kw) -> SendRequest:
    return SendRequest(
        idempotency_key=f"test:{pid}:{channel}:{step}",
        profile_id=pid,
        channel=channel,
        template="abandoned_cart/reminder",
        journey_key="abandoned-cart",
        step_id=step,
        trigger=CHECKOUT,
        **kw,
    )


async def test_email_outbox_without_smtp_readable_through_api(runtime, client, keys):
    pid = mette(runtime)
    result = send_message(runtime.settings, runtime.engine, req(pid, "email"), now=NOON)
    assert result.status == "sent"
    again = send_message(runtime.settings, runtime.engine, req(pid, "email"), now=NOON)
    assert again == result  # idempotent replay
    r = await client.get(
        f"/api/messages?profile_id={pid}&journey=abandoned-cart&channel=email",
        headers=auth(keys[Role.analyst]),
    )
    [msg] = r.json()
    assert msg["status"] == "sent"
    assert msg["subject"] == "Mette, din kurv venter stadig på dig"
    assert "Regnjakke Aarhus" in msg["body_text"]
    assert msg["to_address"] == "mette.hansen@example.dk"
    assert (
        await client.get("/api/messages?channel=sms", headers=auth(keys[Role.analyst]))
    ).json() == []
    assert (await client.get("/api/messages", headers=auth(keys[Role.ingest]))).status_code == 403


async def test_sms_through_twilio_compatible_api(runtime, provider):
    rt = with_settings(
        runtime,
        sms_api_url=provider.url,
        sms_account_sid="AC1",
        sms_auth_token="tok",
        sms_from="+4570000000",
    )
    pid = mette(rt, identifiers={"phone": "+4520123456", "email": "m@example.dk"})
    provider.replies = [(503, {"message": "busy"})]
    with pytest.raises(Transient):  # transient: raise, Temporal retries
        send_message(rt.settings, rt.engine, req(pid, "sms"), now=NOON)
    result = send_message(rt.settings, rt.engine, req(pid, "sms"), now=NOON)
    assert result.status == "sent"
    sent = provider.requests[-1]
    assert sent["path"] == "/2010-04-01/Accounts/AC1/Messages.json"
    form = parse_qs(sent["body"].decode())
    assert form["To"] == ["+4520123456"]
    assert form["From"] == ["+4570000000"]
    assert form["Body"][0].startswith("Hej Mette! Din kurv er gemt")
    assert sent["headers"]["Authorization"].startswith("Basic ")

    bad = mette(rt, identifiers={"phone": "+4520000000", "email": "b@example.dk"})
    provider.replies = [(400, {"code": 21211, "message": "invalid To"})]
    failed = send_message(rt.settings, rt.engine, req(bad, "sms"), now=NOON)
    assert failed.status == "failed"
    assert "400 code 21211" in failed.reason
    with Session(rt.engine) as s:
        assert list_messages(s, profile_id=bad)[0].status == "failed"


async def test_invalid_address_fails_permanently_without_delivery(mail_runtime, smtp):
    box, _ = smtp
    pid = mette(mail_runtime, identifiers={"email": "not-an-address@"})
    result = send_message(mail_runtime.settings, mail_runtime.engine, req(pid, "email"), now=NOON)
    assert (result.status, result.reason) == ("failed", "invalid_address (email)")
    assert box.messages == []
    nobody = mette(mail_runtime, identifiers={"user_id": "u-1"})
    result = send_message(
        mail_runtime.settings, mail_runtime.engine, req(nobody, "email"), now=NOON
    )
    assert (result.status, result.reason) == ("skipped", "no_address (email)")


async def test_in_app_inbox_and_mark_read(runtime, client, keys):
    pid = mette(runtime)
    result = send_message(runtime.settings, runtime.engine, req(pid, "in_app"), now=NOON)
    assert result.status == "sent"
    ingest = auth(keys[Role.ingest])
    r = await client.get("/v1/inbox/cust-7012345678901", headers=ingest)
    [item] = r.json()
    assert item["subject"] == "Din kurv venter"
    assert "1.249,00" in item["text"]
    assert item["read_at"] is None
    r = await client.post(f"/v1/inbox/cust-7012345678901/{item['id']}/read", headers=ingest)
    assert r.status_code == 200
    assert r.json()["read_at"]
    assert (
        await client.get("/v1/inbox/cust-7012345678901?unread=true", headers=ingest)
    ).json() == []
    assert (
        await client.post(f"/v1/inbox/someone-else/{item['id']}/read", headers=ingest)
    ).status_code == 404
    assert (
        await client.get("/v1/inbox/cust-7012345678901", headers=auth(keys[Role.analyst]))
    ).status_code == 403


async def test_webhook_channel_posts_signed_json(runtime, provider):
    rt = with_settings(runtime, message_webhook_url=provider.url + "/hook")
    pid = mette(rt)
    result = send_message(rt.settings, rt.engine, req(pid, "webhook"), now=NOON)
    assert result.status == "sent"
    hit = provider.requests[-1]
    sig = dict(part.split("=", 1) for part in hit["headers"]["X-Rejse-Signature"].split(","))
    expected = hmac.new(
        rt.settings.secret_key.encode(), f"{sig['t']}.".encode() + hit["body"], hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(sig["v1"], expected)
    body = json.loads(hit["body"])
    assert body["body"]["type"] == "abandoned_cart.reminder"
    assert body["body"]["total"] == "1249.00"
    assert body["message_id"] == result.message_id

    other = mette(rt, identifiers={"email": "o@example.dk"})
    provider.replies = [(410, {"error": "gone"})]
    failed = send_message(rt.settings, rt.engine, req(other, "webhook"), now=NOON)
    assert (failed.status, failed.reason) == ("failed", "webhook rejected (410)")


async def test_gdpr_erase_removes_messages(runtime):
    pid = mette(runtime)
    send_message(runtime.settings, runtime.engine, req(pid, "email"), now=NOON)
    with Session(runtime.engine) as s:
        MessagingEraser().erase(s, pid)
        s.commit()
        assert list_messages(s, profile_id=pid) == []


async def test_api_template_version_is_used_and_logged_and_missing_template_fails(runtime):
    from rejse.messaging.template_store import add_version, create_template

    pid = mette(runtime)
    with Session(runtime.engine) as s:
        create_template(
            s,
            key="abandoned_cart/reminder",
            channel="email",
            variants={"da": {"subject": "v1", "html": "<p>{{ cart.url }}</p>"}},
        )
        add_version(
            s,
            key="abandoned_cart/reminder",
            channel="email",
            variants={
                "da": {
                    "subject": "v2 {{ profile.traits.first_name }}",
                    "html": "<p>{{ cart.url }}</p>",
                }
            },
        )
        s.commit()
    sent = send_message(runtime.settings, runtime.engine, req(pid, "email"), now=NOON)
    missing = send_message(
        runtime.settings,
        runtime.engine,
        req(pid, "email", "s2").model_copy(update={"template": "no/such"}),
        now=NOON,
    )
    assert missing.status == "failed"
    assert missing.reason.startswith("template_error: no email template")
    with Session(runtime.engine) as s:
        row = {m.id: m for m in list_messages(s, profile_id=pid)}[sent.message_id]
    assert (row.subject, row.template_version, row.locale) == ("v2 Mette", 2, "da")
    assert (
        row.body_text
        == "https://butik.example.dk/checkouts/7c1b2d0f9a4e4f6b8c3d2e1f0a9b8c7d/recover?key=3f2a"
    )


async def test_gdpr_delete_through_the_api_erases_the_message_log(runtime, client, keys):
    pid = mette(runtime)
    send_message(runtime.settings, runtime.engine, req(pid, "email"), now=NOON)
    r = await client.delete(f"/api/profiles/{pid}", headers=auth(keys[Role.admin]))
    assert r.status_code in (200, 202, 204), r.text
    with Session(runtime.engine) as s:
        assert list_messages(s, profile_id=pid) == []


def test_smtp_url_forms():
    from rejse.messaging.channels import SmtpConfig

    plain = SmtpConfig.parse("smtp://mail.example.com")
    assert (plain.host, plain.port, plain.use_tls, plain.start_tls, plain.username) == (
        "mail.example.com",
        25,
        False,
        False,
        None,
    )
    tls = SmtpConfig.parse("smtps://u%40x:p%2Fw@mail.example.com")
    assert (tls.port, tls.use_tls, tls.username, tls.password) == (465, True, "u@x", "p/w")
    start = SmtpConfig.parse("smtp://u:p@mail.example.com:587?starttls=true")
    assert (start.port, start.use_tls, start.start_tls) == (587, False, True)
    with pytest.raises(ValueError, match="must start with smtp:// or smtps://"):
        SmtpConfig.parse("http://mail.example.com")
