"""Audiences: saved conditions over profiles with their members kept current as events arrive
(docs/audiences.md). Marketers write; analysts read, preview drafts and export members."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import ReadDep, RuntimeDep, SessionDep, WriteDep
from api.errors import responses
from rejse.audiences import service
from rejse.audiences.definition import SLUG, AudienceDefinition, Canvas
from rejse.audiences.export import ExportColumns, export_csv, parse_columns
from rejse.audiences.preview import (
    DEFAULT_SAMPLE,
    DEFAULT_TRAITS,
    MAX_SAMPLE,
    draft_issues,
    preview,
)
from rejse.audiences.usage import audiences_using, journeys_using
from rejse.conditions import Issue
from rejse.db import utcnow
from rejse.errors import Conflict
from rejse.inputs import Text
from rejse.models.audiences import Audience

router = APIRouter(prefix="/api/audiences", tags=["audiences"])

_TAKEN = (409, "An audience with that key exists")
_IN_USE = (409, "Journeys or audiences use it; `detail` names them")
_INVALID = (422, "Invalid input; `errors` name each field (`condition.all[1].op`)")


class AudiencePublic(BaseModel):
    key: str
    name: str
    description: str | None
    size: int = Field(description="members now")
    version: int = Field(description="+1 on each change of the condition")
    created_at: dt.datetime
    updated_at: dt.datetime
    computed_at: dt.datetime | None = Field(description="when membership was last recomputed")


class AudienceDetail(AudiencePublic):
    condition: dict[str, Any]
    canvas: Canvas
    trigger_existing: bool
    journeys: list[str] = Field(
        description="published or paused journeys whose published version names the audience"
    )


class AudienceUpdate(AudienceDefinition):
    key: str | None = Field(  # type: ignore[assignment]  # optional here, the path names it
        default=None, pattern=SLUG, description="left out, or the key in the path"
    )


class PreviewRequest(BaseModel):
    condition: dict[str, Any] = Field(description="a draft condition (docs/audiences.md)")
    sample: int = Field(
        default=DEFAULT_SAMPLE, ge=0, le=MAX_SAMPLE, description="how many matches to show"
    )
    traits: list[Annotated[Text, Field(min_length=1, max_length=200)]] = Field(
        default=list(DEFAULT_TRAITS),
        max_length=20,
        description="the traits shown of each sampled profile (dotted paths)",
    )


class SampleProfilePublic(BaseModel):
    id: str
    email: str | None
    traits: dict[str, Any] = Field(description="the chosen traits the profile has")


class PreviewResult(BaseModel):
    size: int = Field(description="live profiles matching the draft now")
    sample: list[SampleProfilePublic] = Field(description="newest matching profiles first")


class MembersPage(BaseModel):
    profile_ids: list[str] = Field(description="members in profile id order")
    next: str | None = Field(description="pass as `after` for the next page; null: no more")


class CSVResponse(StreamingResponse):
    media_type = "text/csv"


def _detail(session: Session, audience: Audience) -> AudienceDetail:
    return AudienceDetail(
        **audience.model_dump(exclude={"canvas"}),
        canvas=Canvas.model_validate(audience.canvas or {}),
        journeys=journeys_using(session, audience.key),
    )


def _invalid(issues: list[Issue]) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={
            "detail": "; ".join(str(i) for i in issues[:5]),
            "errors": [{"field": i.field, "message": i.message} for i in issues],
        },
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AudienceDetail,
    responses=responses(_TAKEN, _INVALID),
)
def create_audience(
    body: AudienceDefinition, session: SessionDep, _: WriteDep
) -> AudienceDetail | JSONResponse:
    """Save an audience and compute its members. They enter silently unless
    `trigger_existing` is true (then each fires 'Audience Entered')."""
    issues = service.check_definition(session, body)
    if issues:
        return _invalid(issues)
    if service.audience_exists(session, body.key):
        raise Conflict(f"an audience {body.key!r} exists", field="key")
    service.create_audience(session, body, now=utcnow())
    session.commit()
    return _detail(session, service.get_audience(session, body.key))


@router.get("", response_model=list[AudiencePublic])
def list_audiences(session: SessionDep, _: ReadDep) -> list[AudiencePublic]:
    return [AudiencePublic(**a.model_dump()) for a in service.list_audiences(session)]


@router.post("/preview", response_model=PreviewResult, responses=responses(_INVALID))
def preview_audience(
    body: PreviewRequest, session: SessionDep, _: ReadDep
) -> PreviewResult | JSONResponse:
    """Size and a sample of a draft condition, from raw data; nothing is saved."""
    issues = draft_issues(session, body.condition)
    if issues:
        return _invalid(issues)
    result = preview(session, body.condition, now=utcnow(), sample=body.sample, traits=body.traits)
    session.rollback()
    return PreviewResult(
        size=result.size,
        sample=[
            SampleProfilePublic(id=s.id, email=s.email, traits=s.traits) for s in result.sample
        ],
    )


@router.get("/{key}", response_model=AudienceDetail, responses=responses(404))
def get_audience(key: str, session: SessionDep, _: ReadDep) -> AudienceDetail:
    return _detail(session, service.get_audience(session, key))


@router.put("/{key}", response_model=AudienceDetail, responses=responses(404, _INVALID))
def update_audience(
    key: str, body: AudienceUpdate, session: SessionDep, _: WriteDep
) -> AudienceDetail | JSONResponse:
    """Replace the definition. A changed condition recomputes membership; who enters or
    leaves gets 'Audience Entered' / 'Audience Exited'."""
    service.get_audience(session, key)  # 404 before the body's checks
    if body.key is not None and body.key != key:
        return _invalid([Issue("key", f"must be left out or {key!r}, the key in the path")])
    definition = AudienceDefinition(**body.model_dump(exclude={"key"}), key=key)
    issues = service.check_definition(session, definition)
    if issues:
        return _invalid(issues)
    audience = service.update_audience(session, key, definition, now=utcnow())
    session.commit()
    return _detail(session, audience)


@router.delete(
    "/{key}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(404, _IN_USE),
)
def delete_audience(key: str, session: SessionDep, _: WriteDep) -> Response:
    """Delete an audience nothing uses (409 names the journeys and audiences that do)."""
    service.get_audience(session, key)
    users = [
        f"{kind} {', '.join(keys)}"
        for kind, keys in (
            ("journeys", journeys_using(session, key)),
            ("audiences", audiences_using(session, key)),
        )
        if keys
    ]
    if users:
        raise Conflict(f"audience {key!r} is used by {'; '.join(users)}", field="key")
    service.delete_audience(session, key)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{key}/members", response_model=MembersPage, responses=responses(404))
def list_members(
    key: str,
    session: SessionDep,
    _: ReadDep,
    after: Annotated[
        str | None, Query(max_length=64, description="the `next` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MembersPage:
    """Current members, keyset-paged by profile id."""
    service.get_audience(session, key)
    ids = list(service.member_ids(session, key, after=after, limit=limit + 1))
    more = len(ids) > limit
    ids = ids[:limit]
    return MembersPage(profile_ids=ids, next=ids[-1] if more else None)


_LIST = "comma-separated, e.g. "


@router.get(
    "/{key}/export",
    response_class=CSVResponse,
    responses={
        200: {
            "description": "CSV (RFC 4180, UTF-8): `profile_id`, then the identifiers, then "
            "the traits; a cell starting with = + - @ tab or CR has a leading apostrophe "
            "(CSV injection). Streamed: memory stays constant in the number of members",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **responses(404, _INVALID),
    },
)
def export_members(
    key: str,
    session: SessionDep,
    runtime: RuntimeDep,
    _: ReadDep,
    identifiers: Annotated[
        str | None,
        Query(
            max_length=2000,
            description=_LIST + "`email,user_id`: the profile's oldest value of each type",
        ),
    ] = None,
    traits: Annotated[
        str | None,
        Query(max_length=10_000, description=_LIST + "`first_name,address.city`"),
    ] = None,
) -> CSVResponse:
    """The members as a CSV download."""
    service.get_audience(session, key)
    columns: ExportColumns = parse_columns(identifiers, traits)
    session.close()  # the export reads in pages, each with its own session
    return CSVResponse(
        export_csv(runtime.engine, key, columns),
        headers={"Content-Disposition": f'attachment; filename="audience-{key}.csv"'},
    )
