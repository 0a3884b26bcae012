"""Templates: the list, a preview per locale (da, sv, en) with a chosen profile or the sample
data, and the edit form that saves a new version, with a refused source's error beside its
part and the line it names marked. Built from the functions behind `GET /api/templates`,
`GET /api/templates/{key}`, `POST /api/templates/{key}/preview` and `POST
/api/templates/{key}/versions`.

The rendered HTML of a preview is never put into the console's own page: it is served by
`/templates/frame` with a sandboxing Content-Security-Policy (no scripts, no forms, nothing
loaded but images) and shown in an iframe."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.console import i18n, kit
from api.console.kit import ConsoleRoute, CsrfForm, ReadUser, WriteUser
from api.deps import RuntimeDep, SessionDep
from api.routers.templates import list_templates
from rejse.errors import DomainError, NotFound
from rejse.messaging import template_store
from rejse.messaging.formatting import SUPPORTED_LOCALES
from rejse.messaging.rendering import Rendered
from rejse.messaging.sandbox import TemplateLimits
from rejse.messaging.template_lookup import CHANNEL_PARTS
from rejse.profiles import service as profiles
from rejse.roles import Role

router = APIRouter(route_class=ConsoleRoute)

BASE = f"{kit.PREFIX}/templates"
Channel = Literal["email", "sms", "in_app", "webhook"]
CHANNELS: tuple[str, ...] = get_args(Channel)
KeyQuery = Annotated[str, Query(min_length=1, max_length=200)]
LINE_RE = re.compile(r"^line (\d+):")
# The preview frame: the rendered email may show images and its own styles, nothing else runs.
FRAME_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; sandbox"
)
PREVIEW_CSP = kit.HEADERS["Content-Security-Policy"] + "; frame-src 'self'"

kit.add_nav(50, "nav_templates", BASE, (Role.marketer, Role.analyst))

i18n.add(
    {
        "templates_title": ("Skabeloner", "Mallar", "Templates"),
        "templates_key": ("Nøgle", "Nyckel", "Key"),
        "templates_channel": ("Kanal", "Kanal", "Channel"),
        "templates_origin": ("Oprindelse", "Ursprung", "Origin"),
        "templates_version": ("Version", "Version", "Version"),
        "templates_locales": ("Sprog", "Språk", "Locales"),
        "templates_origin_api": ("API", "API", "API"),
        "templates_origin_file": ("fil", "fil", "file"),
        "templates_empty": ("Ingen skabeloner endnu.", "Inga mallar ännu.", "No templates yet."),
        "template_title": ("Skabelon {name}", "Mall {name}", "Template {name}"),
        "template_preview": ("Forhåndsvisning", "Förhandsvisning", "Preview"),
        "template_locale_tabs": (
            "Sprog for forhåndsvisning",
            "Språk för förhandsvisning",
            "Preview language",
        ),
        "template_rendered_in": (
            "Vist på {locale}, version {version}.",
            "Visad på {locale}, version {version}.",
            "Shown in {locale}, version {version}.",
        ),
        "template_file_version": ("fil", "fil", "file"),
        "template_profile": (
            "Profil (id eller e-mail)",
            "Profil (id eller e-post)",
            "Profile (id or email)",
        ),
        "template_profile_hint": (
            "Tom: eksempeldata.",
            "Tom: exempeldata.",
            "Empty: sample data.",
        ),
        "template_show": ("Vis", "Visa", "Show"),
        "template_subject": ("Emne", "Ämne", "Subject"),
        "template_text": ("Tekst", "Text", "Text"),
        "template_html": ("HTML", "HTML", "HTML"),
        "template_frame_title": (
            "Forhåndsvisning af HTML",
            "Förhandsvisning av HTML",
            "HTML preview",
        ),
        "template_edit": ("Redigér (ny version)", "Redigera (ny version)", "Edit (new version)"),
        "template_edit_title": ("Redigér {name}", "Redigera {name}", "Edit {name}"),
        "template_edit_intro": (
            "Gem laver en ny version; tidligere versioner bevares. Et sprog uden indhold udelades.",
            "Spara skapar en ny version; tidigare versioner behålls. Ett språk utan innehåll "
            "utelämnas.",
            "Saving makes a new version; earlier versions are kept. A locale left empty is left "
            "out.",
        ),
        "template_description": ("Beskrivelse", "Beskrivning", "Description"),
        "template_saved": (
            "Version {version} er gemt.",
            "Version {version} är sparad.",
            "Version {version} is saved.",
        ),
        "template_error_line": ("Linje {line}", "Rad {line}", "Line {line}"),
        "part_subject": ("Emne", "Ämne", "Subject"),
        "part_html": ("HTML-indhold", "HTML-innehåll", "HTML body"),
        "part_text": ("Tekstindhold", "Textinnehåll", "Text body"),
        "locale_da": ("Dansk", "Danska", "Danish"),
        "locale_sv": ("Svensk", "Svenska", "Swedish"),
        "locale_en": ("Engelsk", "Engelska", "English"),
        "err_profile_unknown": (
            "Ingen profil med det id eller den e-mail.",
            "Ingen profil med det id:t eller den e-posten.",
            "No profile with that id or email.",
        ),
        "err_description_long": ("Højst 500 tegn.", "Högst 500 tecken.", "At most 500 characters."),
        "err_variants_empty": (
            "Udfyld mindst ét sprog.",
            "Fyll i minst ett språk.",
            "Fill in at least one locale.",
        ),
    }
)


def _check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise kit.PageError(422, field="channel", message=", ".join(CHANNELS))
    return channel


@router.get("/templates")
def list_page(
    request: Request, session: SessionDep, runtime: RuntimeDep, user: ReadUser
) -> Response:
    """Every template (API versions and file templates), as `GET /api/templates` lists them."""
    rows = list_templates(session, runtime, None)  # type: ignore[arg-type]  # the role is checked
    return kit.render(request, "templates_list.html", {"rows": rows, "base": BASE})


def _profile_id(session: Session, value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if "@" in value:
        return profiles.find_by_identifier(session, type="email", value=value)
    return profiles.resolve_profile_id(session, value) if len(value) <= 64 else None


def _preview(
    session: Session,
    runtime: Any,
    *,
    key: str,
    channel: str,
    locale: str,
    profile_id: str | None,
) -> tuple[Any, Rendered]:
    snapshot = None
    if profile_id is not None:
        snapshot = profiles.load_snapshot(session, profile_id=profile_id)
        if snapshot is None or snapshot.erased:
            raise NotFound("no such profile", field="profile")
    return template_store.preview(
        session,
        key=key,
        channel=channel,
        profile=snapshot,
        locale=locale,
        templates_dir=runtime.settings.templates_dir,
        limits=TemplateLimits.from_settings(runtime.settings),
    )


def _locale(value: str) -> str:
    if value not in SUPPORTED_LOCALES:
        raise kit.PageError(422, field="locale", message=", ".join(SUPPORTED_LOCALES))
    return value


@router.get("/templates/view")
def preview_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: ReadUser,
    key: KeyQuery,
    channel: Annotated[str, Query(max_length=20)] = "email",
    locale: Annotated[str, Query(max_length=10)] = "da",
    profile: Annotated[str, Query(max_length=10_000)] = "",
    saved: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """The template rendered in one locale, with the profile named or the sample data."""
    channel, locale = _check_channel(channel), _locale(locale)
    stored = template_store.get_template(
        session, key=key, channel=channel, templates_dir=runtime.settings.templates_dir
    )
    ctx: dict[str, Any] = {
        "base": BASE,
        "tpl": stored,
        "key": key,
        "channel": channel,
        "locale": locale,
        "locales": SUPPORTED_LOCALES,
        "profile": profile,
        "values": {"profile": profile},
        "resolved": None,
        "rendered": None,
        "problem": None,
        "can_write": user.can_write,
        "saved": saved if saved.isdigit() else None,
    }
    headers = {"Content-Security-Policy": PREVIEW_CSP}
    pid = _profile_id(session, profile)
    if profile.strip() and pid is None:
        return kit.form_error(
            request,
            "template_view.html",
            ctx,
            {"profile": kit.text(request, "err_profile_unknown")},
        )
    try:
        resolved, rendered = _preview(
            session, runtime, key=key, channel=channel, locale=locale, profile_id=pid
        )
    except NotFound as exc:
        if exc.field == "profile":
            return kit.form_error(
                request,
                "template_view.html",
                ctx,
                {"profile": kit.text(request, "err_profile_unknown")},
            )
        raise
    except DomainError as exc:  # the render failed: show why, with its line
        ctx["problem"] = {"field": exc.field, "message": exc.message}
        return kit.render(request, "template_view.html", ctx, status_code=422, headers=headers)
    ctx["resolved"], ctx["rendered"] = resolved, rendered
    return kit.render(request, "template_view.html", ctx, headers=headers)


@router.get("/templates/frame")
def preview_frame(
    session: SessionDep,
    runtime: RuntimeDep,
    user: ReadUser,
    key: KeyQuery,
    channel: Annotated[str, Query(max_length=20)] = "email",
    locale: Annotated[str, Query(max_length=10)] = "da",
    profile: Annotated[str, Query(max_length=10_000)] = "",
) -> Response:
    """The rendered HTML part alone, for the preview's sandboxed iframe."""
    channel, locale = _check_channel(channel), _locale(locale)
    pid = _profile_id(session, profile)
    if profile.strip() and pid is None:
        raise kit.PageError(404, field="profile")
    _, rendered = _preview(
        session, runtime, key=key, channel=channel, locale=locale, profile_id=pid
    )
    return HTMLResponse(
        rendered.html or "",
        headers={
            **kit.HEADERS,
            "Content-Security-Policy": FRAME_CSP,
            "X-Frame-Options": "SAMEORIGIN",
        },
    )


