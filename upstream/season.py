"""The season report's figures: per field of one customer, day by day over one season, from the store.

    report = load_season(store, "Hillside Farms", 2026)      # ConfigError names the bad customer or season
    summary = write_season_report("sqlite:///up.db", "Hillside Farms", 2026, "season.html", pdf="season.pdf")

The season is the calendar year, cut to the span of the customer's data in it: first to last UTC day
with a daily value (a day's summary arrives after the day), or with a health record when there are
none. Per node and day, a value comes from the gateway's ``field_daily`` record, else from the node's
own ``node_daily`` summary; a field's day is the mean over its nodes that have the value (NDVI also
keeps the nodes' lowest and highest). Nothing is filled in: a day without a value is a gap, and a
quantity no day has is "not measured" (None in the summary).

- canopy stress day: the field's midday CWSI >= CWSI_STRESS or, on a day without a CWSI, the canopy
  DT_STRESS_K or more warmer than the air at midday (a well-watered canopy is cooler than the air);
- water use: daily ETc (mm) summed over the days that have it; rainfall: the ``precipitation`` cells
  of the field's rain gauges (a gauge of the customer with no field counts for every field), summed
  per UTC day, the mean over the gauges; cells flagged out_of_range/sensor_fault are left out;
- GDD: daily degree days summed over the season's days that have them;
- completeness: the 15-minute intervals the nodes' daily summaries hold (a node whose summaries do not
  count them: the share of the day its own stored cells cover) over those expected, from each node's
  first day heard in the season to the season's last day (hours in survival mode expect none, as in
  upstream/health.py); uptime: the share of those days on which the node was heard at all.
"""

import datetime as dt
import difflib
import json
import os
from dataclasses import dataclass, field

import numpy as np

from upstream.errors import ConfigError

CWSI_STRESS = 0.5
DT_STRESS_K = 2.0
INTERVALS_PER_DAY = 96
FLAGGED = 64 | 32  # out_of_range | sensor_fault (gateway/stream.py)
_EPOCH = dt.date(1970, 1, 1)
_DAILY = ("ndvi_midday", "intervals", "etc_mm", "gdd", "cwsi")
_DIFF_KEYS = {"field_daily": "canopy_air_diff_c", "node_daily": "canopy_air_diff_midday"}


def day_date(day):
    """Days since 1970-01-01 -> datetime.date."""
    return _EPOCH + dt.timedelta(days=int(day))


@dataclass
class DeviceSeason:
    """One node's season: when it was heard and how complete its data is."""

    device: str
    first_day: int | None
    last_day: int | None
    days_expected: int
    days_heard: int
    intervals: float
    intervals_expected: float
    has_counts: bool  # its daily summaries said how many intervals they hold, or its interval cells are stored

    @property
    def completeness(self):
        if not self.has_counts or self.intervals_expected <= 0:
            return None
        return min(1.0, self.intervals / self.intervals_expected)

    @property
    def uptime(self):
        return self.days_heard / self.days_expected if self.days_expected else None


