"""The per-profile customer-data flags the prefill counts (`maturity_profile_data`), kept by
the event processor as events arrive, so the prefill is three counts over one narrow table.

A profile's row says whether it carries structural data, transaction data and activity data,
by the rules of `rejse.maturity.prefill` (which also holds `recount`, the same figures from the
profiles and events themselves). `FlagsSubscriber` runs in the processor's transaction after
customer value (it reads the order count that left):
- structural follows the profile's traits and groups: recomputed on every event that can change
  them (identify, group, an event carrying traits, a merge);
- transactional: the profile's order count is above zero, set on its first counted order;
- activity: set on the first activity event (page, screen, the browsing and app events).

A merge ORs the merged-away profiles' flags into the survivor's and deletes their rows; a GDPR
erase deletes the profile's row (`FlagsEraser`). Traits written outside the processor (the
profile API, a journey's update_profile step) set the structural flag in their own transaction
(`follow_traits`); `rebuild` sets every row from the stored data (after an upgrade)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from rejse.contracts import ProcessedEvent
from rejse.maturity.prefill import (
    ACTIVITY_CALLS,
    ACTIVITY_EVENTS,
    STRUCTURAL_TRAITS,
    activity_sql,
    structural_sql,
)
from rejse.models.maturity import MaturityProfileData
from rejse.models.profiles import Profile

ORDER_COMPLETED = "Order Completed"  # rejse.profiles.value.ORDER_COMPLETED
FLAGS = MaturityProfileData.__table__  # type: ignore[attr-defined]
_ACTIVITY = frozenset(ACTIVITY_EVENTS)


def _has_value(document: Any, path: str) -> bool:
    """Like the prefill's SQL: a value (not null, not '') at the dotted path of a JSON object."""
    node = document
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return node is not None and node != ""


def structural(traits: Any, groups: Any) -> bool:
    """The profile carries size, industry or region itself or through a group it belongs to."""
    if any(_has_value(traits, p) for p in STRUCTURAL_TRAITS):
        return True
    if isinstance(groups, Mapping):
        for group in groups.values():
            if isinstance(group, Mapping) and any(
                _has_value(group, "traits." + p) for p in STRUCTURAL_TRAITS
            ):
                return True
    return False


def is_activity(event: ProcessedEvent) -> bool:
    return event.type in ACTIVITY_CALLS or (event.type == "track" and event.event in _ACTIVITY)


def _may_change_traits(event: ProcessedEvent) -> bool:
    return event.type in ("identify", "group") or bool(event.traits) or bool(event.merged_from)


KNOWN_LIMIT = 200_000  # profile ids remembered per flag before the memory starts afresh
_PENDING = "maturity_flags_pending"  # session.info: (profile id, flags) seen, not committed yet


class FlagsSubscriber:
    """Keeps the flags in the processor's transaction. It remembers (per process, at most
    `KNOWN_LIMIT` ids a flag) the profiles whose committed row already has the transactional
    or activity flag: those flags only ever go from false to true (a row goes away only with
    its profile, by an erase or a merge, and such a profile gets no more events), so a page
    view of a profile known to be flagged needs no read at all."""

    name = "maturity_flags"

    def __init__(self) -> None:
        self._known: dict[str, set[str]] = {"transactional": set(), "activity": set()}

    def _remember(self, session: Session, row: MaturityProfileData) -> None:
        """Remember the row's flags once its transaction commits: the row may have been set
        (and flushed) in this very transaction, which may still roll back."""
        flagged = [flag for flag in self._known if getattr(row, flag)]
        if not flagged:
            return
        pending = session.info.get(_PENDING)
        if pending is None:
            pending = session.info[_PENDING] = []
            sa.event.listen(session, "after_commit", self._promote, once=True)
        pending.append((row.profile_id, flagged))

    def _promote(self, session: Session) -> None:
        for profile_id, flagged in session.info.pop(_PENDING, ()):
            for flag in flagged:
                known = self._known[flag]
                if len(known) >= KNOWN_LIMIT:
                    known.clear()
                known.add(profile_id)

    def wants(self, session: Session, event: ProcessedEvent) -> bool:
        """Only what can change the profile's row: most events of a known customer (a page
        view of a profile already flagged for activity) are not wanted, so the processor keeps
        writing those in one go."""
        if _may_change_traits(event):
            return True
        order = event.type == "track" and event.event == ORDER_COMPLETED
        activity = is_activity(event)
        if not (order or activity):
            return False
        pid = event.profile_id
        if (not order or pid in self._known["transactional"]) and (
            not activity or pid in self._known["activity"]
        ):
            return False
        with session.no_autoflush:
            row = session.get(MaturityProfileData, pid)
        if row is None:
            return True
        self._remember(session, row)
        return (order and not row.transactional) or (activity and not row.activity)

    def apply(
        self, session: Session, event: ProcessedEvent
    ) -> Sequence[tuple[str, dict[str, Any]]]:
        if not self.wants(session, event):
            return []
        profile = session.get(Profile, event.profile_id, populate_existing=True)
        if profile is None or profile.erased_at is not None:
            return []
        row = session.get(MaturityProfileData, profile.id)
        if row is None:
            row = MaturityProfileData(profile_id=profile.id)
        activity = row.activity or is_activity(event)
        for gone in event.merged_from:
            old = session.get(MaturityProfileData, gone)
            if old is not None:
                activity = activity or old.activity
                session.delete(old)
        row.structural = structural(profile.traits, profile.groups)
        row.transactional = (profile.order_count or 0) > 0
        row.activity = activity
        session.add(row)
        return []


def follow_traits(session: Session, profile: Profile) -> None:
    """The structural flag after traits were written outside the processor (the profile API,
    a journey's update_profile step), in the caller's transaction."""
    if profile.erased_at is not None:
        return
    row = session.get(MaturityProfileData, profile.id) or MaturityProfileData(
        profile_id=profile.id, transactional=(profile.order_count or 0) > 0
    )
    row.structural = structural(profile.traits, profile.groups)
    session.add(row)


class FlagsEraser:
    """GDPR erase: the profile's flags go with it (nothing runs for it here)."""

    name = "maturity_flags"

    def erase(self, session: Session, profile_id: str) -> None:
        session.execute(FLAGS.delete().where(FLAGS.c.profile_id == profile_id))

    async def cancel_running(self, profile_id: str) -> None:
        return None


def rebuild(engine: Engine) -> int:
    """Set every live profile's row from its stored traits, groups, orders and events (the
    prefill's recount rules); returns the rows written. Run it with nothing else writing."""
    with engine.begin() as conn:
        dialect = conn.dialect.name
        conn.execute(FLAGS.delete())
        conn.execute(
            sa.text(
                "INSERT INTO maturity_profile_data (profile_id, structural, transactional, "  # noqa: S608 - constant paths
                "activity) SELECT p.id, "
                f"CASE WHEN {structural_sql(dialect)} THEN true ELSE false END, "
                "p.order_count > 0, "
                f"CASE WHEN EXISTS ({activity_sql()}) THEN true ELSE false END "
                "FROM profile p WHERE p.erased_at IS NULL"
            ),
            {f"a{n}": name for n, name in enumerate(ACTIVITY_EVENTS)}
            | {f"c{n}": name for n, name in enumerate(ACTIVITY_CALLS)},
        )
        return int(conn.execute(sa.select(sa.func.count()).select_from(FLAGS)).scalar_one())
