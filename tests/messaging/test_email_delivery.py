"""Acceptance: abandoned-cart emails arrive at a real local SMTP server (aiosmtpd) with subject,
HTML and text parts, Danish text for a da-DK profile, the cart lines, the recovery URL and a
working RFC 8058 one-click unsubscribe."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlmodel import Session

from rejse.contracts import SendRequest
from rejse.messaging.sender import send_message
from rejse.profiles.service import load_snapshot
from rejse.roles import Role
from tests.conftest import auth
from tests.messaging.conftest import CHECKOUT, NOON, mette


def request(pid: str, step: str, template: str = "abandoned_cart/reminder", **kw) -> SendRequest:
    return SendRequest(
        idempotency_key=f"journey:abandoned-cart:{pid}:7c1b:{step}",
        profile_id=pid,
        channel="email",
        template=template,
        journey_key="abandoned-cart",
        journey_version=1,
        step_id=step,
        trigger=CHECKOUT,
        **kw,
    )


def parts(msg):
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    nbsp = str.maketrans({"\xa0": " ", "\u202f": " "})  # Babel uses no-break spaces
    return text.translate(nbsp), html.translate(nbsp)


async def test_danish_reminder_arrives_with_parts_cart_and_unsubscribe(mail_runtime, smtp, client):
    box, _ = smtp
    pid = mette(mail_runtime)
    result = send_message(
        mail_runtime.settings, mail_runtime.engine, request(pid, "reminder_1"), now=NOON
    )
    assert result.status == "sent", result

    assert len(box.messages) == 1
    msg = box.messages[0]
    assert msg["To"] == "mette.hansen@example.dk"
    assert msg["Subject"] == "Mette, din kurv venter stadig på dig"
    assert msg["Message-ID"] == f"<{result.message_id}@nordvejr.example>"
    text, html = parts(msg)
    for body in (text, html):
        assert "Regnjakke Aarhus" in body
        assert "Uldsokker 3-pak" in body
        assert "1.249,00 kr." in body
        assert "899,00 kr." in body
    assert "Hej Mette" in text
    assert "Gå til din kurv" in text
    assert (
        "https://butik.example.dk/checkouts/7c1b2d0f9a4e4f6b8c3d2e1f0a9b8c7d/recover?key=3f2a"
        in text
    )
    # HTML links go through the signed click redirect; the pixel is there
    assert "/t/c/" in html
    assert "/t/o/" in html
    assert "butik.example.dk" not in html

    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = msg["List-Unsubscribe"].strip("<>")
    path = urlsplit(unsub).path
    r = await client.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    with Session(mail_runtime.engine) as s:
        assert load_snapshot(s, profile_id=pid).consents["email"] == "revoked"

    # the next marketing email is suppressed, and the skip is in the log with its reason
    second = send_message(
        mail_runtime.settings,
        mail_runtime.engine,
        request(pid, "reminder_2", "abandoned_cart/free_shipping"),
        now=NOON,
    )
    assert second.status == "skipped"
    assert "no_consent" in second.reason
    assert len(box.messages) == 1


async def test_free_shipping_in_swedish_and_english_fallback(mail_runtime, smtp):
    box, _ = smtp
    sv = mette(
        mail_runtime,
        locale="sv-SE",
        identifiers={"email": "anna@example.se"},
        traits={"first_name": "Anna"},
    )
    fr = mette(mail_runtime, locale="fr-FR", identifiers={"email": "jean@example.fr"}, traits={})
    for pid in (sv, fr):
        result = send_message(
            mail_runtime.settings,
            mail_runtime.engine,
            request(pid, "reminder_2", "abandoned_cart/free_shipping"),
            now=NOON,
        )
        assert result.status == "sent"
    swedish, english = box.messages
    assert swedish["Subject"].startswith("Fri frakt")
    assert "1 249,00 Dkr" in parts(swedish)[0]
    assert "Hej Anna" in parts(swedish)[0]
    assert english["Subject"].startswith("Free shipping")
    assert "Hi," in parts(english)[0]
    assert "DKK1,249.00" in parts(english)[0]


async def test_open_and_click_become_events_and_log_status(mail_runtime, smtp, client, keys):
    from sqlmodel import select

    from rejse.models.events import Event

    box, _ = smtp
    pid = mette(mail_runtime)
    result = send_message(
        mail_runtime.settings, mail_runtime.engine, request(pid, "reminder_1"), now=NOON
    )
    _, html = parts(box.messages[0])
    import re

    pixel = re.search(r'src="http://testserver(/t/o/[^"]+)"', html).group(1)
    link = re.search(r'href="http://testserver(/t/c/[^"]+)"', html).group(1)
    assert (await client.get(pixel)).headers["content-type"] == "image/gif"
    r = await client.get(link)
    assert r.status_code == 302
    assert r.headers["location"].startswith("https://butik.example.dk/")
    await client.get(link)  # a second click counts, but makes no second event
    r = await client.get(link[:-3] + "AAA")
    assert r.status_code == 404
    with Session(mail_runtime.engine) as s:
        names = sorted(e.event for e in s.exec(select(Event).where(Event.profile_id == pid)))
    assert names == ["Email Clicked", "Email Opened"]
    r = await client.get(f"/api/messages/{result.message_id}", headers=auth(keys[Role.analyst]))
    assert r.json()["status"] == "clicked"
    assert r.json()["click_count"] == 2
