"""A/B split assignment: deterministic per (journey, profile, step), weighted, optional holdout.

Pure and deterministic, so the workflow can call it directly (replays give the same answer) and
a profile that re-enters a journey lands in the same variant."""

from __future__ import annotations

import hashlib

from rejse.journeys.definition import SplitStep

HOLDOUT = "holdout"


def bucket(journey_key: str, step_id: str, profile_id: str) -> float:
    """A number in [0, 1) fixed by the inputs (SHA-256; uniform enough for traffic splits)."""
    digest = hashlib.sha256(f"{journey_key}\x1f{step_id}\x1f{profile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(step: SplitStep, *, journey_key: str, step_id: str, profile_id: str) -> str:
    """The variant key (or `holdout`) for this profile."""
    arms = [(v.key, v.weight) for v in step.variants]
    if step.holdout:
        arms.append((HOLDOUT, step.holdout.weight))
    total = sum(w for _, w in arms)
    point = bucket(journey_key, step_id, profile_id) * total
    for key, weight in arms:
        if point < weight:
            return key
        point -= weight
    return arms[-1][0]
