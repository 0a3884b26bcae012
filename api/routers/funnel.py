"""The lead funnel and the sales figures (docs/analytics.md, "Lead funnel and sales").

Each table answers as JSON, as a chart beside it (`/chart.svg`, `/chart.png`, built from the
same figures, the numbers written on the marks) and as CSV (`/export.csv`). Marketers, analysts
and sales read them; nothing here changes anything. A sales key bound to a rep sees the sales
figures of its own rep only (another rep is 404, as a missing one is); the lifecycle funnel
counts profiles, not leads, and is the same for every caller."""

import csv
import datetime as dt
import io
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from api.charts import ChartFormat, chart_doc, chart_response
from api.deps import READ, SALES, Principal, RuntimeDep, SessionDep, require
from api.errors import Responses, responses
from api.routers.sales import metrics_rep
from rejse.analytics import funnel as fn
from rejse.analytics import sales_figures as sf
from rejse.audiences.export import safe_cell
from rejse.durations import DurationError, parse_duration
from rejse.errors import DomainError
from rejse.inputs import Text

router = APIRouter(prefix="/api/analytics", tags=["analytics: funnel and sales"])

FiguresDep = Annotated[Principal, Depends(require(*READ, *SALES))]
Lang = Annotated[Literal["da", "sv", "en"], Query(description="the chart's language")]
From = Annotated[
    dt.date | None, Query(alias="from", description="first day (ISO date, UTC); default: all")
]
To = Annotated[dt.date | None, Query(description="last day (ISO date, UTC); default: today")]
Rep = Annotated[
    Text | None,
    Query(max_length=32, description="rep id (a rep-bound key: its own rep, always)"),
]

_NO_REP = (404, "No such rep (`rep`)")
_BAD_PERIOD = (422, "Invalid input; `errors` name the field (`to` before `from`, `step`)")


