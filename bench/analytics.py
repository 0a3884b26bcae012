"""Campaign analytics on PostgreSQL: every analytics endpoint's query read from the counters,
beside the same figures computed from the raw rows by plain SQL aggregates in the same run;
and the event processor's throughput with the attribution subscriber on and off.

Data, generated inside PostgreSQL with generate_series (deterministic, hash-derived choices):
one journey (`bench-cart`, two versions, three sends) with `--runs` runs (default 1,000,000)
spread over 90 days and their step log, their messages (delivered, opened, clicked, skipped by
consent or the frequency cap, failed) topped up with messages outside journeys to
`--messages` (3,000,000), unsubscribes through 1 % of the messages, the conversions the runs
reached (goals and window conversions, with revenue), and `--events` events (10,000,000:
the checkouts that started the runs, the orders, browsing). The counters are then built from
the raw rows by `rejse.analytics.rollups.rebuild` (what an upgrade of existing data does).

1. Per endpoint (summary, steps, versions, days, templates, the comparison): the median time of
   its query (`rejse.analytics.kpis`) against the median of `rollups.recount`, the same
   counters from the raw rows; rounds interleave the two; the ratio is the speed-up. Each round
   also checks that both give the same figures.
2. Processor: `--processor-events` tracked events of known customers (a fifth of them
   `Order Completed`, all of customers with journey messages) through the event processor
   with the production subscribers, with and without the attribution subscriber, interleaved
   rounds on fresh outbox rows; events/s.

    python -m bench.analytics [--runs 1000000] [--messages 3000000] [--events 10000000]
        [--rounds 5] [--processor-events 20000] [--database-url ...rejse_bench_analytics]

The database named by --database-url is dropped and created (never point it at real data).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from rejse import wiring
from rejse.analytics import kpis, rollups
from rejse.analytics.attribution import AttributionSubscriber, settle
from rejse.db import make_engine, utcnow
from rejse.events.processor import EventProcessor
from rejse.events.service import event_row
from rejse.events.store import bucket_for, store_events
from rejse.journeys import service as journeys
from rejse.migrate import upgrade
from rejse.runtime import Runtime
from rejse.settings import Settings

NOW = "2026-12-01 12:00:00+00"
KEY = "bench-cart"
STEPS = ["wait_1d", "reminder_1", "wait_2d", "reminder_2", "wait_3d", "reminder_3"]
JOURNEY = {
    "key": KEY,
    "name": "Bench cart: three reminders",
    "trigger": {"type": "event", "event": "Checkout Started"},
    "entry_key": "properties.checkout_id",
    "exit_when": [
        {
            "event": "Order Completed",
            "match": {"properties.checkout_id": "{{ trigger.properties.checkout_id }}"},
        }
    ],
    "start": "wait_1d",
    "steps": {
        "wait_1d": {"type": "wait", "for": "P1D", "next": "reminder_1"},
        "reminder_1": {
            "type": "send",
            "channel": "email",
            "template": "abandoned_cart/reminder",
            "next": "wait_2d",
        },
        "wait_2d": {"type": "wait", "for": "P2D", "next": "reminder_2"},
        "reminder_2": {
            "type": "send",
            "channel": "email",
            "template": "abandoned_cart/free_shipping",
            "next": "wait_3d",
        },
        "wait_3d": {"type": "wait", "for": "P3D", "next": "reminder_3"},
        "reminder_3": {"type": "send", "channel": "email", "template": "abandoned_cart/reminder"},
    },
}

_PROFILES = """
INSERT INTO profile (id, traits, groups, lead_score, event_count, order_count, revenue,
                     created_at, updated_at)
SELECT 'prf_' || lpad(i::text, 8, '0'), json_build_object('email', 'p' || i || '@example.dk'),
       '{}'::json, 0, 0, 0, 0, CAST(:now AS timestamptz) - interval '400 days',
       CAST(:now AS timestamptz)
FROM generate_series(1, CAST(:profiles AS integer)) AS i
"""

# stage (h % 100): 0-4 waiting at wait_1d, 5-7 waiting at wait_2d, 8-19 converted at
# wait_2d, 20-24 converted at wait_3d, 25-99 completed at reminder_3
_RUNS = """
INSERT INTO journey_run (id, workflow_id, journey_key, version, profile_id, trigger_event_id,
                         entry_no, status, current_step, step_since, entered_at, ended_at,
                         converted)
