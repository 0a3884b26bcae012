"""Entries of many profiles at once: a schedule fire, and a manual entry of an audience
(`POST /api/journeys/{key}/enter` with `{"audience": key}`).

Each is a `journey_entry` row. Its profiles (the audience's current members, or every live
profile for a schedule without an audience) are entered page by page in profile id order: a
page's runs are planned in one transaction (`plan_entry`: the `journey_run` rows, re-entry
rules), started at `REJSE_JOURNEY_ENTRY_RATE` runs per second, and only then does the row's
cursor move past the page, with the page's counts. Everything is idempotent per entry and
profile: the trigger event id (and for schedules the workflow id) is derived from the entry and
the profile, so a second scheduler, a double fire or a driver that restarts re-plans a page as
re-deliveries and starts nothing twice (a re-delivered run that is active is only re-sent to
Temporal, which refuses the duplicate; one that has ended is not started again).

One driver at a time: a driver leases the row (`lease_owner`, `lease_until`, renewed per page;
a page is at most ten seconds of starts) and a second one finds it taken. The scheduler job
drives every unfinished entry each minute, so an entry whose driver died (an API process that
stopped mid-way) carries on. A paused journey holds its entries until it is resumed; an
archived one cancels them.

Progress is the row: `entered` and `skipped` (in the journey already, or not allowed back in
yet) of `total`, the members counted when the entry began (members who join meanwhile and sort
after the cursor are entered too, so the sum may end a little above or below it)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select, update

from rejse.contracts import ProcessedEvent
from rejse.db import insert_ignore, session_scope, utcnow
from rejse.journeys.definition import JourneyDefinition
from rejse.journeys.entry import Entry, entry_workflow_id, plan_entry, runs_by_workflow
from rejse.logging import get_logger
from rejse.models.journeys import Journey, JourneyEntry, JourneyVersion
from rejse.runtime import Runtime

if TYPE_CHECKING:
    from temporalio.client import Client

log = get_logger("rejse.journeys")
LEASE = dt.timedelta(seconds=60)
PAGE_MAX = 500
PAGE_SECONDS = 10  # a page is at most this many seconds of starts, well inside the lease
CHUNK_MAX = 50  # starts sent to Temporal together
ENTRY_TABLE: sa.Table = JourneyEntry.__table__  # type: ignore[attr-defined]


def fire_stamp(fired_at: dt.datetime) -> str:
    return fired_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%MZ")


def schedule_entry_id(fired_at: dt.datetime) -> str:
    return f"schedule-{fire_stamp(fired_at)}"


def manual_entry_id(idempotency_key: str | None) -> str:
    """`manual-` and a short hash of the idempotency key (it may be anything the caller chose,
    an email even), or of a random value when there is none."""
    seed = idempotency_key if idempotency_key is not None else uuid.uuid4().hex
    return f"manual-{hashlib.sha256(seed.encode()).hexdigest()[:16]}"


def _profiles(session: Session, audience: str | None) -> Any:
    """The profile ids an entry addresses (a `select` to page or count)."""
    from rejse.models.audiences import AudienceMembership
    from rejse.models.profiles import Profile

    live = col(Profile.erased_at).is_(None)
    if audience is None:
        return select(Profile.id).where(live)
    return (
        select(col(AudienceMembership.profile_id))
        .join(Profile, col(Profile.id) == col(AudienceMembership.profile_id))
        .where(AudienceMembership.audience_key == audience, live)
    )


def _page(session: Session, audience: str | None, after: str, limit: int) -> list[str]:
    stmt = _profiles(session, audience)
    pid = stmt.selected_columns[0]
    return list(session.exec(stmt.where(pid > after).order_by(pid).limit(limit)))


def open_entry(
    session: Session,
    *,
    journey_key: str,
    entry_id: str,
    source: str,
    audience: str | None,
    fired_at: dt.datetime,
    properties: dict[str, Any] | None = None,
) -> JourneyEntry:
    """The entry `entry_id` of the journey, created with its member count if it is new (a
    second caller with the same id gets the first one's row)."""
    total = session.exec(select(func.count()).select_from(_profiles(session, audience).subquery()))
    session.connection().execute(
        insert_ignore(session.connection(), ENTRY_TABLE),
        [
            {
                "journey_key": journey_key,
                "id": entry_id,
                "source": source,
                "audience": audience,
                "fired_at": fired_at,
                "properties": properties or {},
                "total": total.one(),
                "entered": 0,
                "skipped": 0,
                "status": "running",
                "created_at": utcnow(),
            }
        ],
    )
    row = session.get(JourneyEntry, (journey_key, entry_id), populate_existing=True)
    if row is None:  # inserted or present: the statement above makes one of them true
        raise RuntimeError(f"journey entry {entry_id} vanished")
    return row


def unfinished_entries(session: Session) -> list[tuple[str, str]]:
    return [
        (key, eid)
        for key, eid in session.exec(
            select(JourneyEntry.journey_key, JourneyEntry.id)
            .where(JourneyEntry.status == "running")
            .order_by(col(JourneyEntry.created_at), col(JourneyEntry.id))
        )
    ]


def _trigger(row: JourneyEntry, profile_id: str, now: dt.datetime) -> ProcessedEvent:
    if row.source == "schedule":
        properties: dict[str, Any] = {"fired_at": row.fired_at.isoformat()}
        if row.audience is not None:
            properties["audience"] = row.audience
        return ProcessedEvent(
            event_id=f"schedule:{row.journey_key}:{fire_stamp(row.fired_at)}:{profile_id}",
            profile_id=profile_id,
            type="internal",
            event="Journey Scheduled",
            properties=properties,
            timestamp=row.fired_at,
            received_at=now,
        )
    return ProcessedEvent(
        event_id=f"manual:{row.journey_key}:{row.id}:{profile_id}",
        profile_id=profile_id,
        type="internal",
        event="Journey Entered Manually",
        properties=row.properties,
        timestamp=row.fired_at,
        received_at=now,
    )


def _workflow_id(
    journey: Journey, defn: JourneyDefinition, row: JourneyEntry, ev: ProcessedEvent
) -> str:
    """A schedule fire's runs have their own ids (`journey:{key}:{profile}:{fire time}`); an
    audience entered by hand uses the journey's usual id, so its re-entry rule applies."""
    if row.source == "schedule":
        return f"journey:{journey.key}:{ev.profile_id}:{fire_stamp(row.fired_at)}"
    return entry_workflow_id(journey, defn, ev)


def _claim(session: Session, journey_key: str, entry_id: str, owner: str, now: dt.datetime) -> bool:
    taken = session.exec(
        update(JourneyEntry)
        .where(
            col(JourneyEntry.journey_key) == journey_key,
            col(JourneyEntry.id) == entry_id,
            col(JourneyEntry.status) == "running",
            sa.or_(
                col(JourneyEntry.lease_owner) == owner,
                col(JourneyEntry.lease_until).is_(None),
                col(JourneyEntry.lease_until) < now,
            ),
        )
        .values(lease_owner=owner, lease_until=now + LEASE)
    )
    return bool(taken.rowcount)


def _plan_page(
    runtime: Runtime, journey_key: str, entry_id: str, owner: str, page_size: int
) -> tuple[list[Entry], int, str] | None:
    """Plan the next page: (entries to start, profiles skipped, the page's last profile id);
    None when there is nothing (more) to do for this driver."""
    now = utcnow()
    with session_scope(runtime.engine) as session:
        if not _claim(session, journey_key, entry_id, owner, now):
            return None
        row = session.get(JourneyEntry, (journey_key, entry_id))
        journey = session.get(Journey, journey_key)
        if row is None:
            return None
        if journey is None or journey.status == "archived":
            row.status, row.finished_at, row.lease_owner, row.lease_until = (
                "cancelled",
                now,
                None,
                None,
            )
            return None
        version = session.get(JourneyVersion, (journey_key, journey.published_version or 0))
        if journey.status != "published" or version is None:  # paused: held until resumed
            row.lease_owner, row.lease_until = None, None
            return None
        page = _page(session, row.audience, row.cursor or "", page_size)
        if not page:
            row.status, row.finished_at, row.lease_owner, row.lease_until = "done", now, None, None
            log.info(
                "journey_entry_done",
                journey=journey_key,
                entry=entry_id,
                entered=row.entered,
                skipped=row.skipped,
            )
            return None
        defn = JourneyDefinition.model_validate(version.definition)
        triggers = [_trigger(row, pid, now) for pid in page]
        wids = [_workflow_id(journey, defn, row, ev) for ev in triggers]
        earlier = runs_by_workflow(session, set(wids))
        entries = []
        for ev, wid in zip(triggers, wids, strict=True):
            entry = plan_entry(
                session, journey=journey, defn=defn, event=ev, workflow_id=wid, earlier=earlier[wid]
            )
            if entry is not None:
                entries.append(entry)
        session.flush()
        return entries, len(page) - len(entries), page[-1]


def _page_done(
    runtime: Runtime,
    journey_key: str,
    entry_id: str,
    owner: str,
    *,
    entered: int,
    skipped: int,
    cursor: str,
) -> None:
    with session_scope(runtime.engine) as session:
        session.exec(
            update(JourneyEntry)
            .where(
                col(JourneyEntry.journey_key) == journey_key,
                col(JourneyEntry.id) == entry_id,
                col(JourneyEntry.lease_owner) == owner,
            )
            .values(
                entered=col(JourneyEntry.entered) + entered,
                skipped=col(JourneyEntry.skipped) + skipped,
                cursor=cursor,
                lease_until=utcnow() + LEASE,
            )
        )


class Pacer:
    """Keeps starts at `rate` per second on average: a batch of n waits until the starts before
    it had their time."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.started: float | None = None
        self.sent = 0

    async def take(self, n: int) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        delay = self.started + self.sent / self.rate - now
        if delay > 0:
            await asyncio.sleep(delay)
        self.sent += n


async def drive(runtime: Runtime, journey_key: str, entry_id: str) -> int:
    """Enter the entry's remaining profiles; returns how many runs this call started anew.
    Returns at once when another driver holds the entry. A failure to start (Temporal away)
    raises before the page's cursor moves, so the next driver starts that page again."""
    from rejse.journeys.dispatcher import start_entry

    rate = runtime.settings.journey_entry_rate
    page_size = max(1, min(PAGE_MAX, int(rate * PAGE_SECONDS)))
    chunk_size = max(1, min(CHUNK_MAX, int(rate)))
    owner = uuid.uuid4().hex
    pacer = Pacer(rate)
    started = 0
    client: Client | None = None
    while True:
        planned = await asyncio.to_thread(
            _plan_page, runtime, journey_key, entry_id, owner, page_size
        )
        if planned is None:
            return started
        entries, skipped, cursor = planned
        for n in range(0, len(entries), chunk_size):
            chunk = entries[n : n + chunk_size]
            client = client or await runtime.temporal.client()
            await pacer.take(len(chunk))
            results = await asyncio.gather(*(start_entry(client, runtime, e) for e in chunk))
            # `gather` answers once per entry of the chunk, in order
            started += sum(
                1 for e, ok in zip(chunk, results, strict=True) if ok and not e.redelivery
            )
        await asyncio.to_thread(
            _page_done,
            runtime,
            journey_key,
            entry_id,
            owner,
            entered=len(entries),
            skipped=skipped,
            cursor=cursor,
        )


async def drive_unfinished(runtime: Runtime) -> int:
    """Drive every unfinished entry in turn (the scheduler job); runs started anew."""
    with session_scope(runtime.engine) as session:
        todo = unfinished_entries(session)
    started = 0
    for key, entry_id in todo:
        try:
            started += await drive(runtime, key, entry_id)
        except Exception as exc:  # noqa: BLE001 - the next tick resumes it
            log.warning(
                "journey_entry_failed", journey=key, entry=entry_id, error=type(exc).__name__
            )
    return started
