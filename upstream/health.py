"""Fleet health for the CSM: per device status, completeness, battery, solar, link, clock, firmware, install
verdict and likely faults; rolled up per customer; a ranked needs-attention list.

    fh = assess(store)                         # now = wall clock; assess(store, now=ts) for another instant
    for row in fh.attention[:20]: print(row["device"], row["customer"], row["cause"], row["evidence_text"])
    fh.customers, fh.device("node-1007")       # per-customer rollup; one device's figures

Status is judged against each device's own cadence: the median interval between its health records
over the last 7 days (rare reporters learn a long one) and its power mode (saver delivers every 4 h,
survival every 6 h at most), so a device that reports rarely is never called late for it:
    active   last record within max(2.5 x expected, expected + 1.5 h)
    late     within max(6 x expected, 6 h)
    silent   older than that;  never_seen: installed but no health record yet
Completeness: the share of the day's expected 15-minute intervals the node's daily summary holds
(hours in survival mode expect none). Battery trend: least squares of the daily mean charge over
the last 7 complete days; days to empty = charge now / fall per day. Ranking: severity of the
likely cause x customer impact (1 + half the share of that customer's devices needing attention,
+ 0.5 when no other device of the field is healthy). Everything is numpy over [device, day/hour]
matrices read in a few queries (upstream/fleetdata.py): 10,000 devices x 30 days rank in 2-3 s.
"""

import json
import time
import warnings

import numpy as np

from upstream.diagnoses import CAUSES, diagnose, latest
from upstream.fleetdata import DAY, HOUR, FleetData
from upstream.rollup import MODE_NAMES, MODES

MODE_DELIVERY_S = np.array([0.0, 4 * HOUR, 6 * HOUR])  # full: its own cadence; saver 4 h; survival 6 h
DEFAULT_CADENCE_S = float(HOUR)
DAILY_GRACE_S = 8 * HOUR  # a node's daily summary may arrive this long after its day (saver mode: 4 h)
STATUSES = ("active", "late", "silent", "never_seen")
EVIDENCE_TEXT = {
    "silent": "no record for {hours_since_last} h (expected every {expected_every_h} h); last battery "
    "{battery_soc_pct} %, mode {power_mode}; gateway {gateway}",
    "panel_covered": "solar {solar_a} A vs {neighbours_solar_a} A on its neighbours over the last {daylight_hours} "
    "daylight hours; battery {battery_soc_pct} %, {days_to_empty} days to empty",
    "install_failed": "install check FAIL: {failed_checks}",
    "battery_weak": "battery drains {night_drain_pct_h} %/h at night (neighbours {neighbours_night_drain_pct_h}), "
    "fell to {battery_soc_min_24h} % (mode {power_mode}) though its panel peaks at {solar_peak_a} A like its "
    "neighbours' {neighbours_solar_peak_a} A (their battery {neighbours_soc_pct} %)",
    "failing_link": "retries {retry_ratio_12h} per frame over 12 h (usually {retry_ratio_usual}), {rx_bad_12h} bad "
    "frames; completeness yesterday {completeness_yesterday}; RSSI {rssi_dbm} dBm",
    "tilt_changed": "tilt {tilt_deg} deg vs {install_tilt_deg} deg at install ({change_deg} deg change)",
    "sensor_stuck": "{quantity} constant at {value} for {constant_hours} h",
    "sensor_out_of_range": "{flagged_cells_24h} cells flagged out of range/fault in 24 h {quantities}; node "
    "reports {node_faults}",
    "dirty_lens": "NDVI {ndvi} vs {neighbours_ndvi} on its neighbours (usual offset {usual_offset}): {drop} lower",
    "sensor_shaded": "incident light {ratio} of its neighbours' ({incident_w_m2} vs {neighbours_w_m2} W m-2)",
    "data_gaps": "completeness yesterday {completeness_yesterday} (7 days {completeness_7d})",
    "low_battery": "battery {battery_soc_min_24h} %, mode {power_mode}; neighbours' battery {neighbours_soc_pct} %: "
    "weather, not the device",
    "clock_drift": "clock offset {clock_offset_ms} ms",
}


def _nanmax(m):
    out = np.max(np.where(np.isnan(m), -np.inf, m), axis=1) if m.shape[1] else np.full(m.shape[0], -np.inf)
    return np.where(np.isinf(out), np.nan, out)


