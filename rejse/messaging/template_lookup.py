"""Finding templates: key and channel checks, file templates, API templates, locale choice.

Files live in `templates/<channel>/<key>/<locale>/` as `subject.txt`, `body.html`, `body.txt`
(see docs/messaging.md); names starting with `_` are shared layouts for `{% extends %}` and
`{% include %}`. An API template of the same key overrides the file template locale by locale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from jinja2.environment import Template
from sqlmodel import Session, col, select

from rejse.errors import NotFound, Unprocessable
from rejse.messaging import formatting
from rejse.messaging.sandbox import Engines, compile_part, engines
from rejse.models.messaging import MessageTemplate

CHANNELS = ("email", "sms", "in_app", "webhook")
CHANNEL_PARTS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "html", "text"),
    "sms": ("text",),
    "in_app": ("subject", "text", "html"),
    "webhook": ("text",),
}
REQUIRED_PARTS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "html"),
    "sms": ("text",),
    "in_app": ("subject", "text"),
    "webhook": ("text",),
}
PART_FILES = {"subject": "subject.txt", "html": "body.html", "text": "body.txt"}
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9][a-z0-9_\-]*)*$")


@dataclass(frozen=True)
class ResolvedTemplate:
    key: str
    channel: str
    locale: str
    version: int | None  # None: file template
    parts: dict[str, Template] = field(hash=False)


def check_key(key: str, *, field_name: str = "key") -> None:
    if not KEY_RE.match(key or "") or len(key) > 200:
        raise Unprocessable(
            f"template key {key!r} must be lowercase words separated by '/', "
            "e.g. 'abandoned_cart/reminder'",
            field=field_name,
        )


def check_channel(channel: str, *, field_name: str = "channel") -> None:
    if channel not in CHANNELS:
        raise Unprocessable(
            f"unknown channel {channel!r} (one of: {', '.join(CHANNELS)})", field=field_name
        )


def _file_dir(eng: Engines, channel: str, key: str, locale: str) -> Path:
    return eng.templates_dir / channel / key / locale


def file_locales(*, key: str, channel: str, templates_dir: str | Path | None = None) -> list[str]:
    """Locales for which a complete file template exists."""
    if channel not in CHANNELS or not KEY_RE.match(key or ""):
        return []
    eng = engines(templates_dir)
    base = eng.templates_dir / channel / key
    if not base.is_dir():
        return []
    out = []
    for sub in sorted(base.iterdir()):
        if sub.is_dir() and all((sub / PART_FILES[p]).is_file() for p in REQUIRED_PARTS[channel]):
            out.append(sub.name)
    return out


def list_file_templates(
    templates_dir: str | Path | None = None,
) -> list[tuple[str, str, list[str]]]:
    """(channel, key, locales) of every file template."""
    eng = engines(templates_dir)
    out = []
    for channel in CHANNELS:
        root = eng.templates_dir / channel
        if not root.is_dir():
            continue
        seen = set()
        for part in root.rglob("*"):
            if part.is_file() and part.name in PART_FILES.values():
                key = "/".join(part.parent.parent.relative_to(root).parts)
                if key and key not in seen and KEY_RE.match(key):
                    seen.add(key)
        for key in sorted(seen):
            locales = file_locales(key=key, channel=channel, templates_dir=templates_dir)
            if locales:
                out.append((channel, key, locales))
    return out


def latest_api_template(session: Session, *, key: str, channel: str) -> MessageTemplate | None:
    stmt = (
        select(MessageTemplate)
        .where(MessageTemplate.key == key, MessageTemplate.channel == channel)
        .order_by(col(MessageTemplate.version).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def template_exists(
    *,
    key: str,
    channel: str,
    session: Session | None = None,
    templates_dir: str | Path | None = None,
) -> bool:
    """True if a file template exists for (key, channel), or, given a session, an API one."""
    if file_locales(key=key, channel=channel, templates_dir=templates_dir):
        return True
    if session is not None and channel in CHANNELS:
        return latest_api_template(session, key=key, channel=channel) is not None
    return False


def _locale_order(wanted: str | None) -> list[str]:
    first = formatting.language(wanted)
    return [first] if first == formatting.DEFAULT_LOCALE else [first, formatting.DEFAULT_LOCALE]


def resolve(
    *,
    key: str,
    channel: str,
    locale: str | None,
    session: Session | None = None,
    templates_dir: str | Path | None = None,
) -> ResolvedTemplate:
    """Pick the template for a profile's locale (`da-DK` -> `da`, fallback `en`, then any).
    An API template of the same key overrides the file template locale by locale."""
    eng = engines(templates_dir)
    api = latest_api_template(session, key=key, channel=channel) if session is not None else None
    files = file_locales(key=key, channel=channel, templates_dir=templates_dir)
    api_locales = sorted(api.variants) if api is not None else []
    order = _locale_order(locale) + sorted(set(api_locales) | set(files))
    for loc in order:
        if api is not None and loc in api.variants:
            parts = {
                p: compile_part(eng, p, src)
                for p, src in api.variants[loc].items()
                if p in CHANNEL_PARTS[channel] and src
            }
            return ResolvedTemplate(key, channel, loc, api.version, parts)
        if loc in files:
            parts = {}
            for p in CHANNEL_PARTS[channel]:
                path = _file_dir(eng, channel, key, loc) / PART_FILES[p]
                if path.is_file():
                    parts[p] = eng.for_part(p).get_template(
                        f"{channel}/{key}/{loc}/{PART_FILES[p]}"
                    )
            return ResolvedTemplate(key, channel, loc, None, parts)
    raise NotFound(f"no {channel} template {key!r}", field="template")
