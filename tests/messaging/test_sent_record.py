"""The `sent` record after the SMTP hand-off is one conditional UPDATE of the row as the send
committed it (`sending`), with no second read. An attempt that finds the row no longer
`sending` writes nothing: a concurrent attempt's record stands, and a row erased meanwhile
makes the attempt fail (the retry then finds the profile erased)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from rejse.messaging.sender import send_message
from rejse.messaging.service import erase_messages, record_sent
from rejse.models.analytics import AnalyticsDelta, AnalyticsRollup
from rejse.models.messaging import Message
from rejse.timeline import list_entries
from tests.messaging.conftest import NOON, mette, with_settings
from tests.messaging.test_email_delivery import request


def _sending(session: Session, pid: str) -> Message:
    return session.exec(
        select(Message).where(Message.profile_id == pid, Message.status == "sending")
    ).one()


def _delivered(session: Session, message: Message) -> int:
    total = 0
    for model in (AnalyticsDelta, AnalyticsRollup):
        total += session.exec(
            select(sa.func.coalesce(sa.func.sum(model.n), 0)).where(
                model.metric == "delivered",
                model.journey_key == message.journey_key,
                model.step_id == message.step_id,
            )
        ).one()
    return int(total)


def _sent_lines(session: Session, pid: str) -> int:
    return sum(
        1
        for e in list_entries(session, profile_id=pid)
        if e.kind == "message" and (e.data or {}).get("status") == "sent"
    )


async def test_an_attempt_finding_sent_recorded_by_another_writes_nothing(mail_runtime, smtp):
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    pid = mette(rt)

    async def the_other_attempt_records_first(address: str) -> None:
        with Session(rt.engine, expire_on_commit=False) as s:
            assert record_sent(s, _sending(s, pid), provider_id="the-other-attempt", at=NOON)
            s.commit()

    box.rcpt_hook = the_other_attempt_records_first
    result = send_message(rt.settings, rt.engine, request(pid, "reminder_1"), now=NOON)
    assert result.status == "sent"
    with Session(rt.engine) as s:
        row = s.get(Message, result.message_id)
        assert row is not None
        assert (row.status, row.provider_id) == ("sent", "the-other-attempt")  # theirs stands
        assert _sent_lines(s, pid) == 1  # one timeline line, not one per attempt
        assert _delivered(s, row) == 1


async def test_a_send_records_sent_once_with_counter_and_timeline(mail_runtime, smtp):
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    pid = mette(rt)
    result = send_message(rt.settings, rt.engine, request(pid, "reminder_1"), now=NOON)
    assert result.status == "sent"
    assert len(box.messages) == 1
    with Session(rt.engine) as s:
        row = s.get(Message, result.message_id)
        assert row is not None
        assert row.status == "sent"
        assert row.sent_at == NOON
        assert row.reason is None
        assert row.provider_id == box.messages[0]["Message-ID"]
        assert _sent_lines(s, pid) == 1
        assert _delivered(s, row) == 1


async def test_a_message_erased_during_its_send_fails_the_attempt(mail_runtime, smtp):
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    pid = mette(rt)

    async def erased_meanwhile(address: str) -> None:
        with Session(rt.engine) as s:
            assert erase_messages(s, profile_id=pid) == 1
            s.commit()

    box.rcpt_hook = erased_meanwhile
    with pytest.raises(LookupError, match="deleted during its send"):
        send_message(rt.settings, rt.engine, request(pid, "reminder_1"), now=NOON)
    with Session(rt.engine) as s:
        assert s.exec(select(Message).where(Message.profile_id == pid)).all() == []
        assert _sent_lines(s, pid) == 0
