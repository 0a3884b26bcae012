"""Audiences: the list with sizes; the builder (condition as JSON, the segmentation canvas's
fields) whose preview size and sample follow the condition as you type (htmx; without
JavaScript the Preview button shows the same); one audience's page with its members (keyset
paging), the CSV export and, for marketers, edit and delete. The same service functions as
`/api/audiences` (`rejse.audiences.service`, `...preview`, `...export`)."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from api.console import i18n, kit
from api.console.kit import ConsoleRoute, CsrfForm, FormData, ReadUser, WriteUser
from api.deps import READ
from rejse.audiences import service
from rejse.audiences.definition import AudienceDefinition
from rejse.audiences.export import export_csv, parse_columns
from rejse.audiences.preview import DEFAULT_TRAITS, draft_issues, preview
from rejse.audiences.usage import audiences_using, journeys_using
from rejse.conditions import Issue
from rejse.db import utcnow
from rejse.errors import DomainError

router = APIRouter(route_class=ConsoleRoute)
kit.add_nav(30, "nav_audiences", f"{kit.PREFIX}/audiences", READ)

KeyPath = Annotated[str, Path(min_length=1, max_length=64)]
MEMBERS_PAGE = 50
SAMPLE = 10
CANVAS_TEXTS = ("facts", "sales", "value")

i18n.add(
    {
        "audiences_title": ("Målgrupper", "Målgrupper", "Audiences"),
        "audiences_intro": (
            "Målgrupper holdes opdateret for hver hændelse.",
            "Målgrupper hålls aktuella för varje händelse.",
            "Audiences are kept current with every event.",
        ),
        "audience_new": ("Ny målgruppe", "Ny målgrupp", "New audience"),
        "col_audience": ("Målgruppe", "Målgrupp", "Audience"),
        "col_size": ("Medlemmer", "Medlemmar", "Members"),
        "col_priority": ("Prioritet", "Prioritet", "Priority"),
        "col_updated": ("Ændret", "Ändrad", "Changed"),
        "no_audiences": ("Ingen målgrupper endnu.", "Inga målgrupper ännu.", "No audiences yet."),
        "builder_new_title": ("Ny målgruppe", "Ny målgrupp", "New audience"),
        "builder_edit_title": ("Redigér {name}", "Redigera {name}", "Edit {name}"),
        "field_key": ("Nøgle", "Nyckel", "Key"),
        "field_key_hint": (
            'Små bogstaver, tal, - og _; bruges som {"audience": nøgle} i betingelser.',
            'Små bokstäver, siffror, - och _; används som {"audience": nyckel} i villkor.',
            'Lower-case letters, digits, - and _; used as {"audience": key} in conditions.',
        ),
        "field_name": ("Navn", "Namn", "Name"),
        "field_description": ("Beskrivelse", "Beskrivning", "Description"),
        "field_condition": ("Betingelse (JSON)", "Villkor (JSON)", "Condition (JSON)"),
        "field_condition_hint": (
            'F.eks. {"event": "Order Completed", "within": "P90D"} (docs/audiences.md).',
            'T.ex. {"event": "Order Completed", "within": "P90D"} (docs/audiences.md).',
            'E.g. {"event": "Order Completed", "within": "P90D"} (docs/audiences.md).',
        ),
        "canvas": ("Segmenteringslærred", "Segmenteringsduk", "Segmentation canvas"),
        "canvas_hint": (
            "Beskriver segmentet for mennesker; ændrer ikke, hvem der er medlem.",
            "Beskriver segmentet för människor; ändrar inte vilka som är medlemmar.",
            "Describes the segment for people; does not change who is a member.",
        ),
        "canvas_facts": ("Fakta: hvem er de?", "Fakta: vilka är de?", "Facts: who are they?"),
        "canvas_sales": (
            "Salg: hvad køber de?",
            "Försäljning: vad köper de?",
            "Sales: what do they buy?",
        ),
        "canvas_value": (
            "Værdi: hvad er deres mål?",
            "Värde: vilka är deras mål?",
            "Value: what are their goals?",
        ),
        "canvas_kind": ("Kunder", "Kunder", "Customers"),
        "kind_existing": ("eksisterende", "befintliga", "existing"),
        "kind_potential": ("potentielle", "potentiella", "potential"),
        "canvas_market": ("Marked", "Marknad", "Market"),
        "canvas_priority": (
            "Prioritet (1 = højest)",
            "Prioritet (1 = högst)",
            "Priority (1 = highest)",
        ),
        "not_set": ("ikke angivet", "inte angivet", "not set"),
        "trigger_existing": (
            "Send 'Audience Entered' for dem, der allerede passer (kan starte rejser)",
            "Skicka 'Audience Entered' för dem som redan passar (kan starta resor)",
            "Fire 'Audience Entered' for those who already match (may start journeys)",
        ),
        "preview": ("Forhåndsvisning", "Förhandsvisning", "Preview"),
        "preview_button": ("Vis forhåndsvisning", "Visa förhandsvisning", "Show preview"),
        "preview_size": (
            "{size} profiler passer nu",
            "{size} profiler passar nu",
            "{size} profiles match now",
        ),
        "preview_hint": (
            "Opdateres mens du skriver.",
            "Uppdateras medan du skriver.",
            "Updates as you type.",
        ),
        "col_email": ("E-mail", "E-post", "Email"),
        "col_traits": ("Egenskaber", "Egenskaper", "Traits"),
        "members": ("Medlemmer", "Medlemmar", "Members"),
        "no_members": ("Ingen medlemmer.", "Inga medlemmar.", "No members."),
        "export_csv": ("Eksportér som CSV", "Exportera som CSV", "Export as CSV"),
        "export_identifiers": (
            "Identifikatorer (kommasepareret)",
            "Identifierare (kommaseparerade)",
            "Identifiers (comma-separated)",
        ),
        "export_traits": (
            "Egenskaber (kommasepareret)",
            "Egenskaper (kommaseparerade)",
            "Traits (comma-separated)",
        ),
        "used_by": (
            "Bruges af rejser: {keys}",
            "Används av resor: {keys}",
            "Used by journeys: {keys}",
        ),
        "delete": ("Slet", "Radera", "Delete"),
        "confirm_delete": (
            "Slet målgruppen?",
            "Radera målgruppen?",
            "Delete the audience?",
        ),
        "audience_saved": (
            "Målgruppen er gemt.",
            "Målgruppen är sparad.",
            "The audience is saved.",
        ),
        "audience_deleted": (
            "Målgruppen er slettet.",
            "Målgruppen är raderad.",
            "The audience is deleted.",
        ),
        "condition_version": (
            "Betingelsens version {version}",
            "Villkorets version {version}",
            "Condition version {version}",
        ),
        "err_condition_object": (
            "Betingelsen skal være et JSON-objekt.",
            "Villkoret måste vara ett JSON-objekt.",
            "The condition must be a JSON object.",
        ),
        "err_priority": ("Et tal fra 1 til 5.", "Ett tal från 1 till 5.", "A number from 1 to 5."),
    }
)


# ----------------------------------------------------------------------------- forms


def _condition(request: Request, text: str) -> tuple[dict[str, Any] | None, str | None]:
    if not text.strip():
        return None, kit.text(request, "err_definition_required")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, kit.text(request, "err_json", error=exc.msg, line=exc.lineno, column=exc.colno)
    if not isinstance(value, dict):
        return None, kit.text(request, "err_condition_object")
    return value, None


def _field_of(issue_field: str) -> str:
    """The form field an issue belongs to: `condition.all[1].op` is the condition's."""
    return issue_field.split(".", 1)[0] if issue_field.startswith("condition") else issue_field


