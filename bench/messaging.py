"""Messaging throughput, each figure beside a baseline measured in the same run:

- templates rendered/s: the Danish abandoned-cart email (subject, HTML, text) through rejse's
  sandboxed, StrictUndefined environment, vs plain (non-sandboxed) Jinja2 rendering the same
  files with the same filters and context;
- emails/s to a local aiosmtpd server: rejse's whole send (message log row, profile, guards,
  render, click tracking, SMTP hand-off, log update) and its SMTP channel alone, vs a raw
  `aiosmtplib.send` of the same message. All sequential, one SMTP connection per message.

    python -m bench.messaging [--renders 2000] [--emails 300]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

import jinja2
from aiosmtpd.controller import Controller
from sqlmodel import Session

from rejse.contracts import SendRequest
from rejse.db import make_engine
from rejse.messaging import templates as tpl
from rejse.messaging.channels import Outgoing, SmtpEmail, build_email
from rejse.messaging.sender import send_message
from rejse.migrate import upgrade
from rejse.profiles.service import create_profile
from rejse.settings import Settings
from tests.messaging.conftest import CHECKOUT, free_port

NOON = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)


class Counter:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def line(name: str, ours: float, base: float, unit: str) -> None:
    print(f"{name:<44} ours {ours:>10.1f} {unit}   baseline {base:>10.1f} {unit}   ratio {ours / base:.2f}")


def bench_render(n: int) -> tuple[float, float]:
    resolved = tpl.resolve(key="abandoned_cart/reminder", channel="email", locale="da-DK")
    context = tpl.build_context(profile=tpl.sample_context()["profile"], trigger=CHECKOUT,
                                links={"unsubscribe": "https://x/u/t"}, journey={}, message={})
    eng = tpl.engines()
    plain = {}
    for part, autoescape in (("subject", False), ("html", True), ("text", False)):
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(eng.templates_dir)), autoescape=autoescape,
                                 trim_blocks=True, lstrip_blocks=True)
        env.filters.update(eng.text.filters)
        plain[part] = env.get_template(f"email/abandoned_cart/reminder/da/{tpl.PART_FILES[part]}")
    plain_ctx = {**context, "locale": "da"}
    ours_out, plain_out = tpl.render(resolved, context), plain["text"].render(plain_ctx)
    assert ours_out.text.strip() == plain_out.strip(), "baseline renders something else"

    start = time.perf_counter()
    for _ in range(n):
        tpl.render(resolved, context)
    ours = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n):
        for t in plain.values():
            t.render(plain_ctx)
    base = n / (time.perf_counter() - start)
    return ours, base


def bench_email(n: int) -> tuple[float, float, float]:
    counter = Counter()
    port = free_port()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    folder = Path(tempfile.mkdtemp(prefix="rejse-bench-msg-"))
    try:
        settings = Settings(environment="test", database_url=f"sqlite:///{folder / 'b.db'}",
                            smtp_url=f"smtp://127.0.0.1:{port}", message_quiet_hours={},
                            message_frequency_cap=0, public_url="https://rejse.example")
        engine = make_engine(settings.effective_database_url)
        upgrade(engine)
        with Session(engine) as s:
            pid = create_profile(s, traits={"first_name": "Mette"}, identifiers={"email": "mette@example.dk"},
                                 locale="da-DK", timezone="Europe/Copenhagen")
            s.commit()

        start = time.perf_counter()
        for i in range(n):
            result = send_message(settings, engine, SendRequest(
                idempotency_key=f"bench:{i}", profile_id=pid, channel="email",
                template="abandoned_cart/reminder", journey_key="bench", step_id="s", trigger=CHECKOUT),
                now=NOON)
            assert result.status == "sent", result
        ours = n / (time.perf_counter() - start)

        with Session(engine) as s:
            from rejse.models.messaging import Message
            row = s.get(Message, result.message_id)
            out = Outgoing(message_id=row.id, to=row.to_address, subject=row.subject, text=row.body_text,
                           html=row.body_html, headers={"List-Unsubscribe": "<https://rejse.example/u/x>"})
        channel = SmtpEmail(settings)
        start = time.perf_counter()
        for _ in range(n):
            channel.deliver(out)
        channel_rate = n / (time.perf_counter() - start)

        import aiosmtplib

        msg = build_email(out, email_from=settings.email_from)

        async def raw() -> None:
            for _ in range(n):
                await aiosmtplib.send(msg, hostname="127.0.0.1", port=port)

        start = time.perf_counter()
        asyncio.run(raw())
        base = n / (time.perf_counter() - start)
        assert counter.count == 3 * n, counter.count
        engine.dispose()
        return ours, channel_rate, base
    finally:
        controller.stop()


def main() -> None:
    from rejse.logging import configure_logging

    configure_logging(level="WARNING", json=False)
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument("--emails", type=int, default=300)
    args = parser.parse_args()
    ours, base = bench_render(args.renders)
    line("email template renders/s (sandboxed vs plain)", ours, base, "/s")
    full, channel, raw = bench_email(args.emails)
    line("emails/s, full send_message vs raw aiosmtplib", full, raw, "/s")
    line("emails/s, SMTP channel vs raw aiosmtplib", channel, raw, "/s")


if __name__ == "__main__":
    main()
