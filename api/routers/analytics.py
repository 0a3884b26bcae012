"""Campaign KPIs (docs/analytics.md): per journey, step, version, day, template and channel,
and one comparison across journeys, over a period; each table as JSON, as CSV
(`?format=csv`) and as a chart beside it (`.../chart.svg`, `.../chart.png`). Marketers set a
journey's attribution (conversion event, window) and its KPI targets; analysts read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.charts import ChartFormat, chart_doc, chart_response
from api.deps import ReadDep, SessionDep, WriteDep
from api.errors import Responses, responses
from rejse.analytics import kpis, views
from rejse.analytics.attribution import DEFAULT_RULE
from rejse.inputs import Text

router = APIRouter(prefix="/api/analytics", tags=["analytics"])

Format = Literal["json", "csv"]
FromQ = Annotated[
    dt.date | None, Query(alias="from", description="first day (ISO date, UTC), inclusive")
]
ToQ = Annotated[dt.date | None, Query(description="last day (ISO date, UTC), inclusive")]
FormatQ = Annotated[Format, Query(description="`csv`: the table as a CSV download")]
LangQ = Annotated[views.Lang, Query(description="the chart's language")]
_PERIOD = (422, "Invalid input; `errors` names the field (`to` when the period ends first)")
_TABLE: Responses = {
    200: {
        "description": "The table; with `format=csv` as CSV (RFC 4180, UTF-8, one row per "
        "table row, nested counts as `skipped_reasons.<reason>` columns)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
_CHART = chart_doc(
    "The chart, from the same figures as the JSON answer, with the numbers on the marks"
)


# ------------------------------------------------------------------------------------ models


class PeriodPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str | None = Field(alias="from", description="first day, or null: from the start")
    to: str | None = Field(description="last day, or null: up to now")


class MessageFigures(BaseModel):
    sent: int = Field(description="delivered + failed: messages that passed the guards")
    delivered: int = Field(description="accepted by the channel (the recipients)")
    failed: int
    skipped: int = Field(description="stopped by a guard (consent, frequency cap, ...)")
    opened: int = Field(description="messages opened at least once (unique opens)")
    clicked: int = Field(description="messages with at least one tracked click")
    unsubscribed: int = Field(description="messages whose unsubscribe link was used")
    converted: int = Field(description="conversions credited (goal + window)")
    converted_goal: int
    converted_window: int
    revenue: float = Field(description="revenue of the credited conversions")
    skipped_reasons: dict[str, int]
    failed_reasons: dict[str, int]
    delivery_rate: float | None = Field(description="delivered / sent")
    open_rate: float | None = Field(description="opened / delivered")
    click_rate: float | None = Field(description="clicked / delivered")
    click_to_open_rate: float | None = Field(description="clicked / opened")
    unsubscribe_rate: float | None = Field(description="unsubscribed / delivered")
    conversion_rate: float | None = Field(description="converted / delivered")
    revenue_per_recipient: float | None = Field(description="revenue / delivered")


class Figures(MessageFigures):
    entered: int = Field(description="runs entered (a step: runs that reached it)")
    ended: dict[str, int] = Field(description="runs ended, per final status")
    run_conversion_rate: float | None = Field(description="converted / entered")


class WaitingFigures(Figures):
    waiting: int = Field(description="runs waiting there now (whatever the period)")


class TargetCheck(BaseModel):
    metric: str
    min: float | None
    max: float | None
    actual: float | None
    met: bool | None = Field(description="null while there is no figure (no denominator)")


class Settings(BaseModel):
    conversion_event: str
    attribution_window: str


class JourneySummary(BaseModel):
    journey: str
    name: str
    status: str
    period: PeriodPublic
    settings: Settings
    totals: WaitingFigures
    targets: list[TargetCheck]


class StepRow(WaitingFigures):
    step_id: str
    type: str | None = Field(description="the step's type in the current version")


class StepTable(BaseModel):
    journey: str
    version: int | None
    period: PeriodPublic
    steps: list[StepRow]


class VersionRow(WaitingFigures):
    version: int


class VersionTable(BaseModel):
    journey: str
    period: PeriodPublic
    versions: list[VersionRow]


class DayRow(Figures):
    day: str


class DayTable(BaseModel):
    journey: str
    period: PeriodPublic
    days: list[DayRow]


class TemplateRow(MessageFigures):
    template: str
    channel: str


class TemplateTable(BaseModel):
    journey: str | None
    period: PeriodPublic
    templates: list[TemplateRow]


class JourneyRow(WaitingFigures):
    journey: str
    name: str
    status: str
    targets: list[TargetCheck]
    targets_met: int
    targets_set: int


class Comparison(BaseModel):
    period: PeriodPublic
    journeys: list[JourneyRow]


class AttributionIn(BaseModel):
    conversion_event: Text = Field(
        default=DEFAULT_RULE.conversion_event,
        min_length=1,
        max_length=200,
        description="the event that counts as a conversion within the window",
    )
    attribution_window: Text = Field(
        default="P5D",
        min_length=2,
        max_length=40,
        description="ISO 8601 duration after a send, open or click (P5D; more than zero)",
    )


class Bound(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float | None = Field(default=None, ge=0)
    max: float | None = Field(default=None, ge=0)


class TargetsIn(BaseModel):
    targets: dict[Annotated[str, Field(max_length=40)], Bound] = Field(
        max_length=40,
        description="metric -> {min and/or max}: a count, a rate (0.05 = 5 %), revenue or "
        'revenue_per_recipient, e.g. {"conversion_rate": {"min": 0.05}}',
    )


class TargetsOut(BaseModel):
    journey: str
    targets: list[TargetCheck] = Field(description="each target beside the figure of all time")


# ------------------------------------------------------------------------------------ helpers


def _csv(rows: list[dict[str, Any]], name: str) -> Response:
    return Response(
        views.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _table(
    data: dict[str, Any], rows_key: str, fmt: Format, name: str
) -> dict[str, Any] | Response:
    return _csv(data[rows_key], name) if fmt == "csv" else data


Build = Callable[[dict[str, Any], views.Lang], dict[str, Any]]


# ------------------------------------------------------------------------------------ routes
# Chart routes first: `/journeys/chart.svg` must not be read as a journey key.


@router.get("/journeys/chart.{fmt}", response_class=Response, responses=_CHART | responses(_PERIOD))
def comparison_chart(
    fmt: ChartFormat,
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    lang: LangQ = "en",
) -> Response:
    """The comparison as bars: delivered and converted per journey."""
    data = kpis.comparison(session, kpis.period(from_, to))
    return chart_response(views.journeys_chart(data, lang), fmt)


@router.get("/journeys", response_model=Comparison, responses=_TABLE | responses(_PERIOD))
def compare_journeys(
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    format: FormatQ = "json",
) -> dict[str, Any] | Response:
    """Every journey over one period, side by side, with its KPI targets met or not."""
    data = kpis.comparison(session, kpis.period(from_, to))
    return _table(data, "journeys", format, "journeys")


@router.get(
    "/journeys/{key}/chart.{fmt}",
    response_class=Response,
    responses=_CHART | responses(404, _PERIOD),
)
def funnel_chart(
    key: str,
    fmt: ChartFormat,
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    lang: LangQ = "en",
) -> Response:
    """The journey funnel: entered, sent, delivered, opened, clicked, converted."""
    data = kpis.journey_summary(session, key, kpis.period(from_, to))
    return chart_response(views.funnel_chart(data, lang), fmt)


@router.get(
    "/journeys/{key}", response_model=JourneySummary, responses=_TABLE | responses(404, _PERIOD)
)
def journey_summary(
    key: str,
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    format: FormatQ = "json",
) -> dict[str, Any] | Response:
    """The journey's totals over the period, its attribution settings, and its KPI targets
    beside the actual figures."""
    data = kpis.journey_summary(session, key, kpis.period(from_, to))
    if format == "csv":
        return _csv([{"journey": key, **data["totals"]}], f"journey-{key}")
    return data


@router.get(
    "/journeys/{key}/steps/chart.{fmt}",
    response_class=Response,
    responses=_CHART | responses(404, _PERIOD),
)
def steps_chart(
    key: str,
    fmt: ChartFormat,
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    lang: LangQ = "en",
) -> Response:
    data = kpis.journey_steps(session, key, kpis.period(from_, to), version=version)
    return chart_response(views.steps_chart(data, lang), fmt)


@router.get(
    "/journeys/{key}/steps", response_model=StepTable, responses=_TABLE | responses(404, _PERIOD)
)
def journey_steps(
    key: str,
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    version: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="one version only")
    ] = None,
    format: FormatQ = "json",
) -> dict[str, Any] | Response:
    """Per step: entered, waiting now, sent, delivered, failed and skipped (with reasons),
    opened, clicked, unsubscribed, converted, revenue, and the rates."""
    data = kpis.journey_steps(session, key, kpis.period(from_, to), version=version)
    return _table(data, "steps", format, f"journey-{key}-steps")


@router.get(
    "/journeys/{key}/versions/chart.{fmt}",
    response_class=Response,
    responses=_CHART | responses(404, _PERIOD),
)
def versions_chart(
    key: str,
    fmt: ChartFormat,
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    lang: LangQ = "en",
) -> Response:
    data = kpis.journey_versions(session, key, kpis.period(from_, to))
    return chart_response(views.versions_chart(data, lang), fmt)


@router.get(
    "/journeys/{key}/versions",
    response_model=VersionTable,
    responses=_TABLE | responses(404, _PERIOD),
)
def journey_versions(
    key: str,
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    format: FormatQ = "json",
) -> dict[str, Any] | Response:
    """Per version of the journey: the journey's figures for the runs of that version."""
    data = kpis.journey_versions(session, key, kpis.period(from_, to))
    return _table(data, "versions", format, f"journey-{key}-versions")


