"""Server-rendered SVG charts: stacked vertical bars over time, and horizontal bars.

No script and nothing fetched: each chart is one ``<svg role="img">`` named by its ``<title>``
and ``<desc>`` (``aria-labelledby``); every bar is a ``rect.tm-bar`` carrying its series, bucket
and value (``data-*``) and a ``<title>`` that a pointer shows. The numbers themselves go in a
table beside the chart (the admin template's job). Text is escaped here; the result is safe
markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 560
HEIGHT = 230
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 28
LABEL_WIDTH = 150
ROW_HEIGHT = 30
AXIS_COLOR = "#9ca3af"
TEXT_COLOR = "#4b5563"


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str
    values: Sequence[float]


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    value: float
    text: str
    color: str


def nice_ceiling(value: float) -> float:
    """The axis' top: the smallest 1, 2 or 5 times a power of ten >= ``value`` (1 for 0)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _open(chart_id: str, title: str, desc: str, height: float) -> list[str]:
    ident = escape(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="tm-chart" id="{ident}" role="img" '
        f'viewBox="0 0 {WIDTH} {height:g}" aria-labelledby="{ident}-title {ident}-desc" '
        'preserveAspectRatio="xMinYMin meet">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
    ]


def _text(x: float, y: float, text: str, anchor: str = "middle", size: int = 12) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="{TEXT_COLOR}">{escape(text)}</text>'
    )


def stacked_bars(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label_every: int = 1,
) -> SafeString:
    """One column per label, its series stacked in the given order (the first at the bottom).
    A zero draws no rectangle. ``label_every``: label every n-th column (and the last)."""
    count = len(labels)
    totals = [sum(s.values[i] for s in series) for i in range(count)]
    top = nice_ceiling(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(count, 1)
    bar_w = max(slot * 0.78, 1.0)
    parts = _open(chart_id, title, desc, HEIGHT)
    for fraction in (0, 0.5, 1):  # grid lines and the value axis
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{AXIS_COLOR}" stroke-width="{1 if fraction == 0 else 0.5}"/>'
        )
        parts.append(_text(LEFT - 6, y + 4, _number(top * fraction), anchor="end"))
    for i, label in enumerate(labels):
        x = LEFT + slot * i + (slot - bar_w) / 2
        base = float(TOP + plot_h)
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            height = plot_h * value / top
            base -= height
            parts.append(
                f'<rect class="tm-bar" data-series="{escape(s.key)}" data-index="{i}" '
                f'data-value="{_number(value)}" x="{x:.2f}" y="{base:.2f}" width="{bar_w:.2f}" '
                f'height="{height:.2f}" fill="{escape(s.color)}">'
                f"<title>{escape(label)}: {_number(value)} {escape(s.label)}</title></rect>"
            )
        if i % label_every == 0 or i == count - 1:
            parts.append(_text(LEFT + slot * i + slot / 2, HEIGHT - BOTTOM + 17, label))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def horizontal_bars(
    chart_id: str, title: str, desc: str, bars: Sequence[Bar], *, top: float | None = None
) -> SafeString:
    """One row per bar: its label, the bar (``value`` against ``top``, by default the largest
    value's nice ceiling) and ``text`` after it."""
    height = TOP + ROW_HEIGHT * max(len(bars), 1) + 4
    scale_top = top if top is not None else nice_ceiling(max((b.value for b in bars), default=0))
    plot_w = WIDTH - LABEL_WIDTH - 120  # room for the text after the longest bar
    parts = _open(chart_id, title, desc, height)
    parts.append(
        f'<line x1="{LABEL_WIDTH}" x2="{LABEL_WIDTH}" y1="{TOP - 4}" y2="{height - 4}" '
        f'stroke="{AXIS_COLOR}" stroke-width="1"/>'
    )
    for i, bar in enumerate(bars):
        y = TOP + ROW_HEIGHT * i
        label = bar.label if len(bar.label) <= 24 else bar.label[:23] + "…"
        parts.append(_text(LABEL_WIDTH - 8, y + ROW_HEIGHT / 2 + 5, label, anchor="end", size=14))
        width = plot_w * min(bar.value, scale_top) / scale_top if scale_top else 0
        if bar.value > 0:
            parts.append(
                f'<rect class="tm-bar" data-series="{escape(bar.key)}" data-index="{i}" '
                f'data-value="{_number(bar.value)}" x="{LABEL_WIDTH}" y="{y + 4:.1f}" '
                f'width="{width:.2f}" height="{ROW_HEIGHT - 8}" fill="{escape(bar.color)}">'
                f"<title>{escape(bar.label)}: {escape(bar.text)}</title></rect>"
            )
        parts.append(_text(LABEL_WIDTH + width + 6, y + ROW_HEIGHT / 2 + 5, bar.text, "start", 14))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
