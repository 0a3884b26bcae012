"""Each leaf of the condition language in SQL, including the tricky type cases, against the
in-memory evaluator on the same rows (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest

from rejse.conditions import validate_condition

from .condition_rows import NOW, Row, by_sql, in_memory, insert

DAY = dt.timedelta(days=1)

ROWS = [
    Row(  # 0
        traits={
            "country": "DK",
            "age": 41,
            "ratio": 0.5,
            "tags": ["vip", 1, True, None, {"a": 1}],
            "address": {"city": "Aarhus", "0": "key zero"},
            "lines": [{"sku": "A1"}, {"sku": "B2"}],
            "flag": True,
            "nothing": None,
            "big": 2**53 + 1,
            "bigf": float(2**53),
            "æble": "grøn",
            'q"k': "quoted",
            "e": {"": "empty key"},
            "num_text": "41",
        },
        events=[
            ("Order Completed", NOW - 10 * DAY, {"currency": "DKK", "total": 100, "n": [1, 2]}),
            ("Order Completed", NOW - 200 * DAY, {"currency": "SEK", "total": 99.5}),
            ("Order Refunded", NOW - 120 * DAY, {}),
            ("Viewed", NOW - 30 * DAY, {"ø": "å"}),
        ],
        consents={"email": "granted", "sms": "revoked"},
        score=(60.0, 5.0, NOW - 30 * DAY),
        audiences={"vip"},
        order_count=2,
        revenue=199.5,
        first_order_at=NOW - 200 * DAY,
        last_order_at=NOW - 10 * DAY,
    ),
    Row(  # 1
        traits={"country": "SE", "age": 41.0, "tags": "vip-ish", "address": ["x", "y"]},
        events=[("Order Completed", NOW - 30 * DAY, {"currency": "DKK"})],
        consents={"email": "denied"},
    ),
    Row(traits={"country": "DK"}, erased=True, audiences={"vip"}),  # 2: erased, never matches
    Row(traits={"age": "41", "flag": 1, "nothing": 0}),  # 3
]

CASES = [
    {"trait": "country", "op": "eq", "value": "DK"},
    {"trait": "country", "op": "ne", "value": "DK"},
    {"trait": "country", "op": "gt", "value": "DA"},
    {"trait": "age", "op": "eq", "value": 41},
    {"trait": "age", "op": "eq", "value": 41.0},
    {"trait": "age", "op": "eq", "value": "41"},
    {"trait": "age", "op": "gt", "value": "1"},
    {"trait": "age", "op": "gte", "value": 40.5},
    {"trait": "age", "op": "in", "value": [40, 41, None]},
    {"trait": "ratio", "op": "lt", "value": 1},
    {"trait": "big", "op": "eq", "value": 2**53},
    {"trait": "big", "op": "gt", "value": 2**53},
    {"trait": "bigf", "op": "lt", "value": 2**53 + 1},
    {"trait": "bigf", "op": "eq", "value": 2**53 + 1},
    {"trait": "flag", "op": "eq", "value": True},
    {"trait": "flag", "op": "eq", "value": 1},
    {"trait": "flag", "op": "gt", "value": 0},
    {"trait": "nothing", "op": "exists"},
    {"trait": "nothing", "op": "exists", "value": False},
    {"trait": "nothing", "op": "eq", "value": None},
    {"trait": "nothing", "op": "ne", "value": None},
    {"trait": "nothing", "op": "ne", "value": 0},
    {"trait": "missing", "op": "ne", "value": 1},
    {"trait": "missing", "op": "exists"},
    {"trait": "tags", "op": "contains", "value": "vip"},
    {"trait": "tags", "op": "contains", "value": True},
    {"trait": "tags", "op": "contains", "value": 1.0},
    {"trait": "tags", "op": "contains", "value": None},
    {"trait": "tags", "op": "contains", "value": "ip"},
    {"trait": "address", "op": "contains", "value": "city"},  # objects contain nothing
    {"trait": "address.city", "op": "eq", "value": "Aarhus"},
    {"trait": "address.0", "op": "eq", "value": "key zero"},
    {"trait": "address.0", "op": "eq", "value": "x"},
    {"trait": "lines.1.sku", "op": "eq", "value": "B2"},
    {"trait": "lines.2.sku", "op": "exists"},
    {"trait": "æble", "op": "eq", "value": "grøn"},
    {"trait": 'q"k', "op": "eq", "value": "quoted"},
    {"trait": "e.", "op": "eq", "value": "empty key"},
    {"trait": "num_text", "op": "gt", "value": "4"},
    {"event": "Order Completed"},
    {"event": "Order Completed", "within": "P30D"},
    {"event": "Order Completed", "within": "P29D"},
    {"event": "Order Completed", "count": {"eq": 2}},
    {"event": "Order Completed", "count": {"gte": 2}},
    {"event": "Order Completed", "count": {"eq": 0}},
    {"event": "Order Completed", "where": {"properties.currency": "SEK"}, "within": "P90D"},
    {"event": "Order Completed", "where": {"properties.total": 100.0}},
    {"event": "Order Completed", "where": {"properties.n.1": 2}},
    {"event": "Order Completed", "where": {"event": "Order Completed"}},
    {"event": "Order Completed", "where": {"event": "Other"}, "count": {"lt": 1}},
    {"event": "Order Completed", "where": {"properties": None}},
    {"event": "Viewed", "where": {"properties.ø": "å"}},
    {"score": {"gte": 30}},
    {"score": {"gte": 30, "lt": 40}},
    {"score": {"eq": 0}},
    {"customer": "order_count", "op": "gte", "value": 2},
    {"customer": "revenue", "op": "gt", "value": 199},
    {"customer": "average_order_value", "op": "eq", "value": 99.75},
    {"customer": "average_order_value", "op": "ne", "value": 1},
    {"customer": "average_order_value", "op": "exists", "value": False},
    {"customer": "days_since_last_order", "op": "gte", "value": 10},
    {"customer": "days_since_last_order", "op": "gt", "value": 10},
    {"customer": "days_since_first_order", "op": "lt", "value": 365},
    {"customer": "days_since_first_order", "op": "exists"},
    {"audience": "vip"},
    {"consent": "email"},
    {"consent": "sms"},
    {"not": {"consent": "email"}},
    {"any": [{"audience": "nope"}, {"trait": "country", "op": "eq", "value": "SE"}]},
    {"all": [{"trait": "country", "op": "eq", "value": "DK"}, {"not": {"audience": "vip"}}]},
]


@pytest.fixture
def ids(engine):
    return insert(engine, ROWS, half_life="P30D")


@pytest.mark.parametrize("cond", CASES, ids=lambda c: str(c)[:70])
def test_leaf_in_sql_equals_memory(engine, ids, cond):
    assert validate_condition(cond) == []
    assert by_sql(engine, cond) == in_memory(engine, cond, ids)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"trait": "country", "op": "eq", "value": "DK"}, {0}),  # the erased DK profile is out
        ({"trait": "age", "op": "eq", "value": 41}, {0, 1}),  # 41 == 41.0, not "41"
        ({"trait": "flag", "op": "eq", "value": 1}, {3}),  # true is not 1
        ({"trait": "big", "op": "gt", "value": 2**53}, {0}),
        ({"trait": "bigf", "op": "eq", "value": 2**53 + 1}, set()),
        ({"trait": "address.0", "op": "eq", "value": "x"}, {1}),
        ({"trait": 'q"k', "op": "eq", "value": "quoted"}, {0}),
        ({"trait": "missing", "op": "ne", "value": 1}, {0, 1, 3}),
        ({"event": "Order Completed", "within": "P30D"}, {0, 1}),
        ({"event": "Order Completed", "within": "P29D"}, {0}),
        ({"event": "Order Completed", "count": {"eq": 0}}, {3}),
        ({"score": {"gte": 34.99, "lt": 35.01}}, {0}),  # 60 halved once plus 5
        ({"customer": "days_since_last_order", "op": "gt", "value": 10}, set()),
        ({"customer": "days_since_last_order", "op": "gte", "value": 10}, {0}),
        ({"customer": "average_order_value", "op": "eq", "value": 99.75}, {0}),
        ({"consent": "email"}, {0}),
        ({"audience": "vip"}, {0}),
    ],
)
def test_known_answers(engine, ids, cond, expected):
    assert by_sql(engine, cond) == {ids[n] for n in expected}
    assert by_sql(engine, cond, profile_ids=[ids[1]]) == {ids[1]} & {ids[n] for n in expected}


def test_property_leaves_do_not_compile(engine):
    from sqlmodel import Session

    from rejse.audiences.sql import UncompilableCondition, profiles_matching

    with Session(engine) as session, pytest.raises(UncompilableCondition) as err:
        profiles_matching(session, {"not": {"property": "total", "op": "exists"}}, now=NOW)
    assert err.value.field == "condition.not.property"
