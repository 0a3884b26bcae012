"""Guards: unit tests with explicit clocks, then frequency cap and quiet hours end to end through
SEND_MESSAGE in a time-skipping Temporal workflow."""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

from sqlmodel import Session
from temporalio.worker import Worker

from activities.messaging import MessagingActivities
from rejse.contracts import SendRequest
from rejse.messaging import guards
from rejse.messaging.service import list_messages
from tests.messaging.conftest import CHECKOUT, mette, with_settings
from tests.messaging.workflows import PlannedSend, SendPlanWorkflow

CPH = ZoneInfo("Europe/Copenhagen")
QUIET = guards.QuietHours.parse("21:00-08:00")


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# ----------------------------------------------------------------------------- unit


def test_quiet_hours_wrap_midnight_in_profile_zone():
    # 20:59 local (winter, UTC+1) is fine; 21:00 waits until 08:00 the next morning
    assert guards.quiet_until(utc(2026, 11, 23, 19, 59), QUIET, CPH) is None
    assert guards.quiet_until(utc(2026, 11, 23, 20, 0), QUIET, CPH) == utc(2026, 11, 24, 7, 0)
    # 03:00 local waits until 08:00 the same day
    assert guards.quiet_until(utc(2026, 11, 24, 2, 0), QUIET, CPH) == utc(2026, 11, 24, 7, 0)
    assert guards.quiet_until(utc(2026, 11, 24, 7, 0), QUIET, CPH) is None
    # the same instant is daytime in New York
    assert guards.quiet_until(utc(2026, 11, 23, 22, 0), QUIET, ZoneInfo("America/New_York")) is None
    # summer time: 08:00 CEST is 06:00 UTC
    assert guards.quiet_until(utc(2026, 7, 1, 23, 0), QUIET, CPH) == utc(2026, 7, 2, 6, 0)
    # a daytime window (no wrap)
    lunch = guards.QuietHours.parse("12:00-13:00")
    assert guards.quiet_until(utc(2026, 11, 23, 11, 30), lunch, CPH) == utc(2026, 11, 23, 12, 0)


def test_frequency_cap_counts_only_the_window():
    now = utc(2026, 11, 23, 12)
    week = dt.timedelta(days=7)
    sent = [now - dt.timedelta(days=d) for d in (1, 2, 3)]
    assert guards.over_frequency_cap(sent, now=now, cap=3, window=week)
    assert not guards.over_frequency_cap(
        sent, now=now + dt.timedelta(days=4, minutes=1), cap=3, window=week
    )
    assert not guards.over_frequency_cap(sent[:2], now=now, cap=3, window=week)
    assert not guards.over_frequency_cap(sent, now=now, cap=0, window=week)


def test_consent_rules():
    assert guards.consent_reason({}, "email", require_opt_in=False) is None
    assert (
        guards.consent_reason({}, "email", require_opt_in=True) == "no_consent (email not granted)"
    )
    assert guards.consent_reason({"email": "revoked"}, "email", require_opt_in=False).startswith(
        "no_consent"
    )
    assert (
        guards.consent_reason({"email": "denied", "sms": "granted"}, "sms", require_opt_in=True)
        is None
    )


# ----------------------------------------------------------------------------- time skipping


def req(pid: str, step: str, *, transactional: bool = False) -> SendRequest:
    return SendRequest(
        idempotency_key=f"test:{pid}:{step}",
        profile_id=pid,
        channel="email",
        template="abandoned_cart/reminder",
        journey_key="cap-test",
        step_id=step,
        trigger=CHECKOUT,
        transactional=transactional,
    )


async def run_plan(time_env, runtime, plan: list[PlannedSend]):
    acts = MessagingActivities(runtime)
    with ThreadPoolExecutor(max_workers=4) as pool:
        async with Worker(
            time_env.client,
            task_queue=runtime.settings.task_queue,
            workflows=[SendPlanWorkflow],
            activities=[acts.send],
            activity_executor=pool,
        ):
            return await time_env.client.execute_workflow(
                SendPlanWorkflow.run,
                plan,
                id=f"test-plan-{uuid.uuid4().hex[:8]}",
                task_queue=runtime.settings.task_queue,
            )