def _definition(
    request: Request, form: FormData, *, key: str | None
) -> tuple[AudienceDefinition | None, dict[str, str]]:
    """The posted audience, or each error at its field."""
    errors: dict[str, str] = {}
    condition, problem = _condition(request, form.get("condition"))
    if problem:
        errors["condition"] = problem
    priority_raw = form.get("canvas.priority").strip()
    priority: int | None = None
    if priority_raw:
        if priority_raw.isdigit() and 1 <= int(priority_raw) <= 5:
            priority = int(priority_raw)
        else:
            errors["canvas.priority"] = kit.text(request, "err_priority")
    canvas: dict[str, Any] = {n: form.get(f"canvas.{n}").strip() or None for n in CANVAS_TEXTS}
    canvas["kind"] = form.get("canvas.kind") or None
    canvas["market"] = form.get("canvas.market") or None
    canvas["priority"] = priority
    data = {
        "key": key if key is not None else form.get("key").strip(),
        "name": form.get("name").strip(),
        "description": form.get("description").strip() or None,
        "condition": condition or {},
        "canvas": canvas,
        "trigger_existing": form.get("trigger_existing") == "on",
    }
    try:
        definition = AudienceDefinition.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "body"
            errors.setdefault(_field_of(field), str(err["msg"]))
        return None, errors
    if errors:
        return None, errors
    return definition, {}


