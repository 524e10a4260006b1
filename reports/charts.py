"""Dashboard charts as SVG drawn on the server by pygal.

Why pygal: the page's Content-Security-Policy allows no inline script or style and no CDN, and a chart
should read without JavaScript. pygal (a maintained PyPI package, no dependencies) draws a complete SVG on
the server; the page shows it as an <img> from a data: URI (an image's own styles are its own, so
the page's policy stays strict) with a text alternative, and the same numbers stand in a table beside it.
Chart.js would need a JavaScript file copied into static/ or a package that ships an old copy of it.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from copy import copy

import pygal
from pygal.style import Style

# Bootstrap's palette, so the charts look like the rest of the page.
STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#212529",
    foreground_strong="#212529",
    foreground_subtle="#6c757d",
    colors=("#0d6efd", "#b02a37", "#146c43", "#6c757d", "#055160", "#997404", "#0f5132"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=13,
    legend_font_size=13,
    title_font_size=15,
)
COMMON = {"style": STYLE, "js": [], "disable_xml_declaration": True, "explicit_size": False}


def _data_uri(svg: str | bytes) -> str:
    raw = svg.encode() if isinstance(svg, str) else svg
    # pygal's tooltip configuration: dead code in an <img>, so left out.
    raw = re.sub(rb"<script.*?</script>", b"", raw, flags=re.DOTALL)
    return "data:image/svg+xml;base64," + base64.b64encode(raw).decode("ascii")


def _ticks(highest: int) -> list[int]:
    """Whole-number axis marks (records come in whole numbers), about five of them."""
    step = max(1, math.ceil(highest / 5))
    return list(range(0, max(highest, 1) + step, step))


def status_chart(labels: Sequence[str], values: Sequence[int]) -> str:
    """Records by status, as horizontal bars with their numbers, first status at the top."""
    chart = pygal.HorizontalBar(
        **COMMON, width=640, height=60 + 34 * len(labels), show_legend=False, print_values=True
    )
    # pygal draws the first label at the bottom: reversed, the chart reads top-down like the table.
    chart.x_labels = list(reversed(labels))
    chart.y_labels = _ticks(max(values, default=0))
    chart.add("Records", list(reversed(values)))
    return _data_uri(chart.render())


def daily_chart(days: Sequence[str], accepted: Sequence[int], rejected: Sequence[int]) -> str:
    """Records KwikID accepted (green) and rejected (red) per day, stacked."""
    style = copy(STYLE)
    style.colors = ("#146c43", "#b02a37")
    chart = pygal.StackedBar(
        **{**COMMON, "style": style},
        width=640,
        height=320,
        legend_at_bottom=True,
        x_label_rotation=-45,
    )
    chart.x_labels = list(days)
    chart.y_labels = _ticks(max((a + r for a, r in zip(accepted, rejected, strict=True)), default=0))
    chart.add("Accepted", list(accepted))
    chart.add("Rejected", list(rejected))
    return _data_uri(chart.render())
