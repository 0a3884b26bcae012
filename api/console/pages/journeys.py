"""Journeys: the list with status and headline KPIs; one journey's page with its diagram
carrying live counts per step (waiting now, sent, converted), versions, the lifecycle buttons,
the runs (who is where), A/B results; and the JSON editor whose validation errors show at the
step and field they name. The same service functions as `/api/journeys` and
`/api/analytics` (`rejse.journeys.service`, `rejse.analytics.kpis`, `...experiments`)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlmodel import Session

from api.console import i18n, kit
from api.console.kit import ConsoleRoute, CsrfForm, ReadUser, WriteUser
from api.deps import READ
from rejse.analytics import experiments, kpis
from rejse.db import utcnow
from rejse.errors import DomainError
from rejse.inputs import MAX_INT32, MAX_OFFSET
from rejse.journeys import service
from rejse.journeys.definition import JourneyDefinition
from rejse.journeys.diagram import EDGE_LABELS, LABELS
from rejse.journeys.dispatcher import change_status
from rejse.journeys.layout import layout
from rejse.journeys.service import DefinitionInvalid
from rejse.models.journeys import RUN_STATUSES, Journey

router = APIRouter(route_class=ConsoleRoute)
kit.add_nav(20, "nav_journeys", f"{kit.PREFIX}/journeys", READ)

KeyPath = Annotated[str, Path(min_length=1, max_length=64)]
RUNS_PAGE = 50
KPI_DAYS = 30

i18n.add(
    {
        "journeys_title": ("Rejser", "Resor", "Journeys"),
        "journeys_intro": (
            "Nøgletal for de seneste {days} dage.",
            "Nyckeltal för de senaste {days} dagarna.",
            "Key figures of the last {days} days.",
        ),
        "journey_new": ("Ny rejse", "Ny resa", "New journey"),
        "col_journey": ("Rejse", "Resa", "Journey"),
        "col_status": ("Status", "Status", "Status"),
        "col_version": ("Version", "Version", "Version"),
        "col_entered": ("Startet", "Startade", "Entered"),
        "col_waiting": ("Venter nu", "Väntar nu", "Waiting now"),
        "col_sent": ("Sendt", "Skickade", "Sent"),
        "col_converted": ("Konverteret", "Konverterade", "Converted"),
        "col_conversion_rate": ("Konverteringsrate", "Konverteringsgrad", "Conversion rate"),
        "col_revenue": ("Omsætning", "Intäkter", "Revenue"),
        "no_journeys": (
            "Ingen rejser endnu.",
            "Inga resor ännu.",
            "No journeys yet.",
        ),
        "status_draft": ("kladde", "utkast", "draft"),
        "status_published": ("udgivet", "publicerad", "published"),
        "status_paused": ("sat på pause", "pausad", "paused"),
        "status_archived": ("arkiveret", "arkiverad", "archived"),
        "published_version": (
            "Udgivet: version {version}",
            "Publicerad: version {version}",
            "Published: version {version}",
        ),
        "not_published": ("Ikke udgivet", "Inte publicerad", "Not published"),
        "action_publish": (
            "Udgiv version {version}",
            "Publicera version {version}",
            "Publish version {version}",
        ),
        "action_pause": ("Sæt på pause", "Pausa", "Pause"),
        "action_resume": ("Genoptag", "Återuppta", "Resume"),
        "action_archive": ("Arkivér", "Arkivera", "Archive"),
        "action_edit": ("Redigér definitionen", "Redigera definitionen", "Edit the definition"),
        "confirm_archive": (
            "Arkivér rejsen? Igangværende forløb annulleres.",
            "Arkivera resan? Pågående förlopp avbryts.",
            "Archive the journey? Running runs are cancelled.",
        ),
        "diagram": ("Forløb", "Flöde", "Diagram"),
        "diagram_hint": (
            "Tallene er live: de opdateres, mens kunderne bevæger sig gennem rejsen.",
            "Siffrorna är live: de uppdateras medan kunderna rör sig genom resan.",
            "The numbers are live: they change as customers move through the journey.",
        ),
        "trigger": ("Start", "Start", "Trigger"),
        "goal": ("Mål", "Mål", "Goal"),
        "goal_text": (
            "{event} afslutter forløbet (konvertering)",
            "{event} avslutar förloppet (konvertering)",
            "{event} ends the run (converted)",
        ),
        "then": ("derefter", "sedan", "then"),
        "end": ("slut", "slut", "end"),
        "waiting_now": ("venter nu", "väntar nu", "waiting now"),
        "flow_counts": (
            "{waiting} venter · {sent} sendt · {converted} konv.",
            "{waiting} väntar · {sent} skickade · {converted} konv.",
            "{waiting} waiting · {sent} sent · {converted} conv.",
        ),
        "sent": ("sendt", "skickade", "sent"),
        "converted": ("konverteret", "konverterade", "converted"),
        "versions": ("Versioner", "Versioner", "Versions"),
        "col_created": ("Oprettet", "Skapad", "Created"),
        "col_published": ("Udgivet", "Publicerad", "Published"),
        "show_version": ("Vis", "Visa", "Show"),
        "runs": ("Forløb", "Förlopp", "Runs"),
        "runs_hint": (
            "Hvem er hvor: de nyeste først.",
            "Vem är var: de senaste först.",
            "Who is where: newest first.",
        ),
        "col_profile": ("Profil", "Profil", "Profile"),
        "col_step": ("Trin", "Steg", "Step"),
        "col_since": ("Siden", "Sedan", "Since"),
        "col_entered_at": ("Startet", "Startade", "Entered"),
        "col_variant": ("Variant", "Variant", "Variant"),
        "filter_status": ("Status", "Status", "Status"),
        "filter_all": ("alle", "alla", "all"),
        "filter": ("Filtrér", "Filtrera", "Filter"),
        "no_runs": ("Ingen forløb.", "Inga förlopp.", "No runs."),
        "ab_tests": ("A/B-test", "A/B-test", "A/B tests"),
        "hypothesis": ("Hypotese", "Hypotes", "Hypothesis"),
        "col_arm": ("Arm", "Arm", "Arm"),
        "col_interval": ("95 %-interval", "95 %-intervall", "95 % interval"),
        "col_p_value": ("p-værdi", "p-värde", "p-value"),
        "significant_yes": ("signifikant", "signifikant", "significant"),
        "significant_no": ("ikke signifikant", "inte signifikant", "not significant"),
        "winner": ("Vinder: {arm}", "Vinnare: {arm}", "Winner: {arm}"),
        "no_winner": ("Ingen vinder endnu", "Ingen vinnare ännu", "No winner yet"),
        "sample_needed": (
            "Stikprøve pr. arm: {required} (mindste arm: {smallest})",
            "Urval per arm: {required} (minsta arm: {smallest})",
            "Sample per arm: {required} (smallest arm: {smallest})",
        ),
        "experiment_status": ("Status: {status}", "Status: {status}", "Status: {status}"),
        "editor_new_title": ("Ny rejse", "Ny resa", "New journey"),
        "editor_edit_title": (
            "Redigér {key}: ny version",
            "Redigera {key}: ny version",
            "Edit {key}: a new version",
        ),
        "definition": ("Definition (JSON)", "Definition (JSON)", "Definition (JSON)"),
        "definition_hint": (
            "Rejsen som JSON (docs/journeys.md). Gem laver en ny kladde-version; "
            "udgiv den bagefter på rejsens side.",
            "Resan som JSON (docs/journeys.md). Spara skapar en ny utkastversion; "
            "publicera den sedan på resans sida.",
            "The journey as JSON (docs/journeys.md). Saving makes a new draft version; "
            "publish it afterwards on the journey's page.",
        ),
        "steps_check": ("Trinene", "Stegen", "The steps"),
        "err_json": (
            "Ikke gyldig JSON: {error} (linje {line}, kolonne {column})",
            "Inte giltig JSON: {error} (rad {line}, kolumn {column})",
            "Not valid JSON: {error} (line {line}, column {column})",
        ),
        "err_definition_object": (
            "Definitionen skal være et JSON-objekt.",
            "Definitionen måste vara ett JSON-objekt.",
            "The definition must be a JSON object.",
        ),
        "err_definition_required": (
            "Indsæt en definition.",
            "Klistra in en definition.",
            "Paste a definition.",
        ),
        "err_in_definition": (
            "Definitionen har {n} fejl; se dem ved trinene nedenfor.",
            "Definitionen har {n} fel; se dem vid stegen nedan.",
            "The definition has {n} errors; see them at the steps below.",
        ),
        "other_errors": ("Øvrige fejl", "Övriga fel", "Other errors"),
        "saved_version": (
            "Version {version} er gemt som kladde.",
            "Version {version} är sparad som utkast.",
            "Version {version} is saved as a draft.",
        ),
        "publish_failed": (
            "Versionen kan ikke udgives: {n} fejl.",
            "Versionen kan inte publiceras: {n} fel.",
            "The version cannot be published: {n} errors.",
        ),
        "status_changed": (
            "Status: {status}. {told} igangværende forløb fik besked.",
            "Status: {status}. {told} pågående förlopp fick besked.",
            "Status: {status}. {told} running runs were told.",
        ),
    }
)


# ----------------------------------------------------------------------------- reading


def _kpi_period() -> kpis.Period:
    end = utcnow().date()
    return kpis.Period(start=end - dt.timedelta(days=KPI_DAYS - 1), end=end)


def _step_rows(
    definition: dict[str, Any], counts: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The definition's steps in order, each with its label, successors and live counts."""
    defn = JourneyDefinition.model_validate(definition)
    rows = []
    for sid, step in defn.steps.items():
        edges = EDGE_LABELS[step.type](step) if step.type in EDGE_LABELS else {}
        c = counts.get(sid, {})
        rows.append(
            {
                "id": sid,
                "type": step.type,
                "label": LABELS[step.type](step) if step.type in LABELS else step.type,
                "next": [(edges.get(f, ""), target) for f, target in step.successors()],
                "waiting": c.get("waiting", 0),
                "sent": c.get("sent", 0),
                "converted": c.get("converted", 0),
                "entered": c.get("entered", 0),
            }
        )
    return rows


