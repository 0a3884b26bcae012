"""The "next customer to contact" list reads its leads' profiles and scores in a few batched
queries, whatever the number of leads, and gives what the per-lead reads gave."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import sqlalchemy as sa
from sqlmodel import Session

from rejse.db import utcnow
from rejse.leads import service as leads
from rejse.models.profiles import Profile, ProfileMerge
from rejse.profiles.service import create_profile, load_snapshot
from rejse.scoring import service as scoring
from tests.leads.conftest import assigned_lead, new_rep


@contextmanager
def counted(session: Session):
    """The statements the session's engine runs inside the block."""
    statements: list[str] = []
    engine = session.get_bind()

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def one_by_one(session: Session, rep_id: str, now: dt.datetime) -> list[tuple[str, float, str]]:
    """What each lead's own reads say: (lead, score, email) of the leads still to contact."""
    out = []
    for item in leads.next_to_contact(session, rep_id=rep_id, limit=100, now=now):
        lead = leads.get_lead(session, lead_id=item.lead_id)
        snap = load_snapshot(session, profile_id=lead.profile_id)
        view = scoring.current_score(session, profile_id=snap.id, now=now)
        out.append((item.lead_id, view.score, snap.email))
    return out


def lead_for(session: Session, rep_id: str, key: str) -> str:
    """An open lead of a new profile (its own email), assigned to `rep_id`."""
    pid = create_profile(session, identifiers={"email": f"{key}@example.dk"})
    return assigned_lead(session, rep_id=rep_id, key=key, profile_id=pid)


def make_team(session: Session, n: int) -> str:
    rep = new_rep(session, f"Rep{n}")
    for i in range(n):
        lead_id = lead_for(session, rep, f"k{n:02d}x{i:02d}")
        if i % 3 == 0:  # some leads carry points, some none (no score state at all)
            pid = leads.get_lead(session, lead_id=lead_id).profile_id
            scoring.add_points(
                session, profile_id=pid, points=10 + i, reason="test", idempotency_key=lead_id
            )
    session.commit()
    return rep


def test_the_list_costs_the_same_statements_for_3_leads_as_for_30(session, model):
    now = utcnow()
    small, large = make_team(session, 3), make_team(session, 30)
    with counted(session) as few:
        assert len(leads.next_to_contact(session, rep_id=small, limit=100, now=now)) == 3
    with counted(session) as many:
        assert len(leads.next_to_contact(session, rep_id=large, limit=100, now=now)) == 30
    assert len(many) == len(few) <= 10


def test_the_batched_list_says_what_each_lead_alone_says(session, model):
    now = utcnow()
    rep = make_team(session, 9)
    items = leads.next_to_contact(session, rep_id=rep, limit=100, now=now)
    assert [i.score for i in items] == sorted((i.score for i in items), reverse=True)
    assert {i.score for i in items} == {0.0, 10.0, 13.0, 16.0}
    assert [(i.lead_id, i.score, i.contact.email) for i in items] == one_by_one(session, rep, now)


def test_a_merged_lead_shows_its_survivor_and_an_erased_one_leaves(session, model):
    now = utcnow()
    rep = make_team(session, 3)
    first, second, third = leads.next_to_contact(session, rep_id=rep, limit=100, now=now)
    # the first lead's profile is merged away into a new one with its own email
    survivor = create_profile(session, identifiers={"email": "survivor@example.dk"})
    merged = leads.get_lead(session, lead_id=first.lead_id).profile_id
    session.delete(session.get(Profile, merged))
    session.add(ProfileMerge(from_profile_id=merged, into_profile_id=survivor, reason="test"))
    erased = session.get(Profile, leads.get_lead(session, lead_id=second.lead_id).profile_id)
    erased.erased_at = now
    session.add(erased)
    session.commit()
    items = {i.lead_id: i for i in leads.next_to_contact(session, rep_id=rep, limit=100, now=now)}
    assert set(items) == {first.lead_id, third.lead_id}
    assert items[first.lead_id].contact.email == "survivor@example.dk"
    assert items[first.lead_id].score == 0.0  # the survivor's own score, not the old one's
