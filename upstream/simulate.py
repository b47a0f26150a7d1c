"""A synthetic but realistic fleet history with injected faults and their ground truth.

    fleet = Fleet(devices=200, days=14, faults="all:2", seed=1)
    populate(store, fleet)                       # or: for step in fleet.steps(6 * 3600): store.ingest(step.batch)
    fleet.truth                                  # [{"device", "fault", "start", "start_iso"}, ...]

Customers (one gateway each) own fields of 3-6 nodes. Every node reports hourly health (rare
reporters: every 6 h) with a solar/battery diurnal cycle (sun by local solar time, the field's
clouds, the node's panel; the battery integrates charge minus the power mode's load), power modes
with the firmware's hysteresis (full -> saver < 30 %, back >= 40 %; survival < 10 %, back >= 20 %),
link counters, tilt and clock offset; a node_daily record per UTC day (midday NDVI on a seasonal
curve, incident energy, air and canopy temperature extremes, the intervals it holds); with
``readings=True`` hourly cells of incident_shortwave, ndvi (daylight), air_temperature and
canopy_temperature. Records arrive as the firmware delivers them: within the hour in full mode,
every 4 h in saver mode, at once for a mode change; a failing link loses some for good.

``season=True`` makes it a crop season (for the season report): NDVI greens up and senesces over
the simulated days, the air warms and cools with the calendar, the node's daily summary also
carries RH extremes and the midday canopy-air difference (from a soil water bucket per field: rain
and, on irrigated fields, late irrigation refill it, ETc drains it, the crop's canopy warms as it
runs dry), each node_daily gets the gateway's own field_daily record (gateway/daily.py: ET0, Kc,
ETc, GDD, CWSI), and every customer but each fifth has a farm-wide rain gauge (``rain-gw-NNN``:
hourly ``precipitation`` cells, mm, rule sum). It draws from its own random stream, so the rest of
the fleet is the same with or without it.

Faults (FAULTS), one per device at most, start at a random time after two days of baseline:
  sensor_stuck         canopy temperature frozen at its last value
  sensor_out_of_range  canopy temperature saturated (150 degC, flagged) and the node reports ir_canopy
  dirty_lens           the down-looking sensor's NDVI drops by 0.2-0.3 (neighbours unchanged)
  sensor_shaded        the up-looking sensor sees 25-50 % of the light its neighbours see
  tilt_changed         the pole is knocked: tilt jumps by 8-20 degrees
  panel_covered        the panel gives ~1 % of its current; the battery drains
  failing_link         retries and bad frames climb over 12 h, up to half the records are lost
  silent               nothing arrives any more
  battery_weak         the battery keeps 6 % of its capacity: saver/survival modes at night
  install_failed       the onboarding report says FAIL (from the start)
Spec (``faults``): "all" (one of each), "all:2", "all:1%", "silent:3,panel_covered:1", "none".
The ground truth is returned (``truth``) and stored as ``simulation_truth`` records.
"""

import math
import random
import time as time_mod

import numpy as np

from upstream.normalise import parse_document

START = 1780272000  # 2026-06-01 00:00 UTC
HOUR = 3600
DAY = 86400
FAULTS = ("sensor_stuck", "sensor_out_of_range", "dirty_lens", "sensor_shaded", "tilt_changed", "panel_covered",
          "failing_link", "silent", "battery_weak", "install_failed")  # fmt: skip
_WORDS_A = ("Hill", "River", "Green", "Oak", "Sun", "Stone", "Willow", "Clay", "North", "Meadow", "Cedar", "Ash")
_WORDS_B = ("side Farms", "bank Growers", "acre Estate", "field Co-op", "dale Orchards", "brook Vineyards")
_MODES = ("full", "saver", "survival")
_LOAD_A = np.array([0.0135, 0.0054, 0.0011])  # full, saver, survival: average current drawn (A)
OUT_OF_RANGE_FLAGS = 64 | 32  # out_of_range | sensor_fault (gateway/stream.py)


def parse_faults(spec, n_devices):
    """A fault spec -> {fault: count}. "all", "all:2", "all:1%", "a:2,b:1", "none"."""
    spec = (spec or "none").strip()
    if spec == "none":
        return {}
    out = {}
    for part in spec.split(","):
        name, _, amount = part.strip().partition(":")
        amount = amount.strip() or "1"
        if amount.endswith("%"):
            count = max(1, round(n_devices * float(amount[:-1]) / 100.0))
        else:
            count = int(amount)
        names = FAULTS if name == "all" else (name,)
        for f in names:
            if f not in FAULTS:
                raise ValueError("unknown fault %r: expected one of %s, or all" % (f, ", ".join(FAULTS)))
            out[f] = out.get(f, 0) + count
    return out


