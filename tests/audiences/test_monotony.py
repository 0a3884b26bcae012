"""The processor's shortcut for audiences one event cannot change (`membership.direction`,
`membership.unchanged`): a member of "viewed a product" who views one more stays a member, so
neither the evaluation nor the processor's flush and stamps for that event are needed.

- `direction` is checked against full evaluation before and after random events of random
  profiles (hypothesis): CONST never changes the answer, UP never takes a true one away, DOWN
  never makes a false one true;
- through the real processor: such events are not wanted, a recheck already due is not
  skipped, and after a mixed stream the memberships are those `profiles_matching` selects.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from rejse import wiring
from rejse.audiences.membership import CONST, DOWN, UP, Touch, direction
from rejse.audiences.sql import profiles_matching
from rejse.audiences.subscriber import AudienceSubscriber
from rejse.conditions import RecordedEvent, StaticFacts, dependencies, evaluate
from rejse.db import utcnow
from rejse.events.processor import EventProcessor
from tests.audiences.membership_helpers import create, identify, members, pid_of, track

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
NAMES = ["A", "Order Completed", "Order Refunded"]
TRAITS = ["plan", "country"]
OPS = ["gt", "gte", "lt", "lte", "eq", "ne"]
CUSTOMER = ["order_count", "revenue", "average_order_value", "days_since_last_order"]

times = st.timedeltas(dt.timedelta(days=-3), dt.timedelta(days=40)).map(lambda d: NOW - d)

event_leaf = st.fixed_dictionaries(
    {"event": st.sampled_from(NAMES)},
    optional={
        "within": st.sampled_from(["P1D", "P30D"]),
        "where": st.just({"properties.k": 1}),
        "count": st.sampled_from(
            [
                {"gte": 2},
                {"gt": 0},
                {"lt": 2},
                {"lte": 1},
                {"eq": 1},
                {"ne": 1},
                {"gte": 1, "lt": 3},
            ]
        ),
    },
)
customer_leaf = st.fixed_dictionaries(
    {
        "customer": st.sampled_from([*CUSTOMER, "order_count", "revenue"]),
        "op": st.sampled_from(OPS),
        "value": st.sampled_from([0, 1, 2, 100, 150.5]),
    }
)
trait_leaf = st.fixed_dictionaries(
    {
        "trait": st.sampled_from([*TRAITS, "plan.tier"]),
        "op": st.sampled_from(["eq", "ne"]),
        "value": st.sampled_from(["pro", "DK"]),
    }
)
other_leaf = st.sampled_from(
    [{"consent": "email"}, {"score": {"gte": 5}}, {"audience": "x"}, {"property": "k", "op": "eq"}]
)
conditions = st.recursive(
    st.one_of(
        event_leaf, event_leaf, event_leaf, customer_leaf, customer_leaf, trait_leaf, other_leaf
    ),
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"all": c})
        | st.lists(inner, min_size=1, max_size=3).map(lambda c: {"any": c})
        | inner.map(lambda c: {"not": c})
    ),
    max_leaves=6,
)


def customer(count: int, revenue: float, first: Any, last: Any) -> dict[str, Any]:
    return {
        "order_count": count,
        "revenue": revenue,
        "average_order_value": revenue / count if count else None,
        "first_order_at": first,
        "last_order_at": last,
    }


@st.composite
def profiles(draw: st.DrawFn, cond: dict[str, Any]) -> StaticFacts:
    """A profile with a few events, mostly of the names the condition counts."""
    names = [*NAMES, *sorted(dependencies(cond).events) * 3]
    count = draw(st.integers(0, 3))
    first, last = sorted([draw(times), draw(times)]) if count else (None, None)
    return StaticFacts(
        traits={
            t: draw(st.sampled_from(["pro", "DK", "x"])) for t in TRAITS if draw(st.booleans())
        },
        score=draw(st.sampled_from([0.0, 4.0, 5.0, 9.0])),
        consents=draw(st.sampled_from([{}, {"email": "granted"}, {"email": "denied"}])),
        audiences=draw(st.sampled_from([frozenset(), frozenset({"x"})])),
        events=[
            RecordedEvent(
                draw(st.sampled_from(names)),
                draw(times),
                draw(st.sampled_from([{}, {"k": 1}, {"k": 2}])),
            )
            for _ in range(draw(st.integers(0, 4)))
        ],
        customer=customer(count, draw(st.sampled_from([0.0, 100.0, 150.5])), first, last),
    )


@st.composite
def touched(
    draw: st.DrawFn, before: StaticFacts, cond: dict[str, Any]
) -> tuple[Touch, StaticFacts]:
    """A touch and the profile after an event that makes it (as the processor and the customer
    value subscriber would leave it); mostly of a name the condition counts."""
    deps = dependencies(cond)
    counted = sorted(deps.events) + (["Order Completed", "Order Refunded"] if deps.customer else [])
    name = draw(st.sampled_from([None, *NAMES, *counted * 4]))
    traits = frozenset(t for t in TRAITS if draw(st.integers(0, 3)) == 0)
    consent, score = draw(st.integers(0, 3)) == 0, draw(st.integers(0, 3)) == 0
    events = list(before.events)
    value = dict(before.customer)
    if name is not None:
        at = draw(times)
        events.append(RecordedEvent(name, at, draw(st.sampled_from([{}, {"k": 1}]))))
        amount = draw(st.sampled_from([0.0, 50.5, 100.0]))
        if name == "Order Completed" and draw(st.booleans()):  # else: an order counted before
            first = min(t for t in (value["first_order_at"], at) if t)
            last = max(t for t in (value["last_order_at"], at) if t)
            revenue = value["revenue"] + (amount if draw(st.booleans()) else 0.0)
            value = customer(value["order_count"] + 1, revenue, first, last)
        elif name == "Order Refunded":
            revenue = max(0.0, value["revenue"] - amount)
            value = customer(
                value["order_count"], revenue, value["first_order_at"], value["last_order_at"]
            )
    after = StaticFacts(
        traits={
            **before.traits,
            **{t: draw(st.sampled_from(["pro", "DK", "x"])) for t in traits},
        },
        score=draw(st.sampled_from([0.0, 5.0, 9.0])) if score else before.score,
        consents=draw(st.sampled_from([{}, {"email": "granted"}])) if consent else before.consents,
        audiences=before.audiences,
        events=events,
        customer=value,
    )
    return Touch(event=name, traits=traits, consent=consent, score=score), after


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cond=conditions, data=st.data())
def test_direction_bounds_what_one_event_can_change(cond, data):
    before = data.draw(profiles(cond))
    touch, after = data.draw(touched(before, cond))
    was, now = evaluate(cond, before, now=NOW), evaluate(cond, after, now=NOW)
    way = direction(cond, touch)
    if way == CONST:
        assert was == now
    elif way == UP:
        assert now or not was
    elif way == DOWN:
        assert was or not now


def test_direction_of_the_shapes_marketers_write():
    viewed = Touch(event="Product Viewed")
    order, refund = Touch(event="Order Completed"), Touch(event="Order Refunded")
    assert direction({"event": "Product Viewed"}, viewed) == UP
    assert direction({"event": "Product Viewed", "count": {"lt": 3}}, viewed) == DOWN
    assert direction({"event": "Product Viewed", "count": {"eq": 3}}, viewed) == "any"
    assert direction({"not": {"event": "Product Viewed", "within": "P7D"}}, viewed) == DOWN
    assert direction({"event": "Order Completed"}, viewed) == CONST
    assert direction({"customer": "revenue", "op": "gte", "value": 100}, order) == UP
    assert direction({"customer": "revenue", "op": "gte", "value": 100}, refund) == DOWN
    assert direction({"customer": "order_count", "op": "gte", "value": 2}, refund) == CONST
    assert direction({"customer": "average_order_value", "op": "gte", "value": 2}, order) == "any"
    churn = {"all": [{"event": "Order Completed"}, {"not": {"event": "Order Refunded"}}]}
    assert direction(churn, order) == UP
    assert direction(churn, refund) == DOWN
    plan = {"trait": "plan", "op": "eq", "value": "pro"}
    assert direction(plan, Touch(traits=frozenset({"plan"}))) == "any"
    assert direction(plan, viewed) == CONST


def _processor(runtime: Any, clock: Any = utcnow) -> tuple[EventProcessor, AudienceSubscriber]:
    audiences = AudienceSubscriber(clock=clock)
    subscribers = [
        s if s.name != "audiences" else audiences
        for s in wiring.in_transaction_subscribers(runtime)
    ]
    return EventProcessor(runtime, subscribers=subscribers, dispatchers=[]), audiences


def _wants(engine: Any, sub: AudienceSubscriber, pid: str, name: str) -> bool:
    from tests.audiences.test_membership import _event

    with Session(engine) as s:
        return sub.wants(s, _event(pid, name))


async def test_an_event_that_cannot_change_a_membership_is_not_wanted(
    client, keys, runtime, engine
):
    create(engine, "viewed", {"event": "Product Viewed", "within": "P30D"})
    create(engine, "viewed-twice", {"event": "Product Viewed", "count": {"gte": 2}})
    never_bought = {"not": {"event": "Order Completed"}}
    create(
        engine,
        "never-bought",
        {"all": [{"trait": "plan", "op": "eq", "value": "pro"}, never_bought]},
    )
    processor, sub = _processor(runtime)
    await identify(client, keys, {"userId": "u-1", "traits": {"plan": "pro"}})
    await track(client, keys, "u-1", "Product Viewed")
    await processor.drain()
    pid = pid_of(engine, "u-1")
    assert members(engine, "viewed") == {pid}
    assert members(engine, "never-bought") == {pid}
    assert _wants(engine, sub, pid, "Product Viewed")  # may enter viewed-twice
    await track(client, keys, "u-1", "Product Viewed")
    await processor.drain()
    assert members(engine, "viewed-twice") == {pid}
    assert not _wants(engine, sub, pid, "Product Viewed")  # a member of both stays one
    assert _wants(engine, sub, pid, "Order Completed")  # may leave never-bought
    await track(client, keys, "u-1", "Product Viewed")
    await track(client, keys, "u-1", "Order Completed")
    await processor.drain()
    assert members(engine, "viewed") == members(engine, "viewed-twice") == {pid}
    assert members(engine, "never-bought") == set()
    assert not _wants(engine, sub, pid, "Order Completed")  # a non-member stays outside


async def test_a_recheck_already_due_is_not_skipped(client, keys, runtime, engine):
    """A member whose window ran out before the sweep came: one more event of the other part
    cannot keep them in, so it is evaluated in full and they leave."""
    create(engine, "fresh", {"all": [{"event": "A", "within": "PT1H"}, {"event": "B"}]})
    clock = [utcnow()]
    processor, sub = _processor(runtime, clock=lambda: clock[0])
    await track(client, keys, "u-1", "A", at=clock[0] - dt.timedelta(minutes=58))
    await track(client, keys, "u-1", "B")
    await processor.drain()
    pid = pid_of(engine, "u-1")
    assert members(engine, "fresh") == {pid}
    assert not _wants(engine, sub, pid, "B")
    clock[0] += dt.timedelta(minutes=3)  # A left the window; no sweep has run
    assert _wants(engine, sub, pid, "B")
    await track(client, keys, "u-1", "B")
    await processor.drain()
    assert members(engine, "fresh") == set()


AUDIENCES: dict[str, dict[str, Any]] = {
    "viewers": {"event": "Product Viewed", "within": "P7D", "count": {"gte": 2}},
    "few-views": {"event": "Product Viewed", "count": {"lt": 3}},
    "spenders": {"customer": "revenue", "op": "gte", "value": 200},
    "repeat": {"customer": "order_count", "op": "gte", "value": 2},
    "loyal": {
        "all": [
            {"trait": "country", "op": "in", "value": ["DK", "SE"]},
            {"event": "Order Completed", "within": "P90D"},
            {"not": {"event": "Order Refunded", "within": "P90D"}},
        ]
    },
    "either": {"any": [{"audience": "repeat"}, {"audience": "viewers"}]},
}


async def test_memberships_after_a_mixed_stream_are_those_sql_selects(
    client, keys, runtime, engine
):
    for key, cond in AUDIENCES.items():
        create(engine, key, cond)
    processor, _ = _processor(runtime)
    names = ["Product Viewed", "Order Completed", "Order Refunded", "Product Viewed"]
    for step in range(24):
        user = f"u-{step % 4}"
        if step % 7 == 0:
            country = ("DK", "NO")[step % 2]
            await identify(client, keys, {"userId": user, "traits": {"country": country}})
        name = names[(step * 3 + step // 4) % 4]
        await track(client, keys, user, name, order_id=f"o-{step}", revenue=120, currency="DKK")
        if step % 5 == 4:
            await processor.drain()
    await processor.drain()
    now = utcnow()
    with Session(engine) as s:
        for key, cond in AUDIENCES.items():
            expected = set(s.execute(profiles_matching(s, cond, now=now)).scalars())
            assert members(engine, key) == expected, key
