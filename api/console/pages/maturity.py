"""Data maturity: the assessment form with the customer-data answers prefilled from rejse's
data (`GET /api/maturity/prefill`), and the result (`GET /api/maturity/{id}`): the 2x2 with
the start position, the most pressing challenge, the way forward, the progress scenario of
movers and the workshops. The assessment's texts exist in Danish and English (the workbook's
languages): a Swedish console shows them in English."""

from __future__ import annotations

import datetime as dt
import weakref
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.console import i18n, kit
from api.console.kit import ConsoleRoute, ConsoleUser, CsrfForm, ReadUser, WriteUser
from api.deps import SessionDep
from api.routers.maturity import _prefill, _prefill_public, _public
from rejse.db import utcnow
from rejse.maturity import service, texts
from rejse.maturity.model import HIGHEST, LOWEST, Progress, Readiness
from rejse.maturity.prefill import Prefill
from rejse.maturity.texts import Lang
from rejse.roles import Role

router = APIRouter(route_class=ConsoleRoute)

BASE = f"{kit.PREFIX}/maturity"
HISTORY_SHOWN = 20
ANSWERS = tuple(range(LOWEST, HIGHEST + 1))
# The prefill reads every profile and the activity events (seconds on a million profiles,
# docs/analytics.md): the form uses one computed within this long, per database; the page
# says when it was computed and offers a fresh one (`?fresh=1`). The JSON endpoint stays live.
PREFILL_FOR = dt.timedelta(minutes=10)
_prefills: weakref.WeakKeyDictionary[Engine, Prefill] = weakref.WeakKeyDictionary()

kit.add_nav(70, "nav_maturity", BASE, (Role.marketer, Role.analyst))

i18n.add(
    {
        "maturity_title": ("Datamodenhed", "Datamognad", "Data maturity"),
        "maturity_intro": (
            'Vurderingen fra arbejdsbogen "Brug Kundedata": seks spørgsmål om motivation og '
            "kundedata giver jeres startposition. Spørgsmål 4-6 er udfyldt ud fra rejses data.",
            'Bedömningen från arbetsboken "Brug Kundedata": sex frågor om motivation och '
            "kunddata ger er startposition. Fråga 4-6 är ifyllda utifrån rejses data.",
            'The assessment of the "Brug Kundedata" workbook: six questions on motivation and '
            "customer data give your start position. Questions 4-6 are filled in from "
            "rejse's data.",
        ),
        "maturity_company": ("Virksomhed (valgfri)", "Företag (valfritt)", "Company (optional)"),
        "maturity_goal": (
            "Målet med ord (valgfrit)",
            "Målet i ord (valfritt)",
            "The goal in words (optional)",
        ),
        "maturity_readiness": ("Parathed", "Beredskap", "Readiness"),
        "maturity_progress": (
            "Fremdrift (kun for Bevægere, valgfri)",
            "Framsteg (endast för Bevægere, valfritt)",
            "Progress (for movers only, optional)",
        ),
        "maturity_progress_hint": (
            "Besvar alle fire eller ingen.",
            "Besvara alla fyra eller ingen.",
            "Answer all four or none.",
        ),
        "maturity_prefilled": (
            "Foreslået ud fra data: {answer} ({share} af {profiles} profiler)",
            "Föreslaget utifrån data: {answer} ({share} av {profiles} profiler)",
            "Suggested from the data: {answer} ({share} of {profiles} profiles)",
        ),
        "maturity_no_answer": ("– vælg –", "– välj –", "– choose –"),
        "maturity_submit": ("Vurdér", "Bedöm", "Assess"),
        "maturity_computed": (
            "Forslagene er beregnet {at} UTC.",
            "Förslagen beräknades {at} UTC.",
            "The suggestions were computed at {at} UTC.",
        ),
        "maturity_recompute": ("Beregn igen", "Beräkna igen", "Compute again"),
        "maturity_history": (
            "Tidligere vurderinger",
            "Tidigare bedömningar",
            "Earlier assessments",
        ),
        "maturity_result": ("Resultat", "Resultat", "Result"),
        "maturity_position": (
            "Startposition: {name}",
            "Startposition: {name}",
            "Start position: {name}",
        ),
        "maturity_scores": (
            "Motivation {motivation}, kundedata {data} (0-1)",
            "Motivation {motivation}, kunddata {data} (0-1)",
            "Motivation {motivation}, customer data {data} (0-1)",
        ),
        "maturity_challenge": (
            "Den mest presserende udfordring",
            "Den mest angelägna utmaningen",
            "The most pressing challenge",
        ),
        "maturity_way_forward": ("Vejen frem", "Vägen framåt", "The way forward"),
        "maturity_scenario": (
            "Fremdriftsscenarie: {name}",
            "Framstegsscenario: {name}",
            "Progress scenario: {name}",
        ),
        "maturity_progress_needed": (
            "I er Bevægere: besvar fremdriftsspørgsmålene for at få jeres scenarie.",
            "Ni är Bevægere: besvara framstegsfrågorna för att få ert scenario.",
            "You are movers: answer the progress questions to get your scenario.",
        ),
        "maturity_workshops": (
            "Forslag til workshops",
            "Förslag på workshoppar",
            "Suggested workshops",
        ),
        "maturity_minutes": ("{n} minutter · {who}", "{n} minuter · {who}", "{n} minutes · {who}"),
        "maturity_chart": (
            "2x2: kundedata (vandret) mod motivation (lodret)",
            "2x2: kunddata (vågrätt) mot motivation (lodrätt)",
            "2x2: customer data (across) against motivation (up)",
        ),
        "maturity_new": ("Ny vurdering", "Ny bedömning", "New assessment"),
        "err_answer": (
            "Vælg et svar fra 1 til 5.",
            "Välj ett svar från 1 till 5.",
            "Choose an answer from 1 to 5.",
        ),
        "err_progress_partial": (
            "Besvar alle fire fremdriftsspørgsmål, eller lad dem alle stå tomme.",
            "Besvara alla fyra framstegsfrågor, eller lämna alla tomma.",
            "Answer all four progress questions, or leave them all empty.",
        ),
        "err_text_long": ("Højst {n} tegn.", "Högst {n} tecken.", "At most {n} characters."),
    }
)