def metrics(data):
    """Per-device figures (dict of arrays) from FleetData."""
    d, h, now = data.day, data.hour, data.now
    n = data.n
    m = {}
    last_ts = np.minimum(_nanmax(d["ts_last"]), now)
    m["last_ts"] = last_ts
    m["age_s"] = now - last_ts
    # cadence: median interval between records, per day, over the last 7 days
    with np.errstate(all="ignore"):
        per_day = np.where(d["n"] >= 2, (d["ts_last"] - d["ts_first"]) / (d["n"] - 1), np.nan)[:, -7:]
        cadence = np.nanmedian(per_day, axis=1) if n else np.zeros(0)
    m["cadence_s"] = np.where(np.isnan(cadence), DEFAULT_CADENCE_S, cadence)
    # power mode: the latest record's
    mode = latest(d["mode_last"])  # the latest record's (the day rollup keeps each day's last)
    m["mode_code"] = np.where(np.isnan(mode), 0, mode).astype(np.int64)
    m["power_mode"] = np.array([MODE_NAMES.get(int(c), "full") for c in m["mode_code"]], dtype=object)
    m["expected_s"] = np.maximum(m["cadence_s"], MODE_DELIVERY_S[m["mode_code"]])
    late_after = np.maximum(2.5 * m["expected_s"], m["expected_s"] + 1.5 * HOUR)
    silent_after = np.maximum(6 * m["expected_s"], 6 * HOUR)
    status = np.where(m["age_s"] <= late_after, "active", np.where(m["age_s"] <= silent_after, "late", "silent"))
    m["status"] = np.where(np.isnan(last_ts), "never_seen", status).astype(object)
    # latest values
    soc = latest(h["battery_soc"])
    m["battery_soc"] = np.where(np.isnan(soc), latest(d["soc_last"]), soc)
    tilt_last = latest(d["tilt_last"])
    m["tilt_last"] = tilt_last
    m["clock_offset_ms"] = latest(d["clock_last"])
    m["rssi_dbm"] = latest(d["rssi_last"])
    has = d["n"] > 0
    j = has.shape[1] - 1 - np.argmax(has[:, ::-1], axis=1)
    m["faults_now"] = np.where(has.any(axis=1), d["faults_last"][np.arange(n), j], None)
    # completeness of the last 7 complete days (daily column -1 = yesterday = day column -2)
    days = data.daily["intervals"][:, -7:]
    surv = np.nan_to_num(d["survival_n"][:, -8:-1])
    expected = 96.0 * (1.0 - np.clip(surv * 6.0 / 24.0, 0.0, 1.0))
    first_col = np.where(has.any(axis=1), np.argmax(has, axis=1), has.shape[1])
    cols = np.arange(has.shape[1] - 8, has.shape[1] - 1)
    exists = cols[None, :] > first_col[:, None]
    with np.errstate(all="ignore"):
        comp = np.where(data.daily_present[:, -7:], np.clip(days / np.maximum(expected, 1), 0, 1), 0.0)
        comp = np.where(expected <= 0, np.nan, comp)
        comp = np.where(exists & data.daily_present.any(axis=1)[:, None], comp, np.nan)  # never sent one: unknown
        if now - data.today * DAY < DAILY_GRACE_S:  # yesterday's summary may still be on its way
            comp[:, -1] = np.where(data.daily_present[:, -1], comp[:, -1], np.nan)
        m["completeness_days"] = comp
        m["completeness_yesterday"] = latest(comp[:, -2:])
        m["completeness_7d"] = np.nanmean(comp, axis=1) if n else np.zeros(0)
        m["completeness_base"] = np.nanmean(comp[:, :-1], axis=1) if n else np.zeros(0)
    m["survival_share_yesterday"] = surv[:, -1] * 6.0 / 24.0
    # battery trend: least squares over the daily mean charge of the last 7 complete days
    with np.errstate(all="ignore"):
        y = np.where(d["soc_n"][:, -8:-1] >= 4, d["soc_sum"][:, -8:-1] / d["soc_n"][:, -8:-1], np.nan)
    w = ~np.isnan(y)
    x = np.arange(7.0)[None, :]
    yz = np.where(w, y, 0.0)
    sw, sx, sy = w.sum(1), (w * x).sum(1), yz.sum(1)
    sxx, sxy = (w * x * x).sum(1), (yz * x).sum(1)
    den = sw * sxx - sx * sx
    with np.errstate(all="ignore"):
        slope = np.where((sw >= 3) & (den > 0), (sw * sxy - sx * sy) / den, np.nan)
        m["battery_slope_pct_day"] = slope
        m["days_to_empty"] = np.where(slope < -1.0, m["battery_soc"] / -slope, np.nan)
    m["solar_peak_yesterday_a"] = d["solar_max"][:, -2]
    m["solar_peak_today_a"] = d["solar_max"][:, -1]
    with np.errstate(all="ignore"):
        tx, re = np.nansum(d["tx_sum"][:, -2:], 1), np.nansum(d["retries_sum"][:, -2:], 1)
        m["retry_ratio_2d"] = np.where(tx > 0, re / np.maximum(tx, 1), np.nan)
        m["rx_bad_2d"] = np.nansum(d["rx_bad_sum"][:, -2:], 1)
    return m


