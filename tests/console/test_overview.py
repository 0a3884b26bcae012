"""The overview on both databases: the last 30 days' KPIs across journeys, from the same
rollups the analytics endpoints read, with the AQLs of the lead funnel; its charts as SVG
carrying the numbers; nothing older than 30 days counted."""

from __future__ import annotations

import datetime as dt
import re

from sqlmodel import Session

from rejse.analytics import rollups
from rejse.db import utcnow
from rejse.models.analytics import AnalyticsDelta
from rejse.roles import Role
from tests.console.conftest import sign_in
from tests.journeys.conftest import abandoned_cart, publish


def _delta(day: dt.date, metric: str, n: int, revenue_units: int = 0) -> AnalyticsDelta:
    return AnalyticsDelta(
        journey_key="abandoned-cart",
        version=1,
        step_id="reminder_1",
        day=day,
        channel="email",
        template="abandoned_cart/reminder",
        metric=metric,
        n=n,
        revenue_units=revenue_units,
    )


def _kpi(html: str, name: str) -> str:
    found = re.search(rf'data-kpi="{name}">([^<]+)<', html)
    assert found, name
    return found.group(1)


async def test_the_overview_shows_the_last_30_days(console, keys, runtime):
    publish(runtime, abandoned_cart())
    today = utcnow().date()
    with Session(runtime.engine) as s:
        s.add_all(
            [
                _delta(today, rollups.MSG_DELIVERED, 40),
                _delta(today, rollups.OPENED, 20),
                _delta(today, rollups.CLICKED, 10),
                _delta(today - dt.timedelta(days=3), rollups.MSG_DELIVERED, 60),
                _delta(today, rollups.CONVERTED + "window", 5, revenue_units=0),
                # 40 days ago: outside the overview's period
                _delta(today - dt.timedelta(days=40), rollups.MSG_DELIVERED, 1000),
            ]
        )
        s.commit()
    await sign_in(console, keys[Role.analyst])
    r = await console.get("/console/overview")
    assert r.status_code == 200
    assert _kpi(r.text, "sent") == "100"
    assert _kpi(r.text, "opened") == "20"
    assert _kpi(r.text, "clicked") == "10"
    assert _kpi(r.text, "converted") == "5"
    assert _kpi(r.text, "aqls") == "0"
    assert "20.0 % af leverede" in r.text  # opened / delivered
    assert today.isoformat() in r.text  # the table behind the chart
    for name in ("daily", "revenue", "leads"):
        assert f'src="/console/overview/chart/{name}.svg"' in r.text
    svg = await console.get("/console/overview/chart/daily.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.startswith("<svg")
    assert ">40<" in svg.text  # the numbers are on the marks
    assert ">60<" in svg.text
