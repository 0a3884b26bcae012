"""`rejse.messaging.mime` writes what `build_email` and the email package's generator write:
the same headers and parts as a reader parses them, for ASCII and Danish values, long lines,
leading dots and a folded `List-Unsubscribe`; it hands what needs SMTPUTF8 back."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from email.utils import format_datetime

import pytest
from aiosmtplib.email import flatten_message

from rejse.messaging.channels import EMAIL_POLICY, Outgoing, build_email, message_id_header
from rejse.messaging.mime import encoded

FROM = "Nordvejr <butik@nordvejr.example>"
NOW = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)
LONG_UNSUBSCRIBE = "<https://rejse.example/u/" + "A" * 80 + ">, <mailto:u@nordvejr.example>"

CASES = [
    {
        "subject": "Du glemte noget i kurven, Mette – æøå " * 3,
        "text": "Hej Mette,\n\nDin kurv venter. " + "x" * 100 + "\n.punktum\n\n",
        "html": '<html><body><p>Hej æøå</p>\n<a href="https://x.dk">x</a></body></html>',
    },
    {"subject": "plain", "text": "just ascii\r\nline two", "html": None},
    {"subject": "  spaces  inside ", "text": "trailing space \nand a tab\t\n", "html": "<p>x</p>"},
    {"subject": "", "text": "", "html": None},
]


def _ours(out: Outgoing) -> bytes:
    raw = encoded(
        policy=EMAIL_POLICY,
        email_from=FROM,
        to=out.to or "",
        subject=out.subject or "",
        date=format_datetime(NOW),
        message_id=message_id_header(out.message_id, FROM),
        headers=out.headers,
        text=out.text or "",
        html=out.html,
    )
    assert raw is not None
    assert raw.sender == "butik@nordvejr.example"
    assert raw.recipients == [out.to]
    return raw.data


@pytest.mark.parametrize("case", CASES)
def test_the_bytes_read_as_the_email_package_writes_them(case):
    out = Outgoing(
        message_id="msg_abc",
        to="mette.hansen@example.dk",
        headers={
            "List-Unsubscribe": LONG_UNSUBSCRIBE,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        **case,
    )
    data = _ours(out)
    head, body = data.split(b"\r\n\r\n", 1)
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))  # a URI never breaks
    assert all(len(line) <= 78 for line in body.split(b"\r\n"))
    assert data.isascii()
    theirs = message_from_bytes(
        flatten_message(build_email(out, email_from=FROM, now=NOW)), policy=policy.default
    )
    ours = message_from_bytes(data, policy=policy.default)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
        assert str(ours[name]) == str(theirs[name]), name
    for name in ("List-Unsubscribe", "List-Unsubscribe-Post"):
        assert str(ours[name]) == str(theirs[name]), name
    assert ours.get_content_type() == theirs.get_content_type()
    parts = [p for p in ours.walk() if not p.is_multipart()]
    want = [p for p in theirs.walk() if not p.is_multipart()]
    assert [(p.get_content_type(), p.get_content()) for p in parts] == [
        (p.get_content_type(), p.get_content()) for p in want
    ]
    assert not ours.defects
    assert not any(p.defects for p in parts)


def test_a_long_unsubscribe_list_folds_between_items_only():
    out = Outgoing("msg_a", "a@example.dk", "s", "t", None, {"List-Unsubscribe": LONG_UNSUBSCRIBE})
    head = _ours(out).split(b"\r\n\r\n")[0].decode()
    https, mailto = LONG_UNSUBSCRIBE.split(", ")
    assert f"List-Unsubscribe: {https},\r\n {mailto}\r\n" in head + "\r\n"


def test_a_non_ascii_address_is_left_to_the_email_package():
    args = {
        "policy": EMAIL_POLICY,
        "email_from": FROM,
        "subject": "s",
        "date": format_datetime(NOW),
        "message_id": "<m@x>",
        "headers": {},
        "text": "t",
        "html": None,
    }
    assert encoded(to="søren@example.dk", **args) is None
    assert encoded(to="soren@example.dk", **args) is not None
