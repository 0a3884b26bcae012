"""What a journey's `match` sees of an event: the one builder of matcher data, shared by
triggers, `exit_when` goals and `wait_for_event` steps, so a condition that holds in one holds in
all of them.

Framework-free; imported by the workflow sandbox (pure data, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rejse.conditions import matches
from rejse.contracts import ProcessedEvent


def event_data(ev: ProcessedEvent) -> dict[str, Any]:
    """The event as dotted `match` paths read it: `event`, `type`, `properties.*`, `traits.*`."""
    return {"event": ev.event, "properties": ev.properties, "traits": ev.traits, "type": ev.type}


def event_matches(ev: ProcessedEvent, name: str, where: Mapping[str, Any]) -> bool:
    """The event is called `name` and every path of `where` (already resolved) holds."""
    return ev.event == name and matches(where, event_data(ev))
