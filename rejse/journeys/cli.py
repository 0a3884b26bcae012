"""`rejse journeys ...`: install the example journeys that ship with rejse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

app = typer.Typer(help="Journeys: install the shipped examples.", no_args_is_help=True)
console = Console()


def install_examples(runtime, *, publish: bool = True) -> list[tuple[str, str]]:
    """Create (or add a version of) each example journey; publish it. Returns (key, what)."""
    from sqlmodel import Session

    from rejse import wiring
    from rejse.journeys import service
    from rejse.models.journeys import Journey, JourneyVersion

    names = {
        getattr(fn, "__temporal_activity_definition").name for fn in wiring.activities(runtime)
    }
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
            journey = session.get(Journey, definition["key"])
            assert journey is not None
            if (
                publish
                and journey.status in ("draft", "published")
                and (journey.published_version != journey.latest_version)
            ):
                service.publish(session, key=journey.key, activity_names=names)
                what += ", published"
            session.commit()
            done.append(
                (definition["key"], f"{what} (v{journey.latest_version}, {journey.status})")
            )
    return done


@app.command("install-examples")
def install_examples_command(
    publish: Annotated[
        bool, typer.Option("--publish/--draft", help="publish them (default) or leave drafts")
    ] = True,
) -> None:
    """Install the example journeys (abandoned cart) into the configured database."""
    from rejse.runtime import Runtime
    from rejse.settings import load_settings
    from rejse.up import migrate_database, open_database

    settings = load_settings()
    engine = open_database(settings)
    migrate_database(settings, engine)
    runtime = Runtime.create(settings, engine=engine)
    try:
        for key, what in install_examples(runtime, publish=publish):
            console.print(f"{key}: {what}", markup=False)
    finally:
        runtime.engine.dispose()
