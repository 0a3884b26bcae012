"""The example journeys that ship with rejse (`rejse journeys install-examples`)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session

from rejse.journeys import service
from rejse.models.journeys import Journey, JourneyVersion
from rejse.runtime import Runtime

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def install_examples(
    runtime: Runtime, *, activity_names: frozenset[str], publish: bool = True
) -> list[tuple[str, str]]:
    """Create (or add a version of) each example journey; publish it. Returns (key, what)."""
    done = []
    for path in sorted(EXAMPLES.glob("*.json")):
        definition = json.loads(path.read_text())
        with Session(runtime.engine) as session:
            journey = session.get(Journey, definition["key"])
            if journey is None:
                service.create_journey(session, definition=definition)
                what = "created"
            else:
                latest = session.get(JourneyVersion, (journey.key, journey.latest_version))
                parsed = service.validate_definition(definition, template_exists=None).dump()
                if latest is not None and latest.definition == parsed:
                    what = "unchanged"
                else:
                    service.add_version(session, key=journey.key, definition=definition)
                    what = "new version"
            journey = service.get_journey(session, key=definition["key"])
            if (
                publish
                and journey.status in ("draft", "published")
                and (journey.published_version != journey.latest_version)
            ):
                service.publish(session, key=journey.key, activity_names=set(activity_names))
                what += ", published"
            session.commit()
            done.append(
                (definition["key"], f"{what} (v{journey.latest_version}, {journey.status})")
            )
    return done
