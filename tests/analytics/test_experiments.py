"""The A/B programme through the API: every split of every journey, the worked example, the
holdout lift, the minimum-sample warning, the winner rule, the chart and bad input.

The runs are written as the journey worker writes them (a `journey_run` row and the split's
`journey_step` row whose outcome is the arm); tests/analytics/test_experiments_e2e.py has the
worker write them itself."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from sqlmodel import Session, select

from activities.journeys import JourneyActivities
from rejse import analytics_deltas as deltas
from rejse.analytics import attribution
from rejse.db import utcnow
from rejse.models.events import Event
from rejse.models.journeys import Journey, JourneyRun, JourneyStep
from rejse.roles import Role
from rejse.runtime import Runtime
from tests.conftest import auth
from tests.journeys.conftest import publish


def split_journey(key: str, splits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A manual journey of split steps in a row, each arm going on to the next split."""
    ids = list(splits)
    steps: dict[str, Any] = {}
    for n, sid in enumerate(ids):
        after = ids[n + 1] if n + 1 < len(ids) else "done"
        spec = copy.deepcopy(splits[sid])
        steps[sid] = {
            "type": "split",
            "hypothesis": spec.pop("hypothesis"),
            "variants": [
                {"key": k, "weight": w, "next": after} for k, w in spec.pop("variants").items()
            ],
            **spec,
        }
    steps["done"] = {"type": "update_profile", "traits": {"done": True}}
    return {
        "key": key,
        "name": key,
        "trigger": {"type": "manual"},
        "exit_when": [{"event": "Order Completed"}],
        "start": ids[0],
        "steps": steps,
    }


def seed(
    runtime: Runtime, journey: str, step: str, arm: str, *, entered: int, converted: int
) -> None:
    """`entered` runs assigned `arm` at `step`, the first `converted` of them converted."""
    with Session(runtime.engine) as s:
        for n in range(entered):
            run_id = f"run_{uuid.uuid4().hex[:24]}"
            run = JourneyRun(
                id=run_id,
                workflow_id=f"journey:{journey}:{run_id}",
                journey_key=journey,
                version=1,
                profile_id=f"prf_{uuid.uuid4().hex[:16]}",
                trigger_event_id=f"manual:{run_id}",
                status="converted" if n < converted else "completed",
                converted=n < converted,
                variant=arm,
            )
            s.add(run)
            s.add(
                JourneyStep(
                    run_id=run_id, journey_key=journey, version=1, step_id=step, outcome=arm
                )
            )
            deltas.arm_entered(s, run, step, arm)  # as the worker's record_outcome does
            if n < converted:
                deltas.arm_converted(s, run, {step: arm}, revenue_units=0)
        s.commit()


def seed_orders(runtime: Runtime, journey: str, step: str, arm: str, revenues: list[float]) -> None:
    """One run per entry of `revenues`, assigned `arm`: a run with revenue > 0 ordered for it
    (an `Order Completed` event on its profile), ended as converted, and its goal recorded by
    attribution as the journey's finish activity records it; 0 is a run that did not buy."""
    with Session(runtime.engine) as s:
        for revenue in revenues:
            run_id = f"run_{uuid.uuid4().hex[:24]}"
            entered = utcnow() - dt.timedelta(hours=1)
            run = JourneyRun(
                id=run_id,
                workflow_id=f"journey:{journey}:{run_id}",
                journey_key=journey,
                version=1,
                profile_id=f"prf_{uuid.uuid4().hex[:16]}",
                trigger_event_id=f"manual:{run_id}",
                entered_at=entered,
                status="converted" if revenue else "completed",
                converted=bool(revenue),
                variant=arm,
            )
            s.add(run)
            s.add(
                JourneyStep(
                    run_id=run_id, journey_key=journey, version=1, step_id=step, outcome=arm
                )
            )
            deltas.arm_entered(s, run, step, arm)
            if revenue:
                evt = f"evt_{uuid.uuid4().hex}"
                s.add(
                    Event(
                        id=evt,
                        message_id=evt,
                        type="track",
                        event="Order Completed",
                        profile_id=run.profile_id,
                        properties={"revenue": revenue, "currency": "DKK"},
                        timestamp=entered + dt.timedelta(minutes=30),
                    )
                )
                s.flush()
                goal = attribution.goal_reached(s, run, at=entered + dt.timedelta(minutes=30))
                deltas.arm_converted(s, run, {step: arm}, revenue_units=goal.revenue_units)
        s.commit()


def texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)  # noqa: S314  # our own renderer's output
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


async def get(client, keys, path: str, role: Role = Role.analyst, **params: Any) -> Any:
    r = await client.get(path, params=params, headers=auth(keys[role]))
    assert r.status_code == 200, r.text
    return r.json()


def arm(body: dict[str, Any], key: str) -> dict[str, Any]:
    [found] = [a for a in body["arms"] if a["key"] == key]
    return found


WORT = split_journey(
    "wort",
    {
        "trial": {
            "hypothesis": "St. John's Wort improves more patients than placebo",
            "variants": {"placebo": 1, "wort": 1},
        }
    },
)


async def test_the_worked_example_and_the_minimum_sample_warning(runtime, client, keys):
    """Montgomery & Runger's St. John's Wort example (tests/analytics/test_stats.py has the
    hand computation): placebo 19/100, treatment 27/100, z0 = 1.3442, P = 0.1789, not
    significant at 0.05.

    Sample: from the control's 19 % by 20 points (mde=0.2) Fleiss' formula needs 80 per arm
    (79.6 rounded up), so 100 per arm reach it and the test is inconclusive. By 2 points (the
    default mde) it needs (1.95996 sqrt(2 * 0.2 * 0.8) + 0.84162 sqrt(0.19 * 0.81 + 0.21 *
    0.79))^2 / 0.02^2 = 6,278 per arm: each arm is warned about and the experiment runs on."""
    publish(runtime, WORT)
    seed(runtime, "wort", "trial", "placebo", entered=100, converted=19)
    seed(runtime, "wort", "trial", "wort", entered=100, converted=27)

    body = await get(client, keys, "/api/experiments/wort/trial", mde=0.2)
    assert body["hypothesis"] == "St. John's Wort improves more patients than placebo"
    assert body["control"] == "placebo"
    assert [(a["key"], a["role"]) for a in body["arms"]] == [
        ("placebo", "control"),
        ("wort", "treatment"),
    ]
    placebo, wort = arm(body, "placebo"), arm(body, "wort")
    assert (placebo["entered"], placebo["converted"], placebo["conversion_rate"]) == (100, 19, 0.19)
    assert (wort["entered"], wort["converted"], wort["conversion_rate"]) == (100, 27, 0.27)
    assert wort["interval"]["low"] == pytest.approx(0.1927, abs=1e-4)  # Wilson of 27/100
    assert wort["interval"]["high"] == pytest.approx(0.3643, abs=1e-4)
    test = wort["vs_control"]
    assert test["against"] == "placebo"
    assert test["z"] == pytest.approx(1.3442, abs=1e-4)
    assert test["p_value"] == pytest.approx(0.1789, abs=1e-4)
    assert test["difference"] == pytest.approx(0.08)
    assert test["relative_lift"] == pytest.approx(0.4211, abs=1e-4)
    assert test["significant"] is False
    assert body["sample"] == {
        "required_per_arm": 80,
        "baseline": 0.19,
        "baseline_from": "placebo",
        "smallest_arm": 100,
        "reached": True,
    }
    assert body["status"] == "inconclusive"
    assert body["result"]["winner"] is None
    assert body["warnings"] == []

    default = await get(client, keys, "/api/experiments/wort/trial")
    assert default["parameters"]["mde"] == 0.02
    assert default["sample"]["required_per_arm"] == 6278
    assert default["sample"]["reached"] is False
    assert default["status"] == "running"
    below = [w for w in default["warnings"] if w["code"] == "below_sample"]
    assert [w["arm"] for w in below] == ["placebo", "wort"]
    assert below[0]["message"]["en"] == (
        "Arm 'placebo' has 100 of the 6,278 recipients needed per arm: wait before reading the "
        "result"
    )
    assert "100 af de 6.278 modtagere" in below[0]["message"]["da"]
    assert all(a["below_sample"] for a in default["arms"])

    listed = await get(client, keys, "/api/experiments", Role.marketer)
    [row] = listed["experiments"]
    assert row["journey"] == "wort"
    assert row["step"] == "trial"
    assert row["hypothesis"] == WORT["steps"]["trial"]["hypothesis"]
    assert row["status"] == "running"
    assert row["sample"]["required_per_arm"] == 6278
    assert row["result"]["comparisons"] == [
        {
            "arm": "wort",
            "against": "placebo",
            "difference": 0.08,
            "p_value": test["p_value"],
            "significant": False,
        }
    ]
    assert row["warnings"] == ["below_sample", "below_sample"]


