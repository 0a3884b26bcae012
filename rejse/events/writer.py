"""Group commit for ingestion: concurrent requests share one transaction.

Each request hands its rows to the writer and waits; the writer takes everything queued, stores
it in ONE transaction (in a worker thread, so the event loop keeps accepting requests, which
queue up for the next commit) and answers every waiting request after the commit. A request is
still answered only once its events are durable; a commit costs the same for 1 or 50 events.
If a group fails, its requests are retried one by one so one bad request fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from rejse.events.store import store_events_returning
from rejse.metrics import EVENTS_ACCEPTED, EVENTS_BY_OUTCOME, EVENTS_DUPLICATE

MAX_GROUP_ROWS = 5000

Item = tuple[Sequence[dict[str, Any]], Sequence[int], str, "asyncio.Future[tuple[int, int]]"]


class IngestWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        # SQLite commits in-process in well under a millisecond (WAL): cheaper inline than a
        # hop to a thread; PostgreSQL round-trips go to a worker thread.
        self.inline = engine.dialect.name == "sqlite"
        self.task: asyncio.Task[None] | None = None  # runs only while there is work

    async def submit(
        self, rows: Sequence[dict[str, Any]], buckets: Sequence[int], *, source: str = "api"
    ) -> tuple[int, int]:
        """Store durably; returns (accepted, duplicates)."""
        future: asyncio.Future[tuple[int, int]] = self.loop.create_future()
        self.queue.put_nowait((rows, buckets, source, future))
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run(), name="rejse-ingest-writer")
        return await future

    async def _run(self) -> None:
        while not self.queue.empty():  # ends when idle: no task left behind
            group = [self.queue.get_nowait()]
            size = len(group[0][0])
            while not self.queue.empty() and size < MAX_GROUP_ROWS:
                item = self.queue.get_nowait()
                group.append(item)
                size += len(item[0])
            results: Sequence[int | Exception]
            try:
                if self.inline:
                    results = self._store_group(group)
                    await asyncio.sleep(0)  # let the loop take the next requests in
                else:
                    results = await asyncio.to_thread(self._store_group, group)
            except Exception:  # noqa: BLE001 - isolate the failing request
                one_by_one: list[int | Exception] = []
                for item in group:
                    try:
                        one_by_one.append((await asyncio.to_thread(self._store_group, [item]))[0])
                    except Exception as exc:  # noqa: BLE001
                        one_by_one.append(exc)
                results = one_by_one
            # One result per request of the group, either way.
            for (rows, _, source, future), result in zip(group, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                    continue
                accepted = result
                EVENTS_ACCEPTED.labels(source).inc(accepted)
                EVENTS_BY_OUTCOME.labels("accepted").inc(accepted)
                if len(rows) - accepted:
                    EVENTS_DUPLICATE.labels(source).inc(len(rows) - accepted)
                    EVENTS_BY_OUTCOME.labels("duplicate").inc(len(rows) - accepted)
                future.set_result((accepted, len(rows) - accepted))

    def _store_group(self, group: list[Item]) -> list[int]:
        rows = [row for item in group for row in item[0]]
        buckets = [b for item in group for b in item[1]]
        with self.engine.begin() as conn:
            inserted = store_events_returning(conn, rows, buckets)
        return [sum(1 for row in item[0] if row["id"] in inserted) for item in group]


def writer_for(holder: Any, engine: Engine) -> IngestWriter:
    """The writer of this event loop kept on `holder` (e.g. `app.state`)."""
    writer: IngestWriter | None = getattr(holder, "ingest_writer", None)
    if writer is None or writer.loop is not asyncio.get_running_loop():
        writer = IngestWriter(engine)
        holder.ingest_writer = writer
    return writer