class FleetHealth:
    """The result of ``assess``: see the module doc."""

    def __init__(self, data, m, findings, store=None):
        self.data, self.metrics, self.findings, self.store = data, m, findings, store
        self.now = data.now
        self.devices = data.names
        self.causes = list(findings)
        self.attention = self._rank()
        self.customers = self._customers()

    def level(self, cause):
        return self.findings[cause].level

    def _rank(self):
        data, m = self.data, self.metrics
        n = data.n
        if not n:
            return []
        sev = np.array([CAUSES[c].severity for c in self.causes], dtype=float)
        fire = np.stack([self.findings[c].level == 2 for c in self.causes], axis=1)
        sev_m = np.where(fire, sev[None, :], 0.0)
        dte = m["days_to_empty"]
        bump = np.zeros_like(sev_m)
        for k, c in enumerate(self.causes):
            if c in ("panel_covered", "battery_weak", "silent"):
                bump[:, k] = np.where(dte < 3, 1.0, 0.0)
            if c == "battery_weak":
                bump[:, k] += np.where(m["mode_code"] == MODES["survival"], 1.0, 0.0)
        sev_m = np.where(fire, sev_m + bump, 0.0)
        top = np.argmax(sev_m, axis=1)
        severity = sev_m[np.arange(n), top]
        needs = severity > 0
        # customer impact
        cust_codes, cust = np.unique(data.customer.astype(str), return_inverse=True)
        cust = cust.reshape(-1)
        share = np.bincount(cust, weights=needs, minlength=len(cust_codes)) / np.bincount(cust, minlength=len(
            cust_codes))  # fmt: skip
        healthy = (~needs).astype(float)
        fh = np.bincount(data.field_idx, weights=healthy, minlength=data.n_fields)
        others_healthy = fh[data.field_idx] - healthy
        impact = 1.0 + 0.5 * share[cust] + np.where(others_healthy <= 0, 0.5, 0.0)
        score = severity * impact
        idx = np.flatnonzero(needs)
        idx = idx[np.lexsort((data.names[idx].astype(str), -score[idx]))]
        rows = []
        for rank, i in enumerate(idx.tolist(), 1):
            cause = self.causes[top[i]]
            ev = self.findings[cause].evidence(i)
            also = [c for k, c in enumerate(self.causes) if fire[i, k] and k != top[i]]
            rows.append({
                "rank": rank, "device": str(data.names[i]), "customer": str(data.customer[i]),
                "field": str(data.field[i]), "cause": cause, "title": CAUSES[cause].title,
                "severity": float(severity[i]), "impact": round(float(impact[i]), 2),
                "score": round(float(score[i]), 2),
                "status": str(m["status"][i]), "evidence": ev, "evidence_text": evidence_text(cause, ev),
                "action": CAUSES[cause].action, "also": also,
            })  # fmt: skip
        return rows

    def _customers(self):
        data, m = self.data, self.metrics
        out = {}
        attention = {}
        for r in self.attention:
            attention.setdefault(r["customer"], []).append(r)
        for c in sorted(set(data.customer.tolist())):
            sel = data.customer == c
            st = m["status"][sel]
            comp = m["completeness_7d"][sel]
            rows = attention.get(c, [])
            causes = {}
            for r in rows:
                causes[r["cause"]] = causes.get(r["cause"], 0) + 1
            with np.errstate(all="ignore"):
                mean_comp = float(np.nanmean(comp)) if np.isfinite(comp).any() else None
            out[c] = {
                "customer": c, "devices": int(sel.sum()),
                **{s: int((st == s).sum()) for s in STATUSES},
                "needs_attention": len(rows), "completeness_7d": None if mean_comp is None else round(mean_comp, 3),
                "install_failed": int(sum(str(v or "").upper() == "FAIL" for v in data.install_verdict[sel])),
                "top_score": max((r["score"] for r in rows), default=0.0), "causes": causes,
            }  # fmt: skip
        return sorted(out.values(), key=lambda r: (-r["top_score"], -r["needs_attention"], r["customer"]))

    def device(self, name):
        """One device's figures and findings (JSON-able)."""
        hits = np.flatnonzero(self.data.names == name)
        if not len(hits):
            raise KeyError(name)
        i = int(hits[0])
        m, d = self.metrics, self.data
        out = {"device": name, "customer": str(d.customer[i]), "field": str(d.field[i]), "gateway": d.gateway[i],
               "firmware": d.firmware[i], "install_verdict": d.install_verdict[i]}  # fmt: skip
        for k in ("status", "power_mode"):
            out[k] = str(m[k][i])
        for k in ("age_s", "cadence_s", "expected_s", "battery_soc", "battery_slope_pct_day", "days_to_empty",
                  "solar_peak_yesterday_a", "solar_peak_today_a", "retry_ratio_2d", "rx_bad_2d", "clock_offset_ms",
                  "completeness_yesterday", "completeness_7d", "tilt_last", "rssi_dbm"):  # fmt: skip
            v = float(m[k][i])
            out[k] = None if v != v else round(v, 4)
        out["completeness_days"] = [None if v != v else round(float(v), 3) for v in m["completeness_days"][i]]
        out["findings"] = {c: int(f.level[i]) for c, f in self.findings.items() if f.level[i]}
        out.update(self._window_figures(int(d.ids[i])))
        return out

    def _window_figures(self, device_id):
        """30-day figures of one device (records, retries per frame, mean charge, mean daily solar peak)."""
        day1 = self.now // DAY
        row = self.store.backend.execute(
            "SELECT SUM(n), SUM(tx_sum), SUM(retries_sum), SUM(soc_sum), SUM(soc_n), AVG(solar_max) FROM health_day"
            " WHERE device_id = ? AND day > ? AND day <= ?",
            (device_id, day1 - self.data.window_days, day1),
        )[0]
        n, tx, re, soc, soc_n, peak = (float(v) if v is not None else None for v in row)
        return {
            "records_30d": int(n or 0),
            "retry_ratio_30d": round(re / tx, 3) if tx else None,
            "battery_soc_mean_30d": round(soc / soc_n, 1) if soc_n else None,
            "solar_peak_mean_30d_a": round(peak, 3) if peak is not None else None,
        }

    def as_json(self):
        return {"now": self.now, "devices": int(self.data.n), "attention": self.attention, "customers": self.customers}


