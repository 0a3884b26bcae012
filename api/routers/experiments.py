"""The A/B programme: every split step of every journey, with its arms, tests and verdict.

Analysts and marketers read it; nothing here changes anything. The query parameters say what
effect the experiment must be able to see (`mde`, `mde_kind`), at which `alpha` and `power`;
the sample each arm needs follows from them (docs/analytics.md, "A/B programme")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from api.charts import ChartFormat, chart_doc, chart_response
from api.deps import ReadDep, SessionDep
from api.errors import Responses, responses
from rejse.analytics import experiments as ex
from rejse.analytics.views import to_csv

router = APIRouter(prefix="/api/experiments", tags=["experiments"])


def get_params(
    mde: Annotated[
        float,
        Query(
            gt=0,
            le=ex.MAX_RELATIVE_MDE,
            description="the smallest effect worth detecting: a difference of conversion rates "
            "(0.02 = 2 percentage points) or, with mde_kind=relative, a lift (0.1 = +10 %)",
        ),
    ] = ex.DEFAULT_MDE,
    mde_kind: Annotated[
        Literal["absolute", "relative"], Query(description="how `mde` is meant")
    ] = "absolute",
    alpha: Annotated[
        float, Query(gt=0, lt=1, description="two-sided significance level (shared by the arms)")
    ] = ex.DEFAULT_ALPHA,
    power: Annotated[
        float, Query(gt=0, lt=1, description="the chance of detecting an effect of `mde`")
    ] = ex.DEFAULT_POWER,
    baseline: Annotated[
        float | None,
        Query(
            gt=0,
            lt=1,
            description="the expected conversion rate of the control, for planning before "
            "there is data (default: the control's observed rate)",
        ),
    ] = None,
) -> ex.Params:
    return ex.Params(
        mde=mde, mde_kind=mde_kind, alpha=alpha, power=power, baseline=baseline
    ).check()


ParamsDep = Annotated[ex.Params, Depends(get_params)]
Lang = Annotated[Literal["da", "sv", "en"], Query(description="the chart's language")]


class Interval(BaseModel):
    low: float
    high: float


class Comparison(BaseModel):
    against: str
    difference: float | None
    interval: Interval | None
    relative_lift: float | None
    relative_interval: Interval | None
    z: float | None
    p_value: float | None
    significant: bool
    alpha: float | None
    revenue_per_recipient_difference: float | None
    revenue_interval: Interval | None


class HoldoutLift(Comparison):
    treated: int
    holdout: int
    incremental_conversions: float | None
    incremental_revenue: float | None
    sample_reached: bool


class Arm(BaseModel):
    key: str
    role: Literal["control", "treatment", "holdout"]
    weight: float | None
    entered: int
    converted: int
    conversion_rate: float | None
    interval: Interval | None
    revenue: float
    revenue_per_recipient: float | None
    revenue_interval: Interval | None
    below_sample: bool
    vs_control: Comparison | None
    vs_holdout: Comparison | None


class Parameters(BaseModel):
    mde: float
    mde_kind: Literal["absolute", "relative"]
    alpha: float
    alpha_per_test: float | None
    power: float
    confidence: float | None


class Sample(BaseModel):
    required_per_arm: int | None
    baseline: float | None
    baseline_from: str | None
    smallest_arm: int
    reached: bool


class ResultComparison(BaseModel):
    arm: str
    against: str
    difference: float | None
    p_value: float | None
    significant: bool


class Result(BaseModel):
    winner: str | None
    significant: bool
    comparisons: list[ResultComparison]


class Message(BaseModel):
    en: str
    da: str
    sv: str


class Warning(BaseModel):
    code: Literal["below_sample", "no_baseline", "not_yet_significant", "versions_differ"]
    arm: str | None
    message: Message


class ExperimentDetail(BaseModel):
    journey: str
    step: str
    hypothesis: str
    status: Literal["running", "significant", "inconclusive", "stopped"]
    live: bool
    journey_status: str
    version: int
    versions: list[int]
    control: str
    reference: str
    parameters: Parameters
    sample: Sample
    arms: list[Arm]
    holdout_lift: HoldoutLift | None
    result: Result
    warnings: list[Warning]


class ArmSummary(BaseModel):
    key: str
    role: Literal["control", "treatment", "holdout"]
    entered: int
    converted: int
    conversion_rate: float | None


class HoldoutSummary(BaseModel):
    difference: float | None
    relative_lift: float | None
    p_value: float | None
    significant: bool


class ExperimentSummary(BaseModel):
    journey: str
    step: str
    hypothesis: str
    status: Literal["running", "significant", "inconclusive", "stopped"]
    live: bool
    control: str
    arms: list[ArmSummary]
    sample: Sample
    result: Result
    holdout_lift: HoldoutSummary | None
    warnings: list[str]


class ExperimentList(BaseModel):
    parameters: dict[str, Any]
    experiments: list[ExperimentSummary]


FormatQ = Annotated[Literal["json", "csv"], Query(description="`csv`: the table as a CSV download")]


def _csv(rows: list[dict[str, Any]], name: str) -> Response:
    return Response(
        to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _table_doc(what: str) -> Responses:
    return {
        200: {
            "description": f"The answer; with `format=csv` {what} as CSV (RFC 4180, UTF-8)",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    }


@router.get(
    "",
    response_model=ExperimentList,
    responses=_table_doc("one row per experiment and arm"),
)
def list_experiments(
    session: SessionDep,
    _: ReadDep,
    params: ParamsDep,
    status: Annotated[
        Literal["running", "significant", "inconclusive", "stopped"] | None,
        Query(description="only experiments in this status"),
    ] = None,
    format: FormatQ = "json",
) -> dict[str, Any] | Response:
    """Every split step across journeys: hypothesis, status, sample and result."""
    found = ex.list_experiments(session, params, status=status)
    if format == "csv":
        return _csv(ex.list_rows(found), "experiments")
    return {
        "parameters": {
            "mde": params.mde,
            "mde_kind": params.mde_kind,
            "alpha": params.alpha,
            "power": params.power,
            "baseline": params.baseline,
        },
        "experiments": found,
    }


@router.get(
    "/{journey}/{step}",
    response_model=ExperimentDetail,
    responses=_table_doc("one row per arm") | responses(404),
)
def get_experiment(
    journey: str,
    step: str,
    session: SessionDep,
    _: ReadDep,
    params: ParamsDep,
    format: FormatQ = "json",
) -> dict[str, Any] | Response:
    """One split: each arm's conversion and revenue with intervals, the tests against the
    control beside the hypothesis, the holdout lift, the sample each arm needs, warnings and
    the winner (only when significant and the sample is reached)."""
    detail = ex.experiment(session, journey=journey, step=step, params=params)
    if format == "csv":
        return _csv(ex.arm_rows(detail), f"experiment-{journey}-{step}")
    return detail


@router.get(
    "/{journey}/{step}/chart.{fmt}",
    response_class=Response,
    responses=chart_doc("the arms' conversion rates with their intervals") | responses(404),
)
def chart(
    journey: str,
    step: str,
    fmt: ChartFormat,
    session: SessionDep,
    _: ReadDep,
    params: ParamsDep,
    lang: Lang = "en",
) -> Response:
    """The arms with their intervals as SVG or PNG (the detail's figures)."""
    detail = ex.experiment(session, journey=journey, step=step, params=params)
    return chart_response(ex.chart(detail, lang=lang), fmt)
