"""Campaign KPIs per journey, step, version, day, template and channel, and across journeys,
read from the counters (`rejse.analytics.rollups`), with each journey's attribution settings
and KPI targets beside the actual figures (docs/analytics.md, "Figures and rates").

Rates and their denominators:
- delivery_rate = delivered / sent (sent = delivered + failed: what passed the guards)
- open_rate, click_rate, unsubscribe_rate, conversion_rate = opened, clicked, unsubscribed,
  converted / delivered (Klaviyo's "recipients")
- click_to_open_rate = clicked / opened
- run_conversion_rate = converted / entered (runs; journey, version and day rows)
- revenue_per_recipient = revenue / delivered
A rate whose denominator is zero is null."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from rejse import analytics_deltas as deltas
from rejse.analytics import rollups
from rejse.analytics.attribution import DEFAULT_RULE
from rejse.durations import DurationError, parse_duration
from rejse.errors import NotFound, Unprocessable
from rejse.models.analytics import REVENUE_SCALE, AnalyticsJourney
from rejse.models.journeys import Journey, JourneyVersion

COUNTS = (
    "entered",
    "waiting",
    "sent",
    "delivered",
    "failed",
    "skipped",
    "opened",
    "clicked",
    "unsubscribed",
    "converted",
    "converted_goal",
    "converted_window",
)
RATES: Mapping[str, tuple[str, str]] = {
    "delivery_rate": ("delivered", "sent"),
    "open_rate": ("opened", "delivered"),
    "click_rate": ("clicked", "delivered"),
    "click_to_open_rate": ("clicked", "opened"),
    "unsubscribe_rate": ("unsubscribed", "delivered"),
    "conversion_rate": ("converted", "delivered"),
    "run_conversion_rate": ("converted", "entered"),
}
MONEY = ("revenue", "revenue_per_recipient")
TARGET_METRICS = tuple(c for c in COUNTS if c != "waiting") + tuple(RATES) + MONEY
MAX_SPAN_DAYS = 3660


@dataclass(frozen=True)
class Period:
    start: dt.date | None = None
    end: dt.date | None = None

    def dump(self) -> dict[str, str | None]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }


def period(start: dt.date | None, end: dt.date | None) -> Period:
    """The period `from`..`to` (inclusive, UTC days); 422 naming `to` when it ends first."""
    if start is not None and end is not None:
        if end < start:
            raise Unprocessable("the period ends before it starts", field="to")
        if (end - start).days > MAX_SPAN_DAYS:
            raise Unprocessable(f"a period spans at most {MAX_SPAN_DAYS} days", field="to")
    return Period(start, end)


# ------------------------------------------------------------------------------- figures


@dataclass
class Tally:
    """One group's metrics as read: {metric: n}, revenue in units."""

    n: dict[str, int]
    revenue_units: int = 0

    def get(self, metric: str) -> int:
        return self.n.get(metric, 0)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def figures(t: Tally, *, run_level: bool, waiting: int | None = None) -> dict[str, Any]:
    """Counts, reasons, money and rates of one group. `run_level`: `entered` counts runs (a
    journey, version or day); otherwise the runs that reached the step."""
    delivered, failed = t.get(deltas.MSG_DELIVERED), t.get(deltas.MSG_FAILED)
    goal, window = t.get(deltas.CONVERTED + "goal"), t.get(deltas.CONVERTED + "window")
    out: dict[str, Any] = {
        "entered": t.get(deltas.ENTERED if run_level else deltas.STEP_ENTERED),
        "sent": delivered + failed,
        "delivered": delivered,
        "failed": failed,
        "skipped": t.get(deltas.MSG_SKIPPED),
        "opened": t.get(deltas.OPENED),
        "clicked": t.get(deltas.CLICKED),
        "unsubscribed": t.get(deltas.UNSUBSCRIBED),
        "converted": goal + window,
        "converted_goal": goal,
        "converted_window": window,
        "revenue": round(t.revenue_units / REVENUE_SCALE, 4),
    }
    if waiting is not None:
        out["waiting"] = waiting
    out["skipped_reasons"] = _reasons(t, deltas.MSG_SKIPPED)
    out["failed_reasons"] = _reasons(t, deltas.MSG_FAILED)
    out["ended"] = {
        m.removeprefix(deltas.ENDED): n
        for m, n in sorted(t.n.items())
        if m.startswith(deltas.ENDED) and n
    }
    for name, (num, den) in RATES.items():
        out[name] = _ratio(out[num], out[den])
    out["revenue_per_recipient"] = _ratio(out["revenue"], delivered)
    return out


def _reasons(t: Tally, base: str) -> dict[str, int]:
    prefix = base + "."
    return {m.removeprefix(prefix): n for m, n in sorted(t.n.items()) if m.startswith(prefix) and n}


