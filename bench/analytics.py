"""Campaign analytics on PostgreSQL: every analytics endpoint's read (campaign KPIs, the lead
funnel, the sales figures, the maturity prefill), beside the same figures computed from the raw
rows by plain SQL aggregates in the same run; and the event processor's throughput with the
subscribers that keep counters (attribution, maturity flags) on and off.

Data, generated inside PostgreSQL with generate_series (deterministic, hash-derived choices):
one journey (`bench-cart`, two versions, three sends) with `--runs` runs (default 1,000,000)
spread over 90 days and their step log, their messages (delivered, opened, clicked, skipped by
consent or the frequency cap, failed) topped up with messages outside journeys to
`--messages` (3,000,000), unsubscribes through 1 % of the messages, the conversions the runs
reached (goals and window conversions, with revenue), and `--events` events (10,000,000:
the checkouts that started the runs, the orders, browsing); a tenth as many leads as runs
handed to 20 reps in every phase, every profile's climb through the lifecycle stages, and
structural traits on 30 % of the profiles. The counters, the stage rollup and the maturity
flags are then built from the raw rows (`rollups.rebuild`, `funnel.fold_all`,
`flags.rebuild`: what an upgrade of existing data does).

1. Per endpoint (the journey KPIs per journey, step, version and day, templates, the
   comparison; the funnel and its daily series; the sales figures per rep, for one rep, the
   pipeline, lost and uncalled leads; the maturity prefill): the median time of its read
   against the median of a plain SQL aggregate of the raw rows for the same figures
   (`rollups.recount`, the stages by each profile's last change, the leads grouped by rep and
   status, `prefill.recount`); rounds interleave the two; the ratio is the speed-up. Each
   round also checks that the counters and the flags give the recount's figures.
2. Processor: `--processor-events` tracked events of known customers (a fifth of them
   `Order Completed`, all of customers with journey messages) through the event processor
   with the production subscribers, with and without attribution and the maturity flags,
   interleaved rounds on fresh outbox rows; events/s.

    python -m bench.analytics [--runs 1000000] [--messages 3000000] [--events 10000000]
        [--rounds 5] [--processor-events 20000] [--database-url ...rejse_bench_analytics]
        [--keep] [--quick]

The database named by --database-url is dropped and created (never point it at real data);
`--keep` reuses the data a previous run left there (generating it takes a while at full size).
`--quick`: 20,000 runs in `..._quick`, two rounds. Each figure is also printed as a
BENCH-RESULT line (bench.results).
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

from bench.results import emit
from rejse import wiring
from rejse.analytics import funnel, kpis, rollups
from rejse.analytics import sales_figures as sales
from rejse.analytics.attribution import AttributionSubscriber, settle
from rejse.db import make_engine, utcnow
from rejse.events.processor import EventProcessor
from rejse.events.service import event_row
from rejse.events.store import bucket_for, store_events
from rejse.journeys import service as journeys
from rejse.maturity import flags
from rejse.maturity import prefill as maturity
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


_REPS = """
INSERT INTO sales_rep (id, name, email, territories, active, locale, created_at)
SELECT 'rep_' || i, 'Rep ' || i, 'rep' || i || '@example.dk', '[]'::json, true, 'da',
       CAST(:now AS timestamptz) - interval '400 days'
FROM generate_series(1, CAST(:reps AS integer)) AS i
"""

# status (h % 100): 0-4 open, 5-14 assigned, 15-29 contacted, 30-39 meeting, 40-54 won,
# 55-74 lost, 75-84 not_relevant, 85-99 expired
_LEADS = """
INSERT INTO lead (id, profile_id, trigger_key, workflow_id, source, reason, score, status, rep_id,
                  assigned_at, due_at, reassignments, history, notifications, crm_enabled,
                  crm_status, outcome, outcome_at, first_contact_at, created_at)
