"""Charts rendered on the server: Vega-Lite specifications drawn to SVG or PNG by vl-convert
(in-process, no browser, no network), so a chart works offline and in an email or a report.

Each analytics endpoint builds its chart from the same figures its JSON answer holds, with the
values written on the marks (`labels`), so a reader sees the numbers and a test can find them in
the SVG. The builders here are the shapes rejse draws: bars (funnels, per step, per rep), lines
over days, intervals (A/B arms with their confidence intervals) and the maturity 2x2."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import vl_convert

Format = Literal["svg", "png"]
MEDIA_TYPES: Mapping[str, str] = {"svg": "image/svg+xml", "png": "image/png"}
SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
WIDTH, HEIGHT = 560, 280
FONT = "sans-serif"


def render(spec: Mapping[str, Any], fmt: Format = "svg") -> bytes:
    """The chart as SVG (UTF-8) or PNG bytes."""
    full = {"$schema": SCHEMA, "config": {"font": FONT, "view": {"stroke": None}}, **spec}
    if fmt == "png":
        return bytes(vl_convert.vegalite_to_png(full, scale=2))
    return str(vl_convert.vegalite_to_svg(full)).encode()


def _labelled(mark: dict[str, Any], text_field: str, fmt: str, **text: Any) -> list[Any]:
    return [
        {"mark": mark},
        {
            "mark": {"type": "text", "dy": -6, "fontSize": 11, **text},
            "encoding": {"text": {"field": text_field, "format": fmt}},
        },
    ]


def bars(
    rows: Sequence[Mapping[str, Any]],
    *,
    x: str,
    y: str,
    title: str,
    y_title: str | None = None,
    color: str | None = None,
    value_format: str = ",.4~g",
) -> dict[str, Any]:
    """Vertical bars of `y` per `x` (in the rows' order), each with its value on top; `color`
    groups bars side by side (e.g. arms per step)."""
    encoding: dict[str, Any] = {
        "x": {"field": x, "type": "nominal", "sort": None, "title": None},
        "y": {"field": y, "type": "quantitative", "title": y_title or y},
    }
    if color:
        encoding["color"] = {"field": color, "type": "nominal"}
        encoding["xOffset"] = {"field": color}
    return {
        "title": title,
        "width": WIDTH,
        "height": HEIGHT,
        "data": {"values": [dict(r) for r in rows]},
        "encoding": encoding,
        "layer": _labelled({"type": "bar"}, y, value_format),
    }


def lines(
    rows: Sequence[Mapping[str, Any]],
    *,
    x: str,
    y: str,
    series: str,
    title: str,
    y_title: str | None = None,
    value_format: str = ",.4~g",
) -> dict[str, Any]:
    """One line per `series` of `y` over the dates in `x` (ISO dates), points labelled."""
    return {
        "title": title,
        "width": WIDTH,
        "height": HEIGHT,
        "data": {"values": [dict(r) for r in rows]},
        "encoding": {
            "x": {"field": x, "type": "temporal", "title": None},
            "y": {"field": y, "type": "quantitative", "title": y_title or y},
            "color": {"field": series, "type": "nominal"},
        },
        "layer": _labelled({"type": "line", "point": True}, y, value_format),
    }


def intervals(
    rows: Sequence[Mapping[str, Any]],
    *,
    label: str,
    value: str,
    low: str,
    high: str,
    title: str,
    value_format: str = ".2%",
) -> dict[str, Any]:
    """A point per row with its interval (A/B arms' conversion with 95 % intervals)."""
    return {
        "title": title,
        "width": WIDTH,
        "height": max(60, 40 * len(rows)),
        "data": {"values": [dict(r) for r in rows]},
        "encoding": {"y": {"field": label, "type": "nominal", "sort": None, "title": None}},
        "layer": [
            {
                "mark": "rule",
                "encoding": {
                    "x": {"field": low, "type": "quantitative", "title": value},
                    "x2": {"field": high},
                },
            },
            {"mark": {"type": "point", "filled": True}, "encoding": {"x": {"field": value}}},
            {
                "mark": {"type": "text", "dy": -10, "fontSize": 11},
                "encoding": {
                    "x": {"field": value, "type": "quantitative"},
                    "text": {"field": value, "format": value_format},
                },
            },
        ],
    }


def quadrant(
    points: Sequence[Mapping[str, Any]],
    *,
    x: str,
    y: str,
    label: str,
    title: str,
    x_title: str,
    y_title: str,
    quadrants: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """A 2x2 on [0, 1] x [0, 1] with the quadrants' names (`quadrants`: {x, y, name}) and the
    labelled points (the maturity model: customer data x readiness)."""
    scale = {"domain": [0, 1]}
    return {
        "title": title,
        "width": 400,
        "height": 400,
        "layer": [
            {
                "data": {"values": [{"v": 0.5}]},
                "mark": {"type": "rule", "strokeDash": [4, 4]},
                "encoding": {"x": {"field": "v", "type": "quantitative", "scale": scale}},
            },
            {
                "data": {"values": [{"v": 0.5}]},
                "mark": {"type": "rule", "strokeDash": [4, 4]},
                "encoding": {"y": {"field": "v", "type": "quantitative", "scale": scale}},
            },
            {
                "data": {"values": [dict(q) for q in quadrants]},
                "mark": {"type": "text", "fontSize": 14, "opacity": 0.6},
                "encoding": {
                    "x": {"field": "x", "type": "quantitative", "scale": scale},
                    "y": {"field": "y", "type": "quantitative", "scale": scale},
                    "text": {"field": "name"},
                },
            },
            {
                "data": {"values": [dict(p) for p in points]},
                "mark": {"type": "point", "filled": True, "size": 120},
                "encoding": {
                    "x": {"field": x, "type": "quantitative", "scale": scale, "title": x_title},
                    "y": {"field": y, "type": "quantitative", "scale": scale, "title": y_title},
                },
            },
            {
                "data": {"values": [dict(p) for p in points]},
                "mark": {"type": "text", "dy": -12, "fontSize": 12},
                "encoding": {
                    "x": {"field": x, "type": "quantitative", "scale": scale},
                    "y": {"field": y, "type": "quantitative", "scale": scale},
                    "text": {"field": label},
                },
            },
        ],
    }
