"""The message log: lookups, listing (the development outbox), tracking (opens, clicks,
unsubscribe), the in-app inbox, journey stats and GDPR erase; and the redaction of the live
tracking tokens in bodies the API shows."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, delete, func, select

from rejse import analytics_deltas as deltas
from rejse.db import utcnow
from rejse.errors import NotFound
from rejse.models.messaging import Message
from rejse.timeline import add_entries, add_entry

FINAL = ("sent", "opened", "clicked", "skipped", "failed", "bounced")
DELIVERED = ("sent", "opened", "clicked")


def message_id_for(idempotency_key: str) -> str:
    """Deterministic message id (and SMTP Message-ID) for an idempotency key; no PII in it."""
    return "msg_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


REDACTED = "\u2026"  # what a token becomes in a body the API shows
# A signed token (rejse.messaging.tokens): base64url payload "." base64url signature. Matched only
# from the start of a run of such characters (the lookbehind), so a long run costs linear time.
_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])([A-Za-z0-9_-]{8,}+)\.[A-Za-z0-9_-]{16,}+")
_TOKEN_PAYLOAD = re.compile(r"[a-z]{1,8}:[A-Za-z0-9_.-]{1,128}(?::[0-9]{1,9})?")


def _is_token(payload_b64: str) -> bool:
    try:
        payload = base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4))
        return _TOKEN_PAYLOAD.fullmatch(payload.decode("ascii")) is not None
    except (ValueError, UnicodeDecodeError):
        return False


def redact_tokens(text: str | None, *, base_url: str | None = None) -> str | None:
    """`text` with every live tracking token replaced by an ellipsis: unsubscribe (`/u/`),
    preference (`/p/`), click and open (`/t/`) links stay readable but no longer work, so who
    reads a stored body cannot act for its recipient. Tokens are recognised by their signed
    shape wherever they are; under `base_url` every such link's token part goes too."""
    if not text:
        return text
    text = _TOKEN.sub(lambda m: REDACTED if _is_token(m.group(1)) else m.group(0), text)
    if base_url:
        links = re.compile(re.escape(base_url.rstrip("/")) + r"/(u|p|t/[a-z])/[^\s\"'<>?#&]+")
        text = links.sub(lambda m: f"{m.group(0)[: m.end(1) - m.start()]}/{REDACTED}", text)
    return text


def get_by_key(session: Session, idempotency_key: str) -> Message | None:
    return session.exec(select(Message).where(Message.idempotency_key == idempotency_key)).first()


def get_message(session: Session, message_id: str) -> Message:
    row = session.get(Message, message_id)
    if row is None:
        raise NotFound(f"no message {message_id!r}", field="message_id")
    return row


def list_messages(
    session: Session,
    *,
    profile_id: str | None = None,
    journey: str | None = None,
    channel: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Message]:
    stmt = select(Message)
    if profile_id:
        stmt = stmt.where(Message.profile_id == profile_id)
    if journey:
        stmt = stmt.where(Message.journey_key == journey)
    if channel:
        stmt = stmt.where(Message.channel == channel)
    if status:
        stmt = stmt.where(Message.status == status)
    stmt = (
        stmt.order_by(col(Message.created_at).desc(), col(Message.id)).offset(offset).limit(limit)
    )
    return list(session.exec(stmt))


