"""The data-maturity model of the "Brug Kundedata" workbook (Pedersen & Ritter 2021,
`../shared/spec/maturity.md`): maturity = readiness x progress.

Readiness has two dimensions of three questions each: motivation (after Vroom: the goal and how
important it is, how far customer data helps reach it, how far we expect to be able to use
customer data) and customer data (structural, transactional and activity data). Low or high on
each gives the four start positions of the 2x2; movers (high and high) are split further by
digitalisation competence (collect data, analyse data, get permission to use data) and success
with customer-data projects into the four progress scenarios.

The workbook names the questions and the quadrants but gives no scale, so rejse fixes one:
- every answer is an integer from 1 ("not at all" / "none") to 5 ("to a very high degree" /
  "for (nearly) every customer");
- a dimension's score is the mean of its answers mapped onto [0, 1]: (mean - 1) / 4;
- a dimension is *high* when the mean is above the middle of the scale (3), i.e. its score is
  above 0.5; a mean of exactly 3 is low: the workbook's companies *have* or *lack* motivation
  and data, and an answer in the middle does not have it.
The comparisons are made on integer sums (sum > 3 x count), so no rounding decides a position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

LOWEST, HIGHEST = 1, 5
MIDDLE = (LOWEST + HIGHEST) // 2  # 3: a mean above it is high

Answer = Annotated[
    int,
    Field(
        strict=True,
        ge=LOWEST,
        le=HIGHEST,
        description="1 (not at all) to 5 (to a very high degree)",
    ),
]


class StartPosition(StrEnum):
    begynder = "begynder"  # low motivation, low data
    begrunder = "begrunder"  # low motivation, high data
    beundrer = "beundrer"  # high motivation, low data
    bevaeger = "bevaeger"  # high motivation, high data ("bevæger")


class ProgressScenario(StrEnum):
    babyskridt = "babyskridt"  # low competence, low success
    traedemoelle = "traedemoelle"  # high competence, low success ("trædemølle")
    rette_fod = "rette_fod"  # low competence, high success
    fuld_fart_frem = "fuld_fart_frem"  # high competence, high success


class Readiness(BaseModel):
    """The six readiness questions (docs/analytics.md, "Data maturity")."""

    model_config = ConfigDict(extra="forbid")

    goal_importance: Answer = Field(
        description="1. What goal do we have, and how important is it to us?"
    )
    data_contribution: Answer = Field(
        description="2. To what extent does customer data help us reach it?"
    )
    expectancy: Answer = Field(
        description="3. To what extent do we expect to be able to use customer data?"
    )
    structural: Answer = Field(
        description="4. What structural data do we hold about customers (size, industry, "
        "region)? `GET /api/maturity/prefill` suggests an answer"
    )
    transactional: Answer = Field(
        description="5. What transactional data (revenue, what was bought, at what price)?"
    )
    activity: Answer = Field(
        description="6. What activity data (how, when and where customers use the product)?"
    )

    def motivation(self) -> tuple[int, ...]:
        return (self.goal_importance, self.data_contribution, self.expectancy)

    def customer_data(self) -> tuple[int, ...]:
        return (self.structural, self.transactional, self.activity)


class Progress(BaseModel):
    """The progress questions, for movers: digitalisation competence (three) and success."""

    model_config = ConfigDict(extra="forbid")

    collect: Answer = Field(description="How good are we at collecting customer data?")
    analyse: Answer = Field(description="How good are we at analysing customer data?")
    permission: Answer = Field(
        description="How good are we at getting permission to use customer data (consent)?"
    )
    success: Answer = Field(
        description="How much success have we had with our customer-data projects so far?"
    )

    def competence(self) -> tuple[int, ...]:
        return (self.collect, self.analyse, self.permission)


def score(answers: Sequence[int]) -> float:
    """The mean answer mapped onto [0, 1] (1 -> 0, 3 -> 0.5, 5 -> 1)."""
    return (sum(answers) - LOWEST * len(answers)) / ((HIGHEST - LOWEST) * len(answers))


def is_high(answers: Sequence[int]) -> bool:
    """The mean is above the middle of the scale (compared on the integer sum)."""
    return sum(answers) > MIDDLE * len(answers)


def start_position(readiness: Readiness) -> StartPosition:
    motivated = is_high(readiness.motivation())
    has_data = is_high(readiness.customer_data())
    if motivated:
        return StartPosition.bevaeger if has_data else StartPosition.beundrer
    return StartPosition.begrunder if has_data else StartPosition.begynder


def progress_scenario(progress: Progress) -> ProgressScenario:
    competent = is_high(progress.competence())
    succeeding = is_high((progress.success,))
    if succeeding:
        return ProgressScenario.fuld_fart_frem if competent else ProgressScenario.rette_fod
    return ProgressScenario.traedemoelle if competent else ProgressScenario.babyskridt


@dataclass(frozen=True)
class Result:
    """What an assessment comes to: the scores, the start position and (for movers who
    answered the progress questions) the progress scenario."""

    motivation: float
    customer_data: float
    position: StartPosition
    competence: float | None
    success: float | None
    scenario: ProgressScenario | None

    @property
    def progress_needed(self) -> bool:
        """A mover without progress answers: the scenario needs them."""
        return self.position is StartPosition.bevaeger and self.scenario is None


def assess(readiness: Readiness, progress: Progress | None) -> Result:
    """The model applied. Progress answers count only for movers: the workbook splits the
    movers, not the other positions, into progress scenarios (the others' answers are kept,
    their competence and success scores shown, but no scenario is given)."""
    position = start_position(readiness)
    scenario = None
    if progress is not None and position is StartPosition.bevaeger:
        scenario = progress_scenario(progress)
    return Result(
        motivation=score(readiness.motivation()),
        customer_data=score(readiness.customer_data()),
        position=position,
        competence=score(progress.competence()) if progress else None,
        success=score((progress.success,)) if progress else None,
        scenario=scenario,
    )


def answer_for_share(having: int, total: int) -> int:
    """The 1-5 answer a share of profiles suggests: 1 + 4 x share rounded half up, so 0 % -> 1,
    12.5 % -> 2, 37.5 % -> 3, 62.5 % -> 4, 87.5 % -> 5 (integers only: exact at the edges).
    No profiles at all is 1."""
    if total <= 0:
        return LOWEST
    steps = HIGHEST - LOWEST
    return LOWEST + (2 * steps * having + total) // (2 * total)
