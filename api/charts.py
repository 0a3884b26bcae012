"""A chart answered over HTTP: the Vega-Lite spec drawn by `rejse.analytics.charts` as the
body, with the media type of the format asked for. Every router's chart routes use it."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from rejse.analytics import charts


def chart_response(spec: dict[str, Any], fmt: charts.Format) -> Response:
    return Response(charts.render(spec, fmt), media_type=charts.MEDIA_TYPES[fmt])