@router.get(
    "/journeys/{key}/days/chart.{fmt}",
    response_class=Response,
    responses=_CHART | responses(404, _PERIOD),
)
def days_chart(
    key: str,
    fmt: ChartFormat,
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    lang: LangQ = "en",
) -> Response:
    """Daily sends, opens, clicks, conversions and revenue."""
    data = kpis.journey_days(session, key, kpis.period(from_, to))
    return chart_response(views.days_chart(data, lang), fmt)


@router.get(
    "/journeys/{key}/days", response_model=DayTable, responses=_TABLE | responses(404, _PERIOD)
)
def journey_days(
    key: str,
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    format: FormatQ = "json",
) -> dict[str, Any] | Response:
    """Per day (UTC) with activity: the journey's figures of the runs entered and messages
    created that day."""
    data = kpis.journey_days(session, key, kpis.period(from_, to))
    return _table(data, "days", format, f"journey-{key}-days")


@router.put("/journeys/{key}/attribution", response_model=Settings, responses=responses(404, 422))
def set_attribution(
    key: str, body: AttributionIn, session: SessionDep, _: WriteDep
) -> dict[str, Any]:
    """The journey's conversion event and attribution window; conversions from now on are
    credited with them."""
    row = kpis.set_attribution(
        session,
        key,
        conversion_event=body.conversion_event,
        attribution_window=body.attribution_window,
    )
    session.commit()
    return {"conversion_event": row.conversion_event, "attribution_window": row.attribution_window}


