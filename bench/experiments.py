"""The A/B programme's read time on PostgreSQL with one journey of 1,000,000 runs.

The journey: a split `subject` (short 45 %, long 45 %, holdout 10 %) every run passes, a second
split `offer` (ten/free) that half the runs reach, and two more steps each, so the step log
holds 3,000,000 rows; 12 % of the runs converted, each with a goal conversion and its revenue.
The arms' counters are built from those rows by `rollups.rebuild` (what an upgrade does;
from then on the worker's activities keep them). Timed: `experiment()` of each split (what
`GET /api/experiments/{journey}/{step}` answers, read from the counters) and
`list_experiments()` (`GET /api/experiments`), beside the plain SQL aggregate of the same arms
(entered, converted, revenue) from the raw rows. Rounds interleave; each figure is the median,
also printed as a BENCH-RESULT line (bench.results). Each round checks that the counters give
the raw aggregate's arms.

    python -m bench.experiments [--runs 1000000] [--rounds 5] [--quick]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/rejse_bench_ab]

The database named by --database-url is dropped and created (never point it at real data).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session

from bench.results import emit
from rejse.analytics import rollups
from rejse.analytics.experiments import Params, experiment, list_experiments
from rejse.db import make_engine
from rejse.journeys import service
from rejse.migrate import upgrade
from rejse.wiring import activity_names

DEFINITION: dict[str, Any] = {
    "key": "bench-ab",
    "name": "bench",
    "trigger": {"type": "manual"},
    "exit_when": [{"event": "Order Completed"}],
    "start": "subject",
    "steps": {
        "subject": {
            "type": "split",
            "hypothesis": "a short subject line gets more orders",
            "variants": [
                {"key": "short", "weight": 45, "next": "wait"},
                {"key": "long", "weight": 45, "next": "wait"},
            ],
            "holdout": {"weight": 10},
        },
        "wait": {"type": "wait", "for": "P1D", "next": "offer"},
        "offer": {
            "type": "split",
            "hypothesis": "free shipping beats 10 % off",
            "variants": [
                {"key": "ten", "weight": 1, "next": "mark"},
                {"key": "free", "weight": 1, "next": "mark"},
            ],
        },
        "mark": {"type": "update_profile", "traits": {"done": True}},
    },
}

GENERATE = [
    """INSERT INTO journey_run (id, workflow_id, journey_key, version, profile_id,
         trigger_event_id, entry_no, status, current_step, step_since, entered_at, converted,
         variant)
       SELECT 'run_' || g, 'journey:bench-ab:' || g, 'bench-ab', 1, 'prf_' || g, 'manual:' || g,
         1, CASE WHEN g % 25 < 3 THEN 'converted' ELSE 'completed' END, 'mark', now(), now(),
         g % 25 < 3,
         CASE WHEN g % 10 = 0 THEN 'holdout' WHEN g % 2 = 0 THEN 'short' ELSE 'long' END
       FROM generate_series(1, :runs) g""",
    """INSERT INTO journey_step (run_id, journey_key, version, step_id, at, outcome)
       SELECT 'run_' || g, 'bench-ab', 1, 'subject', now(),
         CASE WHEN g % 10 = 0 THEN 'holdout' WHEN g % 2 = 0 THEN 'short' ELSE 'long' END
       FROM generate_series(1, :runs) g""",
    """INSERT INTO journey_step (run_id, journey_key, version, step_id, at, outcome)
       SELECT 'run_' || g, 'bench-ab', 1, 'wait', now(), NULL
       FROM generate_series(1, :runs) g""",
    """INSERT INTO journey_step (run_id, journey_key, version, step_id, at, outcome)
       SELECT 'run_' || g, 'bench-ab', 1, s.step, now(),
         CASE WHEN s.step = 'offer' THEN (CASE WHEN g % 4 < 2 THEN 'ten' ELSE 'free' END)
              ELSE 'sent' END
       FROM generate_series(1, :runs) g, (VALUES ('offer'), ('mark')) s(step)
       WHERE g % 2 = 1""",
    """INSERT INTO analytics_conversion (id, event_id, kind, journey_key, version, step_id,
         channel, template, day, run_id, revenue_units, currency, at, created_at)
       SELECT 'evt_' || g || chr(58) || 'run_' || g, 'evt_' || g, 'goal', 'bench-ab', 1,
         'mark', '', '', current_date, 'run_' || g, (100 + g % 900) * 10000, 'DKK', now(), now()
       FROM generate_series(1, :runs) g WHERE g % 25 < 3""",
    "ANALYZE",
]

BASELINE = """
SELECT s.outcome, count(*), sum(CASE WHEN r.converted THEN 1 ELSE 0 END),
       sum(coalesce(c.amount, 0)), sum(coalesce(c.amount, 0) ^ 2)
