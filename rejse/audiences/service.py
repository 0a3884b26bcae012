"""Audiences against the database: create, change, delete, read, and the checks that need
the other audiences. Keyword arguments after the session; everything happens in the caller's
transaction, so a refused or failing call leaves nothing half-saved.

- `create_audience` checks the definition, saves it and computes its members from the
  profiles' data (`membership_pages`: one pass of the compiled condition over the profiles in
  keyset pages, so memory stays that of a page, and the rechecks of a timed condition from
  the same rows). The initial members enter silently unless the definition says `trigger_existing`,
  then each gets an `Audience Entered` event.
- `update_audience` with a new condition bumps the version, recomputes and emits an event for
  each difference: `Audience Entered` for the new members, `Audience Exited` for the ones who
  no longer match. The audiences that name it are recomputed after it, in dependency order,
  and emit their differences too. Name, description, canvas and `trigger_existing` alone
  change no member.
- `delete_audience` removes the audience, its members and its rechecks and emits nothing: the
  members did not leave anything they could still be in. It is refused while another audience
  names it (the API checks journeys first).
- Sizes are counts of the membership rows, taken when an audience is read: exact, and no
  processor transaction has to update a shared counter row. `audience.size` holds the count as
  of the last read or recomputation.
- Emitted events carry deterministic message ids (`aud:{key}:{profile}:{kind}:{cause}`, the
  cause naming the audience version that caused them), so a retried call stores each once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from rejse.audiences.definition import AudienceDefinition
from rejse.audiences.membership import (
    AUDIENCE,
    ENTERED,
    EXITED,
    MEMBERSHIP,
    MIN_RECHECK,
    PROFILE,
    RECHECK,
    Change,
    audiences_changed,
    dependency_order,
    emit,
    insert_rows,
    load_index,
    memberships_of,
    set_rechecks,
    stamp_of,
)
from rejse.audiences.sql import Page, membership_pages
from rejse.conditions import (
    Facts,
    Issue,
    audience_issues,
    next_change,
    validate_condition,
)
from rejse.errors import Conflict, NotFound, Unprocessable
from rejse.models.audiences import Audience

PAGE = 5000  # profiles per recomputation page (keyset pages of the compiled condition)
MAX_MEMBER_PAGE = 1000


class AudienceInvalid(Unprocessable):
    """A definition with problems; `issues` names each field (`condition.all[0].audience`)."""

    def __init__(self, issues: list[Issue]):
        first = issues[0]
        super().__init__("; ".join(str(i) for i in issues[:10]), field=first.field)
        self.issues = issues


# --------------------------------------------------------------------------------- checks


def audience_leaves(cond: Any, path: str = "condition") -> Iterator[tuple[str, str]]:
    """(field path, key) of each `{"audience": key}` leaf of a condition, in document order
    (walked without recursion; the size limits are checked before)."""
    todo: list[tuple[Any, str]] = [(cond, path)]
    while todo:
        node, where = todo.pop()
        if not isinstance(node, Mapping):
            continue
        if isinstance(node.get("audience"), str):
            yield f"{where}.audience", node["audience"]
        if isinstance(node.get("not"), Mapping):
            todo.append((node["not"], f"{where}.not"))
        for group in ("all", "any"):
            items = node.get(group)
            if isinstance(items, list):
                todo.extend(
                    (c, f"{where}.{group}[{n}]") for n, c in reversed(list(enumerate(items)))
                )


def _references(condition: Any) -> set[str]:
    return {key for _, key in audience_leaves(condition)}


def _cycle(graph: Mapping[str, set[str]], start: str, target: str) -> list[str] | None:
    """A path start -> ... -> target through `graph`, if there is one."""
    parents: dict[str, str | None] = {start: None}
    todo = [start]
    while todo:
        node = todo.pop()
        if node == target:
            path = [node]
            while (parent := parents[path[-1]]) is not None:
                path.append(parent)
            return list(reversed(path))
        for nxt in sorted(graph.get(node, ())):
            if nxt not in parents:
                parents[nxt] = node
                todo.append(nxt)
    return None


def check_definition(session: Session, definition: AudienceDefinition) -> list[Issue]:
    """Every problem of a definition that needs no other data than the saved audiences: the
    condition's shape, audiences it names that do not exist, and cycles through references
    (an audience may not name itself, directly or through others)."""
    issues = validate_condition(definition.condition, path="condition")
    if issues:
        return issues
    issues = audience_issues(definition.condition, path="condition")
    if issues:
        return issues
    graph = {
        key: _references(condition)
        for key, condition in session.execute(sa.select(AUDIENCE.c.key, AUDIENCE.c.condition)).all()
        if key != definition.key
    }
    graph[definition.key] = _references(definition.condition)
    for where, key in audience_leaves(definition.condition):
        if key == definition.key:
            issues.append(Issue(where, f"an audience cannot contain itself ({key!r})"))
        elif key not in graph:
            issues.append(Issue(where, f"no audience {key!r}"))
        elif (path := _cycle(graph, key, definition.key)) is not None:
            chain = " -> ".join([definition.key, *path])
            issues.append(
                Issue(where, f"audiences cannot contain each other in a circle ({chain})")
            )
    return issues


# --------------------------------------------------------------------------------- reads


def audience_exists(session: Session, key: str) -> bool:
    return session.get(Audience, key) is not None


def count_members(session: Session, key: str) -> int:
    return int(
        session.execute(
            sa.select(sa.func.count())
            .select_from(MEMBERSHIP)
            .where(MEMBERSHIP.c.audience_key == key)
        ).scalar_one()
    )


def _with_size(audience: Audience, size: int) -> Audience:
    set_committed_value(audience, "size", size)  # reported, not a change to save
    return audience


def get_audience(session: Session, key: str) -> Audience:
    """The audience with its current size; `NotFound` (field `key`) when there is none."""
    audience = session.get(Audience, key)
    if audience is None:
        raise NotFound(f"no audience {key!r}", field="key")
    return _with_size(audience, count_members(session, key))


def list_audiences(session: Session) -> list[Audience]:
    """Every audience by key, each with its current size."""
    sizes = dict(
        session.execute(
            sa.select(MEMBERSHIP.c.audience_key, sa.func.count()).group_by(
                MEMBERSHIP.c.audience_key
            )
        ).all()
    )
    audiences = session.exec(select(Audience).order_by(col(Audience.key))).all()
    return [_with_size(a, int(sizes.get(a.key, 0))) for a in audiences]


def member_ids(
    session: Session, key: str, *, after: str | None = None, limit: int = 100
) -> list[str]:
    """Profile ids of the members in id order, the page after `after` (keyset paging)."""
    if not audience_exists(session, key):
        raise NotFound(f"no audience {key!r}", field="key")
    if not 1 <= limit <= MAX_MEMBER_PAGE:
        raise Unprocessable(f"limit must be 1 to {MAX_MEMBER_PAGE}", field="limit")
    stmt = sa.select(MEMBERSHIP.c.profile_id).where(MEMBERSHIP.c.audience_key == key)
    if after:
        stmt = stmt.where(MEMBERSHIP.c.profile_id > after)
    return list(session.execute(stmt.order_by(MEMBERSHIP.c.profile_id).limit(limit)).scalars())


def profile_audiences(session: Session, profile_id: str) -> list[str]:
    """Keys of the audiences the profile is in now, sorted."""
    return sorted(memberships_of(session, profile_id))


# --------------------------------------------------------------------------------- writes


def create_audience(
    session: Session, definition: AudienceDefinition, *, now: dt.datetime
) -> Audience:
    """Check, save and compute the members (see the module docstring)."""
    issues = check_definition(session, definition)
    if issues:
        raise AudienceInvalid(issues)
    if session.get(Audience, definition.key) is not None:
        raise Conflict(f"audience {definition.key!r} exists already", field="key")
    audience = Audience(
        key=definition.key,
        name=definition.name,
        description=definition.description,
        condition=definition.condition,
        canvas=definition.canvas.model_dump(mode="json"),
        trigger_existing=definition.trigger_existing,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(audience)
    session.flush()
    _recompute(
        session,
        audience,
        now=now,
        cause=_cause(audience),
        emit_entered=definition.trigger_existing,
        emit_exited=False,
    )
    audiences_changed()
    return audience


def update_audience(
    session: Session, key: str, definition: AudienceDefinition, *, now: dt.datetime
) -> Audience:
    """Save a changed definition; a new condition recomputes the members and emits the
    differences, then those of the audiences that name this one."""
    audience = session.get(Audience, key)
    if audience is None:
        raise NotFound(f"no audience {key!r}", field="key")
    if definition.key != key:
        raise Unprocessable(f"the definition's key must be {key!r}", field="key")
    issues = check_definition(session, definition)
    if issues:
        raise AudienceInvalid(issues)
    changed = audience.condition != definition.condition
    audience.name = definition.name
    audience.description = definition.description
    audience.canvas = definition.canvas.model_dump(mode="json")
    audience.trigger_existing = definition.trigger_existing
    audience.updated_at = now
    if changed:
        audience.condition = definition.condition
        audience.version += 1
    session.add(audience)
    session.flush()
    if changed:
        cause = _cause(audience)
        _recompute(session, audience, now=now, cause=cause, emit_entered=True, emit_exited=True)
        _recompute_users(session, key, now=now, cause=cause)
    audiences_changed()
    return _with_size(audience, count_members(session, key))


def delete_audience(session: Session, key: str) -> None:
    """Remove the audience, its members and rechecks; no events (see the module docstring).
    `Conflict` naming the audience that still names it."""
    audience = session.get(Audience, key)
    if audience is None:
        raise NotFound(f"no audience {key!r}", field="key")
    users = [
        other
        for other, condition in session.execute(
            sa.select(AUDIENCE.c.key, AUDIENCE.c.condition)
        ).all()
        if other != key and key in _references(condition)
    ]
    if users:
        raise Conflict(
            f"audience {key!r} is used by audience {users[0]!r}"
            + (f" and {len(users) - 1} more" if len(users) > 1 else ""),
            field="key",
        )
    conn = session.connection()
    conn.execute(MEMBERSHIP.delete().where(MEMBERSHIP.c.audience_key == key))
    conn.execute(RECHECK.delete().where(RECHECK.c.audience_key == key))
    session.delete(audience)
    session.flush()
    audiences_changed()


class AudienceEraser:
    """GDPR erase: the profile's memberships and rechecks go (sizes are counts, so they follow);
    no event is emitted for an erased person."""

    name = "audiences"

    def erase(self, session: Session, profile_id: str) -> None:
        from rejse.audiences.membership import forget_profile

        forget_profile(session.connection(), profile_id)

    async def cancel_running(self, profile_id: str) -> None:
        return None  # nothing runs for a membership


# --------------------------------------------------------------------------------- recompute


def _cause(audience: Audience) -> str:
    return f"{audience.key}.v{audience.version}@{stamp_of(audience.created_at)}"


RESTATE_AFTER = 10_000  # membership changes after which a recompute refreshes the statistics


def _recompute(
    session: Session,
    audience: Audience,
    *,
    now: dt.datetime,
    cause: str,
    emit_entered: bool,
    emit_exited: bool,
) -> tuple[int, int]:
    """Members of `audience` from the profiles' data as of `now`: one keyset-paged pass of
    the compiled condition over the live profiles in id order (`membership_pages`), each page
    diffed against the membership rows of its id range: insert the new members, delete the
    ones who no longer match (gone and erased profiles too), write the rechecks of the page
    (`next_change` of each profile from the page's own columns), store the events asked for.
    Returns (entered, exited)."""
    conn = session.connection()
    key, condition = audience.key, audience.condition
    conn.execute(RECHECK.delete().where(RECHECK.c.audience_key == key))
    entered = exited = 0
    previous = ""
    for page in membership_pages(session, condition, now=now, size=PAGE):
        matched = {pid for pid, inside, _ in page.rows if inside}
        in_range = sa.select(MEMBERSHIP.c.profile_id).where(
            MEMBERSHIP.c.audience_key == key, MEMBERSHIP.c.profile_id > previous
        )
        if page.upto is not None:
            in_range = in_range.where(MEMBERSHIP.c.profile_id <= page.upto)
        members = set(conn.execute(in_range).scalars())
        joining = sorted(matched - members)
        leaving = sorted(members - matched)
        insert_rows(conn, MEMBERSHIP, key, [(pid, now) for pid in joining], "entered_at")
        if leaving:
            conn.execute(
                MEMBERSHIP.delete().where(
                    MEMBERSHIP.c.audience_key == key, MEMBERSHIP.c.profile_id.in_(leaving)
                )
            )
        events: list[tuple[str, Change]] = []
        if emit_entered:
            events += [(pid, Change(key, ENTERED)) for pid in joining]
        if emit_exited and leaving:  # a gone or erased profile leaves silently
            live = set(
                conn.execute(
                    sa.select(PROFILE.c.id).where(
                        PROFILE.c.id.in_(leaving), PROFILE.c.erased_at.is_(None)
                    )
                ).scalars()
            )
            events += [(pid, Change(key, EXITED)) for pid in leaving if pid in live]
        emit(conn, events, cause=cause, at=now)
        entered, exited = entered + len(joining), exited + len(leaving)
        set_rechecks(conn, key, list(_next_changes(condition, page, now=now)))
        if page.upto is not None:
            previous = page.upto
    if conn.dialect.name == "postgresql" and entered + exited >= RESTATE_AFTER:
        # Thousands of rows in one go: without fresh statistics the planner takes the audience
        # for a few rows, and member pages and exports sort the whole rest of it per page until
        # autovacuum comes by. ANALYZE counts this transaction's own new rows.
        conn.execute(sa.text("ANALYZE audience_membership, audience_recheck"))
    audience.size = count_members(session, key)
    audience.computed_at = now
    session.add(audience)
    session.flush()
    return entered, exited


def _next_changes(
    condition: dict[str, Any], page: Page, *, now: dt.datetime
) -> Iterator[tuple[str, dt.datetime]]:
    """(profile id, next recheck) of the page's profiles that time alone can change."""
    for pid, _, timed in page.rows:
        if timed is None:
            continue
        due = next_change(condition, cast(Facts, timed), now=now)
        if due is not None:
            yield pid, max(due, now + MIN_RECHECK)


def _recompute_users(session: Session, key: str, *, now: dt.datetime, cause: str) -> None:
    """Recompute the audiences that name `key`, directly or through others, after it."""
    index = load_index(session)
    users: set[str] = set()
    todo = [key]
    while todo:
        for user in index.dependents.get(todo.pop(), ()):
            if user not in users:
                users.add(user)
                todo.append(user)
    for user in dependency_order(index.audiences):
        if user in users:
            row = session.get(Audience, user)
            if row is not None:
                _recompute(session, row, now=now, cause=cause, emit_entered=True, emit_exited=True)
