"""Customer value on the profile, kept by the real event processor (`wiring.event_processor`)
from `Order Completed` / `Order Refunded` as they arrive through the /v1 store path."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session

from rejse import wiring
from rejse.events.ingest import accept, split_batch
from rejse.models.profiles import Profile
from rejse.profiles.gdpr import erase_profile
from rejse.profiles.service import find_by_identifier
from rejse.profiles.value import amount_of

T0 = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)


def send(runtime, *messages: dict[str, Any]) -> int:
    """Store messages the way /v1/batch does."""
    for m in messages:
        m.setdefault("messageId", uuid.uuid4().hex)
    parsed = split_batch(orjson.dumps({"batch": list(messages)}))
    assert not parsed.errors, parsed.errors
    return accept(runtime.engine, parsed.rows, parsed.buckets)[0]


def order(user: str, at: dt.datetime, *, event: str = "Order Completed", **props: Any) -> dict:
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "properties": props,
        "timestamp": at.isoformat(),
    }


async def process(runtime) -> int:
    return await wiring.event_processor(runtime).drain()


def profile(runtime, user: str) -> Profile:
    with Session(runtime.engine) as s:
        pid = find_by_identifier(s, type="user_id", value=user)
        assert pid is not None
        row = s.get(Profile, pid)
        assert row is not None
        return row


def value(p: Profile) -> tuple:
    return (p.order_count, p.revenue, p.currency, p.first_order_at, p.last_order_at)


async def test_orders_and_refunds_make_the_value(runtime):
    send(
        runtime,
        order("u1", T0 + dt.timedelta(days=5), order_id="o2", total=50, currency="dkk"),
        order("u1", T0, order_id="o1", revenue="120.50", total=999, currency="DKK"),
        order("u1", T0 + dt.timedelta(days=2), order_id="o3", value=10.25),
        order("u1", T0 + dt.timedelta(days=6), event="Order Refunded", order_id="o2", total=20),
        {"type": "track", "userId": "u1", "event": "Product Viewed", "properties": {"total": 5}},
    )
    await process(runtime)
    p = profile(runtime, "u1")
    # revenue first, then total, then value; out-of-order timestamps give min/max
    assert value(p) == (3, 160.75, "DKK", T0, T0 + dt.timedelta(days=5))


async def test_refund_never_below_zero_and_keeps_order_count(runtime):
    send(runtime, order("u2", T0, order_id="a", revenue=30, currency="EUR"))
    await process(runtime)
    send(
        runtime,
        order("u2", T0 + dt.timedelta(days=1), event="Order Refunded", order_id="a", revenue=30),
        order("u2", T0 + dt.timedelta(days=2), event="Order Refunded", order_id="a", total=30),
    )
    await process(runtime)
    assert value(profile(runtime, "u2"))[:3] == (1, 0.0, "EUR")


async def test_other_currency_counts_the_order_not_its_amount(runtime):
    send(
        runtime,
        order("u3", T0, order_id="1", revenue=100, currency="DKK"),
        order("u3", T0 + dt.timedelta(hours=1), order_id="2", revenue=40, currency="EUR"),
        order("u3", T0 + dt.timedelta(hours=2), order_id="3", revenue=7, currency="kroner"),
        order("u3", T0 + dt.timedelta(hours=3), event="Order Refunded", revenue=40, currency="EUR"),
    )
    await process(runtime)
    assert value(profile(runtime, "u3"))[:3] == (3, 100.0, "DKK")


async def test_unusable_amounts_are_ignored_but_the_order_counts(runtime):
    send(
        runtime,
        order("u4", T0, order_id="1", revenue="lots"),
        order("u4", T0, order_id="2", revenue=True),
        order("u4", T0, order_id="3", total=-5),
        order("u4", T0, order_id="4", value={"amount": 3}),
        order("u4", T0, order_id="5", revenue="1e999"),
        order("u4", T0, order_id="6", revenue=None, total=" 12.5 "),
    )
    await process(runtime)
    assert value(profile(runtime, "u4"))[:2] == (6, 12.5)
    assert amount_of({"revenue": float("nan")}) is None


async def test_each_order_counts_once(runtime):
    """The same delivery twice (one messageId) is stored once; the same order under another
    messageId (an export imported after the webhook) is not counted again."""
    message = {**order("u5", T0, order_id="1001", revenue=80, currency="DKK"), "messageId": "m-1"}
    assert send(runtime, dict(message)) == 1
    assert send(runtime, dict(message)) == 0
    await process(runtime)
    send(runtime, order("u5", T0, order_id="1001", revenue=80, currency="DKK"))
    send(runtime, order("u5", T0, order_id=1001, revenue=80, currency="DKK"))
    await process(runtime)
    # within one batch too
    send(
        runtime,
        order("u5", T0, order_id="1002", revenue=5, currency="DKK"),
        order("u5", T0, order_id="1002", revenue=5, currency="DKK"),
    )
    await process(runtime)
    assert value(profile(runtime, "u5"))[:2] == (2, 85.0)


async def test_merge_adds_the_merged_profiles_value_once(runtime):
    send(
        runtime,
        order("guest", T0, order_id="g1", revenue=100, currency="DKK"),
        {"type": "identify", "anonymousId": "anon-m", "traits": {"email": "m@example.com"}},
    )
    send(
        runtime,
        {
            "type": "track",
            "anonymousId": "anon-m",
            "event": "Order Completed",
            "properties": {"order_id": "a1", "revenue": 20, "currency": "DKK"},
            "timestamp": (T0 - dt.timedelta(days=30)).isoformat(),
        },
    )
    await process(runtime)
    # the order event that merges the two profiles is counted on top, once
    send(
        runtime,
        {
            "type": "track",
            "userId": "guest",
            "anonymousId": "anon-m",
            "event": "Order Completed",
            "properties": {"order_id": "m1", "revenue": 1, "currency": "DKK"},
            "timestamp": (T0 + dt.timedelta(days=1)).isoformat(),
        },
    )
    await process(runtime)
    p = profile(runtime, "guest")
    with Session(runtime.engine) as s:
        assert find_by_identifier(s, type="anonymous_id", value="anon-m") == p.id
        assert s.scalar(sa.select(sa.func.count()).select_from(Profile)) == 1
    assert value(p) == (3, 121.0, "DKK", T0 - dt.timedelta(days=30), T0 + dt.timedelta(days=1))


async def test_erase_clears_the_value(runtime):
    send(runtime, order("u6", T0, order_id="1", revenue=100, currency="DKK"))
    await process(runtime)
    pid = profile(runtime, "u6").id
    with Session(runtime.engine) as s:
        erase_profile(s, profile_id=pid, secret=runtime.settings.secret_key, erasers=[])
        s.commit()
    with Session(runtime.engine) as s:
        p = s.get(Profile, pid)
        assert p is not None
        assert p.erased_at is not None
        assert value(p) == (0, 0.0, None, None, None)
