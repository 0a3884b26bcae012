"""Sends, start to end: guards, render, track, deliver once, log. Called by the
`rejse.contracts.SEND_MESSAGE` activity (activities/messaging.py); no Temporal in here.

Exactly-once per idempotency key (docs/messaging.md, "Idempotency"):
1. the message row is created once (unique `idempotency_key`); a row in a final state answers a
   retry with the recorded result, nothing is delivered again;
2. before the hand-off the row is committed as `sending` with its rendered content;
3. the channel delivers (SMTP with a deterministic Message-ID);
4. right after the hand-off the row is committed as `sent`.
A crash before 4 leaves `sending`; the retry delivers again with the same Message-ID. The only
duplicate window is between the provider's acceptance and the commit in 4 (milliseconds).

`send_batch` takes these steps for many requests at once, each step one transaction (or one
hand-off over the SMTP pool) for all of them; `send_message` is a batch of one.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from rejse.contracts import ProfileSnapshot, SendRequest, SendResult
from rejse.db import insert_ignore
from rejse.durations import parse_duration
from rejse.errors import DomainError
from rejse.logging import get_logger
from rejse.messaging import guards, tokens
from rejse.messaging.channels import Outgoing, PermanentFailure, channel_for, deliver_all
from rejse.messaging.render_context import build_context
from rejse.messaging.rendering import render
from rejse.messaging.service import (
    FINAL,
    lock_profile_sends,
    mark_sending,
    marketing_sends_of,
    message_id_for,
    record_sent_many,
    record_status,
)
from rejse.messaging.template_lookup import ResolvedTemplate, resolve
from rejse.models.messaging import Message
from rejse.profiles.consent import ALL_MARKETING
from rejse.profiles.service import load_snapshots
from rejse.quiet_hours import QuietHours
from rejse.settings import Settings

log = get_logger("rejse.messaging")

_HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)


def result_of(row: Message) -> SendResult:
    status = row.status
    if status in ("sent", "opened", "clicked"):
        return SendResult(status="sent", message_id=row.id)
    if status == "bounced":
        return SendResult(status="failed", message_id=row.id, reason=row.reason)
    if status == "deferred":
        return SendResult(
            status="deferred", message_id=row.id, reason=row.reason, retry_at=row.retry_at
        )
    return SendResult(status=status, message_id=row.id, reason=row.reason)


def _user_id(snap: ProfileSnapshot) -> str | None:
    user_ids = snap.identifiers.get("user_id")
    return user_ids[0] if user_ids else None


def profile_context(snap: ProfileSnapshot) -> dict[str, Any]:
    return {
        "id": snap.id,
        "traits": dict(snap.traits),
        "email": snap.email,
        "phone": snap.phone,
        "locale": snap.locale,
        "timezone": snap.timezone,
        "user_id": _user_id(snap),
        "lifecycle_stage": snap.lifecycle_stage,
        "lead_score": snap.lead_score,
    }


def tracking_links(settings: Settings, message_id: str) -> dict[str, str]:
    """The signed links of a message: one-click unsubscribe and the preference centre."""
    base, secret = settings.effective_public_url, settings.secret_key
    return {
        "unsubscribe": f"{base}/u/{tokens.sign(secret, 'u', message_id)}",
        "preferences": f"{base}/p/{tokens.sign(secret, 'p', message_id)}",
    }


def track_html(html: str, *, settings: Settings, message_id: str) -> tuple[str, list[str]]:
    """Rewrite http(s) links to signed click redirects and add the open pixel. Unsubscribe and
    preference links stay as they are: a click on them is no interest in the message (and a
    journey waiting for `Email Clicked` must not take it as one)."""
    base = settings.effective_public_url
    links: list[str] = []

    def swap(match: re.Match[str]) -> str:
        url = html_lib.unescape(match.group(1))
        if url.startswith((f"{base}/u/", f"{base}/p/")):
            return match.group(0)
        if url not in links:
            links.append(url)
        token = tokens.sign(settings.secret_key, "c", message_id, links.index(url))
        return f'href="{base}/t/c/{token}"'

    html = _HREF.sub(swap, html)
    pixel = (
        f'<img src="{base}/t/o/{tokens.sign(settings.secret_key, "o", message_id)}" '
        'width="1" height="1" alt="" style="display:none">'
    )
    if "</body>" in html:
        html = html.replace("</body>", pixel + "</body>", 1)
    else:
        html += pixel
    return html, links


def _address(req: SendRequest, snap: ProfileSnapshot, settings: Settings) -> str | None:
    if req.channel == "email":
        return snap.email
    if req.channel == "sms":
        return snap.phone
    if req.channel == "in_app":
        return _user_id(snap) or snap.id
    return str(req.extra.get("url") or settings.message_webhook_url or "") or None


def _check_address(channel: str, address: str) -> None:
    if channel == "email":
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError:
            raise PermanentFailure("invalid_address (email)") from None
    elif channel == "sms":
        digits = address.lstrip("+")
        if not (address.startswith("+") and digits.isdigit() and 8 <= len(digits) <= 15):
            raise PermanentFailure("invalid_address (phone, E.164 expected)")


def _quiet_hours(settings: Settings, channel: str) -> QuietHours | None:
    text = (settings.message_quiet_hours or {}).get(channel)
    return QuietHours.parse(text) if text else None


def _new_row(req: SendRequest, profile_id: str, now: dt.datetime) -> dict[str, Any]:
    """A new message row's values for a core INSERT (every NOT NULL column; the rest NULL)."""
    return {
        "id": message_id_for(req.idempotency_key),
        "idempotency_key": req.idempotency_key,
        "profile_id": profile_id,
        "channel": req.channel,
        "template": req.template,
        "transactional": req.transactional,
        "journey_key": req.journey_key,
        "journey_version": req.journey_version,
        "step_id": req.step_id,
        "status": "queued",
        "links": [],
        "attempts": 0,
        "open_count": 0,
        "click_count": 0,
        "created_at": now,
    }