class Step:
    """What arrived upstream up to ``t``: one ParsedBatch (health columns, readings, records)."""

    def __init__(self, t, batch):
        self.t, self.batch = t, batch


class Fleet:
    """See the module doc. Everything is decided in __init__ (seeded); ``steps`` replays it in time order."""

    def __init__(
        self, devices=200, days=14, faults="all", seed=1, start=START, readings=True, rare_share=0.04, season=False
    ):
        if devices < 3:
            raise ValueError("a fleet needs at least 3 devices")
        self.n, self.days, self.start, self.seed = int(devices), int(days), int(start), seed
        self.end = self.start + self.days * DAY
        self.readings = readings
        rnd = random.Random(seed)
        rng = self.rng = np.random.default_rng(seed)
        n = self.n
        self.names = ["node-%d" % (1000 + i) for i in range(n)]
        # customers, gateways, fields
        self.customer, self.field, self.gateway = [], [], []
        field_of = np.zeros(n, dtype=np.int64)
        cust_lon, field_names, i, c = [], [], 0, 0
        while i < n:
            size = min(n - i, rnd.randint(10, 70))
            cname = "%s%s %03d" % (rnd.choice(_WORDS_A), rnd.choice(_WORDS_B), c + 1)
            lon, lat = rnd.uniform(-8, 28), rnd.uniform(36, 54)
            j = 0
            while j < size:
                fsize = min(size - j, rnd.randint(3, 6))
                if size - j - fsize in (1, 2):
                    fsize = size - j
                field_names.append("%s / field %d" % (cname, len(field_names) + 1))
                cust_lon.append((lon + rnd.uniform(-0.5, 0.5), lat + rnd.uniform(-0.3, 0.3)))
                for _ in range(fsize):
                    self.customer.append(cname)
                    self.field.append(field_names[-1])
                    self.gateway.append("gw-%03d" % (c + 1))
                    field_of[i + j] = len(field_names) - 1
                    j += 1
            i += size
            c += 1
        self.field_of, self.field_names = field_of, field_names
        self.n_fields = len(field_names)
        loc = np.array(cust_lon)
        self.lon, self.lat = loc[field_of, 0], loc[field_of, 1]
        # per-device character
        self.peak_a = rng.uniform(0.25, 0.4, n)
        self.cap_ah = rng.uniform(1.8, 2.4, n)
        self.base_tilt = np.round(rng.uniform(0.3, 2.5, n), 1)
        self.p_retry = rng.uniform(0.01, 0.05, n)
        self.rssi = rng.uniform(-85, -60, n)
        self.offset_s = rng.integers(0, 3000, n)
        self.rare = rng.random(n) < rare_share
        self.ndvi_offset = rng.normal(0, 0.03, n)
        self.firmware = np.where(rng.random(n) < 0.85, "1.4.2", "1.3.0")
        # weather per field and day: cloudiness and temperature
        clear = rng.choice([0.95, 0.7, 0.3], size=(self.n_fields, self.days + 1), p=[0.6, 0.25, 0.15])
        self.cloud_day = clear
        self.temp_day = rng.normal(0, 2.0, (self.n_fields, self.days + 1))
        # faults
        self.truth = []
        self.fault = np.full(n, "", dtype=object)
        self.fault_start = np.full(n, np.inf)
        counts = parse_faults(faults, n)
        order = list(range(n))
        rnd.shuffle(order)
        pick = iter(order)
        lo, hi = self.start + 2 * DAY, max(self.start + 2 * DAY + HOUR, self.end - 36 * HOUR)
        for fault, count in counts.items():
            for _ in range(count):
                d = next(pick, None)
                if d is None:
                    raise ValueError("more faults than devices")
                t = self.start - DAY if fault == "install_failed" else int(rng.uniform(lo, hi))
                self.fault[d], self.fault_start[d] = fault, t
                self.truth.append({"device": self.names[d], "fault": fault, "start": t, "start_iso": _iso(t)})
        self.truth.sort(key=lambda r: (r["start"], r["device"]))
        self.jump = rng.uniform(8, 20, n) * rng.choice([-1, 1], n)
        self.jump = np.where(self.base_tilt + self.jump < 0, -self.jump, self.jump)
        self.shade = rng.uniform(0.25, 0.5, n)
        self.dirt = rng.uniform(0.2, 0.3, n)
        self.season = _Season(self, seed) if season else None

    # ---- the physical day ----
    def _ndvi_season(self, t):
        """A crop's NDVI: bare soil 0.2, green-up over the season to 0.85 (logistic); with ``season``,
        a slower green-up (canopy closed at about 40 % of the days) and senescence before harvest."""
        d = (t - self.start) / DAY
        if self.season is None:
            return 0.2 + 0.65 / (1.0 + math.exp(-(d - self.days * 0.35) / 4.0))
        w = max(4.0, self.days / 20.0)
        up = 1.0 / (1.0 + math.exp(-(d - self.days * 0.25) / w))
        down = 1.0 / (1.0 + math.exp(-(d - self.days * 0.85) / (0.6 * w)))
        return 0.2 + 0.65 * up - 0.45 * down

    def _active(self, name, t):
        return (self.fault == name) & (t >= self.fault_start)

    def _ramp(self, name, t, hours):
        return np.where(self.fault == name, np.clip((t - self.fault_start) / (hours * HOUR), 0.0, 1.0), 0.0)

    # ---- replay ----
    def steps(self, step_s=6 * HOUR):
        """Steps of ``step_s`` (a divisor or multiple of an hour) until the end: what arrived in each."""
        rng = np.random.default_rng(self.seed + 7)
        n = self.n
        soc = np.full(n, 85.0) + rng.uniform(-10, 10, n)
        mode = np.zeros(n, dtype=np.int64)
        uptime = rng.integers(10, 500, n).astype(float)
        pending = []  # (arrive array, kind, payload)
        stuck_value = np.full(n, np.nan)
        day_acc = None
        seq = 0
        t_next = self.start + step_s
        first = True
        for h in range(self.days * 24):
            t = self.start + h * HOUR
            d = h // 24
            if h % 24 == 0:
                day_acc = _DayAcc(n)
            ts = t + self.offset_s
            local_h = ((ts / HOUR) + self.lon / 15.0) % 24.0
            sun = np.clip(np.sin(np.pi * (local_h - 6.0) / 12.0), 0.0, None)
            fld = self.field_of
            cloud = np.clip(self.cloud_day[fld, d] * np.exp(rng.normal(0, 0.08, self.n_fields))[fld], 0.05, 1.0)
            irr = 1000.0 * sun * cloud
            # power
            panel = np.where(self._active("panel_covered", ts), 0.01, 1.0)
            solar = self.peak_a * sun * cloud * panel * (1 + rng.normal(0, 0.03, n))
            solar = np.round(np.clip(solar, 0.0, None), 3)
            cap = np.where(self._active("battery_weak", ts), self.cap_ah * 0.06, self.cap_ah)
            soc = np.clip(soc + (solar * 0.9 - _LOAD_A[mode]) / cap * 100.0, 0.0, 100.0)
            new_mode = mode.copy()
            new_mode[(mode == 0) & (soc < 30)] = 1
            new_mode[(mode == 1) & (soc >= 40)] = 0
            new_mode[(mode <= 1) & (soc < 10)] = 2
            new_mode[(mode == 2) & (soc >= 20)] = 1
            changed = new_mode != mode
            mode = new_mode
            # link
            link_ramp = self._ramp("failing_link", ts, 12)
            p_retry = self.p_retry + 0.5 * link_ramp
            tx = 4 + rng.poisson(0.3, n)
            retries = rng.binomial(tx, np.clip(p_retry, 0, 0.95))
            rx_bad = rng.poisson(0.03 + 2.0 * link_ramp)
            lost = rng.random(n) < 0.5 * link_ramp
            alive = ts < np.where(self.fault == "silent", self.fault_start, np.inf)
            cadence = np.where(self.rare | (mode == 2), 6, 1)
            due = ((h % cadence) == 0) | changed
            send = alive & due & ~lost
            arrive = np.where(mode == 1, (np.floor(ts / (4 * HOUR)) + 1) * 4 * HOUR + 120, ts + 120)
            arrive = np.where(changed | (mode == 2), ts + 60, arrive)
            tilt = self.base_tilt + rng.normal(0, 0.08, n) + np.where(self._active("tilt_changed", ts), self.jump, 0.0)
            uptime += 1
            idx = np.flatnonzero(send)
            if len(idx):
                faults = np.where(self._active("sensor_out_of_range", ts), "ir_canopy", None)
                pending.append((arrive[idx], "health", {
                    "device": idx, "ts": ts[idx], "battery_soc": np.round(soc[idx]),
                    "battery_v": np.round(3.3 + 0.9 * soc[idx] / 100.0 + 0.05 * (solar[idx] > 0.05), 3),
                    "solar_a": solar[idx], "power_mode": np.array(_MODES, dtype=object)[mode[idx]],
                    "reset_cause": np.full(len(idx), "deepsleep", dtype=object), "uptime_h": uptime[idx],
                    "free_heap_kb": np.round(rng.normal(40, 1, len(idx))),
                    "log_fill_pct": np.round(2 + 40 * link_ramp[idx]), "log_pending": np.round(30 * link_ramp[idx]),
                    "tx_frames": tx[idx].astype(float), "acked_frames": (tx - retries)[idx].astype(float),
                    "retries": retries[idx].astype(float), "rx_bad": rx_bad[idx].astype(float),
                    "rssi_dbm": np.round(self.rssi[idx] + rng.normal(0, 2, len(idx))),
                    "faults": faults[idx], "tilt_deg": np.round(tilt[idx], 1),
                    "clock_offset_ms": np.round(rng.normal(0, 30, len(idx))),
                }))  # fmt: skip
            # what the sensors see this hour
            shade = np.where(self._active("sensor_shaded", ts), self.shade, 1.0)
            incident = irr * shade * (1 + rng.normal(0, 0.02, n))
            ndvi = self._ndvi_season(t) + self.ndvi_offset + rng.normal(0, 0.01, n)
            ndvi = ndvi - self.dirt * self._ramp("dirty_lens", ts, 2)
            air = 18.0 + self.temp_day[fld, d] + 7.0 * np.sin(np.pi * (local_h - 9.0) / 12.0) + rng.normal(0, 0.2, n)
            if self.season is not None:
                air = air + self.season.warmth_c(t)
            canopy = air - 1.5 * sun + rng.normal(0, 0.3, n)
            stuck = self._active("sensor_stuck", ts)
            stuck_value = np.where(stuck & np.isnan(stuck_value), np.round(canopy, 2), stuck_value)
            canopy = np.where(stuck, stuck_value, canopy)
            oor = self._active("sensor_out_of_range", ts)
            canopy = np.where(oor, 150.0, canopy)
            sampling = alive & (mode < 2)
            day_acc.add(sampling & ~lost, incident, ndvi, sun, air, canopy)
            if self.readings:
                idx = np.flatnonzero(sampling & ~lost)
                cell = t - t % HOUR
                for q, vals, flags, only in (
                    ("incident_shortwave", np.round(incident, 1), None, None),
                    ("ndvi", np.round(ndvi, 3), None, sun > 0.2),
                    ("air_temperature", np.round(air, 2), None, None),
                    ("canopy_temperature", np.round(canopy, 2), np.where(oor, OUT_OF_RANGE_FLAGS, 0), None),
                ):
                    k = idx if only is None else idx[only[idx]]
                    if len(k):
                        pending.append(
                            (
                                arrive[k],
                                "reading",
                                (q, k, np.full(len(k), cell), vals[k], None if flags is None else flags[k]),
                            )
                        )
            if h % 24 == 23:
                pending.append(self._daily(day_acc, d, alive, mode, arrive))
                rain = None if self.season is None else self.season.rain_cells(d)
                if rain is not None:
                    pending.append(rain)
            # steps
            if t + HOUR >= t_next or h == self.days * 24 - 1:
                cut = min(t_next, self.end)
                batch, pending = self._batch(pending, cut, seq, first)
                first = False
                seq += 1
                yield Step(cut, batch)
                t_next += step_s

    def _daily(self, acc, d, alive, mode, arrive):
        day = self.start // DAY + d
        out = []
        frac = acc.hours / 24.0
        stuck = self._active("sensor_stuck", self.start + (d + 1) * DAY - 1)
        for i in np.flatnonzero(alive | (acc.hours > 0)).tolist():
            if acc.hours[i] == 0:
                continue
            ndvi = acc.ndvi_mid[i] / acc.ndvi_n[i] if acc.ndvi_n[i] else None
            rec = {
                "kind": "node_daily", "source": self.names[i], "device": 1000 + i, "date": int(day),
                "ts": _iso(day * DAY), "ndvi_midday": None if ndvi is None else round(float(ndvi), 3),
                "incident_mj_m2": round(float(acc.energy[i]), 2), "intervals": int(round(96 * frac[i])),
                "samples": int(round(96 * frac[i])) * 15,
                "air_t_min": round(float(acc.air_min[i]), 2), "air_t_max": round(float(acc.air_max[i]), 2),
                "canopy_t_min": round(float(acc.can_min[i]), 2), "canopy_t_max": round(float(acc.can_max[i]), 2),
                "utc_offset_min": 0, "key": "%s/node_daily/%s" % (self.names[i], _iso(day * DAY)),
            }  # fmt: skip
            if stuck[i]:
                rec["canopy_t_min"] = rec["canopy_t_max"]
            out.append(rec)
        devs = [int(r["device"]) - 1000 for r in out]
        if self.season is not None:
            extra = self.season.daily(out, d)
            out += extra
            devs += [int(r["source"][5:]) - 1000 for r in extra]
        when = np.full(self.n, (day + 1) * DAY + 600.0)
        when = np.where(mode == 1, np.maximum(when, arrive), when)
        return (when[devs], "daily", out)

    def _batch(self, pending, cut, seq, first):
        keep, health, readings, records = [], [], [], []
        for arrive, kind, payload in pending:
            ok = arrive <= cut
            if not ok.any():
                keep.append((arrive, kind, payload))
                continue
            if not ok.all():
                keep.append((arrive[~ok], kind, _subset(kind, payload, ~ok)))
                payload = _subset(kind, payload, ok)
            (health if kind == "health" else readings if kind == "reading" else records).append(payload)
        if first:
            records.insert(0, self._first_records())
        recs = [r for chunk in records for r in chunk]
        doc = {"v": 1, "gateway": None, "batch": "sim-%d:%d" % (self.seed, seq), "grid_s": HOUR,
               "readings": self._reading_columns(readings), "records": recs}  # fmt: skip
        batch = parse_document(doc)
        batch.health = self._health_columns(health)
        batch.fresh = True
        return batch, keep

    def _health_columns(self, chunks):
        if not chunks:
            return {}
        cols = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        idx = cols.pop("device")
        cols["device"] = np.asarray(self.names, dtype=object)[idx]
        cols["kind"] = np.full(len(idx), "node_health", dtype=object)
        cols["gateway"] = np.asarray(self.gateway, dtype=object)[idx]
        return cols

    def _reading_columns(self, chunks):
        if not chunks:
            return {}
        src, qs, ts, vals, flags = [], [], [], [], []
        names = np.asarray(self.names, dtype=object)
        for q, k, cell, v, fl in chunks:
            src.append(k if k.dtype == object else names[k])  # node indices, or source names (rain gauges)
            qs.append(np.full(len(k), q, dtype=object))
            ts.append(cell)
            vals.append(v)
            flags.append(np.zeros(len(k), dtype=np.int64) if fl is None else fl)
        src, qs = np.concatenate(src).tolist(), np.concatenate(qs).tolist()
        m = len(src)
        units = {"incident_shortwave": "W m-2", "ndvi": "1", "air_temperature": "degC", "canopy_temperature": "degC",
                 "precipitation": "mm"}  # fmt: skip
        rain = [q == "precipitation" for q in qs]
        runs = {"source": src, "sensor": ["rain" if r else "node" for r in rain], "quantity": qs,
                "unit": [units[q] for q in qs], "rule": ["sum" if r else "mean" for r in rain],
                "flags": np.concatenate(flags).astype(int).tolist(), "rev": [0] * m, "count": [1] * m}  # fmt: skip
        v = np.concatenate(vals).astype(float)
        return {"runs": runs, "ts": np.concatenate(ts).tolist(), "value": v.tolist(), "min": v.tolist(),
                "max": v.tolist(), "n": [4] * m}  # fmt: skip

    def _first_records(self):
        out = []
        t0 = self.start - DAY
        fail = set(r["device"] for r in self.truth if r["fault"] == "install_failed")
        for i, name in enumerate(self.names):
            failed = name in fail
            checks = [
                {"name": "tilt", "value": float(self.base_tilt[i]), "ok": True},
                {"name": "link", "value": float(round(self.rssi[i])), "ok": True},
                {"name": "spectral_up", "ok": not failed, "detail": "no response on I2C 0x39" if failed else "ok"},
            ]
            out.append({"kind": "onboarding_report", "device": name, "verdict": "FAIL" if failed else "PASS",
                        "checks": checks, "customer": self.customer[i], "field": self.field[i],
                        "lat": round(float(self.lat[i]), 4), "lon": round(float(self.lon[i]), 4),
                        "ts": _iso(t0 + int(self.offset_s[i])), "key": "%s/onboarding_report/1" % name})  # fmt: skip
            out.append({"kind": "node_hello", "source": name, "fw_version": str(self.firmware[i]), "hw": "esp32s3",
                        "ts": _iso(self.start), "key": "%s/node_hello/%s" % (name, self.start)})  # fmt: skip
        if self.season is not None:
            out += self.season.gauge_records(t0)
        for r in self.truth:
            out.append({"kind": "simulation_truth", "source": r["device"], "fault": r["fault"], "start": r["start"],
                        "ts": r["start_iso"], "key": "%s/simulation_truth/%s" % (r["device"], r["fault"])})  # fmt: skip
        return out


