"""The data-maturity assessment of the "Brug Kundedata" workbook (docs/analytics.md, "Data
maturity"): the customer-data answers prefilled from rejse's data, an assessment from the six
readiness answers (and the progress answers of movers) with its texts in Danish or English,
the stored assessments over time, and the 2x2 as a chart. Marketers assess; analysts read."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.charts import ChartFormat, chart_doc, chart_response
from api.deps import ReadDep, SessionDep, WriteDep
from api.errors import Responses, responses
from rejse.analytics.views import to_csv
from rejse.db import utcnow
from rejse.inputs import MAX_OFFSET, Text
from rejse.maturity import service, texts
from rejse.maturity.model import Progress, ProgressScenario, Readiness, StartPosition
from rejse.maturity.prefill import Prefill, Share, prefill
from rejse.maturity.texts import Lang
from rejse.models.maturity import MaturityAssessment

router = APIRouter(prefix="/api/maturity", tags=["maturity"])

LangQuery = Annotated[
    Literal["da", "sv", "en"] | None,
    Query(
        description="the language of the texts; left out: the first of da/sv/en in "
        "`Accept-Language`, else da"
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="assessments per page")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="assessments to skip")]
AssessmentId = Annotated[str, Path(max_length=64, description="`mat_...`")]


def _lang(request: Request, lang: str | None) -> Lang:
    return texts.negotiate(lang, request.headers.get("accept-language"))


# ----------------------------------------------------------------------------- schemas


class AssessmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    company: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="a label for the charts"
    )
    goal: Annotated[Text, Field(max_length=2000)] | None = Field(
        default=None, description="question 1's goal in words (its importance is the answer)"
    )
    readiness: Readiness
    progress: Progress | None = Field(
        default=None,
        description="for movers (high motivation and high customer data): gives the progress "
        "scenario; kept but without a scenario for the other positions",
    )


class Answers(BaseModel):
    readiness: Readiness
    progress: Progress | None


class Scores(BaseModel):
    motivation: float = Field(description="questions 1-3: (mean answer - 1) / 4, in [0, 1]")
    customer_data: float = Field(description="questions 4-6, the same way")
    competence: float | None = Field(description="collect, analyse, permission; null: none")
    success: float | None = Field(description="project success; null: not answered")
    motivation_high: bool = Field(description="mean above 3 (the scale's middle)")
    customer_data_high: bool


class PositionPublic(BaseModel):
    key: StartPosition
    name: str
    who: str
    typical: str
    motto: str | None


class ScenarioPublic(BaseModel):
    key: ProgressScenario
    name: str
    description: str
    main_challenge: str
    way_forward: str


class WorkshopPublic(BaseModel):
    title: str
    purpose: str
    participants: str
    duration_minutes: int
    agenda: list[str]


class AssessmentPublic(BaseModel):
    id: str
    created_at: dt.datetime
    company: str | None
    goal: str | None
    lang: Literal["da", "sv", "en"]
    answers: Answers
    scores: Scores
    start_position: PositionPublic
    most_pressing_challenge: str = Field(description="the start position's")
    way_forward: str = Field(description="the start position's")
    progress_scenario: ScenarioPublic | None = Field(
        description="movers with progress answers only"
    )
    progress_needed: bool = Field(
        description="a mover without progress answers: answer them for the scenario"
    )
    main_question: str | None = Field(description="the workbook's question to movers")
    workshops: list[WorkshopPublic] = Field(description="the position's, then the scenario's")


class AssessmentList(BaseModel):
    total: int = Field(description="stored assessments")
    assessments: list[AssessmentPublic] = Field(description="oldest first")


class SharePublic(BaseModel):
    profiles: int = Field(description="live profiles carrying the kind of data")
    share: float = Field(description="of the live profiles (0 when there are none)")
    answer: int = Field(description="the suggested answer: 1 + 4 x share, rounded half up")
    definition: str


class Question(BaseModel):
    key: str = Field(description="the field of `readiness` or `progress` it answers")
    dimension: Literal["motivation", "customer_data", "progress"]
    text: str
    prefilled: int | None = Field(description="the answer rejse's data suggests, if any")


class PrefillPublic(BaseModel):
    lang: Literal["da", "sv", "en"]
    computed_at: dt.datetime
    live_profiles: int = Field(description="profiles not erased")
    structural: SharePublic
    transactional: SharePublic
    activity: SharePublic
    answers: dict[str, int] = Field(
        description="the three suggested answers, keyed as `readiness` names them"
    )
    scale: str
    questions: list[Question] = Field(description="every question, in the workbook's order")


# ----------------------------------------------------------------------------- builders


def _public(row: MaturityAssessment, lang: Lang) -> AssessmentPublic:
    words = service.report(row, lang)
    readiness = Readiness.model_validate(row.answers["readiness"])
    progress_answers = row.answers.get("progress")
    position = StartPosition(row.start_position)
    scenario = words.scenario
    return AssessmentPublic(
        id=row.id,
        created_at=row.created_at,
        company=row.company,
        goal=row.goal,
        lang=lang,
        answers=Answers(
            readiness=readiness,
            progress=Progress.model_validate(progress_answers) if progress_answers else None,
        ),
        scores=Scores(
            motivation=row.motivation,
            customer_data=row.customer_data,
            competence=row.competence,
            success=row.success,
            motivation_high=position in (StartPosition.beundrer, StartPosition.bevaeger),
            customer_data_high=position in (StartPosition.begrunder, StartPosition.bevaeger),
        ),
        start_position=PositionPublic(
            key=position,
            name=words.position.name,
            who=words.position.who,
            typical=words.position.typical,
            motto=words.position.motto,
        ),
        most_pressing_challenge=words.position.challenge,
        way_forward=words.position.way_forward,
        progress_scenario=None
        if scenario is None or row.progress_scenario is None
        else ScenarioPublic(
            key=ProgressScenario(row.progress_scenario),
            name=scenario.name,
            description=scenario.description,
            main_challenge=scenario.main_challenge,
            way_forward=scenario.way_forward,
        ),
        progress_needed=service.progress_needed(row),
        main_question=words.main_question,
        workshops=[
            WorkshopPublic(
                title=w.title,
                purpose=w.purpose,
                participants=w.participants,
                duration_minutes=w.duration_minutes,
                agenda=list(w.agenda),
            )
            for w in words.workshops
        ],
    )


def _share(kind: str, share: Share, lang: Lang) -> SharePublic:
    return SharePublic(
        profiles=share.profiles,
        share=share.share,
        answer=share.answer,
        definition=texts.DEFINITIONS[kind][lang],
    )


def _prefill_public(result: Prefill, lang: Lang) -> PrefillPublic:
    suggested = {
        "structural": result.structural.answer,
        "transactional": result.transactional.answer,
        "activity": result.activity.answer,
    }
    dimensions: dict[str, Literal["motivation", "customer_data", "progress"]] = {
        "goal_importance": "motivation",
        "data_contribution": "motivation",
        "expectancy": "motivation",
        **dict.fromkeys(suggested, "customer_data"),
        **dict.fromkeys(texts.PROGRESS_KEYS, "progress"),
    }
    return PrefillPublic(
        lang=lang,
        computed_at=result.computed_at,
        live_profiles=result.live_profiles,
        structural=_share("structural", result.structural, lang),
        transactional=_share("transactional", result.transactional, lang),
        activity=_share("activity", result.activity, lang),
        answers=suggested,
        scale=texts.SCALE[lang],
        questions=[
            Question(
                key=key,
                dimension=dimensions[key],
                text=texts.QUESTIONS[key][lang],
                prefilled=suggested.get(key),
            )
            for key in (*texts.READINESS_KEYS, *texts.PROGRESS_KEYS)
        ],
    )


_PREFILL_CHART = "bars: the share of live profiles with each kind of customer data"
_HISTORY_CHART = "the 2x2 with every assessment of the page, labelled with date and scores"
_ONE_CHART = "the 2x2 (customer data x motivation) with the assessment's position"


# ----------------------------------------------------------------------------- routes


def _prefill(session: Session) -> Prefill:
    result = prefill(session, now=utcnow())
    session.rollback()
    return result


@router.get("/prefill", response_model=PrefillPublic)
def get_prefill(
    request: Request, session: SessionDep, _: ReadDep, lang: LangQuery = None
) -> PrefillPublic:
    """The customer-data answers (questions 4-6) as rejse's data suggests them: the share of
    live profiles with structural traits, with transaction events and with activity events
    (each defined in `definition`), and every question to answer."""
    return _prefill_public(_prefill(session), _lang(request, lang))


@router.get("/prefill/chart.{fmt}", response_class=Response, responses=chart_doc(_PREFILL_CHART))
def prefill_chart(
    fmt: ChartFormat, request: Request, session: SessionDep, _: ReadDep, lang: LangQuery = None
) -> Response:
    return chart_response(service.prefill_chart(_prefill(session), _lang(request, lang)), fmt)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AssessmentPublic,
    responses=responses(
        (422, "Invalid input; `errors` name each field (`readiness.expectancy`: 1 to 5)")
    ),
)
def create_assessment(
    request: Request,
    body: AssessmentCreate,
    session: SessionDep,
    principal: WriteDep,
    lang: LangQuery = None,
) -> AssessmentPublic:
    """Assess and store: the start position from the six readiness answers, the progress
    scenario for movers who give the progress answers, the most pressing challenge, the way
    forward and workshop suggestions."""
    row = service.create(
        session,
        body.readiness,
        body.progress,
        company=body.company,
        goal=body.goal,
        created_by=principal.key_id,
        now=utcnow(),
    )
    session.commit()
    return _public(row, _lang(request, lang))


_LIST_CSV: Responses = {
    200: {
        "description": "The page; with `format=csv` one row per assessment (RFC 4180, UTF-8): "
        "id, date, company, the scores, the start position and the progress scenario",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.get("", response_model=AssessmentList, responses=_LIST_CSV)
def list_assessments(
    request: Request,
    session: SessionDep,
    _: ReadDep,
    lang: LangQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
    format: Annotated[
        Literal["json", "csv"], Query(description="`csv`: the page as a CSV download")
    ] = "json",
) -> AssessmentList | Response:
    """The stored assessments, oldest first: progress over time."""
    chosen = _lang(request, lang)
    rows = service.listing(session, limit=limit, offset=offset)
    public = [_public(row, chosen) for row in rows]
    if format == "csv":
        table = [
            {
                "id": a.id,
                "created_at": a.created_at.isoformat(),
                "company": a.company,
                **a.scores.model_dump(),
                "start_position": a.start_position.key.value,
                "start_position_name": a.start_position.name,
                "progress_scenario": a.progress_scenario.key.value if a.progress_scenario else None,
            }
            for a in public
        ]
        return Response(
            to_csv(table),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="maturity.csv"'},
        )
    return AssessmentList(total=service.count(session), assessments=public)


@router.get("/chart.{fmt}", response_class=Response, responses=chart_doc(_HISTORY_CHART))
def history_chart(
    fmt: ChartFormat,
    request: Request,
    session: SessionDep,
    _: ReadDep,
    lang: LangQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    rows = service.listing(session, limit=limit, offset=offset)
    return chart_response(service.position_chart(rows, _lang(request, lang), history=True), fmt)


@router.get("/{assessment_id}", response_model=AssessmentPublic, responses=responses(404))
def get_assessment(
    request: Request,
    assessment_id: AssessmentId,
    session: SessionDep,
    _: ReadDep,
    lang: LangQuery = None,
) -> AssessmentPublic:
    return _public(service.get(session, assessment_id), _lang(request, lang))


@router.get(
    "/{assessment_id}/chart.{fmt}",
    response_class=Response,
    responses=chart_doc(_ONE_CHART) | responses(404),
)
def assessment_chart(
    fmt: ChartFormat,
    request: Request,
    assessment_id: AssessmentId,
    session: SessionDep,
    _: ReadDep,
    lang: LangQuery = None,
) -> Response:
    row = service.get(session, assessment_id)
    return chart_response(service.position_chart([row], _lang(request, lang)), fmt)