def _reload(session: Session, message_id: str) -> Message:
    row = session.get(Message, message_id)
    if row is None:  # erased with its profile meanwhile; the retry finds the profile erased
        raise LookupError(f"message {message_id} was deleted during its send")
    return row


Outcome = SendResult | Outgoing | BaseException


@dataclass
class _Send:
    """One request of a batch, as it goes: its row, then what to deliver or its result."""

    req: SendRequest
    now: dt.datetime
    row: Message | None = None
    snap: ProfileSnapshot | None = None
    outcome: Outcome | None = None
    sending: dict[str, Any] | None = None  # the rendered content, to commit as `sending`

    @property
    def message(self) -> Message:
        if self.row is None:
            raise RuntimeError("the send has no message row yet")
        return self.row


# recent marketing sends of a profile, for the frequency cap: message id -> when (None: in flight)
Recent = dict[str, dict[str, dt.datetime | None]]
Templates = dict[tuple[str, str, str | None], ResolvedTemplate]


def _rows(session: Session, items: list[_Send]) -> None:
    """Each item's message row, created where there is none (one INSERT for all: on SQLite it
    takes the write lock, which serialises the frequency cap of concurrent batches); an item
    whose row is final gets its recorded result."""
    keys = [it.req.idempotency_key for it in items]
    existing = {
        r.idempotency_key: r
        for r in session.exec(select(Message).where(col(Message.idempotency_key).in_(keys)))
    }
    todo = [it for it in items if not _replayed(it, existing.get(it.req.idempotency_key))]
    if not todo:
        return
    snaps = load_snapshots(session, profile_ids=[it.req.profile_id for it in todo])
    new = [it for it in todo if it.req.idempotency_key not in existing]
    created: dict[str, Message] = {}
    if new:
        conn = session.connection()
        conn.execute(
            insert_ignore(conn, Message.__table__),  # type: ignore[attr-defined]
            [_new_row(it.req, _profile_of(it.req, snaps), it.now) for it in new],
        )
        created = {
            r.idempotency_key: r
            for r in session.exec(
                select(Message).where(
                    col(Message.idempotency_key).in_([it.req.idempotency_key for it in new])
                )
            )
        }
    for it in todo:
        it.snap = snaps.get(it.req.profile_id)
        if it.req.idempotency_key not in existing:
            row = created.get(it.req.idempotency_key)
            if row is None:  # erased in the very moment: the retry finds the profile erased
                it.outcome = LookupError(f"message for {it.req.idempotency_key!r} vanished")
            elif not _replayed(it, row):  # a concurrent attempt may have finished it
                it.row = row
        else:
            it.row = existing[it.req.idempotency_key]


