"""Console sessions: an API key exchanged for a session token (the browser's cookie).

- Only an active key of a role other than `ingest` signs in; the raw key is never stored.
- The token carries 256 bits; the table holds its SHA-256 (like API keys), so a copy of the
  table signs nobody in.
- Every request resolves the token together with its key in one query: a revoked key ends
  all of its sessions at once (no cache), and an idle session (no request for `idle`) is
  deleted when next seen.
- The CSRF token of a session is an HMAC of its token with the secret key: nothing to store,
  different for every session, and unknown to anyone who does not hold the cookie.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlmodel import Session, col, delete, select

from rejse.db import utcnow
from rejse.errors import DomainError
from rejse.models.auth import ApiKey
from rejse.models.console import ConsoleSession
from rejse.roles import Role, hash_key

LANGUAGES = ("da", "sv", "en")
# A session seen again within this long is not written to (its idle clock moves in steps).
TOUCH_EVERY = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class SignedIn:
    """Who a console request is from."""

    session_id: str
    key_id: str
    role: Role
    rep_id: str | None
    language: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str, *, secret: str) -> str:
    """The CSRF token of the session whose cookie holds `token`."""
    return hmac.new(secret.encode(), b"console-csrf:" + token.encode(), "sha256").hexdigest()


def csrf_ok(token: str, submitted: str, *, secret: str) -> bool:
    return hmac.compare_digest(csrf_token(token, secret=secret), submitted)


def start_session(
    session: Session,
    *,
    raw_key: str,
    language: str | None = None,
    idle: dt.timedelta | None = None,
) -> str:
    """A new session for `raw_key` (flushed); returns the raw token for the cookie.
    An unknown, revoked or ingest key is refused with a DomainError naming `api_key`.
    With `idle`, sessions idle for longer (never seen again, so never deleted on a request)
    are swept first: the table holds only live sessions and the few of the last `idle`."""
    raw_key = raw_key.strip()
    row = (
        session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(raw_key))).first()
        if raw_key
        else None
    )
    if row is None or row.revoked_at is not None:
        raise DomainError("unknown or revoked API key", field="api_key", status_code=401)
    if row.role == Role.ingest.value:
        raise DomainError(
            "an ingest key sends events and cannot sign in to the console",
            field="api_key",
            status_code=403,
        )
    if idle is not None:
        session.exec(
            delete(ConsoleSession).where(col(ConsoleSession.last_seen_at) < utcnow() - idle)
        )
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            id=token_hash(token),
            key_id=row.id,
            language=language if language in LANGUAGES else None,
        )
    )
    session.flush()
    return token


def resolve_session(session: Session, *, token: str, idle: dt.timedelta) -> SignedIn | None:
    """The signed-in key of `token`, or None (unknown, expired, or its key revoked: then the
    session row is deleted). Refreshes the idle clock; the caller commits."""
    if not token:
        return None
    found = session.exec(
        select(ConsoleSession, ApiKey)
        .join(ApiKey, col(ApiKey.id) == col(ConsoleSession.key_id), isouter=True)
        .where(ConsoleSession.id == token_hash(token))
    ).first()
    if found is None:
        return None
    row, key = found
    now = utcnow()
    if (
        key is None
        or key.revoked_at is not None
        or key.role == Role.ingest.value
        or now - row.last_seen_at > idle
    ):
        session.delete(row)
        session.flush()
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
        session.flush()
    return SignedIn(
        session_id=row.id,
        key_id=key.id,
        role=Role(key.role),
        rep_id=key.rep_id,
        language=row.language,
    )


def end_session(session: Session, *, token: str) -> None:
    """Sign out: the session's row is deleted (the cookie alone then signs nobody in)."""
    session.exec(delete(ConsoleSession).where(col(ConsoleSession.id) == token_hash(token)))


def end_sessions_of_key(session: Session, *, key_id: str) -> int:
    """Delete every session of a key (e.g. when it is revoked); returns how many."""
    result = session.exec(delete(ConsoleSession).where(col(ConsoleSession.key_id) == key_id))
    return int(result.rowcount or 0)


def set_language(session: Session, *, session_id: str, language: str) -> None:
    if language not in LANGUAGES:
        raise DomainError(
            f"language must be one of {', '.join(LANGUAGES)}", field="language", status_code=422
        )
    row = session.get(ConsoleSession, session_id)
    if row is not None:
        row.language = language
        session.add(row)
        session.flush()
