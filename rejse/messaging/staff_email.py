"""Emails to our own people (sales reps, their managers): a template rendered in the sandbox and
delivered through the configured email channel.

These are operational, not marketing: no consent, quiet hours or frequency cap apply, and they
are not written to the message log (the caller records what it sent, e.g. on the lead)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rejse.messaging.channels import Outgoing, channel_for
from rejse.messaging.rendering import render
from rejse.messaging.template_lookup import resolve
from rejse.settings import Settings


def send_staff_email(
    settings: Settings,
    *,
    message_id: str,
    to: str,
    template: str,
    locale: str | None,
    context: dict[str, Any],
    templates_dir: str | Path | None = None,
) -> str:
    """Render `template` (email channel, `locale` or its fallback) and deliver it; returns the
    channel's id for it. `message_id` makes the Message-ID header stable across retries.
    Raises `PermanentFailure` when the server refuses it for good; anything else is worth a
    retry."""
    resolved = resolve(key=template, channel="email", locale=locale, templates_dir=templates_dir)
    out = render(resolved, context)
    return channel_for("email", settings).deliver(
        Outgoing(
            message_id=message_id,
            to=to,
            subject=out.subject or "",
            text=out.text or "",
            html=out.html or None,
            headers={},
        )
    )