def _profile_of(req: SendRequest, snaps: dict[str, ProfileSnapshot]) -> str:
    snap = snaps.get(req.profile_id)
    return snap.id if snap is not None else req.profile_id


def _replayed(it: _Send, row: Message | None) -> bool:
    if row is not None and row.status in FINAL:
        it.row, it.outcome = row, result_of(row)
        return True
    return False


def _recent(session: Session, settings: Settings, items: list[_Send]) -> Recent:
    """The frequency cap's input for every marketing profile of the batch, read under each
    profile's send lock (taken in sorted order, so batches never wait on each other in a
    circle)."""
    if settings.message_frequency_cap <= 0:
        return {}
    capped = [it for it in items if it.row is not None and not it.req.transactional]
    profiles = sorted({it.row.profile_id for it in capped if it.row is not None})
    if not profiles:
        return {}
    for profile_id in profiles:
        lock_profile_sends(session, profile_id=profile_id)
    window = parse_duration(settings.message_frequency_window)
    since = min(it.now for it in capped) - window
    return marketing_sends_of(session, profile_ids=profiles, since=since)


def _decide(
    session: Session,
    settings: Settings,
    it: _Send,
    recent: Recent,
    templates: Templates,
) -> Outcome:
    """Guards and rendering of one request. Returns a final result (skipped, deferred,
    failed) or what to deliver; the row is updated in `session`."""
    req, now, row, snap = it.req, it.now, it.message, it.snap

    def skip(reason: str) -> SendResult:
        record_status(session, row, status="skipped", reason=reason, at=now)
        return result_of(row)

    def fail(reason: str) -> SendResult:
        record_status(session, row, status="failed", reason=reason, at=now)
        return result_of(row)

    if snap is None:
        return skip("profile_unknown")
    if snap.erased:
        return skip("profile_erased")
    address = _address(req, snap, settings)
    if not address:
        return skip(f"no_address ({req.channel})")
    try:
        _check_address(req.channel, address)
    except PermanentFailure as exc:
        return fail(exc.reason)
    if not req.transactional:
        # "all marketing" revoked blocks every channel, whatever the channel's own consent
        reason = guards.consent_reason(
            snap.consents, ALL_MARKETING, require_opt_in=False
        ) or guards.consent_reason(
            snap.consents, req.channel, require_opt_in=settings.message_require_opt_in
        )
        if reason:
            return skip(reason)
        tz = guards.zone(snap.timezone, settings.message_default_timezone)
        until = guards.quiet_until(now, _quiet_hours(settings, req.channel), tz)
        if until is not None:
            first = row.status != "deferred"
            row.status, row.reason, row.retry_at = "deferred", "quiet_hours", until
            session.add(row)
            if first:
                record_status(session, row, status="deferred", reason="quiet_hours", at=now)
            return result_of(row)
        if settings.message_frequency_cap > 0:
            window = parse_duration(settings.message_frequency_window)
            theirs = recent.setdefault(row.profile_id, {})
            sent = [now if at is None else at for mid, at in theirs.items() if mid != row.id]
            if guards.over_frequency_cap(
                sent, now=now, cap=settings.message_frequency_cap, window=window
            ):
                return skip(
                    f"frequency_cap ({settings.message_frequency_cap} per "
                    f"{settings.message_frequency_window})"
                )
            theirs[row.id] = None  # in flight from here: the batch's next sends count it

    try:
        lookup = (req.template, req.channel, snap.locale)
        resolved = templates.get(lookup)
        if resolved is None:
            resolved = templates[lookup] = resolve(
                key=req.template,
                channel=req.channel,
                locale=snap.locale,
                session=session,
                templates_dir=settings.templates_dir,
            )
        links = tracking_links(settings, row.id) if req.channel == "email" else {}
        context = build_context(
            profile=profile_context(snap),
            trigger=req.trigger,
            journey={"key": req.journey_key, "version": req.journey_version, "step": req.step_id},
            links=links,
            message={"id": row.id},
            extra=req.extra,
            now=now,
        )
        rendered = render(resolved, context)
    except DomainError as exc:
        return fail(f"template_error: {exc.message}"[:500])

    html = rendered.html
    tracked: list[str] = []
    headers: dict[str, str] = {}
    if req.channel == "email":
        if html:
            html, tracked = track_html(html, settings=settings, message_id=row.id)
        if not req.transactional:
            headers["List-Unsubscribe"] = f"<{links['unsubscribe']}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    payload = None
    if req.channel == "webhook":
        try:
            body: Any = json.loads(rendered.text or "null")
        except ValueError:
            body = rendered.text
        payload = {
            "message_id": row.id,
            "profile_id": row.profile_id,
            "template": req.template,
            "journey": req.journey_key,
            "step": req.step_id,
            "body": body,
        }
    # written with the batch's other sends in one statement (`_prepare`)
    it.sending = {
        "id": row.id,
        "locale": resolved.locale,
        "template_version": resolved.version,
        "to_address": address if req.channel != "in_app" else None,
        "inbox_user": address if req.channel == "in_app" else None,
        "subject": rendered.subject,
        "body_text": rendered.text,
        "body_html": html,
        "links": tracked,
    }
    return Outgoing(
        message_id=row.id,
        to=address,
        subject=rendered.subject,
        text=rendered.text,
        html=html,
        headers=headers,
        payload=payload,
    )


