"""next_change, dependencies, audience_issues, the customer leaf, and load_facts."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session

from rejse.audiences.facts import load_facts
from rejse.conditions import (
    RecordedEvent,
    StaticFacts,
    audience_issues,
    dependencies,
    evaluate,
    next_change,
    validate_condition,
)
from rejse.scoring.service import current_score

from .condition_rows import NOW, Row, by_sql, insert

DAY = dt.timedelta(days=1)
US = dt.timedelta(microseconds=1)


def test_next_change_is_the_oldest_counted_event_leaving_its_window():
    facts = StaticFacts(
        events=[
            RecordedEvent("Order Completed", NOW - 80 * DAY, {"currency": "DKK"}),
            RecordedEvent("Order Completed", NOW - 85 * DAY, {"currency": "SEK"}),
            RecordedEvent("Order Completed", NOW - 100 * DAY),  # already out
        ]
    )
    cond = {"event": "Order Completed", "within": "P90D"}
    moment = next_change(cond, facts, now=NOW)
    assert moment == NOW + 5 * DAY + US
    assert evaluate(cond, facts, now=moment - US)
    assert evaluate(cond, facts, now=moment)
    dkk = {"event": "Order Completed", "within": "P90D", "where": {"properties.currency": "DKK"}}
    assert next_change(dkk, facts, now=NOW) == NOW + 10 * DAY + US
    assert evaluate(dkk, facts, now=NOW + 10 * DAY)
    assert not evaluate(dkk, facts, now=NOW + 10 * DAY + US)
    assert next_change({"event": "Order Completed"}, facts, now=NOW) is None  # no window
    assert next_change({"trait": "x", "op": "exists"}, facts, now=NOW) is None


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte", "eq", "ne"])
def test_next_change_days_since_is_the_exact_flip(op):
    last = NOW - 10 * DAY
    facts = StaticFacts(customer={"order_count": 1, "revenue": 5.0, "last_order_at": last})
    cond = {"customer": "days_since_last_order", "op": op, "value": 30}
    moment = next_change(cond, facts, now=NOW)
    assert moment in (last + 30 * DAY, last + 30 * DAY + US)
    assert evaluate(cond, facts, now=moment) != evaluate(cond, facts, now=moment - US)
    assert next_change(cond, StaticFacts(), now=NOW) is None  # no orders: time changes nothing


def test_customer_leaf_in_memory():
    facts = StaticFacts(
        customer={"order_count": 4, "revenue": 1000.0, "average_order_value": 250.0}
    )
    assert evaluate({"customer": "average_order_value", "op": "gte", "value": 250}, facts, now=NOW)
    assert evaluate({"customer": "order_count", "op": "eq", "value": 4.0}, facts, now=NOW)
    none = StaticFacts()
    assert evaluate({"customer": "order_count", "op": "eq", "value": 0}, none, now=NOW)
    assert evaluate({"customer": "revenue", "op": "exists"}, none, now=NOW)
    for name in ("average_order_value", "days_since_first_order", "days_since_last_order"):
        for op in ("eq", "ne", "gt", "lt", "exists"):
            assert not evaluate(
                {"customer": name, "op": op, "value": 1}
                if op != "exists"
                else {"customer": name, "op": op},
                none,
                now=NOW,
            )
        assert evaluate({"customer": name, "op": "exists", "value": False}, none, now=NOW)


@pytest.mark.parametrize(
    ("cond", "field"),
    [
        ({"customer": "ltv", "op": "gt", "value": 1}, "condition.customer"),
        ({"customer": "revenue", "op": "in", "value": [1]}, "condition.op"),
        ({"customer": "revenue", "op": "gt", "value": "1"}, "condition.value"),
        ({"customer": "revenue", "op": "gt", "value": True}, "condition.value"),
        ({"customer": "revenue", "op": "gt"}, "condition.value"),
        ({"customer": "days_since_last_order", "op": "gt", "value": 10**9}, "condition.value"),
        ({"customer": "revenue", "op": "gt", "value": 1, "x": 1}, "condition.x"),
        ({"trait": "a", "op": "eq", "value": [1]}, "condition.value"),
        ({"trait": "a", "op": "eq", "value": 2**64}, "condition.value"),
        ({"trait": "a", "op": "in", "value": [1, {"b": 2}]}, "condition.value[1]"),
        ({"event": "X", "where": {"properties.a": [1]}}, "condition.where.properties.a"),
    ],
)
def test_invalid_new_leaves_name_the_field(cond, field):
    issues = validate_condition(cond)
    assert issues, cond
    assert issues[0].field == field, issues


def test_contains_on_an_object_is_false_and_booleans_do_not_order():
    facts = StaticFacts(traits={"address": {"city": "Aarhus"}, "flag": True})
    assert not evaluate({"trait": "address", "op": "contains", "value": "city"}, facts, now=NOW)
    assert not evaluate({"trait": "flag", "op": "gt", "value": False}, facts, now=NOW)


def test_dependencies_and_audience_issues():
    cond = {
        "all": [
            {"trait": "address.city", "op": "eq", "value": "Aarhus"},
            {"event": "Order Completed", "within": "P90D"},
            {"not": {"event": "Order Refunded"}},
            {"any": [{"audience": "vip"}, {"consent": "email"}]},
        ]
    }
    deps = dependencies(cond)
    assert deps.events == {"Order Completed", "Order Refunded"}
    assert deps.traits == {"address"}
    assert deps.audiences == {"vip"}
    assert deps.consent
    assert deps.timed
    assert not (deps.score)
    assert not (deps.customer)
    assert not (deps.properties)
    assert dependencies({"score": {"gte": 1}}).timed
    assert dependencies({"customer": "revenue", "op": "gt", "value": 1}).customer
    assert not dependencies({"customer": "revenue", "op": "gt", "value": 1}).timed
    assert dependencies({"customer": "days_since_last_order", "op": "gt", "value": 1}).timed
    assert audience_issues(cond) == []
    [issue] = audience_issues(
        {"any": [{"consent": "email"}, {"not": {"property": "total", "op": "exists"}}]}
    )
    assert issue.field == "condition.any[1].not.property"


def test_load_facts_decays_the_score_and_next_change_finds_the_crossing(engine):
    [pid] = insert(engine, [Row(score=(80.0, 10.0, NOW - 30 * DAY))], half_life="P30D")
    with Session(engine) as session:
        facts = load_facts(session, pid, now=NOW)
        assert facts.score == pytest.approx(50.0)  # 80 halved once, plus fit
        assert round(facts.score, 4) == current_score(session, profile_id=pid, now=NOW).score
        cond = {"score": {"gte": 30}}
        moment = next_change(cond, facts, now=NOW)
        assert moment is not None
        assert abs(moment - (NOW + 30 * DAY)) < dt.timedelta(seconds=1)  # 40 -> 20 behaviour
        assert evaluate(cond, load_facts(session, pid, now=moment - US), now=moment - US)
        assert not evaluate(cond, load_facts(session, pid, now=moment), now=moment)
    assert by_sql(engine, cond, now=moment - US) == {pid}
    assert by_sql(engine, cond, now=moment) == set()
    assert next_change({"score": {"gte": 5}}, facts, now=NOW) is None  # fit alone is 10


def test_load_facts_of_erased_and_unknown_profiles(engine):
    [pid] = insert(engine, [Row(traits={"a": 1}, erased=True)])
    with Session(engine) as session:
        assert not load_facts(session, pid, now=NOW).found
        facts = load_facts(session, "prf_unknown", now=NOW)
        assert not facts.found
        assert facts.count_events("X", since=None, where=None) == 0
