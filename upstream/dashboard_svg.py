"""Plots for the dashboard as inline SVG, rendered on the server: no script, no fonts or files fetched.

    svg = line_plot([Line("node-1007", ts, battery_soc)], t0, t1, title="battery charge", unit="%")
    svg = bar_plot(days_ts, completeness, t0, t1, title="completeness", unit="%", y_max=100)

Time runs along x (UTC epoch seconds, ticks at UTC midnights); each line breaks where its data have
a gap (NaN, or more than three of its usual steps). Every plot carries ``data-points`` (the points
drawn) and each line a ``<g class="series" data-label=... data-points=...>``, so tests and readers
can tell an empty plot from a full one. A line of more than MAX_POINTS points is averaged into
MAX_POINTS buckets.
"""

import math
import time
from dataclasses import dataclass
from html import escape

import numpy as np

WIDTH, HEIGHT = 760, 190
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 26, 26
MAX_POINTS = 700
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")  # fmt: skip
DAY = 86400


@dataclass
class Line:
    label: str
    ts: object  # epoch seconds (sequence)
    values: object  # numbers, NaN/None for missing


def _nice_step(span, ticks=4):
    raw = span / max(ticks, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _fmt(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return "%.0f" % v
    if a >= 10:
        return "%.0f" % v if float(v).is_integer() else "%.1f" % v
    if a >= 1:
        return "%g" % round(v, 2)
    return "%g" % round(v, 3)


def _y_range(values, y_min=None, y_max=None):
    finite = values[np.isfinite(values)] if len(values) else values
    lo = float(finite.min()) if len(finite) else 0.0
    hi = float(finite.max()) if len(finite) else 1.0
    lo = lo if y_min is None else min(lo, y_min)
    hi = hi if y_max is None else max(hi, y_max)
    if hi - lo < 1e-9:
        pad = abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def _downsample(ts, v):
    if len(ts) <= MAX_POINTS:
        return ts, v
    edges = np.linspace(ts[0], ts[-1] + 1, MAX_POINTS + 1)
    b = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, MAX_POINTS - 1)
    ok = np.isfinite(v)
    s = np.bincount(b[ok], weights=v[ok], minlength=MAX_POINTS)
    c = np.bincount(b[ok], minlength=MAX_POINTS)
    t = np.bincount(b, weights=ts, minlength=MAX_POINTS) / np.maximum(np.bincount(b, minlength=MAX_POINTS), 1)
    keep = c > 0
    return t[keep], s[keep] / c[keep]


def _segments(ts, v):
    """Runs of finite points, broken at a missing value or a gap larger than three usual steps."""
    idx = np.flatnonzero(np.isfinite(v))
    if not len(idx):
        return []
    gaps = np.diff(ts[idx])
    step = float(np.median(gaps)) if len(gaps) else 0.0
    cut = np.flatnonzero((np.diff(idx) > 1) | (gaps > max(3 * step, 1))) + 1
    return list(zip(np.split(ts[idx], cut), np.split(v[idx], cut), strict=True))


def _frame(t0, t1, lo, hi, step, title, unit, n_points, aria, height=HEIGHT):
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    out = ['<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" '
           'role="img" aria-label="%s" data-points="%d">' % (WIDTH, height, WIDTH, height, escape(aria), n_points),
           "<title>%s</title>" % escape(aria),
           '<text x="%d" y="15" class="ptitle">%s%s</text>' % (LEFT, escape(title),
                                                               " (%s)" % escape(unit) if unit else "")]  # fmt: skip
    y = lo
    while y <= hi + step * 1e-6:
        py = TOP + h - (y - lo) / (hi - lo) * h
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>' % (LEFT, LEFT + w, py, py))
        out.append('<text x="%d" y="%.1f" class="ytick">%s</text>' % (LEFT - 4, py + 4, _fmt(y)))
        y += step
    span = max(t1 - t0, 1)
    every = DAY if span <= 16 * DAY else 7 * DAY
    t = (t0 // DAY + 1) * DAY
    while t < t1:
        px = LEFT + (t - t0) / span * w
        out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" class="grid"/>' % (px, px, TOP, TOP + h))
        out.append(
            '<text x="%.1f" y="%d" class="xtick">%s</text>' % (px, HEIGHT - 8, time.strftime("%m-%d", time.gmtime(t)))
        )
        t += every
    out.append('<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>' % (LEFT, TOP, w, h))
    return out


def _legend_rows(labels):
    """Legend items flowed left to right under the plot: [(x, row, label)]."""
    x, row, out = LEFT, 0, []
    for label in labels:
        wide = 18 + 6.5 * len(label)
        if x + wide > WIDTH - RIGHT and x > LEFT:
            x, row = LEFT, row + 1
        out.append((x, row, label))
        x += wide
    return out


def _legend(labels):
    return ['<text x="%.0f" y="%d" class="legend" fill="%s">&#9632; %s</text>'
            % (x, HEIGHT + 10 + 14 * row, PALETTE[k % len(PALETTE)], escape(label))
            for k, (x, row, label) in enumerate(_legend_rows(labels))]  # fmt: skip


def line_plot(lines, t0, t1, title, unit="", y_min=None, y_max=None, aria=None):
    """An SVG line plot of ``lines`` (Line) over [t0, t1]; ``y_min``/``y_max`` widen the axis to include them."""
    prepared = []
    for ln in lines:
        ts = np.asarray(ln.ts, dtype=float)
        v = np.array([np.nan if x is None else x for x in ln.values], dtype=float) if len(ln.ts) else np.zeros(0)
        m = (ts >= t0) & (ts <= t1)
        order = np.argsort(ts[m], kind="stable")
        prepared.append((ln.label, *_downsample(ts[m][order], v[m][order])))
    allv = np.concatenate([p[2] for p in prepared]) if prepared else np.zeros(0)
    lo, hi, step = _y_range(allv, y_min, y_max)
    n_points = int(sum(np.isfinite(p[2]).sum() for p in prepared))
    rows = _legend_rows([p[0] for p in prepared])[-1][1] + 1 if len(prepared) > 1 else 0
    out = _frame(t0, t1, lo, hi, step, title, unit, n_points, aria or title, HEIGHT + 14 * rows + (4 if rows else 0))
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = max(t1 - t0, 1)
    for k, (label, ts, v) in enumerate(prepared):
        color = PALETTE[k % len(PALETTE)]
        n = int(np.isfinite(v).sum())
        out.append('<g class="series" data-label="%s" data-points="%d" stroke="%s" fill="%s">'
                   % (escape(label), n, color, color))  # fmt: skip
        out.append("<title>%s: %d points</title>" % (escape(label), n))
        for sts, sv in _segments(ts, v):
            px = LEFT + (sts - t0) / span * w
            py = TOP + h - (sv - lo) / (hi - lo) * h
            pts = " ".join("%.1f,%.1f" % xy for xy in zip(px.tolist(), py.tolist(), strict=True))
            if len(sts) == 1:
                out.append('<circle cx="%.1f" cy="%.1f" r="2.5"/>' % (px[0], py[0]))
            else:
                out.append('<polyline fill="none" stroke-width="1.5" points="%s"/>' % pts)
        out.append("</g>")
    if len(prepared) > 1:
        out += _legend([p[0] for p in prepared])
    if not n_points:
        out.append('<text x="%d" y="%d" class="empty">no data in this window</text>' % (LEFT + w // 2, TOP + h // 2))
    out.append("</svg>")
    return "".join(out)


def bar_plot(ts, values, t0, t1, title, unit="", y_max=None, width_s=DAY, aria=None):
    """One bar per value (each ``width_s`` wide from its ts), e.g. completeness per UTC day."""
    ts = np.asarray(ts, dtype=float)
    v = np.array([np.nan if x is None else x for x in values], dtype=float) if len(ts) else np.zeros(0)
    lo, hi, step = _y_range(v, 0.0, y_max)
    n_points = int(np.isfinite(v).sum())
    out = _frame(t0, t1, lo, hi, step, title, unit, n_points, aria or title)
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = max(t1 - t0, 1)
    out.append('<g class="series" data-label="%s" data-points="%d" fill="%s">' % (escape(title), n_points, PALETTE[0]))
    for t, x in zip(ts.tolist(), v.tolist(), strict=True):
        if not math.isfinite(x) or t + width_s <= t0 or t >= t1:
            continue
        a = LEFT + (max(t, t0) - t0) / span * w
        b = LEFT + (min(t + width_s, t1) - t0) / span * w
        top = TOP + h - (x - lo) / (hi - lo) * h
        out.append('<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s%s</title></rect>'
                   % (a + 1, top, max(b - a - 2, 1), TOP + h - top, time.strftime("%Y-%m-%d", time.gmtime(t)),
                      _fmt(x), escape(unit)))  # fmt: skip
    out.append("</g>")
    if not n_points:
        out.append('<text x="%d" y="%d" class="empty">no data in this window</text>' % (LEFT + w // 2, TOP + h // 2))
    out.append("</svg>")
    return "".join(out)
