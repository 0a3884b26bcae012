"""The chart builders draw the numbers they are given, offline, as SVG and PNG."""

import xml.etree.ElementTree as ET

from rejse.analytics import charts


def texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)  # noqa: S314  # our own renderer's output
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_bars_carry_their_values():
    spec = charts.bars(
        [{"step": "sendt", "n": 1203}, {"step": "åbnet", "n": 612}], x="step", y="n", title="Tragt"
    )
    labels = texts(charts.render(spec))
    assert {"1,203", "612", "sendt", "åbnet", "Tragt"} <= set(labels)


def test_lines_intervals_and_the_quadrant():
    daily = charts.lines(
        [{"d": "2026-11-01", "n": 3, "s": "sent"}, {"d": "2026-11-02", "n": 7, "s": "sent"}],
        x="d",
        y="n",
        series="s",
        title="Daily",
    )
    assert {"3", "7"} <= set(texts(charts.render(daily)))
    arms = charts.intervals(
        [
            {"arm": "A", "p": 0.12, "lo": 0.1, "hi": 0.14},
            {"arm": "B", "p": 0.15, "lo": 0.13, "hi": 0.17},
        ],
        label="arm",
        value="p",
        low="lo",
        high="hi",
        title="A/B",
    )
    assert {"12.00%", "15.00%"} <= set(texts(charts.render(arms)))
    grid = charts.quadrant(
        [{"x": 0.3, "y": 0.7, "n": "Acme"}],
        x="x",
        y="y",
        label="n",
        title="Modenhed",
        x_title="Kundedata",
        y_title="Parathed",
        quadrants=[{"x": 0.25, "y": 0.25, "name": "Begynder"}],
    )
    assert {"Acme", "Begynder"} <= set(texts(charts.render(grid)))


def test_png_on_request():
    png = charts.render(charts.bars([{"k": "a", "n": 1}], x="k", y="n", title="t"), "png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
