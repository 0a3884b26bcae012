"""The profile services other domains use: create, snapshot (merged ids resolve), consent and
its precedence, internal events."""

import datetime as dt

import sqlalchemy as sa
from sqlmodel import select

from rejse.events.service import record_internal_event
from rejse.models.events import Event, OutboxEntry
from rejse.models.profiles import ConsentChangeRecord, ProfileMerge
from rejse.models.timeline import TimelineEntry
from rejse.profiles.consent import set_consent
from rejse.profiles.service import (
    create_profile,
    find_by_identifier,
    load_snapshot,
    load_snapshots,
)


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


def test_snapshots_in_one_go_say_what_each_alone_says(session):
    """Keyed by the id asked for: a merged-away id (two merges deep) answers with its survivor,
    an unknown id and a cycle of merges are left out."""
    a = create_profile(session, traits={"first_name": "Ida"}, identifiers={"email": "a@x.dk"})
    b = create_profile(session, identifiers={"phone": "+4512345678"}, consents={"sms": "granted"})
    session.add(ProfileMerge(from_profile_id="prf_old", into_profile_id="prf_mid", reason="t"))
    session.add(ProfileMerge(from_profile_id="prf_mid", into_profile_id=b, reason="t"))
    session.add(ProfileMerge(from_profile_id="prf_c1", into_profile_id="prf_c2", reason="t"))
    session.add(ProfileMerge(from_profile_id="prf_c2", into_profile_id="prf_c1", reason="t"))
    session.commit()
    asked = [a, b, "prf_old", "prf_unknown", "prf_c1", a]
    many = load_snapshots(session, profile_ids=asked)
    assert set(many) == {a, b, "prf_old"}
    assert many["prf_old"].id == b
    for pid, snap in many.items():
        assert snap == load_snapshot(session, profile_id=pid)
    assert many[b].consents == {"sms": "granted"}
    assert many[a].email == "a@x.dk"


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


T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def email_consent(session, pid: str) -> str | None:
    session.flush()
    return load_snapshot(session, profile_id=pid).consents.get("email")


def history(session, pid: str) -> list[tuple[str, str]]:
    return [
        (r.status, r.source)
        for r in session.exec(
            select(ConsentChangeRecord)
            .where(ConsentChangeRecord.profile_id == pid)
            .order_by(ConsentChangeRecord.id)
        )
    ]


def test_an_implicit_flag_never_overrides_an_explicit_revocation(session):
    pid = create_profile(session)

    def consent(status: str, source: str, hours: int):
        return set_consent(
            session,
            profile_id=pid,
            channel="email",
            status=status,
            source=source,
            at=T0 + hours * HOUR,
        )

    # implicit flags among themselves: the newer wins, as before
    assert consent("granted", "shopify checkout", 0)
    assert consent("denied", "shopify checkout", 1)
    # the person unsubscribes: explicit
    assert consent("revoked", "unsubscribe:msg_1", 2)
    # the box ticked at the next checkout and on the shop's customer record changes nothing
    assert consent("granted", "shopify checkout", 3) is None
    assert consent("granted", "shopify customer", 4) is None
    assert email_consent(session, pid) == "revoked"
    # only an explicit opt-in restores it, and a later unticked box does not undo that
    assert consent("granted", "preferences:msg_1", 5)
    assert consent("denied", "shopify checkout", 6) is None
    assert email_consent(session, pid) == "granted"
    # explicit decisions among themselves: the newer wins, a late older one does not
    assert consent("revoked", "api", 4) is None
    assert consent("revoked", "api", 7)
    assert email_consent(session, pid) == "revoked"
    assert history(session, pid) == [
        ("granted", "shopify checkout"),
        ("denied", "shopify checkout"),
        ("revoked", "unsubscribe:msg_1"),
        ("granted", "preferences:msg_1"),
        ("revoked", "api"),
    ]


def test_saying_explicitly_what_a_flag_said_makes_it_stick(session):
    pid = create_profile(session)
    assert set_consent(
        session, profile_id=pid, channel="email", status="granted", source="shopify checkout"
    )
    # the same status, now explicit (the newsletter form): recorded, so the flag cannot undo it
    change = set_consent(
        session, profile_id=pid, channel="email", status="granted", source="newsletter form"
    )
    assert change is not None
    assert change.source == "newsletter form"
    assert (
        set_consent(
            session,
            profile_id=pid,
            channel="email",
            status="denied",
            source="shopify checkout",
            at=dt.datetime.now(dt.UTC) + HOUR,
        )
        is None
    )
    assert email_consent(session, pid) == "granted"
    # an explicit decision outranks a flag whatever their times (flags are echoes)
    other = create_profile(session)
    set_consent(
        session, profile_id=other, channel="sms", status="granted", source="shopify customer"
    )
    assert set_consent(
        session,
        profile_id=other,
        channel="sms",
        status="revoked",
        source="api",
        at=dt.datetime.now(dt.UTC) - 24 * HOUR,
    )
    assert load_snapshot(session, profile_id=other).consents == {"sms": "revoked"}


def test_a_merge_keeps_an_explicit_revocation_over_a_newer_flag(session):
    from rejse.profiles.identity import merge_profiles

    # the known customer unsubscribed; a guest cart profile (merged into her once her email
    # arrives) carries a newer ticked box, and so does another guest's older one
    survivor = create_profile(session)
    guest = create_profile(session)
    set_consent(
        session, profile_id=survivor, channel="email", status="revoked", source="unsubscribe:m"
    )
    set_consent(
        session,
        profile_id=guest,
        channel="email",
        status="granted",
        source="shopify checkout",
        at=dt.datetime.now(dt.UTC) + HOUR,
    )
    # implicit flags merge as before: the newer one wins
    set_consent(
        session, profile_id=survivor, channel="sms", status="denied", source="shopify customer"
    )
    set_consent(
        session,
        profile_id=guest,
        channel="sms",
        status="granted",
        source="shopify customer",
        at=dt.datetime.now(dt.UTC) + HOUR,
    )
    session.flush()
    merge_profiles(session, into=survivor, from_=guest, event_id=None, reason="test")
    session.commit()
    assert load_snapshot(session, profile_id=survivor).consents == {
        "email": "revoked",
        "sms": "granted",
    }


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