SELECT 'lead_' || i, 'prf_' || lpad((1 + i * 7 % CAST(:profiles AS integer))::text, 8, '0'),
       'bench:' || i, 'handoff:' || i, 'score', 'aql', 60, st,
       CASE WHEN st = 'open' THEN NULL ELSE 'rep_' || (1 + i % CAST(:reps AS integer)) END,
       CASE WHEN st = 'open' THEN NULL ELSE created + interval '1 hour' END,
       created + interval '2 days', 0, '[]'::json, '[]'::json, false, 'skipped',
       CASE WHEN st IN ('won', 'lost', 'not_relevant') THEN st END,
       CASE WHEN st IN ('won', 'lost', 'not_relevant', 'expired')
            THEN created + interval '10 days' END,
       CASE WHEN st IN ('contacted', 'meeting', 'won', 'lost', 'not_relevant')
            THEN created + interval '1 day' END,
       created
FROM (
  SELECT i, (hashint4(i * 5 + 1) & 2147483647) % 100 AS h,
         CAST(:now AS timestamptz) - make_interval(secs => (hashint4(i) & 2147483647) % 31536000)
           AS created
  FROM generate_series(1, CAST(:leads AS integer)) AS i
) AS g, LATERAL (SELECT CASE WHEN h < 5 THEN 'open' WHEN h < 15 THEN 'assigned'
                             WHEN h < 30 THEN 'contacted' WHEN h < 40 THEN 'meeting'
                             WHEN h < 55 THEN 'won' WHEN h < 75 THEN 'lost'
                             WHEN h < 85 THEN 'not_relevant' ELSE 'expired' END AS st) AS s
"""

# every profile enters the funnel as a subscriber; climbs (h % 100): 0-49 stay, 50-79 lead,
# 80-91 aql, 92-96 sql, 97-98 opportunity, 99 customer; one change per stage, a day apart
_STAGE_CHANGES = """
INSERT INTO stage_change (profile_id, from_stage, to_stage, at, reason, seconds_in_from, folded)
SELECT 'prf_' || lpad(i::text, 8, '0'),
       CASE WHEN k = 1 THEN NULL ELSE (CAST(:stages AS text[]))[k - 1] END,
       (CAST(:stages AS text[]))[k],
       start + make_interval(days => k - 1), 'score',
       CASE WHEN k = 1 THEN NULL ELSE 86400.0 END, false
FROM (
  SELECT i, CAST(:now AS timestamptz)
              - make_interval(secs => (hashint4(i * 11) & 2147483647) % (360 * 86400)) AS start,
         CASE WHEN h < 50 THEN 1 WHEN h < 80 THEN 2 WHEN h < 92 THEN 3 WHEN h < 97 THEN 4
              WHEN h < 99 THEN 5 ELSE 6 END AS top
  FROM (SELECT i, (hashint4(i * 13 + 5) & 2147483647) % 100 AS h
        FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i) AS x
) AS g, generate_series(1, top) AS k
"""

_PROFILE_STAGE = """
UPDATE profile p SET traits = json_build_object('email', 'p' || substr(p.id, 5) || '@example.dk',
                                               'country', 'DK')
