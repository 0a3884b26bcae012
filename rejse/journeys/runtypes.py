"""What `JourneyWorkflow` and its activities pass to each other (pydantic, PII-free)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from rejse.contracts import ProcessedEvent

WORKFLOW_NAME = "JourneyWorkflow"
SIGNAL_EVENT = "event"
SIGNAL_PAUSED = "set_paused"

# workflow.patched() ids: interpreter changes that running histories must not see
PATCH_WAIT_SINCE_LAST_WAIT = "wait-for-event-counts-since-last-wait"
PATCH_LOCAL_BOOKKEEPING = "bookkeeping-as-local-activities"

BEGIN_RUN = "journeys.begin_run"
RECORD_STEP = "journeys.record_step"
RECORD_OUTCOME = "journeys.record_outcome"
FINISH_RUN = "journeys.finish_run"
CHOOSE_BRANCH = "journeys.choose_branch"
UPDATE_PROFILE = "journeys.update_profile"
CALL_WEBHOOK = "journeys.call_webhook"


class RunInput(BaseModel):
    run_id: str  # journey_run.id; stable across continue-as-new
    journey_key: str
    version: int
    definition: dict[str, Any]  # the pinned version (JourneyDefinition.dump())
    profile_id: str
    trigger: ProcessedEvent
    entry_no: int = 1  # 2, 3... when the same workflow id is re-entered
    # carried over by continue-as-new
    resume_at: str | None = None
    seen_event_ids: list[str] = Field(default_factory=list)
    visits: dict[str, int] = Field(default_factory=dict)
    variant: str | None = None
    timezone: str | None = None
    begun: bool = False


class RunContext(BaseModel):
    timezone: str | None = None
    paused: bool = False
    active: bool = True  # False: archived (or the run was cancelled meanwhile)


class StepRecord(BaseModel):
    run_id: str
    journey_key: str
    version: int
    profile_id: str
    step_id: str
    step_type: str
    at: dt.datetime  # workflow time
    # the run's visit number of this step (1 = first time); 0 from histories before it was sent.
    # A local activity may run again with a new `at` (its workflow task retried after a worker
    # crash), so the row is deduplicated by visit, not by time.
    visit: int = 0


class OutcomeRecord(BaseModel):
    run_id: str
    step_id: str
    outcome: str  # sent / skipped / failed / variant key
    variant: str | None = None


class FinishRecord(BaseModel):
    run_id: str
    journey_key: str
    profile_id: str
    status: str  # completed / converted / exited
    step_id: str | None
    at: dt.datetime


class BranchInput(BaseModel):
    profile_id: str
    conditions: list[dict[str, Any]]
    properties: dict[str, Any] = Field(default_factory=dict)  # the trigger's, for `property`
    at: dt.datetime


class UpdateProfileInput(BaseModel):
    profile_id: str
    traits: dict[str, Any]


class WebhookInput(BaseModel):
    idempotency_key: str
    url: str
    journey_key: str
    step_id: str
    profile_id: str
    body: dict[str, Any] = Field(default_factory=dict)
    trigger: dict[str, Any] = Field(default_factory=dict)


def run_status_is_final(status: str) -> bool:
    return status not in ("running", "held")
