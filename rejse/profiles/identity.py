"""Identity resolution and merge, deterministic and framework-free.

Rules (see docs/profiles.md):
- Identifiers of an event: userId -> user_id, anonymousId -> anonymous_id, traits.email/phone,
  context.externalIds [{type, id}], alias previousId (an existing user_id or anonymous_id).
  Blocked values (null, anonymous, -1, 0, ...) are ignored.
- They are visited in priority order user_id > email > the rest. The first known owner anchors
  the event; every other owner is merged into the group, unless it carries a different user_id
  (one user_id per profile: such a profile is left alone and its identifier stays with it).
- The survivor of a merge is the oldest profile (created first; ties: smaller id). Events,
  identifiers, consents and timeline entries move to it; counters are summed; traits are
  combined key by key, the more recently updated profile winning a conflict; groups are
  combined group by group (traits key by key, the more recently seen side winning).

Traits an event brings (see docs/events.md): `context.traits` on any call (Segment's "traits
of the current user"), with an identify's own `traits` winning a conflict. A `group` call's
`traits` are the group's, kept per group id in `profile.groups`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from rejse.db import driver_mark, driver_value, utcnow
from rejse.ids import new_id
from rejse.metrics import PROFILE_MERGES
from rejse.models.events import Event
from rejse.models.profiles import (
    STAGES,
    Consent,
    ConsentChangeRecord,
    ErasedIdentifier,
    Profile,
    ProfileIdentifier,
    ProfileMerge,
)
from rejse.profiles import identifiers as ident
from rejse.profiles.consent import prevails
from rejse.profiles.value import combine as combine_value
from rejse.timeline import add_entry, move_entries

PROFILE = Profile.__table__  # type: ignore[attr-defined]
MAX_GROUPS = 100  # per profile; beyond it the least recently seen group is dropped
IDENT = ProfileIdentifier.__table__  # type: ignore[attr-defined]
EVENT = Event.__table__  # type: ignore[attr-defined]


def event_identifiers(row: dict[str, Any]) -> list[tuple[str, str]]:
    """Normalised identifiers an event carries, in merge-priority order, without duplicates."""
    found: list[tuple[str, str]] = []

    def add(type_: str, value: Any) -> None:
        norm = ident.normalise(type_, value)
        if norm is not None and (type_, norm) not in found:
            found.append((type_, norm))

    add("user_id", row.get("user_id"))
    add("anonymous_id", row.get("anonymous_id"))
    traits = row.get("traits") or {}
    context = row.get("context") or {}
    given = context.get("traits")
    ctx_traits: dict[str, Any] = given if isinstance(given, dict) else {}
    for key in ident.TRAIT_IDENTIFIERS:
        add(key, traits.get(key) if traits.get(key) is not None else ctx_traits.get(key))
    external = context.get("externalIds")
    if isinstance(external, list):
        for item in external[:20]:
            if isinstance(item, dict) and isinstance(item.get("type"), str):
                type_ = item["type"].strip().lower()
                if 0 < len(type_) <= 32 and type_.replace("_", "").isalnum():
                    add(type_, item.get("id"))
    found.sort(key=lambda tv: ident.priority(tv[0]))
    return found


def user_traits(row: dict[str, Any]) -> dict[str, Any]:
    """The person's traits an event carries: `context.traits` of any call, and an identify's
    top-level `traits`, which win a conflict (internal events carry none)."""
    if row["type"] == "internal":
        return {}
    given = (row.get("context") or {}).get("traits")
    from_context: dict[str, Any] = given if isinstance(given, dict) else {}
    if row["type"] != "identify":
        return from_context
    own: dict[str, Any] = row.get("traits") or {}
    return {**from_context, **own} if from_context else own


_ABSENT = object()


def same_value(a: Any, b: Any) -> bool:
    """Whether two trait values are the same as the condition language compares them: of
    the same JSON type all the way down (1, 1.0 and true differ; dicts by key, not order)."""
    if a is _ABSENT or b is _ABSENT:
        return a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def changes_profile_data(row: dict[str, Any]) -> bool:
    """Whether folding this event writes the profile's traits or groups (read them first)."""
    return bool(user_traits(row)) or (row["type"] == "group" and bool(row.get("group_id")))


