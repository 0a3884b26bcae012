"""Reps, leads and outcomes against the database. Keyword-only service functions."""

from __future__ import annotations

import datetime as dt
import secrets
import statistics
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from rejse import timeline
from rejse.db import utcnow
from rejse.durations import parse_duration
from rejse.errors import Conflict, DomainError, NotFound
from rejse.leads.assignment import choose_rep
from rejse.leads.runtypes import HandoffInput, HandoffPlan
from rejse.leads.schemas import (
    Contact,
    Metrics,
    NextItem,
    RepCreate,
    RepUpdate,
)
from rejse.models.leads import Lead, SalesRep
from rejse.profiles.service import load_snapshot, load_snapshots
from rejse.scoring import service as scoring
from rejse.scoring.definition import HandoffPolicy, ScoringDefinition

OPEN_STATUSES = ("open", "assigned")
CONTACT_OUTCOMES = ("contacted", "meeting", "won", "lost", "not_relevant")
HIGH_INTENT_WINDOW = dt.timedelta(hours=48)
ERASED = "erased"


def handoff_policy(session: Session) -> HandoffPolicy:
    row = scoring.active_row(session)
    return ScoringDefinition.model_validate(row.definition).handoff if row else HandoffPolicy()


# ----------------------------------------------------------------------------------- reps


def _check_manager(session: Session, manager_id: str | None, rep_id: str | None) -> None:
    if manager_id is None:
        return
    if manager_id == rep_id:
        raise DomainError("a rep cannot be their own manager", field="manager_id")
    if session.get(SalesRep, manager_id) is None:
        raise DomainError(f"no rep with id {manager_id!r}", field="manager_id", status_code=422)


def create_rep(session: Session, *, rep: RepCreate) -> SalesRep:
    _check_manager(session, rep.manager_id, None)
    row = SalesRep(id="rep_" + secrets.token_hex(8), **rep.model_dump(mode="json"))
    session.add(row)
    session.flush()
    return row


def update_rep(session: Session, *, rep_id: str, changes: RepUpdate) -> SalesRep:
    row = get_rep(session, rep_id=rep_id)
    # Only what the request set; RepUpdate already refused null where the column holds a value.
    data = changes.model_dump(mode="json", exclude_unset=True)
    if "manager_id" in data:
        _check_manager(session, data["manager_id"], rep_id)
    for key, value in data.items():
        setattr(row, key, value)
    session.add(row)
    session.flush()
    return row


def get_rep(session: Session, *, rep_id: str) -> SalesRep:
    row = session.get(SalesRep, rep_id)
    if row is None:
        raise NotFound(f"no rep with id {rep_id!r}", field="rep_id")
    return row


def list_reps(session: Session) -> list[SalesRep]:
    return list(session.exec(select(SalesRep).order_by(col(SalesRep.created_at), col(SalesRep.id))))


# ----------------------------------------------------------------------------------- leads


def get_lead(session: Session, *, lead_id: str, rep_id: str | None = None) -> Lead:
    """The lead; with `rep_id` (a rep-bound key) only when it is that rep's: another rep's
    lead is not found, with the very answer of a lead that does not exist."""
    row = session.get(Lead, lead_id)
    if row is None or (rep_id is not None and row.rep_id != rep_id):
        raise NotFound(f"no lead with id {lead_id!r}", field="lead_id")
    return row


def _log(lead: Lead, kind: str, at: dt.datetime, **data: Any) -> None:
    lead.history = [*lead.history, {"kind": kind, "at": at.isoformat(), **data}]


def open_lead(
    session: Session,
    *,
    lead_id: str,
    workflow_id: str,
    request: HandoffInput,
    now: dt.datetime | None = None,
) -> HandoffPlan:
    """First step of a hand-off: create the lead (once per trigger key) and pin the SLA policy."""
    now = now or utcnow()
    policy = handoff_policy(session)
    plan = HandoffPlan(
        lead_id=lead_id,
        crm=request.crm,
        reminder_after_s=parse_duration(policy.reminder_after).total_seconds(),
        escalate_after_s=parse_duration(policy.escalate_after).total_seconds(),
        expire_after_s=parse_duration(policy.expire_after).total_seconds(),
        max_escalations=policy.max_escalations,
    )
    existing = session.exec(select(Lead).where(Lead.trigger_key == request.trigger_key)).first()
    if existing is not None:
        if existing.id == lead_id:
            return plan  # a retried activity: same lead
        return HandoffPlan(lead_id=existing.id, skip="duplicate")
    snapshot = load_snapshot(session, profile_id=request.profile_id)
    if snapshot is None or snapshot.erased:
        return HandoffPlan(lead_id=None, skip="no_profile")
    if scoring.is_suppressed(session, profile_id=snapshot.id, now=now):
        return HandoffPlan(lead_id=None, skip="suppressed")
    view = scoring.current_score(session, profile_id=snapshot.id, now=now)
    lead = Lead(
        id=lead_id,
        profile_id=snapshot.id,
        trigger_key=request.trigger_key,
        workflow_id=workflow_id,
        source=request.source[:200],
        reason=request.reason[:500],
        score=view.score,
        crm_enabled=request.crm,
        crm_status="pending" if request.crm else "skipped",
        created_at=now,
    )
    _log(lead, "created", now, source=lead.source)
    session.add(lead)
    timeline.add_entry(
        session,
        profile_id=snapshot.id,
        kind="lead",
        at=now,
        summary=f"hand-off to sales started ({lead.source})",
        data={"lead_id": lead_id, "reason": lead.reason},
    )
    try:
        session.flush()
    except IntegrityError:  # a concurrent start with the same trigger key
        session.rollback()
        return HandoffPlan(lead_id=None, skip="duplicate")
    return plan


