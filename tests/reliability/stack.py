"""The stack as the split processes run it, for the drills and the scale-out test: a Temporal
dev server persisted in a SQLite file (the command `rejse up` runs, so it can be stopped and
started again on the same port and file), `rejse api` and `rejse worker` processes (the worker
carries the event processor), a real aiosmtpd counting every message by Message-ID, and the
database the processes share. Everything on loopback, every process started by the test and
stopped (SIGKILL as the last resort) when it ends."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlmodel import Session

from rejse import devserver
from rejse.db import make_engine
from rejse.journeys import service as journeys
from rejse.keys import create_key
from rejse.migrate import upgrade
from rejse.roles import Role
from rejse.settings import Settings
from tests.foundation.procs import clean_env, free_port, rejse_command

INGEST_KEY = "rjk_0ddba11d_" + "d" * 43
SHOPIFY_SECRET = "drill-shopify-secret"
# the abandoned-cart journey with waits of seconds instead of days
QUICK_CART = {
    "key": "quick-cart",
    "name": "Abandoned cart, waits of seconds (drills)",
    "trigger": {"type": "event", "event": "Checkout Started"},
    "entry_key": "properties.checkout_id",
    "start": "wait",
    "steps": {
        "wait": {"type": "wait", "for": "PT1S", "next": "reminder"},
        "reminder": {
            "type": "send",
            "channel": "email",
            "template": "abandoned_cart/reminder",
        },
    },
}


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(step)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


class Mailbox:
    """aiosmtpd handler counting accepted messages by Message-ID."""

    def __init__(self) -> None:
        self.by_id: dict[str, int] = {}
        self.lock = threading.Lock()
        self.rcpt_delay: Callable[[str], Awaitable[None]] | None = None  # a slow server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_delay is not None:
            await self.rcpt_delay(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            key = str(msg["Message-ID"])
            self.by_id[key] = self.by_id.get(key, 0) + 1
        return "250 OK"

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.by_id.values())

    def doubled(self) -> dict[str, int]:
        with self.lock:
            return {k: v for k, v in self.by_id.items() if v > 1}


class Smtp:
    def __init__(self) -> None:
        self.box = Mailbox()
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class Proc:
    """One long-running child process with its output in files."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], folder: Path) -> None:
        self.name, self.argv, self.env, self.folder = name, argv, env, folder
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        out = self.folder / f"{self.name}-{self.runs}.log"
        with open(out, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.folder,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if not self.running:
            return
        assert self.proc is not None
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        text = ""
        for path in sorted(self.folder.glob(f"{self.name}-*.log")):
            text += f"--- {path.name}\n" + path.read_text(errors="replace")[-2500:]
        return text


class Stack:
    """Temporal + `rejse api` x n + `rejse worker` x m on one database and one SMTP server."""

    def __init__(self, folder: Path, database_url: str, *, apis: int = 1, workers: int = 1):
        self.folder = folder
        self.database_url = database_url
        self.temporal_port = free_port()
        self.smtp = Smtp()
        self.task_queue = f"drill-{uuid.uuid4().hex[:8]}"
        self.engine = make_engine(database_url)
        tsettings = Settings(
            environment="test",
            data_dir=folder / "temporal",
            temporal_port=self.temporal_port,
            temporal_ui_port=free_port(),
        )
        tsettings.data_dir.mkdir(parents=True, exist_ok=True)
        self.temporal = Proc("temporal", devserver.command(tsettings), dict(os.environ), folder)
        self.api_ports = [free_port() for _ in range(apis)]
        self.apis = [
            Proc(f"api{i}", rejse_command("api"), self.env(REJSE_API_PORT=str(port)), folder)
            for i, port in enumerate(self.api_ports)
        ]
        self.workers = [
            Proc(f"worker{i}", rejse_command("worker"), self.env(), folder) for i in range(workers)
        ]

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(
            REJSE_ENVIRONMENT="test",
            REJSE_DATABASE_URL=self.database_url,
            REJSE_TEMPORAL_ADDRESS=f"127.0.0.1:{self.temporal_port}",
            REJSE_TASK_QUEUE=self.task_queue,
            REJSE_SMTP_URL=f"smtp://127.0.0.1:{self.smtp.port}",
            REJSE_MESSAGE_QUIET_HOURS="{}",
            REJSE_MESSAGE_FREQUENCY_CAP="0",
            REJSE_DATA_DIR=str(self.folder / "data"),
            REJSE_LOG_LEVEL="WARNING",
            REJSE_LOG_JSON="true",
            REJSE_SHOPIFY_SECRET=SHOPIFY_SECRET,
            **extra,
        )

    # --------------------------------------------------------------- setup and processes

    def prepare(self, definition: dict = QUICK_CART) -> None:
        upgrade(self.engine)
        with Session(self.engine) as s:
            create_key(s, name="drill ingest", role=Role.ingest, raw_key=INGEST_KEY)
            journeys.create_journey(s, definition=definition)
            journeys.publish(s, key=definition["key"], activity_names={"messaging.send"})
            s.commit()

    def start(self) -> None:
        self.smtp.start()
        self.start_temporal()
        for p in (*self.apis, *self.workers):
            p.start()
        for port in self.api_ports:
            self.wait_ready(port)

    def start_temporal(self) -> None:
        self.temporal.start()
        wait_until(self.temporal_answers, 60, "Temporal answers")

    def temporal_answers(self) -> bool:
        import socket

        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.temporal_port)) == 0

    def wait_ready(self, port: int, timeout: float = 90) -> None:
        def ready() -> bool:
            for p in (*self.apis, *self.workers):
                assert p.running or p.proc is None, f"{p.name} exited:\n{p.output()}"
            return self.readyz(port) == 200

        wait_until(ready, timeout, f"/readyz of the API on {port}")

    def readyz(self, port: int | None = None) -> int | None:
        try:
            return httpx.get(
                f"http://127.0.0.1:{port or self.api_ports[0]}/readyz", timeout=5
            ).status_code
        except httpx.HTTPError:
            return None

    def stop(self) -> None:
        for p in (*self.apis, *self.workers, self.temporal):
            p.stop()
        self.smtp.stop()
        self.engine.dispose()

    def output(self) -> str:
        return "\n".join(p.output() for p in (*self.apis, *self.workers, self.temporal))

    # --------------------------------------------------------------- traffic and checks

    def checkouts(self, start: int, n: int) -> list[dict]:
        """`n` Checkout Started events of `n` new customers (one journey run each)."""
        return [
            {
                "type": "track",
                "messageId": f"drill-co-{i}",
                "userId": f"cust-{i}",
                "event": "Checkout Started",
                "properties": {"checkout_id": f"chk-{i}", "total": 499.0},
                "context": {
                    "traits": {"email": f"cust-{i}@example.dk", "first_name": "Mette"},
                    "locale": "da-DK",
                },
            }
            for i in range(start, start + n)
        ]

    def views(self, start: int, n: int, customers: int) -> list[dict]:
        """`n` Product Viewed events spread over the first `customers` customers (no journey)."""
        return [
            {
                "type": "track",
                "messageId": f"drill-pv-{i}",
                "userId": f"cust-{i % customers}",
                "event": "Product Viewed",
                "properties": {"sku": f"sku-{i % 7}"},
            }
            for i in range(start, start + n)
        ]

    def post_batch(self, events: list[dict], port: int | None = None) -> int:
        r = httpx.post(
            f"http://127.0.0.1:{port or self.api_ports[0]}/v1/batch",
            json={"batch": events},
            headers={"Authorization": f"Bearer {INGEST_KEY}"},
            timeout=30,
        )
        return r.status_code

    def post_shopify_checkout(self, i: int, port: int | None = None) -> int:
        """A signed Shopify `checkouts/create` webhook of customer `cust-{i}`."""
        body = json.dumps(
            {
                "token": f"chk-{i}",
                "cart_token": f"cart-{i}",
                "email": f"cust-{i}@example.dk",
                "total_price": "499.00",
                "currency": "DKK",
                "line_items": [],
            }
        ).encode()
        digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
        r = httpx.post(
            f"http://127.0.0.1:{port or self.api_ports[0]}/webhooks/shopify",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Shopify-Topic": "checkouts/create",
                "X-Shopify-Shop-Domain": "nordvejr.myshopify.com",
                "X-Shopify-Webhook-Id": f"wh-{i}",
                "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
            },
            timeout=30,
        )
        return r.status_code

    def scalar(self, sql: str, **params) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar_one())

    def unprocessed(self) -> int:
        return self.scalar("SELECT count(*) FROM event WHERE processed_at IS NULL")

    def dead_letters(self) -> int:
        return self.scalar("SELECT count(*) FROM event_dead_letter")

    def outbox(self) -> list[tuple]:
        """The outbox rows by state and attempts, with the latest error of each group."""
        with self.engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    sa.text(
                        "SELECT state, attempts, count(*), max(last_error) FROM event_outbox "
                        "GROUP BY state, attempts ORDER BY state, attempts"
                    )
                )
            ]

    def runs(self) -> int:
        return self.scalar("SELECT count(*) FROM journey_run")

    def sent(self) -> int:
        return self.scalar("SELECT count(*) FROM message WHERE status = 'sent'")


