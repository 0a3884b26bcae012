"""The sales API: reps, "next customer to contact", leads and their outcomes, follow-up figures."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from starlette.concurrency import run_in_threadpool

from api.deps import READ, SALES, RuntimeDep, SalesDep, SessionDep, require
from rejse.db import session_scope
from rejse.leads import service as leads
from rejse.leads.schemas import (
    LeadPublic,
    Metrics,
    NextItem,
    OutcomeCreate,
    RepCreate,
    RepPublic,
    RepUpdate,
)
from rejse.logging import get_logger
from rejse.models.leads import Lead, SalesRep

router = APIRouter(prefix="/api/sales", tags=["sales"])
log = get_logger("rejse.sales")

MetricsDep = Annotated[Any, Depends(require(*SALES, *READ))]


def _rep(row: SalesRep) -> RepPublic:
    return RepPublic.model_validate(row.model_dump())


def _lead(row: Lead) -> LeadPublic:
    return LeadPublic.model_validate(row.model_dump())


@router.post("/reps", status_code=status.HTTP_201_CREATED, response_model=RepPublic)
def create_rep(body: RepCreate, session: SessionDep, _: SalesDep) -> RepPublic:
    row = leads.create_rep(session, rep=body)
    session.commit()
    return _rep(row)


@router.get("/reps", response_model=list[RepPublic])
def list_reps(session: SessionDep, _: SalesDep) -> list[RepPublic]:
    return [_rep(r) for r in leads.list_reps(session)]


@router.get("/reps/{rep_id}", response_model=RepPublic)
def get_rep(rep_id: str, session: SessionDep, _: SalesDep) -> RepPublic:
    return _rep(leads.get_rep(session, rep_id=rep_id))


@router.patch("/reps/{rep_id}", response_model=RepPublic)
def update_rep(rep_id: str, body: RepUpdate, session: SessionDep, _: SalesDep) -> RepPublic:
    row = leads.update_rep(session, rep_id=rep_id, changes=body)
    session.commit()
    return _rep(row)


@router.get("/next", response_model=list[NextItem])
def next_to_contact(
    session: SessionDep,
    _: SalesDep,
    rep: Annotated[str | None, Query(description="rep id; all open leads without")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[NextItem]:
    """Open leads, highest priority first (score, recent high-intent behaviour, SLA due), each
    with its reason and contact data."""
    return leads.next_to_contact(session, rep_id=rep, limit=limit)


@router.get("/leads/{lead_id}", response_model=LeadPublic)
def get_lead(lead_id: str, session: SessionDep, _: SalesDep) -> LeadPublic:
    return _lead(leads.get_lead(session, lead_id=lead_id))


@router.post("/leads/{lead_id}/outcome", response_model=LeadPublic)
async def record_outcome(
    lead_id: str, body: OutcomeCreate, runtime: RuntimeDep, _: SalesDep
) -> LeadPublic:
    """Record the outcome (the same outcome twice acts once) and tell the hand-off workflow.
    `won` moves the profile to `customer`; `not_relevant` suppresses new hand-offs."""

    def write() -> tuple[Lead, bool]:
        with session_scope(runtime.engine) as session:
            return leads.record_outcome(
                session, lead_id=lead_id, outcome=body.outcome, note=body.note
            )

    lead, changed = await run_in_threadpool(write)
    if changed:
        try:
            client = await runtime.temporal.client()
            handle = client.get_workflow_handle(lead.workflow_id, run_id=str(uuid.UUID(lead.id)))
            await handle.signal("outcome", body.outcome)
        except Exception as exc:  # noqa: BLE001 - Temporal down or the run is over
            # The record is kept; the workflow sees the closed lead at its next SLA step.
            log.info("outcome_signal_skipped", lead_id=lead.id, error=type(exc).__name__)
    return _lead(lead)


@router.get("/metrics", response_model=Metrics)
def metrics(
    session: SessionDep,
    _: MetricsDep,
    since: Annotated[dt.datetime | None, Query(description="only leads created since")] = None,
) -> Metrics:
    """AQLs created, share contacted within the SLA, median time to contact, outcomes."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    return leads.metrics(session, since=since)
