"""The funnel routes: JSON, the chart beside it carrying the same numbers, CSV of the same
rows, and bad input answered 422 naming the field."""

from __future__ import annotations

import csv
import io

import pytest

from rejse.models.profiles import STAGES
from rejse.roles import Role
from tests.analytics.test_charts import texts
from tests.analytics.test_funnel import DAY, T0, story
from tests.conftest import auth

BASE = "/api/analytics/funnel"


async def test_funnel_json_chart_and_csv_agree(client, keys, session):
    story(session)
    h = auth(keys[Role.analyst])
    r = await client.get(BASE, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    counts = {row["stage"]: row["profiles"] for row in body["stages"]}
    assert counts == {
        "subscriber": 0,
        "lead": 1,
        "aql": 1,
        "sql": 0,
        "opportunity": 0,
        "customer": 2,
    }
    assert [s["reached"] for s in body["aql_sql_customer"]] == [4, 2, 2]

    svg = await client.get(BASE + "/chart.svg", headers=h)
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    labels = set(texts(svg.content))
    assert {"customer", "AQL", "lead", "1", "2", "0"} <= labels
    da = await client.get(BASE + "/chart.svg", params={"lang": "da"}, headers=h)
    assert {"kunde", "abonnent", "Leadtragt: profiler pr. livscyklusfase"} <= set(texts(da.content))
    png = await client.get(BASE + "/chart.png", headers=h)
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")

    table = await client.get(BASE + "/export.csv", headers=h)
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [row["stage"] for row in rows] == list(STAGES)
    assert {row["stage"]: int(row["profiles"]) for row in rows} == counts


async def test_daily_chart_carries_each_point(client, keys, session):
    story(session)
    h = auth(keys[Role.marketer])
    params = {"from": T0.date().isoformat(), "to": (T0 + 6 * DAY).date().isoformat()}
    r = await client.get(BASE + "/daily", params=params, headers=h)
    assert r.status_code == 200, r.text
    customers = [d["profiles"] for d in r.json()["days"] if d["stage"] == "customer"]
    assert customers == [0, 0, 0, 1, 1, 2, 2]
    svg = await client.get(BASE + "/daily/chart.svg", params=params, headers=h)
    assert {"1", "2"} <= set(texts(svg.content))
    table = await client.get(BASE + "/daily/export.csv", params=params, headers=h)
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert len(rows) == 7 * len(STAGES)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("", {"from": "2026-11-10", "to": "2026-11-09"}, "to"),
        ("/chart.svg", {"from": "2026-11-10", "to": "2026-11-09"}, "to"),
        ("/daily", {"step": "P0D"}, "step"),
        ("/daily/export.csv", {"step": "PT1H"}, "step"),
        ("/daily", {"from": "2026-13-01"}, "from"),
        ("/daily", {"from": "1900-01-01", "to": "2026-01-01"}, "from"),
    ],
)
async def test_bad_input_names_the_field(client, keys, path, params, field):
    r = await client.get(BASE + path, params=params, headers=auth(keys[Role.analyst]))
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_ingest_keys_may_not_read_it(client, keys):
    r = await client.get(BASE, headers=auth(keys[Role.ingest]))
    assert r.status_code == 403
