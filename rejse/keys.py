"""API key service: create (shown once), authenticate, list, revoke, bootstrap."""

from __future__ import annotations

import threading
import time

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from rejse.db import utcnow
from rejse.errors import DomainError
from rejse.models.auth import ApiKey
from rejse.models.leads import SalesRep
from rejse.roles import Role, generate_key, hash_key, key_id


def create_key(
    session: Session,
    *,
    name: str,
    role: Role,
    raw_key: str | None = None,
    rep_id: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key (flushed) and its raw value. `rep_id` binds a sales key to one rep: it then
    sees and changes only that rep's leads."""
    if rep_id is not None:
        if role is not Role.sales:
            raise DomainError(
                "only a sales key can be bound to a rep", field="rep_id", status_code=422
            )
        if session.get(SalesRep, rep_id) is None:
            raise DomainError(f"no rep with id {rep_id!r}", field="rep_id", status_code=422)
    raw = raw_key or generate_key()
    row = ApiKey(id=key_id(raw), name=name, role=role.value, key_hash=hash_key(raw), rep_id=rep_id)
    session.add(row)
    session.flush()
    return row, raw


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.created_at))))


def revoke_key(session: Session, *, key_id: str) -> ApiKey | None:
    row = session.get(ApiKey, key_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
    return row


def ensure_bootstrap_key(session: Session, *, raw_key: str) -> None:
    """Make sure an admin key with exactly this value exists (REJSE_BOOTSTRAP_ADMIN_KEY)."""
    digest = hash_key(raw_key)
    existing = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if existing is None:
        create_key(session, name="bootstrap admin", role=Role.admin, raw_key=raw_key)
    elif existing.revoked_at is not None or existing.role != Role.admin:
        existing.revoked_at = None
        existing.role = Role.admin.value
        session.add(existing)


def ensure_admin_access(session: Session, *, bootstrap_key: str | None) -> str | None:
    """Start-up rule of `rejse up`: the bootstrap key (if configured) is an active admin key,
    and when no active admin key exists at all a new one is created. Returns that new raw key,
    which the caller shows once, else None."""
    if bootstrap_key:
        ensure_bootstrap_key(session, raw_key=bootstrap_key)
        session.flush()
    active_admin = session.exec(
        select(ApiKey.id).where(ApiKey.role == Role.admin.value, ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if active_admin is not None:
        return None
    _, raw = create_key(session, name="first admin (rejse up)", role=Role.admin)
    return raw


class KeyCache:
    """Resolves a raw key to (key id, role) with a short TTL, so ingestion does not hit the
    database for every request. Revocation takes effect within `ttl` seconds. `rep_of` answers
    the rep a resolved key is bound to (a binding never changes, so it is kept until `forget`)."""

    def __init__(self, engine: Engine, ttl: float = 5.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, tuple[str, Role] | None]] = {}
        self._reps: dict[str, str | None] = {}

    def resolve(self, raw_key: str) -> tuple[str, Role] | None:
        digest = hash_key(raw_key)
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with Session(self._engine) as session:
            row = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
            value = (row.id, Role(row.role)) if row is not None and row.revoked_at is None else None
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
                self._reps.clear()
            self._items[digest] = (now + self._ttl, value)
            if row is not None:
                self._reps[row.id] = row.rep_id
        return value

    def rep_of(self, key_id: str) -> str | None:
        """The rep the key `key_id` is bound to, None when it is not bound (or unknown)."""
        with self._lock:
            if key_id in self._reps:
                return self._reps[key_id]
        with Session(self._engine) as session:
            row = session.get(ApiKey, key_id)
            rep = row.rep_id if row is not None else None
        with self._lock:
            self._reps[key_id] = rep
        return rep

    def forget(self) -> None:
        with self._lock:
            self._items.clear()
            self._reps.clear()
