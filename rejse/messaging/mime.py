"""The bytes of an outgoing email, written directly: what `channels.build_email` and the
email package's generator produce, for a fraction of their CPU (a send spends more time in
the email package's header parsing than in anything else).

Short ASCII header values are written as they are; any other value (non-ASCII, too long for
one line, a line break in it, an address of an unusual form) is folded by the email package
under the same policy `build_email` uses (RFC 2047 words for a non-ASCII subject, the
`List-Unsubscribe` folding of `channels.UriListHeader`), and kept for the next message that
repeats it. Bodies are UTF-8: 7bit when ASCII with short lines, else quoted-printable.
`encoded` answers None for what it does not write itself (a non-ASCII address, which needs
SMTPUTF8): the caller then sends the email package's message.
"""

from __future__ import annotations

import binascii
import functools
import re
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import parseaddr
from typing import TypeAlias

Policy: TypeAlias = "EmailPolicy[EmailMessage]"

MAX_LINE = 78  # the policy's max_line_length, as the email package folds
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+")
_LONG_LINE = re.compile(rb"[^\n]{%d}" % (MAX_LINE + 1))


_URI_LIST = re.compile(r"\s*<[^<>\s]+>(?:\s*,\s*<[^<>\s]+>)*\s*")
_URI = re.compile(r"<[^<>\s]+>")


def uri_list_lines(name: str, value: str, limit: int) -> list[str] | None:
    """The physical lines of a header whose value is a list of `<URI>`s (`List-Unsubscribe`):
    never encoded, broken only between items (a URI never breaks; an item longer than the line
    limit gets a line of its own, within RFC 5322's 998). None for any other value."""
    if not value.isascii() or not _URI_LIST.fullmatch(value):
        return None
    items = _URI.findall(value)
    lines = [f"{name}: {items[0]}"]
    for item in items[1:]:
        if len(lines[-1]) + len(", ") + len(item) > limit:
            lines[-1] += ","
            lines.append(f" {item}")
        else:
            lines[-1] += f", {item}"
    return lines


@dataclass(frozen=True)
class Encoded:
    """An email ready for the SMTP conversation: envelope sender, recipients, the bytes."""

    sender: str
    recipients: list[str]
    data: bytes


def _wire(policy: Policy) -> Policy:
    return policy.clone(linesep="\r\n")


@functools.lru_cache(maxsize=4096)
def _folded(policy: Policy, name: str, value: str) -> str:
    return str(policy.header_factory(name, value).fold(policy=_wire(policy)))


def header(policy: Policy, name: str, value: str) -> str:
    """One header as its CRLF-ended line(s)."""
    if name.lower() == "list-unsubscribe":
        uris = uri_list_lines(name, value, MAX_LINE)
        if uris is not None:
            return "\r\n".join(uris) + "\r\n"
    if (
        value.isascii()
        and len(name) + 2 + len(value) <= MAX_LINE
        and "\r" not in value
        and "\n" not in value
        and value == value.strip()
        and name.lower() not in ("from", "to", "cc", "reply-to", "sender")
    ):
        return f"{name}: {value}\r\n"
    return _folded(policy, name, value)


def _address_header(policy: Policy, name: str, address: str) -> str:
    if _PLAIN_ADDRESS.fullmatch(address) and len(name) + 2 + len(address) <= MAX_LINE:
        return f"{name}: {address}\r\n"
    return _folded(policy, name, address)


@functools.lru_cache(maxsize=64)
def _sender(email_from: str) -> str:
    return parseaddr(email_from)[1]


def _part(subtype: str, text: str) -> bytes:
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode()
    if body.isascii() and not _LONG_LINE.search(body):
        cte = "7bit"
    else:
        cte = "quoted-printable"
        body = binascii.b2a_qp(body, istext=True)
    if not body.endswith(b"\n"):
        body += b"\n"
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n'
    return head.encode() + b"\r\n" + body.replace(b"\n", b"\r\n")


def encoded(
    *,
    policy: Policy,
    email_from: str,
    to: str,
    subject: str,
    date: str,
    message_id: str,
    headers: dict[str, str],
    text: str,
    html: str | None,
) -> Encoded | None:
    """The message `build_email` makes, as bytes; None when it needs the email package."""
    sender = _sender(email_from)
    if not (to.isascii() and sender.isascii() and email_from.isascii()):
        return None
    lines = [
        _folded(policy, "From", email_from),
        _address_header(policy, "To", to),
        header(policy, "Subject", subject),
        header(policy, "Date", date),
        header(policy, "Message-ID", message_id),
    ]
    lines.extend(header(policy, name, value) for name, value in headers.items())
    lines.append("MIME-Version: 1.0\r\n")
    plain = _part("plain", text)
    if not html:
        return Encoded(sender, [to], "".join(lines).encode() + plain)
    rich = _part("html", html)
    boundary = "=_" + secrets.token_hex(16)
    while boundary.encode() in plain or boundary.encode() in rich:  # pragma: no cover
        boundary = "=_" + secrets.token_hex(16)
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n')
    # each part's content ends with its line break; the CRLF before a boundary belongs to it
    mark = f"--{boundary}\r\n".encode()
    data = b"".join(
        (
            "".join(lines).encode(),
            mark,
            plain,
            b"\r\n",
            mark,
            rich,
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )
    return Encoded(sender, [to], data)
