"""Daily agronomic values per node and field, computed from the combined stream.

    dv = DailyValues(cfg.fields)
    dv.observe(cols)                       # aligned cells: wind from the anemometer, midday T/RH of nodes
    dv.queue("node-7", node_daily_record)  # the node's summary of its local day
    for rec in dv.ready(now, 900, 7200): ...   # "field_daily" records whose day is complete

When a node's daily summary (its ``daily`` record: the local day's air T/RH extremes, pressure,
incident shortwave energy, midday NDVI and canopy-air difference, GDD) reaches the gateway just
after the node's local midnight, it waits until the field's anemometer cells of that day are in
(the cell that ends the day was aligned, or the aligner's lateness has passed), then is joined
with what the stream holds for that local day:

- wind: the mean of the field's anemometer cells (``wind_source``, ``wind_speed``) over the day,
  brought to 2 m (FAO-56 eq. 47). With no anemometer or no cells that day: FAO-56's global
  default of 2 m/s (section "Missing wind speed data", p. 63), flagged ``wind_default``; with
  fewer than half the day's cells, flagged ``wind_partial``;
- midday vapour pressure deficit: the node's own air temperature and humidity cells between
  10:00 and 14:00 local solar time; with none, es(Tmax) (1 - RHmin/100), flagged ``vpd_estimated``.

It computes ET0 (FAO-56 Penman-Monteith, daily, with the node's measured solar radiation; the
elevation from the node's mean pressure, eq. 7 inverted, else the field's ``elevation_m``), Kc
from the midday NDVI and ETc = Kc ET0, GDD (the field's method, base and cap) and its sum since
``season_start``, the midday NDVI, the canopy-air difference and the empirical CWSI (Idso et al.
1981, the field's baseline). A missing input leaves the values that need it out and names it in
``quality``: {value: [flag, ...]} with flags ``<input>_missing``, ``<input>_estimated``,
``wind_default``, ``wind_partial``, ``elevation_from_config``, ``inputs_invalid`` (the maths
refused the day's values, e.g. Tmin above Tmax). Humidity missing: ea from Tmin
(FAO-56 eq. 48), ``humidity_estimated``; radiation missing: Hargreaves' Rs = 0.16 sqrt(Tmax -
Tmin) Ra (eq. 50), ``radiation_estimated``.

The accumulators (hourly wind and midday VPD sums, three days kept) and each node's cumulative
GDD are state that survives a restart: ``state()``/``restore()``, written with every batch.
"""

import datetime as _dt
import math

import numpy as np

from gateway import agronomy as ag
from gateway.stream import iso

HOUR = 3600
DAY = 86400
KEEP_S = 4 * DAY  # accumulator buckets older than this are dropped
DEFAULT_WIND_MS = 2.0  # FAO-56 p. 63: where no wind data are available, 2 m/s (global average)
_EPOCH_ORD = _dt.date(1970, 1, 1).toordinal()
MIDDAY = (10.0, 14.0)  # local solar hours of the midday window (as the node's daily summary)


