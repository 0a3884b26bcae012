"""Journey runs executed per second: N runs of the soak's quick cart (wait 1 s, send a reminder
through the development outbox) on the SQLite-persisted dev server `rejse up` runs, one
in-process worker, timed from the first start to the last run finished.

Entries are started the way the dispatcher starts them (`journey_run` row, `start_workflow`);
the clock covers executing them: workflow tasks, activities (regular or local), the timer.

Baseline, same server, same worker, same run: N bare workflows of the same shape (a one-second
timer, then an activity that does nothing; `bench/bare_cart.py`) started with raw
`start_workflow`, timed from the first start to the last result. Rounds interleaved; the
figures are the medians, the ratio the median of the rounds' ratios. Also printed: the CPU per
run of this process (processor + worker) and of the dev server.

    python -m bench.journey_runs [--runs 500] [--rounds 3] [--cache 1000] [--tasks 100]
        [--pollers 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session
from temporalio.client import Client

from bench.bare_cart import BareCart, bare_send
from bench.journeys import checkout_rows, persisted_server
from bench.results import emit
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


def report(label: str, done: int, t0: float, marks: tuple[float, float], server_pid: int) -> float:
    """Print a round's rate and CPU per run (this process, the dev server); return the rate."""
    elapsed = time.perf_counter() - t0
    server_cpu, own = cpu_seconds(server_pid) - marks[0], own_cpu() - marks[1]
    print(
        f"  {label} finished in {elapsed:.1f} s: {done / elapsed:.1f} runs/s; CPU per run:"
        f" this process (processor + worker) {1000 * own / max(done, 1):.1f} ms,"
        f" Temporal dev server {1000 * server_cpu / max(done, 1):.1f} ms"
    )
    return done / elapsed


async def ours(runtime: Runtime, processor: EventProcessor, n: int, server_pid: int) -> float:
    """N quick-cart runs entered as the dispatcher enters them; runs finished per second."""
    before = finished(runtime)
    rows, buckets = checkout_rows(f"r{uuid.uuid4().hex[:6]}", n)
    marks = cpu_seconds(server_pid), own_cpu()
    t0 = time.perf_counter()
    for i in range(0, n, 500):
        accept(runtime.engine, rows[i : i + 500], buckets[i : i + 500])
    await processor.drain()
    started = time.perf_counter() - t0
    while (done := finished(runtime) - before) < n:
        if time.perf_counter() - t0 > 600:
            break
        await asyncio.sleep(0.05)
    return report(
        f"ours: {done}/{n} runs (all started after {started:.1f} s)", done, t0, marks, server_pid
    )


async def bare(client: Client, task_queue: str, n: int, server_pid: int) -> float:
    """N bare workflows of the same shape, 100 started at once; runs finished per second."""
    prefix = uuid.uuid4().hex[:6]
    marks = cpu_seconds(server_pid), own_cpu()
    t0 = time.perf_counter()
    handles = []
    for lo in range(0, n, 100):
        handles += await asyncio.gather(
            *(
                client.start_workflow(
                    BareCart.run, f"p{i}", id=f"bare-{prefix}-{i}", task_queue=task_queue
                )
                for i in range(lo, min(lo + 100, n))
            )
        )
    await asyncio.gather(*(h.result() for h in handles))
    return report(f"bare: {n} runs", n, t0, marks, server_pid)


async def main() -> None:
    from rejse.logging import configure_logging

    configure_logging(level="WARNING", json=False)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500, help="runs per round and contender")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cache", type=int, default=None, help="max_cached_workflows")
    ap.add_argument("--tasks", type=int, default=None, help="max_concurrent_workflow_tasks")
    ap.add_argument("--pollers", type=int, default=None, help="workflow task pollers")
    ap.add_argument("--quick", action="store_true", help="100 runs per round")
    args = ap.parse_args()
    if args.quick:
        args.runs = 100

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
            workflows=[*wiring.workflows(), BareCart],
            activities=[*wiring.activities(runtime), bare_send],
            **tuning,
        )
        assert worker is not None
        processor = EventProcessor(
            runtime,
            subscribers=wiring.in_transaction_subscribers(runtime),
            dispatchers=[JourneyDispatcher(runtime)],
        )
        async with worker:
            ours_rates, bare_rates = [], []
            for _ in range(args.rounds):
                ours_rates.append(await ours(runtime, processor, args.runs, server.process.pid))
                bare_rates.append(
                    await bare(client, settings.task_queue, args.runs, server.process.pid)
                )
        ratios = [o / b for o, b in zip(ours_rates, bare_rates, strict=True)]
        ours_rate, bare_rate = statistics.median(ours_rates), statistics.median(bare_rates)
        print(
            f"journey runs executed/s {tuning or '(defaults)'}: ours {ours_rate:.1f}/s, bare"
            f" workflow of the same shape {bare_rate:.1f}/s; ratio per round"
            f" {', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})"
        )
        emit(
            "bench.journey_runs",
            "journey runs executed/s (wait 1 s, send), persisted dev server",
            ours_rate,
            "/s",
            baseline=bare_rate,
            baseline_name="bare workflow of the same shape, same server and worker",
            target="report",
            met=True,
        )
    finally:
        await server.stop()
        engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
