"""Journey definitions, versions and lifecycle; runs and stats. Framework-free service functions.

Lifecycle: draft -> published -> paused <-> published -> archived. Versions are immutable:
`PUT` adds a new draft version; publishing pins a version for new entries while running runs
keep the version they entered with."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from rejse import analytics_deltas as deltas
from rejse.conditions import Issue
from rejse.db import utcnow
from rejse.errors import Conflict, NotFound, Unprocessable
from rejse.journeys.definition import (
    JourneyDefinition,
    SplitStep,
    check_definition,
    parse_definition,
    publish_issues,
)
from rejse.journeys.split import HOLDOUT
from rejse.models.journeys import (
    ACTIVE_RUN_STATUSES,
    Journey,
    JourneyRun,
    JourneyStep,
    JourneyVersion,
)
from rejse.stats import two_proportion_z

TemplateCheck = Callable[[str, str], bool]


class DefinitionInvalid(Unprocessable):
    """A definition with problems; `issues` names each step and field."""

    def __init__(self, issues: list[Issue]):
        first = issues[0]
        super().__init__("; ".join(str(i) for i in issues[:10]), field=first.field)
        self.issues = issues


def _template_check(session: Session | None) -> TemplateCheck:
    from rejse.messaging.template_lookup import template_exists

    return lambda key, channel: template_exists(key=key, channel=channel, session=session)


def validate_definition(data: Any, *, template_exists: TemplateCheck | None) -> JourneyDefinition:
    """Parse and check; raise `DefinitionInvalid` naming every problem."""
    defn, issues = parse_definition(data)
    if defn is None:
        raise DefinitionInvalid(issues)
    issues = check_definition(defn, template_exists=template_exists)
    if issues:
        raise DefinitionInvalid(issues)
    return defn


def get_journey(session: Session, *, key: str) -> Journey:
    journey = session.get(Journey, key)
    if journey is None:
        raise NotFound(f"no journey {key!r}", field="key")
    return journey


def get_version(session: Session, *, key: str, version: int) -> JourneyVersion:
    row = session.get(JourneyVersion, (key, version))
    if row is None:
        raise NotFound(f"journey {key!r} has no version {version}", field="version")
    return row


def list_journeys(session: Session, *, status: str | None = None) -> list[Journey]:
    stmt = select(Journey).order_by(Journey.key)
    if status:
        stmt = stmt.where(Journey.status == status)
    return list(session.exec(stmt))


def list_versions(session: Session, *, key: str) -> list[JourneyVersion]:
    return list(
        session.exec(
            select(JourneyVersion)
            .where(JourneyVersion.journey_key == key)
            .order_by(col(JourneyVersion.version))
        )
    )


def create_journey(
    session: Session, *, definition: Any, template_exists: TemplateCheck | None = None
) -> JourneyVersion:
    """A new journey with version 1 as a draft (flushed, not committed)."""
    defn = validate_definition(
        definition, template_exists=template_exists or _template_check(session)
    )
    if session.get(Journey, defn.key) is not None:
        raise Conflict(
            f"journey {defn.key!r} exists; PUT /api/journeys/{defn.key} adds a version", field="key"
        )
    session.add(Journey(key=defn.key, name=defn.name, latest_version=1))
    version = JourneyVersion(journey_key=defn.key, version=1, definition=defn.dump())
    session.add(version)
    session.flush()
    return version


def add_version(
    session: Session, *, key: str, definition: Any, template_exists: TemplateCheck | None = None
) -> JourneyVersion:
    """A new immutable draft version of an existing journey."""
    journey = get_journey(session, key=key)
    if journey.status == "archived":
        raise Conflict(f"journey {key!r} is archived", field="key")
    if isinstance(definition, dict) and definition.get("key", key) != key:
        raise Unprocessable(f"the definition's key must be {key!r}", field="key")
    if isinstance(definition, dict):
        definition = {**definition, "key": key}
    defn = validate_definition(
        definition, template_exists=template_exists or _template_check(session)
    )
    journey.latest_version += 1
    journey.name = defn.name
    journey.updated_at = utcnow()
    version = JourneyVersion(
        journey_key=key, version=journey.latest_version, definition=defn.dump()
    )
    session.add_all([journey, version])
    session.flush()
    return version


def publish(
    session: Session,
    *,
    key: str,
    version: int | None = None,
    activity_names: AbstractSet[str],
    template_exists: TemplateCheck | None = None,
    webhook_allow_private: bool = False,
) -> Journey:
    """Pin `version` (default: the latest) for new entries. A paused journey stays paused.
    Webhook steps must call public addresses unless `webhook_allow_private`
    (`REJSE_WEBHOOK_ALLOW_PRIVATE`); every audience the definition names must exist."""
    journey = get_journey(session, key=key)
    if journey.status == "archived":
        raise Conflict(f"journey {key!r} is archived", field="key")
    row = get_version(session, key=key, version=version or journey.latest_version)
    defn = validate_definition(
        row.definition, template_exists=template_exists or _template_check(session)
    )
    issues = publish_issues(
        defn,
        activity_names=activity_names,
        webhook_allow_private=webhook_allow_private,
        audience_exists=lambda audience: _audience_exists(session, audience),
    )
    if issues:
        raise DefinitionInvalid(issues)
    if row.published_at is None:
        row.published_at = utcnow()
    journey.published_version = row.version
    if journey.status == "draft":
        journey.status = "published"
    journey.updated_at = utcnow()
    session.add_all([journey, row])
    session.flush()
    return journey


def _audience_exists(session: Session, key: str) -> bool:
    from rejse.audiences.service import audience_exists

    return audience_exists(session, key)


def set_status(session: Session, *, key: str, status: str) -> Journey:
    """pause / resume / archive (the caller tells running runs after commit)."""
    journey = get_journey(session, key=key)
    allowed = {
        "paused": ("published",),
        "published": ("paused",),
        "archived": ("draft", "published", "paused"),
    }[status]
    if journey.status == status and status != "published":
        return journey
    if journey.status not in allowed:
        verb = {"paused": "pause", "published": "resume", "archived": "archive"}[status]
        raise Conflict(f"cannot {verb} a journey that is {journey.status}", field="status")
    journey.status = status
    journey.updated_at = utcnow()
    session.add(journey)
    if status == "archived":
        now = utcnow()
        for run in active_runs(session, key=key):
            previous = run.status
            run.status, run.ended_at = "cancelled", now
            session.add(run)
            deltas.run_ended(session, run, previous_status=previous, previous_step=run.current_step)
    session.flush()
    return journey


def active_runs(session: Session, *, key: str) -> list[JourneyRun]:
    return list(
        session.exec(
            select(JourneyRun).where(
                JourneyRun.journey_key == key, col(JourneyRun.status).in_(ACTIVE_RUN_STATUSES)
            )
        )
    )


def workflow_ids_of(session: Session, *, key: str, statuses: tuple[str, ...]) -> list[str]:
    return list(
        session.exec(
            select(JourneyRun.workflow_id)
            .where(JourneyRun.journey_key == key, col(JourneyRun.status).in_(statuses))
            .distinct()
        )
    )


def published_definitions(
    session: Session,
    *,
    trigger_types: tuple[str, ...] | None = None,
) -> list[tuple[Journey, JourneyDefinition]]:
    """Journeys taking new entries, with their pinned definition."""
    stmt = (
        select(Journey, JourneyVersion)
        .join(
            JourneyVersion,
            sa.and_(
                col(JourneyVersion.journey_key) == col(Journey.key),
                col(JourneyVersion.version) == col(Journey.published_version),
            ),
        )
        .where(Journey.status == "published")
    )
    out = []
    for journey, version in session.exec(stmt):
        defn = JourneyDefinition.model_validate(version.definition)
        if trigger_types is None or defn.trigger.type in trigger_types:
            out.append((journey, defn))
    return out


# --------------------------------------------------------------------------------- visibility


def list_runs(
    session: Session,
    *,
    key: str,
    status: str | None = None,
    profile_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[JourneyRun]:
    get_journey(session, key=key)
    stmt = select(JourneyRun).where(JourneyRun.journey_key == key)
    if status:
        stmt = stmt.where(JourneyRun.status == status)
    if profile_id:
        stmt = stmt.where(JourneyRun.profile_id == profile_id)
    stmt = (
        stmt.order_by(col(JourneyRun.entered_at).desc(), JourneyRun.id).offset(offset).limit(limit)
    )
    return list(session.exec(stmt))


def stats(session: Session, *, key: str) -> dict[str, Any]:
    """Per step: entered, waiting, sent, converted, exited; per variant: runs, conversions and a
    two-proportion z-test against the first variant (and the holdout)."""
    journey = get_journey(session, key=key)
    entered: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    for step_id, outcome, n in session.exec(
        select(JourneyStep.step_id, JourneyStep.outcome, sa.func.count())
        .where(JourneyStep.journey_key == key)
        .group_by(col(JourneyStep.step_id), col(JourneyStep.outcome))
    ):
        entered[step_id] += n
        if outcome == "sent":
            sent[step_id] += n
    at_step: dict[str, Counter[str]] = defaultdict(Counter)
    runs_by_status: Counter[str] = Counter()
    variants: dict[str, Counter[str]] = defaultdict(Counter)
    for step_id, status, variant, converted, n in session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel types select() for up to 4 columns
            JourneyRun.current_step,
            JourneyRun.status,
            JourneyRun.variant,
            JourneyRun.converted,
            sa.func.count(),
        )
        .where(JourneyRun.journey_key == key)
        .group_by(
            JourneyRun.current_step, JourneyRun.status, JourneyRun.variant, JourneyRun.converted
        )
    ):
        runs_by_status[status] += n
        at_step[step_id or ""][status] += n
        if variant:
            variants[variant]["runs"] += n
            variants[variant]["converted"] += n if converted else 0
    step_ids = list(dict.fromkeys([*_definition_steps(session, journey), *entered]))
    steps = {}
    for sid in step_ids:
        c = at_step.get(sid, Counter())
        steps[sid] = {
            "entered": entered[sid],
            "waiting": c["running"] + c["held"],
            "sent": sent[sid],
            "converted": c["converted"],
            "exited": c["completed"] + c["exited"] + c["cancelled"] + c["failed"],
        }
    return {
        "journey": key,
        "runs": sum(runs_by_status.values()),
        "by_status": dict(runs_by_status),
        "steps": steps,
        "variants": _variant_stats(session, journey, variants),
    }


def _definition_steps(session: Session, journey: Journey) -> list[str]:
    version = session.get(
        JourneyVersion, (journey.key, journey.published_version or journey.latest_version)
    )
    return list(version.definition.get("steps", {})) if version else []


def _variant_stats(
    session: Session, journey: Journey, variants: dict[str, Counter[str]]
) -> dict[str, Any]:
    if not variants:
        return {}
    version = session.get(
        JourneyVersion, (journey.key, journey.published_version or journey.latest_version)
    )
    order: list[str] = []
    hypothesis = None
    if version:
        for step in JourneyDefinition.model_validate(version.definition).steps.values():
            if isinstance(step, SplitStep):
                order = [v.key for v in step.variants] + ([HOLDOUT] if step.holdout else [])
                hypothesis = step.hypothesis
                break
    keys = [k for k in order if k in variants] + sorted(k for k in variants if k not in order)
    control = keys[0]
    out: dict[str, Any] = {"hypothesis": hypothesis, "control": control, "arms": {}}
    c_runs, c_conv = variants[control]["runs"], variants[control]["converted"]
    for k in keys:
        runs, conv = variants[k]["runs"], variants[k]["converted"]
        arm: dict[str, Any] = {
            "runs": runs,
            "converted": conv,
            "conversion_rate": round(conv / runs, 4) if runs else None,
        }
        if k != control:
            test = two_proportion_z(c_conv, c_runs, conv, runs)
            arm["vs_control"] = (
                None
                if test is None
                else {
                    "z": round(test.z, 4),
                    "p_value": round(test.p_value, 6),
                    "significant": test.significant,
                }
            )
        out["arms"][k] = arm
    return out
