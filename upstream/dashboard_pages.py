"""The dashboard's HTML pages, rendered on the server (no script; plots are inline SVG from dashboard_svg).

    view = View(data, user)                     # user.may_see(customer) scopes every list and page
    html = overview(view); html = device_page(view, "node-1007", days=14)    # NotFound -> 404

Pages: overview (status counts, customers with their rollups), the needs-attention list, a customer,
a device (figures, diagnoses with evidence and action, plots of battery, solar, signal/link and
completeness, install report, alerts), a field (a plot per quantity of every source in its stream).
A customer, device or field the user may not see is NotFound, exactly like one that does not exist.
"""

import time
from html import escape
from urllib.parse import quote, urlencode

import numpy as np

from upstream.alerts import alert_history
from upstream.dashboard_svg import Line, bar_plot, line_plot
from upstream.diagnoses import CAUSES
from upstream.health import STATUSES, evidence_text

DAY = 86400
NO_CUSTOMER = "(no customer)"
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#24452e;color:#fff;padding:8px 16px;display:flex;gap:18px;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}header .who{margin-left:auto;font-weight:400}
header form{display:inline}header button{background:none;border:1px solid #fff;color:#fff;cursor:pointer}
main{padding:12px 16px;max-width:1600px}.plots,.quantities{display:flex;flex-wrap:wrap;gap:0 10px}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:18px 0 6px}
table{border-collapse:collapse;background:#fff;margin:4px 0 10px}td,th{border:1px solid #ddd;padding:4px 7px;
text-align:left;vertical-align:top}th{background:#eef2ee}.num{text-align:right}.muted{color:#777}
.cards{display:flex;gap:10px;flex-wrap:wrap}.card{background:#fff;border:1px solid #ddd;padding:8px 14px;
min-width:90px}.card b{display:block;font-size:22px}.badge{padding:1px 6px;border-radius:3px;font-size:12px}
.active{background:#d7f0d9}.late{background:#fdf0c2}.silent,.never_seen,.firing,.FAIL{background:#f8d0cc}
.holding,.WARN{background:#fdf0c2}.PASS{background:#d7f0d9}.finding{background:#fff;border:1px solid #ddd;
border-left:4px solid #c0392b;padding:6px 10px;margin:6px 0}.finding.holding{border-left-color:#e0a800}
.plot{background:#fff;border:1px solid #ddd;display:block;margin:6px 0}.plot .grid{stroke:#eee}
.plot .frame{fill:none;stroke:#999}.plot text{font:11px sans-serif;fill:#444}.plot .ytick{text-anchor:end}
.plot .xtick{text-anchor:middle}.plot .ptitle{font-weight:600}.plot .empty{text-anchor:middle;fill:#999}
figure{margin:0}figcaption{font-size:12px;color:#555}.crumbs{color:#555}
tr.attention-row td:nth-child(2){white-space:nowrap}
"""


class NotFound(Exception):
    """The page does not exist, or the user may not see it (the same answer for both)."""


class View:
    """What one request renders from: the fleet health, the data, and who asks."""

    def __init__(self, data, user):
        self.data, self.user = data, user
        self.fh = data.health()
        self.now = self.fh.now

    def may_see(self, customer):
        return self.user.may_see(customer or NO_CUSTOMER)

    def attention(self, customer=None):
        return [r for r in self.fh.attention if self.may_see(r["customer"]) and customer in (None, r["customer"])]

    def customers(self):
        return [c for c in self.fh.customers if self.may_see(c["customer"])]

    def device_index(self, name):
        hits = np.flatnonzero(self.fh.data.names == name)
        if not len(hits) or not self.may_see(str(self.fh.data.customer[hits[0]])):
            raise NotFound("no device %r" % name)
        return int(hits[0])


# ---- small pieces ----
def _iso(t):
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(t)))


def href(kind, name, **query):
    return "/%s/%s%s" % (kind, quote(str(name), safe=""), "?" + urlencode(query) if query else "")


def link(kind, name, text=None):
    return '<a href="%s">%s</a>' % (escape(href(kind, name)), escape(str(text if text is not None else name)))


def _num(v, fmt="%.2f", unit=""):
    if v is None or (isinstance(v, float) and v != v):
        return '<span class="muted">n/a</span>'
    return escape(fmt % v + unit)


def _pct(v):
    return _num(None if v is None else 100 * v, "%.0f", " %")


def badge(text):
    return '<span class="badge %s">%s</span>' % (escape(str(text)), escape(str(text).replace("_", " ")))


def table(head, rows, cls=""):
    out = ['<table class="%s"><tr>%s</tr>' % (cls, "".join("<th>%s</th>" % escape(h) for h in head))]
    out += rows
    out.append("</table>")
    return "".join(out)


def layout(title, body, user, logout=False):
    who = ""
    if user is not None and user.name:
        who = '<span class="who">%s</span>' % escape(user.name)
        if logout:
            who += '<form method="post" action="/logout"><button type="submit">sign out</button></form>'
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>%s · Fieldline fleet</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><style>%s</style></head><body>'
            '<header><a href="/">Fieldline fleet</a><a href="/attention">Needs attention</a>%s</header>'
            "<main>%s</main></body></html>" % (escape(title), CSS, who, body))  # fmt: skip


def window_links(kind, name, days, choices=(3, 7, 14, 30)):
    parts = [("<b>%d days</b>" % d) if d == days else '<a href="%s">%d days</a>' % (escape(href(kind, name, days=d)), d)
             for d in choices]  # fmt: skip
    return '<p class="muted">window: %s</p>' % " · ".join(parts)


def attention_table(rows, show_customer=True):
    head = ["#", "device", "customer", "field", "likely cause", "evidence", "what to do", "status", "score"]
    if not show_customer:
        head.remove("customer")
    out = []
    for r in rows:
        cause = "<b>%s</b>" % escape(r["title"])
        if r["also"]:
            cause += '<br><span class="muted">also: %s</span>' % escape(", ".join(CAUSES[c].title for c in r["also"]))
        cells = ['<td class="num">%d</td>' % r["rank"], "<td>%s</td>" % link("device", r["device"])]
        if show_customer:
            cells.append("<td>%s</td>" % link("customer", r["customer"]))
        cells += ["<td>%s</td>" % (link("field", r["field"]) if r["field"] else "-"), "<td>%s</td>" % cause,
                  '<td class="evidence">%s</td>' % escape(r["evidence_text"]),
                  '<td class="action">%s</td>' % escape(r["action"]), "<td>%s</td>" % badge(r["status"]),
                  '<td class="num">%.2f</td>' % r["score"]]  # fmt: skip
        out.append('<tr class="attention-row" data-device="%s" data-cause="%s">%s</tr>'
                   % (escape(r["device"]), escape(r["cause"]), "".join(cells)))  # fmt: skip
    if not rows:
        return '<p class="muted">Nothing needs attention.</p>'
    return table(head, out, "attention")


# ---- pages ----
def overview(view):
    customers = view.customers()
    counts = {s: sum(c[s] for c in customers) for s in STATUSES}
    total = sum(c["devices"] for c in customers)
    attention = view.attention()
    cards = [("devices", total)] + [(s.replace("_", " "), counts[s]) for s in STATUSES]
    cards += [("need attention", len(attention)), ("install failed", sum(c["install_failed"] for c in customers))]
    body = ["<h1>Fleet overview</h1><p class=\"muted\">judged at %s</p>" % _iso(view.now),
            '<div class="cards">%s</div>' % "".join('<div class="card" data-status="%s"><b>%d</b>%s</div>'
                                                    % (escape(k), v, escape(k)) for k, v in cards)]  # fmt: skip
    rows = []
    for c in customers:
        causes = ", ".join(
            "%s %d" % (CAUSES[k].title, n) for k, n in sorted(c["causes"].items(), key=lambda kv: -kv[1])
        )
        att = c["needs_attention"]
        rows.append("<tr class=\"customer-row\"><td>%s</td>%s<td>%s</td><td class=\"num\">%s</td>"
                    '<td class="num">%d</td><td>%s</td></tr>' % (
                        link("customer", c["customer"]),
                        "".join('<td class="num">%d</td>' % c[k] for k in ("devices",) + STATUSES),
                        _pct(c["completeness_7d"]),
                        '<a href="/attention?%s">%d</a>' % (escape(urlencode({"customer": c["customer"]})), att)
                        if att else "0", c["install_failed"], escape(causes)))  # fmt: skip
    body.append("<h2>Customers</h2>")
    body.append(table(["customer", "devices", "active", "late", "silent", "never seen", "completeness 7 d",
                       "need attention", "install failed", "causes"], rows, "customers"))  # fmt: skip
    body.append('<h2>Top of the <a href="/attention">needs-attention list</a> (%d)</h2>' % len(attention))
    body.append(attention_table(attention[:10]))
    return "Fleet overview", "".join(body)


def attention_page(view, customer=None):
    if customer is not None and not view.may_see(customer):
        raise NotFound("no customer %r" % customer)
    rows = view.attention(customer)
    title = "Needs attention" + (": %s" % customer if customer else "")
    body = '<h1>%s</h1><p class="muted">%d devices, ranked by severity × customer impact; judged at %s</p>%s' % (
        escape(title),
        len(rows),
        _iso(view.now),
        attention_table(rows),
    )
    return title, body


def customer_page(view, name):
    c = next((c for c in view.customers() if c["customer"] == name), None)
    if c is None:
        raise NotFound("no customer %r" % name)
    fh, m = view.fh, view.fh.metrics
    idx = np.flatnonzero(fh.data.customer == name).tolist()
    top = {r["device"]: r for r in fh.attention}
    body = ["<h1>%s</h1>" % escape(name), '<div class="cards">%s</div>' % "".join(
        '<div class="card"><b>%s</b>%s</div>' % (v, escape(k)) for k, v in (
            ("devices", c["devices"]), *((s.replace("_", " "), c[s]) for s in STATUSES),
            ("completeness 7 d", _pct(c["completeness_7d"])), ("need attention", c["needs_attention"])))]  # fmt: skip
    body.append("<h2>Needs attention</h2>" + attention_table(view.attention(name), show_customer=False))
    fields = {}
    for i in idx:
        fields.setdefault(str(fh.data.field[i]), []).append(i)
    body.append(
        "<h2>Fields</h2><ul>%s</ul>"
        % "".join(
            "<li>%s: %d nodes</li>" % (link("field", f) if f else "(no field)", len(v))
            for f, v in sorted(fields.items())
        )
    )
    rows = []
    for i in idx:
        d = str(fh.data.names[i])
        r = top.get(d)
        rows.append("<tr><td>%s</td><td>%s</td><td>%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                    "<td>%s</td><td>%s</td><td>%s</td></tr>" % (
                        link("device", d), escape(str(fh.data.field[i]) or "-"), badge(m["status"][i]),
                        _num(m["battery_soc"][i], "%.0f", " %"), _pct(m["completeness_7d"][i]),
                        escape(str(fh.data.firmware[i] or "-")), escape(str(fh.data.install_verdict[i] or "-")),
                        escape(r["title"]) if r else ""))  # fmt: skip
    body.append("<h2>Devices</h2>" + table(["device", "field", "status", "battery", "completeness 7 d", "firmware",
                                            "install", "needs attention for"], rows, "devices"))  # fmt: skip
    return name, "".join(body)


def _figures(d):
    f = [("status", badge(d["status"])), ("power mode", escape(d["power_mode"])),
         ("last record", "%s ago" % _num(None if d["age_s"] is None else d["age_s"] / 3600, "%.1f", " h")),
         ("expected every", _num(None if d["expected_s"] is None else d["expected_s"] / 3600, "%.1f", " h")),
         ("battery", _num(d["battery_soc"], "%.0f", " %")), ("battery trend", _num(d["battery_slope_pct_day"], "%+.1f",
                                                                                      " %/day")),
         ("days to empty", _num(d["days_to_empty"], "%.1f")),
         ("solar peak yesterday / today", "%s / %s" % (_num(d["solar_peak_yesterday_a"], "%.3f", " A"),
                                                       _num(d["solar_peak_today_a"], "%.3f", " A"))),
         ("retries per frame (2 d / 30 d)", "%s / %s" % (_num(d["retry_ratio_2d"]), _num(d["retry_ratio_30d"]))),
         ("bad frames (2 d)", _num(d["rx_bad_2d"], "%.0f")), ("RSSI", _num(d["rssi_dbm"], "%.0f", " dBm")),
         ("clock offset", _num(d["clock_offset_ms"], "%.0f", " ms")),
         ("completeness yesterday / 7 d", "%s / %s" % (_pct(d["completeness_yesterday"]), _pct(d["completeness_7d"]))),
         ("tilt", _num(d["tilt_last"], "%.1f", " deg")), ("firmware", escape(str(d["firmware"] or "-"))),
         ("gateway", escape(str(d["gateway"] or "-"))), ("install verdict", badge(d["install_verdict"] or "-")),
         ("records (30 d)", str(d["records_30d"]))]  # fmt: skip
    return table(["figure", "value"], ["<tr><th>%s</th><td>%s</td></tr>" % (escape(k), v) for k, v in f], "figures")


def _install_report(reports):
    if not reports:
        return '<p class="muted">No install report received.</p>'
    r = reports[0]
    rows = []
    for c in r["checks"]:
        result = c.get("status") or c.get("result") or ("PASS" if c.get("ok") else "FAIL" if c.get("ok") is False
                                                        else "-")  # fmt: skip
        measured = c.get("measured", c.get("value"))
        rows.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
            escape(str(c.get("name", "?"))), badge(str(result).upper()),
            escape("" if measured is None else str(measured)),
            escape(str(c.get("expected", "") or "")), escape(str(c.get("detail") or c.get("fix") or ""))))  # fmt: skip
    more = ' <span class="muted">(%d earlier reports)</span>' % (len(reports) - 1) if len(reports) > 1 else ""
    return '<p class="install">Verdict %s at %s%s</p>%s' % (
        badge(r["verdict"] or "-"),
        _iso(r["ts"]),
        more,
        table(["check", "result", "measured", "expected", "detail / fix"], rows, "checks"),
    )


def _alerts(alerts):
    open_ = [a for a in alerts if a["closed_at"] is None]
    closed = [a for a in alerts if a["closed_at"] is not None][:10]
    out = []
    for title, rows, cls in (("Open alerts", open_, "open-alerts"), ("Recently closed alerts", closed, "closed")):
        out.append("<h3>%s (%d)</h3>" % (title, len(rows)))
        if rows:
            out.append(table(["cause", "opened", "last firing", "closed", "evidence", "action"], [
                '<tr class="alert" data-cause="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>'
                "</tr>" % (escape(a["cause"]), escape(CAUSES[a["cause"]].title if a["cause"] in CAUSES else a["cause"]),
                           _iso(a["opened_at"]), _iso(a["last_firing_at"]), _iso(a["closed_at"]),
                           escape(evidence_text(a["cause"], a["evidence"])), escape(a["action"] or ""))
                for a in rows], cls))  # fmt: skip
    return "".join(out)


def device_page(view, name, days=14):
    i = view.device_index(name)
    fh, data = view.fh, view.data
    d = fh.device(name)
    t1 = view.now
    t0 = t1 - days * DAY
    h = data.device_history(name, t0, t1)
    ts = h["ts"]
    c_ts, c_v = data.completeness_days(name, t0 // DAY, t1 // DAY)
    field = d["field"]
    body = ['<p class="crumbs">%s › %s › %s</p>' % (link("customer", d["customer"]),
                                                     link("field", field) if field else "(no field)", escape(name)),
            "<h1>%s %s</h1>" % (escape(name), badge(d["status"])), "<h2>Diagnoses</h2>"]  # fmt: skip
    found = data.diagnoses(fh, i)
    for f in found:
        body.append('<div class="finding %s" data-cause="%s"><b class="cause">%s</b> %s<div class="evidence">'
                    'Evidence: %s</div><div class="action">What to do: %s</div></div>'
                    % (f["state"], escape(f["cause"]), escape(f["title"]), badge(f["state"]),
                       escape(f["evidence_text"]), escape(f["action"])))  # fmt: skip
    if not found:
        body.append('<p class="muted">No diagnosis: the device looks healthy.</p>')
    body.append("<h2>Over time</h2>" + window_links("device", name, days))
    plots = [
        line_plot([Line("charge", ts, h["battery_soc"])], t0, t1, "battery charge", "%", 0, 100),
        line_plot([Line("voltage", ts, h["battery_v"])], t0, t1, "battery voltage", "V"),
        line_plot([Line("solar", ts, h["solar_a"])], t0, t1, "solar charging current", "A", 0),
        line_plot([Line("RSSI", ts, h["rssi_dbm"])], t0, t1, "signal (RSSI)", "dBm"),
        line_plot([Line("retries/frame", ts, h["retry_ratio"])], t0, t1, "link: retries per frame", "", 0),
        bar_plot(c_ts, [100 * v for v in c_v], t0, t1, "completeness per UTC day", "%", 100),
    ]
    body.append('<div class="plots">%s</div>' % "".join(plots))
    body.append("<h2>Figures</h2>" + _figures(d))
    body.append("<h2>Install report</h2>" + _install_report(data.onboarding(name)))
    body.append("<h2>Alerts</h2>" + _alerts(alert_history(data.store, name)))
    return name, "".join(body)


def field_page(view, field, days=7):
    data = view.data
    devices = data.field_devices(field)
    # a source without a customer belongs to the field's customer: shown to whoever sees one of its nodes
    owned = [r for r in devices if r["customer"] or r["kind"] == "node"]
    shown = [r for r in owned if view.may_see(r["customer"])]
    if shown or view.user.sees_all:
        shown += [r for r in devices if not (r["customer"] or r["kind"] == "node")]
    if not shown:
        raise NotFound("no field %r" % field)
    t1 = view.now
    t0 = t1 - days * DAY
    streams = data.field_streams([r["device"] for r in shown], t0, t1)
    kind = {r["device"]: r for r in shown}
    status = dict(zip(view.fh.data.names.tolist(), view.fh.metrics["status"].tolist(), strict=True))
    customers = sorted({r["customer"] for r in shown if r["customer"] and view.may_see(r["customer"])})
    body = ['<p class="crumbs">%s › %s</p><h1>Field: %s</h1>' % (", ".join(link("customer", c) for c in customers),
                                                                   escape(field), escape(field))]  # fmt: skip
    rows = []
    for r in shown:
        role = {"node": "node", "gateway": "gateway"}.get(r["kind"], "third-party source")
        where = "assigned to this field" if r["assigned"] else "on gateway %s, no field assigned" % r["gateway"]
        st = status.get(r["device"])
        rows.append('<tr class="source-row" data-device="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
            escape(r["device"]), link("device", r["device"]) if r["kind"] == "node" else escape(r["device"]),
            escape(role), badge(st) if st else "-", escape(where)))  # fmt: skip
    body.append("<h2>Devices and sources</h2>" + table(["device / source", "kind", "status", "field"], rows, "sources"))
    body.append("<h2>Every quantity in the stream</h2>" + window_links("field", field, days))
    groups = {}
    for s in streams:
        groups.setdefault((s["quantity"], s["unit"]), []).append(s)

    def is_node(s):
        return kind.get(s["source"], {}).get("kind") == "node"

    order = sorted(groups, key=lambda k: (not any(is_node(s) for s in groups[k]), k))
    figures = []
    for q, unit in order:
        lines = [Line(s["source"] if s["sensor"] == "node" else "%s/%s" % (s["source"], s["sensor"]), s["ts"],
                      s["values"]) for s in groups[(q, unit)]]  # fmt: skip
        third = [ln.label for ln, s in zip(lines, groups[(q, unit)], strict=True) if not is_node(s)]
        nodes = [ln.label for ln, s in zip(lines, groups[(q, unit)], strict=True) if is_node(s)]
        caption = "; ".join(p for p in ("nodes: " + ", ".join(nodes) if nodes else "",
                                        "third-party: " + ", ".join(third) if third else "") if p)  # fmt: skip
        figures.append('<figure class="quantity" data-quantity="%s" data-unit="%s" data-third-party="%s">%s'
                       "<figcaption>%s</figcaption></figure>" % (
                           escape(q), escape(unit), "yes" if third else "no", line_plot(lines, t0, t1, q, unit),
                           escape(caption)))  # fmt: skip
    body.append('<div class="quantities">%s</div>' % "".join(figures))
    if not streams:
        body.append('<p class="muted">No readings from this field\'s sources.</p>')
    rows = ["<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"num\">%d</td><td class=\"num\">%d</td>"
            "<td>%s</td></tr>" % (escape(s["source"]), escape(s["sensor"]), escape(s["quantity"]), escape(s["unit"]),
                                  int(np.isfinite(s["values"]).sum()), s["flagged"], _iso(s["last_ts"]))
            for s in streams]  # fmt: skip
    body.append("<h2>Series</h2>" + table(["source", "sensor", "quantity", "unit", "points in window",
                                           "flagged (not plotted)", "last reading"], rows, "series"))  # fmt: skip
    return "Field " + field, "".join(body)


def login_page(next_path="/", error=None):
    msg = '<p class="error">%s</p>' % escape(error) if error else ""
    body = (
        '<h1>Sign in</h1>%s<form method="post" action="/login"><input type="hidden" name="next" '
        'value="%s"><label>Access token <input type="password" name="token" autocomplete="current-password" '
        'autofocus required></label> <button type="submit">Sign in</button></form>' % (msg, escape(next_path))
    )
    return "Sign in", body


def error_page(status, message):
    return "Error %d" % status, '<h1>%d</h1><p>%s</p><p><a href="/">Fleet overview</a></p>' % (status, escape(message))
