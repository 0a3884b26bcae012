"""The event processor with 50 audiences defined vs none, SQLite file, same events.

Ours: the processor with the subscribers `rejse up` runs (scoring, customer value, audiences)
and 50 audiences over the events' names, traits, windows, customer value and each other.
A profile's traits stay as its first identify gave them (a repeated identify repeats them), as
a shop's customers' do; its memberships change as its orders, refunds and visits come and go.
Two phases per round: the first events create the profiles (every customer new, so each joins
its audiences and the Audience Entered events are processed too), the next as many events come
from the same, now known customers, which is a running shop's steady state and the figure the
target is for. Baseline, same run, same data: the same processor and subscribers with no
audience defined (the audience subscriber then wants nothing). Rounds interleave the two, each
on a fresh database; figures are medians. Also: the time of each audience subscriber `apply` (the
per-event membership work), p50/p95/p99 over every event of every round of ours, on the wall
clock and in CPU time (the target is for the work, which a loaded machine's wall clock hides).

    python -m bench.audience_processor [--events 20000] [--profiles 2000] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench.results import emit
from rejse import wiring
from rejse.audiences.definition import AudienceDefinition
from rejse.audiences.service import create_audience
from rejse.audiences.subscriber import AudienceSubscriber
from rejse.db import make_engine, utcnow
from rejse.events.ingest import accept
from rejse.events.processor import EventProcessor
from rejse.events.service import event_row
from rejse.events.store import bucket_for
from rejse.migrate import upgrade
from rejse.runtime import Runtime
from rejse.settings import Settings

NAMES = ("Product Viewed", "Checkout Started", "Order Completed", "Order Refunded", "Signed Up")


def audiences() -> list[dict[str, Any]]:
    """50 conditions of the shapes marketers write (seed 004: high spenders, churners, ...)."""
    out: list[dict[str, Any]] = []
    for i in range(10):
        out.append({"event": NAMES[i % 5], "within": f"P{7 + i}D", "count": {"gte": 1 + i % 3}})
        out.append({"trait": "plan", "op": "eq", "value": ("pro", "free", "team")[i % 3]})
        out.append({"customer": "revenue", "op": "gte", "value": 100 * (i + 1)})
        out.append(
            {
                "all": [
                    {"trait": "country", "op": "in", "value": ["DK", "SE"]},
                    {"event": "Order Completed", "within": "P90D"},
                    {"not": {"event": "Order Refunded", "within": "P90D"}},
                ]
            }
        )
        out.append(
            {"any": [{"customer": "order_count", "op": "gte", "value": 2 + i}, {"audience": "a1"}]}
        )
    return out


def load(engine: Engine, events: int, profiles: int, start: int = 0) -> None:
    now = utcnow()
    rows, buckets = [], []
    for i in range(start, start + events):
        p = i % profiles
        if i // profiles % 4 == 1:
            row = event_row(
                type="identify",
                message_id=f"m-{i}",
                timestamp=now,
                received_at=now,
                user_id=f"user-{p}",
                anonymous_id=f"anon-{p}",
                traits={
                    "plan": ("pro", "free", "team")[p % 3],
                    "country": ("DK", "SE", "NO")[p % 3],
                },
            )
        else:
            name = NAMES[i % 5]
            row = event_row(
                type="track",
                message_id=f"m-{i}",
                timestamp=now,
                received_at=now,
                event=name,
                anonymous_id=f"anon-{p}",
                properties={"revenue": 150.0, "currency": "DKK"} if "Order" in name else {},
            )
        rows.append(row)
        buckets.append(bucket_for(f"anon-{p}"))
    for i in range(0, events, 1000):
        accept(engine, rows[i : i + 1000], buckets[i : i + 1000])


class TimedAudiences(AudienceSubscriber):
    """Times `apply` on the wall clock and in CPU time of its thread: on a loaded machine a
    wall-clock percentile mostly measures the scheduler, the CPU time is the work."""

    def __init__(self, times: list[float], cpu: list[float]) -> None:
        super().__init__()
        self.times = times
        self.cpu = cpu

    def apply(self, session, event):  # type: ignore[no-untyped-def]
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return super().apply(session, event)
        finally:
            self.times.append(time.perf_counter() - t0)
            self.cpu.append(time.thread_time() - c0)


def one_round(
    tmp: Path,
    n: int,
    args: argparse.Namespace,
    with_audiences: bool,
    times: list[float],
    cpu: list[float],
) -> tuple[float, float]:
    """(events/s of new customers' events, events/s of the same customers' next events)."""
    engine = make_engine(f"sqlite:///{tmp / f'r{n}.db'}")
    upgrade(engine)
    if with_audiences:
        with Session(engine) as s:
            for i, cond in enumerate(audiences()):
                definition = AudienceDefinition(key=f"a{i}", name=f"A{i}", condition=cond)
                create_audience(s, definition, now=utcnow())
            s.commit()
    runtime = Runtime.create(
        Settings(environment="test", database_url=str(engine.url)), engine=engine
    )
    subscribers = [
        s
        if s.name != "audiences"
        else TimedAudiences(*((times, cpu) if with_audiences else ([], [])))
        for s in wiring.in_transaction_subscribers(runtime)
    ]
    proc = EventProcessor(runtime, subscribers=subscribers, dispatchers=[], batch_size=500)
    rates = []
    for phase in range(2):  # new customers, then the same customers coming back
        load(engine, args.events, args.profiles, start=phase * args.events)
        with engine.connect() as conn:
            before = conn.scalar(sa.text("SELECT count(*) FROM event WHERE type = 'internal'"))
        t0 = time.perf_counter()
        done = asyncio.run(proc.drain())
        elapsed = time.perf_counter() - t0
        # derived events (Audience Entered/Exited) are processed too; count the tracked ones
        with engine.connect() as conn:
            after = conn.scalar(sa.text("SELECT count(*) FROM event WHERE type = 'internal'"))
        rates.append((done - ((after or 0) - (before or 0))) / elapsed)
    engine.dispose()
    return rates[0], rates[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--profiles", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5,000 events, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.events, args.profiles, args.rounds = 5_000, 500, 2
    ours: list[tuple[float, float]] = []
    base: list[tuple[float, float]] = []
    times: list[float] = []
    cpu: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for r in range(args.rounds):
            base.append(one_round(tmp, 2 * r, args, False, times, cpu))
            ours.append(one_round(tmp, 2 * r + 1, args, True, times, cpu))
    print(
        f"processor, {args.events:,} events over {args.profiles:,} profiles (SQLite), then "
        f"{args.events:,} more of the same profiles; median of {args.rounds} interleaved rounds"
    )
    for i, phase in enumerate(("new customers", "returning customers")):
        o = statistics.median(x[i] for x in ours)
        b = statistics.median(x[i] for x in base)
        target = "   (target >= 0.5x)" if i == 1 else ""
        print(f"  {phase}:")
        print(f"    with 50 audiences       : {o:8.0f} events/s")
        print(f"    no audiences (baseline) : {b:8.0f} events/s")
        print(f"    ratio                   : {o / b:8.2f}x{target}")
    ms = [t * 1000 for t in times]
    cpu_ms = [t * 1000 for t in cpu]
    print(
        f"  membership work per event, wall: p50 {pct(ms, 50):.2f} ms, p95 {pct(ms, 95):.2f} ms, "
        f"p99 {pct(ms, 99):.2f} ms over {len(ms):,} calls"
    )
    print(
        f"  membership work per event, CPU:  p50 {pct(cpu_ms, 50):.2f} ms, "
        f"p95 {pct(cpu_ms, 95):.2f} ms, p99 {pct(cpu_ms, 99):.2f} ms   (target p95 <= 5 ms)"
    )
    o = statistics.median(x[1] for x in ours)
    b = statistics.median(x[1] for x in base)
    emit(
        "bench.audience_processor",
        "processor, returning customers, 50 audiences (events/s)",
        o,
        "events/s",
        baseline=b,
        baseline_name="same processor, no audiences",
        target=">= 0.5x",
        met=o / b >= 0.5,
    )
    emit(
        "bench.audience_processor",
        "membership work per event, CPU p95",
        pct(cpu_ms, 95),
        "ms",
        baseline=None,
        baseline_name="",
        target="<= 5 ms",
        met=pct(cpu_ms, 95) <= 5,
    )


if __name__ == "__main__":
    main()
