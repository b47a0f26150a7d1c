"""The season report as one self-contained, printable HTML file (inline CSS and SVG), and its PDF.

    html = render(report, report.summary())          # report: upstream.season.SeasonReport
    write_pdf("season.html", "season.pdf")           # headless Debian Chromium via Playwright, no network

Page one is the summary (per field: key numbers and a plain-language statement); then a page per
field with its plots (NDVI, canopy stress, water use and rain, GDD, data completeness) and its nodes;
then how the figures are made. No script, no external asset: it opens and prints anywhere offline.
"""

import datetime as dt
import html
import pathlib

import numpy as np

from upstream.errors import ConfigError
from upstream.season import CWSI_STRESS, DT_STRESS_K, day_date
from upstream.season_svg import Chart

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
GREEN, GREEN_LIGHT, GREY, RED, BLUE, TEAL, ORANGE, INDIGO = ("#2e7d32", "#81c784", "#90a4ae", "#c62828", "#1565c0",
                                                             "#00838f", "#ef6c00", "#5c6bc0")  # fmt: skip
NM = '<span class="nm">not measured</span>'
e = html.escape

CSS = """
@page { size: A4; margin: 12mm; }
* { box-sizing: border-box; }
body { font: 13px/1.45 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #222; max-width: 780px;
       margin: 0 auto; padding: 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 0 0 6px; } h3 { font-size: 14px; }
.sub { color: #555; margin: 0 0 14px; }
.page { break-after: page; page-break-after: always; }
table { border-collapse: collapse; width: 100%; font-size: 12px; margin: 8px 0 12px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: right; vertical-align: top; }
th, td { white-space: nowrap; }
th:first-child, td:first-child { white-space: normal; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f5f3; font-weight: 600; }
.statement { margin: 6px 0 10px; } .statement b { color: #1b5e20; }
.nm { color: #8a6d00; font-style: italic; }
.figures { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 10px; }
.figure { border: 1px solid #dfe5df; border-radius: 4px; padding: 6px 10px; min-width: 110px; }
.figure .v { font-size: 17px; font-weight: 600; } .figure .k { font-size: 11px; color: #555; }
svg.plot { width: 100%; height: auto; display: block; margin: 4px 0 8px; break-inside: avoid; }
svg .title { font-size: 13px; font-weight: 600; fill: #222; } svg .tick, svg .legend { font-size: 10px; fill: #555; }
svg .axis-label { font-size: 10px; fill: #555; } svg .grid { stroke: #e8e8e8; }
svg .axis, svg .tickmark { stroke: #888; }
svg .empty { font-size: 14px; fill: #8a6d00; font-style: italic; }
.note { font-size: 11px; color: #555; }
.methods { font-size: 11.5px; } .methods li { margin: 3px 0; }
@media print { body { max-width: none; padding: 0; } }
"""


def _pct(v):
    return NM if v is None else "%.0f %%" % (100 * v)


def _num(v, unit="", fmt="{:,.0f}"):
    return NM if v is None else fmt.format(v) + (" " + unit if unit else "")


def _short(iso):
    return dt.date.fromisoformat(iso).strftime("%-d %b")