class _Season:
    """The crop season of ``Fleet(season=True)``: weather, a soil water bucket per field, the gateway's daily values
    per node and a rain gauge per customer (most of them). Draws from its own random stream."""

    TAW_MM = 100.0  # total available water in the root zone (FAO-56 ch. 8)
    RAW_MM = 50.0  # readily available: the crop transpires fully until this much is used
    IRRIGATION_MM = 35.0

    def __init__(self, fleet, seed):
        from gateway.config import FieldConfig
        from gateway.daily import DailyValues

        self.fleet = fleet
        rng = self.rng = np.random.default_rng(seed + 101)
        nf, nd = fleet.n_fields, fleet.days + 1
        custs = list(dict.fromkeys(fleet.customer))
        first = [int(np.flatnonzero(fleet.field_of == f)[0]) for f in range(nf)]
        self.cust_of_field = np.array([custs.index(fleet.customer[i]) for i in first], dtype=np.int64)
        wet = rng.random((len(custs), nd)) < 0.35
        self.rain_mm = np.where(wet, np.round(rng.gamma(0.9, 10.0, (len(custs), nd)), 1), 0.0)
        self.rain_start_h = rng.integers(0, 20, (len(custs), nd))
        # a farm-wide rain gauge for each customer but every fifth
        self.gauges = [(c, "rain-%s" % fleet.gateway[fleet.customer.index(name)], name)
                       for c, name in enumerate(custs) if c % 5 != 4]  # fmt: skip
        self.rh_min = np.clip(rng.normal(42, 9, (nf, nd)) + 18 * wet[self.cust_of_field], 15, 90)
        self.rh_max = np.clip(rng.normal(93, 3, (nf, nd)), self.rh_min + 5, 100)
        self.irrigate_at_mm = np.where(rng.random(nf) < 0.8, rng.uniform(55, 80, nf), np.inf)
        self.depletion_mm = np.full(nf, 20.0)
        self.fields = [
            FieldConfig(name=name, nodes=tuple(1000 + int(i) for i in np.flatnonzero(fleet.field_of == f)),
                        lat=float(fleet.lat[first[f]]), lon=float(fleet.lon[first[f]]), elevation_m=120.0,
                        utc_offset_min=0)
            for f, name in enumerate(fleet.field_names)
        ]  # fmt: skip
        self.dv = DailyValues(self.fields)

    def warmth_c(self, t):
        """The season's warming of the air: +8 degC in late July, -8 degC in late January."""
        doy = time_mod.gmtime(int(t)).tm_yday
        return 8.0 * math.sin(2.0 * math.pi * (doy - 110) / 365.0)

    def daily(self, node_daily, d):
        """Add RH and the midday canopy-air difference to the day's node_daily records; return their field_daily
        records (the gateway's own computation) and run the fields' water balance one day on."""
        from gateway import agronomy as ag

        out = []
        etc = {}
        for rec in node_daily:
            i = int(rec["device"]) - 1000
            f = int(self.fleet.field_of[i])
            cfg = self.fields[f]
            rec["rh_min"] = round(float(self.rh_min[f, d]), 1)
            rec["rh_max"] = round(float(self.rh_max[f, d]), 1)
            vpd = float(ag.saturation_vapour_pressure_kpa(rec["air_t_max"])) * (1.0 - rec["rh_min"] / 100.0)
            lower = cfg.cwsi_lower_a + cfg.cwsi_lower_b * vpd
            dry = 1.0 - min(1.0, max(0.0, (self.TAW_MM - self.depletion_mm[f]) / (self.TAW_MM - self.RAW_MM)))
            diff = lower + dry * (cfg.cwsi_upper - lower) + self.rng.normal(0, 0.35)
            rec["canopy_air_diff_midday"] = round(float(diff), 2)
            fd = self.dv.on_daily(rec["source"], rec, HOUR)
            if fd is not None:
                out.append(fd)
                if "etc_mm" in fd:
                    etc.setdefault(f, []).append(fd["etc_mm"])
        for f, values in etc.items():
            dr = self.depletion_mm[f] + float(np.mean(values)) - self.rain_mm[self.cust_of_field[f], d]
            if dr > self.irrigate_at_mm[f]:
                dr -= self.IRRIGATION_MM
            self.depletion_mm[f] = min(self.TAW_MM, max(0.0, dr))
        return out

    def rain_cells(self, d):
        """The rain gauges' hourly precipitation cells of day ``d`` as a pending reading (None: no gauges)."""
        if not self.gauges:
            return None
        names, cells, values = [], [], []
        day0 = self.fleet.start + d * DAY
        for c, name, _ in self.gauges:
            mm = np.zeros(24)
            total = self.rain_mm[c, d]
            if total > 0:
                h0 = int(self.rain_start_h[c, d])
                hours = max(1, min(24 - h0, int(math.ceil(total / 3.0))))
                mm[h0 : h0 + hours] = np.round(total / hours, 2)
            names += [name] * 24
            cells.append(day0 + np.arange(24) * HOUR)
            values.append(mm)
        cells = np.concatenate(cells)
        return (cells + HOUR + 120, "reading", ("precipitation", np.asarray(names, dtype=object), cells,
                                                np.concatenate(values), None))  # fmt: skip

    def gauge_records(self, t0):
        return [{"kind": "sensor_info", "source": name, "customer": cname, "sensor": "rain gauge 0.2 mm",
                 "quantities": ["precipitation"], "ts": _iso(t0), "key": "%s/sensor_info/1" % name}
                for _, name, cname in self.gauges]  # fmt: skip


