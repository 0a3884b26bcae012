"""The KPI tables as a marketer reads them outside JSON: CSV downloads, charts (built from the
same figures the JSON answers hold, with the numbers on the marks) in Danish or English, and
the names of the read-only SQL views for BI tools (created on PostgreSQL by migration
0012_analytics; docs/analytics.md, "SQL views for BI")."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from rejse.analytics import charts
from rejse.audiences.export import safe_cell

Lang = Literal["da", "sv", "en"]

BI_VIEWS = (
    "analytics_counts_v",
    "analytics_kpis_v",
    "analytics_journeys_v",
    "analytics_reasons_v",
    "analytics_conversions_v",
    "analytics_arms_v",
    "funnel_daily_v",
    "funnel_stages_v",
    "sales_leads_v",
    "sales_reps_v",
)  # the read-only views for BI tools (migrations 0012_analytics, 0016_bi_views)

LABELS: Mapping[str, Mapping[Lang, str]] = {
    "entered": {"da": "startet", "sv": "startade", "en": "entered"},
    "sent": {"da": "sendt", "sv": "skickade", "en": "sent"},
    "delivered": {"da": "leveret", "sv": "levererade", "en": "delivered"},
    "opened": {"da": "åbnet", "sv": "öppnade", "en": "opened"},
    "clicked": {"da": "klikket", "sv": "klickade", "en": "clicked"},
    "converted": {"da": "konverteret", "sv": "konverterade", "en": "converted"},
    "revenue": {"da": "omsætning", "sv": "intäkter", "en": "revenue"},
    "unsubscribed": {"da": "afmeldt", "sv": "avregistrerade", "en": "unsubscribed"},
    "conversion_rate": {
        "da": "konverteringsrate",
        "sv": "konverteringsgrad",
        "en": "conversion rate",
    },
}
TITLES: Mapping[str, Mapping[Lang, str]] = {
    "funnel": {
        "da": "Rejsens tragt: {key}",
        "sv": "Resans tratt: {key}",
        "en": "Journey funnel: {key}",
    },
    "steps": {"da": "Pr. trin: {key}", "sv": "Per steg: {key}", "en": "Per step: {key}"},
    "versions": {
        "da": "Pr. version: {key}",
        "sv": "Per version: {key}",
        "en": "Per version: {key}",
    },
    "days": {"da": "Pr. dag: {key}", "sv": "Per dag: {key}", "en": "Per day: {key}"},
    "templates": {
        "da": "Pr. skabelon og kanal",
        "sv": "Per mall och kanal",
        "en": "Per template and channel",
    },
    "journeys": {"da": "Rejser sammenlignet", "sv": "Resor jämförda", "en": "Journeys compared"},
    "count": {"da": "antal", "sv": "antal", "en": "count"},
}
FUNNEL = ("entered", "sent", "delivered", "opened", "clicked", "converted")
PER_STEP = ("delivered", "opened", "clicked", "converted")
DAILY = ("sent", "opened", "clicked", "converted", "revenue")


def label(name: str, lang: Lang) -> str:
    return LABELS[name][lang] if name in LABELS else name


def title(name: str, lang: Lang, **values: Any) -> str:
    return TITLES[name][lang].format(**values)


# ------------------------------------------------------------------------------------- CSV


def flatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """A table row as CSV cells: nested counts as `skipped_reasons.no_consent`, targets as how
    many are met of how many are set (the JSON answer lists them)."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name == "targets":
            continue
        if isinstance(value, Mapping):
            for sub, n in value.items():
                out[f"{name}.{sub}"] = n
        else:
            out[name] = value
    return out


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """RFC 4180 CSV (CRLF) with a header of every column any row has, in first-seen order;
    a cell a spreadsheet would run as a formula gets a leading apostrophe."""
    flat = [flatten(r) for r in rows]
    columns: dict[str, None] = {}
    for r in flat:
        columns.update(dict.fromkeys(r))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(list(columns))
    for r in flat:
        writer.writerow([safe_cell(r.get(c, 0 if "." in c else None)) for c in columns])
    return buffer.getvalue()


# ------------------------------------------------------------------------------------ charts


def funnel_chart(summary: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    totals = summary["totals"]
    rows = [{"stage": label(m, lang), "n": totals[m]} for m in FUNNEL]
    return charts.bars(
        rows,
        x="stage",
        y="n",
        title=title("funnel", lang, key=summary["journey"]),
        y_title=title("count", lang),
    )


def steps_chart(table: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    rows = [
        {"step": s["step_id"], "metric": label(m, lang), "n": s[m]}
        for s in table["steps"]
        for m in PER_STEP
    ]
    return charts.bars(
        rows,
        x="step",
        y="n",
        color="metric",
        title=title("steps", lang, key=table["journey"]),
        y_title=title("count", lang),
    )


def versions_chart(table: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    rows = [
        {"version": f"v{v['version']}", "metric": label(m, lang), "n": v[m]}
        for v in table["versions"]
        for m in PER_STEP
    ]
    return charts.bars(
        rows,
        x="version",
        y="n",
        color="metric",
        title=title("versions", lang, key=table["journey"]),
        y_title=title("count", lang),
    )


def days_chart(table: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    rows = [
        {"day": d["day"], "series": label(m, lang), "value": d[m]}
        for d in table["days"]
        for m in DAILY
    ]
    return charts.lines(
        rows,
        x="day",
        y="value",
        series="series",
        title=title("days", lang, key=table["journey"]),
        y_title=title("count", lang),
    )


def templates_chart(table: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    rows = [
        {"template": f"{t['template']} ({t['channel']})", "metric": label(m, lang), "n": t[m]}
        for t in table["templates"]
        for m in PER_STEP
    ]
    return charts.bars(
        rows,
        x="template",
        y="n",
        color="metric",
        title=title("templates", lang),
        y_title=title("count", lang),
    )


def journeys_chart(table: Mapping[str, Any], lang: Lang) -> dict[str, Any]:
    rows = [
        {"journey": j["journey"], "metric": label(m, lang), "n": j[m]}
        for j in table["journeys"]
        for m in ("delivered", "converted")
    ]
    return charts.bars(
        rows,
        x="journey",
        y="n",
        color="metric",
        title=title("journeys", lang),
        y_title=title("count", lang),
    )
