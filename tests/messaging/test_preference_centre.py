"""The preference centre and the unsubscribe pages, end to end: a real email at a real SMTP
server (aiosmtpd), its links followed over real HTTP to the API under uvicorn on loopback, in
each language (da, sv, en), each choice (email, sms, all marketing; off and on again) saved
and then honoured by the send guards; tampered or foreign tokens change nothing."""

from __future__ import annotations

import re
from email.message import EmailMessage
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from sqlmodel import Session, select

from rejse.messaging import tokens
from rejse.messaging.sender import send_message
from rejse.models.messaging import Message
from rejse.models.profiles import Consent, Profile
from rejse.runtime import Runtime
from tests.messaging.conftest import NOON, mette, with_settings
from tests.messaging.test_channels import req
from tests.messaging.test_email_delivery import request

PREFS_LINK = re.compile(r"http://127\.0\.0\.1:\d+/p/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

LANGUAGES = [
    # profile locale, page language, title, a choice's label, saved, nothing received
    (
        "da-DK",
        "da",
        "Dine præferencer",
        "E-mails med tilbud, påmindelser og nyheder",
        "Dine valg er gemt.",
        "Lige nu modtager du ingen markedsføring fra os.",
    ),
    (
        "sv-SE",
        "sv",
        "Dina inställningar",
        "Mejl med erbjudanden, påminnelser och nyheter",
        "Dina val har sparats.",
        "Just nu får du ingen marknadsföring från oss.",
    ),
    (
        "fr-FR",
        "en",
        "Your preferences",
        "Emails with offers, reminders and news",
        "Your choices are saved.",
        "You currently receive no marketing from us.",
    ),
]
UNSUBSCRIBE = {
    "da": ("Vil du ikke længere modtage markedsføringsmails fra os?", "Du er afmeldt"),
    "sv": ("Vill du sluta få marknadsföringsmejl från oss?", "Du är avregistrerad"),
    "en": ("Do you want to stop receiving marketing emails from us?", "You are unsubscribed"),
}


@pytest.fixture
def live(runtime, smtp, served) -> Runtime:
    """Sends to the local SMTP server, with links that point at the API on loopback."""
    return with_settings(
        runtime,
        smtp_url=smtp[1],
        email_from="Nordvejr <butik@nordvejr.example>",
        public_url=served,
        message_frequency_cap=0,
    )


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


class Page(HTMLParser):
    """What a browser shows of one of our pages: its language, checkboxes, links, text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.lang: str | None = None
        self.boxes: dict[str, bool] = {}
        self.links: list[str] = []
        self.forms: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "input" and a.get("type") == "checkbox":
            self.boxes[a["name"]] = "checked" in a
        elif tag == "a":
            self.links.append(a["href"])
        elif tag == "form":
            self.forms.append(a)

    def handle_data(self, data):
        if data.strip():
            self.text.append(" ".join(data.split()))


def consents(rt: Runtime, pid: str) -> dict[str, tuple[str, str]]:
    with Session(rt.engine) as s:
        rows = s.exec(select(Consent).where(Consent.profile_id == pid))
        return {r.channel: (r.status, r.source) for r in rows}


def send(rt: Runtime, box, pid: str, step: str, **kw) -> tuple[str, EmailMessage]:
    result = send_message(rt.settings, rt.engine, request(pid, step, **kw), now=NOON)
    assert result.status == "sent", result
    return result.message_id, box.messages[-1]


def preferences_link(msg: EmailMessage) -> str:
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    [link] = set(PREFS_LINK.findall(text))
    assert f'href="{link}"' in html  # the footer link goes straight there, no click redirect
    return link


async def save(http: httpx.AsyncClient, link: str, **fields: str) -> Page:
    r = await http.post(link, data={**fields, "save": "1"})
    assert r.status_code == 200, r.text
    return Page(r.text)


@pytest.mark.parametrize(("locale", "lang", "title", "email_label", "saved", "none"), LANGUAGES)
async def test_each_choice_in_each_language_is_saved_and_honoured(
    live, smtp, http, locale, lang, title, email_label, saved, none
):
    box, _ = smtp
    pid = mette(
        live,
        locale=locale,
        identifiers={"email": f"kunde.{lang}@example.dk", "phone": "+4520123456"},
    )
    message_id, msg = send(live, box, pid, "s1")
    link = preferences_link(msg)
    source = ("preferences:" + message_id,)

    r = await http.get(link)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store, private"
    page = Page(r.text)
    assert page.lang == lang
    assert title in page.text
    assert email_label in page.text
    assert page.boxes == {"email": True, "sms": True, "unsubscribe_all": False}
    assert consents(live, pid) == {}  # a GET changes nothing

    # email off
    page = await save(http, link, sms="on")
    assert saved in page.text
    assert page.boxes == {"email": False, "sms": True, "unsubscribe_all": False}
    assert consents(live, pid) == {"email": ("revoked", *source)}
    skipped = send_message(live.settings, live.engine, request(pid, "s2"), now=NOON)
    assert skipped.status == "skipped"
    assert skipped.reason == "no_consent (email revoked)"

    # sms off too: nothing is received, and the page says so
    page = await save(http, link)
    assert page.boxes == {"email": False, "sms": False, "unsubscribe_all": False}
    assert none in page.text
    assert consents(live, pid)["sms"] == ("revoked", *source)

    # email back on, and all marketing off: all marketing wins over the channel
    page = await save(http, link, email="on", unsubscribe_all="on")
    assert page.boxes == {"email": True, "sms": False, "unsubscribe_all": True}
    assert none in page.text
    assert consents(live, pid) == {
        "email": ("granted", *source),
        "sms": ("revoked", *source),
        "marketing": ("revoked", *source),
    }
    blocked = send_message(live.settings, live.engine, request(pid, "s3"), now=NOON)
    assert blocked.status == "skipped"
    assert blocked.reason == "no_consent (marketing revoked)"
    sms = send_message(live.settings, live.engine, req(pid, "sms", "s3"), now=NOON)
    assert sms.reason == "no_consent (marketing revoked)"
    receipt = send_message(
        live.settings, live.engine, request(pid, "receipt", transactional=True), now=NOON
    )
    assert receipt.status == "sent"  # transactional mail is not marketing

    # all marketing back on (sms on again too): sending resumes
    page = await save(http, link, email="on", sms="on")
    assert page.boxes == {"email": True, "sms": True, "unsubscribe_all": False}
    assert consents(live, pid) == {
        "email": ("granted", *source),
        "sms": ("granted", *source),
        "marketing": ("granted", *source),
    }
    assert send_message(live.settings, live.engine, request(pid, "s4"), now=NOON).status == "sent"
    # a reload shows what was saved, without the "saved" notice
    page = Page((await http.get(link)).text)
    assert page.boxes == {"email": True, "sms": True, "unsubscribe_all": False}
    assert saved not in page.text


@pytest.mark.parametrize("lang", ["da", "sv", "en"])
async def test_unsubscribe_pages_speak_the_profiles_language(live, smtp, http, lang):
    box, _ = smtp
    locale = {"da": "da-DK", "sv": "sv_SE", "en": "en-GB"}[lang]
    pid = mette(live, locale=locale, identifiers={"email": f"afmeld.{lang}@example.dk"})
    _, msg = send(live, box, pid, "s1")
    url = msg["List-Unsubscribe"].strip("<>")
    question, done = UNSUBSCRIBE[lang]

    page = Page((await http.get(url)).text)
    assert page.lang == lang
    assert question in page.text
    assert consents(live, pid) == {}  # the page itself unsubscribes nobody
    # the page leads to the preference centre of the same message
    [prefs] = [link for link in page.links if "/p/" in link]
    assert urljoin(url, prefs) == preferences_link(msg)
    assert Page((await http.get(urljoin(url, prefs))).text).lang == lang

    # the page's button posts its form back to the same URL
    assert page.forms == [{"method": "post"}]
    r = await http.post(url)
    assert r.status_code == 200
    answer = Page(r.text)
    assert answer.lang == lang
    assert done in answer.text
    assert consents(live, pid)["email"][0] == "revoked"


async def test_page_language_from_a_locale_trait_or_the_message(live, smtp, http):
    box, _ = smtp
    # no locale column, a locale trait: the trait decides (the email itself went out in English)
    trait = mette(live, locale=None, traits={"locale": "sv-SE"}, identifiers={"email": "t@e.se"})
    _, msg = send(live, box, trait, "s1")
    assert Page((await http.get(preferences_link(msg))).text).lang == "sv"
    # a profile that lost its locale since: the message's language
    dane = mette(live, identifiers={"email": "dane@example.dk"})
    _, msg = send(live, box, dane, "s1")
    with Session(live.engine) as s:
        row = s.get(Profile, dane)
        row.locale = None
        s.add(row)
        s.commit()
    assert Page((await http.get(preferences_link(msg))).text).lang == "da"


async def test_tampered_or_foreign_tokens_are_refused_and_change_nothing(live, smtp, http):
    box, _ = smtp
    pid = mette(live, identifiers={"email": "mette.hansen@example.dk", "phone": "+4520123456"})
    message_id, msg = send(live, box, pid, "s1")
    link = preferences_link(msg)
    base = f"{urlsplit(link).scheme}://{urlsplit(link).netloc}"
    token = link.rsplit("/", 1)[1]
    payload, mac = token.split(".")
    secret = live.settings.secret_key
    bad = {
        "tampered signature": f"{payload}.{mac[:-2]}{'AB' if mac[-2:] != 'AB' else 'CD'}",
        "another message": f"{tokens._b64(b'p:msg_other')}.{mac}",
        "an unsubscribe token": tokens.sign(secret, "u", message_id),
        "a click token": tokens.sign(secret, "c", message_id, 0),
        "garbage": "not-a-token",
    }
    for what, forged in bad.items():
        r = await http.get(f"{base}/p/{forged}")
        assert r.status_code == 404, what
        body = r.json()
        assert body["errors"][0]["field"] == "token", what
        r = await http.post(f"{base}/p/{forged}", data={"save": "1", "unsubscribe_all": "on"})
        assert r.status_code == 404, what
    # a preference token does not unsubscribe either
    p_token = tokens.sign(secret, "p", message_id)
    assert (await http.get(f"{base}/u/{p_token}")).status_code == 404
    assert (await http.post(f"{base}/u/{p_token}")).status_code == 404
    assert consents(live, pid) == {}

    # a real token with a form that is not the page's: 4xx naming the field, nothing saved
    for data, field in [
        ({"unsubscribe_all": "on"}, "save"),
        ({"save": "1", "email": "yes"}, "email"),
        ({"save": "1", "sms": ["on", "on"]}, "sms"),
    ]:
        r = await http.post(link, data=data)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field
    r = await http.post(link, content=b"save=1&email=" + b"x" * 5000)
    assert r.status_code == 413
    assert r.json()["errors"][0]["field"] == "body"
    assert consents(live, pid) == {}

    # the link lives as long as its message: gone (erased with its profile), it answers 404
    with Session(live.engine) as s:
        s.delete(s.get(Message, message_id))
        s.commit()
    assert (await http.get(link)).status_code == 404
