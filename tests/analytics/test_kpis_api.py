"""The KPI API: a period filters by day, bad input is a 4xx naming the field (the period's end
before its start, a window of P0D, an unknown metric, a rate above 1, an unknown journey), a
marketer's targets show beside the actual figures, every table comes as CSV, and each chart
carries the numbers of its JSON answer."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from rejse.roles import Role
from tests.analytics.test_charts import texts
from tests.analytics.test_rollups import DAY, NOON, World, world  # noqa: F401 - a fixture
from tests.conftest import auth

BASE = "/api/analytics"


async def two_weeks(w: World) -> None:
    """abandoned-cart: 2 runs on day 0 (one opens, one buys 250 within the window) and 1 run
    a week later; winback: 1 run on day 0, skipped by no consent."""
    w.journey()
    w.journey("winback")
    for n, at in enumerate((NOON, NOON, NOON + 7 * DAY)):
        pid = w.profile()
        run = w.enter("abandoned-cart", pid, at, checkout_id=f"c{n}")
        w.step(run, "wait_1d", at)
        w.send(run, "reminder_1", "abandoned_cart/reminder", at + DAY)
        w.finish(run, "completed", "reminder_1", at + DAY)
        m = w.message(run, "reminder_1")
        if n == 0:
            w.open(m.id, at + DAY + dt.timedelta(hours=1))
        if n == 1:
            await w.aorder(pid, at + 2 * DAY, 250)
    pid = w.profile(email="revoked")
    run = w.enter("winback", pid, NOON, checkout_id="w")
    w.send(run, "reminder_1", "abandoned_cart/reminder", NOON + DAY)


@pytest.fixture
async def data(world: World) -> World:  # noqa: F811
    await two_weeks(world)
    return world


def reader(keys) -> dict[str, str]:
    return auth(keys[Role.analyst])


async def test_a_period_counts_what_was_sent_and_entered_in_it(data, client, keys):
    first_week = {"from": NOON.date().isoformat(), "to": (NOON + 6 * DAY).date().isoformat()}
    r = await client.get(f"{BASE}/journeys/abandoned-cart", headers=reader(keys), params=first_week)
    assert r.status_code == 200, r.text
    body = r.json()
    totals = body["totals"]
    assert body["period"] == first_week
    assert (totals["entered"], totals["delivered"], totals["opened"]) == (2, 2, 1)
    assert (totals["converted"], totals["revenue"], totals["revenue_per_recipient"]) == (
        1,
        250,
        125,
    )
    assert (totals["open_rate"], totals["conversion_rate"], totals["delivery_rate"]) == (
        0.5,
        0.5,
        1.0,
    )
    assert totals["waiting"] == 0
    r = await client.get(f"{BASE}/journeys/abandoned-cart", headers=reader(keys))
    assert (r.json()["totals"]["entered"], r.json()["totals"]["delivered"]) == (3, 3)

    r = await client.get(f"{BASE}/journeys/abandoned-cart/days", headers=reader(keys))
    days = {d["day"]: d for d in r.json()["days"]}
    assert days[NOON.date().isoformat()]["entered"] == 2
    assert days[(NOON + DAY).date().isoformat()]["delivered"] == 2
    assert days[(NOON + 8 * DAY).date().isoformat()]["delivered"] == 1


async def test_the_comparison_has_every_journey_with_its_targets(data, client, keys):
    marketer = auth(keys[Role.marketer])
    r = await client.put(
        f"{BASE}/journeys/abandoned-cart/targets",
        headers=marketer,
        json={"targets": {"conversion_rate": {"min": 0.05}, "unsubscribe_rate": {"max": 0.01}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["targets"] == [
        {"metric": "conversion_rate", "min": 0.05, "max": None, "actual": 0.3333, "met": True},
        {"metric": "unsubscribe_rate", "min": None, "max": 0.01, "actual": 0.0, "met": True},
    ]
    await client.put(
        f"{BASE}/journeys/winback/targets",
        headers=marketer,
        json={"targets": {"delivered": {"min": 1}, "open_rate": {"min": 0.2}}},
    )
    r = await client.get(f"{BASE}/journeys", headers=reader(keys))
    rows = {j["journey"]: j for j in r.json()["journeys"]}
    assert set(rows) == {"abandoned-cart", "winback"}
    assert (rows["abandoned-cart"]["targets_met"], rows["abandoned-cart"]["targets_set"]) == (2, 2)
    win = rows["winback"]
    assert (win["skipped"], win["skipped_reasons"], win["delivered"]) == (1, {"no_consent": 1}, 0)
    assert [(t["metric"], t["met"]) for t in win["targets"]] == [
        ("delivered", False),
        ("open_rate", None),  # nothing delivered: no rate yet
    ]
    r = await client.get(f"{BASE}/journeys/abandoned-cart", headers=reader(keys))
    assert [t["met"] for t in r.json()["targets"]] == [True, True]


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/journeys/abandoned-cart", {"from": "2026-11-30", "to": "2026-11-01"}, "to"),
        ("/journeys", {"from": "2026-11-30", "to": "2026-11-29"}, "to"),
        ("/journeys/abandoned-cart/days", {"from": "30.11.2026"}, "from"),
        ("/templates", {"journey": "nope"}, "journey"),
    ],
)
async def test_bad_periods_and_unknown_journeys_name_the_field(
    data, client, keys, url, params, field
):
    r = await client.get(BASE + url, headers=reader(keys), params=params)
    assert r.status_code in (404, 422), r.text
    assert r.json()["errors"][0]["field"] == field


async def test_unknown_journeys_are_404_naming_the_key(data, client, keys):
    for path in ("", "/steps", "/versions", "/days", "/chart.svg"):
        r = await client.get(f"{BASE}/journeys/nope{path}", headers=reader(keys))
        assert r.status_code == 404, path
        assert r.json()["errors"][0]["field"] == "key"
    r = await client.get(f"{BASE}/journeys/abandoned-cart/steps?version=9", headers=reader(keys))
    assert (r.status_code, r.json()["errors"][0]["field"]) == (404, "version")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"conversion_event": "Order Completed", "attribution_window": "P0D"},
            "attribution_window",
        ),
        ({"attribution_window": "P1M"}, "attribution_window"),
        ({"attribution_window": "five days"}, "attribution_window"),
        ({"conversion_event": ""}, "conversion_event"),
    ],
)
async def test_a_bad_attribution_is_422_and_changes_nothing(data, client, keys, body, field):
    marketer = auth(keys[Role.marketer])
    r = await client.put(f"{BASE}/journeys/abandoned-cart/attribution", headers=marketer, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field
    r = await client.get(f"{BASE}/journeys/abandoned-cart", headers=marketer)
    assert r.json()["settings"] == {
        "conversion_event": "Order Completed",
        "attribution_window": "P5D",
    }


async def test_the_attribution_is_set_per_journey(data, client, keys):
    marketer = auth(keys[Role.marketer])
    body = {"conversion_event": "Subscription Started", "attribution_window": "P3D"}
    r = await client.put(f"{BASE}/journeys/winback/attribution", headers=marketer, json=body)
    assert (r.status_code, r.json()) == (200, body)
    r = await client.get(f"{BASE}/journeys/winback", headers=marketer)
    assert r.json()["settings"] == body
    r = await client.put(f"{BASE}/journeys/nope/attribution", headers=marketer, json=body)
    assert (r.status_code, r.json()["errors"][0]["field"]) == (404, "key")


@pytest.mark.parametrize(
    ("targets", "field"),
    [
        ({"bogus": {"min": 1}}, "targets.bogus"),
        ({"conversion_rate": {"min": 5}}, "targets.conversion_rate.min"),
        ({"open_rate": {}}, "targets.open_rate"),
        ({"revenue": {"min": 10, "max": 5}}, "targets.revenue.max"),
        ({"revenue": {"min": -1}}, "targets.revenue.min"),
        ({"revenue": {"least": 1}}, "targets.revenue.least"),
    ],
)
async def test_bad_targets_are_422_naming_the_metric(data, client, keys, targets, field):
    marketer = auth(keys[Role.marketer])
    r = await client.put(
        f"{BASE}/journeys/abandoned-cart/targets", headers=marketer, json={"targets": targets}
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field
    r = await client.get(f"{BASE}/journeys/abandoned-cart", headers=marketer)
    assert r.json()["targets"] == []


async def test_every_table_downloads_as_csv(data, client, keys):
    for path, rows in (
        ("/journeys", 2),
        ("/journeys/abandoned-cart", 1),
        ("/journeys/abandoned-cart/steps", 4),
        ("/journeys/abandoned-cart/versions", 1),
        ("/journeys/abandoned-cart/days", 4),
        ("/templates", 1),
    ):
        r = await client.get(BASE + path, headers=reader(keys), params={"format": "csv"})
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(r.text)))
        assert len(table) == rows, (path, table)
        assert {"delivered", "open_rate", "revenue"} <= set(table[0])
    r = await client.get(f"{BASE}/templates", headers=reader(keys), params={"format": "csv"})
    [row] = csv.DictReader(io.StringIO(r.text))
    assert (row["template"], row["delivered"], row["skipped_reasons.no_consent"]) == (
        "abandoned_cart/reminder",
        "3",
        "1",
    )


async def test_each_chart_carries_the_numbers_of_its_table(data, client, keys):
    h = reader(keys)
    summary = (await client.get(f"{BASE}/journeys/abandoned-cart", headers=h)).json()["totals"]
    svg = await client.get(f"{BASE}/journeys/abandoned-cart/chart.svg", headers=h)
    assert svg.headers["content-type"] == "image/svg+xml"
    assert {str(summary[m]) for m in ("entered", "delivered", "opened", "converted")} <= set(
        texts(svg.content)
    )
    days = (await client.get(f"{BASE}/journeys/abandoned-cart/days", headers=h)).json()["days"]
    svg = await client.get(f"{BASE}/journeys/abandoned-cart/days/chart.svg?lang=da", headers=h)
    labels = set(texts(svg.content))
    assert {"250", "2", "1"} <= labels
    assert {"sendt", "omsætning"} <= labels
    assert sum(d["revenue"] for d in days) == 250
    svg = await client.get(f"{BASE}/journeys/chart.svg", headers=h)
    assert {"abandoned-cart", "winback", "3", "1"} <= set(texts(svg.content))
    for path in ("/journeys/abandoned-cart/versions", "/templates"):
        svg = await client.get(f"{BASE}{path}/chart.svg", headers=h)
        assert {"3", "1"} <= set(texts(svg.content)), path
    png = await client.get(f"{BASE}/journeys/abandoned-cart/steps/chart.png", headers=h)
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
