"""Journeys: definitions and versions, lifecycle, manual entry, runs, stats,
Mermaid diagram. Marketers write, analysts read."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, status
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from temporalio.service import RPCError

from api.deps import ActivityNamesDep, ReadDep, RuntimeDep, SessionDep, WriteDep
from api.errors import NOT_FOUND, responses
from rejse.contracts import ProcessedEvent
from rejse.db import utcnow
from rejse.errors import Conflict, DomainError, NotFound, Unprocessable
from rejse.inputs import MAX_INT32, MAX_OFFSET, Omittable, Text
from rejse.journeys import bulk, service
from rejse.journeys.definition import JourneyDefinition
from rejse.journeys.diagram import mermaid
from rejse.journeys.dispatcher import PreviousRunClosing, change_status, start_entry
from rejse.journeys.entry import plan_entry
from rejse.journeys.service import DefinitionInvalid
from rejse.logging import get_logger
from rejse.models.journeys import (
    RUN_STATUSES,
    Journey,
    JourneyEntry,
    JourneyRun,
    JourneyVersion,
)
from rejse.runtime import Runtime

router = APIRouter(prefix="/api/journeys", tags=["journeys"])
log = get_logger("rejse.journeys")

ARCHIVED = "The journey is archived"
LIFECYCLE = responses(404, (409, "The journey's status does not allow this change"))

VersionQuery = Annotated[int | None, Query(ge=1, le=MAX_INT32)]
DefinitionBody = Annotated[
    dict[str, Any],
    Body(description="A journey definition", examples=[{"key": "abandoned-cart"}]),
]


class JourneyPublic(BaseModel):
    key: str
    name: str
    status: str
    latest_version: int
    published_version: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class VersionPublic(BaseModel):
    version: int
    created_at: dt.datetime
    published_at: dt.datetime | None


class JourneyDetail(JourneyPublic):
    version: int = Field(description="the version whose definition is shown")
    definition: dict[str, Any]
    versions: list[VersionPublic]


class PublishRequest(BaseModel):
    version: int | None = Field(
        default=None, ge=1, le=MAX_INT32, description="null or left out: the latest version"
    )


class LifecycleResult(JourneyPublic):
    runs_told: int = Field(0, description="running runs that were paused, resumed or cancelled")


class EnterRequest(BaseModel):
    profile_id: Omittable[Text] = Field(
        default=None, min_length=1, max_length=64, description="one profile (or give audience)"
    )
    audience: Omittable[Text] = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="every current member of this audience (or give profile_id): answered 202 "
        "with the entry's progress, which GET /api/journeys/{key}/entries/{id} shows as the "
        "members are entered at REJSE_JOURNEY_ENTRY_RATE per second",
    )
    properties: dict[str, Any] = Field(
        default_factory=dict, description="available to the journey as trigger.properties"
    )
    idempotency_key: Text | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="the same key enters once; null or left out: every call enters",
    )


class EnterResult(BaseModel):
    run_id: str
    workflow_id: str
    version: int


class EntryProgress(BaseModel):
    """An entry of many profiles: a schedule fire or an audience entered by hand."""

    id: str = Field(description="schedule-<fire time> or manual-<hash>")
    journey: str
    source: str = Field(description="schedule or manual")
    audience: str | None = Field(description="null: every live profile")
    fired_at: dt.datetime
    total: int = Field(description="members when the entry began")
    entered: int = Field(description="runs started so far")
    skipped: int = Field(
        description="members already in the journey, or whose re-entry rule said no"
    )
    status: str = Field(description="running, done or cancelled (the journey was archived)")
    created_at: dt.datetime
    finished_at: dt.datetime | None


class RunPublic(BaseModel):
    id: str
    workflow_id: str
    profile_id: str
    version: int
    status: str
    current_step: str | None
    step_since: dt.datetime
    entered_at: dt.datetime
    ended_at: dt.datetime | None
    converted: bool
    variant: str | None


def _invalid(exc: DefinitionInvalid) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={
            "detail": exc.message,
            "errors": [{"field": i.field, "message": i.message} for i in exc.issues],
        },
    )


def _public(journey: Journey) -> JourneyPublic:
    return JourneyPublic(**journey.model_dump())


def _detail(session: Session, journey: Journey, version: JourneyVersion) -> JourneyDetail:
    versions = [
        VersionPublic(**v.model_dump()) for v in service.list_versions(session, key=journey.key)
    ]
    return JourneyDetail(
        **journey.model_dump(),
        version=version.version,
        definition=version.definition,
        versions=versions,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JourneyDetail,
    responses=responses((409, "A journey with this key exists"))
    | {422: {"description": "invalid definition; `errors` name step and field"}},
)
def create_journey(
    body: DefinitionBody, session: SessionDep, _: WriteDep
) -> JourneyDetail | JSONResponse:
    try:
        version = service.create_journey(session, definition=body)
    except DefinitionInvalid as exc:
        return _invalid(exc)
    session.commit()
    return _detail(session, service.get_journey(session, key=version.journey_key), version)


@router.get("", response_model=list[JourneyPublic])
def list_journeys(
    session: SessionDep, _: ReadDep, status_: Annotated[str | None, Query(alias="status")] = None
) -> list[JourneyPublic]:
    return [_public(j) for j in service.list_journeys(session, status=status_)]


@router.get("/{key}", response_model=JourneyDetail, responses=NOT_FOUND)
def get_journey(
    key: str, session: SessionDep, _: ReadDep, version: VersionQuery = None
) -> JourneyDetail:
    journey = service.get_journey(session, key=key)
    row = service.get_version(session, key=key, version=version or journey.latest_version)
    return _detail(session, journey, row)


@router.put(
    "/{key}",
    response_model=JourneyDetail,
    responses=responses(404, (409, ARCHIVED))
    | {422: {"description": "invalid definition; `errors` name step and field"}},
)
def add_version(
    key: str, body: DefinitionBody, session: SessionDep, _: WriteDep
) -> JourneyDetail | JSONResponse:
    try:
        version = service.add_version(session, key=key, definition=body)
    except DefinitionInvalid as exc:
        return _invalid(exc)
    session.commit()
    return _detail(session, service.get_journey(session, key=key), version)


@router.post(
    "/{key}/publish", response_model=JourneyPublic, responses=responses(404, (409, ARCHIVED))
)
def publish(
    key: str,
    session: SessionDep,
    activity_names: ActivityNamesDep,
    runtime: RuntimeDep,
    _: WriteDep,
    body: Annotated[PublishRequest | None, Body()] = None,
) -> JourneyPublic | JSONResponse:
    try:
        journey = service.publish(
            session,
            key=key,
            version=body.version if body else None,
            activity_names=activity_names,
            webhook_allow_private=runtime.settings.webhook_allow_private,
        )
    except DefinitionInvalid as exc:
        return _invalid(exc)
    session.commit()
    return _public(journey)


async def _lifecycle(
    key: str, session: Session, runtime: Runtime, new_status: str
) -> LifecycleResult:
    journey, told = await change_status(session, runtime, key=key, status=new_status)
    return LifecycleResult(**journey.model_dump(), runs_told=told)


@router.post("/{key}/pause", response_model=LifecycleResult, responses=LIFECYCLE)
async def pause(key: str, session: SessionDep, runtime: RuntimeDep, _: WriteDep) -> LifecycleResult:
    """No new entries; running runs are held before their next step."""
    return await _lifecycle(key, session, runtime, "paused")


@router.post("/{key}/resume", response_model=LifecycleResult, responses=LIFECYCLE)
async def resume(
    key: str, session: SessionDep, runtime: RuntimeDep, _: WriteDep
) -> LifecycleResult:
    return await _lifecycle(key, session, runtime, "published")


@router.post("/{key}/archive", response_model=LifecycleResult, responses=LIFECYCLE)
async def archive(
    key: str, session: SessionDep, runtime: RuntimeDep, _: WriteDep
) -> LifecycleResult:
    """No new entries; running runs are cancelled."""
    return await _lifecycle(key, session, runtime, "archived")


@router.post(
    "/{key}/enter",
    response_model=EnterResult,
    status_code=status.HTTP_201_CREATED,
    responses=responses(
        (404, "No such journey, profile or audience"),
        (409, "The journey is not published, or the profile may not enter it now"),
        (503, "Temporal is unavailable; retry with the same idempotency_key"),
    )
    | {
        202: {
            "model": EntryProgress,
            "description": "an audience's members are being entered (its progress)",
        }
    },
)
async def enter(
    key: str, body: EnterRequest, session: SessionDep, runtime: RuntimeDep, _: WriteDep
) -> EnterResult | JSONResponse:
    """Put one profile (`profile_id`) into a published journey now, or every current member of
    an audience (`audience`; 202 with the entry's progress). Manual entry; any trigger type."""
    from rejse.profiles.service import load_snapshot

    if (body.profile_id is None) == (body.audience is None):
        raise Unprocessable(
            "give exactly one of profile_id or audience",
            field="profile_id" if body.profile_id is None else "audience",
        )
    journey = service.get_journey(session, key=key)
    if journey.status != "published" or journey.published_version is None:
        raise Conflict(
            f"journey {key!r} is {journey.status}; only a published journey takes entries",
            field="key",
        )
    if body.profile_id is None:  # then the audience (exactly one of the two, checked above)
        return await _enter_audience(key, str(body.audience), body, session, runtime)
    snapshot = load_snapshot(session, profile_id=body.profile_id)
    if snapshot is None or snapshot.erased:
        raise NotFound(f"no profile {body.profile_id!r}", field="profile_id")
    defn = JourneyDefinition.model_validate(
        service.get_version(session, key=key, version=journey.published_version).definition
    )
    now = utcnow()
    event_id = f"manual:{key}:{body.idempotency_key or uuid.uuid4().hex}"
    trigger = ProcessedEvent(
        event_id=event_id,
        profile_id=snapshot.id,
        type="internal",
        event="Journey Entered Manually",
        properties=body.properties,
        timestamp=now,
        received_at=now,
    )
    entry = plan_entry(session, journey=journey, defn=defn, event=trigger)
    if entry is None:
        raise Conflict(
            "the profile is in this journey already, or its re-entry rule does not "
            "allow another entry yet",
            field="profile_id",
        )
    session.commit()
    try:
        client = await runtime.temporal.client()
        await start_entry(client, runtime, entry)
    except (PreviousRunClosing, RPCError, OSError, RuntimeError, TimeoutError) as exc:
        raise DomainError(
            "the workflow service is unavailable; retry with the same idempotency_key",
            field="idempotency_key",
            status_code=503,
        ) from exc
    return EnterResult(
        run_id=entry.run_input.run_id,
        workflow_id=entry.workflow_id,
        version=entry.run_input.version,
    )


_driving: set[asyncio.Task[int]] = set()  # entries this process drives (kept from the GC)


async def _enter_audience(
    key: str, audience: str, body: EnterRequest, session: Session, runtime: Runtime
) -> JSONResponse:
    """Open the entry (the same idempotency key finds the same one) and drive it in this
    process; the scheduler job carries it on should this process stop."""
    from rejse.models.audiences import Audience

    if session.get(Audience, audience) is None:
        raise NotFound(f"no audience {audience!r}", field="audience")
    row = bulk.open_entry(
        session,
        journey_key=key,
        entry_id=bulk.manual_entry_id(body.idempotency_key),
        source="manual",
        audience=audience,
        fired_at=utcnow(),
        properties=body.properties,
    )
    session.commit()
    progress = _progress(row)
    if row.status == "running":
        task = asyncio.create_task(_drive(runtime, key, row.id))
        _driving.add(task)
        task.add_done_callback(_driving.discard)
    return JSONResponse(status_code=202, content=progress.model_dump(mode="json"))


async def _drive(runtime: Runtime, key: str, entry_id: str) -> int:
    try:
        return await bulk.drive(runtime, key, entry_id)
    except Exception as exc:  # noqa: BLE001 - the scheduler job resumes the entry
        log.warning("journey_entry_failed", journey=key, entry=entry_id, error=type(exc).__name__)
        return 0


def _progress(row: JourneyEntry) -> EntryProgress:
    return EntryProgress(journey=row.journey_key, **row.model_dump(exclude={"journey_key"}))


@router.get("/{key}/entries", response_model=list[EntryProgress], responses=NOT_FOUND)
def list_entries(
    key: str,
    session: SessionDep,
    _: ReadDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EntryProgress]:
    """Entries of many profiles (schedule fires, audiences entered by hand), newest first,
    each with its progress: entered and skipped so far of the total."""
    service.get_journey(session, key=key)
    rows = session.exec(
        select(JourneyEntry)
        .where(JourneyEntry.journey_key == key)
        .order_by(col(JourneyEntry.created_at).desc(), col(JourneyEntry.id))
        .limit(limit)
    )
    return [_progress(r) for r in rows]


@router.get(
    "/{key}/entries/{entry_id}",
    response_model=EntryProgress,
    responses=responses((404, "No such journey or entry")),
)
def get_entry(
    key: str, entry_id: Annotated[str, Path(max_length=64)], session: SessionDep, _: ReadDep
) -> EntryProgress:
    row = session.get(JourneyEntry, (key, entry_id))
    if row is None:
        raise NotFound(f"journey {key!r} has no entry {entry_id!r}", field="entry_id")
    return _progress(row)


@router.get(
    "/{key}/runs",
    response_model=list[RunPublic],
    responses=responses((400, "Unknown status"), 404),
)
def list_runs(
    key: str,
    session: SessionDep,
    _: ReadDep,
    status_: Annotated[str | None, Query(alias="status")] = None,
    profile_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[RunPublic]:
    """Who is at which step since when (newest entries first)."""
    if status_ is not None and status_ not in RUN_STATUSES:
        raise DomainError(f"status must be one of {', '.join(RUN_STATUSES)}", field="status")
    rows: list[JourneyRun] = service.list_runs(
        session, key=key, status=status_, profile_id=profile_id, limit=limit, offset=offset
    )
    return [RunPublic(**r.model_dump()) for r in rows]


@router.get("/{key}/stats", responses=NOT_FOUND)
def stats(key: str, session: SessionDep, _: ReadDep) -> dict[str, Any]:
    """Per step: entered, waiting, sent, converted, exited; per split variant: conversion with a
    two-proportion z-test against the control."""
    return service.stats(session, key=key)


@router.get(
    "/{key}/diagram",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Mermaid flowchart"},
        **NOT_FOUND,
    },
)
def diagram(
    key: str, session: SessionDep, _: ReadDep, version: VersionQuery = None
) -> PlainTextResponse:
    journey = service.get_journey(session, key=key)
    row = service.get_version(
        session, key=key, version=version or journey.published_version or journey.latest_version
    )
    return PlainTextResponse(
        mermaid(JourneyDefinition.model_validate(row.definition)), media_type="text/plain"
    )
