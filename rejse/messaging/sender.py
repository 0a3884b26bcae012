"""One send, start to end: guards, render, track, deliver once, log. Called by the
`rejse.contracts.SEND_MESSAGE` activity (activities/messaging.py); no Temporal in here.

Exactly-once per idempotency key (docs/messaging.md, "Idempotency"):
1. the message row is created once (unique `idempotency_key`); a row in a final state answers a
   retry with the recorded result, nothing is delivered again;
2. before the hand-off the row is committed as `sending` with its rendered content;
3. the channel delivers (SMTP with a deterministic Message-ID);
4. right after the hand-off the row is committed as `sent`.
A crash before 4 leaves `sending`; the retry delivers again with the same Message-ID. The only
duplicate window is between the provider's acceptance and the commit in 4 (milliseconds).
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import json
import re
from collections.abc import Callable
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from rejse.contracts import ProfileSnapshot, SendRequest, SendResult
from rejse.durations import parse_duration
from rejse.errors import DomainError
from rejse.logging import get_logger
from rejse.messaging import guards, tokens
from rejse.messaging.channels import Outgoing, PermanentFailure, channel_for
from rejse.messaging.render_context import build_context
from rejse.messaging.rendering import render
from rejse.messaging.service import (
    FINAL,
    get_by_key,
    lock_profile_sends,
    message_id_for,
    recent_marketing_sends,
    record_sent,
    record_status,
)
from rejse.messaging.template_lookup import resolve
from rejse.models.messaging import Message
from rejse.profiles.consent import ALL_MARKETING
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


def _load_profile(session: Session, profile_id: str) -> ProfileSnapshot | None:
    from rejse.profiles.service import load_snapshot

    return load_snapshot(session, profile_id=profile_id)


def _new_row(req: SendRequest, profile_id: str, now: dt.datetime) -> Message:
    return Message(
        id=message_id_for(req.idempotency_key),
        idempotency_key=req.idempotency_key,
        profile_id=profile_id,
        channel=req.channel,
        template=req.template,
        transactional=req.transactional,
        journey_key=req.journey_key,
        journey_version=req.journey_version,
        step_id=req.step_id,
        status="queued",
        created_at=now,
    )


def _reload(session: Session, message_id: str) -> Message:
    row = session.get(Message, message_id)
    if row is None:  # erased with its profile meanwhile; the retry finds the profile erased
        raise LookupError(f"message {message_id} was deleted during its send")
    return row


def _prepare(
    session: Session, settings: Settings, req: SendRequest, now: dt.datetime
) -> tuple[Message, SendResult | Outgoing]:
    """Guards and rendering inside one transaction. Returns the row and either a final result
    (skipped, deferred, failed, or a replayed one) or what to deliver."""
    row = get_by_key(session, req.idempotency_key)
    if row is not None and row.status in FINAL:
        return row, result_of(row)
    snap = _load_profile(session, req.profile_id)
    if row is None:
        row = _new_row(req, snap.id if snap else req.profile_id, now)
        session.add(row)
        try:
            session.flush()
        except IntegrityError:  # a concurrent attempt created it: use theirs
            session.rollback()
            theirs = get_by_key(session, req.idempotency_key)
            if theirs is None:  # the conflict was not on the idempotency key
                raise
            row = theirs
            if row.status in FINAL:
                return row, result_of(row)

    def skip(reason: str) -> tuple[Message, SendResult]:
        record_status(session, row, status="skipped", reason=reason, at=now)
        return row, result_of(row)

    def fail(reason: str) -> tuple[Message, SendResult]:
        record_status(session, row, status="failed", reason=reason, at=now)
        return row, result_of(row)

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
            return row, result_of(row)
        if settings.message_frequency_cap > 0:
            window = parse_duration(settings.message_frequency_window)
            lock_profile_sends(session, profile_id=row.profile_id)
            sent = recent_marketing_sends(
                session, profile_id=row.profile_id, since=now - window, now=now, exclude_id=row.id
            )
            if guards.over_frequency_cap(
                sent, now=now, cap=settings.message_frequency_cap, window=window
            ):
                return skip(
                    f"frequency_cap ({settings.message_frequency_cap} per "
                    f"{settings.message_frequency_window})"
                )

    try:
        resolved = resolve(
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
    row.status, row.reason, row.retry_at = "sending", None, None
    row.locale, row.template_version = resolved.locale, resolved.version
    row.to_address = address if req.channel != "in_app" else None
    row.inbox_user = address if req.channel == "in_app" else None
    row.subject, row.body_text, row.body_html, row.links = (
        rendered.subject,
        rendered.text,
        html,
        tracked,
    )
    row.attempts += 1
    session.add(row)
    out = Outgoing(
        message_id=row.id,
        to=address,
        subject=rendered.subject,
        text=rendered.text,
        html=html,
        headers=headers,
        payload=payload,
    )
    return row, out


def send_message(
    settings: Settings,
    engine: Engine,
    req: SendRequest,
    *,
    now: dt.datetime,
    after_handoff: Callable[[str], None] | None = None,
) -> SendResult:
    with Session(engine, expire_on_commit=False) as session:
        row, outcome = _prepare(session, settings, req, now)
        session.commit()
    if isinstance(outcome, SendResult):
        log.info(
            "message_not_sent", message_id=row.id, status=outcome.status, reason=outcome.reason
        )
        return outcome
    out = outcome
    channel = channel_for(req.channel, settings)
    try:
        provider_id = channel.deliver(out)
    except PermanentFailure as exc:
        with Session(engine, expire_on_commit=False) as session:
            row = _reload(session, row.id)
            record_status(
                session,
                row,
                status="bounced" if exc.bounced else "failed",
                reason=exc.reason,
                at=now,
            )
            session.commit()
        log.warning("message_failed", message_id=row.id, reason=exc.reason)
        return result_of(row)
    except Exception as exc:
        with Session(engine, expire_on_commit=False) as session:
            fresh = session.get(Message, row.id)
            if fresh is not None and fresh.status == "sending":
                fresh.reason = f"attempt {fresh.attempts} failed: {type(exc).__name__}; retrying"
                session.add(fresh)
                session.commit()
        log.warning("message_retry", message_id=row.id, error=type(exc).__name__)
        raise
    with Session(engine, expire_on_commit=False) as session:
        if not record_sent(session, row, provider_id=provider_id, at=now):
            return result_of(_reload(session, row.id))  # a concurrent attempt recorded it
        session.commit()
    log.info("message_sent", message_id=row.id, channel=row.channel)
    if after_handoff is not None:
        after_handoff(row.id)
    return result_of(row)
