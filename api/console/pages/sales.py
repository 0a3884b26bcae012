"""Sales: the rep's "next customer to contact" list with reasons and contact data, a lead page
with its history and outcome buttons, and the manager page with per-rep figures and the AQLs
nobody called. Built from the functions behind `GET /api/sales/next`, `GET
/api/sales/leads/{id}`, `POST /api/sales/leads/{id}/outcome`, `GET /api/analytics/sales/reps` and
`GET /api/analytics/sales/uncalled`.

Whose list: a sales key bound to a rep (`rep_id` on the key, `rejse keys create --role sales
--rep ...`) sees its rep's leads only, as in the API. An unbound sales key (a manager) and an
admin pick the rep on the page (`?rep=`), or see every open lead."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session

from api.console import i18n, kit
from api.console.kit import ConsoleRoute, ConsoleUser, CsrfForm, SalesUser
from api.deps import READ, SALES, RuntimeDep, SessionDep
from api.routers.sales import record_and_signal
from rejse.analytics import sales_figures as sf
from rejse.errors import DomainError
from rejse.leads import service as leads
from rejse.leads.schemas import OUTCOMES, OutcomeCreate
from rejse.models.leads import SalesRep
from rejse.roles import Role

router = APIRouter(route_class=ConsoleRoute)

BASE = f"{kit.PREFIX}/sales"
LIST_SIZE = 50
UNCALLED_SHOWN = 100
LOSS_REASONS = sf.LOSS_REASONS

FiguresUser = Annotated[ConsoleUser, Depends(kit.require(*SALES, *READ))]

kit.add_nav(60, "nav_sales", BASE, (Role.sales,))

i18n.add(
    {
        "sales_title": (
            "Næste kunder at kontakte",
            "Nästa kunder att kontakta",
            "Next customers to contact",
        ),
        "sales_rep": ("Sælger", "Säljare", "Rep"),
        "sales_all_reps": ("Alle åbne leads", "Alla öppna leads", "Every open lead"),
        "sales_show": ("Vis", "Visa", "Show"),
        "sales_for_rep": ("Leads for {name}", "Leads för {name}", "Leads of {name}"),
        "sales_empty": (
            "Ingen leads venter på kontakt.",
            "Inga leads väntar på kontakt.",
            "No leads are waiting for contact.",
        ),
        "sales_priority": ("Prioritet", "Prioritet", "Priority"),
        "sales_contact": ("Kontakt", "Kontakt", "Contact"),
        "sales_reason": ("Hvorfor nu", "Varför nu", "Why now"),
        "sales_due": ("Frist", "Deadline", "Due"),
        "sales_overdue": ("overskredet", "försenad", "overdue"),
        "sales_open": ("Åbn", "Öppna", "Open"),
        "sales_recorded": (
            "Udfaldet {outcome} er gemt; leadet er ude af listen.",
            "Utfallet {outcome} är sparat; leadet är borta från listan.",
            "Outcome {outcome} recorded; the lead has left the list.",
        ),
        "sales_manager": ("Salgsteam", "Säljteam", "Sales team"),
        "lead_title": ("Lead {id}", "Lead {id}", "Lead {id}"),
        "lead_status": ("Status", "Status", "Status"),
        "lead_score": ("Score ved overdragelse", "Poäng vid överlämning", "Score at hand-off"),
        "lead_source": ("Kilde", "Källa", "Source"),
        "lead_created": ("Oprettet", "Skapad", "Created"),
        "lead_history": ("Historik", "Historik", "History"),
        "lead_event": ("Hændelse", "Händelse", "Event"),
        "lead_details": ("Detaljer", "Detaljer", "Details"),
        "lead_name": ("Navn", "Namn", "Name"),
        "lead_email": ("E-mail", "E-post", "Email"),
        "lead_phone": ("Telefon", "Telefon", "Phone"),
        "lead_company": ("Firma", "Företag", "Company"),
        "lead_profile": ("Profil", "Profil", "Profile"),
        "lead_record": ("Registrér udfald", "Registrera utfall", "Record the outcome"),
        "lead_note": ("Note (valgfri)", "Anteckning (valfri)", "Note (optional)"),
        "lead_loss_reason": (
            "Årsag (kun tabt / ikke relevant)",
            "Orsak (endast förlorad / inte relevant)",
            "Reason (lost / not relevant only)",
        ),
        "lead_closed": (
            "Leadet er lukket: {outcome}.",
            "Leadet är stängt: {outcome}.",
            "The lead is closed: {outcome}.",
        ),
        "lead_erased": (
            "Personen bag leadet er slettet.",
            "Personen bakom leadet är raderad.",
            "The person of this lead was erased.",
        ),
        "outcome_contacted": ("Kontaktet", "Kontaktad", "Contacted"),
        "outcome_meeting": ("Møde aftalt", "Möte bokat", "Meeting booked"),
        "outcome_won": ("Vundet", "Vunnen", "Won"),
        "outcome_lost": ("Tabt", "Förlorad", "Lost"),
        "outcome_not_relevant": ("Ikke relevant", "Inte relevant", "Not relevant"),
        "reason_": ("(ingen)", "(ingen)", "(none)"),
        "reason_price": ("Pris", "Pris", "Price"),
        "reason_timing": ("Timing", "Timing", "Timing"),
        "reason_competitor": ("Konkurrent", "Konkurrent", "Competitor"),
        "reason_no_budget": ("Intet budget", "Ingen budget", "No budget"),
        "reason_no_need": ("Intet behov", "Inget behov", "No need"),
        "reason_no_response": ("Intet svar", "Inget svar", "No response"),
        "reason_other": ("Andet", "Annat", "Other"),
        "err_outcome": (
            "Vælg et af udfaldene.",
            "Välj ett av utfallen.",
            "Choose one of the outcomes.",
        ),
        "err_reason_only_lost": (
            "En årsag hører kun til tabt og ikke relevant.",
            "En orsak hör bara till förlorad och inte relevant.",
            "A reason goes with lost and not relevant only.",
        ),
        "err_note_long": ("Højst 1000 tegn.", "Högst 1000 tecken.", "At most 1000 characters."),
        "err_rep_unknown": ("Ukendt sælger.", "Okänd säljare.", "No such rep."),
        "err_date": (
            "Skriv en dato som 2026-11-30.",
            "Skriv ett datum som 2026-11-30.",
            "Write a date like 2026-11-30.",
        ),
        "err_to_before_from": (
            "Slutdatoen ligger før startdatoen.",
            "Slutdatumet är före startdatumet.",
            "The end is before the start.",
        ),
        "team_title": ("Salgsteamets tal", "Säljteamets siffror", "Sales team figures"),
        "team_from": ("Fra (dato)", "Från (datum)", "From (date)"),
        "team_to": ("Til (dato)", "Till (datum)", "To (date)"),
        "team_period": ("Periode", "Period", "Period"),
        "team_per_rep": ("Pr. sælger", "Per säljare", "Per rep"),
        "team_no_rep": ("(ingen sælger)", "(ingen säljare)", "(no rep)"),
        "team_leads": ("AQL'er", "AQL:er", "AQLs"),
        "team_open": ("Åbne", "Öppna", "Open"),
        "team_uncalled": ("Ikke ringet op", "Inte uppringda", "Not called"),
        "team_overdue": ("Over frist", "Försenade", "Overdue"),
        "team_within_sla": (
            "Kontaktet inden for SLA",
            "Kontaktade inom SLA",
            "Contacted within SLA",
        ),
        "team_median_hours": (
            "Median timer til kontakt",
            "Median timmar till kontakt",
            "Median hours to contact",
        ),
        "team_meetings": ("Møder", "Möten", "Meetings"),
        "team_won": ("Vundet", "Vunna", "Won"),
        "team_lost": ("Tabt", "Förlorade", "Lost"),
        "team_win_rate": ("Vinderrate", "Vinstandel", "Win rate"),
        "team_uncalled_title": (
            "AQL'er som ingen har ringet op",
            "AQL:er som ingen har ringt",
            "AQLs nobody called",
        ),
        "team_uncalled_total": (
            "{total} i alt, {overdue} over frist.",
            "{total} totalt, {overdue} försenade.",
            "{total} in all, {overdue} overdue.",
        ),
        "team_age_days": ("Alder (dage)", "Ålder (dagar)", "Age (days)"),
        "team_filter": ("Vis", "Visa", "Show"),
    }
)


def _reps(session: Session, user: ConsoleUser) -> list[SalesRep]:
    if user.rep_id is not None:
        rep = session.get(SalesRep, user.rep_id)
        return [rep] if rep is not None else []
    return leads.list_reps(session)


def _rep_options(request: Request, reps: list[SalesRep], *, everyone: str) -> list[tuple[str, str]]:
    return [("", kit.text(request, everyone)), *((r.id, r.name) for r in reps)]


@router.get("/sales")
def next_list(
    request: Request,
    session: SessionDep,
    user: SalesUser,
    rep: Annotated[str, Query(max_length=10_000)] = "",
) -> Response:
    """The "next customer to contact" list, highest priority first."""
    reps = _reps(session, user)
    chosen: str | None = user.rep_id or (rep.strip() or None)
    ctx: dict[str, Any] = {
        "base": BASE,
        "bound": user.rep_id is not None,
        "reps": reps,
        "rep_options": _rep_options(request, reps, everyone="sales_all_reps"),
        "values": {"rep": chosen or ""},
        "items": [],
        "rep_name": next((r.name for r in reps if r.id == chosen), None),
        "done": request.query_params.get("done"),
        "done_outcome": request.query_params.get("outcome", ""),
        "can_figures": True,
    }
    if user.rep_id is None and chosen is not None and session.get(SalesRep, chosen) is None:
        return kit.form_error(
            request, "sales_list.html", ctx, {"rep": kit.text(request, "err_rep_unknown")}
        )
    ctx["items"] = leads.next_to_contact(session, rep_id=chosen, limit=LIST_SIZE)
    if ctx["done_outcome"] not in OUTCOMES:
        ctx["done_outcome"] = ""
    return kit.render(request, "sales_list.html", ctx)


def _lead_ctx(session: Session, lead_id: str, user: ConsoleUser) -> dict[str, Any]:
    if len(lead_id) > 64:
        raise kit.PageError(404, field="lead_id")
    lead = leads.get_lead(session, lead_id=lead_id, rep_id=user.rep_id)
    rep = session.get(SalesRep, lead.rep_id) if lead.rep_id else None
    contact = leads.contact_of(session, profile_id=lead.profile_id)
    return {
        "base": BASE,
        "lead": lead,
        "history": list(reversed(lead.history or [])),
        "rep": rep,
        "contact": contact,
        "outcomes": OUTCOMES,
        "reasons": [("", "reason_"), *((r, f"reason_{r}") for r in LOSS_REASONS)],
        "open": lead.status in leads.OPEN_STATUSES or lead.status in ("contacted", "meeting"),
        "erased": lead.profile_id == leads.ERASED,
        "can_profile": user.can(*READ),
        "profiles": f"{kit.PREFIX}/profiles",
    }


@router.get("/sales/leads/{lead_id}")
def lead_page(request: Request, lead_id: str, session: SessionDep, user: SalesUser) -> Response:
    """A lead: contact data, why it was handed over, its history and the outcome buttons."""
    ctx = _lead_ctx(session, lead_id, user)
    return kit.render(request, "sales_lead.html", ctx)


_FIELD_ERRORS = {
    "outcome": "err_outcome",
    "reason": "err_reason_only_lost",
    "note": "err_note_long",
}


@router.post("/sales/leads/{lead_id}/outcome")
async def record_outcome(
    request: Request,
    lead_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    user: SalesUser,
    form: CsrfForm,
) -> Response:
    """Record the outcome the button names (as `POST /api/sales/leads/{id}/outcome`), then
    back to the list the lead has left."""
    ctx = _lead_ctx(session, lead_id, user)
    session.rollback()
    raw = {
        "outcome": form.get("outcome"),
        "note": form.get("note").strip() or None,
        "reason": form.get("reason") or None,
    }
    try:
        body = OutcomeCreate.model_validate(raw)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "outcome"
            errors.setdefault(name, kit.text(request, _FIELD_ERRORS.get(name, "err_outcome")))
        return kit.form_error(request, "sales_lead.html", {**ctx, "values": form.values()}, errors)
    try:
        await record_and_signal(runtime, lead_id=lead_id, body=body, rep_id=user.rep_id)
    except DomainError as exc:
        if exc.status_code == 409:
            return kit.form_error(
                request,
                "sales_lead.html",
                {**ctx, "values": form.values()},
                {"outcome": kit.text(request, "lead_erased")},
                status_code=409,
            )
        raise
    back = f"{BASE}?done={lead_id}&outcome={body.outcome}"
    if user.rep_id is None and ctx["lead"].rep_id:
        back += f"&rep={ctx['lead'].rep_id}"
    return kit.redirect(back, request)


def _date(value: str) -> dt.date | None:
    return dt.date.fromisoformat(value.strip()) if value.strip() else None


@router.get("/sales/team")
def team_page(
    request: Request,
    session: SessionDep,
    user: FiguresUser,
    from_: Annotated[str, Query(alias="from", max_length=10_000)] = "",
    to: Annotated[str, Query(max_length=10_000)] = "",
    rep: Annotated[str, Query(max_length=10_000)] = "",
) -> Response:
    """The manager's page: figures per rep over the period (`GET /api/analytics/sales/reps`)
    and the AQLs nobody called (`GET /api/analytics/sales/uncalled`)."""
    reps = _reps(session, user)
    values = {"from": from_, "to": to, "rep": user.rep_id or rep}
    ctx: dict[str, Any] = {
        "base": BASE,
        "bound": user.rep_id is not None,
        "rep_options": _rep_options(request, reps, everyone="sales_all_reps"),
        "values": values,
        "figures": None,
        "uncalled": None,
        "names": {r.id: r.name for r in reps},
    }
    errors: dict[str, str] = {}
    start = end = None
    for name in ("from", "to"):
        try:
            parsed = _date(values[name])
        except ValueError:
            errors[name] = kit.text(request, "err_date")
            continue
        if name == "from":
            start = parsed
        else:
            end = parsed
    if start and end and end < start:
        errors["to"] = kit.text(request, "err_to_before_from")
    rep_id = user.rep_id or (rep.strip() or None)
    if rep_id is not None and session.get(SalesRep, rep_id) is None:
        errors["rep"] = kit.text(request, "err_rep_unknown")
    if errors:
        return kit.form_error(request, "sales_team.html", ctx, errors)
    ctx["figures"] = sf.per_rep(session, rep_id=rep_id, start=start, end=end)
    ctx["uncalled"] = sf.uncalled(session, rep_id=rep_id, limit=UNCALLED_SHOWN)
    return kit.render(request, "sales_team.html", ctx)
