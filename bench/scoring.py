"""Score updates per second in the event processor: the same events through the processor with
the scoring subscriber, beside the baseline of the processor without it, measured in one run on
fresh databases (SQLite by default; `--database-url` for PostgreSQL).

    python -m bench.scoring [--profiles 1000] [--events-per-profile 6] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session

import rejse.models  # noqa: F401
from bench.results import emit
from rejse.db import make_engine, normalise_url
from rejse.events.ingest import accept
from rejse.events.processor import EventProcessor
from rejse.events.service import event_row
from rejse.events.store import bucket_for
from rejse.migrate import upgrade
from rejse.models.leads import ProfileScore
from rejse.runtime import Runtime
from rejse.scoring import service as scoring
from rejse.scoring.definition import ScoringDefinition
from rejse.scoring.subscriber import ScoringSubscriber
from rejse.settings import Settings

MODEL = {
    "event_rules": [
        {
            "id": "pricing",
            "event": "Page Viewed",
            "points": 5,
            "condition": {"property": "path", "op": "eq", "value": "/pricing"},
            "cap": {"points": 15, "per": "P1D"},
        },
        {"id": "checkout", "event": "Checkout Started", "points": 20, "high_intent": True},
        {"id": "demo", "event": "Demo Requested", "points": 30, "high_intent": True},
    ],
    "fit_rules": [
        {"id": "dk", "condition": {"trait": "country", "op": "eq", "value": "DK"}, "points": 10}
    ],
    "half_life": "P14D",
    "thresholds": {"lead": 20, "aql": 60},
}
TRACKS = [
    ("Page Viewed", {"path": "/pricing"}),
    ("Product Viewed", {"sku": "A1"}),
    ("Checkout Started", {"value": 499}),
    ("Page Viewed", {"path": "/pricing"}),
    ("Demo Requested", {}),
    ("Page Viewed", {"path": "/blog"}),
]


def events(profiles: int, per_profile: int) -> tuple[list[dict], list[int]]:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    rows, buckets = [], []
    for p in range(profiles):
        user = f"bench-{p}"
        at = start + dt.timedelta(milliseconds=p)
        rows.append(
            event_row(
                type="identify",
                message_id=f"{user}-id",
                timestamp=at,
                received_at=at,
                user_id=user,
                traits={"country": "DK" if p % 2 else "SE"},
            )
        )
        buckets.append(bucket_for(user))
        for i in range(per_profile):
            name, props = TRACKS[i % len(TRACKS)]
            t = at + dt.timedelta(seconds=i + 1)
            rows.append(
                event_row(
                    type="track",
                    message_id=f"{user}-{i}",
                    timestamp=t,
                    received_at=t,
                    user_id=user,
                    event=name,
                    properties=props,
                )
            )
            buckets.append(bucket_for(user))
    return rows, buckets


class Database:
    """A fresh, migrated database per measurement."""

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url
        self.tmp = Path(tempfile.mkdtemp(prefix="rejse-bench-scoring-"))
        self.created: list[str] = []

    def fresh(self, name: str) -> str:
        if not self.base_url:
            return f"sqlite:///{self.tmp / (name + '.db')}"
        base = make_url(normalise_url(self.base_url))
        db = f"rejse_bench_{name}_{uuid.uuid4().hex[:6]}"
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
        admin.dispose()
        self.created.append(db)
        return base.set(database=db).render_as_string(hide_password=False)

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.base_url and self.created:
            admin = sa.create_engine(
                make_url(normalise_url(self.base_url)), isolation_level="AUTOCOMMIT"
            )
            with admin.connect() as conn:
                for db in self.created:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            admin.dispose()


class NoopSubscriber:
    """Shows the processor's own cost of having any in-transaction subscriber."""

    name = "noop"

    def apply(self, session, event):
        return []


async def measure(url: str, rows, buckets, *, with_scoring: bool | None) -> tuple[float, int, int]:
    """(seconds, events processed, profiles with a score) for one drain of the outbox."""
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as s:
        scoring.create_model(s, definition=ScoringDefinition.model_validate(MODEL), activate=True)
        s.commit()
    accept(engine, rows, buckets, source="bench")
    runtime = Runtime.create(
        Settings(environment="test", database_url=url, secret_key="bench-" + "x" * 32),
        engine=engine,
    )
    subscribers = (
        [ScoringSubscriber()]
        if with_scoring
        else [NoopSubscriber()]
        if with_scoring is None
        else []
    )
    processor = EventProcessor(runtime, subscribers=subscribers, dispatchers=[])
    started = time.perf_counter()
    processed = await processor.drain()
    seconds = time.perf_counter() - started
    with Session(engine) as s:
        scored = s.exec(sa.select(sa.func.count()).select_from(ProfileScore)).one()[0]
    engine.dispose()
    return seconds, processed, scored


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=1000)
    parser.add_argument("--events-per-profile", type=int, default=6)
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL server URL (default: SQLite)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short pass (python -m bench --quick)"
    )
    args = parser.parse_args()
    if args.quick:
        args.profiles = 200
    rows, buckets = events(args.profiles, args.events_per_profile)
    db = Database(args.database_url)
    try:
        base_s, base_n, _ = await measure(db.fresh("baseline"), rows, buckets, with_scoring=False)
        noop_s, _, _ = await measure(db.fresh("noop"), rows, buckets, with_scoring=None)
        ours_s, ours_n, scored = await measure(
            db.fresh("scoring"), rows, buckets, with_scoring=True
        )
    finally:
        db.cleanup()
    backend = "postgresql" if args.database_url else "sqlite"
    base_rate, ours_rate = len(rows) / base_s, len(rows) / ours_s
    print(
        f"backend: {backend}; {len(rows)} events of {args.profiles} profiles "
        f"({ours_n - base_n} derived stage events processed in the scoring run)"
    )
    print(f"baseline  processor without scoring : {base_rate:10.0f} events/s  ({base_s:.2f} s)")
    print(
        f"(context) with a no-op subscriber   : {len(rows) / noop_s:10.0f} events/s"
        f"  ({noop_s:.2f} s)"
    )
    print(
        f"ours      processor with scoring    : {ours_rate:10.0f} events/s  ({ours_s:.2f} s), "
        f"{scored} profiles scored"
    )
    print(f"ratio     ours / baseline           : {ours_rate / base_rate:10.2f}")
    emit(
        "bench.scoring",
        f"processor with scoring ({backend})",
        ours_rate,
        "events/s",
        baseline=base_rate,
        baseline_name="processor without scoring",
        target="none (context)",
        met=True,
    )


if __name__ == "__main__":
    asyncio.run(main())