def maturity_lang(request: Request) -> Lang:
    """The console's language where the assessment has texts; Swedish reads the English."""
    return "da" if kit.language_of(request) == "da" else "en"


def recent_prefill(session: Session, *, fresh: bool = False) -> Prefill:
    """The prefill of the session's database, computed at most PREFILL_FOR ago."""
    engine = session.get_bind()
    if not isinstance(engine, Engine):
        raise TypeError("the session is bound to a connection, not an engine")
    kept = _prefills.get(engine)
    if fresh or kept is None or utcnow() - kept.computed_at > PREFILL_FOR:
        kept = _prefills[engine] = _prefill(session)
    return kept


def _form_ctx(
    request: Request, session: Any, user: ConsoleUser, *, fresh: bool = False
) -> dict[str, Any]:
    lang = maturity_lang(request)
    prefill = _prefill_public(recent_prefill(session, fresh=fresh), lang)
    history = service.listing(
        session, limit=HISTORY_SHOWN, offset=max(0, service.count(session) - HISTORY_SHOWN)
    )
    shares = {
        "structural": prefill.structural,
        "transactional": prefill.transactional,
        "activity": prefill.activity,
    }
    values = {f"readiness.{k}": str(v) for k, v in prefill.answers.items()}
    return {
        "base": BASE,
        "prefill": prefill,
        "shares": shares,
        "readiness_questions": [q for q in prefill.questions if q.dimension != "progress"],
        "progress_questions": [q for q in prefill.questions if q.dimension == "progress"],
        "answers": ANSWERS,
        "history": list(reversed(history)),
        "values": values,
        "can_write": user.can_write,
        "position_names": {p: texts.POSITIONS[p][lang].name for p in texts.POSITIONS},
    }


@router.get("/maturity")
def form_page(
    request: Request,
    session: SessionDep,
    user: ReadUser,
    fresh: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    """The assessment form, questions 4-6 prefilled, and the earlier assessments."""
    ctx = _form_ctx(request, session, user, fresh=bool(fresh))
    return kit.render(request, "maturity_form.html", ctx)


def _answer(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) == 1 else None


@router.post("/maturity")
def assess(request: Request, session: SessionDep, user: WriteUser, form: CsrfForm) -> Response:
    """Assess and store (`POST /api/maturity`), then show the result."""
    errors: dict[str, str] = {}
    readiness: dict[str, int | None] = {}
    for key in texts.READINESS_KEYS:
        readiness[key] = _answer(form.get(f"readiness.{key}"))
        if readiness[key] is None or not LOWEST <= (readiness[key] or 0) <= HIGHEST:
            errors[f"readiness.{key}"] = kit.text(request, "err_answer")
    progress_raw = {key: form.get(f"progress.{key}").strip() for key in texts.PROGRESS_KEYS}
    progress: dict[str, int | None] | None = None
    if any(progress_raw.values()):
        progress = {key: _answer(v) for key, v in progress_raw.items()}
        for key, v in progress.items():
            if v is None or not LOWEST <= v <= HIGHEST:
                errors[f"progress.{key}"] = kit.text(
                    request, "err_progress_partial" if not progress_raw[key] else "err_answer"
                )
    company = form.get("company").strip() or None
    goal = form.get("goal").strip() or None
    if company is not None and len(company) > 200:
        errors["company"] = kit.text(request, "err_text_long", n=200)
    if goal is not None and len(goal) > 2000:
        errors["goal"] = kit.text(request, "err_text_long", n=2000)
    if errors:
        ctx = _form_ctx(request, session, user)
        ctx["values"] = form.values()
        return kit.form_error(request, "maturity_form.html", ctx, errors)
    row = service.create(
        session,
        Readiness.model_validate(readiness),
        Progress.model_validate(progress) if progress is not None else None,
        company=company,
        goal=goal,
        created_by=user.key_id,
        now=utcnow(),
    )
    session.commit()
    return kit.redirect(f"{BASE}/{row.id}", request)


@router.get("/maturity/{assessment_id}")
def result_page(
    request: Request,
    assessment_id: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    user: ReadUser,
) -> Response:
    """One assessment: the 2x2 with its point, the texts and the workshops."""
    lang = maturity_lang(request)
    row = service.get(session, assessment_id)
    public = _public(row, lang)
    words = texts.CHART[lang]
    quadrants = {p: texts.POSITIONS[p][lang].name for p in texts.POSITIONS}
    return kit.render(
        request,
        "maturity_result.html",
        {
            "base": BASE,
            "a": public,
            "chart_words": words,
            "quadrants": quadrants,
            "can_write": user.can_write,
        },
    )