def _edit_ctx(stored: dict[str, Any], key: str, channel: str) -> dict[str, Any]:
    values: dict[str, str] = {"description": stored.get("description") or ""}
    for loc, parts in (stored.get("variants") or {}).items():
        for part, source in parts.items():
            values[f"variants.{loc}.{part}"] = source
    return {
        "base": BASE,
        "key": key,
        "channel": channel,
        "tpl": stored,
        "locales": SUPPORTED_LOCALES,
        "parts": CHANNEL_PARTS[channel],
        "values": values,
        "problem_line": None,
        "problem_field": None,
    }


def _stored(session: Session, runtime: Any, key: str, channel: str) -> dict[str, Any]:
    return template_store.get_template(
        session, key=key, channel=channel, templates_dir=runtime.settings.templates_dir
    )


@router.get("/templates/edit")
def edit_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: WriteUser,
    key: KeyQuery,
    channel: Annotated[str, Query(max_length=20)] = "email",
) -> Response:
    """The sources of the newest version, per locale and part, to change and save."""
    channel = _check_channel(channel)
    ctx = _edit_ctx(_stored(session, runtime, key, channel), key, channel)
    return kit.render(request, "template_edit.html", ctx)


@router.post("/templates/edit")
def save_version(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: WriteUser,
    form: CsrfForm,
    key: KeyQuery,
    channel: Annotated[str, Query(max_length=20)] = "email",
) -> Response:
    """Save the form as a new version (`POST /api/templates/{key}/versions`); a refused source
    comes back with its error beside the part and the line marked."""
    channel = _check_channel(channel)
    ctx = _edit_ctx(_stored(session, runtime, key, channel), key, channel)
    ctx["values"] = form.values()
    description = form.get("description").strip() or None
    if description is not None and len(description) > 500:
        session.rollback()
        return kit.form_error(
            request,
            "template_edit.html",
            ctx,
            {"description": kit.text(request, "err_description_long")},
        )
    variants: dict[str, dict[str, str]] = {}
    for loc in SUPPORTED_LOCALES:
        parts = {
            part: form.get(f"variants.{loc}.{part}")
            for part in CHANNEL_PARTS[channel]
            if form.get(f"variants.{loc}.{part}").strip()
        }
        if parts:
            variants[loc] = parts
    if not variants:
        session.rollback()
        first = f"variants.{SUPPORTED_LOCALES[0]}.{CHANNEL_PARTS[channel][0]}"
        return kit.form_error(
            request, "template_edit.html", ctx, {first: kit.text(request, "err_variants_empty")}
        )
    try:
        row = template_store.add_version(
            session,
            key=key,
            channel=channel,
            variants=variants,
            description=description,
            templates_dir=runtime.settings.templates_dir,
            limits=TemplateLimits.from_settings(runtime.settings),
        )
        session.commit()
    except DomainError as exc:
        session.rollback()
        field = exc.field or "description"
        if field == "variants" or field.count(".") == 1:  # a whole locale: its first part
            loc = field.partition(".")[2] or SUPPORTED_LOCALES[0]
            field = f"variants.{loc}.{CHANNEL_PARTS[channel][0]}"
        found = LINE_RE.match(exc.message)
        ctx["problem_field"] = field
        ctx["problem_line"] = int(found.group(1)) if found else None
        return kit.form_error(request, "template_edit.html", ctx, {field: exc.message})
    query = urlencode({"key": key, "channel": channel, "saved": row.version})
    return kit.redirect(f"{BASE}/view?{query}", request)
