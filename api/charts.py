"""A chart answered over HTTP: the Vega-Lite spec drawn by `rejse.analytics.charts` as the
body, with the media type of the format asked for. Every router's chart routes use it: one
route `.../chart.{fmt}` per chart (`fmt` is `svg` or `png`, so `.../chart.svg` and
`.../chart.png` both answer), documented by `chart_doc`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Response

from api.errors import Responses
from rejse.analytics import charts

ChartFormat = Annotated[charts.Format, Path(description="`svg`, or `png` for a bitmap")]


def chart_doc(what: str) -> Responses:
    """The 200 of a chart route: both formats' media types."""
    return {
        200: {
            "description": what,
            "content": {
                "image/svg+xml": {"schema": {"type": "string"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }


def chart_response(spec: dict[str, Any], fmt: charts.Format) -> Response:
    return Response(charts.render(spec, fmt), media_type=charts.MEDIA_TYPES[fmt])
