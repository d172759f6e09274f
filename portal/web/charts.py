"""Charts drawn on the server as SVG: no JavaScript, nothing inline for the
CSP to refuse. Each chart is ``role="img"`` with a ``<title>`` referenced by
``aria-labelledby``; its table alternative is the panel's table, folded
under the chart (``<details>`` in ``tenants/dashboards/_panel.html``), where
runs of empty rows of a time series are one « aucune donnée » row
(``Table.html_rows_folded``).

The x axis of a line chart draws only as many labels as its width holds
(``axis_label_indices``): one every ``step`` labels, so that two drawn
labels are always at least a label's width (estimated from its length and
the font size) plus a gap apart — thirty days never overlap."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from markupsafe import Markup, escape

from portal.formatting import format_count

_ids = itertools.count(1)
PALETTE = ["#1f4e9c", "#c8553d", "#2a9d8f", "#8a5a9e", "#e9a23b", "#5c6b73"]


@dataclass
class Chart:
    title: str
    svg: Markup
    headers: list[str]
    rows: list[list[str]]


AXIS_FONT = 11          # px, x-axis labels of line charts
CHAR_EM = 0.62          # average advance of a sans-serif glyph (digits, "-", "/"), in em
LABEL_GAP = 8           # px left free between two x-axis labels


def label_width(label: str, font_size: float = AXIS_FONT) -> float:
    """Estimated width in px of ``label`` drawn at ``font_size`` (no font metrics
    on the server: a generous average advance per character)."""
    return len(label) * font_size * CHAR_EM


def axis_label_indices(labels: list[str], span: float, font_size: float = AXIS_FONT,
                       gap: float = LABEL_GAP) -> list[int]:
    """The indices of the x labels to draw along ``span`` px (the first label
    at 0, the last at ``span``): every ``step``-th one, ``step`` the smallest
    that puts two drawn labels' centres at least the widest label plus
    ``gap`` apart."""
    n = len(labels)
    if n <= 1:
        return list(range(n))
    widest = max(label_width(label, font_size) for label in labels) + gap
    step = max(1, math.ceil(widest / (span / (n - 1))))
    return list(range(0, n, step))


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def bar_chart(title: str, labels: list[str], values: list[int], *, width: int = 640,
              bar_height: int = 22, unit: str = "pass", label_header: str = "Libellé") -> Chart:
    """Horizontal bars, one per label (communes, states, publics…)."""
    uid = f"graphique-{next(_ids)}"
    left, right, top = 190, 70, 8
    height = top * 2 + bar_height * max(1, len(labels))
    top_value = _nice_max(max(values, default=0))
    span = width - left - right
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'aria-labelledby="{uid}" viewBox="0 0 {width} {height}" width="100%">',
             f'<title id="{uid}">{escape(title)}</title>']
    for i, (label, value) in enumerate(zip(labels, values)):
        y = top + i * bar_height
        w = 0 if top_value == 0 else span * value / top_value
        parts.append(f'<text x="{left - 6}" y="{y + bar_height * 0.68:.1f}" text-anchor="end" '
                     f'font-size="12">{escape(label[:28])}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_height - 6}" '
                     f'fill="{PALETTE[0]}"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_height * 0.68:.1f}" '
                     f'font-size="12">{escape(format_count(value))}</text>')
    parts.append("</svg>")
    return Chart(title, Markup("".join(parts)), [label_header, unit],
                 [[label, format_count(v)] for label, v in zip(labels, values)])


def line_chart(title: str, x_labels: list[str], series: dict[str, list[int]], *,
               width: int = 640, height: int = 240, x_header: str = "Mois") -> Chart:
    """Lines over time (months): one series per nature or commune."""
    uid = f"graphique-{next(_ids)}"
    left, right, top, bottom = 50, 180, 10, 30
    all_values = [v for values in series.values() for v in values]
    top_value = _nice_max(max(all_values, default=0))
    n = max(1, len(x_labels) - 1)
    span_x, span_y = width - left - right, height - top - bottom

    def xy(i, v):
        return left + span_x * i / n, top + span_y * (1 - v / top_value)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'aria-labelledby="{uid}" viewBox="0 0 {width} {height}" width="100%">',
             f'<title id="{uid}">{escape(title)}</title>',
             f'<line x1="{left}" y1="{top + span_y}" x2="{left + span_x}" y2="{top + span_y}" '
             f'stroke="#888"/>',
             f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" font-size="11">'
             f'{escape(format_count(int(top_value)))}</text>',
             f'<text x="{left - 4}" y="{top + span_y}" text-anchor="end" font-size="11">0</text>']
    for i in axis_label_indices(x_labels, span_x):
        x, _ = xy(i, 0)
        parts.append(f'<text class="x-label" x="{x:.1f}" y="{height - 10}" '
                     f'text-anchor="middle" font-size="{AXIS_FONT}">{escape(x_labels[i])}</text>')
    for k, (name, values) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{points}"/>')
        if len(x_labels) <= 31:     # dots: a series of one month is still visible
            parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>'
                         for x, y in (xy(i, v) for i, v in enumerate(values)))
        legend = name if len(name) <= 26 else name[:25] + "…"
        parts.append(f'<text x="{left + span_x + 8}" y="{top + 14 + 16 * k}" font-size="12" '
                     f'fill="{colour}">{escape(legend)}</text>')
    parts.append("</svg>")
    rows = [[label] + [format_count(values[i]) for values in series.values()]
            for i, label in enumerate(x_labels)]
    return Chart(title, Markup("".join(parts)), [x_header] + list(series), rows)
