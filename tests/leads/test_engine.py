"""Properties of the score arithmetic (no database)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from rejse.scoring.engine import capped_points, decay_factor, period_start, stages_crossed

seconds = st.integers(min_value=0, max_value=400 * 86400)
half_lives = st.integers(min_value=60, max_value=365 * 86400)


@given(half_lives, seconds, seconds)
def test_lazy_decay_is_exact_whatever_the_steps(h, a, b):
    half = dt.timedelta(seconds=h)
    stepwise = decay_factor(half, dt.timedelta(seconds=a)) * decay_factor(
        half, dt.timedelta(seconds=b)
    )
    at_once = decay_factor(half, dt.timedelta(seconds=a + b))
    assert abs(stepwise - at_once) <= 1e-9


@given(
    st.lists(st.floats(min_value=-50, max_value=50), max_size=30),
    st.floats(min_value=1, max_value=100),
)
def test_caps_never_exceeded(points, cap):
    granted = 0.0
    for p in points:
        g = capped_points(p, cap, granted)
        if p > 0:
            assert 0 <= g <= p
            granted += g
    assert granted <= cap + 1e-9


@given(
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.integers(min_value=1, max_value=30),
)
def test_period_contains_the_instant(at, days):
    at = at.replace(tzinfo=dt.UTC)
    period = dt.timedelta(days=days)
    start = period_start(at, period)
    assert start <= at < start + period


@given(
    st.floats(min_value=-100, max_value=500),
    st.sampled_from(["subscriber", "lead", "aql", "customer"]),
)
def test_stages_only_go_up(score, current):
    from rejse.scoring.definition import STAGE_RANK

    crossed = stages_crossed(current, score, {"lead": 10, "aql": 50, "sql": 200})
    assert all(STAGE_RANK[s] > STAGE_RANK[current] for s in crossed)
    assert crossed == sorted(crossed, key=STAGE_RANK.__getitem__)
