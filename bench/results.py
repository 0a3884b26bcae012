"""One line per measured figure, so `python -m bench` can gather every benchmark into one table.

A benchmark prints its own human-readable report as before and, for each figure it measures,
calls `emit(...)`: that prints one line starting with `BENCH-RESULT ` followed by JSON. The
aggregator runs each benchmark as its own process and reads those lines from its output.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

PREFIX = "BENCH-RESULT "


@dataclass(frozen=True)
class Result:
    bench: str  # the module, e.g. "bench.messaging"
    figure: str  # what was measured, e.g. "emails/s end to end"
    value: float  # our figure
    unit: str  # "events/s", "ms", "x", ...
    baseline: float | None  # the baseline measured in the same run (None: the target is absolute)
    baseline_name: str  # what the baseline is, e.g. "raw aiosmtplib.send"
    target: str  # the target as written, e.g. ">= 0.8x", "<= 300 ms"
    met: bool

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


def emit(
    bench: str,
    figure: str,
    value: float,
    unit: str,
    *,
    baseline: float | None,
    baseline_name: str,
    target: str,
    met: bool,
) -> Result:
    """Print the figure as one machine-readable line and return it."""
    result = Result(bench, figure, value, unit, baseline, baseline_name, target, met)
    print(PREFIX + json.dumps(asdict(result)), flush=True)
    return result


def parse(output: str) -> list[Result]:
    """Every figure a benchmark's output carries, in order."""
    found = []
    for line in output.splitlines():
        if line.startswith(PREFIX):
            found.append(Result(**json.loads(line[len(PREFIX) :])))
    return found