async def test_the_chart_carries_the_numbers_of_the_json(runtime, client, keys):
    publish(runtime, WORT)
    seed(runtime, "wort", "trial", "placebo", entered=100, converted=19)
    seed(runtime, "wort", "trial", "wort", entered=100, converted=27)
    body = await get(client, keys, "/api/experiments/wort/trial")
    r = await client.get("/api/experiments/wort/trial/chart.svg", headers=auth(keys[Role.analyst]))
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/svg+xml"
    labels = set(texts(r.content))
    for a in body["arms"]:
        assert f"{a['key']} (n={a['entered']})" in labels
        assert f"{a['conversion_rate']:.2%}" in labels
        assert f"{a['interval']['low']:.2%}" in labels
        assert f"{a['interval']['high']:.2%}" in labels
    assert WORT["steps"]["trial"]["hypothesis"] in labels
    assert "wort / trial: Conversion per arm with 95 % intervals" in labels
    da = await client.get(
        "/api/experiments/wort/trial/chart.svg",
        params={"lang": "da"},
        headers=auth(keys[Role.marketer]),
    )
    assert "wort / trial: Konvertering pr. arm med 95 %-intervaller" in texts(da.content)
    png = await client.get(
        "/api/experiments/wort/trial/chart.png", headers=auth(keys[Role.analyst])
    )
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")


async def test_a_winner_only_when_significant_and_the_sample_is_reached(runtime, client, keys):
    """200/1000 against 250/1000: z = 2.6774, p = 0.0074, significant at 0.05. To see 5 points
    from 20 % needs 1,094 per arm, so at 1,000 there is no winner yet, only a warning; 6 points
    need 772, and then the treatment wins."""
    publish(
        runtime,
        split_journey(
            "subject",
            {"s": {"hypothesis": "a question lifts orders", "variants": {"a": 1, "b": 1}}},
        ),
    )
    seed(runtime, "subject", "s", "a", entered=1000, converted=200)
    seed(runtime, "subject", "s", "b", entered=1000, converted=250)

    early = await get(client, keys, "/api/experiments/subject/s", mde=0.05)
    assert early["sample"]["required_per_arm"] == 1094
    assert arm(early, "b")["vs_control"]["significant"] is True
    assert arm(early, "b")["vs_control"]["p_value"] == pytest.approx(0.00742, abs=1e-5)
    assert early["result"] == {
        "winner": None,
        "significant": False,
        "comparisons": [
            {
                "arm": "b",
                "against": "a",
                "difference": 0.05,
                "p_value": arm(early, "b")["vs_control"]["p_value"],
                "significant": True,
            }
        ],
    }
    assert early["status"] == "running"
    [peek] = [w for w in early["warnings"] if w["code"] == "not_yet_significant"]
    assert peek["arm"] == "b"
    assert "p = 0.0074" in peek["message"]["en"]
    assert "p = 0,0074" in peek["message"]["da"]

    done = await get(client, keys, "/api/experiments/subject/s", mde=0.06)
    assert done["sample"]["required_per_arm"] == 772
    assert done["result"]["winner"] == "b"
    assert done["status"] == "significant"
    assert done["warnings"] == []
    listed = await get(client, keys, "/api/experiments", mde=0.06, status="significant")
    assert [(e["journey"], e["result"]["winner"]) for e in listed["experiments"]] == [
        ("subject", "b")
    ]
    assert (await get(client, keys, "/api/experiments", mde=0.06, status="running")) == {
        "parameters": listed["parameters"],
        "experiments": [],
    }

    # the control wins when it beats the treatment: 250/1000 against 200/1000
    publish(
        runtime,
        split_journey("worse", {"s": {"hypothesis": "b is better", "variants": {"a": 1, "b": 1}}}),
    )
    seed(runtime, "worse", "s", "a", entered=1000, converted=250)
    seed(runtime, "worse", "s", "b", entered=1000, converted=200)
    worse = await get(client, keys, "/api/experiments/worse/s", mde=0.06)
    assert worse["result"]["winner"] == "a"


