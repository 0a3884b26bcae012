"""The audience service: checks that need the other audiences (unknown keys, cycles), the
membership a definition computes, the events creation and changes emit, deletion, reads."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from rejse.audiences import service
from rejse.audiences.service import AudienceInvalid
from rejse.db import utcnow
from rejse.errors import Conflict, NotFound, Unprocessable
from rejse.models.audiences import Audience, AudienceMembership
from tests.audiences.membership_helpers import (
    audience_event_rows,
    audience_events,
    create,
    definition,
    members,
    profile,
)

DK = {"trait": "country", "op": "eq", "value": "DK"}


def _issues(exc: AudienceInvalid) -> dict[str, str]:
    return {i.field: i.message for i in exc.issues}


def test_unknown_audience_is_refused_with_its_path_and_nothing_is_saved(engine):
    profile(engine, country="DK")
    with Session(engine) as s:
        cond = {"all": [DK, {"any": [{"consent": "email"}, {"audience": "vip"}]}]}
        with pytest.raises(AudienceInvalid) as caught:
            service.create_audience(s, definition("dk-vip", cond), now=utcnow())
        s.rollback()
        assert caught.value.status_code == 422
        assert caught.value.field == "condition.all[1].any[1].audience"
        assert "vip" in _issues(caught.value)["condition.all[1].any[1].audience"]
        assert s.get(Audience, "dk-vip") is None
        assert not s.exec(select(AudienceMembership)).all()


def test_invalid_condition_names_its_field(session):
    bad = {"all": [{"trait": "country", "op": "equals", "value": "DK"}]}
    with pytest.raises(AudienceInvalid) as caught:
        service.create_audience(session, definition("bad", bad), now=utcnow())
    assert caught.value.field == "condition.all[0].op"
    one_event = {"any": [DK, {"property": "total", "op": "gt", "value": 100}]}
    with pytest.raises(AudienceInvalid) as caught:
        service.create_audience(session, definition("big", one_event), now=utcnow())
    assert caught.value.field == "condition.any[1].property"
    assert service.check_definition(session, definition("ok", DK)) == []


def test_cycles_are_refused_directly_and_through_others(engine):
    create(engine, "a", DK)
    create(engine, "b", {"audience": "a"})
    create(engine, "c", {"all": [{"audience": "b"}, {"consent": "email"}]})
    with Session(engine) as s:
        with pytest.raises(AudienceInvalid) as caught:
            service.update_audience(
                s, "a", definition("a", {"not": {"audience": "c"}}), now=utcnow()
            )
        s.rollback()
        assert caught.value.field == "condition.not.audience"
        assert "a -> c -> b -> a" in caught.value.message
        with pytest.raises(AudienceInvalid) as caught:
            service.update_audience(
                s, "b", definition("b", {"any": [DK, {"audience": "b"}]}), now=utcnow()
            )
        s.rollback()
        assert caught.value.field == "condition.any[1].audience"
        assert s.get(Audience, "a").condition == DK  # unchanged
        assert s.get(Audience, "a").version == 1


def test_key_taken_is_a_conflict(engine):
    create(engine, "dk", DK)
    with Session(engine) as s, pytest.raises(Conflict) as caught:
        service.create_audience(s, definition("dk", DK), now=utcnow())
    assert caught.value.field == "key"


def test_existing_members_enter_silently_unless_trigger_existing(engine):
    dk1, dk2 = profile(engine, country="DK"), profile(engine, country="DK")
    profile(engine, country="SE")
    create(engine, "quiet", DK)
    assert members(engine, "quiet") == {dk1, dk2}
    assert audience_events(engine) == []
    create(engine, "loud", DK, trigger_existing=True)
    assert members(engine, "loud") == {dk1, dk2}
    assert sorted(audience_events(engine)) == sorted(
        [(dk1, "Audience Entered", "loud"), (dk2, "Audience Entered", "loud")]
    )
    rows = audience_event_rows(engine)
    assert all(r.type == "internal" and r.message_id.startswith("aud:loud:") for r in rows)
    assert all("@" not in r.message_id.split(":")[2] for r in rows)  # ids, never emails
    with Session(engine) as s:
        assert service.get_audience(s, "loud").size == 2


def test_changed_condition_emits_exactly_the_differences(engine):
    dk, se, no = (profile(engine, country=c) for c in ("DK", "SE", "NO"))
    create(engine, "nordic", {"trait": "country", "op": "in", "value": ["DK", "SE"]})
    with Session(engine) as s:
        updated = service.update_audience(
            s,
            "nordic",
            definition("nordic", {"trait": "country", "op": "in", "value": ["SE", "NO"]}),
            now=utcnow(),
        )
        s.commit()
        assert updated.version == 2
        assert updated.size == 2
    assert members(engine, "nordic") == {se, no}
    assert sorted(audience_events(engine)) == sorted(
        [(no, "Audience Entered", "nordic"), (dk, "Audience Exited", "nordic")]
    )
    # the name alone changes no member and no version
    with Session(engine) as s:
        same = {"trait": "country", "op": "in", "value": ["SE", "NO"]}
        again = service.update_audience(
            s, "nordic", definition("nordic", same, name="N"), now=utcnow()
        )
        s.commit()
        assert (again.version, again.name) == (2, "N")
    assert len(audience_events(engine)) == 2


def test_audiences_naming_a_changed_one_follow_it(engine):
    dk, se = profile(engine, country="DK"), profile(engine, country="SE")
    create(engine, "base", DK)
    create(engine, "derived", {"audience": "base"})
    assert members(engine, "derived") == {dk}
    with Session(engine) as s:
        service.update_audience(
            s,
            "base",
            definition("base", {"trait": "country", "op": "eq", "value": "SE"}),
            now=utcnow(),
        )
        s.commit()
    assert members(engine, "derived") == {se}
    assert (se, "Audience Entered", "derived") in audience_events(engine)
    assert (dk, "Audience Exited", "derived") in audience_events(engine)


def test_delete_is_refused_while_named_and_then_emits_nothing(engine):
    dk = profile(engine, country="DK")
    create(engine, "base", DK)
    create(engine, "derived", {"not": {"audience": "base"}})
    with Session(engine) as s:
        with pytest.raises(Conflict) as caught:
            service.delete_audience(s, "base")
        assert "derived" in caught.value.message
        s.rollback()
        service.delete_audience(s, "derived")
        service.delete_audience(s, "base")
        s.commit()
        assert service.list_audiences(s) == []
        with pytest.raises(NotFound):
            service.delete_audience(s, "base")
    assert members(engine, "base") == set()
    assert audience_events(engine) == []
    # the key can be used again, and its events are not mistaken for the old audience's
    create(engine, "base", DK, trigger_existing=True)
    assert audience_events(engine) == [(dk, "Audience Entered", "base")]


def test_reads_members_pages_and_profile_audiences(engine):
    ids = sorted(profile(engine, country="DK") for _ in range(5))
    create(engine, "dk", DK)
    create(engine, "all-dk", {"all": [{"audience": "dk"}, {"trait": "country", "op": "exists"}]})
    with Session(engine) as s:
        assert service.audience_exists(s, "dk")
        assert not service.audience_exists(s, "nope")
        first = service.member_ids(s, "dk", limit=2)
        rest = service.member_ids(s, "dk", after=first[-1], limit=10)
        assert first + rest == ids
        assert service.profile_audiences(s, ids[0]) == ["all-dk", "dk"]
        assert [(a.key, a.size) for a in service.list_audiences(s)] == [("all-dk", 5), ("dk", 5)]
        with pytest.raises(NotFound):
            service.member_ids(s, "nope")
        with pytest.raises(Unprocessable) as caught:
            service.member_ids(s, "dk", limit=0)
        assert caught.value.field == "limit"
        with pytest.raises(NotFound) as missing:
            service.get_audience(s, "nope")
        assert missing.value.field == "key"


def test_update_refuses_a_definition_for_another_key(engine):
    create(engine, "dk", DK)
    with Session(engine) as s, pytest.raises(Unprocessable) as caught:
        service.update_audience(s, "dk", definition("other", DK), now=utcnow())
    assert caught.value.field == "key"