class DailyValues:
    def __init__(self, fields):
        self.fields = list(fields)
        self.by_device = {}
        self.all_nodes = None
        for f in self.fields:
            for d in f.nodes:
                if d == "*":
                    self.all_nodes = f
                else:
                    self.by_device.setdefault(int(d), f)
        self.wind_sources = {f.wind_source for f in self.fields if f.wind_source}
        self.wind = {}  # (source, hour epoch) -> [sum m/s, cells]
        self.vpd = {}  # (node source, hour epoch) -> [sum kPa, cells]
        self.gdd = {}  # node source -> {"season": "YYYY-MM-DD", "cum": K d, "last": date days}
        self.newest = {}  # wind source -> newest cell start seen
        self.pending = []  # [node source, node_daily record] waiting for their day's wind
        self.dirty = False
        self.emitted = 0
        self.invalid = None  # the last summary the maths refused, and why

    def field_of(self, source):
        """The field a node source ("node-<id>") belongs to, or None."""
        if not source.startswith("node-"):
            return None
        try:
            dev = int(source[5:])
        except ValueError:
            return None
        return self.by_device.get(dev, self.all_nodes)

    # ---- the stream's cells ----
    def observe(self, cols):
        """Fold aligned cells (Aligner.take() columns) into the hourly accumulators."""
        runs = cols["runs"]
        if not runs["source"]:
            return
        ts, val = cols["ts"], cols["value"]
        i = 0
        pairs = {}  # (source, ts) -> [T, RH]
        for src, q, count, rev in zip(runs["source"], runs["quantity"], runs["count"], runs["rev"], strict=True):
            j = i + count
            if rev == 0:
                if q == "wind_speed" and src in self.wind_sources:
                    self._fold(self.wind, src, ts[i:j], val[i:j])
                elif q in ("air_temperature", "relative_humidity") and self.field_of(src) is not None:
                    k = 0 if q == "air_temperature" else 1
                    for t, v in zip(ts[i:j].tolist(), val[i:j].tolist(), strict=True):
                        if v == v:
                            pairs.setdefault((src, t), [None, None])[k] = v
            i = j
        for (src, t), (tc, rh) in pairs.items():
            if tc is None or rh is None:
                continue
            f = self.field_of(src)
            hour = (t % DAY) / HOUR + f.lon / 15.0  # solar hour, near enough for a 4-hour window
            if MIDDAY[0] <= hour % 24.0 < MIDDAY[1]:
                b = self.vpd.setdefault((src, t - t % HOUR), [0.0, 0])
                b[0] += float(ag.vpd_kpa(tc, rh))
                b[1] += 1
                self.dirty = True
        self._prune(int(ts.max()) if len(ts) else 0)

    def _fold(self, acc, src, ts, val):
        if len(ts):
            self.newest[src] = max(self.newest.get(src, 0), int(ts.max()))
        ok = ~np.isnan(val)
        if not ok.any():
            return
        hours = ts[ok] - ts[ok] % HOUR
        for h, v in zip(hours.tolist(), val[ok].tolist(), strict=True):
            b = acc.setdefault((src, h), [0.0, 0])
            b[0] += v
            b[1] += 1
        self.dirty = True

    def _prune(self, newest):
        old = newest - KEEP_S
        for acc in (self.wind, self.vpd):
            for k in [k for k in acc if k[1] < old]:
                del acc[k]

    def _sum(self, acc, src, t0, t1):
        s, n = 0.0, 0
        for h in range(t0 - t0 % HOUR, t1, HOUR):
            b = acc.get((src, h))
            if b:
                s += b[0]
                n += b[1]
        return s, n

    # ---- a node's day ----
    def queue(self, source, rec):
        """Hold a node's daily summary until its day's stream is complete (see ``ready``)."""
        if self.field_of(source) is not None and "date" in rec:
            self.pending.append([source, rec])
            self.dirty = True

    def ready(self, now=None, grid_s=900, lateness_s=7200):
        """field_daily records for the queued days whose wind is in: the anemometer's cell that
        ends the day was aligned, or ``now`` is past the day's end + lateness (then partial)."""
        out, keep = [], []
        for source, rec in self.pending:
            f = self.field_of(source)
            t1 = (int(rec["date"]) + 1) * DAY - int(rec.get("utc_offset_min", f.utc_offset_min or 0)) * 60
            done = not f.wind_source or self.newest.get(f.wind_source, 0) >= t1 - grid_s
            if done or (now is not None and now >= t1 + lateness_s + grid_s):
                r = self.on_daily(source, rec, grid_s)
                if r is not None:
                    out.append(r)
            else:
                keep.append([source, rec])
        if len(keep) != len(self.pending):
            self.pending = keep
            self.dirty = True
        return out

    def on_daily(self, source, rec, grid_s=900):
        """The ``field_daily`` record for a node's ``node_daily`` record (None if the node is in no field)."""
        f = self.field_of(source)
        if f is None or "date" not in rec:
            return None
        date = int(rec["date"])  # local date, days since 1970-01-01
        off = int(rec.get("utc_offset_min", f.utc_offset_min or 0)) * 60
        t0 = date * DAY - off  # the local day in UTC epoch seconds
        t1 = t0 + DAY
        q = {}

        def flag(value, name):
            q.setdefault(value, [])
            if name not in q[value]:
                q[value].append(name)

        tmin, tmax = rec.get("air_t_min"), rec.get("air_t_max")
        rhmin, rhmax = rec.get("rh_min"), rec.get("rh_max")
        rs = rec.get("incident_mj_m2")
        p = rec.get("pressure_mean")
        local_day = _dt.date.fromordinal(_EPOCH_ORD + date)
        doy = local_day.timetuple().tm_yday
        # wind
        u2, wind_n = DEFAULT_WIND_MS, 0
        if f.wind_source:
            s, wind_n = self._sum(self.wind, f.wind_source, t0, t1)
            if wind_n:
                u2 = float(ag.wind_at_2m(s / wind_n, f.wind_height_m))
                if wind_n < 0.5 * DAY / grid_s:
                    flag("et0", "wind_partial")
        if not wind_n:
            flag("et0", "wind_default")
        # elevation: the node's barometer (FAO-56 eq. 7 inverted), else the field's
        if p is not None and p > 0:
            elevation = 293.0 / 0.0065 * (1.0 - (p / 101300.0) ** (1.0 / 5.26))
        else:
            elevation = f.elevation_m
            flag("et0", "elevation_from_config")
        et0 = None
        if tmin is None or tmax is None:
            flag("et0", "temperature_missing")
        else:
            if rhmin is None or rhmax is None:
                # FAO-56 eq. 48: ea ~ e0(Tmin) when humidity data are missing
                rhmin = rhmax = 100.0
                flag("et0", "humidity_estimated")
            if rs is None:
                ra = float(ag.extraterrestrial_radiation_daily(f.lat, doy))
                rs = 0.16 * math.sqrt(max(0.0, tmax - tmin)) * ra  # FAO-56 eq. 50 (Hargreaves, interior)
                flag("et0", "radiation_estimated")
            try:
                et0 = float(ag.et0_fao56_daily(tmin, tmax, rhmin, rhmax, u2, rs, f.lat, elevation, doy))
            except ValueError as e:  # e.g. Tmin above Tmax: a summary the maths refuses is named, not used
                flag("et0", "inputs_invalid")
                self.invalid = "%s %s: %s" % (source, local_day, e)
        ndvi = rec.get("ndvi_midday")
        kc = etc = None
        if ndvi is None:
            flag("kc", "ndvi_missing")
            flag("etc", "ndvi_missing")
        else:
            kc = float(ag.kc_from_ndvi(ndvi, f.kc_min, f.kc_max, f.ndvi_min, f.ndvi_max))
            if et0 is not None:
                etc = kc * et0
        if et0 is None:
            flag("etc", "et0_missing")
        # GDD and its season sum
        gdd = None
        if tmin is not None and tmax is not None:
            gdd = float(ag.growing_degree_days(tmin, tmax, f.gdd_base_c, f.gdd_cap_c, method=f.gdd_method))
        else:
            flag("gdd", "temperature_missing")
        season = f.season_start or "%04d-01-01" % local_day.year
        season_days = (_dt.date.fromisoformat(season) - _dt.date(1970, 1, 1)).days
        g = self.gdd.get(source)
        if g is None or g["season"] != season:
            g = {"season": season, "cum": 0.0, "last": None}
            self.gdd[source] = g
        if g["last"] is not None and date > g["last"] + 1:
            flag("gdd_cum", "days_missing")
        if gdd is not None and date >= season_days and (g["last"] is None or date > g["last"]):
            g["cum"] += gdd
            g["last"] = date
        elif gdd is None:
            flag("gdd_cum", "temperature_missing")
        self.dirty = True
        # canopy - air and CWSI at midday
        diff = rec.get("canopy_air_diff_midday")
        cwsi = None
        vs, vn = self._sum(self.vpd, source, t0, t1)
        if vn:
            vpd = vs / vn
        elif tmax is not None and rec.get("rh_min") is not None:
            vpd = float(ag.saturation_vapour_pressure_kpa(tmax)) * (1.0 - rec["rh_min"] / 100.0)
            flag("cwsi", "vpd_estimated")
        else:
            vpd = None
            flag("cwsi", "vpd_missing")
        if diff is None:
            flag("cwsi", "canopy_missing")
        elif vpd is not None:
            cwsi = float(ag.cwsi_empirical(diff, 0.0, vpd, f.cwsi_lower_a, f.cwsi_lower_b, f.cwsi_upper))
            if cwsi != cwsi:
                cwsi = None
        day = local_day.isoformat()
        out = {
            "kind": "field_daily",
            "source": source,
            "field": f.name,
            "date": day,
            "ts": iso(int(t0)),
            "et0_mm": _r(et0, 2),
            "kc": _r(kc, 3),
            "etc_mm": _r(etc, 2),
            "gdd": _r(gdd, 2),
            "gdd_cum": _r(g["cum"], 2),
            "season_start": season,
            "ndvi_midday": ndvi,
            "canopy_air_diff_c": diff,
            "vpd_midday_kpa": _r(vpd, 3),
            "cwsi": _r(cwsi, 3),
            "u2_ms": _r(u2, 2),
            "wind_cells": wind_n,
            "quality": q,
            "key": "%s/field_daily/%s" % (source, day),
        }
        self.emitted += 1
        return {k: v for k, v in out.items() if v is not None}

    # ---- persistence ----
    def state(self):
        self.dirty = False
        return {
            "wind": [[s, h, b[0], b[1]] for (s, h), b in self.wind.items()],
            "vpd": [[s, h, b[0], b[1]] for (s, h), b in self.vpd.items()],
            "gdd": self.gdd,
            "newest": self.newest,
            "pending": self.pending,
        }

    def restore(self, st):
        if not st:
            return
        self.wind = {(s, int(h)): [float(a), int(n)] for s, h, a, n in st.get("wind", ())}
        self.vpd = {(s, int(h)): [float(a), int(n)] for s, h, a, n in st.get("vpd", ())}
        self.gdd = dict(st.get("gdd", {}))
        self.newest = {k: int(v) for k, v in st.get("newest", {}).items()}
        self.pending = [list(p) for p in st.get("pending", ())]


def _r(v, nd):
    return None if v is None or v != v else round(float(v), nd)
