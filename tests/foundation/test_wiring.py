"""The composition root's lists agree with what the worker registers."""

from __future__ import annotations

from rejse import wiring
from rejse.db import make_engine
from rejse.runtime import Runtime
from rejse.settings import Settings


def test_activity_names_are_registered_activities(tmp_path):
    runtime = Runtime.create(Settings(data_dir=tmp_path), engine=make_engine("sqlite://"))
    registered = {
        # the SDK keeps an activity's name on the function it decorates
        fn.__temporal_activity_definition.name  # type: ignore[attr-defined]
        for fn in wiring.activities(runtime)
    }
    assert wiring.activity_names() <= registered
    assert len(registered) == len(wiring.activities(runtime))  # no name registered twice


def test_every_part_is_built_from_the_runtime_it_is_given(tmp_path):
    runtime = Runtime.create(Settings(data_dir=tmp_path), engine=make_engine("sqlite://"))
    processor = wiring.event_processor(runtime)
    assert processor.runtime is runtime
    # audiences last: they read the score and the customer value the event left
    assert [type(s).__name__ for s in processor.subscribers] == [
        "AttributionSubscriber",
        "ScoringSubscriber",
        "CustomerValueSubscriber",
        "FlagsSubscriber",
        "AudienceSubscriber",
    ]
    assert {type(d).__name__ for d in processor.dispatchers} == {
        "JourneyDispatcher",
        "HandoffDispatcher",
    }
    app = wiring.api_app(runtime)
    assert app.state.runtime is runtime
    assert {e.name for e in app.state.profile_erasers} == {
        "messaging",
        "journeys",
        "leads",
        "audiences",
        "maturity_flags",
    }
    assert app.state.activity_names == wiring.activity_names()
