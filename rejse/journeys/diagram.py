"""A journey as a Mermaid flowchart (`GET /api/journeys/{key}/diagram`): node and edge labels
come from tables keyed by step type."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rejse.journeys import definition as jd


def _text(value: str) -> str:
    return value.replace('"', "#quot;").replace("\n", " ")


def _wait(step: jd.WaitStep) -> str:
    return f"wait {step.for_}" if step.for_ else f"wait until {step.until}"


def _wait_for_event(step: jd.WaitForEventStep) -> str:
    return f"wait for {step.event} (max {step.timeout})"


def _send(step: jd.SendStep) -> str:
    return f"send {step.channel}: {step.template}"


def _split(step: jd.SplitStep) -> str:
    return f"split: {step.hypothesis}"


def _score(step: jd.ScoreStep) -> str:
    return f"score {step.points:+g}"


def _update_profile(step: jd.UpdateProfileStep) -> str:
    return "update profile: " + ", ".join(step.traits)


def _handoff(step: jd.HandoffStep) -> str:
    return step.type.replace("_", " ")


# what a node says after its id; a type that is not here shows its type (`exit`)
LABELS: dict[str, Callable[[Any], str]] = {
    "wait": _wait,
    "wait_for_event": _wait_for_event,
    "send": _send,
    "branch": lambda step: "branch",
    "split": _split,
    "score": _score,
    "update_profile": _update_profile,
    "crm_handoff": _handoff,
    "notify_sales": _handoff,
    "webhook": lambda step: "webhook",
}


def _branch_edges(step: jd.BranchStep) -> dict[str, str]:
    labels = {
        f"if[{n}].next": json.dumps(case.when, separators=(",", ":"))[:60]
        for n, case in enumerate(step.if_)
    }
    return labels | {"else": "else"}


def _split_edges(step: jd.SplitStep) -> dict[str, str]:
    return {f"variants[{n}].next": f"{v.key} ({v.weight:g})" for n, v in enumerate(step.variants)}


def _wait_for_event_edges(step: jd.WaitForEventStep) -> dict[str, str]:
    return {"on_event": "on event", "on_timeout": "on timeout"}


# edge label by the field `successors()` names the edge with; a plain `next` has none
EDGE_LABELS: dict[str, Callable[[Any], dict[str, str]]] = {
    "branch": _branch_edges,
    "split": _split_edges,
    "wait_for_event": _wait_for_event_edges,
}

DECISIONS = frozenset({"branch", "split"})  # drawn as hexagons


def mermaid(defn: jd.JourneyDefinition) -> str:
    ids = {sid: f"s{n}" for n, sid in enumerate(defn.steps)}
    trigger = defn.trigger
    what = (
        getattr(trigger, "event", None)
        or getattr(trigger, "cron", None)
        or getattr(trigger, "audience", None)
        or ""
    )
    lines = ["flowchart TD", f'  trigger(["{_text(f"{trigger.type}: {what}".rstrip(": "))}"])']
    for sid, step in defn.steps.items():
        shape = ('{{"', '"}}') if step.type in DECISIONS else ('["', '"]')
        label = LABELS[step.type](step) if step.type in LABELS else step.type
        lines.append(f"  {ids[sid]}{shape[0]}{_text(f'{sid}<br/>{label}')}{shape[1]}")
    if defn.start in ids:
        lines.append(f"  trigger --> {ids[defn.start]}")
    for sid, step in defn.steps.items():
        edge_labels = EDGE_LABELS[step.type](step) if step.type in EDGE_LABELS else {}
        for field, target in step.successors():
            if target in ids:
                label = _text(edge_labels.get(field, ""))
                arrow = f"-->|{label}|" if label else "-->"
                lines.append(f"  {ids[sid]} {arrow} {ids[target]}")
        if isinstance(step, jd.SplitStep) and step.holdout:
            lines.append(
                f'  {ids[sid]} -->|holdout ({step.holdout.weight:g})| {ids[sid]}_h(["holdout"])'
            )
    for n, goal in enumerate(defn.exit_when):
        lines.append(f'  goal{n}(["goal: {_text(goal.event)} ends the run (converted)"])')
    return "\n".join(lines) + "\n"