@dataclass
class FieldSeason:
    """One field's days (``days``: day numbers d0..d1) and its per-day series (NaN: no value that day)."""

    name: str
    days: np.ndarray
    devices: list
    series: dict = field(default_factory=dict)  # ndvi, ndvi_lo, ndvi_hi, cwsi, dt_k, etc_mm, gdd, rain_mm, completeness
    stress: np.ndarray = None  # bool per day

    def total(self, name):
        """(sum over the days that have it, number of such days); (None, 0) when no day has it."""
        a = self.series[name]
        n = int((~np.isnan(a)).sum())
        return (float(np.nansum(a)), n) if n else (None, 0)

    def cumulative(self, name):
        a = self.series[name]
        return np.where(np.isnan(a), np.nan, np.nancumsum(a))

    def summary(self):
        """The field's key figures (None: not measured) and a plain-language statement."""
        s = {"field": self.name, "devices": len(self.devices), "first_day": day_date(self.days[0]).isoformat(),
             "last_day": day_date(self.days[-1]).isoformat(), "days": len(self.days)}  # fmt: skip
        exp = sum(d.intervals_expected for d in self.devices if d.has_counts)
        got = sum(d.intervals for d in self.devices if d.has_counts)
        s["completeness"] = _r(min(1.0, got / exp), 4) if exp > 0 else None
        dexp = sum(d.days_expected for d in self.devices)
        s["uptime"] = _r(sum(d.days_heard for d in self.devices) / dexp, 4) if dexp else None
        measured = ~np.isnan(self.series["cwsi"]) | ~np.isnan(self.series["dt_k"])
        s["stress_days_measured"] = int(measured.sum())
        s["stress_days"] = int(self.stress.sum()) if measured.any() else None
        s["cwsi_threshold"], s["dt_threshold_k"] = CWSI_STRESS, DT_STRESS_K
        run, start = _longest_run(self.stress)
        s["longest_stress_run_days"] = run if s["stress_days"] is not None else None
        s["longest_stress_run_from"] = day_date(self.days[start]).isoformat() if run else None
        for key in ("etc_mm", "rain_mm", "gdd"):
            total, n = self.total(key)
            s[key] = _r(total, 1)
            s[key.replace("_mm", "") + "_days"] = n
        ndvi = self.series["ndvi"]
        if (~np.isnan(ndvi)).any():
            i = int(np.nanargmax(ndvi))
            s["ndvi_peak"], s["ndvi_peak_day"] = _r(ndvi[i], 3), day_date(self.days[i]).isoformat()
        else:
            s["ndvi_peak"], s["ndvi_peak_day"] = None, None
        s["statement"] = statement(s)
        return s


@dataclass
class SeasonReport:
    customer: str
    season: int
    first_day: int
    last_day: int
    fields: list

    def summary(self):
        return {"customer": self.customer, "season": self.season,
                "first_day": day_date(self.first_day).isoformat(), "last_day": day_date(self.last_day).isoformat(),
                "fields": [f.summary() for f in self.fields]}  # fmt: skip


def _r(v, nd):
    return None if v is None or v != v else round(float(v), nd)


def _longest_run(flags):
    best, best_start, run = 0, 0, 0
    for i, f in enumerate(np.asarray(flags, dtype=bool).tolist()):
        run = run + 1 if f else 0
        if run > best:
            best, best_start = run, i - run + 1
    return best, best_start


def _mm(v):
    return "{:,.0f} mm".format(v)


def statement(s):
    """A sentence or two a grower reads: what was measured, what it shows; unmeasured things said so."""
    out = []
    if s["completeness"] is not None:
        up = "" if s["uptime"] is None else ", devices up on %.0f %% of days" % (100 * s["uptime"])
        nodes = "%d node%s" % (s["devices"], "" if s["devices"] == 1 else "s")
        out.append("Data %.0f %% complete over %d days from %s%s." % (100 * s["completeness"], s["days"], nodes, up))
    else:
        out.append("Data completeness not measured (no interval counts from the nodes).")
    if s["stress_days"] is None:
        out.append("Canopy stress not measured.")
    elif s["stress_days"] == 0:
        out.append("No canopy stress days flagged in %d days measured." % s["stress_days_measured"])
    else:
        run = s["longest_stress_run_days"]
        longest = (
            (", the longest spell %d days from %s" % (run, _short(s["longest_stress_run_from"]))) if run > 1 else ""
        )
        out.append(
            "%d canopy stress day%s flagged%s." % (s["stress_days"], "" if s["stress_days"] == 1 else "s", longest)
        )
    etc, rain = s["etc_mm"], s["rain_mm"]
    if etc is not None and rain is not None:
        gap = etc - rain
        tail = (" - %s more than fell as rain, drawn from the soil or irrigation" % _mm(gap)) if gap > 0 else \
            " - rain covered the crop's water use"  # fmt: skip
        out.append("Season ETc %s vs %s rain%s." % (_mm(etc), _mm(rain), tail))
    elif etc is not None:
        out.append("Season ETc %s; rainfall not measured." % _mm(etc))
    elif rain is not None:
        out.append("Crop water use (ETc) not measured; %s rain." % _mm(rain))
    else:
        out.append("Crop water use (ETc) and rainfall not measured.")
    if s["gdd"] is not None:
        out.append("{:,.0f} growing degree days.".format(s["gdd"]))
    if s["ndvi_peak"] is not None:
        out.append("NDVI peaked at %.2f on %s." % (s["ndvi_peak"], _short(s["ndvi_peak_day"])))
    return " ".join(out)


