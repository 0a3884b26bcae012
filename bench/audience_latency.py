"""Event accepted -> `audience_entered` journey started, on a Temporal dev server.

Each `Order Completed` of a new customer makes them a member of "buyers" (`{"event": "Order
Completed"}`); the processor stores the derived `Audience Entered` event, processes it in a
later batch, and the journey dispatcher starts the welcome journey whose trigger is
`audience_entered: buyers`. Latency: from the order accepted (insert committed) to that run
started.
1. The maximum rate: N orders accepted at once, drained by the processor with the dispatcher.
2. Latency at half that rate (p50/p95/p99), the processor running as its background service.
Baseline, same server, same rate, same run: a journey triggered by `Order Completed` directly
(one processing hop instead of two), so the ratio shows what the audience hop costs.

    python -m bench.audience_latency [--orders 1000] [--seconds 6] [--poll 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from bench.journeys import TimedDispatcher, pct
from bench.results import emit
from rejse import binaries, wiring
from rejse.audiences.definition import AudienceDefinition
from rejse.audiences.service import create_audience
from rejse.db import make_engine, utcnow
from rejse.events.ingest import accept
from rejse.events.processor import EventProcessor
from rejse.events.service import event_row
from rejse.events.store import bucket_for
from rejse.journeys import service
from rejse.migrate import upgrade
from rejse.models.profiles import ProfileIdentifier
from rejse.runtime import Runtime
from rejse.settings import Settings
from rejse.temporal import DATA_CONVERTER, SEARCH_ATTRIBUTES, TemporalConnector


def journey(key: str, trigger: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "name": key,
        "trigger": trigger,
        "start": "wait",
        "steps": {"wait": {"type": "wait", "for": "P1D"}},
    }


class ProfileTimedDispatcher(TimedDispatcher):
    """Start times by profile (the run's trigger is the derived event, not the order)."""

    async def _send(self, client, plan) -> None:  # type: ignore[no-untyped-def]
        await super()._send(client, plan)
        now = time.perf_counter()
        for kind, item in plan.actions:
            if kind == "start":
                self.started[f"{item.run_input.journey_key}:{item.run_input.profile_id}"] = now


def orders(prefix: str, n: int) -> tuple[list[dict[str, Any]], list[int]]:
    now = utcnow()
    rows = [
        event_row(
            type="track",
            message_id=f"{prefix}-{i}",
            timestamp=now,
            received_at=now,
            event="Order Completed",
            anonymous_id=f"{prefix}-anon-{i}",
            properties={"order_id": f"{prefix}-{i}", "revenue": 100.0, "currency": "DKK"},
        )
        for i in range(n)
    ]
    return rows, [bucket_for(r["anonymous_id"]) for r in rows]


def processor(runtime: Runtime, dispatcher: TimedDispatcher, poll: float) -> EventProcessor:
    return EventProcessor(
        runtime,
        subscribers=wiring.in_transaction_subscribers(runtime),
        dispatchers=[dispatcher],
        poll_interval=poll,
    )


def _profiles(runtime: Runtime, anon: list[str]) -> dict[str, str]:
    with Session(runtime.engine) as s:
        rows = s.exec(
            select(ProfileIdentifier.value, ProfileIdentifier.profile_id).where(
                ProfileIdentifier.type == "anonymous_id",
                ProfileIdentifier.value.in_(anon),  # type: ignore[attr-defined]
            )
        ).all()
    return dict(rows)


async def max_rate(runtime: Runtime, n: int, poll: float) -> float:
    dispatcher = ProfileTimedDispatcher(runtime)
    rows, buckets = orders(f"m{uuid.uuid4().hex[:6]}", n)
    t0 = time.perf_counter()
    accept(runtime.engine, rows, buckets)
    await processor(runtime, dispatcher, poll).drain()
    starts = sum(1 for k in dispatcher.started if k.startswith("welcome:"))
    assert starts == n, (starts, n)  # each order also starts `direct`
    return n / (time.perf_counter() - t0)


async def latency(
    runtime: Runtime, rate: float, seconds: float, poll: float
) -> dict[str, list[float]]:
    """Both journeys' start latencies, from the same accepted orders."""
    dispatcher = ProfileTimedDispatcher(runtime)
    stop = asyncio.Event()
    task = asyncio.create_task(processor(runtime, dispatcher, poll).run(stop))
    n = int(rate * seconds)
    prefix = f"l{uuid.uuid4().hex[:6]}"
    rows, buckets = orders(prefix, n)
    accepted: dict[str, float] = {}
    t0 = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        await asyncio.to_thread(accept, runtime.engine, rows[i : i + 1], buckets[i : i + 1])
        accepted[rows[i]["anonymous_id"]] = time.perf_counter()
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        if len(dispatcher.started) >= 2 * n:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    pids = _profiles(runtime, list(accepted))
    return {
        key: sorted(
            dispatcher.started[f"{key}:{pids[a]}"] - t
            for a, t in accepted.items()
            if a in pids and f"{key}:{pids[a]}" in dispatcher.started
        )
        for key in ("welcome", "direct")
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--poll", type=float, default=0.02)
    ap.add_argument("--quick", action="store_true", help="a short pass (python -m bench --quick)")
    args = ap.parse_args()
    if args.quick:
        args.orders, args.seconds, args.rounds = 300, 3.0, 1
    tmp = Path(tempfile.mkdtemp(prefix="rejse-bench-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=binaries.temporal_cli(),
        search_attributes=SEARCH_ATTRIBUTES,
    )
    try:
        settings = Settings(
            environment="test",
            data_dir=tmp,
            database_url=url,
            task_queue=f"bench-{uuid.uuid4().hex[:6]}",
            log_level="WARNING",
        )
        runtime = Runtime(
            settings=settings, engine=engine, temporal=TemporalConnector(settings, env.client)
        )
        with Session(engine) as s:
            buyers = {"event": "Order Completed"}
            create_audience(
                s, AudienceDefinition(key="buyers", name="Buyers", condition=buyers), now=utcnow()
            )
            service.create_journey(
                s, definition=journey("welcome", {"type": "audience_entered", "audience": "buyers"})
            )
            service.create_journey(
                s, definition=journey("direct", {"type": "event", "event": "Order Completed"})
            )
            for key in ("welcome", "direct"):
                service.publish(s, key=key, activity_names=wiring.activity_names())
            s.commit()
        rate = statistics.median(
            [await max_rate(runtime, args.orders, args.poll) for _ in range(args.rounds)]
        )
        half = rate / 2
        ours: list[float] = []
        base: list[float] = []
        for _ in range(args.rounds):
            both = await latency(runtime, half, args.seconds / args.rounds, args.poll)
            ours += both["welcome"]
            base += both["direct"]
        ours.sort()
        base.sort()
        print(
            f"audience_entered journeys on a dev server (SQLite): max {rate:.0f} orders/s "
            f"latency at half that rate ({half:.0f}/s)"
        )
        print(
            f"  accepted -> audience journey started: p50 {pct(ours, 50) * 1000:6.1f} ms  "
            f"p95 {pct(ours, 95) * 1000:6.1f} ms  p99 {pct(ours, 99) * 1000:6.1f} ms   "
            f"({len(ours)} runs; target p95 <= 1000 ms)"
        )
        print(
            f"  accepted -> event journey started   : p50 {pct(base, 50) * 1000:6.1f} ms  "
            f"p95 {pct(base, 95) * 1000:6.1f} ms  p99 {pct(base, 99) * 1000:6.1f} ms   "
            f"(baseline, {len(base)} runs)"
        )
        print(f"  ratio p95 audience / event          : {pct(ours, 95) / pct(base, 95):6.2f}x")
        emit(
            "bench.audience_latency",
            "accepted -> audience_entered journey started, p95",
            pct(ours, 95) * 1000,
            "ms",
            baseline=pct(base, 95) * 1000,
            baseline_name="event-triggered journey, p95",
            target="<= 1000 ms",
            met=pct(ours, 95) <= 1.0,
        )
    finally:
        await env.shutdown()
        engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
