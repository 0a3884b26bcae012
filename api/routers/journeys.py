"""Journeys: definitions and versions, lifecycle, manual entry, runs, stats,
Mermaid diagram. Marketers write, analysts read."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from sqlmodel import Session
from temporalio.service import RPCError

from api.deps import ActivityNamesDep, ReadDep, RuntimeDep, SessionDep, WriteDep
from api.errors import NOT_FOUND, responses
from rejse.contracts import ProcessedEvent
from rejse.db import utcnow
from rejse.errors import Conflict, DomainError, NotFound
from rejse.inputs import MAX_INT32, MAX_OFFSET, Text
from rejse.journeys import service
from rejse.journeys.definition import JourneyDefinition
from rejse.journeys.diagram import mermaid
from rejse.journeys.dispatcher import PreviousRunClosing, start_entry, tell_runs
from rejse.journeys.entry import plan_entry
from rejse.journeys.service import DefinitionInvalid
from rejse.models.journeys import RUN_STATUSES, Journey, JourneyRun, JourneyVersion
from rejse.runtime import Runtime

router = APIRouter(prefix="/api/journeys", tags=["journeys"])

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
    profile_id: Text = Field(min_length=1, max_length=64)
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
    journey = service.set_status(session, key=key, status=new_status)
    if new_status == "archived":
        wids = service.workflow_ids_of(session, key=key, statuses=("cancelled",))
    else:
        wids = service.workflow_ids_of(session, key=key, statuses=("running", "held"))
    session.commit()
    if new_status == "archived":
        told = await tell_runs(runtime, wids, cancel=True)
    else:
        told = await tell_runs(runtime, wids, paused=new_status == "paused")
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
        (404, "No such journey or profile"),
        (409, "The journey is not published, or the profile may not enter it now"),
        (503, "Temporal is unavailable; retry with the same idempotency_key"),
    ),
)
async def enter(
    key: str, body: EnterRequest, session: SessionDep, runtime: RuntimeDep, _: WriteDep
) -> EnterResult:
    """Put one profile into a published journey now (manual entry; any trigger type)."""
    from rejse.profiles.service import load_snapshot

    journey = service.get_journey(session, key=key)
    if journey.status != "published" or journey.published_version is None:
        raise Conflict(
            f"journey {key!r} is {journey.status}; only a published journey takes entries",
            field="key",
        )
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
