"""The SMTP conversations of a worker process, held in a child process of their own.

Why: the conversations are CPU work in Python (aiosmtplib's protocol, on an event loop), and in
the worker's own process they compete for its GIL with the send lanes that render and record
the next batch. Each wait for the GIL stalls a conversation, and the server with it; moved to a
child, they run on another core beside the lanes (docs/operations.md, "Email").

One child per SMTP server and pool settings (as one `SmtpPool` per process was), started on
first use with `spawn`, holding the pool and its event loop. The parent hands it a batch of
written-out messages (`rejse.messaging.mime`) with the batch's start-by deadline on
CLOCK_MONOTONIC (the loop's clock, shared by every process of the machine) and gets back, per
message, None (handed off) or the exception its hand-off raised.

Exactly-once is unchanged (docs/messaging.md, "Idempotency"): the child sends each message it
is given once and never again on its own, so it adds no duplicate window. Should it die, every
hand-off it had in flight fails with `SmtpProcessLost`, a transient error: the activity is
retried with the same Message-ID, as after a connection lost mid-conversation, and the next
batch starts a new child. The child dies with its parent (PR_SET_PDEATHSIG on Linux, and the end
of its pipe anywhere), so a killed worker leaves no conversation behind to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from email.message import EmailMessage
from multiprocessing.connection import Connection

from rejse.messaging.smtp_pool import SmtpPool

# A message already written out (envelope sender, recipients, bytes), or where the email
# package must write it (a non-ASCII address: aiosmtplib sends it with SMTPUTF8, as the server
# allows) what builds it in the child (its messages do not pickle).
Handoff = tuple[str, list[str], bytes] | Callable[[], EmailMessage]


class SmtpProcessLost(ConnectionError):
    """The child holding the conversations ended while a hand-off was in flight: transient."""


# Children are started from this one thread, which lives as long as the process: Linux sends
# the parent-death signal when the *thread* that started a child ends, and the send lanes that
# ask for a child end when they are idle.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rejse-smtp-spawn")


class SmtpProcess:
    """The parent's side: one child, restarted on the next batch after it ended."""

    def __init__(self, pool: SmtpPool) -> None:
        self._pool = pool  # unused here: each child it starts runs a copy of it
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._pending: dict[int, tuple[Connection, Future[list[BaseException | None]]]] = {}
        self._ids = itertools.count()
        self._opened_before = 0  # connections opened by children that have ended
        self._opened_now = 0  # by the running child
        self.used_at = time.monotonic()

    @property
    def opened(self) -> int:
        """SMTP connections opened so far (tests and the benchmark read it)."""
        return self._opened_before + self._opened_now

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def _start(self) -> Connection:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=_child_main, args=(theirs, self._pool), name="rejse-smtp", daemon=True
        )
        _SPAWNER.submit(proc.start).result()
        theirs.close()
        self._conn, self._proc = ours, proc
        threading.Thread(
            target=self._read, args=(ours, proc), name="rejse-smtp-replies", daemon=True
        ).start()
        return ours

    def _read(self, conn: Connection, proc: multiprocessing.process.BaseProcess) -> None:
        while True:
            try:
                rid, results, opened = conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                self._opened_now = opened
                entry = self._pending.pop(rid, None)
            if entry is not None:
                entry[1].set_result(results)
        with self._lock:
            lost = [rid for rid, (c, _) in self._pending.items() if c is conn]
            futures = [self._pending.pop(rid)[1] for rid in lost]
            if self._conn is conn:
                self._conn = None
                self._opened_before += self._opened_now
                self._opened_now = 0
        conn.close()
        for future in futures:
            future.set_exception(SmtpProcessLost("the SMTP process ended during the hand-off"))
        proc.join(5)  # reaped, not left a zombie

    def deliver(
        self, handoffs: list[Handoff], *, start_by: float, timeout: float
    ) -> list[BaseException | None]:
        """Hand every message off at once over the child's pool; per message None or what its
        hand-off raised. `start_by` is on `time.monotonic()`'s clock."""
        future: Future[list[BaseException | None]] = Future()
        with self._lock:
            conn = self._conn or self._start()
            rid = next(self._ids)
            self._pending[rid] = (conn, future)
            self.used_at = time.monotonic()
            try:
                conn.send((rid, handoffs, start_by))
            except (OSError, ValueError) as exc:  # the child is gone: nothing was handed off
                # (a batch that cannot be pickled fails before a byte is written, as below)
                self._pending.pop(rid, None)
                raise SmtpProcessLost("the SMTP process ended before the hand-off") from exc
            except BaseException:  # written to a buffer first: nothing reached the pipe
                self._pending.pop(rid, None)
                raise
        return future.result(timeout)

    def close(self) -> None:
        """Stop the child: it closes its connections and exits (a child that does not is
        killed). The end of the pipe is no signal here: this process's reply thread still
        reads it."""
        with self._lock:
            conn, proc = self._conn, self._proc
            if conn is not None:
                with contextlib.suppress(OSError, ValueError):  # it has ended already
                    conn.send(None)
        if proc is not None:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent ended before the line above
        os._exit(0)


def _portable(result: BaseException | None) -> BaseException | None:
    """The result as the parent can read it: an exception that does not survive pickling is
    sent as a RuntimeError naming it (transient, as it was)."""
    if result is None:
        return None
    try:
        pickle.loads(pickle.dumps(result))  # noqa: S301 - our own bytes, just written
    except Exception:  # noqa: BLE001 - any exception that cannot cross the pipe
        return RuntimeError(f"{type(result).__name__}: {result}")
    return result


def _child_main(
    conn: Connection, pool: SmtpPool
) -> None:  # pragma: no cover - runs in the child (tests/messaging/test_smtp_process.py)
    _die_with_parent()
    loop = asyncio.new_event_loop()

    async def hand_off(item: Handoff, start_by: float) -> None:
        if callable(item):
            await pool.send(item(), start_by=start_by)
        else:
            sender, recipients, data = item
            await pool.send_bytes(sender, recipients, data, start_by=start_by)

    async def batch(rid: int, items: list[Handoff], start_by: float) -> None:
        results = await asyncio.gather(
            *(hand_off(item, start_by) for item in items), return_exceptions=True
        )
        try:  # only the loop sends, so the replies never interleave
            conn.send((rid, [_portable(r) for r in results], pool.opened))
        except (OSError, ValueError):  # the parent is gone
            os._exit(0)

    def read() -> None:
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                os._exit(0)
            if request is None:  # `SmtpProcess.close`
                loop.call_soon_threadsafe(pool.close)
                time.sleep(0.1)  # the loop closes them
                os._exit(0)
            asyncio.run_coroutine_threadsafe(batch(*request), loop)

    threading.Thread(target=read, name="rejse-smtp-requests", daemon=True).start()
    loop.run_forever()
