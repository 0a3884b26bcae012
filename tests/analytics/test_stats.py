"""The A/B statistics against worked examples from the literature, computed by hand here."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rejse import stats


def test_two_proportion_z_reproduces_the_st_johns_wort_example():
    """Montgomery & Runger, "Applied Statistics and Probability for Engineers", section
    "Inference on two population proportions", the St. John's Wort example: of 100 patients on
    placebo 19 improved, of 100 on St. John's Wort 27 (JAMA, 18 April 2001). By hand:

        p1 = 19/100 = 0.19, p2 = 27/100 = 0.27, pooled p = 46/200 = 0.23
        se = sqrt(0.23 * 0.77 * (1/100 + 1/100)) = sqrt(0.003542) = 0.059515
        z0 = (0.27 - 0.19) / 0.059515 = 1.3442
        P = 2 (1 - Phi(1.3442)) = 0.1789

    so at alpha = 0.05 the null hypothesis of equal proportions is not rejected (the book:
    z0 = 1.34, P ~ 0.18)."""
    t = stats.two_proportion_z(19, 100, 27, 100)
    assert t is not None
    assert t.z == pytest.approx(1.3442, abs=1e-4)
    assert t.p_value == pytest.approx(0.1789, abs=1e-4)
    assert not t.significant
    assert stats.two_proportion_z(19, 100, 27, 100, alpha=0.2).significant  # 0.1789 < 0.2


def test_wilson_interval_of_newcombes_example():
    """Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison
    of seven methods", Statistics in Medicine 17:857-872, example 81/263: the Wilson score
    interval is 0.2553 to 0.3662. By hand, z = 1.96, p = 0.30798, n = 263:

        centre = (p + z^2/2n) / (1 + z^2/n) = (0.30798 + 0.007304) / 1.014607 = 0.31075
        half   = z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n) = 1.96 * 0.028861 / 1.014607 = 0.05575
    """
    i = stats.wilson(81, 263)
    assert i is not None
    assert (round(i.low, 4), round(i.high, 4)) == (0.2553, 0.3662)
    zero = stats.wilson(0, 20)  # Wald would give [0, 0]; Wilson still says up to 16 %
    assert zero is not None
    assert zero.low == 0.0
    assert zero.high == pytest.approx(0.1611, abs=1e-4)
    assert stats.wilson(0, 0) is None


def test_newcombe_difference_interval_of_newcombes_examples():
    """Newcombe (1998), "Interval estimation for the difference between independent
    proportions: comparison of eleven methods", Statistics in Medicine 17:873-890, method 10
    (hybrid score), examples (a) 56/70 - 48/80 = 0.2000: 0.0524 to 0.3339, and
    (b) 9/10 - 3/10 = 0.6000: 0.1705 to 0.8090. By hand for (a): Wilson of 56/70 is
    (0.6920, 0.8769), of 48/80 is (0.4904, 0.7000);

        low  = 0.2 - sqrt((0.8 - 0.6920)^2 + (0.7000 - 0.6)^2) = 0.2 - 0.1476 = 0.0524
        high = 0.2 + sqrt((0.8769 - 0.8)^2 + (0.6 - 0.4904)^2) = 0.2 + 0.1339 = 0.3339
    """
    a = stats.newcombe(48, 80, 56, 70)  # p_b - p_a with b = 56/70
    assert a is not None
    assert (round(a.low, 4), round(a.high, 4)) == (0.0524, 0.3339)
    b = stats.newcombe(3, 10, 9, 10)
    assert b is not None
    assert (round(b.low, 4), round(b.high, 4)) == (0.1705, 0.8090)
    assert stats.newcombe(1, 0, 1, 2) is None


def test_relative_lift_with_katz_interval():
    """Risk ratio of 27/100 against 19/100 (the St. John's Wort counts): RR = 1.4211, so a lift
    of 42.1 %; Katz: se(ln RR) = sqrt(1/27 - 1/100 + 1/19 - 1/100) = sqrt(0.069669) = 0.26395,
    ln RR = 0.35140, exp(0.35140 -+ 1.96 * 0.26395) = 0.8471 .. 2.3839, a lift of -15.3 % to
    +138.4 % (Evidence-Based Mental Health's review of the trial gives 42 %, -15 to 140)."""
    r = stats.ratio(19, 100, 27, 100)
    assert r is not None
    assert r.interval is not None
    assert r.lift == pytest.approx(0.4211, abs=1e-4)
    assert r.interval.low == pytest.approx(-0.1529, abs=1e-4)
    assert r.interval.high == pytest.approx(1.3839, abs=1e-4)
    assert stats.ratio(0, 100, 5, 100) is None  # no baseline conversions: no ratio
    none_b = stats.ratio(5, 100, 0, 100)
    assert none_b is not None
    assert none_b.lift == -1.0
    assert none_b.interval is None


def test_minimum_sample_per_arm():
    """Fleiss, Levin & Paik (2003) eq. 4.14, two-sided alpha = 0.05 (z = 1.95996), power 0.8
    (z = 0.84162). From 5 % to 7 %: pbar = 0.06,

        n = (1.95996 sqrt(2 * 0.06 * 0.94) + 0.84162 sqrt(0.05 * 0.95 + 0.07 * 0.93))^2 / 0.02^2
          = (0.65827 + 0.28242)^2 / 0.0004 = 0.88490 / 0.0004 = 2212.2 -> 2213 per arm.

    From 19 % by 20 points (to 39 %): (1.25775 + 0.52680)^2 / 0.04 = 79.6 -> 80."""
    assert stats.sample_size_per_arm(0.05, mde=0.02) == 2213
    assert stats.sample_size_per_arm(0.19, mde=0.2) == 80
    # a relative mde of 40 % of 5 % is the same 2 points
    assert stats.sample_size_per_arm(0.05, mde=0.4, relative=True) == 2213
    # more power, or a stricter alpha, needs more
    assert stats.sample_size_per_arm(0.05, mde=0.02, power=0.9) > 2213
    assert stats.sample_size_per_arm(0.05, mde=0.02, alpha=0.025) > 2213
    # near 1 the change is taken downwards; a relative change of 0 is no change
    assert stats.sample_size_per_arm(0.99, mde=0.02) == stats.sample_size_per_arm(0.97, mde=0.02)
    assert stats.sample_size_per_arm(0.0, mde=0.5, relative=True) is None
    with pytest.raises(ValueError, match="mde"):
        stats.sample_size_per_arm(0.05, mde=0)


def test_the_sample_size_gives_the_power_it_promises():
    """At n from `sample_size_per_arm`, the normal approximation of the z-test's power at the
    planned effect is at least the power asked for (and one fewer recipient gives less)."""
    p1, p2 = 0.05, 0.07
    n = stats.sample_size_per_arm(p1, mde=p2 - p1)
    assert n is not None

    def power(n: int) -> float:
        pbar = (p1 + p2) / 2
        se0 = math.sqrt(2 * pbar * (1 - pbar) / n)
        se1 = math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n)
        return 1 - stats._NORMAL.cdf((stats.z_quantile(0.975) * se0 - (p2 - p1)) / se1)

    assert power(n) >= 0.8 > power(n - 1)


def test_revenue_per_recipient_interval():
    """Revenue 0, 0, 100, 200 over 4 recipients: mean 75, sample variance
    (50,000 - 4 * 75^2) / 3 = 9,166.67, se = sqrt(9,166.67 / 4) = 47.871,
    95 %: 75 -+ 1.96 * 47.871 = 75 -+ 93.826."""
    m = stats.mean_interval(4, 300.0, 50_000.0)
    assert m is not None
    assert m.interval is not None
    assert m.mean == 75.0
    assert m.interval.low == pytest.approx(75 - 93.8263, abs=1e-3)
    zero = stats.mean_interval(10, 0.0, 0.0)
    assert zero is not None
    assert zero.interval == stats.Interval(0.0, 0.0)
    d, i = stats.mean_difference(zero, 10, m, 4)
    assert d == 75.0
    assert i is not None
    assert i.high - d == pytest.approx(93.8263, abs=1e-3)  # all the variance is B's


@given(st.integers(1, 3000), st.integers(1, 3000), st.data())
def test_intervals_hold_their_estimate(n_a, n_b, data):
    c_a = data.draw(st.integers(0, n_a))
    c_b = data.draw(st.integers(0, n_b))
    pa, pb = c_a / n_a, c_b / n_b
    w = stats.wilson(c_b, n_b)
    assert w is not None
    assert 0 <= w.low <= pb <= w.high <= 1
    d = stats.newcombe(c_a, n_a, c_b, n_b)
    assert d is not None
    assert -1 <= d.low <= pb - pa <= d.high <= 1
