"""The event processor: drains the outbox in batches, per identity key in order.

Stages per batch (see docs/events.md):
1. claim: on PostgreSQL lock whole buckets (`FOR UPDATE SKIP LOCKED` on `event_outbox_bucket`)
   on a separate connection held until the batch is finished, so several processors share the
   outbox and events of one bucket are handled by one processor at a time, in id order.
   SQLite runs one processor and takes every bucket.
2. apply (one transaction): mark the outbox rows `applied` (guarded: only `pending` rows), resolve
   identities / merge, fold traits, counters and consent into the profile, run every
   in-transaction subscriber (their derived events are stored as new events; when one runs,
   the batch's events up to its own already carry their profile id), store the
   `ProcessedEvent` on the outbox row. Commit. A crash before this commit leaves the rows
   pending; after it, they are applied and never applied again.
3. dispatch: every `EventDispatcher` gets the batch's `ProcessedEvent`s (at-least-once),
   except historic ones (`is_historic`: imported history and what derives from it).
4. finish: delete the outbox rows.
A failing event is retried alone with exponential backoff; after `max_attempts` it goes to
`event_dead_letter` and the others carry on. A failure no retry can fix (`failures.is_permanent`:
the event's data is the problem) and a stored row that cannot be decoded go there at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from rejse.contracts import (
    HISTORIC,
    IMPORT_CONTEXT,
    IMPORT_SOURCE,
    ConsentChange,
    DispatchUnavailable,
    EventDispatcher,
    InTransactionSubscriber,
    ProcessedEvent,
)
from rejse.db import utcnow
from rejse.events.failures import failure_reason, is_permanent
from rejse.events.service import event_row
from rejse.events.store import (
    EVENT,
    OUTBOX,
    Unloadable,
    bucket_for,
    load_outbox,
    mark_processed,
    store_events,
)
from rejse.logging import get_logger
from rejse.metrics import (
    EVENTS_BY_OUTCOME,
    EVENTS_DEAD_LETTERED,
    EVENTS_PROCESSED,
    EVENTS_RETRIED,
)
from rejse.models.events import OUTBOX_BUCKETS, DeadLetter, OutboxBucket
from rejse.models.profiles import Profile
from rejse.profiles.consent import STATUSES, set_consent
from rejse.profiles.identity import IdentityIndex, changes_profile_data, event_identifiers
from rejse.profiles.service import resolve_profile_id
from rejse.runtime import Runtime

log = get_logger("rejse.events.processor")
BUCKET = OutboxBucket.__table__  # type: ignore[attr-defined]
DEAD = DeadLetter.__table__  # type: ignore[attr-defined]


class OutboxConflict(Exception):
    """Another processor changed these outbox rows; reload."""


@dataclass
class Entry:
    outbox_id: int
    state: str
    attempts: int
    processed: dict[str, Any] | None
    row: dict[str, Any]  # the event row


@dataclass
class Claim:
    conn: Connection | None = None
    buckets: list[int] | None = None  # None: every bucket

    def release(self) -> None:
        if self.conn is not None:
            try:
                self.conn.commit()
            finally:
                self.conn.close()
            self.conn = None


@dataclass
class EventProcessor:
    """`subscribers` run in the batch's transaction, `dispatchers` after its commit; the
    composition root (`rejse.wiring.event_processor`) or a test chooses them."""

    runtime: Runtime
    _: KW_ONLY
    subscribers: Sequence[InTransactionSubscriber]
    dispatchers: Sequence[EventDispatcher]
    batch_size: int = 500
    buckets_per_claim: int = OUTBOX_BUCKETS // 2
    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    poll_interval: float = 0.25
    outage_delay_max: float = 30.0
    stats: dict[str, int] = field(default_factory=lambda: {"processed": 0, "failed": 0})

    def __post_init__(self) -> None:
        self.engine = self.runtime.engine
        self.secret = self.runtime.settings.secret_key
        self._buckets_ready = False
        self.outage_delay = 0.0  # seconds dispatching waits while a dispatcher is unavailable

    # ------------------------------------------------------------------ loop
    async def run(self, stop: asyncio.Event) -> None:
        """Background service: process until `stop` is set."""
        log.info("event_processor_started")
        while not stop.is_set():
            try:
                n = await self.run_once()
            except Exception as exc:  # noqa: BLE001 - keep the service alive, say why
                log.error("event_processor_error", error=type(exc).__name__)
                n = 0
            if n == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.poll_interval)
        log.info("event_processor_stopped")

    async def drain(self, *, max_batches: int = 100_000) -> int:
        """Process until the outbox has nothing available (tests, benchmarks, CLI)."""
        total = 0
        for _ in range(max_batches):
            n = await self.run_once()
            if n == 0:
                break
            total += n
        return total

    async def run_once(self) -> int:
        claim = await asyncio.to_thread(self._claim)
        try:
            if claim.buckets == []:
                return 0
            entries, unloadable = await asyncio.to_thread(self._load, claim.buckets)
            if unloadable:
                await asyncio.to_thread(self._dead_letter_unloadable, unloadable)
            if not entries:
                return len(unloadable)
            results = await asyncio.to_thread(self._apply_batch, entries)
            done = await self._dispatch(results)
            await asyncio.to_thread(self._finish, done)
            return len(entries) + len(unloadable)
        finally:
            await asyncio.to_thread(claim.release)

    # ------------------------------------------------------------------ claim + load
    def _claim(self) -> Claim:
        if self.engine.dialect.name != "postgresql":
            return Claim()
        if not self._buckets_ready:
            self._ensure_buckets()
        conn = self.engine.connect()
        try:
            has_work = sa.exists().where(
                OUTBOX.c.bucket == BUCKET.c.bucket, OUTBOX.c.available_at <= utcnow()
            )
            rows = conn.execute(
                sa.select(BUCKET.c.bucket)
                .where(has_work)
                .order_by(sa.func.random())
                .limit(self.buckets_per_claim)
                .with_for_update(skip_locked=True, of=BUCKET)
            )
            return Claim(conn, [r[0] for r in rows])
        except BaseException:
            conn.close()
            raise

    def _ensure_buckets(self) -> None:
        from rejse.db import insert_ignore

        with self.engine.begin() as conn:
            conn.execute(
                insert_ignore(conn, BUCKET), [{"bucket": b} for b in range(OUTBOX_BUCKETS)]
            )
        self._buckets_ready = True

    def _load(self, buckets: list[int] | None) -> tuple[list[Entry], list[Unloadable]]:
        with self.engine.connect() as conn:
            loaded, unloadable = load_outbox(
                conn, now=utcnow(), buckets=buckets, limit=self.batch_size
            )
        entries = [
            Entry(
                outbox_id=e.outbox_id,
                state=e.state,
                attempts=e.attempts,
                processed=e.processed,
                row=e.row,
            )
            for e in loaded
        ]
        return entries, unloadable

    def _dead_letter_unloadable(self, rows: list[Unloadable]) -> None:
        """Stored text does not change on a retry: to the dead letters at once."""
        for row in rows:
            log.warning(
                "event_failed",
                event_id=row.event_id,
                stage="load",
                attempts=row.attempts + 1,
                error="Undecodable",
                permanent=True,
            )
        with self.engine.begin() as conn:
            conn.execute(
                DEAD.insert(),
                [
                    {
                        "event_id": row.event_id,
                        "stage": "load",
                        "error": row.reason[:1000],
                        "attempts": row.attempts + 1,
                        "at": utcnow(),
                        "processed": None,
                    }
                    for row in rows
                ],
            )
            conn.execute(OUTBOX.delete().where(OUTBOX.c.id.in_([r.outbox_id for r in rows])))
        EVENTS_DEAD_LETTERED.inc(len(rows))
        EVENTS_BY_OUTCOME.labels("dead_lettered").inc(len(rows))
        self.stats["failed"] += len(rows)

    # ------------------------------------------------------------------ apply
    def _apply_batch(self, entries: list[Entry]) -> list[tuple[Entry, ProcessedEvent]]:
        pending = [e for e in entries if e.state == "pending"]
        applied: dict[int, ProcessedEvent] = {}
        for e in entries:
            if e.state == "applied" and e.row["profile_id"]:
                try:
                    applied[e.outbox_id] = processed_event(e.row, e.processed)
                except Exception as exc:  # noqa: BLE001 - a saved state that no longer fits
                    self._fail(e, "dispatch", exc)
        if pending:
            try:
                applied.update(self._apply_in_transaction(pending))
            except OutboxConflict:
                return []
            except Exception:  # noqa: BLE001 - isolate the failing event(s) one by one
                for entry in pending:
                    try:
                        applied.update(self._apply_in_transaction([entry]))
                    except OutboxConflict:
                        continue
                    except Exception as exc:  # noqa: BLE001
                        self._fail(entry, "apply", exc)
        return [(e, applied[e.outbox_id]) for e in entries if e.outbox_id in applied]

    def _apply_in_transaction(self, entries: list[Entry]) -> dict[int, ProcessedEvent]:
        with Session(self.engine, expire_on_commit=False) as session:
            conn = session.connection()
            ids = [e.outbox_id for e in entries]
            guard = conn.execute(
                OUTBOX.update()
                .where(OUTBOX.c.id.in_(ids), OUTBOX.c.state == "pending")
                .values(state="applied")
            )
            if guard.rowcount != len(ids):
                session.rollback()
                raise OutboxConflict()
            out = self._apply(session, entries)
            session.commit()
            return out

    def _apply(self, session: Session, entries: list[Entry]) -> dict[int, ProcessedEvent]:
        conn = session.connection()
        now = utcnow()
        index = IdentityIndex(session, secret=self.secret)
        entries_by_id = {e.outbox_id: e for e in entries}
        idents = {
            e.outbox_id: event_identifiers(e.row) for e in entries if e.row["type"] != "internal"
        }
        index.preload(idents.values())
        index.prefetch_traits(
            ids for oid, ids in idents.items() if changes_profile_data(entries_by_id[oid].row)
        )
        out: dict[int, ProcessedEvent] = {}
        event_updates: list[tuple[str, str, dt.datetime]] = []
        stamped = 0  # event_updates[:stamped] are written already
        survivor: dict[str, str] = {}  # merged away in this batch -> the profile it went into
        dropped: list[str] = []
        for entry in entries:
            row = entry.row
            merged: list[str] = []
            if row["type"] == "internal":
                index.flush()
                pid = resolve_profile_id(session, row["profile_id"]) if row["profile_id"] else None
                profile = session.get(Profile, pid) if pid else None
                if profile is None or profile.erased_at is not None:
                    pid = None
            elif index.erased_before(idents[entry.outbox_id], row["timestamp"]):
                pid = None  # an old event of an erased person: never brings data back
            else:
                pid, merged = index.resolve(row, event_id=row["id"], ids=idents[entry.outbox_id])
            if pid is None:
                dropped.append(row["id"])
                continue
            if merged:
                for old, into in list(survivor.items()):
                    if into in merged:
                        survivor[old] = pid
                survivor.update(dict.fromkeys(merged, pid))
            changed_traits = index.fold(pid, row)
            changes = self._consent(session, pid, row)
            event = processed_event(
                {**row, "profile_id": pid},
                {
                    "merged_from": merged,
                    "consent_changes": changes,
                    "changed_traits": changed_traits,
                },
            )
            event_updates.append((row["id"], pid, now))
            subscribers = self._wanting(session, event)
            if subscribers:
                # The subscriber reads the profile as of this event, and the event attributed
                # to it (its own count, its `within` window): stamp the events so far now.
                index.flush()
                session.flush()
                mark_processed(conn, _survivors(event_updates[stamped:], survivor))
                stamped = len(event_updates)
                self._run_subscribers(session, conn, event, subscribers, is_historic(row))
            out[entry.outbox_id] = event
        index.flush()
        session.flush()
        # A merge re-points the stored events of the merged-away profile; the stamps still to
        # write name the profile each event was applied to, so they follow the merge too.
        mark_processed(conn, _survivors(event_updates[stamped:], survivor))
        extras = [
            {"_id": oid, "processed": _extras(ev)}
            for oid, ev in out.items()
            if ev.merged_from or ev.consent_changes
        ]
        if extras:  # the rest of a ProcessedEvent is rebuilt from the event row if needed
            conn.execute(
                OUTBOX.update()
                .where(OUTBOX.c.id == sa.bindparam("_id"))
                .values(processed=sa.bindparam("processed")),
                extras,
            )
        if dropped:
            conn.execute(OUTBOX.delete().where(OUTBOX.c.event_id.in_(dropped)))
            conn.execute(EVENT.delete().where(EVENT.c.id.in_(dropped)))
        return out

    def _consent(self, session: Session, pid: str, row: dict[str, Any]) -> list[ConsentChange]:
        consent = (row["context"] or {}).get("consent")
        if not isinstance(consent, dict):
            return []
        changes = []
        source = str(consent.get("source") or f"event:{row['source']}")[:100]
        for channel, value in consent.items():
            if channel == "source":
                continue
            status = (
                {True: "granted", False: "denied"}.get(value) if isinstance(value, bool) else value
            )
            if status not in STATUSES or not isinstance(channel, str):
                continue
            try:
                change = set_consent(
                    session,
                    profile_id=pid,
                    channel=channel,
                    status=status,
                    source=source,
                    at=row["timestamp"],
                )
            except Exception:  # noqa: BLE001, S112 - a malformed channel name is ignored
                continue
            if change is not None:
                changes.append(change)
        return changes

    def _wanting(self, session: Session, event: ProcessedEvent) -> list[InTransactionSubscriber]:
        """The subscribers that act on this event (see `InTransactionSubscriber.wants`)."""
        return [
            s
            for s in self.subscribers or ()
            if (wants := getattr(s, "wants", None)) is None or wants(session, event)
        ]

    def _run_subscribers(
        self,
        session: Session,
        conn: Connection,
        event: ProcessedEvent,
        subscribers: Sequence[InTransactionSubscriber],
        historic: bool = False,
    ) -> None:
        for subscriber in subscribers:
            derived = subscriber.apply(session, event) or ()
            session.flush()
            rows, buckets = [], []
            for i, (name, properties) in enumerate(derived):
                rows.append(
                    event_row(
                        type="internal",
                        message_id=f"{event.event_id}:{subscriber.name}:{i}",
                        timestamp=utcnow(),
                        received_at=utcnow(),
                        event=name,
                        profile_id=event.profile_id,
                        properties=dict(properties or {}),
                        source=f"derived:{subscriber.name}"[:60],
                        context={HISTORIC: True} if historic else None,
                    )
                )
                buckets.append(bucket_for(event.profile_id))
            if rows:
                store_events(conn, rows, buckets)

    # ------------------------------------------------------------------ dispatch + finish
    async def _dispatch(self, results: list[tuple[Entry, ProcessedEvent]]) -> list[Entry]:
        historic = [e for e, _ in results if is_historic(e.row)]
        if historic:  # applied, and done: nothing to dispatch
            results = [(e, ev) for e, ev in results if not is_historic(e.row)]
            return historic + await self._dispatch(results)
        if not results:
            return []
        try:
            for dispatcher in self.dispatchers or ():
                await dispatcher.dispatch([ev for _, ev in results])
        except DispatchUnavailable as exc:  # an outage: not the events' fault
            await asyncio.to_thread(self._defer, [e for e, _ in results], exc)
            return []
        except Exception:  # noqa: BLE001 - retry each event on its own
            return await self._dispatch_one_by_one(results)
        self._recovered()
        return [e for e, _ in results]

    async def _dispatch_one_by_one(
        self, results: list[tuple[Entry, ProcessedEvent]]
    ) -> list[Entry]:
        done = []
        for i, (entry, event) in enumerate(results):
            try:
                for dispatcher in self.dispatchers or ():
                    await dispatcher.dispatch([event])
                done.append(entry)
            except DispatchUnavailable as exc:  # the rest would wait for the outage too
                await asyncio.to_thread(self._defer, [e for e, _ in results[i:]], exc)
                return done
            except Exception as exc:  # noqa: BLE001
                await asyncio.to_thread(self._fail, entry, "dispatch", exc, event)
        self._recovered()
        return done

    def _defer(self, entries: list[Entry], exc: DispatchUnavailable) -> None:
        """Keep `entries` (applied, not dispatched) for after the outage: due again after the
        outage delay, which doubles while it lasts (1 s up to `outage_delay_max`); their
        attempts are not spent, so an outage of any length dead-letters nothing."""
        self.outage_delay = min(self.outage_delay_max, max(1.0, self.outage_delay * 2))
        log.warning(
            "dispatch_unavailable",
            events=len(entries),
            retry_in_s=self.outage_delay,
            dispatcher=str(exc)[:60],
        )
        with self.engine.begin() as conn:
            conn.execute(
                OUTBOX.update()
                .where(OUTBOX.c.id.in_([e.outbox_id for e in entries]))
                .values(
                    last_error=failure_reason(exc)[:480],
                    available_at=utcnow() + dt.timedelta(seconds=self.outage_delay),
                )
            )
        EVENTS_BY_OUTCOME.labels("deferred").inc(len(entries))

    def _recovered(self) -> None:
        if self.outage_delay:
            log.info("dispatch_available")
        self.outage_delay = 0.0

    def _finish(self, done: list[Entry]) -> None:
        if not done:
            return
        with self.engine.begin() as conn:
            conn.execute(OUTBOX.delete().where(OUTBOX.c.id.in_([e.outbox_id for e in done])))
        EVENTS_PROCESSED.inc(len(done))
        EVENTS_BY_OUTCOME.labels("processed").inc(len(done))
        self.stats["processed"] += len(done)

    def _fail(
        self, entry: Entry, stage: str, exc: BaseException, event: ProcessedEvent | None = None
    ) -> None:
        attempts = entry.attempts + 1
        permanent = is_permanent(exc)
        error = failure_reason(exc)
        self.stats["failed"] += 1
        log.warning(
            "event_failed",
            event_id=entry.row["id"],
            stage=stage,
            attempts=attempts,
            error=type(exc).__name__,
            permanent=permanent,
        )
        if permanent or attempts >= self.max_attempts:
            state = event.model_dump(mode="json") if event else None
            try:
                self._dead_letter(entry, stage, error, attempts, state)
            except Exception:  # noqa: BLE001 - the saved state itself may be what fails
                if state is None:
                    raise
                self._dead_letter(entry, stage, error, attempts, None)
            EVENTS_DEAD_LETTERED.inc()
            EVENTS_BY_OUTCOME.labels("dead_lettered").inc()
            return
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempts - 1))
        with self.engine.begin() as conn:
            conn.execute(
                OUTBOX.update()
                .where(OUTBOX.c.id == entry.outbox_id)
                .values(
                    attempts=attempts,
                    last_error=error[:480],
                    available_at=utcnow() + dt.timedelta(seconds=delay),
                )
            )
        EVENTS_RETRIED.inc()
        EVENTS_BY_OUTCOME.labels("retried").inc()

    def _dead_letter(
        self,
        entry: Entry,
        stage: str,
        error: str,
        attempts: int,
        state: dict[str, Any] | None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                DEAD.insert().values(
                    event_id=entry.row["id"],
                    stage=stage,
                    error=error[:1000],
                    attempts=attempts,
                    at=utcnow(),
                    processed=state,
                )
            )
            conn.execute(OUTBOX.delete().where(OUTBOX.c.id == entry.outbox_id))


def _survivors(
    updates: list[tuple[str, str, dt.datetime]], survivor: dict[str, str]
) -> list[tuple[str, str, dt.datetime]]:
    """Event stamps with each merged-away profile replaced by the one it was merged into."""
    if not survivor:
        return updates
    return [(eid, survivor.get(pid, pid), at) for eid, pid, at in updates]


def _extras(event: ProcessedEvent) -> dict[str, Any]:
    return {
        "merged_from": event.merged_from,
        "consent_changes": [c.model_dump() for c in event.consent_changes],
    }


def is_historic(row: dict[str, Any]) -> bool:
    """An imported event older than its import's start, or an event derived from such a one:
    its database effects apply, its dispatch is skipped (see `rejse.contracts.IMPORT_SOURCE`).
    Only rejse sets these sources, so a live event cannot mark itself historic."""
    context = row.get("context") or {}
    source = row.get("source") or ""
    if source == IMPORT_SOURCE:
        started = context.get(IMPORT_CONTEXT)
        started = started.get("started_at") if isinstance(started, dict) else None
        try:
            at = dt.datetime.fromisoformat(started) if isinstance(started, str) else None
        except ValueError:
            return False
        if at is None or at.tzinfo is None:
            return False
        return bool(row["timestamp"] < at)
    return source.startswith("derived:") and context.get(HISTORIC) is True


def processed_event(row: dict[str, Any], extras: dict[str, Any] | None) -> ProcessedEvent:
    """The published form of an applied event (its row + merge/consent facts)."""
    extras = extras or {}
    return ProcessedEvent(
        event_id=row["id"],
        profile_id=row["profile_id"],
        type=row["type"],
        event=row["event"],
        group_id=row.get("group_id"),
        properties=row["properties"] or {},
        traits=row["traits"] or {},
        timestamp=row["timestamp"],
        received_at=row["received_at"],
        merged_from=extras.get("merged_from") or [],
        consent_changes=extras.get("consent_changes") or [],
        changed_traits=extras.get("changed_traits"),
    )
