"""Generated data for the audience benchmarks: profiles and events made inside PostgreSQL.

`generate(engine, profiles=1_000_000, events=5_000_000)` fills a migrated, empty database with
live profiles (some erased) and a year of events: about one event in five an `Order Completed`,
one in fifty an `Order Refunded`, the rest browsing. `generate_series` builds them in the
database, so 5,000,000 events take about a minute instead of an hour of client round trips.
Deterministic (hash-derived choices), so every run measures the same data."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

NOW = "2026-12-01 12:00:00+00"

_PROFILES = """
INSERT INTO profile (id, traits, groups, lead_score, event_count, order_count, revenue,
                     created_at, updated_at, erased_at)
SELECT 'prf_' || lpad(i::text, 8, '0'),
       json_build_object('country', (ARRAY['DK','SE','NO','DE'])[1 + i % 4],
                         'email', 'p' || i || '@example.dk'),
       '{}'::json, 0, 0, 0, 0,
       CAST(:now AS timestamptz) - interval '400 days', CAST(:now AS timestamptz),
       CASE WHEN i % 1000 = 0 THEN CAST(:now AS timestamptz) END
FROM generate_series(1, CAST(:profiles AS integer)) AS i
"""

_EVENTS = """
INSERT INTO event (id, message_id, type, event, anonymous_id, profile_id, properties, traits,
                   context, timestamp, received_at, processed_at, source)
SELECT 'evt_' || i, 'bench-' || i, 'track',
       CASE WHEN h % 50 = 0 THEN 'Order Refunded'
            WHEN h % 5 = 0 THEN 'Order Completed'
            WHEN h % 5 = 1 THEN 'Checkout Started'
            ELSE 'Product Viewed' END,
       'anon-' || p, 'prf_' || lpad(p::text, 8, '0'),
       json_build_object('revenue', (h % 900) + 100, 'currency', 'DKK'),
       '{}'::json, '{}'::json,
       CAST(:now AS timestamptz) - make_interval(secs => (h % 31536000)),
       CAST(:now AS timestamptz), CAST(:now AS timestamptz), 'bench'
FROM (
  SELECT i, 1 + (hashint4(i) & 2147483647) % CAST(:profiles AS integer) AS p,
         (hashint4(i * 7 + 3) & 2147483647) AS h
  FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i
) AS g
"""


def generate(engine: Engine, *, profiles: int, events: int, chunk: int = 1_000_000) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(_PROFILES), {"now": NOW, "profiles": profiles})
    for start in range(0, events, chunk):
        n = min(chunk, events - start)
        with engine.begin() as conn:
            conn.execute(
                sa.text(_EVENTS),
                {"now": NOW, "profiles": profiles, "first": start + 1, "last": start + n},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE profile"))
        conn.execute(sa.text("VACUUM ANALYZE event"))
