"""One delivery per step, counted at the SMTP server: a worker killed during the send, an
activity failing after the SMTP hand-off, transient SMTP errors retried, permanent ones not."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlmodel import Session
from temporalio.worker import Worker

from activities.messaging import MessagingActivities
from rejse.messaging.service import list_messages
from rejse.settings import REPO_ROOT
from tests.messaging.conftest import mette, with_settings
from tests.messaging.test_guards import req, run_plan
from tests.messaging.workflows import PlannedSend, SendPlanWorkflow


class FailsAfterHandoff(MessagingActivities):
    """The activity raises once right after the SMTP server accepted the message."""

    failed = 0

    def after_handoff(self, message_id: str) -> None:
        if type(self).failed == 0:
            type(self).failed += 1
            raise RuntimeError("worker lost its database connection after the hand-off")


async def test_failing_after_smtp_handoff_delivers_once(time_env, mail_runtime, smtp):
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    pid = mette(rt)
    t0 = await time_env.get_current_time()
    acts = FailsAfterHandoff(rt)
    with ThreadPoolExecutor(max_workers=2) as pool:
        async with Worker(
            time_env.client,
            task_queue=rt.settings.task_queue,
            workflows=[SendPlanWorkflow],
            activities=[acts.send],
            activity_executor=pool,
        ):
            outcomes = await time_env.client.execute_workflow(
                SendPlanWorkflow.run,
                [
                    PlannedSend(at=t0, request=req(pid, "reminder_1")),
                    PlannedSend(at=t0, request=req(pid, "reminder_2")),
                ],
                id=f"test-handoff-{uuid.uuid4().hex[:8]}",
                task_queue=rt.settings.task_queue,
            )
    assert FailsAfterHandoff.failed == 1  # the first attempt did fail
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert sorted(box.by_message_id().values()) == [1, 1]  # one delivery per step
    with Session(rt.engine) as s:
        rows = {m.step_id: m for m in list_messages(s, profile_id=pid)}
    assert rows["reminder_1"].attempts == 1
    assert rows["reminder_1"].status == "sent"


async def test_transient_smtp_error_is_retried_and_permanent_is_not(time_env, mail_runtime, smtp):
    box, _ = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    ok = mette(rt)
    gone = mette(rt, identifiers={"email": "gone@example.dk"})
    calls: dict[str, int] = {}

    async def rcpt(address: str):
        calls[address] = calls.get(address, 0) + 1
        if address == "gone@example.dk":
            return "550 5.1.1 mailbox unavailable"
        if calls[address] == 1:
            return "451 4.3.0 try again later"
        return None

    box.rcpt_hook = rcpt
    t0 = await time_env.get_current_time()
    outcomes = await run_plan(
        time_env,
        rt,
        [PlannedSend(at=t0, request=req(ok, "a")), PlannedSend(at=t0, request=req(gone, "a"))],
    )
    assert outcomes[0].status == "sent"
    assert outcomes[1].status == "failed"
    assert outcomes[1].reason == "recipient refused (550)"
    assert calls["gone@example.dk"] == 1  # permanent: no retry
    assert len(box.messages) == 1
    with Session(rt.engine) as s:
        bounced = list_messages(s, profile_id=gone)[0]
        sent = list_messages(s, profile_id=ok)[0]
    assert bounced.status == "bounced"
    assert sent.attempts == 2


async def test_killed_worker_during_send_delivers_once(dev_env, mail_runtime, smtp, db_url):
    box, smtp_url = smtp
    rt = with_settings(mail_runtime, message_quiet_hours={})
    pid = mette(rt)
    in_send = threading.Event()

    async def slow_first_rcpt(address: str):
        if not in_send.is_set():
            in_send.set()
            await asyncio.sleep(3)  # the worker dies while the server is thinking

    box.rcpt_hook = slow_first_rcpt
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "REJSE_DATABASE_URL": db_url,
        "REJSE_SMTP_URL": smtp_url,
        "REJSE_TASK_QUEUE": queue,
        "REJSE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "REJSE_SECRET_KEY": rt.settings.secret_key,
        "REJSE_MESSAGE_QUIET_HOURS": "{}",
        "REJSE_ENVIRONMENT": "test",
        "REJSE_PUBLIC_URL": "http://testserver",
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once; the test waits on it in a thread
        [sys.executable, "-m", "tests.messaging.worker_proc"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        now = dt.datetime.now(dt.UTC)
        plan = [
            PlannedSend(at=now, request=req(pid, "reminder_1"), timeout_seconds=3),
            PlannedSend(at=now, request=req(pid, "reminder_2"), timeout_seconds=3),
        ]
        handle = await dev_env.client.start_workflow(
            SendPlanWorkflow.run, plan, id=f"test-kill-{queue}", task_queue=queue
        )
        assert await asyncio.to_thread(in_send.wait, 60), "the worker never started sending"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with Session(rt.engine) as s:
            assert list_messages(s, profile_id=pid)[0].status == "sending"
        rt_queue = with_settings(rt, task_queue=queue)
        with ThreadPoolExecutor(max_workers=2) as pool:
            async with Worker(
                dev_env.client,
                task_queue=queue,
                workflows=[SendPlanWorkflow],
                activities=[MessagingActivities(rt_queue).send],
                activity_executor=pool,
            ):
                outcomes = await asyncio.wait_for(handle.result(), 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert sorted(box.by_message_id().values()) == [1, 1]
    with Session(rt.engine) as s:
        first = {m.step_id: m for m in list_messages(s, profile_id=pid)}["reminder_1"]
    assert first.status == "sent"
    assert first.attempts == 2
