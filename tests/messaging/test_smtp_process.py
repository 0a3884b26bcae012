"""The SMTP conversations run in a child process of the worker: against a real aiosmtpd, the
child sends what the parent hands it; a child that dies fails its hand-offs as transient
errors (the activity's retry sends them with the same Message-ID) and the next batch starts a
new one; it never outlives its parent; an idle one is closed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from rejse.messaging import channels
from rejse.messaging.channels import Outgoing, PermanentFailure, SmtpEmail
from rejse.messaging.smtp_process import SmtpProcessLost, _portable
from rejse.settings import Settings
from tests.messaging.conftest import Mailbox, free_port

REPO = Path(__file__).resolve().parents[2]


def outgoing(i: int, to: str | None = None) -> Outgoing:
    return Outgoing(
        message_id=f"msg_proc{i:06d}",
        to=to or f"kunde{i}@example.dk",
        subject="Din kurv venter",
        text="Hej",
        html="<p>Hej</p>",
        headers={},
    )


def channel(port: int, **settings) -> SmtpEmail:
    base = {"environment": "test", "smtp_url": f"smtp://127.0.0.1:{port}"}
    return SmtpEmail(Settings(**(base | settings)))


def alive(pid: int) -> bool:
    """Running, not a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


class HeldMailbox(Mailbox):
    """DATA waits until released; `entered` is set when the first one arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        self.entered.set()
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def server():
    box = HeldMailbox()
    box.release.set()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, box
    finally:
        box.release.set()
        controller.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_conversations_run_in_a_child_process(server):
    controller, box = server
    email = channel(controller.port, smtp_pool_size=2)
    results = email.deliver_many([outgoing(i) for i in range(5)])
    assert results == [f"<msg_proc{i:06d}@rejse.local>" for i in range(5)]
    assert sorted(box.by_message_id().values()) == [1] * 5
    pid = email.process.pid
    assert pid is not None
    assert pid != os.getpid()
    assert alive(pid)
    assert email.process.opened == 2  # five messages over the pool's two connections


def test_a_reply_and_a_non_ascii_address_cross_the_process_boundary(server):
    """A 5xx reply comes back as the PermanentFailure it is; a message the email package must
    write (an internationalised address, sent with SMTPUTF8) goes as well."""
    controller, box = server

    async def refuse(address):
        return "550 no such user" if address.startswith("nobody") else None

    box.rcpt_hook = refuse
    email = channel(controller.port)
    ok, refused, utf8 = email.deliver_many(
        [outgoing(1), outgoing(2, "nobody@example.dk"), outgoing(3, "søren@eksempel.dk")]
    )
    assert ok == "<msg_proc000001@rejse.local>"
    assert isinstance(refused, PermanentFailure)
    assert refused.bounced
    assert utf8 == "<msg_proc000003@rejse.local>"
    assert set(box.by_message_id()) == {ok, utf8}


def test_an_exception_that_cannot_cross_is_named_in_a_runtime_error():
    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a}/{b}")

    portable = _portable(Odd(1, 2))
    assert isinstance(portable, RuntimeError)
    assert str(portable) == "Odd: 1/2"
    assert _portable(None) is None
    err = ConnectionResetError("reset")
    assert _portable(err) is err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_child_that_dies_fails_its_hand_offs_and_the_next_batch_starts_a_new_one(server):
    controller, box = server
    email = channel(controller.port, smtp_pool_size=2)
    email.deliver(outgoing(0))
    first = email.process.pid
    assert first is not None
    box.release.clear()
    box.entered.clear()
    results: list = []
    batch = threading.Thread(
        target=lambda: results.extend(email.deliver_many([outgoing(1), outgoing(2)]))
    )
    batch.start()
    assert box.entered.wait(10), "the hand-off never reached the server"
    os.kill(first, signal.SIGKILL)  # mid-conversation
    batch.join(15)
    assert not batch.is_alive()
    assert len(results) == 2
    assert all(isinstance(r, SmtpProcessLost) for r in results), results
    assert not isinstance(results[0], PermanentFailure)  # transient: Temporal retries it
    box.release.set()
    assert email.deliver(outgoing(1)) == "<msg_proc000001@rejse.local>"  # the retry
    second = email.process.pid
    assert second is not None
    assert second != first


PARENT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from rejse.messaging.channels import Outgoing, SmtpEmail
    from rejse.settings import Settings

    if __name__ == "__main__":
        email = SmtpEmail(Settings(environment="test", smtp_url="smtp://127.0.0.1:{port}"))
        email.deliver(Outgoing(message_id="msg_parent", to="a@example.dk", subject="s",
                               text="t", html=None, headers={{}}))
        print(email.process.pid, flush=True)
        time.sleep(60)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_child_never_outlives_its_parent(server, tmp_path):
    """A SIGKILLed worker leaves no SMTP child behind to finish a conversation."""
    controller, _ = server
    script = tmp_path / "parent.py"
    script.write_text(PARENT.format(repo=str(REPO), port=controller.port))
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        child = int(line)
        assert alive(child)
        parent.kill()
        parent.wait(10)
        assert wait_until(lambda: not alive(child)), "the SMTP child outlived its parent"
    finally:
        parent.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_idle_child_is_closed_when_another_is_looked_up(server, monkeypatch):
    controller, _ = server
    first = channel(controller.port, smtp_pool_size=1)
    first.deliver(outgoing(1))
    pid = first.process.pid
    assert pid is not None
    monkeypatch.setattr(channels, "_IDLE_PROCESS_SECONDS", 0.0)
    time.sleep(0.01)
    other = channel(controller.port, smtp_pool_size=3)
    assert other.process is not None  # the lookup closes the idle one
    assert wait_until(lambda: not alive(pid))
