"""Data the console-b page tests share: a profile with identifiers, consent, orders and a
score; a rep with a bound sales key and leads in its list."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from rejse.db import utcnow
from rejse.keys import create_key
from rejse.leads import service as leads
from rejse.leads.schemas import RepCreate
from rejse.maturity import flags
from rejse.models.leads import Lead
from rejse.profiles.consent import set_consent
from rejse.profiles.service import create_profile
from rejse.roles import Role
from rejse.runtime import Runtime
from rejse.timeline import add_entry


def phone_of(email: str) -> str:
    """A Danish number of its own for each email (+45 and eight digits)."""
    return "+45" + str(12345678 + sum(ord(c) * 31**i for i, c in enumerate(email)) % 80_000_000)


def new_profile(session: Session, email: str = "ida.holm@example.dk", **traits: object) -> str:
    pid = create_profile(
        session,
        traits={"first_name": "Ida", "last_name": "Holm", "company": "Holm ApS", **traits},
        identifiers={
            "email": email,
            "user_id": f"u-{email.split('@')[0]}",
            "phone": phone_of(email),
        },
    )
    set_consent(session, profile_id=pid, channel="email", status="granted", source="signup")
    add_entry(
        session, profile_id=pid, kind="event", at=utcnow(), summary="Page Viewed /pricing", data={}
    )
    session.commit()
    return pid


def recount_maturity_flags(session: Session) -> None:
    """The prefill counts per-profile flags the event processor keeps; profiles made here
    skip the processor, so set their flags as `rejse.maturity.flags.rebuild` does."""
    session.commit()
    flags.rebuild(session.get_bind())  # type: ignore[arg-type]  # bound to the test's engine


def new_rep(session: Session, name: str) -> str:
    rep = leads.create_rep(session, rep=RepCreate(name=name, email=f"{name.lower()}@shop.dk"))
    session.commit()
    return rep.id


def rep_key(runtime: Runtime, rep_id: str) -> str:
    with Session(runtime.engine) as s:
        _, raw = create_key(s, name="rep key", role=Role.sales, rep_id=rep_id)
        s.commit()
    return raw


def new_lead(
    session: Session, pid: str, rep_id: str | None, n: int, *, hours_left: float = 20
) -> str:
    now = utcnow()
    lead_id = f"lead{n:028d}"
    lead = Lead(
        id=lead_id,
        profile_id=pid,
        trigger_key=f"test-{n}",
        workflow_id=f"handoff:test-{n}",
        source="score:aql",
        reason="reached AQL (score 62)",
        score=62.0,
        status="assigned" if rep_id else "open",
        rep_id=rep_id,
        assigned_at=now,
        due_at=now + dt.timedelta(hours=hours_left),
        history=[{"kind": "created", "at": now.isoformat(), "source": "score:aql"}],
        crm_enabled=False,
        crm_status="skipped",
        created_at=now - dt.timedelta(hours=1),
    )
    session.add(lead)
    session.commit()
    return lead_id