def _csv(rows: Sequence[BaseModel]) -> Response:
    """The rows as CSV (RFC 4180, UTF-8, a header of the field names)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    fields: list[str] = []
    for row in rows:
        data = row.model_dump(mode="json")
        if not fields:
            fields = list(data)
            writer.writerow(fields)
        writer.writerow([safe_cell(data[f]) for f in fields])
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8")


_CSV_DOC: Responses = {
    200: {
        "description": "the table's rows as CSV (RFC 4180, UTF-8)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def _table(
    path: str,
    *,
    model: type[BaseModel],
    figures: Callable[..., Any],
    rows: Callable[[Any], Sequence[BaseModel]],
    chart: Callable[..., dict[str, Any]],
    summary: str,
    chart_text: str,
    errors: tuple[int | tuple[int, str], ...],
) -> None:
    """Three routes over one table: JSON, chart.{svg,png} and export.csv."""
    dep = Annotated[Any, Depends(figures)]

    @router.get(
        path,
        response_model=model,
        responses=responses(*errors),
        summary=summary,
        description=figures.__doc__,
    )
    def as_json(data: dep) -> Any:
        return data

    @router.get(
        path + "/chart.{fmt}",
        response_class=Response,
        responses=chart_doc(chart_text) | responses(*errors),
        summary=summary + ": chart (SVG or PNG)",
    )
    def as_chart(data: dep, fmt: ChartFormat, lang: Lang = "en") -> Response:
        return chart_response(chart(data, lang=lang), fmt)

    @router.get(
        path + "/export.csv",
        response_class=Response,
        responses=_CSV_DOC | responses(*errors),
        summary=summary + ": CSV",
    )
    def as_csv(data: dep) -> Response:
        return _csv(rows(data))


# ----------------------------------------------------------------------------- lifecycle


def get_funnel(
    session: SessionDep,
    _: FiguresDep,
    from_: Annotated[
        dt.date | None,
        Query(alias="from", description="first day (ISO date, UTC); default: 89 days before `to`"),
    ] = None,
    to: To = None,
) -> fn.Funnel:
    """Profiles per stage now (at the end of `to`), and over the period: changes in and out,
    times each stage was reached, conversion to the next stage, median days in stage, and
    AQL -> SQL -> customer."""
    return fn.funnel(session, start=from_, end=to)


def get_daily(
    session: SessionDep,
    _: FiguresDep,
    from_: Annotated[
        dt.date | None,
        Query(alias="from", description="first day (ISO date, UTC); default: 29 days before `to`"),
    ] = None,
    to: To = None,
    step: Annotated[
        Text, Query(max_length=20, description="days between points (ISO duration, P1D or more)")
    ] = "P1D",
) -> fn.Daily:
    try:
        every = parse_duration(step)
    except DurationError as exc:
        raise DomainError(str(exc), field="step", status_code=422) from None
    return fn.daily(session, start=from_, end=to, step=every)


_table(
    "/funnel",
    model=fn.Funnel,
    figures=get_funnel,
    rows=lambda f: f.stages,
    chart=fn.funnel_chart,
    summary="Lead funnel",
    chart_text="bars of the profiles per lifecycle stage now",
    errors=(_BAD_PERIOD,),
)
_table(
    "/funnel/daily",
    model=fn.Daily,
    figures=get_daily,
    rows=lambda d: d.days,
    chart=fn.daily_chart,
    summary="Profiles per lifecycle stage over time",
    chart_text="a line per stage of its profiles at each point",
    errors=(_BAD_PERIOD,),
)


# ----------------------------------------------------------------------------- sales


def get_reps(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: FiguresDep,
    from_: From = None,
    to: To = None,
    rep: Rep = None,
) -> sf.RepFigures:
    """Per rep, over the AQLs handed to sales in the period: contacted (within the SLA), median
    hours to contact, meetings, outcomes and win rate, and those nobody called."""
    if from_ is not None and to is not None and to < from_:
        raise DomainError("`to` is before `from`", field="to", status_code=422)
    rep_id = metrics_rep(session, runtime, principal, rep)
    return sf.per_rep(session, rep_id=rep_id, start=from_, end=to)


def get_pipeline(
    session: SessionDep, runtime: RuntimeDep, principal: FiguresDep, rep: Rep = None
) -> sf.Pipeline:
    """Every lead by phase now, with counts and ages."""
    return sf.pipeline(session, rep_id=metrics_rep(session, runtime, principal, rep))


def get_lost(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: FiguresDep,
    from_: From = None,
    to: To = None,
    rep: Rep = None,
) -> sf.Lost:
    """Leads lost, not relevant or expired (created in the period), by outcome and reason."""
    if from_ is not None and to is not None and to < from_:
        raise DomainError("`to` is before `from`", field="to", status_code=422)
    rep_id = metrics_rep(session, runtime, principal, rep)
    return sf.lost(session, rep_id=rep_id, start=from_, end=to)


def get_uncalled(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: FiguresDep,
    rep: Rep = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="leads listed, oldest first")] = 100,
) -> sf.Uncalled:
    """AQLs nobody called: never contacted, open, assigned or expired."""
    rep_id = metrics_rep(session, runtime, principal, rep)
    return sf.uncalled(session, rep_id=rep_id, limit=limit)


_table(
    "/sales/reps",
    model=sf.RepFigures,
    figures=get_reps,
    rows=lambda f: f.reps,
    chart=sf.reps_chart,
    summary="Sales figures per rep",
    chart_text="bars of AQLs, contacted and won per rep",
    errors=(_NO_REP, _BAD_PERIOD),
)
_table(
    "/sales/pipeline",
    model=sf.Pipeline,
    figures=get_pipeline,
    rows=lambda f: f.phases,
    chart=sf.pipeline_chart,
    summary="Pipeline by phase",
    chart_text="bars of the leads per phase",
    errors=(_NO_REP,),
)
_table(
    "/sales/lost",
    model=sf.Lost,
    figures=get_lost,
    rows=lambda f: f.reasons,
    chart=sf.lost_chart,
    summary="Lost leads and why",
    chart_text="bars of the lost leads per outcome and reason",
    errors=(_NO_REP, _BAD_PERIOD),
)
_table(
    "/sales/uncalled",
    model=sf.Uncalled,
    figures=get_uncalled,
    rows=lambda f: f.leads,
    chart=sf.uncalled_chart,
    summary="AQLs nobody called",
    chart_text="bars of the AQLs nobody called per rep",
    errors=(_NO_REP,),
)