def assign(
    session: Session, *, lead_id: str, step: int, escalate: bool, now: dt.datetime | None = None
) -> str | None:
    """Assign (step 0) or, after a missed SLA, reassign / escalate to the manager. Idempotent
    per step: a retried call returns the rep chosen the first time."""
    now = now or utcnow()
    lead = get_lead(session, lead_id=lead_id)
    for entry in lead.history:
        if entry["kind"] == "assigned" and entry.get("step") == step:
            return entry.get("rep_id")
    if lead.status not in OPEN_STATUSES:
        return lead.rep_id
    policy = handoff_policy(session)
    reps = list_reps(session)
    previous = lead.rep_id
    rep: SalesRep | None = None
    if escalate and policy.escalation == "manager" and previous:
        current = session.get(SalesRep, previous)
        manager = (
            session.get(SalesRep, current.manager_id) if current and current.manager_id else None
        )
        rep = manager if manager and manager.active else None
    if rep is None:
        territory = None
        if policy.assignment == "territory":
            snapshot = load_snapshot(session, profile_id=lead.profile_id)
            territory = snapshot.traits.get(policy.territory_trait) if snapshot else None
        exclude = {previous} if escalate and previous else set()
        rep = choose_rep(reps, mode=policy.assignment, territory_value=territory, exclude=exclude)
        if rep is None and escalate and previous:
            rep = session.get(SalesRep, previous)  # nobody else: keep the current rep
    lead.rep_id = rep.id if rep else None
    lead.status = "assigned" if rep else "open"
    lead.assigned_at = now
    lead.due_at = now + parse_duration(policy.escalate_after)
    if escalate:
        lead.reassignments += 1
    _log(
        lead,
        "assigned",
        now,
        step=step,
        rep_id=lead.rep_id,
        previous=previous,
        why="sla_missed" if escalate else "new",
    )
    if rep is not None:
        rep.last_assigned_at = now
        session.add(rep)
    session.add(lead)
    timeline.add_entry(
        session,
        profile_id=lead.profile_id,
        kind="lead",
        at=now,
        summary=("reassigned after missed SLA" if escalate else "assigned to a rep"),
        data={"lead_id": lead.id, "rep_id": lead.rep_id, "previous": previous},
    )
    session.flush()
    return lead.rep_id


def mark(
    session: Session,
    *,
    lead_id: str,
    kind: str,
    detail: str | None = None,
    now: dt.datetime | None = None,
) -> Lead:
    """Record an SLA or CRM fact on the lead: reminded, expired, crm_failed."""
    now = now or utcnow()
    lead = get_lead(session, lead_id=lead_id)
    if kind == "reminded":
        lead.reminded_at = now
    elif kind == "expired":
        if lead.status in OPEN_STATUSES:
            lead.status = "expired"
    elif kind == "crm_failed":
        lead.crm_status, lead.crm_error = "failed", (detail or "")[:1000]
    else:
        raise ValueError(kind)
    _log(lead, kind, now, **({"detail": detail[:300]} if detail else {}))
    session.add(lead)
    session.flush()
    return lead


def record_crm(
    session: Session,
    *,
    lead_id: str,
    ref: str | None = None,
    task_id: str | None = None,
    now: dt.datetime | None = None,
) -> Lead:
    now = now or utcnow()
    lead = get_lead(session, lead_id=lead_id)
    if ref is not None:
        lead.crm_ref, lead.crm_status, lead.crm_error = ref, "synced", None
        _log(lead, "crm_synced", now)
    if task_id is not None:
        lead.crm_task_id = task_id
        _log(lead, "crm_task", now)
    session.add(lead)
    session.flush()
    return lead


