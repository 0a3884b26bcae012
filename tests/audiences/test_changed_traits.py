"""Audiences re-check a trait only when its value changed: the processor tells subscribers
which top-level traits an event changed on the profile (`ProcessedEvent.changed_traits`).

A shop's site sends the same identify on every visit; re-evaluating every trait audience for
each of them was most of the membership work of returning customers (bench.audience_processor).
The change is judged strictly: true is not 1 (as the condition language compares), and 1.0 is
taken as a change from 1 too (the language holds them equal; one re-check more is harmless).
Traits given in `context.traits` of a track call change the profile too, so they now move
memberships at once.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from rejse import wiring
from rejse.audiences.subscriber import AudienceSubscriber
from rejse.contracts import ProcessedEvent
from rejse.events.processor import EventProcessor
from tests.audiences.membership_helpers import create, identify, members, pid_of, send


class Recording(AudienceSubscriber):
    """The audience subscriber, noting what the processor handed it and what it answered."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[ProcessedEvent] = []
        self.wanted: list[bool] = []

    def wants(self, session: Session, event: ProcessedEvent) -> bool:
        answer = super().wants(session, event)
        if event.type != "internal":  # not the Audience Entered/Exited it derives
            self.seen.append(event)
            self.wanted.append(answer)
        return answer


def _processor(runtime: Any) -> tuple[EventProcessor, Recording]:
    sub = Recording()
    subscribers = [
        s if s.name != "audiences" else sub for s in wiring.in_transaction_subscribers(runtime)
    ]
    return EventProcessor(runtime, subscribers=subscribers, dispatchers=[]), sub


async def test_a_repeated_identify_is_not_wanted_and_a_changed_value_is(
    client, keys, runtime, engine
):
    create(engine, "pro", {"trait": "plan", "op": "eq", "value": "pro"})
    create(engine, "dk", {"trait": "country", "op": "eq", "value": "DK"})
    processor, sub = _processor(runtime)
    await identify(client, keys, {"userId": "u-1", "traits": {"plan": "pro", "country": "DK"}})
    await processor.drain()
    pid = pid_of(engine, "u-1")
    assert members(engine, "pro") == members(engine, "dk") == {pid}
    assert sub.seen[-1].changed_traits == ["country", "plan"]

    await identify(client, keys, {"userId": "u-1", "traits": {"plan": "pro", "country": "DK"}})
    await processor.drain()
    assert sub.seen[-1].changed_traits == []
    assert sub.wanted[-1] is False  # nothing changed: no audience is evaluated

    await identify(client, keys, {"userId": "u-1", "traits": {"plan": "free", "country": "DK"}})
    await processor.drain()
    assert sub.seen[-1].changed_traits == ["plan"]
    assert sub.wanted[-1] is True
    assert members(engine, "pro") == set()
    assert members(engine, "dk") == {pid}


async def test_a_change_of_type_alone_is_a_change(client, keys, runtime, engine):
    create(engine, "one", {"trait": "seats", "op": "eq", "value": 1})
    processor, sub = _processor(runtime)
    await identify(client, keys, {"userId": "u-2", "traits": {"seats": 1}})
    await processor.drain()
    pid = pid_of(engine, "u-2")
    assert members(engine, "one") == {pid}
    for value in (True, 1.0, 1):
        await identify(client, keys, {"userId": "u-2", "traits": {"seats": value}})
        await processor.drain()
        assert sub.seen[-1].changed_traits == ["seats"], value
        assert members(engine, "one") == (set() if value is True else {pid})


async def test_removing_a_trait_and_nested_values_are_changes(client, keys, runtime, engine):
    create(engine, "cph", {"trait": "address.city", "op": "eq", "value": "København"})
    create(engine, "has-plan", {"trait": "plan", "op": "exists"})
    processor, sub = _processor(runtime)
    address = {"city": "København", "zip": "2100"}
    await identify(client, keys, {"userId": "u-3", "traits": {"address": address, "plan": "x"}})
    await processor.drain()
    pid = pid_of(engine, "u-3")
    assert members(engine, "cph") == members(engine, "has-plan") == {pid}
    await identify(client, keys, {"userId": "u-3", "traits": {"address": dict(address)}})
    await processor.drain()
    assert sub.seen[-1].changed_traits == []
    moved = {"city": "Aarhus", "zip": "8000"}
    await identify(client, keys, {"userId": "u-3", "traits": {"address": moved, "plan": None}})
    await processor.drain()
    assert sub.seen[-1].changed_traits == ["address", "plan"]
    assert members(engine, "cph") == members(engine, "has-plan") == set()


async def test_traits_in_a_track_calls_context_move_memberships(client, keys, runtime, engine):
    create(engine, "pro", {"trait": "plan", "op": "eq", "value": "pro"})
    processor, sub = _processor(runtime)
    await identify(client, keys, {"userId": "u-4", "traits": {"plan": "free"}})
    await processor.drain()
    pid = pid_of(engine, "u-4")
    assert members(engine, "pro") == set()
    body = {"userId": "u-4", "event": "Plan Changed", "context": {"traits": {"plan": "pro"}}}
    await send(client, keys, "track", body)
    await processor.drain()
    assert sub.seen[-1].changed_traits == ["plan"]
    assert members(engine, "pro") == {pid}