def _short(iso):
    return dt.date.fromisoformat(iso).strftime("%-d %b")


# ---- loading ----
def check_sqlite_exists(url):
    """A report only reads: a sqlite:/// URL whose file does not exist is an error, not a new empty store."""
    from upstream.backends.sqlite import sqlite_path

    if isinstance(url, str) and url.startswith("sqlite://"):
        path = sqlite_path(url)
        if path != ":memory:" and not os.path.exists(path):
            raise ConfigError("--store", "an existing store (no file %s)" % path, got=url)


def load_season(store, customer, season):
    """The SeasonReport of ``customer`` (exact name) in calendar year ``season`` from an open Store."""
    if not isinstance(season, int) or not 1970 <= season <= 2200:
        raise ConfigError("--season", "a calendar year such as 2026", got=season)
    devs = store.devices()
    names = devs["device"]
    mine = [i for i, c in enumerate(devs["customer"]) if c == customer]
    if not mine:
        raise ConfigError("--customer", _known_customers(devs["customer"], customer), got=customer)
    ids = [int(devs["id"][i]) for i in mine]
    d_lo = (dt.date(season, 1, 1) - _EPOCH).days
    d_hi = (dt.date(season, 12, 31) - _EPOCH).days
    b = store.backend
    daily = _rows(b, "SELECT device_id, kind, day, %s, body FROM daily WHERE day >= ? AND day <= ?"
                     " AND device_id IN (%%s)" % ", ".join(_DAILY), [d_lo, d_hi], ids)  # fmt: skip
    health = _rows(b, "SELECT device_id, day, n, survival_n FROM health_day WHERE day >= ? AND day <= ?"
                      " AND device_id IN (%s)", [d_lo, d_hi], ids)  # fmt: skip
    # the span: days with daily values (a day's summary comes after the day: health alone marks a day still open)
    days_seen = [r[2] for r in daily] or [r[1] for r in health if (r[2] or 0) > 0]
    if not days_seen:
        years = _years_with_data(b, ids)
        raise ConfigError("--season", "a year with data for %s (%s)"
                          % (customer, "data in " + ", ".join(map(str, years)) if years else "it has no data yet"),
                          got=season)  # fmt: skip
    d0, d1 = min(days_seen), max(days_seen)
    health = [r for r in health if d0 <= r[1] <= d1]
    rain = _rain(b, ids, d0, d1)
    by_field = {}
    daily_devs = {r[0] for r in daily}
    for i in mine:  # nodes, and any device with daily values whatever its name says
        if devs["kind"][i] == "node" or int(devs["id"][i]) in daily_devs:
            by_field.setdefault(devs["field"][i] or "(no field)", []).append(i)
    counted = {r[0] for r in daily if r[1] == "node_daily" and r[4] is not None}
    uncounted = [int(devs["id"][i]) for rows in by_field.values() for i in rows if int(devs["id"][i]) not in counted]
    cells = _cells(b, uncounted, d0, d1) if uncounted else {}
    gauges = {}  # field (None: farm-wide) -> [gauge id]
    for i in mine:
        if int(devs["id"][i]) in rain:
            gauges.setdefault(devs["field"][i], []).append(int(devs["id"][i]))
    fields = []
    for fname in sorted(by_field):
        rows = by_field[fname]
        dev_ids = [int(devs["id"][i]) for i in rows]
        f = _field(fname, [names[i] for i in rows], dev_ids, daily, health, cells, d0, d1)
        g = gauges.get(fname if fname != "(no field)" else None) or gauges.get(None) or []
        f.series["rain_mm"] = _mean_rows([rain[k] for k in g], len(f.days)) if g else np.full(len(f.days), np.nan)
        fields.append(f)
    return SeasonReport(customer, season, d0, d1, fields)


def _known_customers(customers, wanted, shown=20):
    """What --customer could have been: close matches first, else the store's customers (the first ``shown``)."""
    known = sorted({c for c in customers if c})
    if not known:
        return "a customer, but the store has none (no devices assigned to a customer)"
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.5)
    if close:
        return "a customer in the store, e.g. %s" % ", ".join(close)
    more = " and %d more" % (len(known) - shown) if len(known) > shown else ""
    return "a customer in the store: %s%s" % (", ".join(known[:shown]), more)


