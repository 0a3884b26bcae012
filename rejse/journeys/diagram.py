"""A journey as a Mermaid flowchart (`GET /api/journeys/{key}/diagram`)."""

from __future__ import annotations

import json

from rejse.journeys.definition import (
    BranchStep,
    HandoffStep,
    JourneyDefinition,
    ScoreStep,
    SendStep,
    SplitStep,
    UpdateProfileStep,
    WaitForEventStep,
    WaitStep,
    WebhookStep,
    successors,
)


def _text(value: str) -> str:
    return value.replace('"', "#quot;").replace("\n", " ")


def _label(step_id: str, step) -> str:
    if isinstance(step, WaitStep):
        detail = f"wait {step.for_}" if step.for_ else f"wait until {step.until}"
    elif isinstance(step, WaitForEventStep):
        detail = f"wait for {step.event} (max {step.timeout})"
    elif isinstance(step, SendStep):
        detail = f"send {step.channel}: {step.template}"
    elif isinstance(step, BranchStep):
        detail = "branch"
    elif isinstance(step, SplitStep):
        detail = f"split: {step.hypothesis}"
    elif isinstance(step, ScoreStep):
        detail = f"score {step.points:+g}"
    elif isinstance(step, UpdateProfileStep):
        detail = "update profile: " + ", ".join(step.traits)
    elif isinstance(step, HandoffStep):
        detail = step.type.replace("_", " ")
    elif isinstance(step, WebhookStep):
        detail = "webhook"
    else:
        detail = step.type
    return _text(f"{step_id}<br/>{detail}")


def _edge_label(step, field: str) -> str:
    if isinstance(step, BranchStep):
        if field == "else":
            return "else"
        n = int(field[3 : field.index("]")])
        return _text(json.dumps(step.if_[n].when, separators=(",", ":"))[:60])
    if isinstance(step, SplitStep):
        n = int(field[9 : field.index("]")])
        return _text(f"{step.variants[n].key} ({step.variants[n].weight:g})")
    if field in ("on_event", "on_timeout"):
        return field.replace("_", " ")
    return ""


def mermaid(defn: JourneyDefinition) -> str:
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
        shape = ('{{"', '"}}') if isinstance(step, (BranchStep, SplitStep)) else ('["', '"]')
        lines.append(f"  {ids[sid]}{shape[0]}{_label(sid, step)}{shape[1]}")
    if defn.start in ids:
        lines.append(f"  trigger --> {ids[defn.start]}")
    for sid, step in defn.steps.items():
        for field, target in successors(step):
            if target in ids:
                label = _edge_label(step, field)
                arrow = f"-->|{label}|" if label else "-->"
                lines.append(f"  {ids[sid]} {arrow} {ids[target]}")
        if isinstance(step, SplitStep) and step.holdout:
            lines.append(
                f'  {ids[sid]} -->|holdout ({step.holdout.weight:g})| {ids[sid]}_h(["holdout"])'
            )
    for n, goal in enumerate(defn.exit_when):
        lines.append(f'  goal{n}(["goal: {_text(goal.event)} ends the run (converted)"])')
    return "\n".join(lines) + "\n"
