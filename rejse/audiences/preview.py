"""The size and a sample of a draft audience, computed from raw data and saved nowhere.

The draft's condition is checked as a saved audience's is (its shape, each field named by its
path such as `condition.all[1].op`, and the audiences it names exist), then counted with the
one SQL compilation of the condition language (`rejse.audiences.sql.profiles_matching`). The
sample is the newest matching profiles, each with its email and the chosen traits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from rejse.audiences.definition import AudienceDefinition
from rejse.audiences.service import check_definition
from rejse.audiences.sql import profiles_matching
from rejse.conditions import Issue, resolve_path
from rejse.models.profiles import Profile, ProfileIdentifier

DEFAULT_SAMPLE = 10
MAX_SAMPLE = 100
DEFAULT_TRAITS = ("first_name", "last_name", "country")


@dataclass(frozen=True)
class SampleProfile:
    id: str
    email: str | None
    traits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preview:
    size: int
    sample: list[SampleProfile]


def draft_issues(session: Session, condition: Any) -> list[Issue]:
    """Everything wrong with a draft's condition, each naming its field (`condition....`), as
    a saved audience's would be checked; empty when it can be counted."""
    # A key no audience can have (keys are slugs): the draft names no saved audience's key
    # and no saved audience names it, so only the draft's own references are checked.
    draft = AudienceDefinition.model_construct(key="", name="draft", condition=condition)
    return check_definition(session, draft)


def preview(
    session: Session,
    condition: Mapping[str, Any],
    *,
    now: dt.datetime,
    sample: int = DEFAULT_SAMPLE,
    traits: Sequence[str] = DEFAULT_TRAITS,
) -> Preview:
    """How many live profiles match `condition` now, and up to `sample` of them (newest
    first). `condition` must be free of `draft_issues`. Reads only."""
    matching = profiles_matching(session, condition, now=now).subquery()
    profile_id = matching.c[0]
    size = session.execute(sa.select(sa.func.count()).select_from(matching)).scalar_one()
    ids = list(
        session.execute(
            sa.select(profile_id).order_by(profile_id.desc()).limit(max(0, sample))
        ).scalars()
    )
    if not ids:
        return Preview(size=int(size), sample=[])
    stored = {
        p.id: p.traits or {} for p in session.exec(select(Profile).where(col(Profile.id).in_(ids)))
    }
    emails: dict[str, str] = {}
    rows = session.exec(
        select(ProfileIdentifier.profile_id, ProfileIdentifier.value)
        .where(col(ProfileIdentifier.profile_id).in_(ids), ProfileIdentifier.type == "email")
        .order_by(col(ProfileIdentifier.id))
    )
    for pid, value in rows:
        emails.setdefault(pid, value)
    missing = object()
    out = []
    for pid in ids:
        chosen = {}
        for name in traits:
            value = resolve_path(stored.get(pid, {}), name, missing)
            if value is not missing:
                chosen[name] = value
        out.append(SampleProfile(id=pid, email=emails.get(pid), traits=chosen))
    return Preview(size=int(size), sample=out)