SELECT 'run' || lpad(i::text, 12, '0'),
       'journey:bench-cart:prf_' || lpad(p::text, 8, '0') || ':' || i, 'bench-cart',
       CASE WHEN i % 10 = 0 THEN 2 ELSE 1 END, 'prf_' || lpad(p::text, 8, '0'), 'evt_c' || i, 1,
       CASE WHEN st < 8 THEN 'running' WHEN st < 25 THEN 'converted' ELSE 'completed' END,
       CASE WHEN st < 5 THEN 'wait_1d' WHEN st < 20 THEN 'wait_2d' WHEN st < 25 THEN 'wait_3d'
            ELSE 'reminder_3' END,
       entered, entered,
       CASE WHEN st >= 8 THEN entered + interval '4 days' END, st BETWEEN 8 AND 24
FROM (
  SELECT i, 1 + (i - 1) % CAST(:profiles AS integer) AS p,
         (hashint4(i) & 2147483647) % 100 AS st,
         CAST(:now AS timestamptz)
           - make_interval(secs => (hashint4(i * 3 + 1) & 2147483647) % (90 * 86400)) AS entered
  FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i
) AS g
"""

_STEPS = """
INSERT INTO journey_step (run_id, journey_key, version, step_id, at, outcome)
SELECT r.id, r.journey_key, r.version, (CAST(:steps AS text[]))[s],
       r.entered_at + make_interval(days => CAST((ARRAY[0, 1, 1, 3, 3, 6])[s] AS integer)),
       CASE WHEN s IN (2, 4, 6) THEN 'sent' END
FROM journey_run r,
     generate_series(1, array_position(CAST(:steps AS text[]), r.current_step)) AS s
WHERE r.id BETWEEN :lo AND :hi
"""

# message status (h % 100): 0-44 sent, 45-69 opened, 70-79 clicked, 80-86 skipped no consent,
# 87-91 skipped frequency cap, 92-94 failed invalid address, 95-99 bounced
_MESSAGES = """
INSERT INTO message (id, idempotency_key, profile_id, channel, template, transactional,
                     journey_key, journey_version, step_id, status, reason, links, attempts,
                     created_at, sent_at, opened_at, clicked_at, open_count, click_count)
SELECT 'msg_' || md5(r.id || ':' || s), r.workflow_id || ':' || (CAST(:steps AS text[]))[s],
       r.profile_id, 'email',
       CASE WHEN s = 4 THEN 'abandoned_cart/free_shipping' ELSE 'abandoned_cart/reminder' END,
       false, r.journey_key, r.version, (CAST(:steps AS text[]))[s],
       CASE WHEN h < 45 THEN 'sent' WHEN h < 70 THEN 'opened' WHEN h < 80 THEN 'clicked'
            WHEN h < 92 THEN 'skipped' WHEN h < 95 THEN 'failed' ELSE 'bounced' END,
       CASE WHEN h < 80 THEN NULL WHEN h < 87 THEN 'no_consent (email revoked)'
            WHEN h < 92 THEN 'frequency_cap (3 per P7D)'
            WHEN h < 95 THEN 'invalid_address (email)' ELSE 'smtp 550 mailbox unavailable' END,
       '[]'::json, 1, at,
       CASE WHEN h < 80 THEN at END,
       CASE WHEN h BETWEEN 45 AND 79 THEN at + interval '2 hours' END,
       CASE WHEN h BETWEEN 70 AND 79 THEN at + interval '3 hours' END,
       CASE WHEN h BETWEEN 45 AND 79 THEN 1 ELSE 0 END,
       CASE WHEN h BETWEEN 70 AND 79 THEN 1 ELSE 0 END
FROM (
  SELECT r.*, s,
         r.entered_at + make_interval(days => CAST((ARRAY[0, 1, 1, 3, 3, 6])[s] AS integer)) AS at,
         (hashint4(hashtext(r.id) + s) & 2147483647) % 100 AS h
  FROM journey_run r,
       generate_series(1, array_position(CAST(:steps AS text[]), r.current_step)) AS s
  WHERE r.id BETWEEN :lo AND :hi AND s IN (2, 4, 6)
) AS r
"""

_OTHER_MESSAGES = """
INSERT INTO message (id, idempotency_key, profile_id, channel, template, transactional,
                     status, links, attempts, created_at, sent_at, open_count, click_count)