def _rows(b, sql, params, ids):
    out = []
    for k in range(0, len(ids), 500):
        chunk = ids[k : k + 500]
        out += b.execute(sql % ",".join("?" * len(chunk)), [*params, *chunk])
    return out


def _years_with_data(b, ids):
    rows = _rows(b, "SELECT MIN(day), MAX(day) FROM daily WHERE device_id IN (%s)", [], ids)
    rows += _rows(b, "SELECT MIN(day), MAX(day) FROM health_day WHERE device_id IN (%s)", [], ids)
    years = set()
    for lo, hi in rows:
        if lo is not None:
            years.update(range(day_date(lo).year, day_date(hi).year + 1))
    return sorted(years)


def _mean_rows(rows, n):
    m = np.vstack(rows) if rows else np.full((1, n), np.nan)
    with np.errstate(all="ignore"):
        ok = (~np.isnan(m)).sum(axis=0)
        return np.where(ok > 0, np.nansum(m, axis=0) / np.maximum(ok, 1), np.nan)


def _rain(b, ids, d0, d1):
    """Daily rain (mm, NaN: no cell that day) per gauge device id over d0..d1, from ``precipitation`` cells;
    a cell stored in several revisions counts once, its latest."""
    rows = _rows(b, "SELECT s.device_id, s.id, r.ts, r.rev, r.value, r.flags FROM readings r"
                    " JOIN series s ON s.id = r.series_id WHERE s.quantity = 'precipitation' AND r.ts >= ? AND r.ts < ?"
                    " AND s.device_id IN (%s)", [d0 * 86400, (d1 + 1) * 86400], ids)  # fmt: skip
    latest = {}
    for dev, sid, ts, rev, value, flags in rows:
        k = (sid, ts)
        if k not in latest or rev > latest[k][0]:
            latest[k] = (rev, dev, value, flags)
    out = {}
    n = d1 - d0 + 1
    for (_, ts), (_, dev, value, flags) in latest.items():
        a = out.setdefault(dev, np.full(n, np.nan))
        j = ts // 86400 - d0
        if value is None or (flags or 0) & FLAGGED:
            continue
        a[j] = (0.0 if np.isnan(a[j]) else a[j]) + value
    return out