def record_notification(session: Session, *, lead_id: str, key: str) -> None:
    lead = get_lead(session, lead_id=lead_id)
    lead.notifications = [*lead.notifications, key]
    session.add(lead)
    session.flush()


def record_outcome(
    session: Session,
    *,
    lead_id: str,
    outcome: str,
    note: str | None = None,
    now: dt.datetime | None = None,
    rep_id: str | None = None,
    reason: str | None = None,
) -> tuple[Lead, bool]:
    """Record a rep's outcome; returns (lead, changed). The same outcome twice acts once.
    `won` moves the profile to `customer`; `not_relevant` suppresses new hand-offs. With
    `rep_id` (a rep-bound key) only on that rep's lead."""
    if outcome not in CONTACT_OUTCOMES:
        raise DomainError(f"unknown outcome {outcome!r}", field="outcome", status_code=422)
    now = now or utcnow()
    lead = get_lead(session, lead_id=lead_id, rep_id=rep_id)
    if lead.profile_id == ERASED:
        raise Conflict("the person of this lead was erased", field="lead_id")
    if lead.outcome == outcome:
        return lead, False
    previous = lead.outcome
    lead.outcome, lead.outcome_at, lead.status = outcome, now, outcome
    if outcome == "meeting":
        lead.met = True  # kept for the sales figures' meetings; a later outcome keeps it
    if lead.first_contact_at is None:
        lead.first_contact_at = now
    _log(
        lead,
        "outcome",
        now,
        outcome=outcome,
        previous=previous,
        note=bool(note),
        **({"reason": reason} if reason else {}),
    )
    session.add(lead)
    timeline.add_entry(
        session,
        profile_id=lead.profile_id,
        kind="lead",
        at=now,
        summary=f"sales outcome: {outcome}",
        data={"lead_id": lead.id, "outcome": outcome},
    )
    if outcome == "won":
        previous, _ = scoring.set_stage(
            session,
            profile_id=lead.profile_id,
            stage="customer",
            reason=f"lead {lead.id} won",
            at=now,
        )
        if previous != "customer":
            scoring.publish_stage_changes(
                session,
                [(scoring.STAGE_CHANGED, {"from": previous, "to": "customer", "reason": "won"})],
                profile_id=lead.profile_id,
                key=f"lead:{lead.id}",
            )
    if outcome == "not_relevant":
        until = now + parse_duration(handoff_policy(session).suppress_for)
        scoring.suppress(session, profile_id=lead.profile_id, until=until)
    session.flush()
    return lead, True


# ----------------------------------------------------------------------------------- sales list


def _contact(traits: dict[str, Any], email: str | None, phone: str | None) -> Contact:
    name = (
        traits.get("name")
        or " ".join(str(traits[k]) for k in ("first_name", "last_name") if traits.get(k))
        or None
    )
    company = traits.get("company")
    if isinstance(company, dict):
        company = company.get("name")
    return Contact(name=name, email=email, phone=phone, company=str(company) if company else None)


def contact_of(session: Session, *, profile_id: str) -> Contact:
    snapshot = load_snapshot(session, profile_id=profile_id)
    if snapshot is None or snapshot.erased:
        return Contact()
    return _contact(snapshot.traits, snapshot.email, snapshot.phone)


def next_to_contact(
    session: Session, *, rep_id: str | None = None, limit: int = 20, now: dt.datetime | None = None
) -> list[NextItem]:
    """Open leads, highest priority first: score now + recent high-intent behaviour + SLA due."""
    now = now or utcnow()
    stmt = select(Lead).where(col(Lead.status).in_(OPEN_STATUSES))
    if rep_id is not None:
        if session.get(SalesRep, rep_id) is None:
            raise NotFound(f"no rep with id {rep_id!r}", field="rep")
        stmt = stmt.where(Lead.rep_id == rep_id)
    items: list[NextItem] = []
    leads = list(session.exec(stmt.order_by(col(Lead.created_at)).limit(500)))
    snapshots = load_snapshots(session, profile_ids=[lead.profile_id for lead in leads])
    views = scoring.current_scores(
        session, profile_ids=[snap.id for snap in snapshots.values() if not snap.erased], now=now
    )
    for lead in leads:
        snapshot = snapshots.get(lead.profile_id)
        if snapshot is None or snapshot.erased or snapshot.id not in views:
            continue
        view = views[snapshot.id]
        reasons = [f"score {view.score:.0f} ({view.stage})"]
        priority = view.score
        recent = [
            r
            for r in view.recent
            if r.get("high_intent")
            and now - dt.datetime.fromisoformat(r["at"]) <= HIGH_INTENT_WINDOW
        ]
        if recent:
            priority += 25
            hours = (now - dt.datetime.fromisoformat(recent[0]["at"])).total_seconds() / 3600
            reasons.append(f"recent: {recent[0]['event']} {hours:.0f}h ago")
        overdue = bool(lead.due_at and lead.due_at <= now)
        if lead.due_at:
            left = (lead.due_at - now).total_seconds() / 3600
            if overdue:
                priority += 50
                reasons.append(f"SLA overdue by {-left:.0f}h")
            else:
                priority += 20 if left <= 4 else 0
                reasons.append(f"SLA due in {left:.0f}h")
        reasons.append(lead.reason)
        items.append(
            NextItem(
                lead_id=lead.id,
                profile_id=lead.profile_id,
                rep_id=lead.rep_id,
                priority=round(priority, 2),
                score=view.score,
                reason="; ".join(reasons),
                due_at=lead.due_at,
                overdue=overdue,
                contact=_contact(snapshot.traits, snapshot.email, snapshot.phone),
            )
        )
    items.sort(key=lambda i: (-i.priority, i.due_at or now))
    return items[:limit]