def render(report, summary):
    """The whole report as HTML text."""
    nodes = sum(f["devices"] for f in summary["fields"])
    title = "Season report %d - %s" % (report.season, report.customer)
    out = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>%s</title><style>%s</style></head><body>" % (e(title), CSS)]  # fmt: skip
    out.append('<section class="page summary" id="summary">')
    out.append("<h1>%s</h1>" % e(title))
    out.append('<p class="sub">%s to %s &middot; %d field%s, %d node%s &middot; generated %s</p>' % (
        day_date(report.first_day).strftime("%-d %B %Y"), day_date(report.last_day).strftime("%-d %B %Y"),
        len(summary["fields"]), "" if len(summary["fields"]) == 1 else "s", nodes, "" if nodes == 1 else "s",
        dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")))  # fmt: skip
    out.append("<h2>Season summary</h2>")
    heads = ("Field", "Nodes", "Days", "Data complete", "Uptime", "Stress days", "ETc", "Rain", "GDD", "NDVI peak")
    out.append("<table><thead><tr>%s</tr></thead><tbody>" % "".join("<th>%s</th>" % h for h in heads))
    for s in summary["fields"]:
        peak = NM if s["ndvi_peak"] is None else "%.2f (%s)" % (s["ndvi_peak"], _short(s["ndvi_peak_day"]))
        out.append("<tr><td>%s</td><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                   "<td>%s</td><td>%s</td></tr>" % (
                       e(s["field"]), s["devices"], s["days"], _pct(s["completeness"]), _pct(s["uptime"]),
                       _num(s["stress_days"]), _num(s["etc_mm"], "mm"), _num(s["rain_mm"], "mm"), _num(s["gdd"], "K d"),
                       peak))  # fmt: skip
    out.append("</tbody></table>")
    for s in summary["fields"]:
        out.append('<p class="statement"><b>%s.</b> %s</p>' % (e(s["field"]), e(s["statement"])))
    out.append(
        '<p class="note">Stress day: midday CWSI &ge; %.1f (or, without a CWSI, canopy &ge; %.0f K warmer than '
        "the air). ETc: crop water use from the gateway's daily values. &ldquo;Not measured&rdquo;: no sensor "
        "delivered that quantity this season; nothing is estimated in its place.</p>" % (CWSI_STRESS, DT_STRESS_K)
    )
    out.append("</section>")
    for f, s in zip(report.fields, summary["fields"], strict=True):
        out += _field_page(f, s)
    out += _methods()
    out.append("</body></html>")
    return "\n".join(out)


def _figure(value, label):
    return '<div class="figure"><div class="v">%s</div><div class="k">%s</div></div>' % (value, e(label))


def _field_page(f, s):
    out = ['<section class="page field" data-field="%s">' % e(f.name), "<h2>%s</h2>" % e(f.name)]
    out.append('<p class="sub">%d node%s &middot; %s to %s</p>' % (
        s["devices"], "" if s["devices"] == 1 else "s", _short(s["first_day"]), _short(s["last_day"])))  # fmt: skip
    out.append('<div class="figures">%s</div>' % "".join((
        _figure(_pct(s["completeness"]), "data complete"), _figure(_pct(s["uptime"]), "device uptime"),
        _figure(_num(s["stress_days"]), "canopy stress days"), _figure(_num(s["etc_mm"], "mm"), "season ETc"),
        _figure(_num(s["rain_mm"], "mm"), "rain"), _figure(_num(s["gdd"], "K d"), "growing degree days"))))  # fmt: skip
    out.append('<p class="statement">%s</p>' % e(s["statement"]))
    out += _plots(f)
    out.append("<h3>Nodes</h3><table><thead><tr><th>Node</th><th>First heard</th><th>Last heard</th>"
               "<th>Days heard</th><th>Uptime</th><th>Data complete</th></tr></thead><tbody>")  # fmt: skip
    for d in f.devices:
        first = "never" if d.first_day is None else day_date(d.first_day).isoformat()
        last = "never" if d.last_day is None else day_date(d.last_day).isoformat()
        out.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%d of %d</td><td>%s</td><td>%s</td></tr>" % (
            e(d.device), first, last, d.days_heard, d.days_expected, _pct(d.uptime), _pct(d.completeness)))  # fmt: skip
    out.append("</tbody></table></section>")
    return out


def _measured(a):
    return bool((~np.isnan(a)).any())


