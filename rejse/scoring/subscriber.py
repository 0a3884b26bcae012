"""The event processor's scoring subscriber (runs in the processor's transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from rejse.contracts import ProcessedEvent
from rejse.scoring.service import ModelCache, score_event


class ScoringSubscriber:
    """Constant time per event: one primary-key read of the score state (plus one of the
    profile when traits changed), one counter row per capped rule; never the event history."""

    name = "scoring"

    def __init__(self, cache: ModelCache | None = None) -> None:
        self.cache = cache or ModelCache()

    def apply(self, session: Session, event: ProcessedEvent) -> Sequence[tuple[str, dict[str, Any]]]:
        model = self.cache.get(session)
        if model is None:
            return []
        return score_event(session, model=model, event=event)
