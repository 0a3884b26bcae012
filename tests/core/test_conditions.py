import datetime as dt

import pytest

from rejse.conditions import RecordedEvent, StaticFacts, evaluate, validate_condition
from rejse.durations import DurationError, parse_duration

NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def facts(**kw):
    base = {
        "traits": {
            "country": "DK",
            "age": 41,
            "tags": ["vip", "b2b"],
            "address": {"city": "Aarhus"},
        },
        "score": 55.0,
        "consents": {"email": "granted", "sms": "revoked"},
        "audiences": {"vip"},
        "events": [
            RecordedEvent("Order Completed", NOW - dt.timedelta(days=10), {"currency": "DKK"}),
            RecordedEvent("Order Completed", NOW - dt.timedelta(days=200), {"currency": "SEK"}),
            RecordedEvent("Order Refunded", NOW - dt.timedelta(days=120)),
        ],
        "properties": {"total": 1249.0},
    }
    base.update(kw)
    return StaticFacts(**base)


SPEC_EXAMPLE = {
    "all": [
        {"trait": "country", "op": "eq", "value": "DK"},
        {"event": "Order Completed", "within": "P90D", "count": {"gte": 1}},
        {"not": {"event": "Order Refunded", "within": "P90D"}},
        {"score": {"gte": 50}},
        {"audience": "vip"},
        {"consent": "email"},
    ]
}


def test_spec_example_holds_and_each_part_can_fail():
    assert validate_condition(SPEC_EXAMPLE) == []
    assert evaluate(SPEC_EXAMPLE, facts(), now=NOW)
    assert not evaluate(SPEC_EXAMPLE, facts(traits={"country": "SE"}), now=NOW)
    assert not evaluate(SPEC_EXAMPLE, facts(score=10), now=NOW)
    assert not evaluate(SPEC_EXAMPLE, facts(audiences=set()), now=NOW)
    assert not evaluate(SPEC_EXAMPLE, facts(consents={"email": "revoked"}), now=NOW)
    assert not evaluate(SPEC_EXAMPLE, facts(events=[]), now=NOW)
    refunded = facts().events + [RecordedEvent("Order Refunded", NOW - dt.timedelta(days=1))]
    assert not evaluate(SPEC_EXAMPLE, facts(events=refunded), now=NOW)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"trait": "age", "op": "gt", "value": 40}, True),
        ({"trait": "age", "op": "lte", "value": 40}, False),
        ({"trait": "age", "op": "eq", "value": 41.0}, True),
        ({"trait": "age", "op": "eq", "value": "41"}, False),  # no type coercion
        ({"trait": "age", "op": "gt", "value": "1"}, False),  # mixed types never raise
        ({"trait": "country", "op": "in", "value": ["DK", "SE"]}, True),
        ({"trait": "country", "op": "ne", "value": "SE"}, True),
        ({"trait": "tags", "op": "contains", "value": "vip"}, True),
        ({"trait": "country", "op": "contains", "value": "D"}, True),
        ({"trait": "address.city", "op": "eq", "value": "Aarhus"}, True),
        ({"trait": "missing", "op": "exists"}, False),
        ({"trait": "missing", "op": "exists", "value": False}, True),
        ({"trait": "missing", "op": "eq", "value": 1}, False),
        ({"trait": "missing", "op": "ne", "value": 1}, True),
        ({"property": "total", "op": "gte", "value": 1000}, True),
        ({"event": "Order Completed", "count": {"eq": 2}}, True),
        (
            {"event": "Order Completed", "where": {"properties.currency": "SEK"}, "within": "P90D"},
            False,
        ),
        (
            {"event": "Order Completed", "where": {"properties.currency": "DKK"}, "within": "P90D"},
            True,
        ),
        ({"score": {"gte": 50, "lt": 60}}, True),
        ({"consent": "sms"}, False),
        ({"any": [{"audience": "nope"}, {"consent": "email"}]}, True),
    ],
)
def test_operators(cond, expected):
    assert validate_condition(cond) == []
    assert evaluate(cond, facts(), now=NOW) is expected


@pytest.mark.parametrize(
    ("cond", "field"),
    [
        ({}, "condition"),
        ({"trait": "x", "op": "between", "value": 1}, "condition.op"),
        ({"trait": "x", "op": "eq"}, "condition.value"),
        ({"trait": "x", "op": "in", "value": "DK"}, "condition.value"),
        ({"all": []}, "condition.all"),
        ({"all": [{"score": {"gte": "high"}}]}, "condition.all[0].score.gte"),
        ({"event": "X", "within": "90 days"}, "condition.within"),
        ({"event": "X", "count": {"most": 1}}, "condition.count.most"),
        ({"audience": "vip", "consent": "email"}, "condition"),
        ({"consent": "email", "value": 1}, "condition.value"),
        ({"not": {"trait": ""}}, "condition.not.trait"),
    ],
)
def test_invalid_conditions_name_the_field(cond, field):
    issues = validate_condition(cond)
    assert issues, cond
    assert issues[0].field == field, issues


def test_durations():
    assert parse_duration("PT5S") == dt.timedelta(seconds=5)
    assert parse_duration("P3D") == dt.timedelta(days=3)
    for bad in ("P1M", "3 days", "PT0S", None):
        with pytest.raises(DurationError):
            parse_duration(bad)


def _nested_not(depth: int) -> dict:
    cond: dict = {"trait": "country", "op": "eq", "value": "DK"}
    for _ in range(depth - 1):
        cond = {"not": cond}
    return cond


def test_depth_limit_names_the_field_and_never_recurses_into_a_deep_tree():
    assert validate_condition(_nested_not(32), path="rules[0].condition") == []
    for depth in (33, 900, 20_000):
        issues = validate_condition(_nested_not(depth), path="rules[0].condition")
        assert [i.field for i in issues] == ["rules[0].condition"], depth
        assert "at most 32 levels" in issues[0].message
    # groups count as levels too: all/any nested 33 deep
    cond: dict = {"consent": "email"}
    for n in range(32):
        cond = {"all" if n % 2 else "any": [cond]}
    assert validate_condition(cond)[0].message.startswith("conditions nest at most 32")


def test_node_limit():
    leaf = {"consent": "email"}
    assert validate_condition({"any": [leaf] * 999}) == []
    [issue] = validate_condition({"any": [leaf] * 1_000})
    assert issue.field == "condition"
    assert "at most 1,000 conditions" in issue.message