@router.put("/journeys/{key}/targets", response_model=TargetsOut, responses=responses(404, 422))
def set_targets(key: str, body: TargetsIn, session: SessionDep, _: WriteDep) -> dict[str, Any]:
    """Replace the journey's KPI targets (e.g. conversion_rate min 0.05); the answer shows
    each beside the journey's figure of all time."""
    targets = {m: b.model_dump(exclude_none=True) for m, b in body.targets.items()}
    kpis.set_targets(session, key, targets)
    session.commit()
    summary = kpis.journey_summary(session, key, kpis.period(None, None))
    return {"journey": key, "targets": summary["targets"]}


@router.get(
    "/templates/chart.{fmt}", response_class=Response, responses=_CHART | responses(404, _PERIOD)
)
def templates_chart(
    fmt: ChartFormat,
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    journey: Annotated[str | None, Query(max_length=64)] = None,
    lang: LangQ = "en",
) -> Response:
    data = kpis.templates(session, kpis.period(from_, to), journey_key=journey)
    return chart_response(views.templates_chart(data, lang), fmt)


@router.get("/templates", response_model=TemplateTable, responses=_TABLE | responses(404, _PERIOD))
def template_figures(
    session: SessionDep,
    _: ReadDep,
    from_: FromQ = None,
    to: ToQ = None,
    journey: Annotated[
        str | None, Query(max_length=64, description="one journey's messages only")
    ] = None,
    format: FormatQ = "json",
) -> dict[str, Any] | Response:
    """Per message template and channel (journey messages and others alike)."""
    data = kpis.templates(session, kpis.period(from_, to), journey_key=journey)
    return _table(data, "templates", format, "templates")
