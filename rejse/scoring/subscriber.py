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

    def wants(self, session: Session, event: ProcessedEvent) -> bool:
        """Only events `score_event` acts on: merges, trait changes, events with rules."""
        model = self.cache.get(session)
        return model is not None and bool(
            event.merged_from or event.traits or event.event in model.rules_by_event
        )

    def apply(
        self, session: Session, event: ProcessedEvent
    ) -> Sequence[tuple[str, dict[str, Any]]]:
        model = self.cache.get(session)
        if model is None:
            return []
        return score_event(session, model=model, event=event)