def _issues(issues: list[Issue]) -> dict[str, str]:
    out: dict[str, str] = {}
    for issue in issues:
        field = _field_of(issue.field)
        message = issue.message if field == issue.field else f"{issue.field}: {issue.message}"
        out[field] = f"{out[field]}; {message}" if field in out else message
    return out


def _values_of(audience: Any) -> dict[str, str]:
    canvas = audience.canvas or {}
    values = {
        "key": audience.key,
        "name": audience.name,
        "description": audience.description or "",
        "condition": json.dumps(audience.condition, indent=2, ensure_ascii=False),
        "trigger_existing": "on" if audience.trigger_existing else "",
    }
    for name in (*CANVAS_TEXTS, "kind", "market", "priority"):
        value = canvas.get(name)
        values[f"canvas.{name}"] = "" if value is None else str(value)
    return values


def _builder(key: str | None, values: dict[str, str], **more: Any) -> dict[str, Any]:
    return {"key": key, "values": values, "preview": None, "preview_error": None, **more}


def _preview(request: Request, text: str) -> tuple[Any, str | None]:
    condition, problem = _condition(request, text)
    if condition is None:
        return None, problem
    with kit.db(request) as session:
        issues = draft_issues(session, condition)
        if issues:
            return None, "; ".join(str(i) for i in issues[:5])
        result = preview(session, condition, now=utcnow(), sample=SAMPLE, traits=DEFAULT_TRAITS)
        session.rollback()
    return result, None


# ----------------------------------------------------------------------------- pages


@router.get("/audiences")
def audiences(request: Request, user: ReadUser) -> Response:
    with kit.db(request) as session:
        rows = service.list_audiences(session)
    return kit.render(request, "audiences.html", {"rows": rows})


@router.get("/audiences/new")
def new_audience(request: Request, user: WriteUser) -> Response:
    return kit.render(request, "audience_edit.html", _builder(None, {}))


@router.post("/audiences/preview")
def preview_draft(request: Request, user: ReadUser, form: CsrfForm) -> Response:
    """The size and a sample of the posted condition, saved nowhere. htmx asks for the
    fragment as the condition is typed; without JS the builder's Preview button posts the
    whole form here and gets the builder back with the preview filled in."""
    result, problem = _preview(request, form.get("condition"))
    ctx = {"preview": result, "preview_error": problem}
    if request.headers.get("hx-request") == "true":
        return kit.render(request, "_audience_preview.html", ctx)
    key = form.get("editing") or None
    values = form.values()
    return kit.render(
        request,
        "audience_edit.html",
        {**_builder(key, values), **ctx, "name": form.get("name") or key or ""},
        status_code=200 if problem is None else 422,
    )


