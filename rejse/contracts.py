"""Interfaces between the domains of rejse: each domain implements one side, and both sides
import this.

Keep these types small, serialisable (pydantic) and free of PII in identifiers.

Who implements what:
- events/profiles (ingestion, processor, identity, consent, GDPR)  -> `ProcessedEvent`,
  the subscriber protocols, `ProfileSnapshot` (loader: `rejse.profiles.service.load_snapshot`)
- messaging (templates, channels, guards)                           -> activity `SEND_MESSAGE`
- journeys (definitions, JourneyWorkflow, triggers)                 -> an `EventDispatcher`
- leads (scoring, LeadHandoffWorkflow, CRM, sales)                  -> an `InTransactionSubscriber`
  (scoring), activities `ADD_SCORE` and `START_HANDOFF`
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field
from sqlmodel import Session

# ---------------------------------------------------------------------------------------------
# Events -> subscribers (the routing seam of the event processor)


class ConsentChange(BaseModel):
    channel: str
    status: Literal["granted", "denied", "revoked"]
    source: str


class ProcessedEvent(BaseModel):
    """What the processor publishes for every event it has applied to a profile."""

    event_id: str  # stable, unique (messageId-derived); use for idempotency
    profile_id: str  # the surviving (golden) profile after any merge
    type: Literal["track", "identify", "page", "screen", "group", "alias", "internal"]
    event: str | None = None  # track/internal event name, e.g. "Checkout Started"
    group_id: str | None = None  # group calls: the group (account) the person belongs to
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)  # traits given on this event
    # The top-level traits whose stored value this event changed on the profile (set, replaced
    # or removed; `context.traits` included), sorted; None when not known (an event rebuilt
    # from its row after the processor's transaction): then read `traits` instead.
    changed_traits: list[str] | None = None
    timestamp: dt.datetime  # corrected event time (UTC)
    received_at: dt.datetime  # when the API accepted it (UTC)
    merged_from: list[str] = Field(default_factory=list)  # profile ids folded into profile_id
    consent_changes: list[ConsentChange] = Field(default_factory=list)


# Imported history (`rejse import`): its events have this `source` and carry the import's start
# in `context[IMPORT_CONTEXT]["started_at"]` (ISO 8601). The processor applies an imported event
# older than its import's start (profile, customer value, memberships) but dispatches neither it
# nor the events derived from it (marked `context[HISTORIC] = True`): no journey starts, no
# lead is handed off for the past.
IMPORT_SOURCE = "import"
IMPORT_CONTEXT = "rejse_import"
HISTORIC = "historic"


class InTransactionSubscriber(Protocol):
    """Runs inside the processor's transaction for each event, in per-profile order.

    May write to the database through `session` (scores, audience membership, ...). Returns
    derived events (name, properties) that the processor stores as new events of the same
    profile, e.g. ("Lifecycle Stage Changed", {...}); they are processed in a later batch.
    Must be deterministic and must not call the network.

    Optional: `wants(session, event) -> bool`, a cheap test (no reads of this batch's writes)
    whether `apply` would do anything for the event. The processor flushes its pending profile
    writes before each `apply` so the subscriber reads the profile as of that event; when no
    subscriber wants an event, the processor skips that flush and writes the batch at once."""

    name: str

    def apply(
        self, session: Session, event: ProcessedEvent
    ) -> Sequence[tuple[str, dict[str, Any]]]: ...


class DispatchUnavailable(Exception):  # noqa: N818 - a state of the downstream, not an error of ours
    """A dispatcher's downstream (Temporal) cannot be reached: an outage, not the events'
    fault. The processor keeps the batch for later without spending the events' attempts."""


class EventDispatcher(Protocol):
    """Runs after the events' database effects have committed (at-least-once, per-profile
    order within a call). Talks to Temporal. Must be idempotent per `event_id`. Raises
    `DispatchUnavailable` when Temporal cannot be reached."""

    name: str

    async def dispatch(self, events: Sequence[ProcessedEvent]) -> None: ...


class ProfileEraser(Protocol):
    """GDPR erase hook: delete or anonymise this domain's data for a profile (in the erase
    transaction), and cancel what runs for it (after commit)."""

    name: str

    def erase(self, session: Session, profile_id: str) -> None: ...

    async def cancel_running(self, profile_id: str) -> None: ...


# ---------------------------------------------------------------------------------------------
# Profiles as read by other domains


class ProfileSnapshot(BaseModel):
    id: str
    traits: dict[str, Any] = Field(default_factory=dict)
    identifiers: dict[str, list[str]] = Field(default_factory=dict)  # type -> values
    email: str | None = None
    phone: str | None = None
    locale: str | None = None  # e.g. "da-DK"
    timezone: str | None = None  # IANA, e.g. "Europe/Copenhagen"
    consents: dict[str, str] = Field(default_factory=dict)  # channel -> granted/denied/revoked
    lifecycle_stage: str | None = None
    lead_score: float = 0.0
    erased: bool = False


# ---------------------------------------------------------------------------------------------
# Messaging (called by journeys and by the lead hand-off)

SEND_MESSAGE = "messaging.send"  # activity name; input SendRequest, output SendResult


class SendRequest(BaseModel):
    idempotency_key: str  # workflow id + ":" + step id; one delivery per key
    profile_id: str
    channel: Literal["email", "sms", "in_app", "webhook"]
    template: str  # e.g. "abandoned_cart/reminder"
    transactional: bool = False  # exempt from frequency cap and quiet hours
    journey_key: str | None = None
    journey_version: int | None = None
    step_id: str | None = None
    trigger: dict[str, Any] = Field(default_factory=dict)  # the trigger event (ProcessedEvent dump)
    extra: dict[str, Any] = Field(default_factory=dict)  # additional template context


class SendResult(BaseModel):
    status: Literal["sent", "skipped", "deferred", "failed"]
    message_id: str | None = None
    reason: str | None = None  # why skipped/failed (no_consent, frequency_cap, ...)
    retry_at: dt.datetime | None = None  # for "deferred" (quiet hours): call again at this time


# ---------------------------------------------------------------------------------------------
# Leads (called by journeys' score / crm_handoff / notify_sales steps)

ADD_SCORE = "scoring.add_points"  # activity name; input AddScoreRequest, output None
START_HANDOFF = "leads.start_handoff"  # activity name; input HandoffRequest, output str (wf id)


class AddScoreRequest(BaseModel):
    idempotency_key: str
    profile_id: str
    points: float
    reason: str


class HandoffRequest(BaseModel):
    profile_id: str
    reason: str
    source: str  # e.g. "journey:abandoned-cart" or "score_threshold"
    crm: bool = True  # False for notify_sales: notify a rep, skip the CRM
