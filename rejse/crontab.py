"""The one crontab parser: five fields (`"0 9 * * MON"`) in a named time zone, as APScheduler's
`CronTrigger` reads them. Scheduled journeys validate and fire with it, and the scheduler runs
its jobs with it, so an expression that validates is one that fires."""

from __future__ import annotations

import datetime as dt

from apscheduler.triggers.cron import CronTrigger


def parse_crontab(expression: str, *, timezone: str | dt.tzinfo | None = None) -> CronTrigger:
    """A trigger for `expression` in `timezone` (a zone name or tzinfo; default UTC). Raises
    `ValueError` for a bad expression or zone name, `KeyError` for an unknown zone."""
    return CronTrigger.from_crontab(expression, timezone=timezone or dt.UTC)