def _prepare(session: Session, settings: Settings, items: list[_Send]) -> None:
    """Rows, guards and rendering of a batch inside one transaction: each item gets a final
    result (skipped, deferred, failed, or a replayed one) or what to deliver."""
    _rows(session, items)
    live = [it for it in items if it.outcome is None]
    recent = _recent(session, settings, live)
    templates: Templates = {}
    for it in live:
        it.outcome = _decide(session, settings, it, recent, templates)
    mark_sending(session, [(it.message, it.sending) for it in live if it.sending is not None])


def _record_failures(engine: Engine, failed: list[tuple[_Send, BaseException]]) -> None:
    """Permanent failures recorded (`bounced`/`failed`); transient ones noted on the row, which
    stays `sending` for the retry."""
    with Session(engine, expire_on_commit=False) as session:
        for it, exc in failed:
            if isinstance(exc, PermanentFailure):
                try:
                    row = _reload(session, it.message.id)
                except LookupError as gone:
                    it.outcome = gone
                    continue
                record_status(
                    session,
                    row,
                    status="bounced" if exc.bounced else "failed",
                    reason=exc.reason,
                    at=it.now,
                )
                log.warning("message_failed", message_id=row.id, reason=exc.reason)
                it.row, it.outcome = row, result_of(row)
            else:
                fresh = session.get(Message, it.message.id)
                if fresh is not None and fresh.status == "sending":
                    fresh.reason = (
                        f"attempt {fresh.attempts} failed: {type(exc).__name__}; retrying"
                    )
                    session.add(fresh)
                log.warning("message_retry", message_id=it.message.id, error=type(exc).__name__)
                it.outcome = exc
        session.commit()


def _record_sent(engine: Engine, handed: list[tuple[_Send, str]]) -> list[_Send]:
    """`sent` for every hand-off in one transaction; returns the items it recorded. An item
    whose row is no longer `sending` answers with what is there (a concurrent attempt recorded
    it) or fails (erased meanwhile)."""
    with Session(engine, expire_on_commit=False) as session:
        done = record_sent_many(
            session, [(it.message, provider, it.now) for it, provider in handed]
        )
        recorded = []
        for it, _ in handed:
            if it.message.id in done:
                it.outcome = result_of(it.message)
                recorded.append(it)
                continue
            try:
                it.outcome = result_of(_reload(session, it.message.id))
            except LookupError as gone:
                it.outcome = gone
        session.commit()
    return recorded


