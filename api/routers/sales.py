"""The sales API: reps, "next customer to contact", leads and their outcomes, follow-up figures.

A sales key bound to a rep (`rep_id` on the key) sees and changes only that rep's leads (another
rep's lead is 404, as a missing one is), sees only its own rep record and changes no rep; an
unbound sales key and admin see every rep's, as a sales manager does."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import READ, SALES, Principal, RuntimeDep, SalesDep, SessionDep, require
from api.errors import NOT_FOUND, responses
from rejse.db import session_scope
from rejse.errors import DomainError, NotFound
from rejse.inputs import Instant, Text
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
from rejse.runtime import Runtime

router = APIRouter(prefix="/api/sales", tags=["sales"])
log = get_logger("rejse.sales")

MetricsDep = Annotated[Principal, Depends(require(*SALES, *READ))]


def _bound_rep(runtime: Runtime, principal: Principal) -> str | None:
    """The rep the caller's key is bound to; None: it sees every rep's leads."""
    return runtime.keys.rep_of(principal.key_id)


def _no_rep_changes(runtime: Runtime, principal: Principal) -> None:
    if _bound_rep(runtime, principal) is not None:
        # Territories, activity and managers steer the assignment of every rep's leads: a
        # manager's (unbound) key changes them.
        raise DomainError(
            "a key bound to a rep cannot change reps; use an unbound sales key", status_code=403
        )


def _rep(row: SalesRep) -> RepPublic:
    return RepPublic.model_validate(row.model_dump())


def _lead(row: Lead) -> LeadPublic:
    return LeadPublic.model_validate(row.model_dump())


@router.post("/reps", status_code=status.HTTP_201_CREATED, response_model=RepPublic)
def create_rep(
    body: RepCreate, session: SessionDep, runtime: RuntimeDep, principal: SalesDep
) -> RepPublic:
    _no_rep_changes(runtime, principal)
    row = leads.create_rep(session, rep=body)
    session.commit()
    return _rep(row)


@router.get("/reps", response_model=list[RepPublic])
def list_reps(session: SessionDep, runtime: RuntimeDep, principal: SalesDep) -> list[RepPublic]:
    """Every rep; a rep-bound key sees only its own."""
    bound = _bound_rep(runtime, principal)
    if bound is not None:
        return [_rep(leads.get_rep(session, rep_id=bound))]
    return [_rep(r) for r in leads.list_reps(session)]


@router.get("/reps/{rep_id}", response_model=RepPublic, responses=NOT_FOUND)
def get_rep(
    rep_id: str, session: SessionDep, runtime: RuntimeDep, principal: SalesDep
) -> RepPublic:
    bound = _bound_rep(runtime, principal)
    if bound is not None and rep_id != bound:
        raise NotFound(f"no rep with id {rep_id!r}", field="rep_id")
    return _rep(leads.get_rep(session, rep_id=rep_id))


@router.patch(
    "/reps/{rep_id}",
    response_model=RepPublic,
    responses=responses((400, "A rep cannot be their own manager"), 404),
)
def update_rep(
    rep_id: str, body: RepUpdate, session: SessionDep, runtime: RuntimeDep, principal: SalesDep
) -> RepPublic:
    """Change the fields sent; a field left out stays as it is, null clears the fields that
    may be empty (`manager_id`, `webhook_url`, `crm_owner_id`)."""
    _no_rep_changes(runtime, principal)
    row = leads.update_rep(session, rep_id=rep_id, changes=body)
    session.commit()
    return _rep(row)


@router.get("/next", response_model=list[NextItem], responses=responses((404, "No such rep")))
def next_to_contact(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: SalesDep,
    rep: Annotated[
        Text | None,
        Query(
            max_length=32, description="rep id; all open leads without (a rep-bound key: its rep)"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[NextItem]:
    """Open leads, highest priority first (score, recent high-intent behaviour, SLA due), each
    with its reason and contact data."""
    bound = _bound_rep(runtime, principal)
    if bound is not None:
        if rep is not None and rep != bound:
            raise NotFound(f"no rep with id {rep!r}", field="rep")
        rep = bound
    return leads.next_to_contact(session, rep_id=rep, limit=limit)


@router.get("/leads/{lead_id}", response_model=LeadPublic, responses=NOT_FOUND)
def get_lead(
    lead_id: str, session: SessionDep, runtime: RuntimeDep, principal: SalesDep
) -> LeadPublic:
    return _lead(leads.get_lead(session, lead_id=lead_id, rep_id=_bound_rep(runtime, principal)))


@router.post(
    "/leads/{lead_id}/outcome",
    response_model=LeadPublic,
    responses=responses(404, (409, "The person of this lead was erased")),
)
async def record_outcome(
    lead_id: str, body: OutcomeCreate, runtime: RuntimeDep, principal: SalesDep
) -> LeadPublic:
    """Record the outcome (the same outcome twice acts once) and tell the hand-off workflow.
    `won` moves the profile to `customer`; `not_relevant` suppresses new hand-offs."""
    lead = await record_and_signal(
        runtime, lead_id=lead_id, body=body, rep_id=_bound_rep(runtime, principal)
    )
    return _lead(lead)


async def record_and_signal(
    runtime: Runtime, *, lead_id: str, body: OutcomeCreate, rep_id: str | None
) -> Lead:
    """Record a rep's outcome in its own transaction, then signal the lead's hand-off workflow
    (the API's route and the console's outcome buttons both call this)."""

    def write() -> tuple[Lead, bool]:
        with session_scope(runtime.engine) as session:
            return leads.record_outcome(
                session,
                lead_id=lead_id,
                outcome=body.outcome,
                note=body.note,
                rep_id=rep_id,
                reason=body.reason,
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
    return lead


@router.get("/metrics", response_model=Metrics, responses=responses((404, "No such rep")))
def metrics(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: MetricsDep,
    since: Annotated[
        Instant | None, Query(description="only leads created since (no zone: UTC)")
    ] = None,
    rep: Annotated[
        Text | None,
        Query(max_length=32, description="rep id: over that rep's leads; all leads without"),
    ] = None,
) -> Metrics:
    """AQLs created, share contacted within the SLA, median time to contact, outcomes; over
    one rep's leads with `rep` (a rep-bound key: always its own rep's, another rep is 404)."""
    return leads.metrics(session, since=since, rep_id=metrics_rep(session, runtime, principal, rep))


def metrics_rep(
    session: Session, runtime: Runtime, principal: Principal, rep: str | None
) -> str | None:
    """The rep whose figures a caller sees: a rep-bound key only its own (another rep is not
    found, as a missing one is), any other caller the one asked for (which must exist)."""
    bound = _bound_rep(runtime, principal)
    if bound is not None:
        if rep is not None and rep != bound:
            raise NotFound(f"no rep with id {rep!r}", field="rep")
        return bound
    if rep is not None and session.get(SalesRep, rep) is None:
        raise NotFound(f"no rep with id {rep!r}", field="rep")
    return rep
