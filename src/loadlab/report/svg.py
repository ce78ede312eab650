"""Inline SVG line charts: no JavaScript, no network, readable in any browser or diff tool."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

COLOURS = {"flask_sync": "#1f6fb4", "fastapi_async": "#c2312f"}
SPARE = ["#2f8f46", "#8a4fb0", "#c07a12", "#555555"]
Point = tuple[float, float]


def colour(name: str, index: int) -> str:
    return COLOURS.get(name, SPARE[index % len(SPARE)])


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.floor(low / step) * step
    return [
        first + i * step
        for i in range(int((high - first) / step) + 2)
        if first + i * step <= high + step * 0.5
    ]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == 0 else f"{value:.3g}"


def line_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    dashed: Callable[[str], bool] = lambda name: False,
    width: int = 760,
    height: int = 300,
    marks: Sequence[tuple[float, str]] = (),
) -> str:
    """One SVG chart; each series is a list of (x, y) points, drawn in its variant's colour;
    each mark a labelled vertical line at its x (a fault, on a time chart)."""
    left, right, top, bottom = 64, 34, 34, 46
    points = [p for s in series.values() for p in s if p[1] is not None]
    if not points:
        return f'<p class="empty">{escape(title)}: no data</p>'
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_hi = max(p[1] for p in points) * 1.08 or 1.0
    y_ticks = _nice_ticks(0, y_hi)
    y_hi = max(y_ticks[-1], y_hi)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * (width - left - right)

    def sy(y: float) -> float:
        return top + (1 - y / y_hi) * (height - top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for tick in y_ticks:
        y = sy(tick)
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{_fmt(tick)}</text>"
        )
    ticks = x_ticks or [(t, _fmt(t)) for t in _nice_ticks(x_lo, x_hi, 8) if x_lo <= t <= x_hi]
    for value, label in ticks:
        x = sx(value)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}" stroke="#f0f0f0"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" font-size="11" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    out.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" font-size="12" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text x="14" y="{(top + height - bottom) / 2}" font-size="12" '
        f'text-anchor="middle" transform="rotate(-90 14 {(top + height - bottom) / 2})">'
        f"{escape(y_label)}</text>"
    )
    for index, (name, pts) in enumerate(series.items()):
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts if y is not None)
        dash = ' stroke-dasharray="5 4"' if dashed(name) else ""
        base = name.split(" ")[0]
        out.append(
            f'<polyline fill="none" stroke="{colour(base, index)}" stroke-width="2"'
            f'{dash} points="{path}"/>'
        )
        lx = left + 10 + index * (width - left - right) // max(len(series), 1)
        out.append(
            f'<line x1="{lx}" x2="{lx + 22}" y1="{top + 8}" y2="{top + 8}" '
            f'stroke="{colour(base, index)}" stroke-width="3"{dash}/>'
        )
        out.append(f'<text x="{lx + 27}" y="{top + 12}" font-size="11">{escape(name)}</text>')
    for x, label in marks:
        if x_lo <= x <= x_hi:
            out.append(
                f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{height - bottom}" '
                f'stroke="#c0392b" stroke-width="1.5" stroke-dasharray="3 3"/>'
            )
            out.append(
                f'<text x="{sx(x) + 3:.1f}" y="{height - bottom - 6}" font-size="10" '
                f'fill="#c0392b">{escape(label)}</text>'
            )
    out.append(
        f'<rect x="{left}" y="{top}" width="{width - left - right}" '
        f'height="{height - top - bottom}" fill="none" stroke="#999"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def nines(percentile: float) -> float:
    """Position of a percentile on a log scale: 90% -> 1, 99% -> 2, 99.9% -> 3."""
    return -math.log10(max(1 - percentile / 100, 1e-6))


NINES_TICKS = [(0.0, "0%"), (1.0, "90%"), (2.0, "99%"), (3.0, "99.9%"), (4.0, "99.99%")]
