"""Two-proportion z-test on conversion rates (variant against the control)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ZTest:
    z: float
    p_value: float  # two-sided
    significant: bool  # at `alpha`


def two_proportion_z(
    conv_a: int, n_a: int, conv_b: int, n_b: int, *, alpha: float = 0.05
) -> ZTest | None:
    """None when a test is meaningless (an empty arm, or a pooled rate of 0 or 1)."""
    if n_a <= 0 or n_b <= 0:
        return None
    pooled = (conv_a + conv_b) / (n_a + n_b)
    if pooled in (0.0, 1.0):
        return None
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (conv_b / n_b - conv_a / n_a) / se
    p = math.erfc(abs(z) / math.sqrt(2))
    return ZTest(z=round(z, 4), p_value=round(p, 6), significant=p < alpha)
