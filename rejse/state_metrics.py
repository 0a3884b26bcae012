"""Metrics read from the database when `/metrics` is scraped, so they are the same whichever
API process answers and however many processors and workers run: the processor's lag (the
age of the oldest event still in the outbox), the outbox's length, and journey runs by state.
Each is one indexed query (the outbox's primary key; the run table's status index)."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy.engine import Engine

from rejse.db import utcnow
from rejse.logging import get_logger
from rejse.models.events import Event, OutboxEntry

log = get_logger("rejse.state_metrics")

_EVENT, _OUTBOX_TABLE = Event.__table__, OutboxEntry.__table__  # type: ignore[attr-defined]  # SQLModel tables
_OLDEST = (
    sa.select(_EVENT.c.received_at)
    .join(_OUTBOX_TABLE, _OUTBOX_TABLE.c.event_id == _EVENT.c.id)
    .order_by(_OUTBOX_TABLE.c.id)
    .limit(1)
)
RUN_STATES = ("running", "completed", "converted", "exited", "failed", "cancelled")
_OUTBOX = sa.text("SELECT count(*) FROM event_outbox")
_RUNS = sa.text("SELECT status, count(*) FROM journey_run GROUP BY status")


class StateCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "rejse_processor_lag_seconds",
            "Age of the oldest event not yet processed (0 when the outbox is empty)",
        )
        backlog = GaugeMetricFamily("rejse_outbox_events", "Events waiting for the processor")
        runs = GaugeMetricFamily("rejse_journey_runs", "Journey runs by state", labels=["state"])
        try:
            with self.engine.connect() as conn:
                oldest = conn.execute(_OLDEST).scalar()
                waiting = int(conn.execute(_OUTBOX).scalar_one())
                by_state = conn.execute(_RUNS).all()
        except sa.exc.SQLAlchemyError as exc:  # scraping must not fail with the database
            log.warning("state_metrics_unavailable", error=type(exc).__name__)
            return
        lag.add_metric([], max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0)
        backlog.add_metric([], waiting)
        counted = {str(state): int(n) for state, n in by_state}
        for state in sorted({*RUN_STATES, *counted}):  # every state a series, also at zero
            runs.add_metric([state], counted.get(state, 0))
        yield lag
        yield backlog
        yield runs


def state_registry(engine: Engine) -> CollectorRegistry:
    """A registry of its own (the global one is per process, this is per app)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(engine))
    return registry
