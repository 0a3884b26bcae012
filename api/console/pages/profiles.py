"""Profiles: search by any identifier; one page with identifiers, traits, customer value,
audiences, consents, score with its breakdown, timeline and messages; export and erase for
admins (erase asks for a confirmation first). Built from the same functions as
`GET /api/profiles/{id}`, `/timeline`, `/score`, `GET /api/messages?profile_id=` and the GDPR
routes."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlmodel import Session, select

from api.console import i18n, kit
from api.console.kit import AdminUser, ConsoleRoute, CsrfForm, ReadUser
from api.deps import ProfileErasersDep, RuntimeDep, SessionDep
from api.routers.profiles import _public as profile_public
from rejse.errors import DomainError
from rejse.messaging import service as messages
from rejse.models.profiles import Profile, ProfileIdentifier
from rejse.profiles import gdpr, service
from rejse.profiles import identifiers as ident
from rejse.roles import Role
from rejse.scoring import service as scoring

router = APIRouter(route_class=ConsoleRoute)

BASE = f"{kit.PREFIX}/profiles"
# What the search's type choice offers: "" looks in every known type and profile ids.
SEARCH_TYPES = ("", "profile_id", *ident.KNOWN_TYPES, "other")
MAX_QUERY = 255
TIMELINE_ITEMS = 50
MESSAGES_SHOWN = 20

kit.add_nav(40, "nav_profiles", BASE, (Role.marketer, Role.analyst))

i18n.add(
    {
        "profiles_title": ("Profiler", "Profiler", "Profiles"),
        "profiles_search": ("Find en profil", "Hitta en profil", "Find a profile"),
        "profiles_query": ("Identifikator", "Identifierare", "Identifier"),
        "profiles_query_hint": (
            "E-mail, telefon, bruger-id, anonymt id, eksternt id eller profil-id (prf_...).",
            "E-post, telefon, användar-id, anonymt id, externt id eller profil-id (prf_...).",
            "Email, phone, user id, anonymous id, external id or profile id (prf_...).",
        ),
        "profiles_type": ("Type", "Typ", "Type"),
        "profiles_type_any": ("Alle typer", "Alla typer", "Any type"),
        "profiles_type_other": ("Anden type (angiv)", "Annan typ (ange)", "Other type (name it)"),
        "profiles_other_type": ("Typens navn", "Typens namn", "Type name"),
        "profiles_search_button": ("Søg", "Sök", "Search"),
        "profiles_none_found": (
            "Ingen profil har den identifikator.",
            "Ingen profil har den identifieraren.",
            "No profile has that identifier.",
        ),
        "profiles_found": ("Fundne profiler", "Hittade profiler", "Profiles found"),
        "err_query_required": (
            "Indtast en identifikator.",
            "Ange en identifierare.",
            "Enter an identifier.",
        ),
        "err_query_long": (
            "Højst {n} tegn.",
            "Högst {n} tecken.",
            "At most {n} characters.",
        ),
        "err_type_unknown": ("Ukendt type.", "Okänd typ.", "Unknown type."),
        "err_other_type_required": (
            "Angiv typens navn, fx loyalty_id.",
            "Ange typens namn, t.ex. loyalty_id.",
            "Name the type, e.g. loyalty_id.",
        ),
        "profile_title": ("Profil {id}", "Profil {id}", "Profile {id}"),
        "profile_erased": (
            "Profilen er slettet (GDPR) {at}.",
            "Profilen är raderad (GDPR) {at}.",
            "The profile was erased (GDPR) {at}.",
        ),
        "profile_identifiers": ("Identifikatorer", "Identifierare", "Identifiers"),
        "profile_traits": ("Egenskaber", "Egenskaper", "Traits"),
        "profile_value": ("Kundeværdi", "Kundvärde", "Customer value"),
        "profile_orders": ("Ordrer", "Ordrar", "Orders"),
        "profile_revenue": ("Omsætning", "Omsättning", "Revenue"),
        "profile_aov": ("Gns. ordreværdi", "Snittordervärde", "Average order value"),
        "profile_first_order": ("Første ordre", "Första order", "First order"),
        "profile_last_order": ("Seneste ordre", "Senaste order", "Last order"),
        "profile_audiences": ("Målgrupper", "Målgrupper", "Audiences"),
        "profile_consents": ("Samtykker", "Samtycken", "Consents"),
        "profile_channel": ("Kanal", "Kanal", "Channel"),
        "profile_status": ("Status", "Status", "Status"),
        "profile_source": ("Kilde", "Källa", "Source"),
        "profile_at": ("Tidspunkt", "Tidpunkt", "At"),
        "profile_score": ("Score", "Poäng", "Score"),
        "profile_score_line": (
            "{score} point (adfærd {behaviour}, profil {fit}), fase: {stage}",
            "{score} poäng (beteende {behaviour}, profil {fit}), fas: {stage}",
            "{score} points (behaviour {behaviour}, fit {fit}), stage: {stage}",
        ),
        "profile_rule": ("Regel", "Regel", "Rule"),
        "profile_points": ("Point", "Poäng", "Points"),
        "profile_timeline": ("Tidslinje", "Tidslinje", "Timeline"),
        "profile_kind": ("Slags", "Typ", "Kind"),
        "profile_summary": ("Hvad", "Vad", "What"),
        "profile_messages": ("Beskeder", "Meddelanden", "Messages"),
        "profile_template": ("Skabelon", "Mall", "Template"),
        "profile_subject": ("Emne", "Ämne", "Subject"),
        "profile_details": ("Stamdata", "Grunddata", "Details"),
        "profile_locale": ("Sprog", "Språk", "Locale"),
        "profile_timezone": ("Tidszone", "Tidszon", "Time zone"),
        "profile_stage": ("Livscyklus", "Livscykel", "Lifecycle stage"),
        "profile_events": ("Hændelser", "Händelser", "Events"),
        "profile_first_seen": ("Først set", "Först sedd", "First seen"),
        "profile_last_seen": ("Sidst set", "Senast sedd", "Last seen"),
        "profile_merged": ("Sammenlagt fra", "Sammanslagen från", "Merged from"),
        "profile_gdpr": ("GDPR", "GDPR", "GDPR"),
        "profile_export": ("Eksportér (JSON)", "Exportera (JSON)", "Export (JSON)"),
        "profile_erase": ("Slet profilen…", "Radera profilen…", "Erase the profile…"),
        "erase_title": ("Slet profil {id}", "Radera profil {id}", "Erase profile {id}"),
        "erase_warning": (
            "Sletningen fjerner personoplysninger og hændelser, stopper kørende rejser og "
            "kan ikke fortrydes. En revisionspost gemmes.",
            "Raderingen tar bort personuppgifter och händelser, stoppar pågående resor och "
            "kan inte ångras. En revisionspost sparas.",
            "Erasing removes personal data and events, stops running journeys and cannot be "
            "undone. An audit record is kept.",
        ),
        "erase_confirm": (
            "Skriv profilens id ({id}) for at bekræfte",
            "Skriv profilens id ({id}) för att bekräfta",
            "Type the profile's id ({id}) to confirm",
        ),
        "erase_button": ("Slet for altid", "Radera för alltid", "Erase for good"),
        "err_confirm_mismatch": (
            "Skriv profilens id præcis som vist.",
            "Skriv profilens id exakt som det visas.",
            "Type the profile's id exactly as shown.",
        ),
        "erase_done": (
            "Profil {id} er slettet.",
            "Profil {id} är raderad.",
            "Profile {id} is erased.",
        ),
        "erase_cancel_failed": (
            "Kørende rejser kunne ikke stoppes lige nu (Temporal svarer ikke); de finder ingen "
            "profil og slutter af sig selv.",
            "Pågående resor kunde inte stoppas just nu (Temporal svarar inte); de hittar ingen "
            "profil och slutar av sig själva.",
            "Running journeys could not be stopped just now (Temporal is not answering); they "
            "find no profile and end by themselves.",
        ),
    }
)


def _type_label(request: Request, value: str) -> str:
    if value == "":
        return kit.text(request, "profiles_type_any")
    if value == "other":
        return kit.text(request, "profiles_type_other")
    return value


def _candidates(session: Session, query: str, type_: str) -> list[str]:
    """Profile ids whose identifier (of `type_`; "" every known type and profile ids) is
    `query`, live or merged-away ones resolved to their survivor, in order found."""
    found: list[str] = []
    if type_ in ("", "profile_id") and query.startswith("prf_"):
        pid = service.resolve_profile_id(session, query)
        if pid is not None:
            found.append(pid)
    types = ident.KNOWN_TYPES if type_ == "" else () if type_ == "profile_id" else (type_,)
    for name in types:
        norm = ident.normalise(name, query)
        if norm is None:
            continue
        rows = session.exec(
            select(ProfileIdentifier.profile_id)
            .where(ProfileIdentifier.type == name, ProfileIdentifier.value == norm)
            .limit(10)
        )
        for pid in rows:
            live = service.resolve_profile_id(session, pid)
            if live is not None:
                found.append(live)
    return list(dict.fromkeys(found))


def _search_ctx(request: Request) -> dict[str, Any]:
    return {
        "types": [(t, _type_label(request, t)) for t in SEARCH_TYPES],
        "results": None,
        "base": BASE,
    }


@router.get("/profiles")
def search_page(
    request: Request,
    session: SessionDep,
    user: ReadUser,
    q: Annotated[str | None, Query(max_length=10_000)] = None,
    type: Annotated[str, Query(max_length=10_000)] = "",
    other: Annotated[str, Query(max_length=10_000)] = "",
) -> Response:
    """The search form; with `q`, the profiles it finds (one: straight to its page)."""
    ctx = _search_ctx(request)
    if q is None:
        return kit.render(request, "profiles_search.html", ctx)
    values = {"q": q, "type": type, "other": other}
    errors: dict[str, str] = {}
    query = q.strip()
    if not query:
        errors["q"] = kit.text(request, "err_query_required")
    elif len(query) > MAX_QUERY:
        errors["q"] = kit.text(request, "err_query_long", n=MAX_QUERY)
    if type not in SEARCH_TYPES:
        errors["type"] = kit.text(request, "err_type_unknown")
    wanted = type
    if type == "other":
        wanted = other.strip()
        if not wanted:
            errors["other"] = kit.text(request, "err_other_type_required")
        elif len(wanted) > 32:
            errors["other"] = kit.text(request, "err_query_long", n=32)
    if errors:
        return kit.form_error(request, "profiles_search.html", {**ctx, "values": values}, errors)
    ids = _candidates(session, query, wanted)
    if len(ids) == 1:
        return kit.redirect(f"{BASE}/{ids[0]}", request)
    rows = []
    for pid in ids:
        profile = session.get(Profile, pid)
        if profile is not None:
            rows.append({"id": pid, "identifiers": service.identifiers_of(session, pid)})
    return kit.render(request, "profiles_search.html", {**ctx, "values": values, "results": rows})


def _score(session: Session, profile_id: str) -> scoring.ScoreView | None:
    try:
        return scoring.current_score(session, profile_id=profile_id)
    except DomainError:
        return None


@router.get("/profiles/{profile_id}")
def profile_page(
    request: Request, profile_id: str, session: SessionDep, runtime: RuntimeDep, user: ReadUser
) -> Response:
    """One profile: everything `GET /api/profiles/{id}` gives, its score and breakdown, the
    newest timeline entries and messages."""
    if len(profile_id) > 64:
        raise kit.PageError(404, field="profile_id")
    live = service.resolve_profile_id(session, profile_id)
    if live is not None and live != profile_id:
        return kit.redirect(f"{BASE}/{live}", request)
    public = profile_public(session, profile_id)
    erased = public.erased_at is not None
    score = None if erased else _score(session, public.id)
    timeline = (
        [] if erased else service.timeline(session, profile_id=public.id, limit=TIMELINE_ITEMS)
    )
    sent = (
        []
        if erased
        else messages.list_messages(session, profile_id=public.id, limit=MESSAGES_SHOWN)
    )
    return kit.render(
        request,
        "profile.html",
        {
            "p": public,
            "erased": erased,
            "score": score,
            "timeline": timeline,
            "messages": sent,
            "base": BASE,
            "can_admin": user.role is Role.admin,
            "notice": request.query_params.get("notice"),
        },
    )


@router.get("/profiles/{profile_id}/export")
def export(profile_id: str, session: SessionDep, user: AdminUser) -> Response:
    """The GDPR export (the document `GET /api/profiles/{id}/export` gives) as a download."""
    data = gdpr.export_profile(session, profile_id=profile_id)
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    return Response(
        body,
        media_type="application/json",
        headers={
            **kit.HEADERS,
            "Content-Disposition": f'attachment; filename="{data["profile"]["id"]}.json"',
        },
    )


def _erase_ctx(public: Any) -> dict[str, Any]:
    return {"p": public, "base": BASE}


@router.get("/profiles/{profile_id}/erase")
def erase_page(request: Request, profile_id: str, session: SessionDep, user: AdminUser) -> Response:
    """The confirmation step: what erasing does, and the id to type."""
    public = profile_public(session, profile_id)
    if public.erased_at is not None:
        raise kit.PageError(409, field="profile_id")
    return kit.render(request, "profile_erase.html", _erase_ctx(public))


@router.post("/profiles/{profile_id}/erase")
async def erase(
    request: Request,
    profile_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    erasers: ProfileErasersDep,
    user: AdminUser,
    form: CsrfForm,
) -> Response:
    """Erase after the typed confirmation, as `DELETE /api/profiles/{id}` does."""
    public = profile_public(session, profile_id)
    if form.get("confirm").strip() != public.id:
        session.rollback()
        return kit.form_error(
            request,
            "profile_erase.html",
            {**_erase_ctx(public), "values": form.values()},
            {"confirm": kit.text(request, "err_confirm_mismatch")},
        )
    audit = gdpr.erase_profile(
        session,
        profile_id=public.id,
        secret=runtime.settings.secret_key,
        erasers=erasers,
        requested_by=user.key_id,
    )
    session.commit()
    failed = await gdpr.cancel_after_erase(erasers, audit)
    notice = "erased" if not failed else "erased_partly"
    return kit.redirect(f"{BASE}/{audit.profile_id}?notice={notice}", request)
