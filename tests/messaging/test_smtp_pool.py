"""The SMTP connection pool, against a real aiosmtpd counting its connections: many messages
per connection, never more connections than the pool's size, a connection retired after its
message limit or idle time, a server restart costing one failed send (raised, so Temporal
retries it) and never a resend by the pool itself."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer

from rejse.messaging import channels
from rejse.messaging.channels import Outgoing, SmtpEmail
from rejse.messaging.smtp_pool import NotStarted
from rejse.settings import Settings
from tests.messaging.conftest import Mailbox, free_port


class CountingController(Controller):
    """aiosmtpd that counts the connections it accepted and the most open at once."""

    def __init__(self, handler: Mailbox, port: int) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=port)
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.lock = threading.Lock()

    def start(self) -> None:
        super().start()
        with self.lock:  # aiosmtpd's own check connection at start is not ours
            self.connections = self.most_open = 0

    def factory(self) -> SMTPServer:
        controller = self

        class Counted(SMTPServer):
            def connection_made(self, transport):
                with controller.lock:
                    controller.connections += 1
                    controller.open += 1
                    controller.most_open = max(controller.most_open, controller.open)
                super().connection_made(transport)

            def connection_lost(self, exc):
                with controller.lock:
                    controller.open -= 1
                super().connection_lost(exc)

        return Counted(self.handler, **self.SMTP_kwargs)


@pytest.fixture
def server():
    box = Mailbox()
    controller = CountingController(box, free_port())
    controller.start()
    try:
        yield controller, box
    finally:
        controller.stop()


def outgoing(i: int) -> Outgoing:
    return Outgoing(
        message_id=f"msg_pool{i:06d}",
        to=f"kunde{i}@example.dk",
        subject="Din kurv venter",
        text="Hej",
        html=None,
        headers={},
    )


def channel(port: int, **settings) -> SmtpEmail:
    base = {"environment": "test", "smtp_url": f"smtp://127.0.0.1:{port}"}
    return SmtpEmail(Settings(**(base | settings)))


def test_many_messages_share_few_connections(server):
    controller, box = server
    email = channel(controller.port, smtp_pool_size=3, smtp_messages_per_connection=1000)
    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(email.deliver, (outgoing(i) for i in range(120))))
    assert len(box.messages) == 120
    assert sorted(box.by_message_id().values()) == [1] * 120
    assert 1 <= controller.connections <= 3  # 120 messages over at most 3 connections
    assert controller.most_open <= 3


def test_a_connection_is_retired_after_its_message_limit(server):
    controller, box = server
    email = channel(controller.port, smtp_pool_size=1, smtp_messages_per_connection=5)
    for i in range(12):
        email.deliver(outgoing(i))
    assert len(box.messages) == 12
    assert controller.connections == 3  # 5 + 5 + 2


def test_an_idle_connection_is_not_reused(server):
    controller, box = server
    email = channel(controller.port, smtp_pool_size=1, smtp_idle_timeout=0.2)
    email.deliver(outgoing(1))
    email.deliver(outgoing(2))
    assert controller.connections == 1
    time.sleep(0.3)
    email.deliver(outgoing(3))
    assert controller.connections == 2
    assert len(box.messages) == 3


def test_server_restart_fails_at_most_one_send_and_never_resends():
    box = Mailbox()
    port = free_port()
    first = CountingController(box, port)
    first.start()
    email = channel(port, smtp_pool_size=1)
    email.deliver(outgoing(1))
    first.stop()  # the pooled connection is now closed by the server
    second = CountingController(box, port)
    second.start()
    try:
        try:
            email.deliver(outgoing(2))
        except (aiosmtplib.SMTPException, OSError):
            email.deliver(outgoing(2))  # what Temporal's retry does
        email.deliver(outgoing(3))
        assert box.by_message_id() == {f"<msg_pool{i:06d}@rejse.local>": 1 for i in (1, 2, 3)}
    finally:
        second.stop()


def test_server_down_raises_so_the_activity_is_retried():
    port = free_port()
    email = channel(port, smtp_pool_size=2)
    with pytest.raises(aiosmtplib.SMTPConnectError):
        email.deliver(outgoing(1))


class SlowMailbox(Mailbox):
    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.4)
        return await super().handle_DATA(server, session, envelope)


def test_a_hand_off_that_cannot_start_in_its_window_sends_nothing(monkeypatch):
    """A batch waits for a free connection at most HANDOFF_START_WINDOW: what gets one later
    raises NotStarted (transient: its activity is retried) and reaches the server not at all,
    so the retry is no duplicate and the batch ends inside the send activity's timeout."""
    monkeypatch.setattr(channels, "HANDOFF_START_WINDOW", 0.2)
    box = SlowMailbox()
    controller = CountingController(box, free_port())
    controller.start()
    try:
        email = channel(controller.port, smtp_pool_size=1)
        results = email.deliver_many([outgoing(i) for i in range(3)])
    finally:
        controller.stop()
    assert isinstance(results[0], str)
    assert all(isinstance(r, NotStarted) for r in results[1:]), results
    assert len(box.messages) == 1


def test_the_window_and_one_hand_off_fit_in_the_send_timeout():
    from workflows.journey import SEND

    one_hand_off = 2 * SmtpEmail.__init__.__kwdefaults__["timeout"]  # connect + conversation
    assert channels.HANDOFF_START_WINDOW + one_hand_off + 5 < (
        SEND["start_to_close_timeout"].total_seconds()
    )