def _diagram(session: Session, journey: Journey, version: int) -> dict[str, Any]:
    row = service.get_version(session, key=journey.key, version=version)
    table = kpis.journey_steps(session, journey.key, kpis.Period())
    counts = {r["step_id"]: r for r in table["steps"]}
    defn = row.definition
    trigger = defn.get("trigger", {})
    what = trigger.get("event") or trigger.get("cron") or trigger.get("audience") or ""
    steps = _step_rows(defn, counts)
    return {
        "version": version,
        "start": defn.get("start"),
        "trigger": f"{trigger.get('type', '')}: {what}".rstrip(": "),
        "goals": [g.get("event", "") for g in defn.get("exit_when", [])],
        "steps": steps,
        "flow": layout(
            defn.get("start"), [s["id"] for s in steps], {s["id"]: s["next"] for s in steps}
        ),
    }


def _experiments(session: Session, journey: Journey, definition: dict[str, Any]) -> list[Any]:
    out = []
    for sid, step in (definition.get("steps") or {}).items():
        if step.get("type") == "split":
            try:
                out.append(
                    experiments.experiment(
                        session, journey=journey.key, step=sid, params=experiments.Params()
                    )
                )
            except DomainError:
                continue
    return out


def _journey_context(
    request: Request,
    session: Session,
    key: str,
    *,
    version: int | None,
    status: str | None,
    offset: int,
) -> dict[str, Any]:
    journey = service.get_journey(session, key=key)
    shown = version or journey.published_version or journey.latest_version
    diagram = _diagram(session, journey, shown)
    definition = service.get_version(session, key=key, version=shown).definition
    runs = service.list_runs(session, key=key, status=status, limit=RUNS_PAGE + 1, offset=offset)
    summary = kpis.journey_summary(session, key, _kpi_period())
    return {
        "journey": journey,
        "diagram": diagram,
        "definition_json": json.dumps(definition, indent=2, ensure_ascii=False),
        "versions": service.list_versions(session, key=key),
        "runs": runs[:RUNS_PAGE],
        "more_runs": len(runs) > RUNS_PAGE,
        "run_status": status or "",
        "run_statuses": RUN_STATUSES,
        "offset": offset,
        "page_size": RUNS_PAGE,
        "totals": summary["totals"],
        "experiments": _experiments(session, journey, definition),
        "shown_version": shown,
    }