def _cells(b, ids, d0, d1):
    """Per node (that sent no interval counts): the share of each day its own stored cells cover (NaN: none),
    from the distinct cell starts of its series and their grid."""
    rows = _rows(b, "SELECT s.device_id, r.ts, MIN(s.grid_s) FROM readings r JOIN series s ON s.id = r.series_id"
                    " WHERE r.ts >= ? AND r.ts < ? AND s.device_id IN (%s) GROUP BY s.device_id, r.ts",
                 [d0 * 86400, (d1 + 1) * 86400], ids)  # fmt: skip
    out = {}
    n = d1 - d0 + 1
    for dev, ts, grid_s in rows:
        a = out.setdefault(dev, np.zeros(n))
        a[ts // 86400 - d0] += grid_s / 86400.0
    return {dev: np.where(a > 0, np.minimum(a, 1.0), np.nan) for dev, a in out.items()}


def _field(name, dev_names, dev_ids, daily, health, cells, d0, d1):
    n, m = len(dev_ids), d1 - d0 + 1
    pos = {d: k for k, d in enumerate(dev_ids)}
    mats = {q: {kind: np.full((n, m), np.nan) for kind in _DIFF_KEYS} for q in _DAILY + ("dt_k",)}
    for row in daily:
        k = pos.get(row[0])
        if k is None:
            continue
        kind, j = row[1], row[2] - d0
        for q, v in zip(_DAILY, row[3:8], strict=True):
            if v is not None:
                mats[q][kind][k, j] = v
        diff = json.loads(row[8]).get(_DIFF_KEYS[kind])
        if isinstance(diff, int | float) and not isinstance(diff, bool):
            mats["dt_k"][kind][k, j] = diff
    per = {}
    for q, by_kind in mats.items():  # the gateway's value where it made one, else the node's own
        fd, nd = by_kind["field_daily"], by_kind["node_daily"]
        per[q] = np.where(np.isnan(fd), nd, fd)
    heard = np.zeros((n, m), dtype=bool)
    survival = np.zeros((n, m))
    for dev, day, count, surv in health:
        k = pos.get(dev)
        if k is not None and (count or 0) > 0:
            heard[k, day - d0] = True
            survival[k, day - d0] = surv or 0.0
    summaries = ~np.isnan(mats["intervals"]["node_daily"])
    share = np.full((n, m), np.nan)  # nodes without interval counts: the share of the day their cells cover
    for dev, a in cells.items():
        if dev in pos:
            share[pos[dev]] = a
    from_cells = ~summaries & ~np.isnan(share)
    heard |= summaries | from_cells | ~np.isnan(per["ndvi_midday"]) | ~np.isnan(per["etc_mm"])
    expected = INTERVALS_PER_DAY * (1.0 - np.clip(survival * 6.0 / 24.0, 0.0, 1.0))
    received = np.where(summaries, mats["intervals"]["node_daily"], np.where(from_cells, share * INTERVALS_PER_DAY, 0))
    intervals = np.minimum(np.nan_to_num(received), expected)
    counts = summaries.any(axis=1) | from_cells.any(axis=1)
    devices = []
    window = np.zeros((n, m), dtype=bool)
    for k in range(n):
        first = int(np.argmax(heard[k])) if heard[k].any() else None
        last = None if first is None else d0 + m - 1 - int(np.argmax(heard[k][::-1]))
        if first is not None:
            window[k, first:] = True
        w = window[k]
        devices.append(DeviceSeason(
            dev_names[k], None if first is None else d0 + first, last, int(w.sum()), int(heard[k].sum()),
            float(intervals[k][w].sum()), float(expected[k][w].sum()), bool(counts[k])))  # fmt: skip
    f = FieldSeason(name, np.arange(d0, d1 + 1), devices)
    with np.errstate(all="ignore"):
        for key, q in (("ndvi", "ndvi_midday"), ("cwsi", "cwsi"), ("dt_k", "dt_k"), ("etc_mm", "etc_mm"),
                       ("gdd", "gdd")):  # fmt: skip
            f.series[key] = _nanmean(per[q])
        ndvi = per["ndvi_midday"]
        has = ~np.isnan(ndvi).all(axis=0)
        f.series["ndvi_lo"] = np.where(has, np.nanmin(np.where(np.isnan(ndvi), np.inf, ndvi), axis=0), np.nan)
        f.series["ndvi_hi"] = np.where(has, np.nanmax(np.where(np.isnan(ndvi), -np.inf, ndvi), axis=0), np.nan)
        with_summaries = window & counts[:, None]
        exp_day = np.where(with_summaries, expected, 0.0).sum(axis=0)
        got_day = np.where(with_summaries, intervals, 0.0).sum(axis=0)
        f.series["completeness"] = np.where(exp_day > 0, got_day / np.maximum(exp_day, 1e-9), np.nan)
    cwsi, dtk = f.series["cwsi"], f.series["dt_k"]
    f.stress = np.where(~np.isnan(cwsi), cwsi >= CWSI_STRESS, ~np.isnan(dtk) & (dtk >= DT_STRESS_K))
    return f


def _nanmean(m):
    ok = (~np.isnan(m)).sum(axis=0)
    return np.where(ok > 0, np.nansum(m, axis=0) / np.maximum(ok, 1), np.nan)


def write_season_report(store_url_or_store, customer, season, out_html, pdf=None):
    """Write the season report of ``customer`` for calendar year ``season`` as one self-contained HTML file
    (and a PDF of it when ``pdf`` is a path); return the summary dict (figures per field, paths)."""
    from upstream.season_html import render, write_pdf
    from upstream.store import open_store

    if isinstance(store_url_or_store, str):
        check_sqlite_exists(store_url_or_store)
        with open_store(store_url_or_store) as store:
            report = load_season(store, customer, season)
    else:
        report = load_season(store_url_or_store, customer, season)
    summary = report.summary()
    html = render(report, summary)
    with open(out_html, "w", encoding="utf-8") as f:
        f.write(html)
    summary["html"] = str(out_html)
    summary["pdf"] = None
    if pdf is not None:
        write_pdf(out_html, pdf)
        summary["pdf"] = str(pdf)
    return summary
