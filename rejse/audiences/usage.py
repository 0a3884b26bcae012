"""Who uses an audience: live journeys and other audiences that name it.

Reads the journeys' stored definitions through `rejse.models` only (rejse.journeys checks that
the audiences its definitions name exist, so this package does not import it). A definition
names an audience wherever one of its objects has `"audience": key`: a condition leaf, an
`audience_entered`/`audience_left` trigger, a schedule's or manual entry's audience."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from rejse.models.audiences import Audience
from rejse.models.journeys import Journey, JourneyVersion

LIVE_JOURNEY = ("published", "paused")  # paused ones resume with the same definition


def audience_references(node: Any) -> set[str]:
    """Every `"audience": key` anywhere in a JSON document (walked without recursion)."""
    found: set[str] = set()
    todo = [node]
    while todo:
        current = todo.pop()
        if isinstance(current, dict):
            value = current.get("audience")
            if isinstance(value, str):
                found.add(value)
            todo.extend(current.values())
        elif isinstance(current, list):
            todo.extend(current)
    return found


def _mentions(column: Any, key: str) -> Any:
    """A cheap superset filter in SQL: the JSON's text holds the quoted key (the exact check
    runs on the parsed document)."""
    return sa.cast(column, sa.Text).contains(f'"{key}"', autoescape=True)


def journeys_using(
    session: Session, key: str, *, statuses: Iterable[str] = LIVE_JOURNEY
) -> list[str]:
    """Keys of the journeys in `statuses` whose published version names audience `key`."""
    rows = session.exec(
        select(Journey.key, JourneyVersion.definition)
        .join(
            JourneyVersion,
            sa.and_(
                col(JourneyVersion.journey_key) == col(Journey.key),
                col(JourneyVersion.version) == col(Journey.published_version),
            ),
        )
        .where(col(Journey.status).in_(list(statuses)), _mentions(JourneyVersion.definition, key))
        .order_by(col(Journey.key))
    )
    return [journey for journey, definition in rows if key in audience_references(definition)]


def audiences_using(session: Session, key: str) -> list[str]:
    """Keys of the other audiences whose condition names audience `key`."""
    rows = session.exec(
        select(Audience.key, Audience.condition)
        .where(col(Audience.key) != key, _mentions(Audience.condition, key))
        .order_by(col(Audience.key))
    )
    return [other for other, condition in rows if key in audience_references(condition)]