def evidence_text(cause, ev):
    tpl = EVIDENCE_TEXT.get(cause)
    shown = {k: ("n/a" if v is None else ", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in ev.items()}
    if tpl:
        try:
            return tpl.format(**shown)
        except (KeyError, IndexError, ValueError):
            pass
    return ", ".join("%s %s" % (k, v) for k, v in shown.items())


def _failed_checks(store, data):
    """device id -> names of the failed checks of its latest FAIL onboarding report."""
    rows = store.backend.execute("SELECT device_id, ts, checks FROM onboarding WHERE verdict = 'FAIL' ORDER BY ts")
    out = {}
    for dev, _ts, checks in rows:
        try:
            items = json.loads(checks or "[]")
        except ValueError:
            items = []
        names = []
        for c in items:
            if isinstance(c, dict) and (c.get("ok") is False or str(c.get("status", c.get("result", ""))).upper()
                                        in ("FAIL", "FAILED", "ERROR")):  # fmt: skip
                why = c.get("detail") or c.get("fix") or c.get("measured")
                names.append(str(c.get("name", "?")) + (": %s" % why if why not in (None, "") else ""))
        out[int(dev)] = names
    return out


def assess(store, now=None, window_days=30):
    """FleetHealth of every node device at ``now`` (epoch s; default: the wall clock)."""
    now = int(time.time() if now is None else now)
    data = FleetData.load(store, now, window_days)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (new or silent devices) are expected
        m = metrics(data)
        findings = diagnose(data, m, _failed_checks(store, data))
        return FleetHealth(data, m, findings, store)
