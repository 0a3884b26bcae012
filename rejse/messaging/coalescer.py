"""Group commit for sends: the concurrent sends of one worker process handed to
`rejse.messaging.sender.send_batch` together, so many messages share each transaction and their
SMTP hand-offs go out at once.

A caller queues its request and waits for its own result: the send activity awaits it on the
worker's event loop (`send_async`, so no activity thread sits blocked beside the lanes; a
blocked thread is woken for each result and competes with the lanes for the GIL), tests and
scripts may block a thread on it (`send`). A few lanes
(threads) each take what is queued, up to `max_batch`, and send it as one batch; while a lane
works, the next requests gather for the next batch, so a lone send waits for nobody and a
burst fills batches by itself (no timer). Each request gets its own result or raises its own
error, exactly as a single send would; a lane idle for `idle_seconds` ends, and the next
request starts one again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError

from rejse.contracts import SendRequest, SendResult

BatchSend = Callable[[Sequence[tuple[SendRequest, dt.datetime]]], list[SendResult | BaseException]]
_Queued = tuple[SendRequest, dt.datetime, "Future[SendResult]"]


class SendCoalescer:
    def __init__(
        self,
        send_batch: BatchSend,
        *,
        max_batch: int = 100,
        lanes: int = 2,
        idle_seconds: float = 5.0,
    ) -> None:
        self.send_batch = send_batch
        self.max_batch = max(1, max_batch)
        self.lanes = max(1, lanes)
        self.idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue[_Queued] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = 0
        self._idle = 0
        # the sizes of the latest batches sent (tests and the benchmark read them)
        self.batches: deque[int] = deque(maxlen=10_000)

    def send(self, request: SendRequest, now: dt.datetime) -> SendResult:
        """Send `request` in the next batch; its result, or what its send raised."""
        return self._submit(request, now).result()

    async def send_async(self, request: SendRequest, now: dt.datetime) -> SendResult:
        """`send`, awaited on the caller's event loop. Should the caller be cancelled, its
        request still goes out with its batch (it may be in one already) and its result is
        recorded, so the retry finds it."""
        return await asyncio.wrap_future(self._submit(request, now))

    def _submit(self, request: SendRequest, now: dt.datetime) -> Future[SendResult]:
        done: Future[SendResult] = Future()
        self._queue.put((request, now, done))
        with self._lock:
            start = self._idle == 0 and self._running < self.lanes
            if start:
                self._running += 1
        if start:
            threading.Thread(target=self._lane, name="rejse-send-lane", daemon=True).start()
        return done

    def _take(self) -> list[_Queued] | None:
        with self._lock:
            self._idle += 1
        try:
            first = self._queue.get(timeout=self.idle_seconds)
        except queue.Empty:
            first = None
        with self._lock:
            self._idle -= 1
            if first is None and self._queue.empty():
                self._running -= 1
                return None
        batch = [first] if first is not None else []
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _lane(self) -> None:
        while (batch := self._take()) is not None:
            if not batch:
                continue
            self.batches.append(len(batch))
            try:
                results: list[SendResult | BaseException] = self.send_batch(
                    [(req, now) for req, now, _ in batch]
                )
            except BaseException as exc:  # noqa: BLE001 - every waiting caller raises it
                results = [exc] * len(batch)
            for (_, _, done), result in zip(batch, results, strict=True):
                _settle(done, result)


def _settle(done: Future[SendResult], result: SendResult | BaseException) -> None:
    """The caller's result, unless it stopped waiting (a cancelled `send_async`)."""
    try:
        if isinstance(result, BaseException):
            done.set_exception(result)
        else:
            done.set_result(result)
    except InvalidStateError:
        pass
