"""The statistics of the A/B programme: pure functions on counts (no I/O, standard library only).

- `two_proportion_z`: the pooled two-proportion z-test, two-sided (the test every statistics
  text teaches for "is B's conversion rate different from A's"); the one implementation in rejse
  (the journeys' stats use it too).
- `wilson`: the Wilson score interval of one proportion (Wilson 1927). Chosen over the Wald
  interval p +- z*sqrt(p(1-p)/n) because A/B arms are often small and conversion rates close to
  0: Wald's coverage collapses there and its interval leaves [0, 1] or shrinks to a point at 0
  conversions, while Wilson's keeps close to its nominal 95 % (Brown, Cai & DasGupta 2001,
  "Interval Estimation for a Binomial Proportion", recommend it for every n).
- `newcombe`: the interval of a difference of two proportions by Newcombe's hybrid score method
  (Newcombe 1998, "Interval estimation for the difference between independent proportions",
  method 10), built from the two arms' Wilson intervals: so the interval of a lift agrees with
  the arms' intervals, is never wider than [-1, 1], and behaves at 0 conversions where the
  Wald difference interval does not.
- `ratio`: the relative lift p_b / p_a - 1 with the Katz log interval of the risk ratio (Katz,
  Baptista, Azen & Pike 1978).
- `mean_interval`, `mean_difference`: revenue per recipient with a normal interval from the sum
  and the sum of squares, and the Welch (unpooled) difference of two means.
- `sample_size_per_arm`: the minimum sample per arm to detect a difference of `mde` (absolute,
  or relative to the baseline) with the given two-sided `alpha` and `power` (Fleiss, Levin & Paik,
  "Statistical Methods for Rates and Proportions", 3rd ed. 2003, eq. 4.14, without continuity
  correction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()


def z_quantile(p: float) -> float:
    """The standard normal quantile: z_quantile(0.975) = 1.959964..."""
    return _NORMAL.inv_cdf(p)


def z_for(confidence: float) -> float:
    """The two-sided critical value of a `confidence` interval (0.95 -> 1.96)."""
    return z_quantile(1 - (1 - confidence) / 2)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class ZTest:
    z: float
    p_value: float  # two-sided
    significant: bool  # p_value < alpha


def two_proportion_z(
    conv_a: int, n_a: int, conv_b: int, n_b: int, *, alpha: float = 0.05
) -> ZTest | None:
    """B against A: z = (p_b - p_a) / sqrt(p(1-p)(1/n_a + 1/n_b)) with the pooled
    p = (conv_a + conv_b) / (n_a + n_b); p-value two-sided. None when the test is meaningless
    (an empty arm, or a pooled rate of 0 or 1: no variance)."""
    if n_a <= 0 or n_b <= 0:
        return None
    pooled = (conv_a + conv_b) / (n_a + n_b)
    if pooled <= 0.0 or pooled >= 1.0:
        return None
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (conv_b / n_b - conv_a / n_a) / se
    p = math.erfc(abs(z) / math.sqrt(2))
    return ZTest(z=z, p_value=p, significant=p < alpha)


def wilson(successes: int, n: int, *, confidence: float = 0.95) -> Interval | None:
    """The Wilson score interval of successes/n; None for n = 0."""
    if n <= 0:
        return None
    z = z_for(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # the ends are exactly 0 and 1 at 0 and n successes (the formula leaves rounding noise)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return Interval(low, high)


def newcombe(
    conv_a: int, n_a: int, conv_b: int, n_b: int, *, confidence: float = 0.95
) -> Interval | None:
    """The interval of p_b - p_a (Newcombe's method 10); None when an arm is empty."""
    wa = wilson(conv_a, n_a, confidence=confidence)
    wb = wilson(conv_b, n_b, confidence=confidence)
    if wa is None or wb is None:
        return None
    pa, pb = conv_a / n_a, conv_b / n_b
    d = pb - pa
    low = d - math.sqrt((pb - wb.low) ** 2 + (wa.high - pa) ** 2)
    high = d + math.sqrt((wb.high - pb) ** 2 + (pa - wa.low) ** 2)
    return Interval(low, high)


@dataclass(frozen=True)
class Ratio:
    lift: float  # p_b / p_a - 1
    interval: Interval | None  # of the lift; None when a count is 0 (the log is undefined)


def ratio(
    conv_a: int, n_a: int, conv_b: int, n_b: int, *, confidence: float = 0.95
) -> Ratio | None:
    """The relative lift of B over A, p_b / p_a - 1, with Katz's log interval of the risk
    ratio: exp(ln RR +- z sqrt(1/conv_b - 1/n_b + 1/conv_a - 1/n_a)) - 1. None when A has no
    conversions (no ratio)."""
    if n_a <= 0 or n_b <= 0 or conv_a <= 0:
        return None
    rr = (conv_b / n_b) / (conv_a / n_a)
    if conv_b <= 0:
        return Ratio(lift=rr - 1, interval=None)
    se = math.sqrt(1 / conv_b - 1 / n_b + 1 / conv_a - 1 / n_a)
    z = z_for(confidence)
    log = math.log(rr)
    return Ratio(
        lift=rr - 1, interval=Interval(math.exp(log - z * se) - 1, math.exp(log + z * se) - 1)
    )


@dataclass(frozen=True)
class Mean:
    mean: float
    interval: Interval | None  # None with fewer than two observations
    variance: float | None  # the sample variance (n - 1)


def mean_interval(
    n: int, total: float, total_sq: float, *, confidence: float = 0.95
) -> Mean | None:
    """The mean of n values from their sum and sum of squares, with the normal interval
    mean +- z s / sqrt(n) (large samples: an arm is hundreds of recipients). None for n = 0."""
    if n <= 0:
        return None
    mean = total / n
    if n < 2:
        return Mean(mean=mean, interval=None, variance=None)
    variance = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    half = z_for(confidence) * math.sqrt(variance / n)
    return Mean(mean=mean, interval=Interval(mean - half, mean + half), variance=variance)


def mean_difference(
    a: Mean, n_a: int, b: Mean, n_b: int, *, confidence: float = 0.95
) -> tuple[float, Interval | None]:
    """b.mean - a.mean with the Welch (unpooled) normal interval."""
    d = b.mean - a.mean
    if a.variance is None or b.variance is None:
        return d, None
    half = z_for(confidence) * math.sqrt(a.variance / n_a + b.variance / n_b)
    return d, Interval(d - half, d + half)


def sample_size_per_arm(
    baseline: float,
    *,
    mde: float,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int | None:
    """The smallest n per arm for a two-sided test at `alpha` to detect, with probability
    `power`, a change from the `baseline` rate p1 to p2 = p1 + mde (or p1 * (1 + mde) when
    `relative`), by Fleiss, Levin & Paik eq. 4.14:

        n = (z_{1-alpha/2} sqrt(2 pbar qbar) + z_{power} sqrt(p1 q1 + p2 q2))^2 / (p2 - p1)^2

    with pbar = (p1 + p2) / 2. When p2 would pass 1 the change is taken downwards (p1 - mde).
    None when no such p2 exists in (0, 1) (e.g. a relative change of a 0 baseline)."""
    if not (0.0 <= baseline <= 1.0) or mde <= 0:
        raise ValueError("baseline must be in [0, 1] and mde > 0")
    delta = baseline * mde if relative else mde
    p1 = baseline
    p2 = p1 + delta
    if p2 >= 1.0:
        p2 = p1 - delta
    if delta <= 0 or p2 <= 0.0:
        return None
    pbar = (p1 + p2) / 2
    za, zb = z_quantile(1 - alpha / 2), z_quantile(power)
    top = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return max(2, math.ceil(top * top / (p2 - p1) ** 2 - 1e-9))