def fmt_rate(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


# ----------------------------------------------------------------------------- pages


@router.get("/journeys")
def journeys(request: Request, user: ReadUser) -> Response:
    with kit.db(request) as session:
        table = kpis.comparison(session, _kpi_period())
        by_key = {j.key: j for j in service.list_journeys(session)}
    rows = [{**row, "row": by_key.get(row["journey"])} for row in table["journeys"]]
    return kit.render(
        request, "journeys.html", {"rows": rows, "days": KPI_DAYS, "fmt_rate": fmt_rate}
    )


@router.get("/journeys/new")
def new_journey(request: Request, user: WriteUser) -> Response:
    return kit.render(request, "journey_edit.html", _editor_ctx(None, "", None))


@router.post("/journeys/new")
def create_journey(request: Request, user: WriteUser, form: CsrfForm) -> Response:
    text = form.get("definition")
    ctx = _editor_ctx(None, text, None)
    parsed, errors = _parse(request, text)
    if errors:
        return kit.form_error(request, "journey_edit.html", {**ctx, **parsed}, errors)
    with kit.db(request) as session:
        try:
            version = service.create_journey(session, definition=parsed["definition"])
        except DefinitionInvalid as exc:
            return _invalid(request, ctx, parsed, exc)
        except DomainError as exc:
            return kit.form_error(
                request, "journey_edit.html", {**ctx, **parsed}, {"definition": exc.message}
            )
        session.commit()
    return _to_journey(request, version.journey_key, saved=version.version)


@router.get("/journeys/{key}")
def journey_page(
    request: Request,
    user: ReadUser,
    key: KeyPath,
    version: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    saved: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    told: Annotated[int | None, Query(ge=0, le=MAX_INT32)] = None,
) -> Response:
    status = status or None
    if status is not None and status not in RUN_STATUSES:
        raise kit.PageError(422, field="status", message=", ".join(RUN_STATUSES))
    with kit.db(request) as session:
        ctx = _journey_context(request, session, key, version=version, status=status, offset=offset)
    ctx["fmt_rate"] = fmt_rate
    ctx["saved"], ctx["told"] = saved, told
    if request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == (
        "diagram"
    ):
        return kit.render(request, "_journey_diagram.html", ctx)
    return kit.render(request, "journey.html", ctx)


@router.get("/journeys/{key}/edit")
def edit_journey(request: Request, user: WriteUser, key: KeyPath) -> Response:
    with kit.db(request) as session:
        journey = service.get_journey(session, key=key)
        row = service.get_version(session, key=key, version=journey.latest_version)
    text = json.dumps(row.definition, indent=2, ensure_ascii=False)
    return kit.render(request, "journey_edit.html", _editor_ctx(key, text, None))


@router.post("/journeys/{key}/edit")
def save_journey(request: Request, user: WriteUser, form: CsrfForm, key: KeyPath) -> Response:
    text = form.get("definition")
    ctx = _editor_ctx(key, text, None)
    parsed, errors = _parse(request, text)
    if errors:
        return kit.form_error(request, "journey_edit.html", {**ctx, **parsed}, errors)
    with kit.db(request) as session:
        try:
            version = service.add_version(session, key=key, definition=parsed["definition"])
        except DefinitionInvalid as exc:
            return _invalid(request, ctx, parsed, exc)
        except DomainError as exc:
            if exc.status_code == 404:
                raise
            return kit.form_error(
                request, "journey_edit.html", {**ctx, **parsed}, {"definition": exc.message}
            )
        session.commit()
    return _to_journey(request, key, saved=version.version)


@router.post("/journeys/{key}/publish")
def publish(request: Request, user: WriteUser, form: CsrfForm, key: KeyPath) -> Response:
    raw = form.get("version")
    version = int(raw) if raw.isdigit() and 0 < int(raw) <= MAX_INT32 else None
    if raw and version is None:
        raise kit.PageError(422, field="version", message="1 .. 2147483647")
    runtime = kit.runtime_of(request)
    with kit.db(request) as session:
        try:
            journey = service.publish(
                session,
                key=key,
                version=version,
                activity_names=request.app.state.activity_names,
                webhook_allow_private=runtime.settings.webhook_allow_private,
            )
        except DefinitionInvalid as exc:
            row = service.get_version(
                session,
                key=key,
                version=version or service.get_journey(session, key=key).latest_version,
            )
            text = json.dumps(row.definition, indent=2, ensure_ascii=False)
            ctx = _editor_ctx(
                key, text, i18n.text(user.language, "publish_failed", n=len(exc.issues))
            )
            parsed, _ = _parse(request, text)
            return _invalid(request, ctx, parsed, exc)
        session.commit()
    return _to_journey(request, journey.key, told=0)


Lifecycle = Literal["pause", "resume", "archive"]
_NEW_STATUS = {"pause": "paused", "resume": "published", "archive": "archived"}


@router.post("/journeys/{key}/{action}")
async def lifecycle(
    request: Request, user: WriteUser, form: CsrfForm, key: KeyPath, action: Lifecycle
) -> Response:
    """Pause (running runs held before their next step), resume, archive (runs cancelled):
    what `POST /api/journeys/{key}/{pause|resume|archive}` does."""
    with kit.db(request) as session:
        _, told = await change_status(
            session, kit.runtime_of(request), key=key, status=_NEW_STATUS[action]
        )
    return _to_journey(request, key, told=told)


# ----------------------------------------------------------------------------- the editor


def _editor_ctx(key: str | None, text: str, problem: str | None) -> dict[str, Any]:
    return {
        "key": key,
        "values": {"definition": text},
        "steps": [],
        "step_errors": {},
        "other_errors": [],
        "problem": problem,
    }


def _parse(request: Request, text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The posted JSON, or the error at the `definition` field."""
    if not text.strip():
        return {}, {"definition": kit.text(request, "err_definition_required")}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        message = kit.text(request, "err_json", error=exc.msg, line=exc.lineno, column=exc.colno)
        return {}, {"definition": message}
    if not isinstance(value, dict):
        return {}, {"definition": kit.text(request, "err_definition_object")}
    steps = value.get("steps")
    names = list(steps) if isinstance(steps, dict) else []
    return {"definition": value, "steps": names}, {}


def _invalid(
    request: Request, ctx: dict[str, Any], parsed: dict[str, Any], exc: DefinitionInvalid
) -> Response:
    """The editor again: each issue beside the step it names (`steps.<id>.<field>`), the rest
    (trigger, start, exit_when, ...) in a list of its own."""
    steps: list[str] = parsed.get("steps", [])
    by_step: dict[str, list[tuple[str, str]]] = defaultdict(list)
    other: list[tuple[str, str]] = []
    for issue in exc.issues:
        parts = issue.field.split(".")
        if len(parts) >= 2 and parts[0] == "steps" and parts[1] in steps:
            by_step[parts[1]].append((".".join(parts[2:]) or parts[1], issue.message))
        else:
            other.append((issue.field, issue.message))
    summary = kit.text(request, "err_in_definition", n=len(exc.issues))
    return kit.form_error(
        request,
        "journey_edit.html",
        {**ctx, "steps": steps, "step_errors": dict(by_step), "other_errors": other},
        {"definition": summary},
    )


def _to_journey(
    request: Request, key: str, *, saved: int | None = None, told: int | None = None
) -> Response:
    """Back to the journey's page (POST-redirect-GET), saying what was done."""
    query = f"?saved={saved}" if saved is not None else f"?told={told}" if told is not None else ""
    return kit.redirect(f"{kit.PREFIX}/journeys/{quote(key, safe='')}{query}", request)
