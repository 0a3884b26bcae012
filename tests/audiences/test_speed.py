"""What the fast paths must keep: the per-event re-check reads less and writes only what
changes, the bulk recomputation gives every profile the recheck `next_change` gives it, and
the score in SQL survives tiny products on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from rejse import wiring
from rejse.audiences import service
from rejse.audiences.facts import load_facts
from rejse.audiences.membership import MIN_RECHECK
from rejse.audiences.sql import membership_pages
from rejse.audiences.subscriber import AudienceSubscriber
from rejse.conditions import dependencies, evaluate, next_change, validate_condition
from rejse.db import utcnow
from rejse.events.processor import EventProcessor
from rejse.models.audiences import AudienceMembership
from rejse.models.profiles import Profile

from .condition_rows import NOW, Row, by_sql, clear, in_memory, insert
from .membership_helpers import (
    audience_events,
    create,
    definition,
    members,
    pid_of,
    profile,
    rechecks,
    track,
)
from .test_equivalence import conditions, rows


@pytest.mark.parametrize(
    ("behaviour", "age", "half_life"),
    [
        (1e-300, dt.timedelta(days=400), "P1D"),  # a tiny behaviour, a small factor
        (-1e-250, dt.timedelta(days=400), "P1D"),
        (5e-324, dt.timedelta(days=2), "P1D"),
        (1e-40, dt.timedelta(days=40), "PT1H"),  # a normal behaviour, a factor below 2**-500
        (2.0**-75, dt.timedelta(days=1000), "P1D"),  # exactly 2**-1075: rounds to zero
        (2.0**-74, dt.timedelta(days=1000), "P1D"),  # exactly 2**-1074: does not
        (1e-170, dt.timedelta(days=400), "P1D"),
    ],
)
def test_a_tiny_decayed_score_is_zero_not_an_error(engine, behaviour, age, half_life):
    """PostgreSQL raises on a float product that rounds to zero; Python gives 0.0."""
    clear(engine)
    ids = insert(engine, [Row(score=(behaviour, 0.0, NOW - age))], half_life=half_life)
    for cond in (
        {"score": {"gt": 0}},
        {"score": {"lt": 0}},
        {"score": {"eq": 0}},
        {"score": {"gte": 4e-324}},
    ):
        assert by_sql(engine, cond) == in_memory(engine, cond, ids), cond


# ------------------------------------------------------------------ bulk rechecks


def _reference(engine, cond, ids, *, now):
    """profile id -> (matches, next recheck) by `evaluate` / `next_change` on `load_facts`."""
    out = {}
    with Session(engine) as session:
        for pid in ids:
            facts = load_facts(session, pid, now=now)
            if not facts.found:
                continue
            due = next_change(cond, facts, now=now) if dependencies(cond).timed else None
            out[pid] = (
                evaluate(cond, facts, now=now),
                None if due is None else max(due, now + MIN_RECHECK),
            )
    return out


def _bulk(engine, cond, *, now, size):
    out, uptos = {}, []
    with Session(engine) as session:
        for page in membership_pages(session, cond, now=now, size=size):
            uptos.append(page.upto)
            for pid, inside, timed in page.rows:
                due = next_change(cond, timed, now=now) if timed is not None else None
                out[pid] = (inside, None if due is None else max(due, now + MIN_RECHECK))
    assert uptos[-1] is None
    assert all(u is not None for u in uptos[:-1])
    return out


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cond=conditions,
    profiles=st.lists(rows(), min_size=1, max_size=5),
    half_life=st.sampled_from([None, "P30D", "PT1H"]),
    now_shift=st.sampled_from([dt.timedelta(0), dt.timedelta(days=1, microseconds=7)]),
    size=st.sampled_from([1, 2, 5000]),
)
def test_bulk_rechecks_are_next_change_for_every_profile(
    engine, cond, profiles, half_life, now_shift, size
):
    """One pass of `membership_pages` gives each live profile exactly the membership
    `evaluate` and the recheck `next_change` give it on its own facts (never later, never
    earlier); a profile time cannot change gets none; the pages cover every id."""
    assert validate_condition(cond) == [], cond
    clear(engine)
    ids = insert(engine, profiles, half_life=half_life)
    now = NOW + now_shift
    expected = _reference(engine, cond, ids, now=now)
    got = _bulk(engine, cond, now=now, size=size)
    # the pass returns the profiles that match or that time can change (a few more may come
    # along: nothing for them), only the matching ones when time can change nothing
    assert set(got) <= set(expected)
    nothing = (False, None)
    assert {p: v for p, v in got.items() if v != nothing} == {
        p: v for p, v in expected.items() if v != nothing
    }, cond
    if not dependencies(cond).timed:
        assert all(inside for inside, _ in got.values())
        assert all(due is None for _, due in expected.values())


# ------------------------------------------------------------------ per event

TABLES = re.compile(
    r"\b(event|consent|profile_score|scoring_model|audience_recheck|audience_membership|profile)\b"
)


class Spy(AudienceSubscriber):
    """The real audience subscriber, recording the SQL it runs (verb, tables named)."""

    def __init__(self, engine):
        super().__init__()
        self.statements: list[tuple[str, frozenset[str]]] = []
        self.active = False

        @sa.event.listens_for(engine, "before_cursor_execute")
        def record(conn, cursor, statement, parameters, context, executemany):
            if self.active:
                text = statement.lower()
                tables = frozenset(TABLES.findall(text))
                self.statements.append((text.split(None, 1)[0], tables))

    def apply(self, session, event):
        self.active = True
        try:
            return super().apply(session, event)
        finally:
            self.active = False


async def test_an_event_that_changes_nothing_reads_little_and_writes_nothing(
    client, keys, runtime, engine
):
    """Re-checking two audiences for an order that changes neither: the profile, its
    memberships and rechecks, and one query for both event leaves; no consent or score read
    (no audience looks at them), no write at all (not even the event row's profile id)."""
    create(engine, "buyers", {"event": "Order Completed", "within": "P90D"})
    create(
        engine,
        "loyal",
        {
            "all": [
                {"event": "Order Completed", "count": {"gte": 3}},
                {"not": {"event": "Order Refunded", "within": "P30D"}},
            ]
        },
    )
    spy = Spy(engine)
    subscribers = [
        spy if s.name == "audiences" else s for s in wiring.in_transaction_subscribers(runtime)
    ]
    processor = EventProcessor(runtime, subscribers=subscribers, dispatchers=[])
    await track(client, keys, "u-1", "Order Completed")
    await processor.drain()
    pid = pid_of(engine, "u-1")
    assert members(engine, "buyers") == {pid}
    before = rechecks(engine)
    spy.statements.clear()
    await track(client, keys, "u-1", "Order Completed")
    await processor.drain()
    assert members(engine, "buyers") == {pid}
    assert members(engine, "loyal") == set()
    assert rechecks(engine) == before
    writes = [s for s in spy.statements if s[0] in ("insert", "update", "delete")]
    assert writes == []
    reads = [tables for verb, tables in spy.statements if verb == "select"]
    assert sum(1 for t in reads if "event" in t) == 1
    assert not any({"consent", "profile_score", "scoring_model"} & t for t in reads)
    assert len(reads) <= 4  # profile, memberships, rechecks, events


# ------------------------------------------------------------------ recomputation


@pytest.mark.parametrize("page", [1, 2, 3, 5000])
def test_recomputing_in_pages_diffs_every_id_range(engine, monkeypatch, page):
    """Members leave and enter across page edges; an erased member and the row of a profile
    that is gone leave silently, wherever their ids fall."""
    monkeypatch.setattr(service, "PAGE", page)
    ids = sorted(profile(engine, country=c) for c in ("DK", "SE", "DK", "SE", "DK", "NO"))
    country = {}
    with Session(engine) as s:
        for pid in ids:
            country[pid] = s.get(Profile, pid).traits["country"]
    create(engine, "nordic", {"trait": "country", "op": "in", "value": ["DK", "SE"]})
    nordic = {p for p in ids if country[p] in ("DK", "SE")}
    assert members(engine, "nordic") == nordic
    erased = next(p for p in ids if country[p] == "DK")
    with engine.begin() as conn:
        conn.execute(
            sa.update(Profile.__table__).where(Profile.__table__.c.id == erased),  # type: ignore[attr-defined]
            {"erased_at": utcnow()},
        )
        conn.execute(
            AudienceMembership.__table__.insert(),  # type: ignore[attr-defined]
            [
                {"audience_key": "nordic", "profile_id": gone, "entered_at": utcnow()}
                for gone in ("prf_0", "prf_zzzz")  # before and after every id
            ],
        )
    later = utcnow()
    with Session(engine) as s:
        within = {
            "any": [
                {"trait": "country", "op": "in", "value": ["SE", "NO"]},
                {"event": "Signed Up", "within": "P1D"},
            ]
        }
        service.update_audience(s, "nordic", definition("nordic", within), now=later)
        s.commit()
    wanted = {p for p in ids if country[p] in ("SE", "NO")}
    assert members(engine, "nordic") == wanted
    left = {p for p in nordic if country[p] == "DK" and p != erased}
    assert sorted(audience_events(engine)) == sorted(
        [(p, "Audience Entered", "nordic") for p in wanted - nordic]
        + [(p, "Audience Exited", "nordic") for p in left]
    )
    assert rechecks(engine, "nordic") == {}  # no Signed Up event: time changes nothing
