"""Scoring model versions, a profile's score breakdown, explicit lifecycle stage changes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, Field

from api.deps import READ, SALES, WRITE, ReadDep, SessionDep, WriteDep, require
from api.errors import NOT_FOUND, responses
from rejse.errors import NotFound
from rejse.inputs import Text
from rejse.models.leads import ScoringModel
from rejse.models.profiles import STAGES
from rejse.scoring import service as scoring
from rejse.scoring.definition import ScoringDefinition
from rejse.scoring.service import ScoreView

router = APIRouter(tags=["scoring"])

Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
ScoreReadDep = Annotated[Any, Depends(require(*READ, *SALES))]
StageWriteDep = Annotated[Any, Depends(require(*WRITE, *SALES))]


class ScoringModelPublic(BaseModel):
    version: int
    active: bool
    definition: ScoringDefinition
    created_at: dt.datetime
    activated_at: dt.datetime | None = None


def _public(row: ScoringModel) -> ScoringModelPublic:
    return ScoringModelPublic(
        version=row.version,
        active=row.active,
        definition=ScoringDefinition.model_validate(row.definition),
        created_at=row.created_at,
        activated_at=row.activated_at,
    )


@router.post(
    "/api/scoring/models",
    status_code=status.HTTP_201_CREATED,
    response_model=ScoringModelPublic,
    responses=responses(
        (400, "The definition is refused; `errors` names the rule"),
        (409, "Another version was created meanwhile; retry"),
    ),
)
def create_model(
    body: ScoringDefinition,
    session: SessionDep,
    _: WriteDep,
    activate: Annotated[bool, Query(description="make this version the active one")] = False,
) -> ScoringModelPublic:
    """A new, immutable version of the scoring model."""
    row = scoring.create_model(session, definition=body, activate=activate)
    session.commit()
    return _public(row)


@router.get("/api/scoring/models", response_model=list[ScoringModelPublic])
def list_models(session: SessionDep, _: ReadDep) -> list[ScoringModelPublic]:
    return [_public(r) for r in scoring.list_models(session)]


@router.get(
    "/api/scoring/models/active",
    response_model=ScoringModelPublic,
    responses=responses((404, "No model is active yet")),
)
def active_model(session: SessionDep, _: ReadDep) -> ScoringModelPublic:
    row = scoring.active_row(session)
    if row is None:
        raise NotFound("no scoring model is active yet", field="version")
    return _public(row)


@router.get("/api/scoring/models/{version}", response_model=ScoringModelPublic, responses=NOT_FOUND)
def get_model(version: Version, session: SessionDep, _: ReadDep) -> ScoringModelPublic:
    row = session.get(ScoringModel, version)
    if row is None:
        raise NotFound(f"no scoring model version {version}", field="version")
    return _public(row)


@router.post(
    "/api/scoring/models/{version}/activate",
    response_model=ScoringModelPublic,
    responses=NOT_FOUND,
)
def activate_model(version: Version, session: SessionDep, _: WriteDep) -> ScoringModelPublic:
    row = scoring.activate_model(session, version=version)
    session.commit()
    return _public(row)


@router.get("/api/profiles/{profile_id}/score", response_model=ScoreView, responses=NOT_FOUND)
def profile_score(profile_id: str, session: SessionDep, _: ScoreReadDep) -> ScoreView:
    """The score now (decay applied) with its breakdown per rule. A merged-away id answers
    with its survivor's score."""
    from rejse.profiles.service import get_live_profile

    return scoring.current_score(session, profile_id=get_live_profile(session, profile_id).id)


class StageChange(BaseModel):
    stage: Text = Field(max_length=20, description="one of " + ", ".join(STAGES))
    reason: Text = Field(min_length=1, max_length=200)


class StageChanged(BaseModel):
    profile_id: str
    previous: str
    stage: str


@router.post(
    "/api/profiles/{profile_id}/stage",
    response_model=StageChanged,
    responses=responses((400, "Unknown stage"), 404),
)
def change_stage(
    profile_id: str, body: StageChange, session: SessionDep, _: StageWriteDep
) -> StageChanged:
    """An explicit lifecycle stage change (the only way backwards), recorded and published as a
    `Lifecycle Stage Changed` event."""
    from rejse.profiles.service import get_live_profile

    profile_id = get_live_profile(session, profile_id).id
    previous, stage = scoring.set_stage(
        session, profile_id=profile_id, stage=body.stage, reason=body.reason
    )
    if previous != stage:
        scoring.publish_stage_changes(
            session,
            [(scoring.STAGE_CHANGED, {"from": previous, "to": stage, "reason": "manual"})],
            profile_id=profile_id,
            key=f"manual:{uuid.uuid4().hex}",
        )
    session.commit()
    return StageChanged(profile_id=profile_id, previous=previous, stage=stage)
