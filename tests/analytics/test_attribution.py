"""Attribution rules: the window's edges, the last touch across journeys (send, open, click),
a run's goal credited once when the run ends, a goal before any message, and the per-journey
conversion event and window."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select

from rejse.analytics import kpis
from rejse.models.analytics import AnalyticsConversion
from tests.analytics.test_rollups import DAY, NOON, World, world  # noqa: F401 - a fixture

SECOND = dt.timedelta(seconds=1)


def conversions(w: World) -> list[AnalyticsConversion]:
    with Session(w.engine) as s:
        return list(s.exec(select(AnalyticsConversion).order_by(AnalyticsConversion.at)))


def sent_run(w: World, key: str, at: dt.datetime, pid: str | None = None):
    pid = pid or w.profile()
    run = w.enter(key, pid, at - DAY, checkout_id=f"c-{key}-{pid}")
    w.step(run, "wait_1d", at - DAY)
    assert w.send(run, "reminder_1", "abandoned_cart/reminder", at).status == "sent"
    w.finish(run, "completed", "reminder_1", at)
    return pid, run, w.message(run, "reminder_1")


async def test_the_window_includes_its_last_instant_and_nothing_after(world: World):  # noqa: F811
    world.journey()
    pid, _, m = sent_run(world, "abandoned-cart", NOON)
    other, _, _ = sent_run(world, "abandoned-cart", NOON)
    await world.aorder(pid, NOON + 5 * DAY, 100)
    await world.aorder(other, NOON + 5 * DAY + SECOND, 100)
    [c] = conversions(world)
    assert (c.message_id, c.kind, c.touch, c.revenue_units) == (m.id, "window", "send", 1_000_000)
    world.exact()


async def test_the_last_touch_wins_across_journeys(world: World):  # noqa: F811
    world.journey()
    world.journey("winback")
    pid, _, first = sent_run(world, "abandoned-cart", NOON)
    _, _, second = sent_run(world, "winback", NOON + dt.timedelta(hours=1), pid)
    await world.aorder(pid, NOON + DAY, 10)
    world.click(first.id, NOON + DAY + dt.timedelta(hours=1))
    await world.aorder(pid, NOON + DAY + dt.timedelta(hours=2), 20, total=999)
    a, b = conversions(world)
    assert (a.journey_key, a.message_id, a.touch) == ("winback", second.id, "send")
    assert (b.journey_key, b.message_id, b.touch) == ("abandoned-cart", first.id, "click")
    assert b.revenue_units == 200_000  # `revenue` before `total`
    world.exact()


async def test_a_goal_is_credited_once_when_the_run_converts(world: World):  # noqa: F811
    world.journey()
    pid = world.profile()
    run = world.enter("abandoned-cart", pid, NOON, checkout_id="c1")
    world.step(run, "wait_1d", NOON)
    world.send(run, "reminder_1", "abandoned_cart/reminder", NOON + DAY)
    world.step(run, "wait_2d", NOON + DAY)
    m = world.message(run, "reminder_1")
    world.open(m.id, NOON + DAY + dt.timedelta(hours=1))
    # another checkout's order is no goal of this run: a window conversion
    await world.aorder(pid, NOON + DAY + dt.timedelta(hours=2), 70, checkout_id="other")
    # the run's own order: its goal, left to the run's end
    await world.aorder(pid, NOON + DAY + dt.timedelta(hours=3), "499.50", checkout_id="c1")
    assert [c.kind for c in conversions(world)] == ["window"]
    world.finish(run, "converted", "wait_2d", NOON + DAY + dt.timedelta(hours=3))
    world.finish(run, "converted", "wait_2d", NOON + DAY + dt.timedelta(hours=3))  # retried
    window, goal = conversions(world)
    assert (goal.kind, goal.run_id, goal.message_id, goal.touch) == ("goal", run.id, m.id, "open")
    assert (goal.step_id, goal.revenue_units) == ("reminder_1", 4_995_000)
    assert goal.at == NOON + DAY + dt.timedelta(hours=3)
    figures = world.exact()
    key = ("abandoned-cart", 1, "reminder_1", (NOON + DAY).date(), "email")
    assert figures[(*key, "abandoned_cart/reminder", "converted.goal")] == (1, 4_995_000)
    assert figures[(*key, "abandoned_cart/reminder", "converted.window")] == (1, 700_000)


async def test_a_goal_before_any_message_is_credited_to_the_step(world: World):  # noqa: F811
    world.journey()
    pid = world.profile()
    run = world.enter("abandoned-cart", pid, NOON, checkout_id="c1")
    world.step(run, "wait_1d", NOON)
    await world.aorder(pid, NOON + dt.timedelta(hours=2), 80, checkout_id="c1")
    world.finish(run, "converted", "wait_1d", NOON + dt.timedelta(hours=2))
    [c] = conversions(world)
    assert (c.kind, c.step_id, c.template, c.message_id, c.revenue_units) == (
        "goal",
        "wait_1d",
        "",
        None,
        800_000,
    )
    world.exact()


async def test_each_journey_has_its_conversion_event_and_window(world: World):  # noqa: F811
    world.journey()
    world.journey("trial")
    with Session(world.engine) as s:
        kpis.set_attribution(
            s, "trial", conversion_event="Subscription Started", attribution_window="P1D"
        )
        s.commit()
    world.processor.subscribers[0].rules.invalidate()  # type: ignore[attr-defined]
    pid, _, _ = sent_run(world, "trial", NOON)
    await world.aorder(pid, NOON + dt.timedelta(hours=1), 10)  # not the trial's conversion
    world.store_event(pid, "Subscription Started", NOON + 2 * DAY, value=30)  # after P1D
    world.store_event(pid, "Subscription Started", NOON + dt.timedelta(hours=20), value=30)
    await world.drain()
    [c] = conversions(world)
    assert (c.journey_key, c.at, c.revenue_units) == (
        "trial",
        NOON + dt.timedelta(hours=20),
        300_000,
    )
    world.exact()