def lock_profile_sends(session: Session, *, profile_id: str) -> None:
    """Serialise the frequency-cap check of one profile's concurrent sends (PostgreSQL advisory
    lock until the transaction ends; SQLite serialises writers itself)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"rejse.messaging:{profile_id}"},
        )


def marketing_sends_of(
    session: Session, *, profile_ids: list[str], since: dt.datetime
) -> dict[str, dict[str, dt.datetime | None]]:
    """For the frequency cap: the marketing messages of `profile_ids` delivered since `since`
    or in flight, in one query: profile id -> message id -> when it was delivered (None: in
    flight, `sending`, which counts as now)."""
    stmt = select(Message.profile_id, Message.id, Message.status, Message.sent_at).where(
        col(Message.profile_id).in_(profile_ids),
        col(Message.transactional) == sa.false(),
        sa.or_(
            sa.and_(col(Message.status).in_(DELIVERED), col(Message.sent_at) > since),
            col(Message.status) == "sending",
        ),
    )
    out: dict[str, dict[str, dt.datetime | None]] = {pid: {} for pid in profile_ids}
    for profile_id, message_id, status, at in session.exec(stmt):
        out[profile_id][message_id] = None if status == "sending" else at
    return out


def _timeline_entry(
    row: Message, what: str, at: dt.datetime | None = None, **data: Any
) -> dict[str, Any]:
    summary = f"{row.channel} {row.template} {what}"
    if row.journey_key:
        summary += f" (journey {row.journey_key}, step {row.step_id})"
    return {
        "profile_id": row.profile_id,
        "kind": "message",
        "summary": summary[:500],
        "at": at,
        "data": {
            "message_id": row.id,
            "channel": row.channel,
            "template": row.template,
            "status": row.status,
            "journey": row.journey_key,
            "step": row.step_id,
            "reason": row.reason,
            **data,
        },
    }


def _timeline(
    session: Session, row: Message, what: str, at: dt.datetime | None = None, **data: Any
) -> None:
    add_entry(session, **_timeline_entry(row, what, at, **data))


def record_status(
    session: Session,
    row: Message,
    *,
    status: str,
    reason: str | None = None,
    at: dt.datetime | None = None,
) -> None:
    previous = row.status
    row.status = status
    row.reason = reason
    session.add(row)
    deltas.message_final(session, row, previous_status=previous)
    _timeline(session, row, status + (f": {reason}" if reason else ""), at=at)


def record_sent(session: Session, row: Message, *, provider_id: str, at: dt.datetime) -> bool:
    """The hand-off of `row` (as its send committed it, `sending`) succeeded: `record_sent_many`
    of one. False when the row is no longer `sending` (a concurrent attempt has recorded it, or
    it was erased with its profile): nothing is written, the caller reads what is there."""
    return row.id in record_sent_many(session, [(row, provider_id, at)])


def mark_sending(session: Session, sends: list[tuple[Message, dict[str, Any]]]) -> None:
    """Rows about to be handed off, with their rendered content (`id`, `locale`,
    `template_version`, `to_address`, `inbox_user`, `subject`, `body_text`, `body_html`,
    `links`), written as `sending` in one statement; the attempt counted. The row objects
    are updated as that statement wrote them."""
    if not sends:
        return
    table = Message.__table__  # type: ignore[attr-defined]
    fields = [k for k in sends[0][1] if k != "id"]
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("_id", type_=table.c.id.type))
        .values(
            status="sending",
            reason=None,
            retry_at=None,
            attempts=table.c.attempts + 1,
            **{f: sa.bindparam("_" + f, type_=table.c[f].type) for f in fields},
        )
    )
    session.connection().execute(stmt, [{"_" + k: v[k] for k in v} for _, v in sends])
    for row, values in sends:
        for key, value in values.items():
            if key != "id":
                set_committed_value(row, key, value)
        set_committed_value(row, "status", "sending")
        set_committed_value(row, "reason", None)
        set_committed_value(row, "retry_at", None)
        set_committed_value(row, "attempts", row.attempts + 1)


def record_sent_many(session: Session, sent: list[tuple[Message, str, dt.datetime]]) -> set[str]:
    """`record_sent` of many hand-offs (row, provider id, time) in one conditional UPDATE, the
    counters and the timeline lines in a statement each. Returns the ids recorded; a row no
    longer `sending` is left as it is (the caller reads what is there)."""
    if not sent:
        return set()
    table = Message.__table__  # type: ignore[attr-defined]
    length = table.c.provider_id.type.length
    providers = {row.id: provider[:length] for row, provider, _ in sent}
    times = {row.id: at for row, _, at in sent}
    ids = list(providers)
    if len(set(times.values())) == 1:
        sent_at: Any = next(iter(times.values()))
    else:
        sent_at = sa.case(
            {mid: sa.literal(at, table.c.sent_at.type) for mid, at in times.items()},
            value=table.c.id,
        )
    done = {
        mid
        for (mid,) in session.connection().execute(
            sa.update(table)
            .where(table.c.id.in_(ids), table.c.status == "sending")
            .values(
                status="sent",
                reason=None,
                sent_at=sent_at,
                provider_id=sa.case(providers, value=table.c.id),
            )
            .returning(table.c.id)
        )
    }
    rows = [row for row, _, _ in sent if row.id in done]
    for row in rows:
        row.status, row.reason = "sent", None
        row.sent_at, row.provider_id = times[row.id], providers[row.id]
    deltas.messages_delivered(session, rows)
    add_entries(session, [_timeline_entry(row, "sent", at=row.sent_at) for row in rows])
    return done


def _event_properties(row: Message) -> dict[str, Any]:
    return {
        "message_id": row.id,
        "channel": row.channel,
        "template": row.template,
        "journey": row.journey_key,
        "journey_version": row.journey_version,
        "step": row.step_id,
    }


def record_open(
    session: Session, *, message_id: str, at: dt.datetime | None = None
) -> Message | None:
    """An open pixel was fetched: count it; the first open becomes an `Email Opened` event."""
    from rejse.events.service import record_internal_event

    row = session.get(Message, message_id)
    if row is None:
        return None
    at = at or utcnow()
    row.open_count += 1
    if row.opened_at is None:
        row.opened_at = at
        if row.status == "sent":
            row.status = "opened"
        deltas.message_opened(session, row)
        _timeline(session, row, "opened", at=at)
        record_internal_event(
            session,
            profile_id=row.profile_id,
            event="Email Opened",
            properties=_event_properties(row),
            message_id=f"{row.id}:opened",
            at=at,
        )
    session.add(row)
    return row


def record_click(
    session: Session, *, message_id: str, index: int, at: dt.datetime | None = None
) -> str | None:
    """A tracked link was followed: returns its target; the first click on each link becomes an
    `Email Clicked` event (with `url` and `link` index, so a journey can match on them)."""
    from rejse.events.service import record_internal_event

    row = session.get(Message, message_id)
    if row is None or not (0 <= index < len(row.links or [])):
        return None
    url = row.links[index]
    at = at or utcnow()
    row.click_count += 1
    if row.clicked_at is None:
        row.clicked_at = at
        deltas.message_clicked(session, row)
        _timeline(session, row, "clicked", at=at, link=index)
    if row.opened_at is None:  # a click proves the open (images may be blocked)
        row.opened_at = at
        deltas.message_opened(session, row)
    if row.status in ("sent", "opened"):
        row.status = "clicked"
    session.add(row)
    record_internal_event(
        session,
        profile_id=row.profile_id,
        event="Email Clicked",
        properties={**_event_properties(row), "url": url, "link": index},
        message_id=f"{row.id}:clicked:{index}",
        at=at,
    )
    return url


def unsubscribe(
    session: Session, *, message_id: str, at: dt.datetime | None = None
) -> Message | None:
    """One-click unsubscribe: revoke the message channel's consent at once."""
    from rejse.profiles.consent import set_consent
    from rejse.profiles.service import resolve_profile_id

    row = session.get(Message, message_id)
    if row is None:
        return None
    profile_id = resolve_profile_id(session, row.profile_id) or row.profile_id
    before = deltas.unsubscribed_through(session, row)
    set_consent(
        session,
        profile_id=profile_id,
        channel=row.channel,
        status="revoked",
        source=f"unsubscribe:{row.id}",
        at=at,
    )
    deltas.message_unsubscribed(session, row, before=before)
    return row


