"""Identity resolution and merge (spec section 3), deterministic and framework-free.

Rules (see docs/profiles.md):
- Identifiers of an event: userId -> user_id, anonymousId -> anonymous_id, traits.email/phone,
  context.externalIds [{type, id}], alias previousId (an existing user_id or anonymous_id).
  Blocked values (null, anonymous, -1, 0, ...) are ignored.
- They are visited in priority order user_id > email > the rest. The first known owner anchors
  the event; every other owner is merged into the group, unless it carries a different user_id
  (one user_id per profile: such a profile is left alone and its identifier stays with it).
- The survivor of a merge is the oldest profile (created first; ties: smaller id). Events,
  identifiers, consents and timeline entries move to it; counters are summed; traits are
  combined key by key, the more recently updated profile winning a conflict.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from rejse.db import utcnow
from rejse.events.ids import new_id
from rejse.metrics import PROFILE_MERGES
from rejse.models.events import Event
from rejse.models.profiles import (
    Consent, ConsentChangeRecord, ErasedIdentifier, Profile, ProfileIdentifier, ProfileMerge,
)
from rejse.profiles import identifiers as ident
from rejse.timeline import add_entry, move_entries

PROFILE = Profile.__table__  # type: ignore[attr-defined]
IDENT = ProfileIdentifier.__table__  # type: ignore[attr-defined]
EVENT = Event.__table__  # type: ignore[attr-defined]
STAGES = ("subscriber", "lead", "aql", "sql", "opportunity", "customer")
MY_COLUMNS = ("traits", "locale", "timezone", "event_count", "first_seen_at", "last_seen_at",
              "updated_at")
COUNTER_COLUMNS = MY_COLUMNS[1:]


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
    ctx_traits = context.get("traits") if isinstance(context.get("traits"), dict) else {}
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


class IdentityIndex:
    """Per-batch cache of identifier owners and profile rows. Profile column updates are held
    in memory and written by `flush()` (before merges, subscribers and commit)."""

    def __init__(self, session: Session, *, secret: str) -> None:
        self.session = session
        self.conn = session.connection()
        self.secret = secret
        self.owner: dict[tuple[str, str], str | None] = {}   # None: known to be unowned
        self.new_profiles: list[dict[str, Any]] = []
        self.new_identifiers: list[dict[str, Any]] = []
        self.user_id: dict[str, str | None] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        self.dirty: set[str] = set()
        self.traits_dirty: set[str] = set()
        self.tombstones_exist = self.conn.execute(
            sa.select(sa.literal(1)).select_from(ErasedIdentifier).limit(1)).first() is not None

    # ---------------------------------------------------------------- loading
    def preload(self, idents: Iterable[list[tuple[str, str]]]) -> None:
        """Load the owners of these identifiers (one query per 500) and their profiles."""
        wanted = {tv for ids in idents for tv in ids} - set(self.owner)
        wanted_list = list(wanted)
        for i in range(0, len(wanted_list), 500):
            chunk = wanted_list[i:i + 500]
            for tv in chunk:
                self.owner[tv] = None
            for type_, value, pid in self.conn.execute(
                    sa.select(IDENT.c.type, IDENT.c.value, IDENT.c.profile_id)
                    .where(sa.tuple_(IDENT.c.type, IDENT.c.value).in_(chunk))):
                self.owner[(type_, value)] = pid
        self.load_profiles({pid for pid in self.owner.values() if pid is not None})

    def load_profiles(self, ids: set[str]) -> None:
        missing = [pid for pid in ids if pid not in self.profiles]
        for i in range(0, len(missing), 500):
            chunk = missing[i:i + 500]
            cols = [PROFILE.c.id, PROFILE.c.created_at, PROFILE.c.erased_at,
                    *(PROFILE.c[name] for name in MY_COLUMNS)]
            for r in self.conn.execute(sa.select(*cols).where(PROFILE.c.id.in_(chunk))):
                self.profiles[r.id] = dict(r._mapping)
                self.user_id.setdefault(r.id, None)
            for pid, value in self.conn.execute(
                    sa.select(IDENT.c.profile_id, IDENT.c.value)
                    .where(IDENT.c.type == "user_id", IDENT.c.profile_id.in_(chunk))):
                self.user_id[pid] = value

    def profile(self, pid: str) -> dict[str, Any] | None:
        if pid not in self.profiles:
            self.load_profiles({pid})
        return self.profiles.get(pid)

    def lookup(self, tv: tuple[str, str]) -> str | None:
        if tv not in self.owner:
            found = self.conn.execute(sa.select(IDENT.c.profile_id).where(
                IDENT.c.type == tv[0], IDENT.c.value == tv[1])).scalar()
            if found is None:
                return None
            self.owner[tv] = found
        return self.owner[tv]

    # ---------------------------------------------------------------- writing
    def flush(self) -> None:
        if self.new_profiles:
            self.conn.execute(PROFILE.insert(), self.new_profiles)
            self.new_profiles = []
        if self.new_identifiers:
            self.conn.execute(IDENT.insert(), self.new_identifiers)
            self.new_identifiers = []
        if not self.dirty:
            return
        # Traits (JSON) are written only for profiles whose traits changed in this batch.
        for cols, pids in ((MY_COLUMNS, self.dirty & self.traits_dirty),
                           (COUNTER_COLUMNS, self.dirty - self.traits_dirty)):
            params = [{"_id": pid, **{c: self.profiles[pid][c] for c in cols}}
                      for pid in sorted(pids) if pid in self.profiles]
            if params:
                self.conn.execute(PROFILE.update().where(PROFILE.c.id == sa.bindparam("_id"))
                                  .values({c: sa.bindparam(c) for c in cols}), params)
        self.dirty.clear()
        self.traits_dirty.clear()

    def create_profile(self, at: dt.datetime) -> str:
        pid = new_id("prf")
        row = {"id": pid, "traits": {}, "locale": None, "timezone": None, "lifecycle_stage": None,
               "lead_score": 0.0, "event_count": 0, "first_seen_at": None, "last_seen_at": None,
               "created_at": at, "updated_at": at, "erased_at": None}
        self.new_profiles.append(row)
        self.profiles[pid] = {k: row[k] for k in ("id", "created_at", "erased_at", *MY_COLUMNS)}
        self.user_id[pid] = None
        return pid

    def attach(self, pid: str, tv: tuple[str, str], at: dt.datetime) -> None:
        self.new_identifiers.append({"profile_id": pid, "type": tv[0], "value": tv[1],
                                     "created_at": at})
        self.owner[tv] = pid
        if tv[0] == "user_id":
            self.user_id[pid] = tv[1]

    def erased_before(self, ids: Sequence[tuple[str, str]], timestamp: dt.datetime) -> bool:
        """True when an identifier was erased after this event happened (an old event re-sent:
        it must not bring erased data back)."""
        if not self.tombstones_exist or not ids:
            return False
        digests = [ident.tombstone(self.secret, t, v) for t, v in ids]
        rows = self.conn.execute(sa.select(ErasedIdentifier.erased_at)  # type: ignore[call-overload]
                                 .where(ErasedIdentifier.digest.in_(digests))).all()  # type: ignore[attr-defined]
        return any(_aware(r[0]) >= timestamp for r in rows)

    # ---------------------------------------------------------------- resolution
    def resolve(self, row: dict[str, Any], *, event_id: str,
                ids: list[tuple[str, str]] | None = None) -> tuple[str, list[str]]:
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
            self.profile(owner)
            owner_uid = self.user_id.get(owner)
            if owner_uid and group_uid and owner_uid != group_uid:
                continue   # one user_id per profile: leave that profile alone
            group.append(owner)
            group_uid = group_uid or owner_uid
        if not group:
            group.append(self.create_profile(at))
        survivor = min(group, key=lambda pid: (self.profiles[pid]["created_at"], pid))
        merged = [pid for pid in group if pid != survivor]
        if merged:
            self.flush()
            for pid in merged:
                self.merge(into=survivor, from_=pid, event_id=event_id,
                           reason=", ".join(sorted({t for t, _ in ids})))
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
        self.profiles.pop(from_, None)
        self.user_id.pop(from_, None)
        self.dirty.discard(from_)
        self.traits_dirty.discard(from_)
        self.profiles.pop(into, None)       # reload the combined row
        self.load_profiles({into})


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def combine_traits(survivor: dict[str, Any], other: dict[str, Any], *, other_newer: bool) -> dict[str, Any]:
    """Key by key: a value only one side has is kept; on conflict the newer profile wins;
    None never overwrites a value."""
    out = dict(survivor)
    for key, value in other.items():
        if value is None:
            continue
        if key not in out or out[key] is None or other_newer:
            out[key] = value
    return out


def merge_profiles(session: Session, *, into: str, from_: str, event_id: str | None,
                   reason: str) -> None:
    """Fold profile `from_` into `into` in the session's transaction and record it."""
    survivor = session.get(Profile, into, populate_existing=True)
    other = session.get(Profile, from_, populate_existing=True)
    if survivor is None or other is None or into == from_:
        return
    conn = session.connection()
    other_newer = (other.updated_at or other.created_at) > (survivor.updated_at or survivor.created_at)
    survivor.traits = combine_traits(dict(survivor.traits or {}), dict(other.traits or {}),
                                     other_newer=other_newer)
    survivor.locale = (other.locale if other_newer else None) or survivor.locale or other.locale
    survivor.timezone = (other.timezone if other_newer else None) or survivor.timezone or other.timezone
    survivor.event_count = (survivor.event_count or 0) + (other.event_count or 0)
    survivor.first_seen_at = min((t for t in (survivor.first_seen_at, other.first_seen_at) if t),
                                 default=None)
    survivor.last_seen_at = max((t for t in (survivor.last_seen_at, other.last_seen_at) if t),
                                default=None)
    survivor.lead_score = max(survivor.lead_score or 0.0, other.lead_score or 0.0)
    stages = [s for s in (survivor.lifecycle_stage, other.lifecycle_stage) if s]
    if stages:
        survivor.lifecycle_stage = max(stages, key=lambda s: STAGES.index(s) if s in STAGES else -1)
    survivor.updated_at = utcnow()
    session.add(survivor)
    session.flush()
    conn.execute(IDENT.update().where(IDENT.c.profile_id == from_).values(profile_id=into))
    conn.execute(EVENT.update().where(EVENT.c.profile_id == from_).values(profile_id=into))
    for row in list(session.exec(sa.select(Consent).where(Consent.profile_id == from_)).scalars()):
        mine = session.get(Consent, (into, row.channel), populate_existing=True)
        if mine is None or row.at > mine.at:
            if mine is not None:
                mine.status, mine.source, mine.at = row.status, row.source, row.at
                session.add(mine)
            else:
                session.add(Consent(profile_id=into, channel=row.channel, status=row.status,
                                    source=row.source, at=row.at))
        session.delete(row)
    conn.execute(sa.update(ConsentChangeRecord).where(ConsentChangeRecord.profile_id == from_)
                 .values(profile_id=into))
    move_entries(session, from_profile=from_, to_profile=into)
    session.flush()
    conn.execute(sa.update(ProfileMerge).where(ProfileMerge.into_profile_id == from_)
                 .values(into_profile_id=into))
    session.delete(other)
    session.add(ProfileMerge(from_profile_id=from_, into_profile_id=into, event_id=event_id,
                             reason=reason[:200]))
    PROFILE_MERGES.inc()
    add_entry(session, profile_id=into, kind="merge",
              summary=f"merged profile {from_} (shared identifiers: {reason})"[:500],
              data={"from_profile_id": from_, "event_id": event_id, "identifier_types": reason})
    session.flush()
