"""The profile services other domains use: create, snapshot (merged ids resolve), consent,
internal events."""

import sqlalchemy as sa
from sqlmodel import select

from rejse.events.service import record_internal_event
from rejse.models.events import Event, OutboxEntry
from rejse.models.profiles import ConsentChangeRecord, ProfileMerge
from rejse.models.timeline import TimelineEntry
from rejse.profiles.consent import set_consent
from rejse.profiles.service import create_profile, find_by_identifier, load_snapshot


def test_create_and_snapshot(session):
    pid = create_profile(
        session,
        traits={"email": "Mette@Example.dk", "first_name": "Mette"},
        identifiers={"user_id": "cust-1"},
        locale="da-DK",
        timezone="Europe/Copenhagen",
        consents={"email": "granted"},
    )
    session.commit()
    assert pid.startswith("prf_")
    assert len(pid) == 30
    snap = load_snapshot(session, profile_id=pid)
    assert snap.email == "mette@example.dk"
    assert snap.identifiers == {"user_id": ["cust-1"], "email": ["mette@example.dk"]}
    assert snap.locale == "da-DK"
    assert snap.timezone == "Europe/Copenhagen"
    assert snap.consents == {"email": "granted"}
    assert snap.lead_score == 0.0
    assert snap.lifecycle_stage is None
    assert not snap.erased
    assert find_by_identifier(session, type="email", value="METTE@example.dk ") == pid
    assert load_snapshot(session, profile_id="prf_unknown") is None


def test_snapshot_follows_merge(session):
    survivor = create_profile(session)
    session.add(ProfileMerge(from_profile_id="prf_gone", into_profile_id=survivor, reason="test"))
    session.commit()
    assert load_snapshot(session, profile_id="prf_gone").id == survivor


def test_consent_history_and_timeline(session):
    pid = create_profile(session)
    assert set_consent(session, profile_id=pid, channel="email", status="granted", source="signup")
    assert (
        set_consent(session, profile_id=pid, channel="email", status="granted", source="x") is None
    )
    change = set_consent(
        session, profile_id=pid, channel="email", status="revoked", source="unsubscribe"
    )
    session.commit()
    assert change.status == "revoked"
    assert load_snapshot(session, profile_id=pid).consents == {"email": "revoked"}
    history = session.exec(
        select(ConsentChangeRecord.status)
        .where(ConsentChangeRecord.profile_id == pid)
        .order_by(ConsentChangeRecord.id)
    ).all()
    assert history == ["granted", "revoked"]
    kinds = session.exec(select(TimelineEntry.kind).where(TimelineEntry.profile_id == pid)).all()
    assert kinds.count("consent") == 2


def test_record_internal_event_is_idempotent(session):
    pid = create_profile(session)
    assert record_internal_event(
        session,
        profile_id=pid,
        event="Email Opened",
        properties={"message_id": "msg_1"},
        message_id="open:msg_1",
    )
    assert not record_internal_event(
        session,
        profile_id=pid,
        event="Email Opened",
        properties={"message_id": "msg_1"},
        message_id="open:msg_1",
    )
    session.commit()
    events = session.exec(select(Event).where(Event.profile_id == pid)).all()
    assert [(e.type, e.event) for e in events] == [("internal", "Email Opened")]
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEntry)) == 1
