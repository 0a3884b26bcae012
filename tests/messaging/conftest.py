"""Messaging fixtures: a real local SMTP server (aiosmtpd), profiles, a runtime that sends to it."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import Session

from rejse.runtime import Runtime
from rejse.settings import Settings

# The journey tests' worker and dispatcher, for test_with_journeys.py (they run on its own
# `jruntime`). A conftest is where pytest looks for shared fixtures; imported into the test
# module, each would be shadowed by the test parameter of the same name.
from tests.journeys.conftest import dispatcher, worker  # noqa: F401 - fixtures, used by name
from tests.servers import serve

NOON = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)  # 12:00 in Copenhagen: outside quiet hours


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """aiosmtpd handler that keeps every accepted message; `hold` makes DATA wait (a slow
    server)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # the bytes as received, for header lines as sent
        self.lock = threading.Lock()
        self.rcpt_hook = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_hook is not None:
            reply = await self.rcpt_hook(address)
            if reply:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(msg)  # type: ignore[arg-type]
            self.raw.append(envelope.content)
        return "250 Message accepted for delivery"

    def by_message_id(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.messages:
            counts[m["Message-ID"]] = counts.get(m["Message-ID"], 0) + 1
        return counts


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, str]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


@pytest.fixture
def served(app) -> Iterator[str]:
    """The API under uvicorn on a loopback port, so links from emails are followed over real
    HTTP, as a mail client's browser would."""
    with serve(app) as url:
        yield url


def with_settings(runtime: Runtime, **changes) -> Runtime:
    settings: Settings = runtime.settings.model_copy(update=changes)
    return Runtime.create(settings, engine=runtime.engine, temporal_client=runtime.temporal._client)


@pytest.fixture
def mail_runtime(runtime: Runtime, smtp) -> Runtime:
    return with_settings(runtime, smtp_url=smtp[1], email_from="Nordvejr <butik@nordvejr.example>")


def make_profile(runtime: Runtime, **kwargs) -> str:
    from rejse.profiles.service import create_profile

    with Session(runtime.engine) as s:
        pid = create_profile(s, **kwargs)
        s.commit()
    return pid


def mette(runtime: Runtime, **overrides) -> str:
    args = {
        "traits": {"first_name": "Mette", "country": "DK"},
        "identifiers": {"email": "mette.hansen@example.dk", "user_id": "cust-7012345678901"},
        "locale": "da-DK",
        "timezone": "Europe/Copenhagen",
    }
    args.update(overrides)
    return make_profile(runtime, **args)


CHECKOUT = {
    "event": "Checkout Started",
    "properties": {
        "checkout_id": "7c1b2d0f9a4e4f6b8c3d2e1f0a9b8c7d",
        "currency": "DKK",
        "total_price": "1249.00",
        "abandoned_checkout_url": "https://butik.example.dk/checkouts/7c1b2d0f9a4e4f6b8c3d2e1f0a9b8c7d/recover?key=3f2a",
        "line_items": [
            {
                "title": "Regnjakke Aarhus",
                "variant_title": "M / Navy",
                "sku": "RJ-AAR-M-NV",
                "quantity": 1,
                "price": "899.00",
            },
            {
                "title": "Uldsokker 3-pak",
                "variant_title": "39-42",
                "sku": "US-3P-3942",
                "quantity": 2,
                "price": "175.00",
            },
        ],
    },
}