def _deliver(settings: Settings, engine: Engine, items: list[_Send]) -> list[_Send]:
    """Hand off every prepared message (per channel, at once where it can) and record each
    outcome; returns the items recorded `sent`."""
    by_channel: dict[str, list[_Send]] = {}
    for it in items:
        if isinstance(it.outcome, Outgoing):
            by_channel.setdefault(it.req.channel, []).append(it)
    handed: list[tuple[_Send, str]] = []
    failed: list[tuple[_Send, BaseException]] = []
    for name, group in by_channel.items():
        outs = [it.outcome for it in group if isinstance(it.outcome, Outgoing)]
        results = deliver_all(channel_for(name, settings), outs)
        for it, result in zip(group, results, strict=True):
            if isinstance(result, BaseException):
                failed.append((it, result))
            else:
                handed.append((it, result))
    if failed:
        _record_failures(engine, failed)
    return _record_sent(engine, handed) if handed else []


def send_batch(
    settings: Settings,
    engine: Engine,
    sends: Sequence[tuple[SendRequest, dt.datetime]],
    *,
    after_handoff: Callable[[str], None] | None = None,
) -> list[SendResult | BaseException]:
    """Many sends (each request with its own clock) with the bookkeeping of all of them in
    three transactions: the rows committed `sending` together, the hand-offs at once over the
    SMTP pool, `sent` recorded for all in one UPDATE. Each request's guarantees are those of a
    single send (module docstring); each gets its result, or what its send raised (the caller
    raises it, so Temporal retries that attempt). A request repeating a key earlier in the
    batch gets that one's result. Should the preparing transaction fail, nothing is handed off
    and each request is tried alone, so one bad request fails no other."""
    items: list[_Send] = []
    first: dict[str, _Send] = {}
    order: list[_Send] = []
    for req, now in sends:
        it = first.get(req.idempotency_key)
        if it is None:
            it = first[req.idempotency_key] = _Send(req, now)
            items.append(it)
        order.append(it)
    try:
        with Session(engine, expire_on_commit=False) as session:
            _prepare(session, settings, items)
            session.commit()
    except Exception:
        if len(items) == 1:
            raise
        alone = {
            it.req.idempotency_key: _alone(settings, engine, it, after_handoff) for it in items
        }
        return [alone[it.req.idempotency_key] for it in order]
    for it in items:
        if isinstance(it.outcome, SendResult) and it.row is not None:
            log.info(
                "message_not_sent",
                message_id=it.row.id,
                status=it.outcome.status,
                reason=it.outcome.reason,
            )
    for it in _deliver(settings, engine, items):
        log.info("message_sent", message_id=it.message.id, channel=it.message.channel)
        if after_handoff is not None:
            try:
                after_handoff(it.message.id)
            except Exception as exc:  # noqa: BLE001 - that send's attempt fails, no other
                it.outcome = exc
    out: list[SendResult | BaseException] = []
    for it in order:
        if not isinstance(it.outcome, SendResult | BaseException):  # every path sets one
            raise RuntimeError(f"send {it.req.idempotency_key!r} ended without a result")
        out.append(it.outcome)
    return out


def _alone(
    settings: Settings,
    engine: Engine,
    it: _Send,
    after_handoff: Callable[[str], None] | None,
) -> SendResult | BaseException:
    try:
        return send_batch(settings, engine, [(it.req, it.now)], after_handoff=after_handoff)[0]
    except Exception as exc:  # noqa: BLE001 - that request's own failure
        return exc


def send_message(
    settings: Settings,
    engine: Engine,
    req: SendRequest,
    *,
    now: dt.datetime,
    after_handoff: Callable[[str], None] | None = None,
) -> SendResult:
    """One send: `send_batch` of one request; what it raised is raised."""
    result = send_batch(settings, engine, [(req, now)], after_handoff=after_handoff)[0]
    if isinstance(result, BaseException):
        raise result
    return result