def metrics(
    session: Session,
    *,
    since: dt.datetime | None = None,
    now: dt.datetime | None = None,
    rep_id: str | None = None,
) -> Metrics:
    """Follow-up figures over every lead, or over one rep's (`rep_id`, a rep-bound key)."""
    now = now or utcnow()
    stmt = select(Lead)
    if since is not None:
        stmt = stmt.where(col(Lead.created_at) >= since)
    if rep_id is not None:
        stmt = stmt.where(Lead.rep_id == rep_id)
    leads = list(session.exec(stmt))
    # (lead, first contact) of every contacted lead
    contacted = [(lead, at) for lead in leads if (at := lead.first_contact_at) is not None]
    within = [
        lead
        for lead, at in contacted
        if lead.reassignments == 0 and lead.due_at and at <= lead.due_at
    ]
    waits = [
        (at - (lead.assigned_at or lead.created_at)).total_seconds()
        for lead, at in contacted
        if lead.history
    ]
    by_outcome = dict.fromkeys(CONTACT_OUTCOMES, 0)
    for lead in leads:
        if lead.outcome:
            by_outcome[lead.outcome] += 1
    total = len(leads)
    # The SLA share counts leads whose SLA is decided: contacted, or past their due time.
    decided = [
        lead
        for lead in leads
        if lead.first_contact_at is not None
        or (lead.due_at is not None and lead.due_at <= now)
        or lead.status == "expired"
    ]
    return Metrics(
        since=since,
        aqls_created=total,
        open=sum(1 for lead in leads if lead.status in OPEN_STATUSES),
        overdue=sum(
            1
            for lead in leads
            if lead.status in OPEN_STATUSES and lead.due_at and lead.due_at <= now
        ),
        contacted=len(contacted),
        contacted_within_sla=len(within),
        share_contacted_within_sla=round(len(within) / len(decided), 4) if decided else None,
        median_time_to_contact_seconds=statistics.median(waits) if waits else None,
        by_outcome=by_outcome,
        conversion_by_outcome={o: round(n / total, 4) for o, n in by_outcome.items()}
        if total
        else {},
    )


def erase_leads(session: Session, *, profile_id: str) -> list[str]:
    """Anonymise a profile's leads (figures stay, the link to the person goes)."""
    ids = []
    for lead in session.exec(select(Lead).where(Lead.profile_id == profile_id)):
        ids.append(lead.id)
        lead.profile_id, lead.reason, lead.crm_error, lead.crm_ref = ERASED, ERASED, None, None
        lead.history = [{"kind": h["kind"], "at": h["at"]} for h in lead.history]
        if lead.status in OPEN_STATUSES:
            lead.status = "expired"
        session.add(lead)
    return ids


def digest_text(
    session: Session,
    *,
    rep_id: str,
    day: dt.date,
    public_url: str,
    now: dt.datetime | None = None,
    top: int = 10,
) -> str | None:
    """The rep's daily digest (lead ids, scores, reasons: no contact data in a chat push);
    None when the rep has nothing open."""
    items = next_to_contact(session, rep_id=rep_id, limit=top, now=now)
    if not items:
        return None
    overdue = sum(1 for i in items if i.overdue)
    lines = [f"Your leads for {day.isoformat()}: {len(items)} open, {overdue} overdue."]
    lines += [
        f"{n}. {public_url}/api/sales/leads/{i.lead_id} — priority {i.priority:.0f}: {i.reason}"
        for n, i in enumerate(items, 1)
    ]
    return "\n".join(lines)