def _tallies(counts: Iterable[rollups.Count]) -> dict[tuple[Any, ...], Tally]:
    out: dict[tuple[Any, ...], Tally] = defaultdict(lambda: Tally({}))
    for c in counts:
        if c.metric.startswith(deltas.ARM_PREFIX):
            continue  # the A/B arms' counters (rejse.analytics.experiments): not KPIs
        t = out[c.key]
        t.n[c.metric] = t.n.get(c.metric, 0) + c.n
        t.revenue_units += c.revenue_units
    return out


_WAIT = (deltas.STEP_ENTERED, deltas.STEP_LEFT)


def waiting_now(
    session: Session, *, journey_key: str | None, group_by: Sequence[str]
) -> dict[tuple[Any, ...], int]:
    """Runs waiting now (reached minus left, over all time), grouped."""
    out: dict[tuple[Any, ...], int] = defaultdict(int)
    for c in rollups.counts(
        session, group_by=group_by, journey_key=journey_key, in_journeys=True, metrics=_WAIT
    ):
        out[c.key] += c.n if c.metric == deltas.STEP_ENTERED else -c.n
    return out


# ------------------------------------------------------------------------------- settings


def get_journey(session: Session, key: str) -> Journey:
    journey = session.get(Journey, key)
    if journey is None:
        raise NotFound(f"no journey {key!r}", field="key")
    return journey


def settings_of(session: Session, key: str) -> AnalyticsJourney:
    row = session.get(AnalyticsJourney, key)
    if row is None:
        return AnalyticsJourney(
            journey_key=key,
            conversion_event=DEFAULT_RULE.conversion_event,
            attribution_window="P5D",
            targets={},
        )
    return row


def set_attribution(
    session: Session, key: str, *, conversion_event: str, attribution_window: str
) -> AnalyticsJourney:
    get_journey(session, key)
    try:
        parse_duration(attribution_window)
    except DurationError as exc:
        raise Unprocessable(str(exc), field="attribution_window") from None
    row = session.get(AnalyticsJourney, key) or AnalyticsJourney(journey_key=key, targets={})
    row.conversion_event, row.attribution_window = conversion_event, attribution_window
    row.updated_at = dt.datetime.now(dt.UTC)
    session.add(row)
    session.flush()
    return row


