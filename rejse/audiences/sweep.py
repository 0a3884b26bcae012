"""The recheck sweep: memberships that time alone changes (a `within` window passing, days
since the last order, a decaying score), found from `audience_recheck` rows, not by
recomputing audiences.

A scheduler job (`audiences.recheck`, every 30 s) takes the rows due by now in pages of
`PAGE`, each page in one transaction: re-evaluates each profile's due audiences (and the ones
naming them) with `recheck_profile`, which writes the memberships and the next rechecks, and
stores an `Audience Entered` / `Audience Exited` event per change. So a profile leaves
"Order Completed within P90D" at most one sweep interval after the 90 days pass.

Safe twice: on PostgreSQL a page is taken `FOR UPDATE SKIP LOCKED`, so two sweeps share the
due rows instead of doing them both; a change counts only for the writer whose statement
changed the membership row; and each event's message id is derived from the recheck row
(`aud:{key}:{profile}:{kind}:due@{due_at}`), so a sweep repeated after a crash stores no event
twice. A processed row is always rewritten past `now` or removed, so a sweep ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from rejse.audiences.membership import RECHECK, emit, load_index, recheck_profile, stamp_of
from rejse.db import session_scope, utcnow
from rejse.logging import get_logger
from rejse.runtime import Runtime
from rejse.scoring.service import ModelCache

if TYPE_CHECKING:
    from rejse.scheduler import ScheduledJob

log = get_logger("rejse.audiences")
PAGE = 500
INTERVAL = dt.timedelta(seconds=30)


@dataclass
class SweepResult:
    checked: int = 0  # recheck rows handled
    entered: int = 0
    exited: int = 0


def sweep_page(engine: Engine, *, now: dt.datetime, limit: int = PAGE) -> SweepResult:
    """One page of due rechecks in one transaction."""
    result = SweepResult()
    with session_scope(engine) as session:
        conn = session.connection()
        stmt = (
            sa.select(RECHECK.c.audience_key, RECHECK.c.profile_id, RECHECK.c.due_at)
            .where(RECHECK.c.due_at <= now)
            .order_by(RECHECK.c.due_at, RECHECK.c.audience_key, RECHECK.c.profile_id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = conn.execute(stmt).all()
        if not rows:
            return result
        index = load_index(session)
        scoring = ModelCache()  # the active model's half-life read once per page
        due: dict[str, dict[str, dt.datetime]] = {}
        for key, pid, at in rows:
            due.setdefault(pid, {})[key] = at
        for pid, keys in due.items():
            changes = recheck_profile(session, index, pid, keys, now=now, scoring=scoring)
            # Rows of audiences gone or no longer timed are not rewritten: remove them.
            conn.execute(
                RECHECK.delete().where(
                    RECHECK.c.profile_id == pid,
                    RECHECK.c.audience_key.in_(list(keys)),
                    RECHECK.c.due_at <= now,
                )
            )
            if changes:
                cause = "due@" + stamp_of(min(keys.values()))
                emit(conn, [(pid, c) for c in changes], cause=cause, at=now)
            result.entered += sum(1 for c in changes if c.kind == "entered")
            result.exited += sum(1 for c in changes if c.kind == "exited")
        result.checked = len(rows)
    return result


def sweep_due(engine: Engine, *, now: dt.datetime | None = None, limit: int = PAGE) -> SweepResult:
    """Every recheck due by `now` (default: the clock), page after page."""
    now = now or utcnow()
    total = SweepResult()
    while True:
        page = sweep_page(engine, now=now, limit=limit)
        if not page.checked:
            break
        total.checked += page.checked
        total.entered += page.entered
        total.exited += page.exited
    if total.checked:
        log.info(
            "audience_rechecks_swept",
            checked=total.checked,
            entered=total.entered,
            exited=total.exited,
        )
    return total


async def sweep_rechecks(runtime: Runtime, *, now: dt.datetime | None = None) -> SweepResult:
    """The scheduler job's body (database work in a thread)."""
    return await asyncio.to_thread(sweep_due, runtime.engine, now=now)


def scheduler_jobs(runtime: Runtime) -> list[ScheduledJob]:
    from rejse.scheduler import ScheduledJob

    async def job(rt: Runtime) -> None:
        await sweep_rechecks(rt)

    return [ScheduledJob(id="audiences.recheck", trigger=INTERVAL, func=job, run_on_start=True)]
