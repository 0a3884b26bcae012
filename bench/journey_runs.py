"""Journey runs executed per second: N runs of the soak's quick cart (wait 1 s, send a reminder
through the development outbox) on the SQLite-persisted dev server `rejse up` runs, one
in-process worker, timed from the first start to the last run finished.

Entries are started the way the dispatcher starts them (`journey_run` row, `start_workflow`);
the clock covers executing them: workflow tasks, activities (regular or local), the timer.

    python -m bench.journey_runs [--runs 500] [--cache 1000] [--tasks 100] [--pollers 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from bench.journeys import checkout_rows, persisted_server
from rejse import wiring
from rejse.db import make_engine
from rejse.devserver import SQLITE_PRAGMAS
from rejse.events.ingest import accept
from rejse.events.processor import EventProcessor
from rejse.journeys import service
from rejse.journeys.dispatcher import JourneyDispatcher
from rejse.migrate import upgrade
from rejse.runtime import Runtime
from rejse.settings import Settings
from rejse.temporal import TemporalConnector
from rejse.worker import build_worker
from tests.reliability.stack import QUICK_CART


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (and its waited-for children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def finished(runtime: Runtime) -> int:
    sql = "SELECT count(*) FROM journey_run WHERE ended_at IS NOT NULL"
    with runtime.engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--cache", type=int, default=None, help="max_cached_workflows")
    ap.add_argument("--tasks", type=int, default=None, help="max_concurrent_workflow_tasks")
    ap.add_argument("--pollers", type=int, default=None, help="workflow task pollers")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rejse-runs-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    settings = Settings(
        environment="test",
        data_dir=tmp,
        database_url=url,
        task_queue=f"runs-{uuid.uuid4().hex[:6]}",
        log_level="WARNING",
    )
    with Session(engine) as s:
        service.create_journey(s, definition=QUICK_CART)
        service.publish(s, key=QUICK_CART["key"], activity_names={"messaging.send"})
        s.commit()
    server, client = await persisted_server(tmp / "temporal", SQLITE_PRAGMAS)
    runtime = Runtime(
        settings=settings, engine=engine, temporal=TemporalConnector(settings, client)
    )
    tuning = {
        k: v
        for k, v in {
            "max_cached_workflows": args.cache,
            "max_concurrent_workflow_tasks": args.tasks,
            "max_concurrent_workflow_task_polls": args.pollers,
        }.items()
        if v is not None
    }
    try:
        worker = build_worker(
            client,
            task_queue=settings.task_queue,
            workflows=wiring.workflows(),
            activities=wiring.activities(runtime),
            **tuning,
        )
        assert worker is not None
        processor = EventProcessor(
            runtime,
            subscribers=wiring.in_transaction_subscribers(runtime),
            dispatchers=[JourneyDispatcher(runtime)],
        )
        rows, buckets = checkout_rows(f"r{uuid.uuid4().hex[:6]}", args.runs)
        async with worker:
            server_cpu, worker_cpu = cpu_seconds(server.process.pid), own_cpu()
            t0 = time.perf_counter()
            for i in range(0, args.runs, 500):
                accept(engine, rows[i : i + 500], buckets[i : i + 500])
            await processor.drain()
            started = time.perf_counter() - t0
            while (done := finished(runtime)) < args.runs:
                if time.perf_counter() - t0 > 600:
                    break
                await asyncio.sleep(0.2)
            elapsed = time.perf_counter() - t0
            server_cpu = cpu_seconds(server.process.pid) - server_cpu
            worker_cpu = own_cpu() - worker_cpu
        print(
            f"{done}/{args.runs} runs finished in {elapsed:.1f} s (all started after "
            f"{started:.1f} s): {done / elapsed:.1f} runs/s {tuning or 'defaults'}; CPU per run: "
            f"this process (processor + worker) {1000 * worker_cpu / done:.1f} ms, "
            f"Temporal dev server {1000 * server_cpu / done:.1f} ms"
        )
    finally:
        await server.stop()
        engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