async def test_revenue_per_arm_from_the_goals_attribution_recorded(runtime, client, keys):
    """a: 4 runs, two bought for 100 and 300 DKK; b: 4 runs, one bought for 200. By hand:
    a's revenue 400, per recipient 100, sample variance (100^2 + 300^2 - 4 * 100^2) / 3 =
    20,000, se = sqrt(20,000 / 4) = 70.711, 95 %: 100 -+ 138.59; b's 200, per recipient 50,
    variance (200^2 - 4 * 50^2) / 3 = 10,000; b - a = -50, Welch se = sqrt(20,000/4 +
    10,000/4) = 86.603, 95 %: -50 -+ 169.74."""
    publish(
        runtime,
        split_journey("rev", {"s": {"hypothesis": "b sells more", "variants": {"a": 1, "b": 1}}}),
    )
    seed_orders(runtime, "rev", "s", "a", [100, 0, 300, 0])
    seed_orders(runtime, "rev", "s", "b", [0, 200, 0, 0])
    body = await get(client, keys, "/api/experiments/rev/s")
    a, b = arm(body, "a"), arm(body, "b")
    assert (a["converted"], a["revenue"], a["revenue_per_recipient"]) == (2, 400.0, 100.0)
    assert a["revenue_interval"]["low"] == pytest.approx(100 - 138.59, abs=0.01)
    assert a["revenue_interval"]["high"] == pytest.approx(100 + 138.59, abs=0.01)
    assert (b["converted"], b["revenue"], b["revenue_per_recipient"]) == (1, 200.0, 50.0)
    vs = b["vs_control"]
    assert vs["revenue_per_recipient_difference"] == -50.0
    assert vs["revenue_interval"]["low"] == pytest.approx(-50 - 169.74, abs=0.01)


async def test_the_holdout_lift(runtime, client, keys):
    """Variants a 60/500 (12 %) and b 70/500 (14 %), holdout 10/200 (5 %). Everyone who got the
    journey, 130/1000 = 13 %, against the holdout's 5 %: difference 0.08, pooled p =
    140/1200 = 0.11667, se = sqrt(0.11667 * 0.88333 * (1/200 + 1/1000)) = 0.024866,
    z = 0.08 / 0.024866 = 3.2172, p = 0.0013; relative lift 0.13 / 0.05 - 1 = 160 %; the
    journey made 0.08 * 1000 = 80 conversions that would not have happened. b against the
    control a is not significant (z = 0.9403, p = 0.3471).

    With mde=0.1 from a's 12 %, 221 recipients per arm are needed: a and b have them (the test
    is inconclusive), the holdout's 200 do not, and it is warned about."""
    publish(
        runtime,
        split_journey(
            "held",
            {
                "s": {
                    "hypothesis": "a reminder with a discount converts more",
                    "variants": {"a": 5, "b": 5},
                    "holdout": {"weight": 2, "window": "P7D"},
                }
            },
        ),
    )
    seed(runtime, "held", "s", "a", entered=500, converted=60)
    seed(runtime, "held", "s", "b", entered=500, converted=70)
    seed(runtime, "held", "s", "holdout", entered=200, converted=10)

    body = await get(client, keys, "/api/experiments/held/s", mde=0.1)
    assert [(a["key"], a["role"], a["weight"]) for a in body["arms"]] == [
        ("a", "control", 5.0),
        ("b", "treatment", 5.0),
        ("holdout", "holdout", 2.0),
    ]
    lift = body["holdout_lift"]
    assert (lift["treated"], lift["holdout"]) == (1000, 200)
    assert lift["difference"] == pytest.approx(0.08)
    assert lift["z"] == pytest.approx(3.2172, abs=1e-4)
    assert lift["p_value"] == pytest.approx(0.00129, abs=1e-5)
    assert lift["significant"] is True
    assert lift["relative_lift"] == pytest.approx(1.6)
    assert lift["incremental_conversions"] == pytest.approx(80.0)
    assert lift["sample_reached"] is False
    b = arm(body, "b")
    assert b["vs_control"]["z"] == pytest.approx(0.9403, abs=1e-4)
    assert b["vs_holdout"]["z"] == pytest.approx(3.3810, abs=1e-4)  # 70/500 against 10/200
    assert arm(body, "holdout")["vs_holdout"] is None
    assert body["sample"]["required_per_arm"] == 221
    assert body["sample"]["reached"] is True
    assert body["status"] == "inconclusive"
    assert [(w["code"], w["arm"]) for w in body["warnings"]] == [("below_sample", "holdout")]


