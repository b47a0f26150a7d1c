"""Time-series charts as inline SVG, rendered in Python: axes, ticks, dates, units, legend; no JavaScript.

    c = Chart(days, "NDVI at midday", "NDVI", y_range=(0, 1))     # days: day numbers (since 1970-01-01)
    svg = c.band(lo, hi, "range of the nodes").line(ndvi, "field mean", points=True).svg()

One value per day; NaN is a gap (a line breaks there, a bar is left out). A lone day between gaps is
drawn as a point so it is never lost. Text is escaped; colours come from the caller.
"""

import datetime as dt
import html
import math

import numpy as np

_EPOCH = dt.date(1970, 1, 1)
WIDTH, HEIGHT = 720, 215
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 42, 42


def nice_ticks(lo, hi, target=5):
    """Round tick values covering lo..hi (about ``target`` of them)."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step + 1e-9) * step
    ticks, v = [], first
    while v <= hi + step * 1e-6:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(v):
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    return ("%.2f" % v).rstrip("0").rstrip(".") if v != int(v) else "%d" % v


def _date(day):
    return _EPOCH + dt.timedelta(days=int(day))


class Chart:
    """One chart over ``days`` (consecutive day numbers); add layers, then ``svg()``."""

    def __init__(self, days, title, y_label, y_range=None, width=WIDTH, height=HEIGHT, kind=""):
        self.days = np.asarray(days, dtype=np.int64)
        self.title, self.y_label, self.y_range = title, y_label, y_range
        self.width, self.height, self.kind = width, height, kind
        self.layers = []  # (kind, dict)
        self.legend = []  # (label, colour, style)

    # ---- layers ----
    def line(self, values, label, colour, width=2.0, points=False, dash=None):
        self.layers.append(("line", {"v": _arr(values), "colour": colour, "width": width, "points": points,
                                     "dash": dash}))  # fmt: skip
        self.legend.append((label, colour, "line"))
        return self

    def band(self, lo, hi, label, colour):
        self.layers.append(("band", {"lo": _arr(lo), "hi": _arr(hi), "colour": colour}))
        self.legend.append((label, colour, "band"))
        return self

    def bars(self, values, label, colour, highlight=None, highlight_colour=None, highlight_label=None):
        self.layers.append(
            ("bars", {"v": _arr(values), "colour": colour, "hl": highlight, "hl_colour": highlight_colour})
        )
        self.legend.append((label, colour, "bar"))
        if highlight is not None and highlight_label:
            self.legend.append((highlight_label, highlight_colour, "bar"))
        return self

    def hline(self, y, label, colour):
        self.layers.append(("hline", {"y": float(y), "colour": colour}))
        self.legend.append((label, colour, "dash"))
        return self

    # ---- scales ----
    def _y_extent(self):
        if self.y_range is not None:
            return self.y_range
        vals = []
        for kind, p in self.layers:
            if kind == "hline":
                vals.append(p["y"])
            for k in ("v", "lo", "hi"):
                if k in p:
                    a = p[k][~np.isnan(p[k])]
                    if len(a):
                        vals += [float(a.min()), float(a.max())]
        if not vals:
            return (0.0, 1.0)
        lo, hi = min(0.0, min(vals)), max(vals)
        return (lo, hi if hi > lo else lo + 1.0)

    def svg(self):
        n = len(self.days)
        pw, ph = self.width - LEFT - RIGHT, self.height - TOP - BOTTOM
        lo, hi = self._y_extent()
        ticks = nice_ticks(lo, hi)
        lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
        x = lambda j: LEFT + (j + 0.5) * pw / max(n, 1)
        y = lambda v: TOP + ph - (v - lo) / (hi - lo) * ph
        bw = max(1.0, 0.8 * pw / max(n, 1))
        e = html.escape
        out = ['<svg class="plot %s" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" '
               'aria-label="%s">' % (e(self.kind), self.width, self.height, e(self.title)),
               "<title>%s</title>" % e(self.title),
               '<text class="title" x="%d" y="16">%s</text>' % (LEFT, e(self.title))]  # fmt: skip
        # grid and y axis
        for t in ticks:
            out.append('<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>' % (LEFT, LEFT + pw, y(t), y(t)))
            out.append('<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>' % (LEFT - 6, y(t) + 4, _fmt(t)))
        out.append('<text class="axis-label" transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">%s</text>'
                   % (TOP + ph / 2, e(self.y_label)))  # fmt: skip
        # x axis: month starts (or weeks for a short span)
        out.append('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>' % (LEFT, LEFT + pw, TOP + ph, TOP + ph))
        out.append('<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>' % (LEFT, LEFT, TOP, TOP + ph))
        for j, label in self._x_ticks():
            out.append(
                '<line class="tickmark" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/>' % (x(j), x(j), TOP + ph, TOP + ph + 4)
            )
            out.append(
                '<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x(j), TOP + ph + 16, label)
            )
        if n:
            span = "%s - %s (UTC days)" % (
                _date(self.days[0]).strftime("%-d %b %Y"),
                _date(self.days[-1]).strftime("%-d %b %Y"),
            )
            out.append('<text class="axis-label" x="%.1f" y="%d" text-anchor="middle">%s</text>'
                       % (LEFT + pw / 2, self.height - 6, span))  # fmt: skip
        # layers
        for kind, p in self.layers:
            out += getattr(self, "_" + kind)(p, x, y, bw, lo, hi)
        out += self._legend()
        if not any(self._has_data(p) for k, p in self.layers if k != "hline"):
            out.append('<text class="empty" x="%.1f" y="%.1f" text-anchor="middle">not measured</text>'
                       % (LEFT + pw / 2, TOP + ph / 2))  # fmt: skip
        out.append("</svg>")
        return "\n".join(out)

    @staticmethod
    def _has_data(p):
        return any((~np.isnan(p[k])).any() for k in ("v", "lo", "hi") if k in p)

    def _x_ticks(self):
        n = len(self.days)
        if not n:
            return []
        out = []
        if n <= 60:
            for j in range(n):
                d = _date(self.days[j])
                if d.weekday() == 0:
                    out.append((j, d.strftime("%-d %b")))
        else:
            for j in range(n):
                d = _date(self.days[j])
                if d.day == 1:
                    out.append((j, d.strftime("%b")))
        return out

    # ---- drawing ----
    def _line(self, p, x, y, bw, lo, hi):
        v = p["v"]
        segs, cur = [], []
        for j, val in enumerate(v.tolist()):
            if val != val:
                if cur:
                    segs.append(cur)
                cur = []
            else:
                cur.append((x(j), y(min(max(val, lo), hi))))
        if cur:
            segs.append(cur)
        dash = ' stroke-dasharray="%s"' % p["dash"] if p["dash"] else ""
        out = []
        for s in segs:
            if len(s) > 1:
                d = "M" + " L".join("%.1f,%.1f" % pt for pt in s)
                out.append('<path class="series" d="%s" fill="none" stroke="%s" stroke-width="%.1f"%s/>'
                           % (d, p["colour"], p["width"], dash))  # fmt: skip
            if p["points"] or len(s) == 1:
                out += [
                    '<circle class="point" cx="%.1f" cy="%.1f" r="1.8" fill="%s"/>' % (a, b, p["colour"]) for a, b in s
                ]
        return out

    def _band(self, p, x, y, bw, lo, hi):
        out, cur = [], []
        for j, (a, b) in enumerate(zip(p["lo"].tolist(), p["hi"].tolist(), strict=True)):
            if a != a or b != b:
                if len(cur) > 1:
                    out.append(self._band_path(cur, x, y, p["colour"]))
                cur = []
            else:
                cur.append((j, a, b))
        if len(cur) > 1:
            out.append(self._band_path(cur, x, y, p["colour"]))
        return out

    @staticmethod
    def _band_path(cur, x, y, colour):
        top = ["%.1f,%.1f" % (x(j), y(b)) for j, _, b in cur]
        bottom = ["%.1f,%.1f" % (x(j), y(a)) for j, a, _ in reversed(cur)]
        return '<path class="band" d="M%s Z" fill="%s" fill-opacity="0.35" stroke="none"/>' % (
            " L".join(top + bottom),
            colour,
        )

    def _bars(self, p, x, y, bw, lo, hi):
        out = []
        base = y(max(lo, 0.0))
        hl = p["hl"]
        for j, val in enumerate(p["v"].tolist()):
            if val != val:
                continue
            top = y(min(max(val, lo), hi))
            colour = p["hl_colour"] if hl is not None and hl[j] else p["colour"]
            out.append('<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                       % (x(j) - bw / 2, min(top, base), bw, abs(base - top), colour))  # fmt: skip
        return out

    def _hline(self, p, x, y, bw, lo, hi):
        yy = y(p["y"])
        return ['<line class="threshold" x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="5 3"/>'
                % (LEFT, self.width - RIGHT, yy, yy, p["colour"])]  # fmt: skip

    def _legend(self):
        out, xx = [], self.width - RIGHT
        items = []
        for label, colour, style in reversed(self.legend):
            w = 7 * len(label) + 22
            xx -= w
            items.append((xx, label, colour, style))
        for x0, label, colour, style in items:
            if style == "line":
                out.append(
                    '<line x1="%d" x2="%d" y1="28" y2="28" stroke="%s" stroke-width="2"/>' % (x0, x0 + 14, colour)
                )
            elif style == "dash":
                out.append('<line x1="%d" x2="%d" y1="28" y2="28" stroke="%s" stroke-dasharray="4 2"/>'
                           % (x0, x0 + 14, colour))  # fmt: skip
            else:
                op = ' fill-opacity="0.35"' if style == "band" else ""
                out.append('<rect x="%d" y="23" width="14" height="10" fill="%s"%s/>' % (x0, colour, op))
            out.append('<text class="legend" x="%d" y="32">%s</text>' % (x0 + 18, html.escape(label)))
        return out


def _arr(v):
    return np.asarray(v, dtype=float)