async def test_frequency_cap_with_time_skipping(time_env, mail_runtime, smtp):
    box, _ = smtp
    rt = with_settings(
        mail_runtime,
        message_quiet_hours={},
        message_frequency_cap=3,
        message_frequency_window="P7D",
    )
    pid = mette(rt)
    t0 = await time_env.get_current_time()
    day = dt.timedelta(days=1)
    plan = [PlannedSend(at=t0 + i * day, request=req(pid, f"s{i}")) for i in range(4)]
    plan.append(
        PlannedSend(
            at=t0 + 3 * day + dt.timedelta(hours=1), request=req(pid, "receipt", transactional=True)
        )
    )
    plan.append(PlannedSend(at=t0 + 7 * day + dt.timedelta(hours=1), request=req(pid, "s7")))
    outcomes = await run_plan(time_env, rt, plan)
    assert [o.status for o in outcomes] == ["sent", "sent", "sent", "skipped", "sent", "sent"]
    assert outcomes[3].reason == "frequency_cap (3 per P7D)"
    assert (
        outcomes[-1].finished_at - outcomes[0].finished_at >= 7 * day
    )  # days passed in skipped time
    assert len(box.messages) == 5
    with Session(rt.engine) as s:
        skipped = list_messages(s, profile_id=pid, status="skipped")
    assert [m.step_id for m in skipped] == ["s3"]
    assert skipped[0].reason.startswith("frequency_cap")


async def test_quiet_hours_hold_the_send_until_morning_with_time_skipping(
    time_env, mail_runtime, smtp
):
    box, _ = smtp
    rt = with_settings(
        mail_runtime, message_quiet_hours={"email": "21:00-08:00"}, message_frequency_cap=0
    )
    dane = mette(rt)
    yank = mette(
        rt, identifiers={"email": "sam@example.com"}, locale="en-US", timezone="America/New_York"
    )
    now = (await time_env.get_current_time()).astimezone(CPH)
    evening = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(22, 30), tzinfo=CPH)
    outcomes = await run_plan(
        time_env,
        rt,
        [
            PlannedSend(at=evening, request=req(yank, "night")),
            PlannedSend(at=evening, request=req(dane, "night")),
        ],
    )
    yank_out, dane_out = outcomes
    morning = dt.datetime.combine(evening.date() + dt.timedelta(days=1), dt.time(8, 0), tzinfo=CPH)
    assert dane_out.status == "sent"
    assert dane_out.deferred_until == [morning]
    assert dane_out.finished_at >= morning  # held, not dropped
    assert yank_out.status == "sent"
    assert yank_out.deferred_until == []
    assert len(box.messages) == 2
    with Session(rt.engine) as s:
        sent = list_messages(s, profile_id=dane)[0]
    assert sent.status == "sent"
    assert sent.sent_at >= morning


async def test_frequency_cap_holds_under_concurrent_sends(mail_runtime, smtp):
    """Five sends of one profile at the same moment from five threads: exactly three go out.
    An attempt that loses a database race raises and is retried, as Temporal would."""
    import asyncio

    from rejse.messaging.sender import send_message

    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={}, message_frequency_cap=3)
    pid = mette(rt)
    now = utc(2026, 11, 23, 12)

    def attempt(i: int):
        for _ in range(20):
            try:
                return send_message(rt.settings, rt.engine, req(pid, f"c{i}"), now=now)
            except Exception:  # noqa: BLE001, S112 - a lost race is transient: retry
                continue
        raise AssertionError("never succeeded")

    results = await asyncio.gather(*(asyncio.to_thread(attempt, i) for i in range(5)))
    assert sorted(r.status for r in results) == ["sent", "sent", "sent", "skipped", "skipped"]
    assert len(box.messages) == 3