def _plots(f):
    sr, days, out = f.series, f.days, []
    c = Chart(days, "Crop vigour: NDVI at midday", "NDVI", y_range=(0.0, 1.0), kind="ndvi")
    if len(f.devices) > 1:
        c.band(sr["ndvi_lo"], sr["ndvi_hi"], "range of the nodes", GREEN_LIGHT)
    out.append(c.line(sr["ndvi"], "field mean", GREEN, points=True).svg())
    if _measured(sr["cwsi"]):
        c = Chart(days, "Canopy stress: crop water stress index (CWSI) at midday", "CWSI (0 none - 1 severe)",
                  y_range=(0.0, 1.0), kind="stress")  # fmt: skip
        c.bars(sr["cwsi"], "CWSI", GREY, highlight=f.stress, highlight_colour=RED, highlight_label="stress day")
        out.append(c.hline(CWSI_STRESS, "threshold %.1f" % CWSI_STRESS, RED).svg())
    elif _measured(sr["dt_k"]):
        c = Chart(days, "Canopy stress: canopy minus air temperature at midday", "canopy - air (K)", kind="stress")
        c.bars(sr["dt_k"], "canopy - air", GREY, highlight=f.stress, highlight_colour=RED, highlight_label="stress day")
        out.append(c.hline(DT_STRESS_K, "threshold %+.0f K" % DT_STRESS_K, RED).svg())
    else:
        out.append('<p class="note">Canopy stress: %s (no CWSI or canopy temperature this season).</p>' % NM)
    etc, rain = _measured(sr["etc_mm"]), _measured(sr["rain_mm"])
    if etc or rain:
        c = Chart(days, "Water: season totals so far", "cumulative (mm)", kind="water")
        if etc:
            c.line(f.cumulative("etc_mm"), "crop water use (ETc)", BLUE, width=2.5)
        if rain:
            c.line(f.cumulative("rain_mm"), "rain", TEAL, width=2.5)
        out.append(c.svg())
        c = Chart(days, "Water: per day", "mm per day", kind="water-daily")
        if rain:
            c.bars(sr["rain_mm"], "rain", TEAL)
        if etc:
            c.line(sr["etc_mm"], "ETc", BLUE, width=1.5)
        out.append(c.svg())
    missing = [name for name, ok in (("crop water use (ETc)", etc), ("rainfall", rain)) if not ok]
    if missing:
        why = "no rain gauge for this field or farm" if not rain else "no daily ETc from the gateway"
        out.append('<p class="note">%s: %s (%s).</p>' % (" and ".join(missing).capitalize(), NM, why))
    if _measured(sr["gdd"]):
        c = Chart(days, "Heat: growing degree days, season total so far", "degree days (K d)", kind="gdd")
        out.append(c.line(f.cumulative("gdd"), "cumulative GDD", ORANGE, width=2.5).svg())
    else:
        out.append('<p class="note">Growing degree days: %s.</p>' % NM)
    if _measured(sr["completeness"]):
        c = Chart(days, "Data completeness per day (all nodes of the field)", "% of intervals", y_range=(0.0, 100.0),
                  kind="completeness")  # fmt: skip
        out.append(c.bars(100.0 * sr["completeness"], "data received", INDIGO).svg())
    else:
        out.append('<p class="note">Data completeness: %s (no interval counts or cells from the nodes).</p>' % NM)
    return out


def _methods():
    return ['<section class="methods" id="methods"><h2>How the figures are made</h2><ul>',
            "<li>Each node sends a daily summary (midday NDVI, canopy and air temperatures, the 15-minute intervals it "
            "holds); the farm gateway adds the agronomic values (ET0, Kc from NDVI, ETc = Kc &times; ET0, GDD, "
            "CWSI). "
            "A field's day is the mean over its nodes that have the value.</li>",
            "<li>Canopy stress day: the field's midday crop water stress index (CWSI, Idso et al. 1981) is %.1f or "
            "more; on a day without a CWSI, the canopy is %.0f K or more warmer than the air at midday.</li>"
            % (CWSI_STRESS, DT_STRESS_K),
            "<li>Water use (ETc) and growing degree days are sums of the daily values over the days that have them; "
            "rain is the sum of the rain gauge's readings (a farm-wide gauge counts for every field).</li>",
            "<li>Data complete: intervals received over intervals expected, from each node's first day in the season "
            "to the last day of the report. Uptime: the share of those days on which the node was heard.</li>",
            "<li>Days are UTC days. Gaps in a line are days without data; nothing is estimated in their place.</li>",
            "</ul></section>"]  # fmt: skip


def write_pdf(html_path, pdf_path, chromium=CHROMIUM):
    """Print ``html_path`` to ``pdf_path`` (A4) with headless Chromium; every network request is refused."""
    if not pathlib.Path(chromium).exists():
        raise ConfigError("--pdf", "Chromium at %s to print the PDF (python3 bootstrap.py installs it)" % chromium)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        raise ConfigError("--pdf", "the playwright Python package to print the PDF") from err
    url = pathlib.Path(html_path).resolve().as_uri()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
            page.goto(url, wait_until="load")
            page.pdf(path=str(pdf_path), format="A4", print_background=True,
                     margin={"top": "12mm", "bottom": "12mm", "left": "12mm", "right": "12mm"})  # fmt: skip
        finally:
            browser.close()