async def test_one_variant_against_the_holdout(runtime, client, keys):
    """With one variant the question is the holdout lift: the holdout is the reference arm.
    130/1000 against 10/200 (z = 3.2172 as above); from the holdout's 5 % by 10 points, 141
    per arm are needed, both have them, and the journey wins."""
    publish(
        runtime,
        split_journey(
            "solo",
            {
                "s": {
                    "hypothesis": "the journey converts more than doing nothing",
                    "variants": {"journey": 5},
                    "holdout": {"weight": 1},
                }
            },
        ),
    )
    seed(runtime, "solo", "s", "journey", entered=1000, converted=130)
    seed(runtime, "solo", "s", "holdout", entered=200, converted=10)
    body = await get(client, keys, "/api/experiments/solo/s", mde=0.1)
    assert body["reference"] == "holdout"
    assert body["sample"]["required_per_arm"] == 141
    assert body["sample"]["baseline_from"] == "holdout"
    assert arm(body, "journey")["vs_holdout"]["z"] == pytest.approx(3.2172, abs=1e-4)
    assert arm(body, "journey")["vs_control"] is None
    assert body["result"]["winner"] == "journey"
    assert body["status"] == "significant"


async def test_every_split_of_every_journey_with_its_status(runtime, client, keys):
    """Two split steps in one journey are two experiments; an archived journey's split that
    never reached its sample is stopped; a split with no runs yet needs a baseline; a split
    whose definition changed between versions says so."""
    two = split_journey(
        "two",
        {
            "first": {"hypothesis": "a short subject line wins", "variants": {"x": 1, "y": 1}},
            "second": {"hypothesis": "an image lifts clicks", "variants": {"plain": 1, "img": 1}},
        },
    )
    publish(runtime, two)
    changed = copy.deepcopy(two)
    changed["steps"]["second"]["variants"][1]["weight"] = 3
    publish(runtime, changed, new_version=True)
    gone = split_journey("gone", {"s": {"hypothesis": "old idea", "variants": {"p": 1, "q": 1}}})
    publish(runtime, gone)
    seed(runtime, "two", "first", "x", entered=10, converted=1)
    seed(runtime, "two", "first", "y", entered=12, converted=3)
    seed(runtime, "gone", "s", "p", entered=5, converted=1)
    seed(runtime, "gone", "s", "q", entered=5, converted=2)
    with Session(runtime.engine) as s:
        row = s.get(Journey, "gone")
        assert row is not None
        row.status = "archived"
        s.add(row)
        s.commit()

    listed = await get(client, keys, "/api/experiments")
    rows = {(e["journey"], e["step"]): e for e in listed["experiments"]}
    assert list(rows) == [("gone", "s"), ("two", "first"), ("two", "second")]
    assert rows[("two", "first")]["hypothesis"] == "a short subject line wins"
    assert [(a["key"], a["entered"], a["converted"]) for a in rows[("two", "first")]["arms"]] == [
        ("x", 10, 1),
        ("y", 12, 3),
    ]
    assert rows[("two", "first")]["status"] == "running"
    assert rows[("gone", "s")]["status"] == "stopped"
    assert rows[("gone", "s")]["live"] is False
    second = rows[("two", "second")]
    assert second["sample"]["required_per_arm"] is None
    assert second["warnings"] == ["no_baseline", "versions_differ"]

    detail = await get(client, keys, "/api/experiments/two/second")
    assert detail["versions"] == [1, 2]
    assert detail["version"] == 2
    assert [a["weight"] for a in detail["arms"]] == [1.0, 3.0]
    [no_baseline] = [w for w in detail["warnings"] if w["code"] == "no_baseline"]
    assert "?baseline=" in no_baseline["message"]["en"]
    planned = await get(client, keys, "/api/experiments/two/second", baseline=0.05)
    assert planned["sample"]["required_per_arm"] == 2213
    assert planned["sample"]["baseline_from"] == "parameter"
    relative = await get(
        client, keys, "/api/experiments/two/second", baseline=0.05, mde=0.4, mde_kind="relative"
    )
    assert relative["sample"]["required_per_arm"] == 2213
    stopped = await get(client, keys, "/api/experiments", status="stopped")
    assert [e["journey"] for e in stopped["experiments"]] == ["gone"]


