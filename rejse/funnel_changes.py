"""The lead funnel's change writer: scoring calls `record_change` in the transaction that
changes a profile's lifecycle stage (one append-only `stage_change` row), and `erase_history`
on a GDPR erase. It sits below scoring and imports only models, so the funnel's reader
(`rejse.analytics.funnel`, which folds and reads the changes) stays above what it counts."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Session

from rejse.models.funnel import StageChange

CHANGE = StageChange.__table__  # type: ignore[attr-defined]
ERASED = "erased"  # profile_id of an erased person's changes

_LAST = (
    sa.select(CHANGE.c.at, CHANGE.c.to_stage)
    .where(CHANGE.c.profile_id == sa.bindparam("_pid"))
    .order_by(CHANGE.c.id.desc())
    .limit(1)
)


# --------------------------------------------------------------------------------- writes


def record_change(
    session: Session,
    *,
    profile_id: str,
    from_stage: str | None,
    to_stage: str | None,
    at: dt.datetime,
    reason: str,
) -> None:
    """One stage change, in the caller's transaction (core SQL: the processor's hot path).
    The time in `from_stage` is measured from the change that entered it, when it is known."""
    if from_stage == to_stage:
        return
    conn = session.connection()
    seconds = None
    if from_stage is not None:
        last = conn.execute(_LAST, {"_pid": profile_id}).first()
        if last is not None and last.to_stage == from_stage:
            seconds = max(0.0, (at - last.at).total_seconds())
    conn.execute(
        CHANGE.insert(),
        {
            "profile_id": profile_id,
            "from_stage": from_stage,
            "to_stage": to_stage,
            "at": at,
            "reason": reason[:200],
            "seconds_in_from": seconds,
            "folded": False,
        },
    )


def erase_history(session: Session, *, profile_id: str) -> None:
    """GDPR erase: the changes stay counted, the link to the person goes."""
    session.connection().execute(
        CHANGE.update().where(CHANGE.c.profile_id == profile_id).values(profile_id=ERASED)
    )
