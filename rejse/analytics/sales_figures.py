"""Sales figures from the leads (one row per hand-off of an AQL to sales): per rep, the pipeline
by phase with counts and ages, lost leads and why, and the AQLs nobody called.

The pipeline phases are the lead's status in sales order: `open` (no rep yet), `assigned` (a rep,
not called), `contacted`, `meeting`, then the closed ones `won`, `lost`, `not_relevant` and
`expired` (nobody contacted it before the SLA ran out). A rep records why a lead was lost with
the outcome (`reason`); an expired lead's reason is `not_contacted`.

These read the lead table's columns (indexed by rep and status) at request time: a lead is one
row per hand-off, far fewer than profiles or events."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlmodel import Session

from rejse.analytics import charts
from rejse.db import utcnow
from rejse.errors import NotFound
from rejse.models.leads import Lead, SalesRep

PHASES = ("open", "assigned", "contacted", "meeting", "won", "lost", "not_relevant", "expired")
OPEN_PHASES = ("open", "assigned", "contacted", "meeting")
CLOSED_LOST = ("lost", "not_relevant", "expired")
LOSS_REASONS = ("price", "timing", "competitor", "no_budget", "no_need", "no_response", "other")
UNSPECIFIED = "unspecified"
NOT_CONTACTED = "not_contacted"
DAY = 86400.0

LEAD = Lead.__table__  # type: ignore[attr-defined]
_COLUMNS = (
    LEAD.c.id,
    LEAD.c.rep_id,
    LEAD.c.status,
    LEAD.c.created_at,
    LEAD.c.assigned_at,
    LEAD.c.due_at,
    LEAD.c.first_contact_at,
    LEAD.c.outcome_at,
    LEAD.c.reassignments,
)


def check_rep(session: Session, rep_id: str | None) -> None:
    if rep_id is not None and session.get(SalesRep, rep_id) is None:
        raise NotFound(f"no rep with id {rep_id!r}", field="rep")


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _rows(
    session: Session,
    *,
    rep_id: str | None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    statuses: Sequence[str] | None = None,
    history: bool = False,
) -> list[Any]:
    columns = [*_COLUMNS, LEAD.c.history] if history else list(_COLUMNS)
    stmt = sa.select(*columns)
    if rep_id is not None:
        stmt = stmt.where(LEAD.c.rep_id == rep_id)
    if start is not None:
        stmt = stmt.where(LEAD.c.created_at >= _start(start))
    if end is not None:
        stmt = stmt.where(LEAD.c.created_at < _start(end + dt.timedelta(days=1)))
    if statuses is not None:
        stmt = stmt.where(LEAD.c.status.in_(statuses))
    return list(session.connection().execute(stmt.order_by(LEAD.c.created_at, LEAD.c.id)))


def _days(seconds: Sequence[float]) -> float | None:
    return round(statistics.median(seconds) / DAY, 4) if seconds else None


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


# ----------------------------------------------------------------------------- per rep


class RepRow(BaseModel):
    rep_id: str | None = Field(description="null: leads no rep holds")
    rep_name: str | None
    leads: int = Field(description="AQLs handed to the rep (created in the period)")
    open: int = Field(description="not closed: open, assigned, contacted or meeting")
    uncalled: int = Field(description="never contacted (open, assigned or expired)")
    overdue: int = Field(description="not contacted and past the SLA due time")
    contacted: int
    contacted_within_sla: int
    share_contacted_within_sla: float | None
    median_hours_to_contact: float | None
    meetings: int = Field(description="reached a meeting (now meeting or won after one)")
    won: int
    lost: int
    not_relevant: int
    expired: int
    win_rate: float | None = Field(description="won / (won + lost + not relevant)")


class RepFigures(BaseModel):
    period_from: dt.date | None
    period_to: dt.date | None
    reps: list[RepRow]


def _met(history: list[dict[str, Any]]) -> bool:
    return any(h.get("kind") == "outcome" and h.get("outcome") == "meeting" for h in history)


def per_rep(
    session: Session,
    *,
    rep_id: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    now: dt.datetime | None = None,
) -> RepFigures:
    """One row per rep (every rep, or the one asked for), and one for leads no rep holds."""
    check_rep(session, rep_id)
    now = now or utcnow()
    rep_table = SalesRep.__table__  # type: ignore[attr-defined]
    reps = {
        r.id: r.name
        for r in session.connection().execute(sa.select(rep_table.c.id, rep_table.c.name))
    }
    groups: dict[str | None, list[Any]] = defaultdict(list)
    for row in _rows(session, rep_id=rep_id, start=start, end=end, history=True):
        groups[row.rep_id].append(row)
    keys: list[str | None] = (
        [rep_id] if rep_id is not None else sorted(reps, key=lambda r: (reps[r], r))
    )
    if rep_id is None and None in groups:
        keys.append(None)
    out = []
    for key in keys:
        rows = groups.get(key, [])
        status = Counter(r.status for r in rows)
        contacted = [r for r in rows if r.first_contact_at is not None]
        within = [
            r
            for r in contacted
            if r.reassignments == 0 and r.due_at and r.first_contact_at <= r.due_at
        ]
        decided = [
            r
            for r in rows
            if r.first_contact_at is not None
            or (r.due_at is not None and r.due_at <= now)
            or r.status == "expired"
        ]
        waits = [
            (r.first_contact_at - (r.assigned_at or r.created_at)).total_seconds()
            for r in contacted
        ]
        closed = status["won"] + status["lost"] + status["not_relevant"]
        out.append(
            RepRow(
                rep_id=key,
                rep_name=reps.get(key) if key else None,
                leads=len(rows),
                open=sum(status[p] for p in OPEN_PHASES),
                uncalled=sum(1 for r in rows if r.first_contact_at is None),
                overdue=sum(
                    1
                    for r in rows
                    if r.first_contact_at is None
                    and r.status in ("open", "assigned")
                    and r.due_at is not None
                    and r.due_at <= now
                ),
                contacted=len(contacted),
                contacted_within_sla=len(within),
                share_contacted_within_sla=_ratio(len(within), len(decided)),
                median_hours_to_contact=round(statistics.median(waits) / 3600, 4)
                if waits
                else None,
                meetings=sum(1 for r in rows if r.status == "meeting" or _met(r.history or [])),
                won=status["won"],
                lost=status["lost"],
                not_relevant=status["not_relevant"],
                expired=status["expired"],
                win_rate=_ratio(status["won"], closed),
            )
        )
    return RepFigures(period_from=start, period_to=end, reps=out)


# ----------------------------------------------------------------------------- pipeline


class PhaseRow(BaseModel):
    phase: str
    closed: bool
    leads: int
    median_age_days: float | None = Field(description="since the hand-off (lead created)")
    oldest_age_days: float | None
    median_days_in_phase: float | None = Field(
        description="since the lead entered the phase (assigned, or its outcome)"
    )


class Pipeline(BaseModel):
    rep_id: str | None
    as_of: dt.datetime
    open_leads: int
    phases: list[PhaseRow]


def pipeline(
    session: Session, *, rep_id: str | None = None, now: dt.datetime | None = None
) -> Pipeline:
    """Every lead by phase now, with its age."""
    check_rep(session, rep_id)
    now = now or utcnow()
    ages: dict[str, list[float]] = {p: [] for p in PHASES}
    in_phase: dict[str, list[float]] = {p: [] for p in PHASES}
    for r in _rows(session, rep_id=rep_id):
        if r.status not in ages:
            continue
        ages[r.status].append(max(0.0, (now - r.created_at).total_seconds()))
        since = (
            r.outcome_at
            if r.status in ("contacted", "meeting", "won", "lost", "not_relevant")
            else None
        )
        since = since or (r.assigned_at if r.status != "open" else None) or r.created_at
        in_phase[r.status].append(max(0.0, (now - since).total_seconds()))
    phases = [
        PhaseRow(
            phase=p,
            closed=p not in OPEN_PHASES,
            leads=len(ages[p]),
            median_age_days=_days(ages[p]),
            oldest_age_days=round(max(ages[p]) / DAY, 4) if ages[p] else None,
            median_days_in_phase=_days(in_phase[p]),
        )
        for p in PHASES
    ]
    return Pipeline(
        rep_id=rep_id,
        as_of=now,
        open_leads=sum(row.leads for row in phases if not row.closed),
        phases=phases,
    )


# ----------------------------------------------------------------------------- lost


class LostRow(BaseModel):
    outcome: str = Field(description="lost, not_relevant or expired")
    reason: str = Field(
        description="the rep's reason (" + ", ".join(LOSS_REASONS) + "), `unspecified`, or "
        "`not_contacted` (expired)"
    )
    leads: int
    share: float = Field(description="of the lost leads in the answer")


class Lost(BaseModel):
    rep_id: str | None
    period_from: dt.date | None
    period_to: dt.date | None
    lost_leads: int
    reasons: list[LostRow]


def _reason(row: Any) -> str:
    if row.status == "expired":
        return NOT_CONTACTED
    for entry in reversed(row.history or []):
        if entry.get("kind") == "outcome" and entry.get("outcome") == row.status:
            return str(entry.get("reason") or UNSPECIFIED)
    return UNSPECIFIED


def lost(
    session: Session,
    *,
    rep_id: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Lost:
    """Leads lost, not relevant or expired (created in the period), by outcome and reason."""
    check_rep(session, rep_id)
    counts: Counter[tuple[str, str]] = Counter()
    for r in _rows(
        session, rep_id=rep_id, start=start, end=end, statuses=CLOSED_LOST, history=True
    ):
        counts[(r.status, _reason(r))] += 1
    total = sum(counts.values())
    order = {o: i for i, o in enumerate(CLOSED_LOST)}
    rows = [
        LostRow(outcome=o, reason=why, leads=n, share=round(n / total, 4))
        for (o, why), n in sorted(
            counts.items(), key=lambda kv: (order[kv[0][0]], -kv[1], kv[0][1])
        )
    ]
    return Lost(rep_id=rep_id, period_from=start, period_to=end, lost_leads=total, reasons=rows)


# ----------------------------------------------------------------------------- uncalled


class UncalledRow(BaseModel):
    lead_id: str
    rep_id: str | None
    status: str = Field(description="open, assigned or expired")
    created_at: dt.datetime
    due_at: dt.datetime | None
    age_days: float
    overdue: bool = Field(description="past the SLA due time (or expired)")
    reassignments: int


class Uncalled(BaseModel):
    rep_id: str | None
    as_of: dt.datetime
    total: int = Field(description="AQLs nobody called, all of them")
    overdue: int
    by_rep: dict[str, int] = Field(description="rep id (`-`: no rep) -> AQLs nobody called")
    leads: list[UncalledRow] = Field(description="the oldest first, at most `limit`")


def uncalled(
    session: Session,
    *,
    rep_id: str | None = None,
    limit: int = 100,
    now: dt.datetime | None = None,
) -> Uncalled:
    """AQLs handed to sales that nobody ever contacted: open, assigned, or expired unanswered."""
    check_rep(session, rep_id)
    now = now or utcnow()
    rows = [
        r
        for r in _rows(session, rep_id=rep_id, statuses=("open", "assigned", "expired"))
        if r.first_contact_at is None
    ]
    items = [
        UncalledRow(
            lead_id=r.id,
            rep_id=r.rep_id,
            status=r.status,
            created_at=r.created_at,
            due_at=r.due_at,
            age_days=round(max(0.0, (now - r.created_at).total_seconds()) / DAY, 4),
            overdue=r.status == "expired" or (r.due_at is not None and r.due_at <= now),
            reassignments=r.reassignments,
        )
        for r in rows
    ]
    by_rep = Counter(i.rep_id or "-" for i in items)
    return Uncalled(
        rep_id=rep_id,
        as_of=now,
        total=len(items),
        overdue=sum(1 for i in items if i.overdue),
        by_rep=dict(sorted(by_rep.items())),
        leads=items[:limit],
    )


# ----------------------------------------------------------------------------- charts

Lang = Literal["da", "sv", "en"]
NAMES: dict[str, dict[str, str]] = {
    "en": {
        "open": "open",
        "assigned": "assigned",
        "contacted": "contacted",
        "meeting": "meeting",
        "won": "won",
        "lost": "lost",
        "not_relevant": "not relevant",
        "expired": "expired",
        "price": "price",
        "timing": "timing",
        "competitor": "competitor",
        "no_budget": "no budget",
        "no_need": "no need",
        "no_response": "no response",
        "other": "other",
        UNSPECIFIED: "not given",
        NOT_CONTACTED: "not contacted",
        "leads": "AQLs",
        "no_rep": "(no rep)",
        "reps": "AQLs, contacted and won per rep",
        "pipeline": "Pipeline: leads per phase",
        "lost_title": "Lost leads and why",
        "uncalled": "AQLs nobody called, per rep",
    },
    "da": {
        "open": "åben",
        "assigned": "tildelt",
        "contacted": "kontaktet",
        "meeting": "møde",
        "won": "vundet",
        "lost": "tabt",
        "not_relevant": "ikke relevant",
        "expired": "udløbet",
        "price": "pris",
        "timing": "tidspunkt",
        "competitor": "konkurrent",
        "no_budget": "intet budget",
        "no_need": "intet behov",
        "no_response": "intet svar",
        "other": "andet",
        UNSPECIFIED: "ikke angivet",
        NOT_CONTACTED: "ikke kontaktet",
        "leads": "AQL'er",
        "no_rep": "(ingen sælger)",
        "reps": "AQL'er, kontaktet og vundet pr. sælger",
        "pipeline": "Pipeline: leads pr. fase",
        "lost_title": "Tabte leads og hvorfor",
        "uncalled": "AQL'er som ingen har ringet til, pr. sælger",
    },
    "sv": {
        "open": "öppen",
        "assigned": "tilldelad",
        "contacted": "kontaktad",
        "meeting": "möte",
        "won": "vunnen",
        "lost": "förlorad",
        "not_relevant": "inte relevant",
        "expired": "utgången",
        "price": "pris",
        "timing": "tidpunkt",
        "competitor": "konkurrent",
        "no_budget": "ingen budget",
        "no_need": "inget behov",
        "no_response": "inget svar",
        "other": "annat",
        UNSPECIFIED: "inte angivet",
        NOT_CONTACTED: "inte kontaktad",
        "leads": "AQL:er",
        "no_rep": "(ingen säljare)",
        "reps": "AQL:er, kontaktade och vunna per säljare",
        "pipeline": "Pipeline: leads per fas",
        "lost_title": "Förlorade leads och varför",
        "uncalled": "AQL:er som ingen har ringt, per säljare",
    },
}


def reps_chart(figures: RepFigures, *, lang: Lang = "en") -> dict[str, Any]:
    n = NAMES[lang]
    rows = [
        {"rep": r.rep_name or r.rep_id or n["no_rep"], "measure": n[m], "value": getattr(r, m)}
        for r in figures.reps
        for m in ("leads", "contacted", "won")
    ]
    return charts.bars(
        rows, x="rep", y="value", color="measure", title=n["reps"], y_title=n["leads"]
    )


def pipeline_chart(figures: Pipeline, *, lang: Lang = "en") -> dict[str, Any]:
    n = NAMES[lang]
    return charts.bars(
        [{"phase": n[p.phase], "leads": p.leads} for p in figures.phases],
        x="phase",
        y="leads",
        title=n["pipeline"],
        y_title=n["leads"],
    )


def lost_chart(figures: Lost, *, lang: Lang = "en") -> dict[str, Any]:
    n = NAMES[lang]
    return charts.bars(
        [{"why": f"{n[r.outcome]}: {n[r.reason]}", "leads": r.leads} for r in figures.reasons],
        x="why",
        y="leads",
        title=n["lost_title"],
        y_title=n["leads"],
    )


def uncalled_chart(figures: Uncalled, *, lang: Lang = "en") -> dict[str, Any]:
    n = NAMES[lang]
    return charts.bars(
        [
            {"rep": n["no_rep"] if rep == "-" else rep, "leads": count}
            for rep, count in figures.by_rep.items()
        ],
        x="rep",
        y="leads",
        title=n["uncalled"],
        y_title=n["leads"],
    )