WHERE (hashint4(hashtext(p.id)) & 2147483647) % 100 < 30
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
        return _rebuilt(engine, again=False)
    generate(engine, runs=runs, messages=messages, events=events)
    return _rebuilt(engine, again=True)


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
    generate_sales(engine, profiles=profiles, leads=max(1, runs // 10))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("profile", "journey_run", "journey_step", "message", "event"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
        conn.execute(sa.text("VACUUM ANALYZE consent_change"))
        conn.execute(sa.text("VACUUM ANALYZE analytics_conversion"))
    print(f"  generated in {time.perf_counter() - t0:.0f} s")


def generate_sales(engine: Engine, *, profiles: int, leads: int) -> None:
    """Leads handed to 20 reps (a tenth as many as runs), every profile's climb through the
    lifecycle stages, structural traits on 30 % of the profiles."""
    from rejse.models.profiles import STAGES as stages

    with engine.begin() as conn:
        conn.execute(sa.text(_REPS), {"now": NOW, "reps": 20})
        conn.execute(
            sa.text(_LEADS), {"now": NOW, "reps": 20, "leads": leads, "profiles": profiles}
        )
        conn.execute(sa.text(_PROFILE_STAGE))
    for first in range(1, profiles + 1, 200_000):
        last = min(profiles, first + 199_999)
        with engine.begin() as conn:
            conn.execute(
                sa.text(_STAGE_CHANGES),
                {"now": NOW, "stages": list(stages), "first": first, "last": last},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("lead", "stage_change", "profile"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))


def _rebuilt(engine: Engine, *, again: bool) -> Engine:
    """The stage rollup, the maturity flags and the counters from the raw rows (`again`:
    even when a previous run built them; since then the processor has kept them)."""
    if counts(engine, "lead") == 0:  # data generated before the sales figures were benched
        profiles = counts(engine, "profile")
        generate_sales(engine, profiles=profiles, leads=max(1, counts(engine, "journey_run") // 10))
    t0 = time.perf_counter()
    with Session(engine) as s:
        folded = funnel.fold_all(s)
        s.commit()
    print(f"  funnel: {folded:,} stage changes folded in {time.perf_counter() - t0:.1f} s")
    if not again and counts(engine, "maturity_profile_data") and counts(engine, "analytics_rollup"):
        print("  flags and counters kept from the previous run")
        return engine
    t0 = time.perf_counter()
    n = flags.rebuild(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE maturity_profile_data"))
        conn.execute(sa.text("VACUUM ANALYZE stage_change"))
        conn.execute(sa.text("VACUUM ANALYZE stage_daily"))
    print(f"  maturity flags set from the raw rows: {n:,} in {time.perf_counter() - t0:.1f} s")
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


_RAW_STAGES = """
SELECT to_stage, count(*) FROM (
  SELECT DISTINCT ON (profile_id) to_stage FROM stage_change ORDER BY profile_id, id DESC
) AS last GROUP BY to_stage
"""
_RAW_LEADS = """
SELECT rep_id, status, count(*), avg(extract(epoch FROM CAST(:now AS timestamptz) - created_at)),
       sum(CASE WHEN first_contact_at IS NULL THEN 1 ELSE 0 END)
FROM lead GROUP BY rep_id, status
"""
_RAW_LEADS_REP = """
SELECT status, count(*), avg(extract(epoch FROM CAST(:now AS timestamptz) - created_at))
FROM lead WHERE rep_id = :rep GROUP BY status
"""
_RAW_LOST = """
SELECT status, coalesce(outcome, 'unspecified'), count(*) FROM lead
WHERE status IN ('lost', 'not_relevant', 'expired') GROUP BY 1, 2
"""
_RAW_UNCALLED = """
SELECT count(*), min(created_at) FROM lead
WHERE first_contact_at IS NULL AND status IN ('open', 'assigned', 'expired')
"""


def endpoints(engine: Engine, rounds: int) -> list[tuple[str, float, float, str]]:
    """Every analytics endpoint's read beside its raw-row baseline; (name, ms, raw ms, raw)."""
    everything = kpis.period(None, None)
    now = utcnow()

    def sql(text: str, **params: Any) -> Callable[[Session], Any]:
        return lambda s: s.execute(sa.text(text), {"now": NOW, **params}).all()

    raw_journey = "rollups.recount (journey)"
    raw_all = "rollups.recount (all)"
    cases: dict[str, tuple[Callable[[Session], Any], str]] = {
        "summary /journeys/{key}": (
            lambda s: kpis.journey_summary(s, KEY, everything),
            raw_journey,
        ),
        "steps /journeys/{key}/steps": (
            lambda s: kpis.journey_steps(s, KEY, everything),
            raw_journey,
        ),
        "versions /journeys/{key}/versions": (
            lambda s: kpis.journey_versions(s, KEY, everything),
            raw_journey,
        ),
        "days /journeys/{key}/days": (lambda s: kpis.journey_days(s, KEY, everything), raw_journey),
        "templates /templates": (lambda s: kpis.templates(s, everything), raw_all),
        "comparison /journeys": (lambda s: kpis.comparison(s, everything), raw_all),
        "funnel /funnel": (lambda s: funnel.funnel(s), "stages by DISTINCT ON"),
        "funnel daily /funnel/daily": (lambda s: funnel.daily(s), "stages by DISTINCT ON"),
        "sales per rep /sales/reps": (lambda s: sales.per_rep(s, now=now), "leads by rep, status"),
        "sales one rep /sales/reps?rep=": (
            lambda s: sales.per_rep(s, rep_id="rep_7", now=now),
            "one rep's leads",
        ),
        "pipeline /sales/pipeline": (lambda s: sales.pipeline(s, now=now), "leads by rep, status"),
        "lost /sales/lost": (lambda s: sales.lost(s), "lost leads by reason"),
        "uncalled /sales/uncalled": (lambda s: sales.uncalled(s, now=now), "uncalled leads"),
        "maturity /maturity/prefill": (
            lambda s: maturity.prefill(s, now=now),
            "prefill.recount",
        ),
    }
    baselines: dict[str, Callable[[Session], Any]] = {
        raw_journey: lambda s: rollups.recount(s, journey_key=KEY),
        raw_all: lambda s: rollups.recount(s),
        "stages by DISTINCT ON": sql(_RAW_STAGES),
        "leads by rep, status": sql(_RAW_LEADS),
        "one rep's leads": sql(_RAW_LEADS_REP, rep="rep_7"),
        "lost leads by reason": sql(_RAW_LOST),
        "uncalled leads": sql(_RAW_UNCALLED),
        "prefill.recount": lambda s: maturity.recount(s, now=now),
    }
    ours: dict[str, list[float]] = {name: [] for name in cases}
    raw: dict[str, list[float]] = {name: [] for name in baselines}
    for _ in range(rounds):  # interleaved: each round times every baseline and every read
        for name, read in baselines.items():
            with Session(engine) as s:
                t0 = time.perf_counter()
                read(s)
                raw[name].append(time.perf_counter() - t0)
        with Session(engine) as s:  # the same figures
            assert rollups.current(s, journey_key=KEY) == rollups.recount(s, journey_key=KEY)
            assert maturity.prefill(s, now=now) == maturity.recount(s, now=now)
        for name, (read, _) in cases.items():
            with Session(engine) as s:
                t0 = time.perf_counter()
                read(s)
                ours[name].append(time.perf_counter() - t0)
    print(f"  {'endpoint query':<36} {'ms':>8} {'raw ms':>9} {'speed-up':>9}  raw: plain SQL")
    out = []
    for name, (_, against) in cases.items():
        mine, base = median_ms(ours[name]), median_ms(raw[against])
        verdict = "ok" if mine <= 300 else "OVER 300 ms"
        print(f"  {name:<36} {mine:8.1f} {base:9.1f} {base / mine:8.1f}x  {verdict}  ({against})")
        emit(
            "bench.analytics",
            f"{name} (ms)",
            round(mine, 1),
            "ms",
            baseline=round(base, 1),
            baseline_name=f"raw rows: {against}",
            target="<= 300 ms",
            met=mine <= 300,
        )
        out.append((name, mine, base, against))
    return out


def processor(engine: Engine, url: str, *, n: int, rounds: int) -> None:
    settings = Settings(environment="test", database_url=url)
    runtime = Runtime.create(settings, engine=engine)
    production = wiring.in_transaction_subscribers(runtime)
    without = [
        s for s in production if not isinstance(s, AttributionSubscriber | flags.FlagsSubscriber)
    ]
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
    emit(
        "bench.analytics",
        "processor throughput, rollups on vs off (events/s)",
        round(on),
        "events/s",
        baseline=round(off),
        baseline_name="the same subscribers without attribution and the maturity flags",
        target=">= 0.8x",
        met=on / off >= 0.8,
    )
    t0 = time.perf_counter()
    noted = settle(engine)
    settle_s = time.perf_counter() - t0
    credited = counts(engine, "analytics_conversion")
    print(
        f"  processor, {n:,} events per round (a fifth orders), production subscribers: "
        f"{off:,.0f} events/s without attribution and flags, {on:,.0f} with: {on / off:.2f}x "
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
    parser.add_argument(
        "--quick", action="store_true", help="a small database (20,000 runs), two rounds"
    )
    parser.add_argument(
        "--processor-only", action="store_true", help="time the processor, not the endpoints"
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.messages, args.events = 20_000, 60_000, 200_000
        args.rounds, args.processor_events = 2, 2000
        args.database_url = args.database_url.replace("bench_analytics", "bench_analytics_quick")
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
    if not args.processor_only:
        endpoints(engine, args.rounds)
    processor(engine, args.database_url, n=args.processor_events, rounds=args.rounds)


if __name__ == "__main__":
    main()
