"""Audience membership of one profile: re-evaluate, write, say what changed.

The one place membership rows and recheck rows are written for a single profile; the event
processor's subscriber, the recheck sweep and merges all come through `recheck_profile`.

- A membership row is inserted with `INSERT ... ON CONFLICT DO NOTHING` and removed with a
  `DELETE`; a change counts (and becomes an `Audience Entered` / `Audience Exited` event) only
  when that statement changed a row. Two writers that race for the same profile (the sweep and
  the processor on PostgreSQL) therefore report one change between them, never two.
- Audiences are evaluated in dependency order (an audience that names another comes after
  it), and when a profile enters or leaves an audience, the audiences that name it are
  re-evaluated in the same pass, seeing the new membership.
- When time alone can change the answer (`dependencies(cond).timed`: a `within` window, days
  since an order, a decaying score), the pair gets an `audience_recheck` row at
  `next_change(...)`; otherwise any recheck row of the pair is removed.

The audience size is not kept on the audience row here: writing one counter row per audience
from every processor transaction would serialise all processors on popular audiences (and
deadlock them on PostgreSQL when two batches touch two audiences in opposite orders). The
service counts the membership rows when it reports a size (`service.get_audience`).
"""

from __future__ import annotations

import datetime as dt
import heapq
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import Session

from rejse.audiences.definition import AUDIENCE_ENTERED, AUDIENCE_EXITED
from rejse.audiences.facts import EventSpec, event_specs, load_live_facts
from rejse.conditions import (
    Dependencies,
    Facts,
    StaticFacts,
    count_ops,
    dependencies,
    evaluate,
    leaves,
    next_change,
)
from rejse.db import driver_mark, from_sqlite_time, insert_ignore, utcnow
from rejse.events.service import event_row
from rejse.events.store import bucket_for, store_events
from rejse.models.audiences import Audience, AudienceMembership, AudienceRecheck
from rejse.models.profiles import Profile
from rejse.scoring.service import ModelCache

MEMBERSHIP = AudienceMembership.__table__  # type: ignore[attr-defined]
RECHECK = AudienceRecheck.__table__  # type: ignore[attr-defined]
AUDIENCE = Audience.__table__  # type: ignore[attr-defined]
PROFILE = Profile.__table__  # type: ignore[attr-defined]

# Events that change a profile's customer value (kept by the customer value subscriber, which
# runs before the audiences): the `customer` leaves can change with these only.
CUSTOMER_EVENTS = frozenset({"Order Completed", "Order Refunded"})
MIN_RECHECK = dt.timedelta(seconds=1)  # a recheck is always strictly after the check

ENTERED, EXITED = "entered", "exited"
EVENT_NAMES = {ENTERED: AUDIENCE_ENTERED, EXITED: AUDIENCE_EXITED}


# --------------------------------------------------------------------------------- the index


@dataclass(frozen=True)
class CompiledAudience:
    key: str
    condition: dict[str, Any]
    deps: Dependencies
    version: int
    stamp: str  # the audience's creation time: tells apart two audiences of the same key
    event_leaves: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Plan:
    """What re-checking some audiences for one profile may read: the audiences themselves and
    every audience naming them (directly or through others), their event leaves, and whether
    any of them looks at consent or the score."""

    keys: frozenset[str]
    events: tuple[EventSpec, ...]
    consent: bool
    score: bool