def _when(value: Any) -> dt.datetime | None:
    try:
        return _aware(dt.datetime.fromisoformat(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _later(a: Any, b: Any) -> bool:
    """Whether ISO time `a` is after ISO time `b` (an unreadable time counts as the oldest)."""
    ta, tb = _when(a), _when(b)
    return ta is not None and (tb is None or ta > tb)


def fold_group(
    groups: dict[str, Any], group_id: str, traits: dict[str, Any], at: dt.datetime
) -> None:
    """One group call: set the group's traits (a None value removes one), widen its seen
    times, and keep at most `MAX_GROUPS` groups (the least recently seen one goes)."""
    iso = at.isoformat()
    entry = groups.get(group_id)
    if not isinstance(entry, dict):
        entry = {"traits": {}, "first_seen_at": iso, "last_seen_at": iso}
    first, last = entry.get("first_seen_at") or iso, entry.get("last_seen_at") or iso
    current = dict(entry.get("traits") or {})
    for key, value in traits.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    groups[group_id] = {
        "traits": current,
        "first_seen_at": iso if _later(first, iso) else first,
        "last_seen_at": iso if _later(iso, last) else last,
    }
    _cap_groups(groups)


_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


def _cap_groups(groups: dict[str, Any]) -> None:
    def seen(group_id: str) -> dt.datetime:
        entry = groups[group_id]
        return (_when(entry.get("last_seen_at")) if isinstance(entry, dict) else None) or _NEVER

    while len(groups) > MAX_GROUPS:
        del groups[min(groups, key=seen)]


def combine_groups(survivor: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Both profiles' groups; a group both have gets its traits combined key by key (the side
    that saw it more recently wins a conflict) and the wider seen times."""
    out = dict(survivor)
    for group_id, theirs in other.items():
        mine = out.get(group_id)
        if not isinstance(theirs, dict):
            continue
        if not isinstance(mine, dict):
            out[group_id] = theirs
            continue
        newer = _later(theirs.get("last_seen_at"), mine.get("last_seen_at"))
        first = (
            theirs.get("first_seen_at")
            if _later(mine.get("first_seen_at"), theirs.get("first_seen_at"))
            else mine.get("first_seen_at")
        )
        out[group_id] = {
            "traits": combine_traits(
                dict(mine.get("traits") or {}), dict(theirs.get("traits") or {}), other_newer=newer
            ),
            "first_seen_at": first,
            "last_seen_at": theirs.get("last_seen_at") if newer else mine.get("last_seen_at"),
        }
    _cap_groups(out)
    return out


class IdentityIndex:
    """Per-batch identity state: identifier owners, user ids, and the profile changes of the
    batch held in memory. Profile rows are not loaded: counters and seen-times are written with
    SQL expressions (`event_count = event_count + n`), traits are read only for profiles an
    `identify` changes, creation times only when a merge picks its survivor. `flush()` writes
    everything (before merges, subscribers and commit)."""

    def __init__(self, session: Session, *, secret: str) -> None:
        self.session = session
        self.conn = session.connection()
        self.secret = secret
        self.owner: dict[tuple[str, str], str | None] = {}  # None: known to be unowned
        self.user_id: dict[str, str | None] = {}
        self.created: dict[str, dt.datetime] = {}
        self.traits: dict[str, dict[str, Any]] = {}
        self.traits_dirty: set[str] = set()
        self.groups: dict[str, dict[str, Any]] = {}
        self.groups_dirty: set[str] = set()
        self.pending: dict[str, dict[str, Any]] = {}  # profile -> counter changes
        self.new_profiles: list[dict[str, Any]] = []
        self.new_identifiers: list[dict[str, Any]] = []
        self.tombstones_exist = (
            self.conn.execute(
                sa.select(sa.literal(1)).select_from(ErasedIdentifier).limit(1)
            ).first()
            is not None
        )

    # ---------------------------------------------------------------- loading
    def preload(self, idents: Iterable[list[tuple[str, str]]]) -> None:
        """Load the owners of these identifiers (one query per 500) and their user ids."""
        wanted = list({tv for ids in idents for tv in ids} - set(self.owner))
        owners: set[str] = set()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            for tv in chunk:
                self.owner[tv] = None
            for type_, value, pid in self.conn.execute(
                sa.select(IDENT.c.type, IDENT.c.value, IDENT.c.profile_id).where(
                    sa.tuple_(IDENT.c.type, IDENT.c.value).in_(chunk)
                )
            ):
                self.owner[(type_, value)] = pid
                owners.add(pid)
        self.load_user_ids(owners)

    def load_user_ids(self, ids: set[str]) -> None:
        missing = [pid for pid in ids if pid not in self.user_id]
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            for pid in chunk:
                self.user_id[pid] = None
            for pid, value in self.conn.execute(
                sa.select(IDENT.c.profile_id, IDENT.c.value).where(
                    IDENT.c.type == "user_id", IDENT.c.profile_id.in_(chunk)
                )
            ):
                self.user_id[pid] = value

    def lookup(self, tv: tuple[str, str]) -> str | None:
        if tv not in self.owner:
            found = self.conn.execute(
                sa.select(IDENT.c.profile_id).where(IDENT.c.type == tv[0], IDENT.c.value == tv[1])
            ).scalar()
            self.owner[tv] = found
            if found is not None:
                self.load_user_ids({found})
        return self.owner[tv]

    def created_at(self, pids: Iterable[str]) -> dict[str, dt.datetime]:
        missing = [pid for pid in pids if pid not in self.created]
        if missing:
            for pid, created in self.conn.execute(
                sa.select(PROFILE.c.id, PROFILE.c.created_at).where(PROFILE.c.id.in_(missing))
            ):
                self.created[pid] = created
        return self.created

    def prefetch_traits(self, idents: Iterable[list[tuple[str, str]]]) -> None:
        """Read in one query the traits and groups of the profiles owning these identifiers
        (those the events of this batch that bring traits or groups will change)."""
        pids = list(
            {
                pid
                for ids in idents
                for tv in ids
                if (pid := self.owner.get(tv)) is not None and pid not in self.traits
            }
        )
        for i in range(0, len(pids), 500):
            for pid, traits, groups in self.conn.execute(
                sa.select(PROFILE.c.id, PROFILE.c.traits, PROFILE.c.groups).where(
                    PROFILE.c.id.in_(pids[i : i + 500])
                )
            ):
                self.traits[pid] = dict(traits or {})
                self.groups[pid] = dict(groups or {})

    def traits_of(self, pid: str) -> dict[str, Any]:
        if pid not in self.traits:
            self.traits[pid] = dict(
                self.conn.execute(sa.select(PROFILE.c.traits).where(PROFILE.c.id == pid)).scalar()
                or {}
            )
        return self.traits[pid]

    def groups_of(self, pid: str) -> dict[str, Any]:
        if pid not in self.groups:
            self.groups[pid] = dict(
                self.conn.execute(sa.select(PROFILE.c.groups).where(PROFILE.c.id == pid)).scalar()
                or {}
            )
        return self.groups[pid]

    # ---------------------------------------------------------------- folding an event
    def fold(self, pid: str, row: dict[str, Any]) -> list[str]:
        """Counters, seen-times, locale/time zone, traits and groups of one event; returns the
        top-level traits whose value the event changed (set, replaced or removed), sorted."""
        ts: dt.datetime = row["timestamp"]
        p = self.pending.get(pid)
        if p is None:
            p = self.pending[pid] = {
                "n": 0,
                "first": ts,
                "last": ts,
                "locale": None,
                "timezone": None,
            }
        p["n"] += 1
        p["first"] = min(p["first"], ts)
        p["last"] = max(p["last"], ts)
        traits = user_traits(row)
        context = row["context"] or {}
        for column, limit in (("locale", 35), ("timezone", 64)):
            value = traits.get(column) or context.get(column)
            if isinstance(value, str) and 0 < len(value) <= limit:
                p[column] = value
        changed: list[str] = []
        if traits:
            current = self.traits_of(pid)
            for key, value in traits.items():
                if not same_value(current.get(key, _ABSENT), _ABSENT if value is None else value):
                    changed.append(key)
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value
            self.traits_dirty.add(pid)
        if row["type"] == "group" and row.get("group_id"):
            fold_group(self.groups_of(pid), row["group_id"], row["traits"] or {}, ts)
            self.groups_dirty.add(pid)
        return sorted(changed)

    # ---------------------------------------------------------------- writing
    def flush(self) -> None:
        if self.new_profiles:
            self.conn.execute(PROFILE.insert(), self.new_profiles)
            self.new_profiles = []
        if self.new_identifiers:
            self.conn.execute(IDENT.insert(), self.new_identifiers)
            self.new_identifiers = []
        if self.pending:
            # Counters and seen-times as SQL expressions: no profile row is read.
            m, now = driver_mark(self.conn), driver_value(self.conn, utcnow())
            sql = (
                f"UPDATE profile SET event_count = event_count + {m}, "  # noqa: S608 - placeholders only; values are bound
                f"first_seen_at = CASE WHEN first_seen_at IS NULL OR first_seen_at > {m} "
                f"THEN {m} ELSE first_seen_at END, "
                f"last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < {m} "
                f"THEN {m} ELSE last_seen_at END, "
                f"locale = COALESCE({m}, locale), timezone = COALESCE({m}, timezone), "
                f"updated_at = {m} WHERE id = {m}"
            )
            params = []
            for pid, p in sorted(self.pending.items()):
                first = driver_value(self.conn, p["first"])
                last = driver_value(self.conn, p["last"])
                params.append(
                    (p["n"], first, first, last, last, p["locale"], p["timezone"], now, pid)
                )
            self.conn.exec_driver_sql(sql, params)
            self.pending.clear()
        if self.traits_dirty:
            self.conn.execute(
                PROFILE.update()
                .where(PROFILE.c.id == sa.bindparam("_id"))
                .values(traits=sa.bindparam("traits", type_=PROFILE.c.traits.type)),
                [{"_id": pid, "traits": self.traits[pid]} for pid in sorted(self.traits_dirty)],
            )
            self.traits_dirty.clear()
        if self.groups_dirty:
            self.conn.execute(
                PROFILE.update()
                .where(PROFILE.c.id == sa.bindparam("_id"))
                .values(groups=sa.bindparam("groups", type_=PROFILE.c.groups.type)),
                [{"_id": pid, "groups": self.groups[pid]} for pid in sorted(self.groups_dirty)],
            )
            self.groups_dirty.clear()

    def create_profile(self, at: dt.datetime) -> str:
        pid = new_id("prf")
        self.new_profiles.append(
            {
                "id": pid,
                "traits": {},
                "groups": {},
                "locale": None,
                "timezone": None,
                "lifecycle_stage": None,
                "lead_score": 0.0,
                "event_count": 0,
                "first_seen_at": None,
                "last_seen_at": None,
                "created_at": at,
                "updated_at": at,
                "erased_at": None,
            }
        )
        self.user_id[pid] = None
        self.created[pid] = at
        self.traits[pid] = {}
        self.groups[pid] = {}
        return pid

    def attach(self, pid: str, tv: tuple[str, str], at: dt.datetime) -> None:
        self.new_identifiers.append(
            {"profile_id": pid, "type": tv[0], "value": tv[1], "created_at": at}
        )
        self.owner[tv] = pid
        if tv[0] == "user_id":
            self.user_id[pid] = tv[1]

    def erased_before(self, ids: Sequence[tuple[str, str]], timestamp: dt.datetime) -> bool:
        """True when an identifier was erased after this event happened (an old event re-sent:
        it must not bring erased data back)."""
        if not self.tombstones_exist or not ids:
            return False
        digests = [ident.tombstone(self.secret, t, v) for t, v in ids]
        rows = self.conn.execute(
            sa.select(col(ErasedIdentifier.erased_at)).where(
                col(ErasedIdentifier.digest).in_(digests)
            )
        ).all()
        return any(_aware(r[0]) >= timestamp for r in rows)

    # ---------------------------------------------------------------- resolution
    def resolve(
        self, row: dict[str, Any], *, event_id: str, ids: list[tuple[str, str]] | None = None
    ) -> tuple[str, list[str]]:
        """The profile this event belongs to (created if needed) and the ids merged into it."""
        at = utcnow()
        ids = list(event_identifiers(row) if ids is None else ids)
        if row.get("type") == "alias" and row.get("previous_id"):
            prev = self._previous(row["previous_id"])
            if prev is not None:
                ids.append(prev)
        group: list[str] = []
        group_uid = next((v for t, v in ids if t == "user_id"), None)
        pending: list[tuple[str, str]] = []
        for tv in ids:
            owner = self.lookup(tv)
            if owner is None:
                pending.append(tv)
                continue
            if owner in group:
                continue
            owner_uid = self.user_id.get(owner)
            if owner_uid and group_uid and owner_uid != group_uid:
                continue  # one user_id per profile: leave that profile alone
            group.append(owner)
            group_uid = group_uid or owner_uid
        if not group:
            group.append(self.create_profile(at))
        if len(group) == 1:
            survivor, merged = group[0], []
        else:
            created = self.created_at(group)
            survivor = min(group, key=lambda pid: (created[pid], pid))
            merged = [pid for pid in group if pid != survivor]
            self.flush()
            for pid in merged:
                self.merge(
                    into=survivor,
                    from_=pid,
                    event_id=event_id,
                    reason=", ".join(sorted({t for t, _ in ids})),
                )
        for tv in pending:
            if tv[0] == "user_id" and self.user_id.get(survivor) not in (None, tv[1]):
                continue
            self.attach(survivor, tv, at)
        return survivor, merged

    def _previous(self, previous_id: str) -> tuple[str, str] | None:
        for type_ in ("user_id", "anonymous_id"):
            norm = ident.normalise(type_, previous_id)
            if norm is not None and self.lookup((type_, norm)) is not None:
                return (type_, norm)
        norm = ident.normalise("anonymous_id", previous_id)
        return ("anonymous_id", norm) if norm else None

    def merge(self, *, into: str, from_: str, event_id: str | None, reason: str) -> None:
        merge_profiles(self.session, into=into, from_=from_, event_id=event_id, reason=reason)
        for tv, pid in self.owner.items():
            if pid == from_:
                self.owner[tv] = into
        self.user_id[into] = self.user_id.get(into) or self.user_id.get(from_)
        for cache in (self.user_id, self.created, self.traits, self.groups):
            cache.pop(from_, None)
        self.traits.pop(into, None)  # combined traits and groups: read again when needed
        self.groups.pop(into, None)


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def combine_traits(
    survivor: dict[str, Any], other: dict[str, Any], *, other_newer: bool
) -> dict[str, Any]:
    """Key by key: a value only one side has is kept; on conflict the newer profile wins;
    None never overwrites a value."""
    out = dict(survivor)
    for key, value in other.items():
        if value is None:
            continue
        if key not in out or out[key] is None or other_newer:
            out[key] = value
    return out


def merge_profiles(
    session: Session, *, into: str, from_: str, event_id: str | None, reason: str
) -> None:
    """Fold profile `from_` into `into` in the session's transaction and record it."""
    survivor = session.get(Profile, into, populate_existing=True)
    other = session.get(Profile, from_, populate_existing=True)
    if survivor is None or other is None or into == from_:
        return
    conn = session.connection()
    other_newer = (other.updated_at or other.created_at) > (
        survivor.updated_at or survivor.created_at
    )
    survivor.traits = combine_traits(
        dict(survivor.traits or {}), dict(other.traits or {}), other_newer=other_newer
    )
    survivor.groups = combine_groups(dict(survivor.groups or {}), dict(other.groups or {}))
    survivor.locale = (other.locale if other_newer else None) or survivor.locale or other.locale
    survivor.timezone = (
        (other.timezone if other_newer else None) or survivor.timezone or other.timezone
    )
    survivor.event_count = (survivor.event_count or 0) + (other.event_count or 0)
    survivor.first_seen_at = min(
        (t for t in (survivor.first_seen_at, other.first_seen_at) if t), default=None
    )
    survivor.last_seen_at = max(
        (t for t in (survivor.last_seen_at, other.last_seen_at) if t), default=None
    )
    survivor.lead_score = max(survivor.lead_score or 0.0, other.lead_score or 0.0)
    combine_value(survivor, other)
    stages = [s for s in (survivor.lifecycle_stage, other.lifecycle_stage) if s]
    if stages:
        survivor.lifecycle_stage = max(stages, key=lambda s: STAGES.index(s) if s in STAGES else -1)
    survivor.updated_at = utcnow()
    session.add(survivor)
    session.flush()
    conn.execute(IDENT.update().where(IDENT.c.profile_id == from_).values(profile_id=into))
    conn.execute(EVENT.update().where(EVENT.c.profile_id == from_).values(profile_id=into))
    for row in list(session.exec(select(Consent).where(col(Consent.profile_id) == from_))):
        mine = session.get(Consent, (into, row.channel), populate_existing=True)
        if prevails(source=row.source, at=row.at, over=mine, ties=False):
            if mine is not None:
                mine.status, mine.source, mine.at = row.status, row.source, row.at
                session.add(mine)
            else:
                session.add(
                    Consent(
                        profile_id=into,
                        channel=row.channel,
                        status=row.status,
                        source=row.source,
                        at=row.at,
                    )
                )
        session.delete(row)
    conn.execute(
        sa.update(ConsentChangeRecord)
        .where(col(ConsentChangeRecord.profile_id) == from_)
        .values(profile_id=into)
    )
    move_entries(session, from_profile=from_, to_profile=into)
    session.flush()
    conn.execute(
        sa.update(ProfileMerge)
        .where(col(ProfileMerge.into_profile_id) == from_)
        .values(into_profile_id=into)
    )
    session.delete(other)
    session.add(
        ProfileMerge(
            from_profile_id=from_, into_profile_id=into, event_id=event_id, reason=reason[:200]
        )
    )
    PROFILE_MERGES.inc()
    add_entry(
        session,
        profile_id=into,
        kind="merge",
        summary=f"merged profile {from_} (shared identifiers: {reason})"[:500],
        data={"from_profile_id": from_, "event_id": event_id, "identifier_types": reason},
    )
    session.flush()
