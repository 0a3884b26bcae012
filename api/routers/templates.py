"""Message templates: create, new version, get, list, preview. Marketer writes, analyst reads."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from api.deps import ReadDep, RuntimeDep, SessionDep, WriteDep
from api.errors import NOT_FOUND, responses
from rejse.errors import NotFound
from rejse.messaging import template_store
from rejse.messaging.sandbox import TemplateLimits
from rejse.messaging.template_lookup import list_file_templates

router = APIRouter(prefix="/api/templates", tags=["templates"])

Channel = Literal["email", "sms", "in_app", "webhook"]


class TemplateParts(BaseModel):
    subject: str | None = Field(default=None, max_length=2_000)
    html: str | None = Field(default=None, max_length=500_000)
    text: str | None = Field(default=None, max_length=200_000)


class TemplateBase(BaseModel):
    channel: Channel = "email"
    description: str | None = Field(default=None, max_length=500)
    variants: dict[str, TemplateParts] = Field(
        description="locale (da, sv, en) -> parts; Jinja2, see docs/messaging.md for the context"
    )


class TemplateCreate(TemplateBase):
    key: str = Field(min_length=1, max_length=200, examples=["abandoned_cart/reminder"])


class TemplateVersionCreate(TemplateBase):
    pass


class TemplatePublic(BaseModel):
    key: str
    channel: Channel
    version: int | None = Field(description="None for a file template")
    origin: Literal["api", "file"]
    description: str | None = None
    variants: dict[str, dict[str, str]]
    created_at: dt.datetime | None = None


class TemplateSummary(BaseModel):
    key: str
    channel: Channel
    origin: Literal["api", "file"]
    version: int | None = None
    locales: list[str]


class PreviewRequest(BaseModel):
    channel: Channel = "email"
    profile_id: str | None = Field(
        default=None, description="render for this profile; else sample data"
    )
    locale: str | None = Field(default=None, max_length=10)
    trigger: dict[str, Any] | None = Field(
        default=None, description="trigger event (event, properties)"
    )
    extra: dict[str, Any] | None = None
    variants: dict[str, TemplateParts] | None = Field(
        default=None, description="preview an unsaved draft"
    )


class PreviewPublic(BaseModel):
    key: str
    channel: Channel
    locale: str
    version: int | None
    subject: str | None
    html: str | None
    text: str | None


def _variants(body: dict[str, TemplateParts]) -> dict[str, dict[str, str]]:
    return {loc: parts.model_dump(exclude_none=True) for loc, parts in body.items()}


def _public(data: dict[str, Any]) -> TemplatePublic:
    return TemplatePublic(**data)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplatePublic,
    responses=responses((409, "The template exists; add a version instead")),
)
def create_template(
    body: TemplateCreate, session: SessionDep, runtime: RuntimeDep, _: WriteDep
) -> TemplatePublic:
    row = template_store.create_template(
        session,
        key=body.key,
        channel=body.channel,
        variants=_variants(body.variants),
        description=body.description,
        templates_dir=runtime.settings.templates_dir,
        limits=TemplateLimits.from_settings(runtime.settings),
    )
    session.commit()
    return _public({**row.model_dump(), "origin": "api"})


@router.get("", response_model=list[TemplateSummary])
def list_templates(session: SessionDep, runtime: RuntimeDep, _: ReadDep) -> list[TemplateSummary]:
    out = [
        TemplateSummary(
            key=r.key,
            channel=r.channel,
            origin="api",
            version=r.version,
            locales=sorted(r.variants),
        )
        for r in template_store.list_api_templates(session)
    ]
    api_keys = {(t.key, t.channel) for t in out}
    for channel, key, locales in list_file_templates(runtime.settings.templates_dir):
        if (key, channel) not in api_keys:
            out.append(TemplateSummary(key=key, channel=channel, origin="file", locales=locales))
    return sorted(out, key=lambda t: (t.key, t.channel))


@router.post(
    "/{key:path}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplatePublic,
    responses=responses((409, "Another version was saved meanwhile; retry")),
)
def add_version(
    key: str, body: TemplateVersionCreate, session: SessionDep, runtime: RuntimeDep, _: WriteDep
) -> TemplatePublic:
    row = template_store.add_version(
        session,
        key=key,
        channel=body.channel,
        variants=_variants(body.variants),
        description=body.description,
        templates_dir=runtime.settings.templates_dir,
        limits=TemplateLimits.from_settings(runtime.settings),
    )
    session.commit()
    return _public({**row.model_dump(), "origin": "api"})


@router.post(
    "/{key:path}/preview",
    response_model=PreviewPublic,
    responses=responses((404, "No such template or profile")),
)
def preview(
    key: str, body: PreviewRequest, session: SessionDep, runtime: RuntimeDep, _: ReadDep
) -> PreviewPublic:
    from rejse.profiles.service import load_snapshot

    profile = None
    if body.profile_id:
        profile = load_snapshot(session, profile_id=body.profile_id)
        if profile is None or profile.erased:
            raise NotFound(f"no profile {body.profile_id!r}", field="profile_id")
    resolved, rendered = template_store.preview(
        session,
        key=key,
        channel=body.channel,
        profile=profile,
        locale=body.locale,
        trigger=body.trigger,
        extra=body.extra,
        variants=_variants(body.variants) if body.variants is not None else None,
        templates_dir=runtime.settings.templates_dir,
        limits=TemplateLimits.from_settings(runtime.settings),
    )
    return PreviewPublic(
        key=key,
        channel=body.channel,
        locale=resolved.locale,
        version=resolved.version,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
    )


@router.get("/{key:path}", response_model=TemplatePublic, responses=NOT_FOUND)
def get_template(
    key: str,
    session: SessionDep,
    runtime: RuntimeDep,
    _: ReadDep,
    channel: Channel = "email",
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> TemplatePublic:
    return _public(
        template_store.get_template(
            session,
            key=key,
            channel=channel,
            version=version,
            templates_dir=runtime.settings.templates_dir,
        )
    )