async def test_a_run_passing_a_split_twice_counts_once(runtime, client, keys):
    """A loop through a wait brings a run back to the split: the step log has the step twice
    (the same arm both times); the arm counts the run once."""
    publish(runtime, WORT)
    seed(runtime, "wort", "trial", "placebo", entered=3, converted=1)
    seed(runtime, "wort", "trial", "wort", entered=2, converted=2)
    with Session(runtime.engine) as s:
        for run in s.exec(select(JourneyRun)).all():
            s.add(
                JourneyStep(
                    run_id=run.id,
                    journey_key="wort",
                    version=1,
                    step_id="trial",
                    outcome=run.variant,
                )
            )
        s.commit()
    body = await get(client, keys, "/api/experiments/wort/trial")
    assert [(a["key"], a["entered"], a["converted"]) for a in body["arms"]] == [
        ("placebo", 3, 1),
        ("wort", 2, 2),
    ]


async def test_three_arms_share_alpha(runtime, client, keys):
    """Two treatment arms against the control: each test is at 0.05 / 2 = 0.025 (Bonferroni),
    so b's p = 0.0421 (40/200 against 25/200: z = 2.0330) is no longer significant; the sample
    is planned at alpha 0.025 too."""
    publish(
        runtime,
        split_journey(
            "three", {"s": {"hypothesis": "b or c beat a", "variants": {"a": 1, "b": 1, "c": 1}}}
        ),
    )
    seed(runtime, "three", "s", "a", entered=200, converted=25)
    seed(runtime, "three", "s", "b", entered=200, converted=40)
    seed(runtime, "three", "s", "c", entered=200, converted=26)
    body = await get(client, keys, "/api/experiments/three/s", mde=0.15)
    assert body["parameters"]["alpha_per_test"] == 0.025
    b = arm(body, "b")["vs_control"]
    assert b["p_value"] == pytest.approx(0.0421, abs=1e-4)
    assert b["significant"] is False
    assert body["result"]["winner"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"mde": 0}, "mde"),
        ({"mde": 1.5}, "mde"),  # an absolute difference of rates past 1
        ({"mde": 11, "mde_kind": "relative"}, "mde"),
        ({"mde": "nan"}, "mde"),
        ({"mde_kind": "percent"}, "mde_kind"),
        ({"alpha": 0}, "alpha"),
        ({"alpha": 1}, "alpha"),
        ({"power": 1}, "power"),
        ({"power": 0.04}, "power"),  # not above alpha
        ({"baseline": 0}, "baseline"),
        ({"status": "won"}, "status"),
    ],
)
async def test_bad_input_names_the_field(runtime, client, keys, params, field):
    publish(runtime, WORT)
    for path in ("/api/experiments", "/api/experiments/wort/trial"):
        if path != "/api/experiments" and field == "status":
            continue
        r = await client.get(path, params=params, headers=auth(keys[Role.analyst]))
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_unknown_journey_or_step_is_404_naming_it(runtime, client, keys):
    publish(runtime, WORT)
    h = auth(keys[Role.analyst])
    for path, field in (
        ("/api/experiments/nope/trial", "journey"),
        ("/api/experiments/wort/nope", "step"),
        ("/api/experiments/wort/done", "step"),  # a step, but no split
        ("/api/experiments/nope/trial/chart.svg", "journey"),
        ("/api/experiments/wort/done/chart.png", "step"),
    ):
        r = await client.get(path, headers=h)
        assert r.status_code == 404, (path, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field]
    assert (await client.get("/api/experiments", headers=auth(keys[Role.sales]))).status_code == 403


