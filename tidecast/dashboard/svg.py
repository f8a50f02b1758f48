"""Charts drawn on the server as inline SVG: no script and no asset from outside, so the page works offline.

>>> svg = fan_chart([0, 1, 2], [3.0, 5.0, 4.0], [3, 4], [[1.0, 4.0, 8.0], [2.0, 5.0, 9.0]], title="s:A")
>>> svg.startswith("<svg") and 'class="fan"' in svg and 'class="actuals"' in svg and 'class="median"' in svg
True
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 760, 300, 44


def _scale(values: Sequence[float], lo: float, hi: float, out_lo: float, out_hi: float) -> list[float]:
    span = (hi - lo) or 1.0
    return [out_lo + (v - lo) / span * (out_hi - out_lo) for v in values]


def _points(xs: Sequence[float], ys: Sequence[float]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def fan_chart(actual_x: Sequence[int], actuals: Sequence[float], forecast_x: Sequence[int],
              quantiles: Sequence[Sequence[float]], title: str, labels: tuple[str, str] = ("", "")) -> str:
    """An SVG of a series' actuals (``actual_x`` bucket numbers) and the latest forecast's band (the lowest and
    highest quantile of each row, ``class="fan"``) and median (``class="median"``) over ``forecast_x``.
    ``labels``: the first and last bucket's dates, written under the axis."""
    lows = [row[0] for row in quantiles]
    highs = [row[-1] for row in quantiles]
    mids = [row[len(row) // 2] for row in quantiles]
    all_x = list(actual_x) + list(forecast_x)
    all_y = list(actuals) + highs + [0.0]
    x0, x1 = (min(all_x), max(all_x)) if all_x else (0, 1)
    y1 = max(all_y) * 1.08 if all_y else 1.0
    sx = lambda xs: _scale(xs, x0, x1, PAD, WIDTH - 12)  # noqa: E731
    sy = lambda ys: _scale(ys, 0.0, y1 or 1.0, HEIGHT - PAD, 16)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" class="chart">',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 12}" y2="{HEIGHT - PAD}" stroke="#999"/>',
             f'<line x1="{PAD}" y1="16" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
             f'<text x="{PAD - 6}" y="20" text-anchor="end" font-size="11">{y1:,.0f}</text>',
             f'<text x="{PAD - 6}" y="{HEIGHT - PAD}" text-anchor="end" font-size="11">0</text>',
             f'<text x="{PAD}" y="{HEIGHT - PAD + 18}" font-size="11">{escape(labels[0])}</text>',
             f'<text x="{WIDTH - 12}" y="{HEIGHT - PAD + 18}" text-anchor="end" font-size="11">'
             f'{escape(labels[1])}</text>']
    if forecast_x:
        xs = sx(forecast_x)
        band = _points(xs + xs[::-1], sy(highs) + sy(lows)[::-1])
        parts.append(f'<polygon class="fan" points="{band}" fill="#1f77b4" fill-opacity="0.25" stroke="none"/>')
        parts.append(f'<polyline class="median" points="{_points(xs, sy(mids))}" fill="none" stroke="#1f77b4" '
                     'stroke-width="2"/>')
    if actual_x:
        parts.append(f'<polyline class="actuals" points="{_points(sx(actual_x), sy(actuals))}" fill="none" '
                     'stroke="#222" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "".join(parts)


def bars(values: dict[str, float], unit: str = "") -> str:
    """A small horizontal bar chart (positive right, negative left) of named values, e.g. contributions.

    >>> 'class="bar"' in bars({"promotion": 8.7, "calendar": -0.3})
    True
    """
    width, row = 360, 18
    top = max((abs(v) for v in values.values()), default=1.0) or 1.0
    mid = width / 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width + 320} {row * len(values) + 4}" '
             'class="bars">']
    for k, (name, value) in enumerate(values.items()):
        length = abs(value) / top * (mid - 4)
        x = mid if value >= 0 else mid - length
        y = k * row + 2
        color = "#2ca02c" if value >= 0 else "#d62728"
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y}" width="{length:.1f}" height="{row - 4}" '
                     f'fill="{color}"/>')
        parts.append(f'<text x="{width + 6}" y="{y + row - 6}" font-size="12">{escape(name)}: '
                     f'{value:+,.2f}{escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)