FROM (SELECT DISTINCT run_id, outcome FROM journey_step
      WHERE journey_key = 'bench-ab' AND step_id = :step AND outcome IS NOT NULL) s
JOIN journey_run r ON r.id = s.run_id
LEFT JOIN (SELECT run_id, sum(revenue_units) / 10000.0 AS amount FROM analytics_conversion
           WHERE journey_key = 'bench-ab' AND kind = 'goal' GROUP BY run_id) c
       ON c.run_id = s.run_id
GROUP BY s.outcome
"""


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/rejse_bench_ab"
    )
    parser.add_argument("--quick", action="store_true", help="20,000 runs, two rounds")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.rounds = 20_000, 2
    url = make_url(args.database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    engine = make_engine(url.render_as_string(hide_password=False))
    upgrade(engine)
    with Session(engine) as s:
        service.create_journey(s, definition=DEFINITION)
        service.publish(s, key="bench-ab", activity_names=set(activity_names()))
        s.commit()
    start = time.perf_counter()
    with engine.begin() as conn:
        for sql in GENERATE:
            conn.execute(sa.text(sql), {"runs": args.runs})
    print(f"generated {args.runs:,} runs in {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    rows = rollups.rebuild(engine)
    print(
        f"counters rebuilt from the raw rows: {rows:,} rows in {time.perf_counter() - start:.0f} s"
    )

    params = Params()
    cases: dict[str, Callable[[Session], Any]] = {
        "experiment subject": lambda s: experiment(
            s, journey="bench-ab", step="subject", params=params
        ),
        "experiment offer": lambda s: experiment(
            s, journey="bench-ab", step="offer", params=params
        ),
        "list_experiments": lambda s: list_experiments(s, params),
        "raw aggregate subject": lambda s: s.execute(sa.text(BASELINE), {"step": "subject"}).all(),
        "raw aggregate offer": lambda s: s.execute(sa.text(BASELINE), {"step": "offer"}).all(),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            with Session(engine) as s:
                times[name].append(timed(lambda fn=fn, s=s: fn(s)))
    with Session(engine) as s:
        for step in ("subject", "offer"):
            detail = experiment(s, journey="bench-ab", step=step, params=params)
            ours = {a["key"]: (a["entered"], a["converted"]) for a in detail["arms"]}
            raw = {r[0]: (int(r[1]), int(r[2])) for r in cases[f"raw aggregate {step}"](s)}
            assert ours == raw, (ours, raw)  # the counters give the raw rows' arms
            print(
                step,
                {a["key"]: (a["entered"], a["converted"], a["revenue"]) for a in detail["arms"]},
            )
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:24s} median {value:8.1f} ms  (rounds: {len(times[name])})")
    for name, against in (
        ("experiment subject", "raw aggregate subject"),
        ("experiment offer", "raw aggregate offer"),
        ("list_experiments", "raw aggregate subject"),
    ):
        emit(
            "bench.experiments",
            f"{name} at {args.runs:,} runs (ms)",
            round(medians[name], 1),
            "ms",
            baseline=round(medians[against], 1),
            baseline_name=f"{against}: plain SQL over the step log, runs and conversions",
            target="<= 300 ms",
            met=medians[name] <= 300,
        )
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}"'))


if __name__ == "__main__":
    main()
