"""The property behind "one definition, two evaluators": for random condition trees (every leaf
kind and op, nesting, within/where/count, typed values: ints, floats, strings, booleans, null,
lists, nested objects, missing paths) and random profiles (events, consents, decaying scores,
memberships, customer value, erased ones), `profiles_matching` in SQL selects exactly the live
profiles `evaluate` accepts, on SQLite and on PostgreSQL.

No tolerance is needed for the score: both sides compute `behaviour * 0.5 ** (elapsed /
half_life) + fit` with the same IEEE operations in the same order (elapsed in whole
microseconds, pow from the same C library), so thresholds are drawn freely, equality included.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rejse.conditions import CUSTOMER_FIELDS, validate_condition

from .condition_rows import NOW, Row, by_sql, clear, in_memory, insert

KEYS = ["a", "b", "0", "1", "é", "x y", 'q"k', ""]
NAMES = ["A", "B", "Order Completed"]
WINDOWS = ["P1D", "P30D", "PT1H"]

ints = st.sampled_from([0, 1, 2, -1, 3, 41, 2**53, 2**53 + 1, -(2**63), 2**63 - 1]) | st.integers(
    -5, 5
)
floats = st.sampled_from(
    [0.0, -0.0, 0.5, 1.0, 1.5, 2.0, -2.5, 41.0, 1e16, float(2**53)]
) | st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
strings = st.sampled_from(["", "a", "ab", "b", "A", "é", "1", "true", "ø"])
scalars = st.none() | st.booleans() | ints | floats | strings
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=6,
)
objects = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4)
paths = st.sampled_from(KEYS[:-1]) | st.lists(
    st.sampled_from([*KEYS[:-1], "2"]), min_size=1, max_size=3
).map(".".join)

# moments on and around the windows' edges, and plain random ones
offsets = st.sampled_from(
    [dt.timedelta(0), dt.timedelta(days=1), dt.timedelta(days=30), dt.timedelta(hours=1)]
).flatmap(
    lambda edge: st.sampled_from(
        [edge, edge + dt.timedelta(microseconds=1), edge - dt.timedelta(microseconds=1)]
    )
) | st.timedeltas(dt.timedelta(days=-5), dt.timedelta(days=400))


@st.composite
def rows(draw: st.DrawFn) -> Row:
    orders = draw(st.integers(0, 4))
    first = NOW - draw(offsets) if orders else None
    last = (NOW - draw(offsets)) if orders else None
    return Row(
        traits=draw(objects),
        events=draw(
            st.lists(
                st.tuples(st.sampled_from(NAMES), offsets.map(lambda o: NOW - o), objects),
                max_size=5,
            )
        ),
        consents=draw(
            st.dictionaries(
                st.sampled_from(["email", "sms"]), st.sampled_from(["granted", "revoked", "denied"])
            )
        ),
        score=draw(
            st.none()
            | st.tuples(
                st.sampled_from([0.0, 10.0, 55.5, -3.0]) | st.floats(-100, 100),
                st.sampled_from([0.0, 5.0, 10.0]),
                offsets.map(lambda o: NOW - o),
            )
        ),
        audiences=draw(st.sets(st.sampled_from(["vip", "churn"]))),
        order_count=orders,
        revenue=draw(st.sampled_from([0.0, 100.0, 99.5, -20.0]) | st.floats(-1000, 1000)),
        first_order_at=first,
        last_order_at=last,
        erased=draw(st.sampled_from([False, False, False, True])),
    )


numbers = ints | floats
comparisons = st.dictionaries(
    st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
    st.sampled_from([0, 1, 2, 5, 10.0, 55.5, 0.5, -3]) | numbers,
    min_size=1,
    max_size=2,
)


def _trait_leaf(path: str, op: str, value: object) -> dict:
    leaf: dict = {"trait": path, "op": op}
    if op == "in":
        leaf["value"] = value if isinstance(value, list) else [value]
    elif op == "exists":
        if isinstance(value, bool):
            leaf["value"] = value
    else:
        leaf["value"] = (value[0] if value else None) if isinstance(value, list) else value
    return leaf


trait_leaves = st.builds(
    _trait_leaf,
    paths,
    st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists"]),
    scalars | st.lists(scalars, max_size=3),
)


@st.composite
def event_leaves(draw: st.DrawFn) -> dict:
    leaf: dict = {"event": draw(st.sampled_from(NAMES))}
    if draw(st.booleans()):
        leaf["within"] = draw(st.sampled_from(WINDOWS))
    if draw(st.booleans()):
        where_paths = st.sampled_from(["event", "properties", "other.x"]) | paths.map(
            lambda p: f"properties.{p}"
        )
        leaf["where"] = draw(st.dictionaries(where_paths, scalars, min_size=1, max_size=2))
    if draw(st.booleans()):
        leaf["count"] = draw(
            st.dictionaries(
                st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
                st.sampled_from([0, 1, 2, 0.5, 1.5, 3]),
                min_size=1,
                max_size=2,
            )
        )
    return leaf


@st.composite
def customer_leaves(draw: st.DrawFn) -> dict:
    name = draw(st.sampled_from(CUSTOMER_FIELDS))
    op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "exists"]))
    if op == "exists":
        return {"customer": name, "op": op, "value": draw(st.booleans())}
    if name.startswith("days_since_"):
        value = draw(st.sampled_from([0, 1, 30, 0.5, 400]) | st.floats(-10, 500))
    else:
        value = draw(st.sampled_from([0, 1, 2, 100.0, 99.5, 49.75, -20.0]) | numbers)
    return {"customer": name, "op": op, "value": value}


leaves = st.one_of(
    trait_leaves,
    event_leaves(),
    st.builds(lambda c: {"score": c}, comparisons),
    customer_leaves(),
    st.builds(lambda a: {"audience": a}, st.sampled_from(["vip", "churn", "none"])),
    st.builds(lambda c: {"consent": c}, st.sampled_from(["email", "sms", "push"])),
)
conditions = st.recursive(
    leaves,
    lambda inner: (
        st.builds(lambda c: {"not": c}, inner)
        | st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=3))
    ),
    max_leaves=6,
)


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cond=conditions,
    profiles=st.lists(rows(), min_size=2, max_size=5),
    half_life=st.sampled_from([None, "P30D", "PT1H", "P1D"]),
    now_shift=st.sampled_from([dt.timedelta(0), dt.timedelta(days=1, microseconds=7)]),
)
def test_sql_and_memory_agree(engine, cond, profiles, half_life, now_shift):
    assert validate_condition(cond) == [], cond
    clear(engine)
    ids = insert(engine, profiles, half_life=half_life)
    now = NOW + now_shift
    live = [pid for pid, row in zip(ids, profiles, strict=True) if not row.erased]
    matched = by_sql(engine, cond, now=now)
    assert matched == in_memory(engine, cond, live, now=now), cond
    event("some live profiles match, some not" if 0 < len(matched) < len(live) else "all or none")
