"""Assessments stored and read back, their texts in a language, and their charts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from rejse.analytics import charts
from rejse.errors import NotFound
from rejse.ids import new_id
from rejse.maturity import texts
from rejse.maturity.model import (
    Progress,
    ProgressScenario,
    Readiness,
    StartPosition,
    assess,
)
from rejse.maturity.prefill import Prefill
from rejse.maturity.textkinds import PositionText, ScenarioText, Workshop
from rejse.maturity.texts import Lang
from rejse.models.maturity import MaturityAssessment

DIGITS = 3  # scores are stored and shown to three decimals (1/12 steps need no more)
ID_PREFIX = "mat"


def create(
    session: Session,
    readiness: Readiness,
    progress: Progress | None,
    *,
    company: str | None,
    goal: str | None,
    created_by: str | None,
    now: dt.datetime,
) -> MaturityAssessment:
    """Assess and add the row (the caller commits)."""
    result = assess(readiness, progress)
    row = MaturityAssessment(
        id=new_id(ID_PREFIX),
        created_at=now,
        created_by=created_by,
        company=company,
        goal=goal,
        answers={
            "readiness": readiness.model_dump(),
            "progress": progress.model_dump() if progress else None,
        },
        motivation=round(result.motivation, DIGITS),
        customer_data=round(result.customer_data, DIGITS),
        competence=None if result.competence is None else round(result.competence, DIGITS),
        success=None if result.success is None else round(result.success, DIGITS),
        start_position=result.position.value,
        progress_scenario=result.scenario.value if result.scenario else None,
    )
    session.add(row)
    return row


def get(session: Session, assessment_id: str) -> MaturityAssessment:
    row = session.get(MaturityAssessment, assessment_id)
    if row is None:
        raise NotFound(f"no assessment {assessment_id!r}", field="assessment_id")
    return row


def listing(session: Session, *, limit: int, offset: int) -> list[MaturityAssessment]:
    """Oldest first: the company's progress over time."""
    return list(
        session.exec(
            select(MaturityAssessment)
            .order_by(col(MaturityAssessment.created_at), col(MaturityAssessment.id))
            .offset(offset)
            .limit(limit)
        )
    )


def count(session: Session) -> int:
    return int(session.execute(sa.select(sa.func.count()).select_from(MaturityAssessment)).one()[0])


# ----------------------------------------------------------------------------- texts


@dataclass(frozen=True)
class Report:
    """An assessment's words in one language."""

    position: PositionText
    scenario: ScenarioText | None
    main_question: str | None  # the workbook's question to movers
    workshops: tuple[Workshop, ...]


def report(row: MaturityAssessment, lang: Lang) -> Report:
    position = StartPosition(row.start_position)
    scenario = ProgressScenario(row.progress_scenario) if row.progress_scenario else None
    workshops = texts.WORKSHOPS[position][lang]
    if scenario is not None:
        workshops = workshops + texts.WORKSHOPS[scenario][lang]
    return Report(
        position=texts.POSITIONS[position][lang],
        scenario=texts.SCENARIOS[scenario][lang] if scenario else None,
        main_question=texts.MAIN_QUESTION[lang] if position is StartPosition.bevaeger else None,
        workshops=workshops,
    )


def progress_needed(row: MaturityAssessment) -> bool:
    return row.start_position == StartPosition.bevaeger.value and row.progress_scenario is None


# ----------------------------------------------------------------------------- charts


def number(value: float) -> str:
    """A score as the charts write it: the stored three decimals, trailing zeros kept."""
    return f"{value:.{DIGITS}f}"


def point_label(row: MaturityAssessment) -> str:
    """`Acme 2026-12-02 (0.667; 0.833)`: who and when, then (customer data; motivation)."""
    who = f"{row.company} " if row.company else ""
    return (
        f"{who}{row.created_at.date().isoformat()} "
        f"({number(row.customer_data)}; {number(row.motivation)})"
    )


def _quadrants(lang: Lang) -> list[dict[str, Any]]:
    places = {
        StartPosition.begynder: (0.25, 0.25),
        StartPosition.begrunder: (0.75, 0.25),
        StartPosition.beundrer: (0.25, 0.75),
        StartPosition.bevaeger: (0.75, 0.75),
    }
    return [
        {"x": x, "y": y, "name": texts.POSITIONS[position][lang].name}
        for position, (x, y) in places.items()
    ]


def position_chart(
    rows: Sequence[MaturityAssessment], lang: Lang, *, history: bool = False
) -> dict[str, Any]:
    """The 2x2 (customer data across, motivation up) with each assessment's point, labelled
    with its scores."""
    words = texts.CHART[lang]
    return charts.quadrant(
        [{"x": row.customer_data, "y": row.motivation, "label": point_label(row)} for row in rows],
        x="x",
        y="y",
        label="label",
        title=words["history" if history else "title"],
        x_title=words["x"],
        y_title=words["y"],
        quadrants=_quadrants(lang),
    )


def prefill_chart(result: Prefill, lang: Lang) -> dict[str, Any]:
    """Bars: the share of live profiles with each kind of customer data."""
    words = texts.CHART[lang]
    rows = [
        {"kind": texts.DATA_KINDS[kind][lang], "share": share.share}
        for kind, share in (
            ("structural", result.structural),
            ("transactional", result.transactional),
            ("activity", result.activity),
        )
    ]
    spec = charts.bars(
        rows,
        x="kind",
        y="share",
        title=words["prefill"],
        y_title=words["share"],
        value_format=".1%",
    )
    spec["encoding"]["y"]["scale"] = {"domain": [0, 1]}
    spec["encoding"]["y"]["axis"] = {"format": "%"}
    return spec
