"""A run's arms: the variant (or holdout) it was assigned at each split step it passed, read
from its step log (the outcome of a split step's row is the arm)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from rejse.journeys.definition import JourneyDefinition, SplitStep
from rejse.models.journeys import JourneyRun, JourneyStep, JourneyVersion


def split_steps(session: Session, journey_key: str, version: int) -> set[str]:
    """The split steps of one version of a journey (none when the version is unknown)."""
    row = session.get(JourneyVersion, (journey_key, version))
    if row is None:
        return set()
    defn = JourneyDefinition.model_validate(row.definition)
    return {step_id for step_id, step in defn.steps.items() if isinstance(step, SplitStep)}


def run_arms(session: Session, run: JourneyRun) -> dict[str, str]:
    """Split step -> arm for every split the run passed (a run passing a split twice keeps its
    arm: the assignment is deterministic per profile)."""
    splits = split_steps(session, run.journey_key, run.version)
    if not splits:
        return {}
    rows = session.exec(
        select(JourneyStep.step_id, JourneyStep.outcome).where(
            JourneyStep.run_id == run.id,
            col(JourneyStep.step_id).in_(splits),
            col(JourneyStep.outcome).is_not(None),
        )
    )
    return {step_id: outcome for step_id, outcome in rows if outcome is not None}
