"""Stacked bar charts as inline SVG, drawn on the server: dates along the bottom, counts up the side, a
legend that tells the series apart by pattern and text as well as by colour, a tooltip on every bar."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 960, 300
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 40, 44  # room for the y ticks, the legend and the dates
LEGEND_STEP = 190  # horizontal room for one legend entry
MAX_DATE_LABELS = 12  # more would overlap; the others are in each bar's tooltip


@dataclass(frozen=True)
class Series:
    """One stacked part of every bar: its key (in data-way), legend label, colour, fill pattern and the
    tooltip's wording, a format string with {n} (the count) and {s} (a plural s)."""

    key: str
    label: str
    colour: str
    pattern: str  # "solid", "stripes", "dots" or "grid": what tells the series apart without colour
    tip: str


def _patterns(prefix: str, series: Sequence[Series]) -> str:
    """SVG <pattern> definitions: each series' colour, overlaid with its marks in white."""
    marks = {
        "solid": "",
        "stripes": '<path d="M-1,1 l2,-2 M0,8 l8,-8 M7,9 l2,-2" stroke="#fff" stroke-width="2"/>',
        "dots": '<circle cx="4" cy="4" r="1.6" fill="#fff"/>',
        "grid": '<path d="M0,4 h8 M4,0 v8" stroke="#fff" stroke-width="1.2"/>',
    }
    parts = []
    for s in series:
        parts.append(
            f'<pattern id="{prefix}-{escape(s.key)}" width="8" height="8" patternUnits="userSpaceOnUse">'
            f'<rect width="8" height="8" fill="{escape(s.colour)}"/>{marks[s.pattern]}</pattern>')
    return "<defs>" + "".join(parts) + "</defs>"


def nice_ceiling(value: int) -> tuple[int, int]:
    """Return the y axis' top and step: a step of 1, 2 or 5 times a power of ten, four or five of them."""
    if value <= 4:
        return 4, 1
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return int(math.ceil(value / step) * step), int(step)


def _plural(n: int) -> str:
    return "" if n == 1 else "s"


def stacked_bars(chart_id: str, title: str, description: str, dates: Sequence[str],
                 series: Sequence[Series], counts: dict[str, Sequence[int]], height: int = HEIGHT) -> Markup:
    """Return an accessible SVG stacked bar chart: one bar a date, one part a series (counts[key][i])."""
    top, step = nice_ceiling(max((sum(counts[s.key][i] for s in series) for i in range(len(dates))),
                                 default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / max(1, len(dates))
    bar_w = max(1.0, slot * 0.7)
    out = [f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
           f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
           f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
           _patterns(chart_id, series)]

    # The legend: a swatch with the series' pattern, and its name in words.
    out.append('<g class="legend">')
    for n, s in enumerate(series):
        left = LEFT + n * LEGEND_STEP
        out.append(f'<g data-legend="{escape(s.key)}"><rect x="{left}" y="8" width="18" height="18" rx="3" '
                   f'fill="url(#{escape(chart_id)}-{escape(s.key)})" stroke="{escape(s.colour)}"/>'
                   f'<text x="{left + 24}" y="22">{escape(s.label)}</text></g>')
    out.append("</g>")

    # The y axis: gridlines with their counts.
    out.append('<g class="axis y">')
    for tick in range(0, top + 1, step):
        y = TOP + plot_h - plot_h * tick / top
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:,}</text>')
    out.append("</g>")

    # The bars, bottom up in the series' order; every part has its count and a tooltip.
    every = max(1, math.ceil(len(dates) / MAX_DATE_LABELS))
    out.append('<g class="bars">')
    for i, day in enumerate(dates):
        x = LEFT + i * slot + (slot - bar_w) / 2
        base = float(TOP + plot_h)
        total = sum(counts[s.key][i] for s in series)
        out.append(f'<g data-date="{escape(day)}" data-total="{total}">')
        for s in series:
            count = counts[s.key][i]
            if not count:
                continue
            h = plot_h * count / top
            base -= h
            tip = s.tip.format(n=f"{count:,}", s=_plural(count))
            out.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                       f'fill="url(#{escape(chart_id)}-{escape(s.key)})" stroke="{escape(s.colour)}" '
                       f'data-way="{escape(s.key)}" data-count="{count}">'
                       f'<title>{escape(day)}: {escape(tip)}</title></rect>')
        out.append("</g>")
    out.append("</g>")

    # The x axis: a baseline, and a date under every few bars (month-day: the year is in the tooltips).
    out.append(f'<g class="axis x"><line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
               f'y2="{TOP + plot_h}"/>')
    for i, day in enumerate(dates):
        if i % every == 0 or i == len(dates) - 1 and (len(dates) - 1) % every >= every / 2:
            x = LEFT + i * slot + slot / 2
            out.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">'
                       f'{escape(day[5:])}</text>')
    out.append("</g></svg>")
    return Markup("".join(out))  # noqa: S704  (every value in it went through escape())
