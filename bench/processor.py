"""Event processor throughput without journeys (no subscribers, no dispatchers), SQLite file.

Our figure: events/s through the whole processor (claim, identity resolution with new and known
profiles, traits/counters, event + outbox bookkeeping). Baseline, same run, same database
shape: a bare drain loop that only reads outbox rows joined to their events, stamps the events
processed and deletes the outbox rows (the unavoidable I/O, no profile logic). Ratio = ours /
baseline.

    python -m bench.processor [--events 20000] [--profiles 2000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.results import emit
from rejse.db import make_engine, utcnow
from rejse.events.ingest import accept
from rejse.events.processor import EventProcessor
from rejse.events.service import event_row
from rejse.events.store import EVENT, OUTBOX, bucket_for
from rejse.migrate import upgrade
from rejse.runtime import Runtime
from rejse.settings import Settings


def load(engine, events: int, profiles: int) -> None:
    now = utcnow()
    rows, buckets = [], []
    for i in range(events):
        p = i % profiles
        kind = i // profiles % 3
        if kind == 1:  # identify: traits + email
            row = event_row(
                type="identify",
                message_id=f"m-{i}",
                timestamp=now,
                received_at=now,
                user_id=f"user-{p}",
                anonymous_id=f"anon-{p}",
                traits={"email": f"person{p}@example.dk", "plan": "pro", "n": i},
            )
        else:
            row = event_row(
                type="track",
                message_id=f"m-{i}",
                timestamp=now,
                received_at=now,
                event="Product Viewed",
                anonymous_id=f"anon-{p}",
                properties={"sku": f"SKU-{i % 50}", "price": 99.0},
            )
        rows.append(row)
        buckets.append(bucket_for(f"anon-{p}"))
    for i in range(0, events, 1000):
        accept(engine, rows[i : i + 1000], buckets[i : i + 1000])


def fresh_db(tmp: Path, name: str, events: int, profiles: int):
    engine = make_engine(f"sqlite:///{tmp / name}")
    upgrade(engine)
    load(engine, events, profiles)
    return engine


def baseline(engine, batch: int) -> int:
    done = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(OUTBOX.c.id, *EVENT.c)
                .join(EVENT, EVENT.c.id == OUTBOX.c.event_id)
                .order_by(OUTBOX.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return done
            now = utcnow()
            conn.execute(
                EVENT.update()
                .where(EVENT.c.id == sa.bindparam("_id"))
                .values(processed_at=sa.bindparam("at")),
                [{"_id": r.id_1 if hasattr(r, "id_1") else r[1], "at": now} for r in rows],
            )
            conn.execute(OUTBOX.delete().where(OUTBOX.c.id.in_([r[0] for r in rows])))
            done += len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--profiles", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--quick", action="store_true", help="a short pass (python -m bench --quick)"
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.profiles = 4_000, 400
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base_engine = fresh_db(tmp, "baseline.db", args.events, args.profiles)
        t0 = time.perf_counter()
        n = baseline(base_engine, args.batch)
        base_rate = n / (time.perf_counter() - t0)

        engine = fresh_db(tmp, "ours.db", args.events, args.profiles)
        runtime = Runtime.create(
            Settings(environment="test", database_url=str(engine.url)), engine=engine
        )
        proc = EventProcessor(runtime, subscribers=[], dispatchers=[], batch_size=args.batch)
        t0 = time.perf_counter()
        n = asyncio.run(proc.drain())
        ours = n / (time.perf_counter() - t0)
        with engine.connect() as conn:
            profiles = conn.scalar(sa.text("SELECT count(*) FROM profile"))
    print(f"processor, {args.events} events over {profiles} profiles (SQLite, no journeys)")
    print(f"  rejse processor : {ours:10.0f} events/s   (target >= 5000)")
    print(f"  bare drain loop : {base_rate:10.0f} events/s   (baseline)")
    print(f"  ratio           : {ours / base_rate:10.2f}x")
    emit(
        "bench.processor",
        f"processor, {args.events:,} events (SQLite, no journeys)",
        ours,
        "events/s",
        baseline=base_rate,
        baseline_name="bare drain loop",
        target=">= 5000 events/s",
        met=ours >= 5000,
    )


if __name__ == "__main__":
    main()