SELECT 'msg_n' || i, 'newsletter:' || i,
       'prf_' || lpad((1 + i % CAST(:profiles AS integer))::text, 8, '0'),
       'email', 'newsletter/weekly', false, 'sent', '[]'::json, 1,
       CAST(:now AS timestamptz) - make_interval(secs => (hashint4(i) & 2147483647) % 7776000),
       CAST(:now AS timestamptz) - make_interval(secs => (hashint4(i) & 2147483647) % 7776000),
       0, 0
FROM generate_series(1, CAST(:n AS integer)) AS i
"""

# goals: the run's last message before its conversion; window conversions: a tenth of the
# completed runs, credited to reminder 3
_CONVERSIONS = """
INSERT INTO analytics_conversion (id, event_id, kind, journey_key, version, step_id, channel,
                                  template, day, run_id, message_id, touch, touch_at,
                                  revenue_units, currency, at, created_at)
SELECT 'evt_o' || substr(r.id, 4) || ':' || CASE WHEN k = 'goal' THEN r.id ELSE m.id END,
       'evt_o' || substr(r.id, 4), k, r.journey_key, r.version, m.step_id, m.channel,
       m.template, CAST(timezone('UTC', m.created_at) AS date), CASE WHEN k = 'goal' THEN r.id END,
       m.id, 'send', m.created_at, (100 + (hashint4(hashtext(r.id) + 7) & 1023)) * 10000, 'DKK',
       m.created_at + interval '1 day', m.created_at
FROM (
  SELECT r.*, CASE WHEN r.status = 'converted' THEN 'goal' ELSE 'window' END AS k,
         CASE WHEN r.current_step = 'wait_2d' THEN 'reminder_1'
              WHEN r.current_step = 'wait_3d' THEN 'reminder_2' ELSE 'reminder_3' END AS last
  FROM journey_run r
  WHERE r.id BETWEEN :lo AND :hi
    AND (r.status = 'converted' OR (r.status = 'completed' AND hashint4(hashtext(r.id)) % 10 = 0))
) AS r
JOIN message m ON m.idempotency_key = r.workflow_id || ':' || r.last AND m.sent_at IS NOT NULL
"""

_UNSUBSCRIBES = """
INSERT INTO consent_change (profile_id, channel, status, source, at)
SELECT profile_id, 'email', 'revoked', 'unsubscribe:' || id, created_at + interval '5 hours'
FROM message
WHERE journey_key IS NOT NULL AND status IN ('sent', 'opened', 'clicked')
  AND (hashint4(hashtext(id)) & 2147483647) % 100 = 0
"""

_EVENTS = """
INSERT INTO event (id, message_id, type, event, user_id, profile_id, properties, traits,
                   context, timestamp, received_at, processed_at, source)
SELECT CASE WHEN i <= CAST(:runs AS integer) THEN 'evt_c' || i ELSE 'evt_b' || i END,
       'bench-' || i, 'track',
       CASE WHEN i <= CAST(:runs AS integer) THEN 'Checkout Started'
            WHEN h % 10 = 0 THEN 'Order Completed' ELSE 'Product Viewed' END,
       'u' || p, 'prf_' || lpad(p::text, 8, '0'),
       json_build_object('checkout_id', 'chk-' || i, 'revenue', (h % 900) + 100),
       '{}'::json, '{}'::json,
       CAST(:now AS timestamptz) - make_interval(secs => h % 7776000),
       CAST(:now AS timestamptz), CAST(:now AS timestamptz), 'bench'
