"""Split assignment and the significance test, as properties (Hypothesis)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from rejse.journeys.definition import Holdout, SplitStep, SplitVariant
from rejse.journeys.split import HOLDOUT, assign
from rejse.stats import two_proportion_z

keys = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)
weights = st.floats(min_value=0.1, max_value=100, allow_nan=False)


@st.composite
def splits(draw):
    names = draw(st.lists(keys, min_size=2, max_size=4, unique=True))
    holdout = draw(st.none() | weights)
    return SplitStep(
        type="split",
        hypothesis="h1 beats h0",
        variants=[SplitVariant(key=k, weight=draw(weights)) for k in names],
        holdout=Holdout(weight=holdout) if holdout else None,
    )


@given(splits(), st.text(min_size=1, max_size=40), keys)
def test_assignment_is_deterministic_and_a_known_arm(step, profile_id, journey):
    first = assign(step, journey_key=journey, step_id="s", profile_id=profile_id)
    assert first == assign(step, journey_key=journey, step_id="s", profile_id=profile_id)
    assert first in {v.key for v in step.variants} | ({HOLDOUT} if step.holdout else set())


@settings(max_examples=15, deadline=None)
@given(splits())
def test_assignment_follows_the_weights(step):
    n = 4000
    seen = Counter(
        assign(step, journey_key="j", step_id="s", profile_id=f"prf_{i}") for i in range(n)
    )
    arms = [(v.key, v.weight) for v in step.variants] + (
        [(HOLDOUT, step.holdout.weight)] if step.holdout else []
    )
    total = sum(w for _, w in arms)
    for key, weight in arms:
        expected = n * weight / total
        assert abs(seen[key] - expected) <= 5 * (expected**0.5) + 10, (key, seen, expected)


@given(st.integers(1, 5000), st.integers(1, 5000), st.data())
def test_z_test_is_symmetric_and_bounded(n_a, n_b, data):
    c_a = data.draw(st.integers(0, n_a))
    c_b = data.draw(st.integers(0, n_b))
    t = two_proportion_z(c_a, n_a, c_b, n_b)
    back = two_proportion_z(c_b, n_b, c_a, n_a)
    if t is None:
        assert back is None
        return
    assert 0 <= t.p_value <= 1
    assert back is not None
    assert abs(t.z + back.z) < 1e-3
    assert abs(t.p_value - back.p_value) < 1e-5


def test_z_test_known_value():
    # 200/1000 vs 250/1000: z = 2.68, p = 0.0073 (textbook two-proportion z-test)
    t = two_proportion_z(200, 1000, 250, 1000)
    assert t is not None
    assert abs(t.z - 2.6769) < 1e-3
    assert abs(t.p_value - 0.00743) < 1e-4
    assert t.significant
    assert two_proportion_z(0, 10, 0, 10) is None
    assert two_proportion_z(1, 0, 1, 1) is None
