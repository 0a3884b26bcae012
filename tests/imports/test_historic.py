"""The historic rule: imported events older than the import's start build the profile but
start no journey (a shop importing two years of checkouts must not send two years of
reminders); a live event does. The real processor, the real journey dispatcher and Temporal's
time-skipping server."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
from sqlmodel import Session

from rejse import wiring
from rejse.events.ingest import accept, split_batch
from rejse.events.processor import EventProcessor
from rejse.imports.runner import run_import
from rejse.journeys.dispatcher import JourneyDispatcher
from rejse.models.profiles import Profile
from rejse.profiles.service import find_by_identifier
from tests.journeys.conftest import abandoned_cart, publish, runs


def checkout(user: str, at: dt.datetime | None, checkout_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "userId": user,
        "event": "Checkout Started",
        "properties": {"checkout_id": checkout_id},
        "context": {"traits": {"email": f"{user}@example.com"}},
        "messageId": uuid.uuid4().hex,
    }
    if at is not None:
        message["timestamp"] = at.isoformat()
    return message


def import_lines(runtime, tmp_path, *messages: dict[str, Any]) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(m) for m in messages))
    summary = run_import(
        runtime.engine, path, fmt="segment", data_dir=tmp_path / "data", database="test"
    )
    assert summary.stored == len(messages)


def live(runtime, *messages: dict[str, Any]) -> None:
    parsed = split_batch(orjson.dumps({"batch": list(messages)}))
    accept(runtime.engine, parsed.rows, parsed.buckets)


async def test_imported_old_checkout_starts_no_journey_a_live_one_does(jruntime, worker, tmp_path):
    publish(jruntime, abandoned_cart())
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    import_lines(jruntime, tmp_path, checkout("ida", old, "c-old"))
    await wiring.event_processor(jruntime).drain()
    with Session(jruntime.engine) as s:
        pid = find_by_identifier(s, type="user_id", value="ida")
        assert pid is not None
        profile = s.get(Profile, pid)
        assert profile is not None
        assert profile.event_count == 1  # applied: the profile was built
    assert runs(jruntime) == []

    live(jruntime, checkout("ida", None, "c-live"))
    await wiring.event_processor(jruntime).drain()
    [run] = runs(jruntime)
    assert run.profile_id == pid


async def test_an_imported_event_after_the_import_start_is_live(jruntime, worker, tmp_path):
    """Only the past is historic: an imported line without a timestamp happens now."""
    publish(jruntime, abandoned_cart())
    import_lines(jruntime, tmp_path, checkout("bo", None, "c-now"))
    await wiring.event_processor(jruntime).drain()
    assert len(runs(jruntime)) == 1


class Deriving:
    """An in-transaction subscriber that derives one event from every Checkout Started."""

    name = "deriving"

    def apply(self, session, event):
        return [("Cart Noted", {})] if event.event == "Checkout Started" else []


async def test_events_derived_from_historic_events_are_historic(jruntime, worker, tmp_path):
    definition = abandoned_cart()
    definition.update(key="noted", trigger={"type": "event", "event": "Cart Noted"})
    definition.pop("entry_key")
    definition["exit_when"] = []
    publish(jruntime, definition)
    processor = EventProcessor(
        jruntime, subscribers=[Deriving()], dispatchers=[JourneyDispatcher(jruntime)]
    )
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    import_lines(jruntime, tmp_path, checkout("eva", old, "c1"))
    assert await processor.drain() == 2  # the import's event, then the derived one
    assert runs(jruntime) == []
    live(jruntime, checkout("eva", None, "c2"))
    assert await processor.drain() == 2
    assert len(runs(jruntime, journey_key="noted")) == 1