FROM (
  SELECT i, 1 + (i - 1) % CAST(:profiles AS integer) AS p,
         (hashint4(i * 7 + 3) & 2147483647) AS h
  FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i
) AS g
"""


def run_id(i: int) -> str:
    return "run" + str(i).rjust(12, "0")


def prepare(url: str, *, runs: int, messages: int, events: int, keep: bool = False) -> Engine:
    """The bench database with its data; `keep`: reuse the data a previous run generated there
    (the schema is upgraded, the counters rebuilt)."""
    target = make_url(url)
    admin = make_engine(target.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        ).first()
        if not (keep and exists):
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = make_engine(url)
    upgrade(engine)
    if keep and exists and counts(engine, "journey_run") >= runs:
        print("  reusing the generated data (--keep)")
        return _rebuilt(engine)
    generate(engine, runs=runs, messages=messages, events=events)
    return _rebuilt(engine)


def generate(engine: Engine, *, runs: int, messages: int, events: int) -> None:
    with Session(engine) as s:
        journeys.create_journey(s, definition=JOURNEY)
        journeys.publish(s, key=KEY, activity_names=wiring.activity_names())
        journeys.add_version(s, key=KEY, definition={**JOURNEY, "name": "Bench cart v2"})
        journeys.publish(s, key=KEY, activity_names=wiring.activity_names())
        s.commit()
    profiles = max(1, runs)
    t0 = time.perf_counter()
    chunk = 200_000
    with engine.begin() as conn:
        conn.execute(sa.text(_PROFILES), {"now": NOW, "profiles": profiles})
    for first in range(1, runs + 1, chunk):
        last = min(runs, first + chunk - 1)
        bounds = {"lo": run_id(first), "hi": run_id(last), "steps": STEPS}
        with engine.begin() as conn:
            conn.execute(
                sa.text(_RUNS),
                {"now": NOW, "profiles": profiles, "first": first, "last": last},
            )
            conn.execute(sa.text(_STEPS), bounds)
            conn.execute(sa.text(_MESSAGES), bounds)
            conn.execute(sa.text(_CONVERSIONS), bounds)
    with engine.begin() as conn:
        have = int(conn.execute(sa.text("SELECT count(*) FROM message")).scalar_one())
        if messages > have:
            conn.execute(
                sa.text(_OTHER_MESSAGES),
                {"now": NOW, "profiles": profiles, "n": messages - have},
            )
        conn.execute(sa.text(_UNSUBSCRIBES))
    for first in range(1, events + 1, 1_000_000):
        last = min(events, first + 999_999)
        with engine.begin() as conn:
            conn.execute(
                sa.text(_EVENTS),
                {"now": NOW, "profiles": profiles, "runs": runs, "first": first, "last": last},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("profile", "journey_run", "journey_step", "message", "event"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
        conn.execute(sa.text("VACUUM ANALYZE consent_change"))
        conn.execute(sa.text("VACUUM ANALYZE analytics_conversion"))
    print(f"  generated in {time.perf_counter() - t0:.0f} s")


def _rebuilt(engine: Engine) -> Engine:
    t0 = time.perf_counter()
    n = rollups.rebuild(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE analytics_rollup"))
    print(f"  counters rebuilt from the raw rows: {n:,} rows in {time.perf_counter() - t0:.1f} s")
    return engine


def counts(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def endpoints(engine: Engine, rounds: int) -> None:
    everything = kpis.period(None, None)
    reads: dict[str, Callable[[Session], Any]] = {
        "summary /journeys/{key}": lambda s: kpis.journey_summary(s, KEY, everything),
        "steps /journeys/{key}/steps": lambda s: kpis.journey_steps(s, KEY, everything),
        "versions /journeys/{key}/versions": lambda s: kpis.journey_versions(s, KEY, everything),
        "days /journeys/{key}/days": lambda s: kpis.journey_days(s, KEY, everything),
        "templates /templates": lambda s: kpis.templates(s, everything),
        "comparison /journeys": lambda s: kpis.comparison(s, everything),
    }
    ours: dict[str, list[float]] = {name: [] for name in reads}
    raw: list[float] = []
    raw_all: list[float] = []
    for _ in range(rounds):
        with Session(engine) as s:
            t0 = time.perf_counter()
            recount = rollups.recount(s, journey_key=KEY)
            raw.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            rollups.recount(s)
            raw_all.append(time.perf_counter() - t0)
            assert rollups.current(s, journey_key=KEY) == recount  # the same figures
        for name, read in reads.items():
            with Session(engine) as s:
                t0 = time.perf_counter()
                read(s)
                ours[name].append(time.perf_counter() - t0)
    base, base_all = median_ms(raw), median_ms(raw_all)
    print(f"  {'endpoint query (counters)':<36} {'ms':>8} {'raw ms':>9} {'speed-up':>9}")
    for name, samples in ours.items():
        mine = median_ms(samples)
        against = base_all if name.startswith(("templates", "comparison")) else base
        verdict = "ok" if mine <= 300 else "OVER 300 ms"
        print(f"  {name:<36} {mine:8.1f} {against:9.1f} {against / mine:8.0f}x  {verdict}")
    print(
        f"  (raw: rejse.analytics.rollups.recount, every counter by plain SQL aggregates over "
        f"runs, steps, messages, consent changes and conversions; journey {base:.0f} ms, "
        f"all {base_all:.0f} ms)"
    )


def processor(engine: Engine, url: str, *, n: int, rounds: int) -> None:
    settings = Settings(environment="test", database_url=url)
    runtime = Runtime.create(settings, engine=engine)
    production = wiring.in_transaction_subscribers(runtime)
    without = [s for s in production if not isinstance(s, AttributionSubscriber)]
    with engine.connect() as conn:
        profiles = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "SELECT DISTINCT profile_id FROM message WHERE journey_key IS NOT NULL "
                    "AND sent_at IS NOT NULL ORDER BY profile_id LIMIT 5000"
                )
            )
        ]
        latest = conn.execute(sa.text("SELECT max(sent_at) FROM message")).scalar_one()
    with engine.begin() as conn:  # orders arrive as tracked events of known customers
        conn.execute(
            sa.text(
                "INSERT INTO profile_identifier (profile_id, type, value, created_at) "
                "SELECT id, 'user_id', 'u' || ltrim(substr(id, 5), '0'), now() FROM profile "
                "WHERE id = ANY(:ids) ON CONFLICT DO NOTHING"
            ),
            {"ids": profiles},
        )

    def fill() -> None:
        rows = []
        for i in range(n):
            pid = profiles[i % len(profiles)]
            order = i % 5 == 0
            rows.append(
                event_row(
                    type="track",
                    message_id=f"proc-{uuid.uuid4().hex}",
                    timestamp=latest,
                    received_at=utcnow(),
                    event="Order Completed" if order else "Product Viewed",
                    user_id="u" + pid.removeprefix("prf_").lstrip("0"),
                    properties={"revenue": 100 + i % 400} if order else {"sku": f"s{i % 50}"},
                )
            )
        with engine.begin() as conn:
            for start in range(0, len(rows), 2000):
                part = rows[start : start + 2000]
                store_events(conn, part, [bucket_for(r["user_id"]) for r in part])

    samples: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(rounds):
        for name, subscribers in (("off", without), ("on", production)):
            fill()
            proc = EventProcessor(runtime, subscribers=subscribers, dispatchers=[])
            t0 = time.perf_counter()
            done = asyncio.run(proc.drain())
            samples[name].append(done / (time.perf_counter() - t0))
    on, off = statistics.median(samples["on"]), statistics.median(samples["off"])
    t0 = time.perf_counter()
    noted = settle(engine)
    settle_s = time.perf_counter() - t0
    credited = counts(engine, "analytics_conversion")
    print(
        f"  processor, {n:,} events per round (a fifth orders), production subscribers: "
        f"{off:,.0f} events/s without attribution, {on:,.0f} with: {on / off:.2f}x "
        f"({'ok' if on / off >= 0.8 else 'BELOW 0.8x'})"
    )
    print(
        f"  settling the {noted:,} noted orders (the scheduler's pass): {settle_s:.1f} s, "
        f"{noted / settle_s:,.0f} orders/s; conversions now {credited:,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=3_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processor-events", type=int, default=20_000)
    parser.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/rejse_bench_analytics",
    )
    parser.add_argument(
        "--keep", action="store_true", help="reuse the data a previous run generated"
    )
    args = parser.parse_args()
    engine = prepare(
        args.database_url,
        runs=args.runs,
        messages=args.messages,
        events=args.events,
        keep=args.keep,
    )
    sizes = {t: counts(engine, t) for t in ("journey_run", "journey_step", "message", "event")}
    sizes["conversions"] = counts(engine, "analytics_conversion")
    sizes["counter rows"] = counts(engine, "analytics_rollup")
    print("analytics on PostgreSQL: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    print(f"  median of {args.rounds} interleaved rounds")
    endpoints(engine, args.rounds)
    processor(engine, args.database_url, n=args.processor_events, rounds=args.rounds)


if __name__ == "__main__":
    main()
