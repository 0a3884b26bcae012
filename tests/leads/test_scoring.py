"""Scoring in the processor's transaction: rules, caps, fit, lazy decay, stages."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from rejse.contracts import ProcessedEvent
from rejse.errors import DomainError
from rejse.models.leads import ProfileScore
from rejse.models.profiles import Profile
from rejse.scoring import service as scoring
from rejse.scoring.definition import ScoringDefinition
from rejse.scoring.subscriber import ScoringSubscriber
from rejse.timeline import list_entries
from tests.leads.conftest import MODEL, T0, activate, new_profile


def ev(
    pid: str, name: str | None, at: dt.datetime = T0, *, traits: dict | None = None, **props
) -> ProcessedEvent:
    return ProcessedEvent(
        event_id=uuid.uuid4().hex,
        profile_id=pid,
        type="track" if name else "identify",
        event=name,
        properties=props,
        traits=traits or {},
        timestamp=at,
        received_at=at,
    )


def test_event_rule_condition_and_cap_per_period(session, model):
    pid = new_profile(session)
    sub = ScoringSubscriber()
    for i in range(4):  # 5 points each, capped at 10 per day
        sub.apply(session, ev(pid, "Page Viewed", T0 + dt.timedelta(minutes=i), path="/pricing"))
    sub.apply(session, ev(pid, "Page Viewed", T0, path="/about"))  # condition false
    session.commit()
    view = scoring.current_score(session, profile_id=pid, now=T0 + dt.timedelta(minutes=5))
    assert view.breakdown["pricing"] == pytest.approx(10, rel=1e-3)
    # the next day the cap starts again
    sub.apply(session, ev(pid, "Page Viewed", T0 + dt.timedelta(days=1), path="/pricing"))
    state = session.get(ProfileScore, pid)
    assert state.breakdown["pricing"] == pytest.approx(10 * 0.5 ** (1 / 7) + 5, rel=1e-3)


def test_subscriber_wants_only_events_it_scores(session):
    """The processor skips its per-event flush for events no subscriber wants."""
    pid = new_profile(session)
    sub = ScoringSubscriber()
    assert not sub.wants(session, ev(pid, "Demo Requested"))  # no active model
    activate(session)
    sub = ScoringSubscriber()
    assert sub.wants(session, ev(pid, "Demo Requested"))  # an event with rules
    assert not sub.wants(session, ev(pid, "Some Page Thing"))  # no rule for it
    assert sub.wants(session, ev(pid, None, traits={"title": "CTO"}))  # fit may change
    merged = ev(pid, "Some Page Thing").model_copy(update={"merged_from": ["prf_old"]})
    assert sub.wants(session, merged)  # scores to fold


def test_decay_halves_after_one_half_life(session, model):
    pid = new_profile(session)
    ScoringSubscriber().apply(session, ev(pid, "Demo Requested", T0))
    session.commit()
    assert scoring.current_score(session, profile_id=pid, now=T0).score == pytest.approx(40)
    later = scoring.current_score(session, profile_id=pid, now=T0 + dt.timedelta(days=7))
    assert later.score == pytest.approx(20)
    assert later.breakdown == {"demo": pytest.approx(20)}
    # the next event applies the same decay exactly before adding its points
    ScoringSubscriber().apply(session, ev(pid, "Checkout Started", T0 + dt.timedelta(days=14)))
    assert session.get(ProfileScore, pid).behaviour == pytest.approx(10 + 20)


def test_fit_rules_from_traits(session, model):
    pid = new_profile(session)
    sub = ScoringSubscriber()
    sub.apply(session, ev(pid, None, traits={"country": "DK"}))
    view = scoring.current_score(session, profile_id=pid, now=T0 + dt.timedelta(days=70))
    assert view.fit == 10
    assert view.score == 10
    sub.apply(session, ev(pid, None, traits={"country": "SE"}))
    assert session.get(ProfileScore, pid).fit == 0


def test_stage_changes_are_events_once_and_never_backwards(session, model):
    pid = new_profile(session)
    sub = ScoringSubscriber()
    out = sub.apply(session, ev(pid, "Checkout Started"))
    assert out == [
        (
            "Lifecycle Stage Changed",
            {"from": "subscriber", "to": "lead", "score": 20.0, "reason": "score_threshold"},
        )
    ]
    out = sub.apply(session, ev(pid, "Demo Requested"))
    assert [p["to"] for _, p in out] == ["aql"]
    assert sub.apply(session, ev(pid, "Demo Requested")) == []  # already aql: no second crossing
    session.commit()
    # decay far below the threshold: the stage stays (no silent downgrade)
    assert sub.apply(session, ev(pid, "Page Viewed", T0 + dt.timedelta(days=100), path="/x")) == []
    assert session.get(ProfileScore, pid).stage == "aql"
    profile = session.get(Profile, pid)
    session.refresh(profile)
    assert profile.lifecycle_stage == "aql"
    kinds = [e.kind for e in list_entries(session, profile_id=pid)]
    assert kinds.count("stage") == 2
    assert kinds.count("score") >= 3
    # only an explicit change moves it back, and it is recorded
    assert scoring.set_stage(session, profile_id=pid, stage="lead", reason="sales: not ready") == (
        "aql",
        "lead",
    )
    assert list_entries(session, profile_id=pid)[0].kind == "stage"


def test_jump_over_several_thresholds_emits_each_stage(session, model):
    pid = new_profile(session)
    out = ScoringSubscriber().apply(session, ev(pid, "Demo Requested", amount=1))
    out += ScoringSubscriber().apply(session, ev(pid, "Checkout Started"))
    assert [p["to"] for _, p in out] == ["lead", "aql"]


def test_add_points_is_idempotent(session, model):
    pid = new_profile(session)
    for _ in range(2):
        scoring.add_points(
            session,
            profile_id=pid,
            points=7,
            reason="journey bonus",
            idempotency_key="journey:x:p:step",
            at=T0,
        )
    assert scoring.current_score(session, profile_id=pid, now=T0).score == 7


def test_merge_folds_score_into_survivor(session, model):
    a, b = new_profile(session), new_profile(session, country="SE")
    sub = ScoringSubscriber()
    sub.apply(session, ev(a, "Checkout Started"))
    sub.apply(session, ev(b, "Checkout Started"))
    merged = ev(b, "Demo Requested")
    merged.merged_from = [a]
    out = sub.apply(session, merged)
    assert session.get(ProfileScore, a) is None
    assert session.get(ProfileScore, b).behaviour == pytest.approx(80)
    assert out[-1][1]["to"] == "aql"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        (
            {
                "event_rules": [
                    {
                        "id": "a",
                        "event": "X",
                        "points": 1,
                        "condition": {"trait": "x", "op": "eq", "value": 1},
                    }
                ]
            },
            "event_rules.0.condition",
        ),
        (
            {
                "event_rules": [
                    {"id": "a", "event": "X", "points": 1, "cap": {"points": 3, "per": "P1M"}}
                ]
            },
            "event_rules.0.cap.per",
        ),
        (
            {
                "fit_rules": [
                    {"id": "f", "points": 1, "condition": {"trait": "x", "op": "zz", "value": 1}}
                ]
            },
            "fit_rules.0.condition.op",
        ),
        ({"thresholds": {"lead": 60, "aql": 50}}, "thresholds.aql"),
        ({"half_life": "soon"}, "half_life"),
        ({"handoff": {"reminder_after": "P2D", "escalate_after": "P1D"}}, "handoff.reminder_after"),
    ],
)
def test_bad_models_name_the_field(session, patch, field):
    with pytest.raises(DomainError) as err:
        scoring.create_model(
            session, definition=ScoringDefinition.model_validate({**MODEL, **patch})
        )
    assert err.value.field == field