class _DayAcc:
    """One UTC day's sums per device for its node_daily record."""

    def __init__(self, n):
        self.hours = np.zeros(n)
        self.energy = np.zeros(n)
        self.ndvi_mid = np.zeros(n)
        self.ndvi_n = np.zeros(n)
        self.air_min = np.full(n, np.inf)
        self.air_max = np.full(n, -np.inf)
        self.can_min = np.full(n, np.inf)
        self.can_max = np.full(n, -np.inf)

    def add(self, ok, incident, ndvi, sun, air, canopy):
        self.hours += ok
        self.energy += np.where(ok, incident * HOUR / 1e6, 0.0)
        mid = ok & (sun > 0.85)
        self.ndvi_mid += np.where(mid, ndvi, 0.0)
        self.ndvi_n += mid
        self.air_min = np.where(ok, np.minimum(self.air_min, air), self.air_min)
        self.air_max = np.where(ok, np.maximum(self.air_max, air), self.air_max)
        self.can_min = np.where(ok, np.minimum(self.can_min, canopy), self.can_min)
        self.can_max = np.where(ok, np.maximum(self.can_max, canopy), self.can_max)


def _subset(kind, payload, mask):
    if kind == "health":
        return {k: v[mask] for k, v in payload.items()}
    if kind == "reading":
        q, k, cell, v, fl = payload
        return (q, k[mask], cell[mask], v[mask], None if fl is None else fl[mask])
    return [r for r, m in zip(payload, mask.tolist(), strict=True) if m]


def _iso(t):
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def populate(store, fleet, step_s=DAY, on_step=None, progress=None):
    """Write the whole fleet into ``store`` step by step; ``on_step(t)`` after each (alerts, scoring)."""
    store.device_ids(fleet.names)
    total = 0
    for step in fleet.steps(step_s):
        total += store.ingest(step.batch, via="simulate").records
        if on_step is not None:
            on_step(step.t)
        if progress is not None:
            progress(step.t)
    return total
