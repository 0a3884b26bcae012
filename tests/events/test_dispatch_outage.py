"""A dispatcher whose downstream is away (Temporal down) is an outage, not the events' fault:
the processor keeps the batch for later without spending the events' attempts, tries no event
of it on its own (each call would wait for the client's own retries), and goes on once the
dispatcher answers again; nothing goes to the dead letters, each event is dispatched once. On
SQLite and PostgreSQL."""

import sqlalchemy as sa
from sqlmodel import select

from rejse.contracts import DispatchUnavailable
from rejse.events.ingest import accept
from rejse.events.processor import EventProcessor
from rejse.models.events import DeadLetter, OutboxEntry
from tests.events.test_dead_letters import Recorder, track


class Away(Recorder):
    """Raises DispatchUnavailable while `away`, counting its calls."""

    def __init__(self):
        super().__init__()
        self.away = True
        self.calls = 0

    async def dispatch(self, events):
        self.calls += 1
        if self.away:
            raise DispatchUnavailable("temporal")
        await super().dispatch(events)


async def test_an_outage_keeps_the_batch_without_spending_attempts(runtime, engine, session):
    for name in ("A", "B", "C"):
        row, bucket = track(name, user=f"u-{name}")
        accept(engine, [row], [bucket])
    rec = Away()
    proc = EventProcessor(runtime, subscribers=[rec], dispatchers=[rec], max_attempts=2)
    for _ in range(5):  # more outage rounds than max_attempts: still nothing dead-lettered
        await proc.run_once()
        with engine.begin() as conn:  # due again at once, as the pause would make them
            conn.execute(OUTBOX.update().values(available_at=sa.func.now()))
    assert rec.calls == 5  # one call per round: no event was tried on its own
    session.expire_all()
    left = session.exec(select(OutboxEntry)).all()
    assert len(left) == 3
    assert {e.attempts for e in left} == {0}
    assert session.exec(select(DeadLetter)).all() == []
    assert proc.outage_delay > 0  # the processor pauses dispatching meanwhile

    rec.away = False
    await proc.drain()
    assert sorted(e.event for e in rec.dispatched) == ["A", "B", "C"]
    session.expire_all()
    assert session.exec(select(OutboxEntry)).all() == []
    assert session.exec(select(DeadLetter)).all() == []
    assert proc.outage_delay == 0


OUTBOX = OutboxEntry.__table__  # type: ignore[attr-defined]
