"""The per-step-type tables (interpreter handlers, diagram labels) cover every step type, and
the diagram draws each type as it did before the tables."""

from __future__ import annotations

from typing import Any, get_args

from rejse.journeys.definition import JourneyDefinition, Step
from rejse.journeys.diagram import LABELS, mermaid
from workflows.journey import JourneyWorkflow


def step_types() -> set[str]:
    [union, *_] = get_args(Step)
    return {t for model in get_args(union) for t in get_args(model.model_fields["type"].annotation)}


def test_the_interpreter_has_a_handler_for_every_step_type_but_exit():
    assert set(JourneyWorkflow().handlers) == step_types() - {"exit"}


def test_the_diagram_labels_every_step_type_but_exit():
    assert set(LABELS) == step_types() - {"exit"}


EVERY_STEP: dict[str, Any] = {
    "key": "every-step",
    "name": "every step",
    "trigger": {"type": "event", "event": "Checkout Started"},
    "exit_when": [{"event": 'Order "Completed"'}],
    "start": "w",
    "steps": {
        "w": {"type": "wait", "for": "P1D", "next": "u"},
        "u": {"type": "wait", "until": "09:00", "next": "wfe"},
        "wfe": {
            "type": "wait_for_event",
            "event": "Order Completed",
            "timeout": "P2D",
            "on_event": "b",
            "on_timeout": "s",
        },
        "b": {
            "type": "branch",
            "if": [{"when": {"trait": "country", "op": "eq", "value": "DK"}, "next": "sp"}],
            "else": "up",
        },
        "sp": {
            "type": "split",
            "hypothesis": 'a "quoted"\nhypothesis',
            "variants": [{"key": "a", "weight": 1.5, "next": "s"}, {"key": "b", "weight": 2}],
            "holdout": {"weight": 0.5},
        },
        "s": {"type": "send", "channel": "email", "template": "abandoned_cart/reminder"},
        "sc": {"type": "score", "points": -5, "reason": "r", "next": "up"},
        "up": {"type": "update_profile", "traits": {"a": 1, "b": None}, "next": "h"},
        "h": {"type": "crm_handoff", "next": "n"},
        "n": {"type": "notify_sales", "next": "wh"},
        "wh": {"type": "webhook", "url": "https://hooks.example/h", "next": "x"},
        "x": {"type": "exit"},
    },
}


def test_the_diagram_draws_every_step_type():
    q = "#quot;"
    assert mermaid(JourneyDefinition.model_validate(EVERY_STEP)).splitlines() == [
        "flowchart TD",
        '  trigger(["event: Checkout Started"])',
        '  s0["w<br/>wait P1D"]',
        '  s1["u<br/>wait until 09:00"]',
        '  s2["wfe<br/>wait for Order Completed (max P2D)"]',
        '  s3{{"b<br/>branch"}}',
        f'  s4{{{{"sp<br/>split: a {q}quoted{q} hypothesis"}}}}',
        '  s5["s<br/>send email: abandoned_cart/reminder"]',
        '  s6["sc<br/>score -5"]',
        '  s7["up<br/>update profile: a, b"]',
        '  s8["h<br/>crm handoff"]',
        '  s9["n<br/>notify sales"]',
        '  s10["wh<br/>webhook"]',
        '  s11["x<br/>exit"]',
        "  trigger --> s0",
        "  s0 --> s1",
        "  s1 --> s2",
        "  s2 -->|on event| s3",
        "  s2 -->|on timeout| s5",
        f"  s3 -->|{{{q}trait{q}:{q}country{q},{q}op{q}:{q}eq{q},{q}value{q}:{q}DK{q}}}| s4",
        "  s3 -->|else| s7",
        "  s4 -->|a (1.5)| s5",
        '  s4 -->|holdout (0.5)| s4_h(["holdout"])',
        "  s6 --> s7",
        "  s7 --> s8",
        "  s8 --> s9",
        "  s9 --> s10",
        "  s10 --> s11",
        f'  goal0(["goal: Order {q}Completed{q} ends the run (converted)"])',
    ]