@router.post("/audiences/new")
def create_audience(request: Request, user: WriteUser, form: CsrfForm) -> Response:
    definition, errors = _definition(request, form, key=None)
    ctx = _builder(None, form.values())
    if definition is None:
        return kit.form_error(request, "audience_edit.html", ctx, errors)
    with kit.db(request) as session:
        issues = service.check_definition(session, definition)
        if issues:
            return kit.form_error(request, "audience_edit.html", ctx, _issues(issues))
        if service.audience_exists(session, definition.key):
            return kit.form_error(
                request,
                "audience_edit.html",
                ctx,
                {"key": f"an audience {definition.key!r} exists"},
                status_code=409,
            )
        service.create_audience(session, definition, now=utcnow())
        session.commit()
    return kit.redirect(f"{kit.PREFIX}/audiences/{quote(definition.key)}?saved=1", request)


@router.get("/audiences/{key}")
def audience_page(
    request: Request,
    user: ReadUser,
    key: KeyPath,
    after: Annotated[str | None, Query(max_length=64)] = None,
    saved: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    with kit.db(request) as session:
        audience = service.get_audience(session, key)
        ids = service.member_ids(session, key, after=after or None, limit=MEMBERS_PAGE + 1)
        journeys = journeys_using(session, key)
    return kit.render(
        request,
        "audience.html",
        {
            "audience": audience,
            "canvas": audience.canvas or {},
            "condition_json": json.dumps(audience.condition, indent=2, ensure_ascii=False),
            "members": ids[:MEMBERS_PAGE],
            "next_after": ids[MEMBERS_PAGE - 1] if len(ids) > MEMBERS_PAGE else None,
            "journeys": journeys,
            "saved": bool(saved),
        },
    )


@router.get("/audiences/{key}/edit")
def edit_audience(request: Request, user: WriteUser, key: KeyPath) -> Response:
    with kit.db(request) as session:
        audience = service.get_audience(session, key)
    return kit.render(
        request, "audience_edit.html", _builder(key, _values_of(audience), name=audience.name)
    )


@router.post("/audiences/{key}/edit")
def save_audience(request: Request, user: WriteUser, form: CsrfForm, key: KeyPath) -> Response:
    with kit.db(request) as session:
        current = service.get_audience(session, key)  # 404 before the form's checks
        ctx = _builder(key, {**form.values(), "key": key}, name=current.name)
        definition, errors = _definition(request, form, key=key)
        if definition is None:
            return kit.form_error(request, "audience_edit.html", ctx, errors)
        issues = service.check_definition(session, definition)
        if issues:
            return kit.form_error(request, "audience_edit.html", ctx, _issues(issues))
        service.update_audience(session, key, definition, now=utcnow())
        session.commit()
    return kit.redirect(f"{kit.PREFIX}/audiences/{quote(key)}?saved=1", request)


@router.post("/audiences/{key}/delete")
def delete_audience(request: Request, user: WriteUser, form: CsrfForm, key: KeyPath) -> Response:
    with kit.db(request) as session:
        service.get_audience(session, key)
        users = [*journeys_using(session, key), *audiences_using(session, key)]
        if users:
            raise kit.PageError(409, field="key", message=", ".join(users))
        service.delete_audience(session, key)
        session.commit()
    return kit.redirect(f"{kit.PREFIX}/audiences", request)


@router.get("/audiences/{key}/export.csv")
def export_audience(
    request: Request,
    user: ReadUser,
    key: KeyPath,
    identifiers: Annotated[str | None, Query(max_length=2000)] = None,
    traits: Annotated[str | None, Query(max_length=10_000)] = None,
) -> Response:
    """The members as CSV, streamed in pages (what `/api/audiences/{key}/export` answers)."""
    with kit.db(request) as session:
        service.get_audience(session, key)
    try:
        columns = parse_columns(identifiers or None, traits or None)
    except DomainError:
        raise
    return StreamingResponse(
        export_csv(kit.runtime_of(request).engine, key, columns),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="audience-{key}.csv"',
            "Cache-Control": "no-store, private",
            "X-Content-Type-Options": "nosniff",
        },
    )