def post_all(stack: Stack, events: list[dict], chunk: int = 100) -> None:
    """In batches, spread over the API processes in turn."""
    for n, i in enumerate(range(0, len(events), chunk)):
        port = stack.api_ports[n % len(stack.api_ports)]
        assert stack.post_batch(events[i : i + chunk], port) == 200


def assert_books(stack: Stack, *, checkouts: int, views: int = 0, timeout: float = 180) -> None:
    """Every event processed once, one run per checkout, one email per run; each of the
    `checkouts` customers also viewed `views / checkouts` products."""
    customers = checkouts
    try:
        wait_until(lambda: stack.unprocessed() == 0, timeout, "every event processed")
        wait_until(lambda: stack.runs() == checkouts, timeout, f"{checkouts} journey runs")
        wait_until(lambda: stack.smtp.box.total >= checkouts, timeout, f"{checkouts} emails")
        wait_until(lambda: stack.sent() == checkouts, 60, f"{checkouts} messages sent")
        wait_until(
            lambda: stack.scalar("SELECT count(*) FROM journey_run WHERE status = 'running'") == 0,
            60,
            "every run ended",
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}: unprocessed {stack.unprocessed()}, runs {stack.runs()}, "
            f"emails {stack.smtp.box.total}, sent {stack.sent()}, "
            f"dead letters {stack.dead_letters()}, "
            f"outbox {stack.outbox()}\n{stack.output()}"
        ) from None
    time.sleep(1)  # nothing more arrives late
    assert stack.smtp.box.total == checkouts, stack.smtp.box.total
    assert stack.smtp.box.doubled() == {}
    assert stack.scalar("SELECT count(*) FROM event") == checkouts + views
    # exactly-once processing: every profile counted each of its events once
    assert stack.scalar("SELECT coalesce(sum(event_count), 0) FROM profile") == checkouts + views
    assert stack.scalar("SELECT count(*) FROM profile") == customers
    # each run's books once (its bookkeeping, local activities, runs again after a worker kill):
    # QUICK_CART's two steps, and two step lines plus one end on the timeline
    assert stack.scalar("SELECT count(*) FROM journey_run WHERE status = 'completed'") == checkouts
    assert stack.scalar("SELECT count(*) FROM journey_step") == 2 * checkouts
    lines = "SELECT count(*) FROM timeline_entry WHERE kind = 'journey_step'"
    assert stack.scalar(lines) == 3 * checkouts
    each = 1 + views // customers  # the views are spread evenly over the customers
    assert stack.scalar("SELECT count(*) FROM profile WHERE event_count <> :n", n=each) == 0
