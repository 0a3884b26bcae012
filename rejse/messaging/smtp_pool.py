"""A bounded pool of open SMTP connections, so a worker sends many messages per connection
instead of one connect + EHLO (+ STARTTLS + AUTH) + QUIT per message.

One pool per SMTP server and process, used from the channel's one event loop thread (every
method runs on that loop). At most `size` connections are open, each used for at most
`max_messages` messages and dropped after `idle_timeout` seconds unused (servers close idle
sessions; a dropped one is never tried). A connection that failed in any way is closed, never
returned to the pool.

An idle connection the server closed is seen closed (the loop reads its EOF) and never
reused. Should a server close one in the very moment it is taken, the send fails like any
network error: it is raised, and Temporal retries the activity with the same Message-ID
(docs/messaging.md, "Idempotency"); the pool never resends on its own, so it adds no
duplicate window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import aiosmtplib


class NotStarted(Exception):
    """A hand-off that never began (its window ended while it waited for a connection):
    transient, and safe to send again."""


@dataclass
class _Connection:
    smtp: aiosmtplib.SMTP
    sent: int = 0
    used_at: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        self.smtp.close()


class SmtpPool:
    """At most `size` connections to one server, each reused for up to `max_messages`."""

    def __init__(
        self,
        connect_args: dict[str, Any],
        *,
        size: int,
        max_messages: int,
        idle_timeout: float,
    ) -> None:
        self.connect_args = connect_args
        self.size = max(1, size)
        self.max_messages = max(1, max_messages)
        self.idle_timeout = idle_timeout
        self._idle: list[_Connection] = []
        self._slots: asyncio.Semaphore | None = None
        self.opened = 0  # connections opened so far (tests and the benchmark read it)

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        return self._slots

    async def _open(self) -> _Connection:
        smtp = aiosmtplib.SMTP(**self.connect_args)
        await smtp.connect()
        self.opened += 1
        return _Connection(smtp)

    def _take(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the likeliest still open
            if conn.smtp.is_connected and now - conn.used_at < self.idle_timeout:
                return conn
            conn.close()
        return None

    def _give_back(self, conn: _Connection) -> None:
        conn.sent += 1
        conn.used_at = time.monotonic()
        if conn.sent >= self.max_messages or not conn.smtp.is_connected:
            conn.close()
        else:
            self._idle.append(conn)

    async def send(self, msg: EmailMessage, *, start_by: float | None = None) -> None:
        await self._on_connection(lambda smtp: smtp.send_message(msg), start_by)

    async def send_bytes(
        self, sender: str, recipients: list[str], data: bytes, *, start_by: float | None = None
    ) -> None:
        """A message already written out (`rejse.messaging.mime`), as it stands."""
        await self._on_connection(lambda smtp: smtp.sendmail(sender, recipients, data), start_by)

    async def _on_connection(
        self,
        conversation: Callable[[aiosmtplib.SMTP], Awaitable[object]],
        start_by: float | None,
    ) -> None:
        """The conversation on a pooled connection. With `start_by` (the loop's clock), a
        message that gets its connection only after it raises `NotStarted`: nothing of it
        reached the server, so the attempt that sends it again can be no duplicate."""
        async with self._semaphore():
            if start_by is not None and asyncio.get_running_loop().time() > start_by:
                raise NotStarted("the hand-off did not start in time; nothing was sent")
            conn = self._take() or await self._open()
            try:
                await conversation(conn.smtp)
            except BaseException:
                conn.close()
                raise
            self._give_back(conn)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
