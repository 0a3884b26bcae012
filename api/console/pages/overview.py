"""Overview: the last 30 days of every journey together (sends, opens, clicks, conversions,
revenue) and the AQLs of the lead funnel, from the analytics service functions the JSON
endpoints use (`rejse.analytics.kpis`, `rejse.analytics.funnel`)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.console import i18n, kit
from api.console.kit import ConsoleRoute, ReadUser
from api.deps import READ
from rejse.analytics import charts, funnel, kpis
from rejse.db import utcnow

router = APIRouter(route_class=ConsoleRoute)
kit.add_nav(10, "nav_overview", f"{kit.PREFIX}/overview", READ)

DAYS = 30
SERIES = ("sent", "opened", "clicked", "converted")

i18n.add(
    {
        "overview_title": ("Overblik", "Översikt", "Overview"),
        "overview_period": (
            "De seneste {days} dage, {start} til {end}, alle rejser",
            "De senaste {days} dagarna, {start} till {end}, alla resor",
            "The last {days} days, {start} to {end}, every journey",
        ),
        "kpi_sent": ("Sendt", "Skickade", "Sent"),
        "kpi_opened": ("Åbnet", "Öppnade", "Opened"),
        "kpi_clicked": ("Klikket", "Klickade", "Clicked"),
        "kpi_converted": ("Konverteringer", "Konverteringar", "Conversions"),
        "kpi_revenue": ("Omsætning", "Intäkter", "Revenue"),
        "kpi_aqls": ("AQL'er", "AQL:er", "AQLs"),
        "rate_of_delivered": ("{rate} af leverede", "{rate} av levererade", "{rate} of delivered"),
        "chart_daily": (
            "Sendt, åbnet, klikket og konverteret pr. dag",
            "Skickade, öppnade, klickade och konverterade per dag",
            "Sent, opened, clicked and converted per day",
        ),
        "chart_revenue": ("Omsætning pr. dag", "Intäkter per dag", "Revenue per day"),
        "chart_leads": (
            "Leads pr. livscyklusfase nu",
            "Leads per livscykelfas nu",
            "Leads per lifecycle stage now",
        ),
        "chart_count": ("antal", "antal", "count"),
        "day": ("Dag", "Dag", "Day"),
        "stage": ("Fase", "Fas", "Stage"),
        "profiles": ("Profiler", "Profiler", "Profiles"),
        "show_numbers": ("Vis tallene", "Visa siffrorna", "Show the numbers"),
        "no_data": ("Ingen data endnu.", "Inga data ännu.", "No data yet."),
    }
)


def _period() -> kpis.Period:
    end = utcnow().date()
    return kpis.Period(start=end - dt.timedelta(days=DAYS - 1), end=end)


def _figures(request: Request) -> tuple[dict[str, Any], funnel.Funnel]:
    p = _period()
    with kit.db(request) as session:
        table = kpis.overview(session, p)
        leads = funnel.funnel(session, start=p.start, end=p.end)
    return table, leads


def fmt_rate(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


@router.get("/overview")
def overview(request: Request, user: ReadUser) -> Response:
    table, leads = _figures(request)
    aqls = next((s.reached for s in leads.aql_sql_customer if s.step == "aql"), 0)
    p = _period()
    return kit.render(
        request,
        "overview.html",
        {
            "totals": table["totals"],
            "days": table["days"],
            "aqls": aqls,
            "stages": leads.stages,
            "series": SERIES,
            "period_text": {"days": DAYS, "start": p.start, "end": p.end},
            "fmt_rate": fmt_rate,
        },
    )


ChartName = Literal["daily", "revenue", "leads"]


@router.get("/overview/chart/{name}.svg")
def overview_chart(request: Request, user: ReadUser, name: ChartName) -> Response:
    table, leads = _figures(request)

    def t(key: str) -> str:
        return i18n.text(user.language, key)

    if name == "leads":
        lang: Literal["da", "en"] = "da" if user.language == "da" else "en"
        names = funnel.STAGE_NAMES[lang]
        spec = charts.bars(
            [{"stage": names[r.stage], "profiles": r.profiles} for r in leads.stages],
            x="stage",
            y="profiles",
            title=t("chart_leads"),
            y_title=t("profiles"),
        )
    elif name == "revenue":
        spec = charts.lines(
            [
                {"day": d["day"], "series": t("kpi_revenue"), "value": d["revenue"]}
                for d in table["days"]
            ],
            x="day",
            y="value",
            series="series",
            title=t("chart_revenue"),
            y_title=t("kpi_revenue"),
        )
    else:
        spec = charts.lines(
            [
                {"day": d["day"], "series": t(f"kpi_{m}"), "value": d[m]}
                for d in table["days"]
                for m in SERIES
            ],
            x="day",
            y="value",
            series="series",
            title=t("chart_daily"),
            y_title=t("chart_count"),
        )
    return kit.chart_svg(spec)