def test_the_arms_counters_match_a_recount_from_the_raw_rows(runtime):
    """The worker's own activities keep the arms' counters: an arm is counted once per run
    (a retried outcome and a second pass through the split add nothing), a goal adds the run's
    conversion and its order's revenue; the counters equal `recount_arms` over the step log,
    the runs and the goal conversions, and the experiment read from them shows the same."""
    from rejse.analytics import rollups
    from rejse.analytics.experiments import Params, experiment
    from rejse.journeys import runtypes as rt

    publish(runtime, WORT)
    acts = JourneyActivities(runtime)
    start = utcnow() - dt.timedelta(hours=2)
    plan = [("placebo", 0.0), ("placebo", 120.5), ("wort", 99.99), ("wort", 0.0), ("wort", 7.0)]
    with Session(runtime.engine) as s:
        for n, (_arm, revenue) in enumerate(plan):
            run_id = f"run_{n:024d}"
            run = JourneyRun(
                id=run_id,
                workflow_id=f"journey:wort:{run_id}",
                journey_key="wort",
                version=1,
                profile_id=f"prf_{n:016d}",
                trigger_event_id=f"manual:{run_id}",
                entered_at=start,
                status="running",
            )
            s.add(run)
            if revenue:
                s.add(
                    Event(
                        id=f"evt_{n:024d}",
                        message_id=f"evt_{n:024d}",
                        type="track",
                        event="Order Completed",
                        profile_id=run.profile_id,
                        properties={"revenue": revenue, "currency": "DKK"},
                        timestamp=start + dt.timedelta(minutes=30),
                    )
                )
        s.commit()
    for n, (arm_key, revenue) in enumerate(plan):
        run_id = f"run_{n:024d}"
        for visit in range(2):  # a loop brings the run back to the split
            acts.record_step(
                rt.StepRecord(
                    run_id=run_id,
                    journey_key="wort",
                    version=1,
                    step_id="trial",
                    profile_id=f"prf_{n:016d}",
                    step_type="split",
                    at=start + dt.timedelta(minutes=visit),
                )
            )
            outcome = rt.OutcomeRecord(
                run_id=run_id, step_id="trial", outcome=arm_key, variant=arm_key
            )
            acts.record_outcome(outcome)
            acts.record_outcome(outcome)  # a retried activity
        acts.finish_run(
            rt.FinishRecord(
                run_id=run_id,
                journey_key="wort",
                profile_id=f"prf_{n:016d}",
                status="converted" if revenue else "completed",
                step_id="done",
                at=start + dt.timedelta(minutes=40),
            )
        )

    with Session(runtime.engine) as s:
        kept = {
            k: v
            for k, v in rollups.current(s, journey_key="wort").items()
            if k[6].startswith("arm.")
        }
        assert kept == rollups.recount_arms(s, journey_key="wort")
        day = start.date()
        assert kept == {
            ("wort", 1, "trial", day, "", "", "arm.entered:placebo"): (2, 0),
            ("wort", 1, "trial", day, "", "", "arm.converted:placebo"): (1, 1_205_000),
            ("wort", 1, "trial", day, "", "", "arm.revenue_sq:placebo"): (0, 145_202_500),
            ("wort", 1, "trial", day, "", "", "arm.entered:wort"): (3, 0),
            ("wort", 1, "trial", day, "", "", "arm.converted:wort"): (2, 1_069_900),
            ("wort", 1, "trial", day, "", "", "arm.revenue_sq:wort"): (0, 100_470_001),
        }
        body = experiment(s, journey="wort", step="trial", params=Params())
    got = {a["key"]: (a["entered"], a["converted"], a["revenue"]) for a in body["arms"]}
    assert got == {"placebo": (2, 1, 120.5), "wort": (3, 2, 106.99)}
    rollups.fold(runtime.engine)  # folded or not, the same figures
    with Session(runtime.engine) as s:
        assert experiment(s, journey="wort", step="trial", params=Params())["arms"] == body["arms"]


async def test_the_experiment_tables_as_csv(runtime, client, keys):
    """The list (one row per experiment and arm) and the detail (one row per arm) as CSV with
    the numbers of their JSON."""
    import csv
    import io

    publish(runtime, WORT)
    seed(runtime, "wort", "trial", "placebo", entered=100, converted=19)
    seed(runtime, "wort", "trial", "wort", entered=100, converted=27)
    h = auth(keys[Role.analyst])
    r = await client.get("/api/experiments", params={"format": "csv"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["arm"], x["entered"], x["converted"], x["status"]) for x in rows] == [
        ("placebo", "100", "19", "running"),
        ("wort", "100", "27", "running"),
    ]
    r = await client.get("/api/experiments/wort/trial", params={"format": "csv"}, headers=h)
    assert r.status_code == 200, r.text
    detail = await get(client, keys, "/api/experiments/wort/trial")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["key"] for x in rows] == ["placebo", "wort"]
    assert rows[1]["vs_control_p_value"] == str(arm(detail, "wort")["vs_control"]["p_value"])
    assert rows[0]["interval_low"] == str(arm(detail, "placebo")["interval"]["low"])
    r = await client.get("/api/experiments", params={"format": "xml"}, headers=h)
    assert r.status_code == 422
    assert "format" in r.text