def inbox(
    session: Session, *, user_id: str, unread_only: bool = False, limit: int = 50
) -> list[Message]:
    stmt = select(Message).where(
        Message.inbox_user == user_id,
        Message.channel == "in_app",
        col(Message.status).in_(DELIVERED),
    )
    if unread_only:
        stmt = stmt.where(col(Message.read_at).is_(None))
    return list(session.exec(stmt.order_by(col(Message.sent_at).desc()).limit(limit)))


def mark_read(
    session: Session, *, user_id: str, message_id: str, at: dt.datetime | None = None
) -> Message:
    row = session.get(Message, message_id)
    if row is None or row.inbox_user != user_id or row.channel != "in_app":
        raise NotFound(f"no inbox message {message_id!r} for this user", field="message_id")
    if row.read_at is None:
        row.read_at = at or utcnow()
        if row.opened_at is None:
            row.opened_at = row.read_at
            deltas.message_opened(session, row)
        if row.status == "sent":
            row.status = "opened"
        row.open_count += 1
        session.add(row)
        _timeline(session, row, "read", at=row.read_at)
    return row


def journey_message_stats(session: Session, *, journey_key: str) -> dict[str, dict[str, int]]:
    """Per step: how many messages ended in each status (sent/opened/clicked/skipped/...), plus
    `delivered` (sent + opened + clicked), `opened` and `clicked` totals for rates."""
    stmt = (
        select(Message.step_id, Message.status, func.count())
        .where(Message.journey_key == journey_key)
        .group_by(Message.step_id, Message.status)
    )
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for step, status, n in session.exec(stmt):
        bucket = out[step or ""]
        bucket[status] += n
        if status in DELIVERED:
            bucket["delivered"] += n
    for step, _status, n in session.exec(
        select(Message.step_id, Message.status, func.count())
        .where(Message.journey_key == journey_key, col(Message.opened_at).is_not(None))
        .group_by(Message.step_id, Message.status)
    ):
        out[step or ""]["opened_total"] += n
    for step, _status, n in session.exec(
        select(Message.step_id, Message.status, func.count())
        .where(Message.journey_key == journey_key, col(Message.clicked_at).is_not(None))
        .group_by(Message.step_id, Message.status)
    ):
        out[step or ""]["clicked_total"] += n
    return {step: dict(counts) for step, counts in out.items()}


def erase_messages(session: Session, *, profile_id: str) -> int:
    """GDPR: delete a profile's messages (they hold addresses and rendered bodies)."""
    result = session.exec(delete(Message).where(col(Message.profile_id) == profile_id))
    return result.rowcount or 0


class MessagingEraser:
    """`rejse.contracts.ProfileEraser` for the message log. Sends in flight belong to journey
    workflows, which the journeys eraser cancels; nothing runs here."""

    name = "messaging"

    def erase(self, session: Session, profile_id: str) -> None:
        erase_messages(session, profile_id=profile_id)

    async def cancel_running(self, profile_id: str) -> None:
        return None