def target_issues(targets: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each target that is not {min and/or max} of a known metric."""
    issues = []
    for metric, bound in targets.items():
        where = f"targets.{metric}"
        if metric not in TARGET_METRICS:
            issues.append((where, f"unknown metric; one of {', '.join(TARGET_METRICS)}"))
            continue
        if not isinstance(bound, Mapping) or not bound or set(bound) - {"min", "max"}:
            issues.append((where, "give min and/or max"))
            continue
        for side, value in bound.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                issues.append((f"{where}.{side}", "a number, 0 or more"))
            elif metric in RATES and value > 1:
                issues.append((f"{where}.{side}", "a rate is between 0 and 1 (0.05 = 5 %)"))
        clean = not any(i[0].startswith(where) for i in issues)
        if clean and "min" in bound and "max" in bound and bound["min"] > bound["max"]:
            issues.append((f"{where}.max", "max is below min"))
    return issues


def set_targets(session: Session, key: str, targets: Mapping[str, Any]) -> AnalyticsJourney:
    get_journey(session, key)
    issues = target_issues(targets)
    if issues:
        raise Unprocessable("; ".join(f"{f}: {m}" for f, m in issues), field=issues[0][0])
    row = session.get(AnalyticsJourney, key) or AnalyticsJourney(
        journey_key=key,
        conversion_event=DEFAULT_RULE.conversion_event,
        attribution_window="P5D",
    )
    row.targets = {m: dict(b) for m, b in targets.items()}
    row.updated_at = dt.datetime.now(dt.UTC)
    session.add(row)
    session.flush()
    return row


def against_targets(targets: Mapping[str, Any], actual: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target beside the actual figure: met, not met, or null while there is no figure."""
    out = []
    for metric, bound in sorted(targets.items()):
        value = actual.get(metric)
        low, high = bound.get("min"), bound.get("max")
        met = None
        if value is not None:
            met = (low is None or value >= low) and (high is None or value <= high)
        out.append({"metric": metric, "min": low, "max": high, "actual": value, "met": met})
    return out


# ------------------------------------------------------------------------------- tables


def _read(
    session: Session, p: Period, *, group_by: Sequence[str], journey_key: str | None = None
) -> dict[tuple[Any, ...], Tally]:
    return _tallies(
        rollups.counts(
            session,
            group_by=group_by,
            journey_key=journey_key,
            in_journeys=journey_key is None and "template" not in group_by,
            day_from=p.start,
            day_to=p.end,
        )
    )


def _step_order(session: Session, journey: Journey) -> list[tuple[str, str]]:
    version = session.get(
        JourneyVersion, (journey.key, journey.published_version or journey.latest_version)
    )
    steps = (version.definition.get("steps") or {}) if version else {}
    return [(sid, str(step.get("type", ""))) for sid, step in steps.items()]


def journey_summary(session: Session, key: str, p: Period) -> dict[str, Any]:
    journey = get_journey(session, key)
    settings = settings_of(session, key)
    total = _read(session, p, group_by=(), journey_key=key).get((), Tally({}))
    waiting = sum(waiting_now(session, journey_key=key, group_by=()).values())
    actual = figures(total, run_level=True, waiting=waiting)
    return {
        "journey": key,
        "name": journey.name,
        "status": journey.status,
        "period": p.dump(),
        "settings": {
            "conversion_event": settings.conversion_event,
            "attribution_window": settings.attribution_window,
        },
        "totals": actual,
        "targets": against_targets(settings.targets or {}, actual),
    }


def journey_steps(
    session: Session, key: str, p: Period, *, version: int | None = None
) -> dict[str, Any]:
    journey = get_journey(session, key)
    if version is not None and session.get(JourneyVersion, (key, version)) is None:
        raise NotFound(f"journey {key!r} has no version {version}", field="version")
    group = ("step_id",) if version is None else ("version", "step_id")
    tallies = _read(session, p, group_by=group, journey_key=key)
    waits = waiting_now(session, journey_key=key, group_by=group)
    if version is not None:
        tallies = {k[1:]: t for k, t in tallies.items() if k[0] == version}
        waits = defaultdict(int, {k[1:]: n for k, n in waits.items() if k[0] == version})
    order = _step_order(session, journey)
    types = dict(order)
    ids = [sid for sid, _ in order] + sorted({k[0] for k in tallies if k[0] and k[0] not in types})
    rows = []
    for sid in ids:
        t = tallies.get((sid,), Tally({}))
        rows.append(
            {
                "step_id": sid,
                "type": types.get(sid),
                **figures(t, run_level=False, waiting=waits.get((sid,), 0)),
            }
        )
    return {"journey": key, "version": version, "period": p.dump(), "steps": rows}


def journey_versions(session: Session, key: str, p: Period) -> dict[str, Any]:
    get_journey(session, key)
    tallies = _read(session, p, group_by=("version",), journey_key=key)
    waits = waiting_now(session, journey_key=key, group_by=("version",))
    known = list(
        session.exec(
            select(JourneyVersion.version)
            .where(JourneyVersion.journey_key == key)
            .order_by(col(JourneyVersion.version))
        )
    )
    versions = sorted({*known, *(k[0] for k in tallies)})
    rows = [
        {
            "version": v,
            **figures(tallies.get((v,), Tally({})), run_level=True, waiting=waits.get((v,), 0)),
        }
        for v in versions
    ]
    return {"journey": key, "period": p.dump(), "versions": rows}


def journey_days(session: Session, key: str, p: Period) -> dict[str, Any]:
    get_journey(session, key)
    tallies = _read(session, p, group_by=("day",), journey_key=key)
    rows = [
        {"day": day.isoformat(), **figures(t, run_level=True)}
        for (day,), t in sorted(tallies.items())
    ]
    return {"journey": key, "period": p.dump(), "days": rows}


def templates(session: Session, p: Period, *, journey_key: str | None = None) -> dict[str, Any]:
    if journey_key is not None and session.get(Journey, journey_key) is None:
        raise NotFound(f"no journey {journey_key!r}", field="journey")
    tallies = _read(session, p, group_by=("template", "channel"), journey_key=journey_key)
    rows = []
    for (template, channel), t in sorted(tallies.items()):
        if not template:
            continue  # run figures of a journey, no message
        row = figures(t, run_level=False)
        for run_only in ("entered", "ended", "run_conversion_rate"):
            row.pop(run_only)
        rows.append({"template": template, "channel": channel, **row})
    return {"journey": journey_key, "period": p.dump(), "templates": rows}


def comparison(session: Session, p: Period) -> dict[str, Any]:
    """One row per journey over the period, with its targets met (or not)."""
    tallies = _read(session, p, group_by=("journey_key",))
    waits = waiting_now(session, journey_key=None, group_by=("journey_key",))
    settings = {row.journey_key: row for row in session.exec(select(AnalyticsJourney))}
    rows = []
    for journey in session.exec(select(Journey).order_by(col(Journey.key))):
        actual = figures(
            tallies.get((journey.key,), Tally({})),
            run_level=True,
            waiting=waits.get((journey.key,), 0),
        )
        row = settings.get(journey.key)
        checks = against_targets(row.targets if row else {}, actual)
        rows.append(
            {
                "journey": journey.key,
                "name": journey.name,
                "status": journey.status,
                **actual,
                "targets": checks,
                "targets_met": sum(1 for c in checks if c["met"]),
                "targets_set": len(checks),
            }
        )
    return {"period": p.dump(), "journeys": rows}


def overview(session: Session, p: Period) -> dict[str, Any]:
    """Every journey together over the period: totals and one row per day (the console's
    overview; the same rollups and figures as the per-journey tables)."""
    total = _read(session, p, group_by=()).get((), Tally({}))
    days = _read(session, p, group_by=("day",))
    return {
        "period": p.dump(),
        "totals": figures(total, run_level=True),
        "days": [
            {"day": day.isoformat(), **figures(t, run_level=True)}
            for (day,), t in sorted(days.items())
        ],
    }
