"""API-managed templates: create, new version (immutable), read (API or file), preview."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from rejse.contracts import ProfileSnapshot
from rejse.errors import Conflict, NotFound, Unprocessable
from rejse.messaging import formatting
from rejse.messaging.render_context import build_context, sample_context
from rejse.messaging.rendering import Rendered, render
from rejse.messaging.sandbox import TemplateLimits, compile_part, engines
from rejse.messaging.template_checks import validate_variants
from rejse.messaging.template_lookup import (
    CHANNEL_PARTS,
    PART_FILES,
    ResolvedTemplate,
    check_channel,
    check_key,
    file_locales,
    latest_api_template,
    resolve,
)
from rejse.models.messaging import MessageTemplate


def _save(
    session: Session,
    *,
    key: str,
    channel: str,
    variants: dict[str, dict[str, str]],
    description: str | None,
    version: int,
    templates_dir: str | Path | None,
    limits: TemplateLimits | None,
) -> MessageTemplate:
    check_key(key)
    check_channel(channel)
    clean = {
        loc: {p: s for p, s in parts.items() if s is not None} for loc, parts in variants.items()
    }
    validate_variants(channel, clean, templates_dir=templates_dir, limits=limits)
    row = MessageTemplate(
        key=key, channel=channel, version=version, description=description, variants=clean
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            f"template {key!r} ({channel}) version {version} already exists", field="key"
        ) from None
    return row


def create_template(
    session: Session,
    *,
    key: str,
    channel: str,
    variants: dict[str, dict[str, str]],
    description: str | None = None,
    templates_dir: str | Path | None = None,
    limits: TemplateLimits | None = None,
) -> MessageTemplate:
    """Version 1 of an API template. It may override a file template of the same key.
    `limits` (default: this process's settings) bound the save-time trial render."""
    if latest_api_template(session, key=key, channel=channel) is not None:
        raise Conflict(f"template {key!r} ({channel}) exists; add a version instead", field="key")
    return _save(
        session,
        key=key,
        channel=channel,
        variants=variants,
        description=description,
        version=1,
        templates_dir=templates_dir,
        limits=limits,
    )


def add_version(
    session: Session,
    *,
    key: str,
    channel: str,
    variants: dict[str, dict[str, str]],
    description: str | None = None,
    templates_dir: str | Path | None = None,
    limits: TemplateLimits | None = None,
) -> MessageTemplate:
    latest = latest_api_template(session, key=key, channel=channel)
    version = 1 if latest is None else latest.version + 1
    if latest is not None and description is None:
        description = latest.description
    return _save(
        session,
        key=key,
        channel=channel,
        variants=variants,
        description=description,
        version=version,
        templates_dir=templates_dir,
        limits=limits,
    )


def list_api_templates(session: Session) -> list[MessageTemplate]:
    rows = session.exec(
        select(MessageTemplate).order_by(
            MessageTemplate.key, MessageTemplate.channel, col(MessageTemplate.version).desc()
        )
    )
    latest: dict[tuple[str, str], MessageTemplate] = {}
    for row in rows:
        latest.setdefault((row.key, row.channel), row)
    return list(latest.values())


def get_template(
    session: Session,
    *,
    key: str,
    channel: str,
    version: int | None = None,
    templates_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The template as stored: API version (latest or given) or the file template sources."""
    if version is not None:
        row = session.exec(
            select(MessageTemplate).where(
                MessageTemplate.key == key,
                MessageTemplate.channel == channel,
                MessageTemplate.version == version,
            )
        ).first()
    else:
        row = latest_api_template(session, key=key, channel=channel)
    if row is not None:
        return {
            "key": row.key,
            "channel": row.channel,
            "version": row.version,
            "origin": "api",
            "description": row.description,
            "variants": row.variants,
            "created_at": row.created_at,
        }
    if version is None:
        locales = file_locales(key=key, channel=channel, templates_dir=templates_dir)
        if locales:
            eng = engines(templates_dir)
            variants = {}
            for loc in locales:
                parts = {}
                for part in CHANNEL_PARTS[channel]:
                    path = eng.templates_dir / channel / key / loc / PART_FILES[part]
                    if path.is_file():
                        parts[part] = path.read_text(encoding="utf-8")
                variants[loc] = parts
            return {
                "key": key,
                "channel": channel,
                "version": None,
                "origin": "file",
                "description": None,
                "variants": variants,
                "created_at": None,
            }
    raise NotFound(
        f"no {channel} template {key!r}" + (f" version {version}" if version else ""), field="key"
    )


def preview(
    session: Session,
    *,
    key: str,
    channel: str,
    profile: ProfileSnapshot | None = None,
    locale: str | None = None,
    trigger: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    variants: dict[str, dict[str, str]] | None = None,
    templates_dir: str | Path | None = None,
    limits: TemplateLimits | None = None,
) -> tuple[ResolvedTemplate, Rendered]:
    """Render with a real profile or the sample data; `variants` previews an unsaved draft.
    The render runs under `limits` (default: this process's settings), as a send does."""
    from rejse.messaging.sender import profile_context

    if variants is not None:
        validate_variants(channel, variants, templates_dir=templates_dir, limits=limits)
        wanted = formatting.language(locale or (profile.locale if profile else None))
        loc = wanted if wanted in variants else min(variants)
        eng = engines(templates_dir)
        resolved = ResolvedTemplate(
            key,
            channel,
            loc,
            None,
            {p: compile_part(eng, p, s) for p, s in variants[loc].items() if s},
        )
    else:
        resolved = resolve(
            key=key,
            channel=channel,
            locale=locale or (profile.locale if profile else None),
            session=session,
            templates_dir=templates_dir,
        )
    sample = sample_context(locale=resolved.locale)
    context = dict(sample)
    if profile is not None:
        context["profile"] = profile_context(profile)
    if trigger is not None:
        context.update(
            build_context(
                profile=context["profile"],
                trigger=trigger,
                journey=sample["journey"],
                links=sample["links"],
                message=sample["message"],
                extra=extra,
            )
        )
    elif extra is not None:
        context["extra"] = extra
    if not isinstance(context.get("profile"), dict):
        raise Unprocessable("profile could not be loaded", field="profile_id")
    return resolved, render(resolved, context, limits=limits)
