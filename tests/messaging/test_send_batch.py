"""`send_batch`: many sends with the bookkeeping of all of them in a few transactions, each
request with the guarantees of a single send, counted at a real aiosmtpd."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session, select

from rejse.messaging import sender
from rejse.messaging.sender import send_batch
from rejse.models.messaging import Message
from tests.messaging.conftest import NOON, mette, with_settings
from tests.messaging.test_email_delivery import request


def _commits(engine: sa.Engine) -> list[int]:
    seen: list[int] = []
    event.listen(engine, "commit", lambda conn: seen.append(1))
    return seen


async def test_a_batch_sends_each_once_in_two_commits(mail_runtime, smtp):
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    pids = [mette(rt, identifiers={"email": f"k{i}@example.dk"}) for i in range(20)]
    commits = _commits(rt.engine)
    results = send_batch(
        rt.settings, rt.engine, [(request(pid, "reminder_1"), NOON) for pid in pids]
    )
    assert [getattr(r, "status", r) for r in results] == ["sent"] * 20
    assert len(commits) == 2  # `sending` for all, then `sent` for all
    assert sorted(box.by_message_id().values()) == [1] * 20
    with Session(rt.engine) as s:
        rows = s.exec(select(Message)).all()
    assert sorted(r.status for r in rows) == ["sent"] * 20
    assert {r.provider_id for r in rows} == set(box.by_message_id())
    assert all(r.sent_at == NOON and r.attempts == 1 for r in rows)


async def test_a_repeated_key_in_a_batch_sends_once(mail_runtime, smtp):
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    pid = mette(rt)
    once = request(pid, "reminder_1")
    results = send_batch(rt.settings, rt.engine, [(once, NOON), (once, NOON)])
    assert [getattr(r, "status", r) for r in results] == ["sent", "sent"]
    assert results[0] == results[1]
    assert len(box.messages) == 1
    again = send_batch(rt.settings, rt.engine, [(once, NOON)])  # a later duplicate delivery
    assert again == [results[0]]
    assert len(box.messages) == 1


async def test_the_frequency_cap_counts_the_batch_itself(mail_runtime, smtp):
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={}, message_frequency_cap=2)
    pid = mette(rt)
    results = send_batch(rt.settings, rt.engine, [(request(pid, f"s{i}"), NOON) for i in range(4)])
    assert [getattr(r, "status", r) for r in results] == ["sent", "sent", "skipped", "skipped"]
    assert all("frequency_cap" in (r.reason or "") for r in results[2:])  # type: ignore[union-attr]
    assert len(box.messages) == 2
    later = send_batch(rt.settings, rt.engine, [(request(pid, "s9"), NOON + dt.timedelta(hours=1))])
    assert later[0].status == "skipped"  # type: ignore[union-attr]


async def test_guards_and_bounces_apply_per_request(mail_runtime, smtp):
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    ok = mette(rt)
    gone = mette(rt, identifiers={"email": "gone@example.dk"})
    revoked = mette(rt, identifiers={"email": "nej@example.dk"})
    from rejse.profiles.consent import set_consent

    with Session(rt.engine) as s:
        set_consent(s, profile_id=revoked, channel="email", status="revoked", source="test")
        s.commit()

    async def refuse(address: str):
        return "550 5.1.1 mailbox unavailable" if address == "gone@example.dk" else None

    box.rcpt_hook = refuse
    results = send_batch(
        rt.settings,
        rt.engine,
        [(request(p, "reminder_1"), NOON) for p in (ok, gone, revoked, "prf_unknown")],
    )
    assert [(r.status, r.reason) for r in results] == [  # type: ignore[union-attr]
        ("sent", None),
        ("failed", "recipient refused (550)"),
        ("skipped", "no_consent (email revoked)"),
        ("skipped", "profile_unknown"),
    ]
    assert len(box.messages) == 1


async def test_a_transient_failure_fails_only_its_own_request(mail_runtime, smtp):
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    ok = mette(rt)
    busy = mette(rt, identifiers={"email": "busy@example.dk"})

    async def later(address: str):
        return "451 4.3.0 try again later" if address == "busy@example.dk" else None

    box.rcpt_hook = later
    results = send_batch(
        rt.settings, rt.engine, [(request(p, "reminder_1"), NOON) for p in (ok, busy)]
    )
    assert getattr(results[0], "status", None) == "sent"
    assert isinstance(results[1], Exception)  # raised by its activity: Temporal retries it
    with Session(rt.engine) as s:
        row = s.exec(select(Message).where(Message.profile_id == busy)).one()
    assert row.status == "sending"
    box.rcpt_hook = None
    retried = send_batch(rt.settings, rt.engine, [(request(busy, "reminder_1"), NOON)])
    assert retried[0].status == "sent"  # type: ignore[union-attr]
    assert sorted(box.by_message_id().values()) == [1, 1]


async def test_one_request_failing_to_prepare_fails_no_other(mail_runtime, smtp, monkeypatch):
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    pids = [mette(rt, identifiers={"email": f"p{i}@example.dk"}) for i in range(3)]
    real = sender.build_context

    def broken_for_one(**kw):
        if kw["extra"].get("boom"):
            raise RuntimeError("a bug met by one request")
        return real(**kw)

    monkeypatch.setattr(sender, "build_context", broken_for_one)
    reqs = [request(pids[0], "a"), request(pids[1], "a", extra={"boom": 1}), request(pids[2], "a")]
    results = send_batch(rt.settings, rt.engine, [(r, NOON) for r in reqs])
    assert getattr(results[0], "status", None) == "sent"
    assert isinstance(results[1], RuntimeError)
    assert getattr(results[2], "status", None) == "sent"
    assert len(box.messages) == 2
    with Session(rt.engine) as s:
        statuses = {m.profile_id: m.status for m in s.exec(select(Message))}
    assert pids[1] not in statuses  # its transaction was rolled back: the retry starts afresh


@pytest.mark.parametrize("n", [1, 30])
async def test_the_after_handoff_seam_runs_once_per_sent_message(mail_runtime, smtp, n):
    rt = with_settings(mail_runtime, message_quiet_hours={})
    pids = [mette(rt, identifiers={"email": f"h{i}@example.dk"}) for i in range(n)]
    seen: list[str] = []
    results = send_batch(
        rt.settings,
        rt.engine,
        [(request(pid, "a"), NOON) for pid in pids],
        after_handoff=seen.append,
    )
    assert sorted(seen) == sorted(r.message_id for r in results)  # type: ignore[union-attr]