@dataclass
class AudienceIndex:
    """Every audience with what it depends on, and the reverse maps the subscriber needs to
    find the audiences an event can change."""

    audiences: dict[str, CompiledAudience] = field(default_factory=dict)
    position: dict[str, int] = field(default_factory=dict)  # dependency order
    dependents: dict[str, set[str]] = field(default_factory=dict)  # key -> audiences naming it
    by_event: dict[str, set[str]] = field(default_factory=dict)
    by_trait: dict[str, set[str]] = field(default_factory=dict)
    consent: set[str] = field(default_factory=set)
    score: set[str] = field(default_factory=set)
    customer: set[str] = field(default_factory=set)
    # Audiences an empty profile belongs to (`not` an event, a trait `ne`): a new profile's
    # first event checks every audience, whatever the event.
    default_true: set[str] = field(default_factory=set)
    _plans: dict[frozenset[str], Plan] = field(default_factory=dict, repr=False)
    _directions: dict[tuple[str, Touch], str] = field(default_factory=dict, repr=False)
    _checks: dict[tuple[frozenset[str], Touch], Checks] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, rows: Iterable[tuple[str, dict[str, Any], int, dt.datetime]]) -> AudienceIndex:
        index = cls()
        for key, condition, version, created_at in rows:
            deps = dependencies(condition)
            event_leaves = tuple(leaf for _, leaf in leaves(condition) if "event" in leaf)
            index.audiences[key] = CompiledAudience(
                key, condition, deps, version, stamp_of(created_at), event_leaves
            )
            for name in deps.events:
                index.by_event.setdefault(name, set()).add(key)
            for trait in deps.traits:
                index.by_trait.setdefault(trait, set()).add(key)
            if deps.consent:
                index.consent.add(key)
            if deps.score:
                index.score.add(key)
            if deps.customer:
                index.customer.add(key)
            if _true_when_empty(condition):
                index.default_true.add(key)
        for key, audience in index.audiences.items():
            for other in audience.deps.audiences:
                index.dependents.setdefault(other, set()).add(key)
        index.position = {key: n for n, key in enumerate(dependency_order(index.audiences))}
        return index

    def ordered(self, keys: Iterable[str]) -> list[str]:
        return sorted((k for k in keys if k in self.audiences), key=self.position.__getitem__)

    def direction(self, key: str, touch: Touch) -> str:
        """`direction` of audience `key`'s condition under `touch` (remembered)."""
        found = self._directions.get((key, touch))
        if found is None:
            found = direction(self.audiences[key].condition, touch)
            if len(self._directions) < 65536:  # touches are few (event names, trait sets)
                self._directions[(key, touch)] = found
        return found

    def checks(self, keys: Iterable[str], touch: Touch) -> Checks:
        """What `to_check` needs to know of `keys` under `touch` that does not depend on the
        profile: each audience in order, its direction and whether it is timed (remembered)."""
        start = frozenset(keys)
        found = self._checks.get((start, touch))
        if found is None:
            found = tuple(
                (k, self.direction(k, touch), self.audiences[k].deps.timed)
                for k in self.ordered(start)
            )
            if len(self._checks) < 4096:  # as `_plans`: few distinct key sets and touches
                self._checks[(start, touch)] = found
        return found

    def plan(self, start: Iterable[str]) -> Plan:
        """The `Plan` of re-checking `start` (remembered: the index does not change)."""
        first = frozenset(k for k in start if k in self.audiences)
        found = self._plans.get(first)
        if found is not None:
            return found
        keys, todo = set(first), list(first)
        while todo:
            for user in self.dependents.get(todo.pop(), ()):
                if user not in keys:
                    keys.add(user)
                    todo.append(user)
        audiences = [self.audiences[k] for k in sorted(keys)]
        plan = Plan(
            frozenset(keys),
            event_specs(leaf for a in audiences for leaf in a.event_leaves),
            any(a.deps.consent for a in audiences),
            any(a.deps.score for a in audiences),
        )
        if len(self._plans) < 4096:  # start sets are few (event names, traits); stay bounded
            self._plans[first] = plan
        return plan


def _true_when_empty(condition: Mapping[str, Any]) -> bool:
    try:
        return evaluate(condition, StaticFacts(), now=utcnow())
    except Exception:  # noqa: BLE001 - cannot tell without data: check new profiles anyway
        return True


