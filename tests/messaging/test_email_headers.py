"""Email headers as mailbox providers read them, checked on the bytes a real SMTP server
(aiosmtpd) received: `List-Unsubscribe` and `List-Unsubscribe-Post` as plain values (never
RFC 2047 encoded), a long list folded only between its `<...>` items, `Date` with a real zone,
the deterministic `Message-ID`."""

from __future__ import annotations

import datetime as dt
import re
from email.utils import parsedate_to_datetime

import pytest

from rejse.messaging import tokens
from rejse.messaging.channels import Outgoing, SmtpEmail
from rejse.messaging.sender import send_message
from tests.messaging.conftest import NOON, mette
from tests.messaging.test_email_delivery import request

DATE_LINE = re.compile(r"^Date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


def header_lines(raw: bytes, name: str) -> list[str]:
    """The physical lines of header `name` as received: its first line and continuations."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0].decode("ascii")
    out: list[str] = []
    taking = False
    for line in re.split(r"\r?\n", head):
        if line[:1] in (" ", "\t"):
            if taking:
                out.append(line)
            continue
        taking = line.lower().startswith(name.lower() + ":")
        if taking:
            out.append(line)
    return out


@pytest.fixture
def sent(mail_runtime, smtp) -> tuple[str, bytes, dt.datetime]:
    """One marketing email through the real sender: (message id, the bytes received, the
    second before it was sent)."""
    box, _ = smtp
    pid = mette(mail_runtime)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result = send_message(
        mail_runtime.settings, mail_runtime.engine, request(pid, "reminder_1"), now=NOON
    )
    assert result.status == "sent", result
    [raw] = box.raw
    return result.message_id, raw, before


def test_list_unsubscribe_headers_are_plain_values(mail_runtime, sent):
    message_id, raw, _ = sent
    token = tokens.sign(mail_runtime.settings.secret_key, "u", message_id)
    url = f"http://testserver/u/{token}"
    assert len(f"List-Unsubscribe: <{url}>") > 78  # long enough that folding is in play
    assert header_lines(raw, "List-Unsubscribe") == [f"List-Unsubscribe: <{url}>"]
    assert header_lines(raw, "List-Unsubscribe-Post") == [
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    ]


def test_date_has_a_real_zone_and_message_id_is_deterministic(sent):
    message_id, raw, before = sent
    [date] = header_lines(raw, "Date")
    assert DATE_LINE.match(date), date
    sent_at = parsedate_to_datetime(date.removeprefix("Date: "))
    assert sent_at.utcoffset() == dt.timedelta(0)
    assert before <= sent_at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert header_lines(raw, "Message-ID") == [f"Message-ID: <{message_id}@nordvejr.example>"]


async def test_a_long_unsubscribe_list_folds_only_between_items(mail_runtime, smtp):
    box, _ = smtp
    https = "<https://rejse.example.com/u/" + "A" * 90 + ".signature>"
    mailto = "<mailto:unsubscribe@nordvejr.example?subject=unsubscribe-" + "b" * 40 + ">"
    SmtpEmail(mail_runtime.settings).deliver(
        Outgoing(
            message_id="msg_fold",
            to="mette.hansen@example.dk",
            subject="Test",
            text="Hej",
            html=None,
            headers={"List-Unsubscribe": f"{https}, {mailto}"},
        )
    )
    SmtpEmail(mail_runtime.settings).deliver(
        Outgoing(
            message_id="msg_short",
            to="mette.hansen@example.dk",
            subject="Test",
            text="Hej",
            html=None,
            headers={"List-Unsubscribe": "<https://a.example/u/1>, <mailto:u@a.example>"},
        )
    )
    long_raw, short_raw = box.raw
    assert header_lines(long_raw, "List-Unsubscribe") == [
        f"List-Unsubscribe: {https},",
        f" {mailto}",
    ]
    assert header_lines(short_raw, "List-Unsubscribe") == [
        "List-Unsubscribe: <https://a.example/u/1>, <mailto:u@a.example>"
    ]
    # what a reader unfolds is the value as given
    assert box.messages[0]["List-Unsubscribe"] == f"{https}, {mailto}"