def dependency_order(audiences: Mapping[str, CompiledAudience]) -> list[str]:
    """Keys such that an audience comes after every audience it names (Kahn, ties by key).
    Saved audiences have no cycles (the service refuses them); were one there anyway, its
    members come last in key order rather than being left out."""
    needs = {
        key: {d for d in a.deps.audiences if d in audiences and d != key}
        for key, a in audiences.items()
    }
    users: dict[str, set[str]] = {}
    for key, deps in needs.items():
        for dep in deps:
            users.setdefault(dep, set()).add(key)
    ready = [key for key, deps in needs.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        key = heapq.heappop(ready)
        order.append(key)
        for user in users.get(key, ()):
            needs[user].discard(key)
            if not needs[user]:
                heapq.heappush(ready, user)
    placed = set(order)
    order.extend(sorted(k for k in audiences if k not in placed))
    return order


def stamp_of(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ") if at.tzinfo else at.isoformat()


def load_index(session: Session) -> AudienceIndex:
    rows = session.execute(
        sa.select(AUDIENCE.c.key, AUDIENCE.c.condition, AUDIENCE.c.version, AUDIENCE.c.created_at)
    ).all()
    return AudienceIndex.build((r[0], r[1] or {}, r[2], r[3]) for r in rows)


_generation = 0  # bumped by the service when an audience changes in this process
_generation_lock = threading.Lock()


def audiences_changed() -> None:
    """Tell this process's caches that an audience was created, changed or deleted (other
    processes see it through the stamp within the cache's `ttl`)."""
    global _generation
    with _generation_lock:
        _generation += 1


class IndexCache:
    """The index, rebuilt when the audiences change: checked by a cheap stamp (how many
    audiences and their latest `updated_at`) at most every `ttl` seconds, and at once after a
    change made in this process."""

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._index: AudienceIndex | None = None
        self._stamp: tuple[Any, ...] | None = None
        self._checked: tuple[float, int] = (0.0, -1)

    def get(self, session: Session) -> AudienceIndex:
        with self._lock:
            checked_at, generation = self._checked
            if (
                self._index is not None
                and generation == _generation
                and time.monotonic() - checked_at < self.ttl
            ):
                return self._index
            generation = _generation
        stamp = tuple(
            session.execute(sa.select(sa.func.count(), sa.func.max(AUDIENCE.c.updated_at))).one()
        )
        with self._lock:
            if self._index is None or stamp != self._stamp:
                self._index, self._stamp = load_index(session), stamp
            self._checked = (time.monotonic(), generation)
            return self._index


# --------------------------------------------------------------------------------- monotony

# Which way one event can move a condition's answer for its profile: not at all (CONST), only
# from false to true (UP), only from true to false (DOWN), either way (ANY).
CONST, UP, DOWN, ANY = "const", "up", "down", "any"
_FLIP = {CONST: CONST, UP: DOWN, DOWN: UP, ANY: ANY}
_RISING = {"gt": UP, "gte": UP, "lt": DOWN, "lte": DOWN}  # the answer as the number grows


@dataclass(frozen=True)
class Touch:
    """What an (unmerged) event changes about its profile, as far as conditions can see: one
    more event of its name (which the customer value subscriber reads for orders and refunds),
    the top-level traits it sets, consent, the score."""

    event: str | None = None
    traits: frozenset[str] = frozenset()
    consent: bool = False
    score: bool = False


Checks = tuple[tuple[str, str, bool], ...]  # (audience key, direction, timed), in order


def _combine(a: str, b: str) -> str:
    if a in (CONST, b):
        return b
    return a if b == CONST else ANY


def direction(cond: Mapping[str, Any], touch: Touch) -> str:
    """The way `touch` can move `cond`'s answer, from the condition's structure alone:

    - an `event` leaf of the touched name counts one more event or the same (a `where` may not
      match; windows only drop events as time passes, which rechecks cover): a lower bound on
      the count (`gt`, `gte`, the default `gte 1`) can only become true, an upper bound only
      false, `eq` / `ne` either;
    - `Order Completed` adds one order or none (a repeated order id) and a revenue >= 0
      (`rejse.profiles.value.amount_of`), `Order Refunded` takes a revenue >= 0 and leaves the
      order count: `order_count` / `revenue` bounds move one way; the average and the days
      since an order can move either way;
    - a touched trait, consent or the score can move either way; `audience` leaves are CONST
      here (a named audience that changes in the same pass re-checks its users anyway);
    - `all` / `any` keep the common direction of their parts, `not` turns it round.
    """
    if "all" in cond or "any" in cond:
        out = CONST
        for part in cond["all" if "all" in cond else "any"]:
            out = _combine(out, direction(part, touch))
            if out == ANY:
                break
        return out
    if "not" in cond:
        return _FLIP[direction(cond["not"], touch)]
    if "event" in cond:
        if cond["event"] != touch.event:
            return CONST
        out = CONST
        for op in count_ops(cond):
            out = _combine(out, _RISING.get(op, ANY))
        return out
    if "customer" in cond:
        if touch.event not in CUSTOMER_EVENTS:
            return CONST
        name, rising = cond["customer"], _RISING.get(cond["op"], ANY)
        if name == "order_count":
            return rising if touch.event == "Order Completed" else CONST
        if name == "revenue":
            return rising if touch.event == "Order Completed" else _FLIP[rising]
        return ANY
    if "trait" in cond:
        return ANY if cond["trait"].split(".", 1)[0] in touch.traits else CONST
    if "consent" in cond:
        return ANY if touch.consent else CONST
    if "score" in cond:
        return ANY if touch.score else CONST
    if "audience" in cond or "property" in cond:
        return CONST  # audiences: see above; properties: audiences see none
    return ANY


def unchanged(
    index: AudienceIndex,
    key: str,
    touch: Touch,
    *,
    member: bool,
    due: dt.datetime | None,
    now: dt.datetime,
) -> bool:
    """Whether `touch` provably leaves the profile's membership of `key` as it is: the answer
    cannot move away from the stored one (a member and UP or CONST, a non-member and DOWN or
    CONST), and the stored answer still holds as of `now` (no recheck due by then; a due time
    within `MIN_RECHECK` of the check may stand for an earlier change, so it must be further
    off than that). The pair's recheck is left as it is: one more event of that kind can only
    put the next change later, so the stored time is early at worst and the sweep then
    re-checks and writes the right one."""
    way = index.direction(key, touch)
    if way in (ANY, DOWN if member else UP):
        return False
    timed = index.audiences[key].deps.timed
    return not (timed and due is not None and due <= now + MIN_RECHECK)


Rows = tuple[set[str], dict[str, dt.datetime]]  # a profile's memberships and recheck times


def rows_of(conn: Connection, profile_id: str) -> Rows:
    """The profile's memberships and recheck times, in one statement at the driver's level:
    the processor asks this for most events, so it is on the hot path."""
    m = driver_mark(conn)
    sql = (
        f"SELECT audience_key, NULL FROM {MEMBERSHIP.name} WHERE profile_id = {m} "  # noqa: S608 - table names are ours, values are bound
        f"UNION ALL SELECT audience_key, due_at FROM {RECHECK.name} WHERE profile_id = {m}"
    )
    members: set[str] = set()
    dues: dict[str, dt.datetime] = {}
    for key, due in conn.exec_driver_sql(sql, (profile_id, profile_id)):
        if due is None:
            members.add(key)
        else:
            dues[key] = _aware(due) if isinstance(due, dt.datetime) else from_sqlite_time(due)
    return members, dues


def to_check(
    index: AudienceIndex,
    keys: Iterable[str],
    touch: Touch,
    rows: Rows,
    *,
    now: dt.datetime,
) -> list[str]:
    """The audiences of `keys` whose membership `touch` may change (`unchanged`), in order;
    `rows`: the profile's (`rows_of`). The per-event loop of the processor's hot path: what
    does not depend on the profile comes from `AudienceIndex.checks`."""
    members, dues = rows
    limit = now + MIN_RECHECK
    out = []
    for key, way, timed in index.checks(keys, touch):
        moves = way == ANY or way == (DOWN if key in members else UP)
        if moves or (timed and (due := dues.get(key)) is not None and due <= limit):
            out.append(key)
    return out


def needs_rows(index: AudienceIndex, keys: Iterable[str], touch: Touch) -> bool:
    """Whether `to_check` can answer anything but nothing for `keys` under `touch`: not when
    every one is constant under it and untimed (then no row of the profile need be read)."""
    return any(way != CONST or timed for _, way, timed in index.checks(keys, touch))


# --------------------------------------------------------------------------------- one profile


class WithAudiences:
    """The profile's facts, with the audiences it is in as this pass has left them."""

    def __init__(self, facts: Any, audiences: Collection[str]) -> None:
        self._facts = facts
        self.audiences = audiences

    def __getattr__(self, name: str) -> Any:
        return getattr(self._facts, name)


@dataclass(frozen=True)
class Change:
    key: str
    kind: str  # ENTERED or EXITED

    @property
    def event(self) -> tuple[str, dict[str, Any]]:
        return EVENT_NAMES[self.kind], {"audience": self.key}


_READ_MEMBERSHIPS = sa.select(MEMBERSHIP.c.audience_key).where(
    MEMBERSHIP.c.profile_id == sa.bindparam("_pid")
)

_READ_LIVE = sa.select(PROFILE.c.erased_at).where(PROFILE.c.id == sa.bindparam("_pid"))


def memberships_of(session: Session, profile_id: str) -> set[str]:
    return set(session.connection().execute(_READ_MEMBERSHIPS, {"_pid": profile_id}).scalars())


def is_live(session: Session, profile_id: str) -> bool:
    row = session.connection().execute(_READ_LIVE, {"_pid": profile_id}).one_or_none()
    return row is not None and row[0] is None


def recheck_profile(
    session: Session,
    index: AudienceIndex,
    profile_id: str,
    keys: Iterable[str],
    *,
    now: dt.datetime,
    scoring: ModelCache | None = None,
    touch: Touch | None = None,
    rows: Rows | None = None,
) -> list[Change]:
    """Re-evaluate audiences `keys` (and, when they change, the audiences naming them) for one
    profile as of `now`; write its membership and recheck rows; return what changed in
    dependency order. A profile that is gone or erased loses its rows and changes nothing.

    Reads what the audiences that may be evaluated need (`AudienceIndex.plan`): the profile
    row and memberships, consents and score only when one of them looks at them, all their
    event leaves in at most two queries; it writes only rows that change.

    `touch`: what the event being applied changed; the audiences it provably leaves as they
    are (`unchanged`) are not evaluated (unless one they name changes in this pass). `rows`:
    the profile's memberships and rechecks when the caller has read them in this transaction
    (nothing has written them since)."""
    conn = session.connection()
    start = index.ordered(set(keys))
    if not start:
        return []
    members, due_now = rows if rows is not None else rows_of(conn, profile_id)
    if touch is not None:
        start = to_check(index, start, touch, (members, due_now), now=now)
        if not start:
            return []
    plan = index.plan(start)
    loaded = load_live_facts(
        session,
        profile_id,
        now=now,
        consents=plan.consent,
        score=plan.score,
        scoring=scoring,
        audiences=members,
    )
    if loaded is None:
        forget_profile(conn, profile_id)
        return []
    loaded.prefetch(plan.events)
    current = set(members)
    loaded.audiences = current  # the pass's view: evaluated audiences see the changes so far
    facts = cast(Facts, loaded)
    todo = [(index.position[k], k) for k in start]
    heapq.heapify(todo)
    done: set[str] = set()
    changes: list[Change] = []
    while todo:
        _, key = heapq.heappop(todo)
        if key in done:
            continue
        done.add(key)
        audience = index.audiences[key]
        inside = evaluate(audience.condition, facts, now=now)
        if inside != (key in current):
            if inside:
                current.add(key)
                changed = enter(conn, key, profile_id, at=now)
            else:
                current.discard(key)
                changed = leave(conn, key, profile_id)
            if changed:
                changes.append(Change(key, ENTERED if inside else EXITED))
            for user in index.dependents.get(key, ()):
                heapq.heappush(todo, (index.position[user], user))
        due = next_change(audience.condition, facts, now=now) if audience.deps.timed else None
        if due is not None:
            due = max(due, now + MIN_RECHECK)
        if due != due_now.get(key):
            set_recheck(conn, key, profile_id, due, now=now)
    return changes


def _aware(at: dt.datetime) -> dt.datetime:
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at


# --------------------------------------------------------------------------------- rows


_INSERT_IGNORE: dict[str, Any] = {}
_UPSERT_RECHECK: dict[str, Any] = {}
_LEAVE = MEMBERSHIP.delete().where(
    MEMBERSHIP.c.audience_key == sa.bindparam("_key"),
    MEMBERSHIP.c.profile_id == sa.bindparam("_pid"),
)
_DROP_RECHECK = RECHECK.delete().where(
    RECHECK.c.audience_key == sa.bindparam("_key"), RECHECK.c.profile_id == sa.bindparam("_pid")
)


def _enter_stmt(conn: Connection) -> Any:
    dialect = conn.dialect.name
    if dialect not in _INSERT_IGNORE:
        _INSERT_IGNORE[dialect] = insert_ignore(conn, MEMBERSHIP)
    return _INSERT_IGNORE[dialect]


def enter(conn: Connection, key: str, profile_id: str, *, at: dt.datetime) -> bool:
    """Add the membership row; True when it was not there."""
    result = conn.execute(
        _enter_stmt(conn), {"audience_key": key, "profile_id": profile_id, "entered_at": at}
    )
    return bool(result.rowcount)


def leave(conn: Connection, key: str, profile_id: str) -> bool:
    """Remove the membership row; True when it was there."""
    return bool(conn.execute(_LEAVE, {"_key": key, "_pid": profile_id}).rowcount)


def _upsert(conn: Connection) -> Any:
    dialect = conn.dialect.name
    if dialect not in _UPSERT_RECHECK:
        stmt = (postgresql if dialect == "postgresql" else sqlite).insert(RECHECK)
        _UPSERT_RECHECK[dialect] = stmt.on_conflict_do_update(
            index_elements=["audience_key", "profile_id"], set_={"due_at": stmt.excluded.due_at}
        )
    return _UPSERT_RECHECK[dialect]


def set_recheck(
    conn: Connection, key: str, profile_id: str, due: dt.datetime | None, *, now: dt.datetime
) -> None:
    """The pair's next recheck at `due` (at least `MIN_RECHECK` after `now`), or none."""
    if due is None:
        conn.execute(_DROP_RECHECK, {"_key": key, "_pid": profile_id})
        return
    due = max(due, now + MIN_RECHECK)
    conn.execute(_upsert(conn), {"audience_key": key, "profile_id": profile_id, "due_at": due})


def set_rechecks(conn: Connection, key: str, dues: Sequence[tuple[str, dt.datetime]]) -> None:
    """Insert recheck rows of audience `key` that do not exist yet (after a recomputation
    removed the old ones)."""
    insert_rows(conn, RECHECK, key, dues, "due_at")


def insert_rows(
    conn: Connection,
    table: sa.Table,
    key: str,
    rows: Sequence[tuple[str, dt.datetime]],
    time_column: str,
) -> None:
    """Insert (audience `key`, profile id, time) rows that do not exist yet, in bulk: on
    PostgreSQL one `INSERT ... SELECT unnest(...)` of two arrays (an executemany is one
    statement per row there), on SQLite an executemany (one prepared statement)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text(
                f"INSERT INTO {table.name} (audience_key, profile_id, {time_column}) "  # noqa: S608 - our table and column names; values are bound
                "SELECT :key, unnest(CAST(:ids AS text[])), unnest(CAST(:times AS timestamptz[])) "
                "ON CONFLICT DO NOTHING"
            ),
            {"key": key, "ids": [pid for pid, _ in rows], "times": [at for _, at in rows]},
        )
        return
    conn.execute(
        insert_ignore(conn, table),
        [{"audience_key": key, "profile_id": pid, time_column: at} for pid, at in rows],
    )


def forget_profile(conn: Connection, profile_id: str) -> tuple[int, int]:
    """Remove every membership and recheck row of a profile; (memberships, rechecks)."""
    members = conn.execute(MEMBERSHIP.delete().where(MEMBERSHIP.c.profile_id == profile_id))
    rechecks = conn.execute(RECHECK.delete().where(RECHECK.c.profile_id == profile_id))
    return members.rowcount or 0, rechecks.rowcount or 0


def move_profile(conn: Connection, *, from_: str, into: str) -> None:
    """A merge: the memberships of `from_` become the survivor's (keeping the earlier entry
    time where both were members), silently: the person was in them already. Its rechecks are
    dropped; the caller re-checks the survivor against every audience, which writes fresh
    ones."""
    rows = conn.execute(
        sa.select(MEMBERSHIP.c.audience_key, MEMBERSHIP.c.entered_at).where(
            MEMBERSHIP.c.profile_id == from_
        )
    ).all()
    for key, entered_at in rows:
        if not enter(conn, key, into, at=entered_at):
            conn.execute(
                MEMBERSHIP.update()
                .where(
                    MEMBERSHIP.c.audience_key == key,
                    MEMBERSHIP.c.profile_id == into,
                    MEMBERSHIP.c.entered_at > entered_at,
                )
                .values(entered_at=entered_at)
            )
    forget_profile(conn, from_)


# --------------------------------------------------------------------------------- events


def message_id(key: str, profile_id: str, kind: str, cause: str) -> str:
    """Deterministic per transition: a retry or a second sweep stores the event once."""
    return f"aud:{key}:{profile_id}:{kind}:{cause}"[:300]


def emit(
    conn: Connection,
    changes: Iterable[tuple[str, Change]],
    *,
    cause: str,
    at: dt.datetime,
) -> int:
    """Store `Audience Entered` / `Audience Exited` events (profile id, change) outside the
    processor, each with a deterministic message id; the processor applies and routes them
    like any event. Returns how many were new."""
    rows, buckets = [], []
    received = utcnow()
    for profile_id, change in changes:
        name, properties = change.event
        rows.append(
            event_row(
                type="internal",
                message_id=message_id(change.key, profile_id, change.kind, cause),
                timestamp=at,
                received_at=received,
                event=name,
                profile_id=profile_id,
                properties=properties,
                source="audiences",
            )
        )
        buckets.append(bucket_for(profile_id))
    return store_events(conn, rows, buckets) if rows else 0
