"""Likely faults per device, with the evidence (numbers) and what to do: one rule per cause.

    found = diagnose(data, metrics)        # {cause: Finding(level, evidence)}
    found["panel_covered"].level[i]        # 2 fires, 1 holds (still above the clear level), 0 clear

Every rule is vectorised over the fleet (numpy over [device, hour] matrices) and has two thresholds:
``level 2`` (open an alert) and ``level 1`` (keep an open alert open): the hysteresis alerts need.
A device is compared with its field's other devices at the same hour wherever it can be (clouds,
season and crop are shared; a fault is not), with its own history otherwise. See docs/csm-guide.md
for each cause, the evidence it shows and the action it recommends.
"""

from dataclasses import dataclass

import numpy as np

from gateway.agronomy import clear_sky_radiation
from upstream.rollup import MODES

SENSOR_FAULT_WORDS = ("spectral_up", "spectral_down", "ir_canopy", "ir_sky", "air_th", "air_pressure",
                      "accelerometer", "fuel_gauge")  # fmt: skip


@dataclass(frozen=True)
class Cause:
    severity: float
    title: str
    action: str


CAUSES = {
    "silent": Cause(
        5,
        "device silent",
        "Check the gateway first (are its other nodes reporting?); else visit: "
        "power (battery, panel), antenna and cabling.",
    ),  # fmt: skip
    "panel_covered": Cause(
        4,
        "solar panel covered",
        "Clean or uncover the solar panel (dust, bird droppings, "
        "leaves, a bag); check nothing new shades it. The battery is draining meanwhile.",
    ),
    "install_failed": Cause(
        4,
        "install check failed",
        "Send the installer back: fix the failed checks listed and re-run `fieldline check` until it passes.",
    ),  # fmt: skip
    "battery_weak": Cause(
        3, "battery weak", "The panel charges normally but the battery does not hold it: replace the battery pack."
    ),  # fmt: skip
    "failing_link": Cause(
        3,
        "radio link failing",
        "Check the antenna and its cable, line of sight to the gateway "
        "(new crop height, machinery); consider a relay or moving the gateway antenna.",
    ),
    "tilt_changed": Cause(
        3,
        "pole knocked or leaning",
        "Straighten the pole and re-level the node to its install "
        "tilt, then re-run the install check; the sensors no longer look at the canopy.",
    ),
    "sensor_stuck": Cause(
        3,
        "sensor stuck",
        "Power-cycle the node remotely if possible; else replace the stuck "
        "sensor head. Its values are constant and must not be used.",
    ),  # fmt: skip
    "sensor_out_of_range": Cause(
        3,
        "sensor out of range or faulty",
        "Inspect the sensor and its connector "
        "(water ingress, cable damage); replace it if the node keeps reporting the fault.",
    ),
    "dirty_lens": Cause(
        2,
        "down-looking sensor dirty",
        "Clean the down-looking (canopy) sensor's window with water "
        "and a soft cloth; its NDVI is biased low until then.",
    ),  # fmt: skip
    "sensor_shaded": Cause(
        2,
        "up-looking sensor shaded",
        "Remove what shades the up-looking sensor (a branch, weeds, a tag or label) and clean its diffuser.",
    ),  # fmt: skip
    "data_gaps": Cause(
        2,
        "data gaps",
        "Intervals are missing though the node reports: check its flash log fill "
        "and the link; ask the grower whether the node was moved or switched off.",
    ),
    "low_battery": Cause(
        1,
        "low battery (weather)",
        "Nothing to do if sunny days are forecast: the node saves "
        "power by itself. If it lasts a week, check the panel and battery.",
    ),
    "clock_drift": Cause(
        1,
        "clock drifting",
        "Check that the node syncs its time with the gateway (and GNSS); the gateway corrects timestamps meanwhile.",
    ),  # fmt: skip
}


@dataclass
class Finding:
    level: np.ndarray  # int8 per device: 0 clear, 1 hold, 2 fire
    evidence: object  # callable(i) -> dict of numbers


def last_k(valid, cond, k):
    """Per row, over its last ``k`` valid columns (latest last): (how many were taken, how many met ``cond``)."""
    n, cols = valid.shape
    taken = np.zeros(n, dtype=np.int64)
    hits = np.zeros(n, dtype=np.int64)
    for s in range(cols - 1, -1, -1):
        take = valid[:, s] & (taken < k)
        taken += take
        hits += take & cond[:, s]
    return taken, hits


def row_percentile(values, q):
    """Per row, the ``q`` quantile (0..1, nearest rank) of its non-NaN values; NaN for an empty row (vectorised)."""
    s = np.sort(values, axis=1)  # NaN sort last
    count = (~np.isnan(values)).sum(axis=1)
    k = np.clip(np.round((count - 1) * q).astype(np.int64), 0, values.shape[1] - 1)
    out = s[np.arange(values.shape[0]), k]
    return np.where(count > 0, out, np.nan)


def latest(values):
    """Per row, the value in its latest non-NaN column (NaN if none)."""
    ok = ~np.isnan(values)
    j = values.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
    out = values[np.arange(values.shape[0]), j]
    return np.where(ok.any(axis=1), out, np.nan)


def _jan1_days(day):
    """Days since 1970-01-01 of 1 January of the year of ``day`` (days since 1970-01-01)."""
    import datetime as dt

    return (dt.date((dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).year, 1, 1) - dt.date(1970, 1, 1)).days


def _r(v, nd=2):
    v = float(v)
    return None if v != v else round(v, nd)


def _levels(fire, hold):
    return np.where(fire, 2, np.where(hold, 1, 0)).astype(np.int8)


def _by_neighbours(data, values, floor, fire_ratio, hold_ratio, k=3):
    """``k`` may be per row (fewer hours for devices that report rarely)."""
    """Rows whose last ``k`` hours with neighbours above ``floor`` are all below fire_ratio x neighbours."""
    nb, others = data.neighbour_mean(values)
    valid = ~np.isnan(values) & (nb > floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = values / nb
    taken, hits = last_k(valid, ratio < fire_ratio, k)
    fire = (taken >= k) & (hits == taken)
    t1, h1 = last_k(valid, ratio < hold_ratio, 1)
    hold = (t1 == 1) & (h1 == 1)
    return fire, hold, nb, ratio, valid


def _mean_last(values, valid, k=3):
    """Mean of each row's last ``k`` valid columns."""
    n = values.shape[0]
    s, c = np.zeros(n), np.zeros(n)
    for col in range(values.shape[1] - 1, -1, -1):
        take = valid[:, col] & (c < k)
        s += np.where(take, values[:, col], 0.0)
        c += take
    with np.errstate(invalid="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def panel_covered(data, m):
    solar = data.hour["solar_a"]
    k = np.where(m["expected_s"] >= 3 * 3600, 1, 3)  # rare reporters and survival mode: 1-2 daylight records a day
    fire, hold, nb, _, valid = _by_neighbours(data, solar, 0.05, 0.15, 0.4, k)
    # alone in its field: a whole day without charge after days that charged
    peak = data.day["solar_max"]
    alone = data.alone
    fire |= alone & (peak[:, -2] < 0.02) & (np.nanmean(peak[:, -5:-2], axis=1) > 0.1)
    dev_now, nb_now = _mean_last(solar, valid), _mean_last(nb, valid)

    def evidence(i):
        return {
            "solar_a": _r(dev_now[i], 3),
            "neighbours_solar_a": _r(nb_now[i], 3),
            "daylight_hours": 3,
            "battery_soc_pct": _r(m["battery_soc"][i], 0),
            "days_to_empty": _r(m["days_to_empty"][i], 1),
        }

    return Finding(_levels(fire, hold), evidence)


def sensor_shaded(data, m):
    inc = data.read["incident_shortwave"]
    fire, hold, nb, _, valid = _by_neighbours(data, inc, 150.0, 0.6, 0.8)
    # without readings: yesterday's incident energy against the neighbours'
    e = data.daily["incident_mj_m2"][:, -2:]
    enb, _ = data.neighbour_mean(e)
    e, enb = latest(e), latest(enb)
    full_day = latest(data.daily["intervals"][:, -2:]) >= 90
    with np.errstate(invalid="ignore", divide="ignore"):
        eratio = e / enb
    no_readings = ~valid.any(axis=1)
    fire |= no_readings & full_day & (eratio < 0.6)
    hold |= no_readings & full_day & (eratio < 0.8)
    # alone in its field: not one day in five reached half the clear-sky energy (FAO-56 Rso at its latitude)
    alone = data.alone
    days = data.daily["incident_mj_m2"][:, -5:]
    doy = (np.arange(data.today - 5, data.today) - _jan1_days(data.today)) % 366 + 1.0  # day of year
    lat = np.where(np.isnan(data.lat), np.nan, data.lat)
    with np.errstate(all="ignore"):
        rso = clear_sky_radiation(np.nan_to_num(lat)[:, None], 0.0, doy[None, :])
        clear = np.nanmax(days / rso, axis=1)
    sky = alone & ~np.isnan(lat) & ((~np.isnan(days)).sum(axis=1) >= 3)
    fire |= sky & (clear < 0.5)
    hold |= sky & (clear < 0.6)
    dev_now, nb_now = _mean_last(inc, valid), _mean_last(nb, valid)

    def evidence(i):
        if sky[i]:
            return {"best_day_of_clear_sky": _r(clear[i], 2), "days": 5}
        if no_readings[i]:
            return {"incident_mj_m2_yesterday": _r(e[i], 1), "neighbours_mj_m2": _r(enb[i], 1),
                    "ratio": _r(eratio[i], 2)}  # fmt: skip
        return {"incident_w_m2": _r(dev_now[i], 0), "neighbours_w_m2": _r(nb_now[i], 0),
                "ratio": _r(dev_now[i] / nb_now[i] if nb_now[i] else np.nan, 2), "daylight_hours": 3}  # fmt: skip

    return Finding(_levels(fire, hold), evidence)


def dirty_lens(data, m):
    ndvi = data.read["ndvi"]
    nb, _ = data.neighbour_mean(ndvi)
    # the device's usual offset from its neighbours (midday NDVI, the days before yesterday)
    dn = data.daily["ndvi_midday"]
    dnb, _ = data.neighbour_mean(dn)
    with np.errstate(all="ignore"):
        # its clean offset: a high percentile of 12 days, so a lens dirty for a week still shows
        base = row_percentile((dn - dnb)[:, :-2], 0.8)
    base = np.where(np.isnan(base), 0.0, base)
    drop = ndvi - nb - base[:, None]
    valid = ~np.isnan(drop)
    taken, hits = last_k(valid, drop < -0.12, 3)
    fire = (taken >= 3) & (hits == taken)
    t1, h1 = last_k(valid, drop < -0.06, 1)
    hold = (t1 == 1) & (h1 == 1)
    no_readings = ~valid.any(axis=1)
    dday = latest(dn[:, -2:] - dnb[:, -2:]) - base
    fire |= no_readings & (dday < -0.12)
    hold |= no_readings & (dday < -0.06)
    # dirty for longer than the baseline remembers: far below the field, day after day
    offset = latest(dn[:, -2:] - dnb[:, -2:])
    lasting = (np.nanmax((dn - dnb)[:, -7:], axis=1) < -0.18) & (offset < -0.18)
    fire |= lasting
    hold |= lasting
    dev_now, nb_now = _mean_last(ndvi, valid), _mean_last(nb, valid)

    def evidence(i):
        if no_readings[i]:
            return {"ndvi_midday_latest_day": _r(latest(dn[i : i + 1, -2:])[0], 3), "usual_offset": _r(base[i], 3),
                    "drop": _r(dday[i], 3)}  # fmt: skip
        return {"ndvi": _r(dev_now[i], 3), "neighbours_ndvi": _r(nb_now[i], 3), "usual_offset": _r(base[i], 3),
                "drop": _r(dev_now[i] - nb_now[i] - base[i], 3), "daylight_hours": 3}  # fmt: skip

    return Finding(_levels(fire, hold), evidence)


def tilt_changed(data, m):
    now = m["tilt_last"]  # the latest record's (the day rollup keeps each day's last)
    with np.errstate(all="ignore"):
        daily = data.day["tilt_sum"] / data.day["tilt_n"]
        hist = np.nanmedian(daily[:, -10:-2], axis=1)
    base = np.where(np.isnan(data.install_tilt), hist, data.install_tilt)
    change = np.abs(now - base)
    fire = change > 5.0
    hold = change > 3.0

    def evidence(i):
        return {"tilt_deg": _r(now[i], 1), "install_tilt_deg": _r(base[i], 1), "change_deg": _r(change[i], 1)}

    return Finding(_levels(fire, hold), evidence)


def sensor_stuck(data, m, faulty):
    """``faulty``: devices whose sensor is out of range or reported faulty (a saturated value is constant too)."""
    fire = np.zeros(data.n, dtype=bool)
    hold = np.zeros(data.n, dtype=bool)
    which = np.full(data.n, None, dtype=object)
    value = np.full(data.n, np.nan)
    hours = np.zeros(data.n)
    for q in ("canopy_temperature", "air_temperature"):
        v = data.read[q]
        valid = ~np.isnan(v)
        lo, hi = np.full(data.n, np.inf), np.full(data.n, -np.inf)
        c = np.zeros(data.n)
        for col in range(23, -1, -1):
            take = valid[:, col] & (c < 6)
            lo = np.where(take, np.minimum(lo, v[:, col]), lo)
            hi = np.where(take, np.maximum(hi, v[:, col]), hi)
            c += take
            if col == 21:
                hold |= (c >= 3) & (hi - lo < 0.011)
        f = (c >= 6) & (hi - lo < 0.011)
        which = np.where(f & ~fire, q, which)
        value = np.where(f & ~fire, hi, value)
        hours = np.where(f & ~fire, c, hours)
        fire |= f
    no_readings = np.isnan(data.read["canopy_temperature"]).all(axis=1)
    full_day = latest(data.daily["intervals"][:, -2:]) >= 48
    for lo_name, hi_name, q in (("canopy_t_min", "canopy_t_max", "canopy_temperature"),
                                ("air_t_min", "air_t_max", "air_temperature")):  # fmt: skip
        hi_v, lo_v = latest(data.daily[hi_name][:, -2:]), latest(data.daily[lo_name][:, -2:])
        d = no_readings & full_day & (hi_v - lo_v < 0.011)
        which = np.where(d & ~fire, q, which)
        value = np.where(d & ~fire, hi_v, value)
        hours = np.where(d & ~fire, 24, hours)
        fire |= d

    def evidence(i):
        return {"quantity": which[i], "value": _r(value[i], 2), "constant_hours": int(hours[i])}

    fire &= ~faulty
    return Finding(_levels(fire, (hold | fire) & ~faulty), evidence)


def sensor_out_of_range(data, m):
    faults = m["faults_now"]
    words = np.empty(data.n, dtype=object)
    for i, f in enumerate(faults.tolist()):
        words[i] = sorted(set(str(f).split(",")) & set(SENSOR_FAULT_WORDS)) if f else []
    reported = np.fromiter((bool(w) for w in words), dtype=bool, count=data.n)
    fire = (data.flagged >= 2) | reported
    hold = (data.flagged >= 1) | reported

    def evidence(i):
        return {"flagged_cells_24h": int(data.flagged[i]),
                "quantities": sorted(data.flagged_quantities.get(i, ())), "node_faults": list(words[i])}  # fmt: skip

    return Finding(_levels(fire, hold), evidence)


def failing_link(data, m):
    tx, re, rx_bad = data.link["tx_frames"], data.link["retries"], data.link["rx_bad"]
    with np.errstate(invalid="ignore", divide="ignore"):
        recent = np.where(tx >= 8, re / np.maximum(tx, 1), np.nan)
        btx = np.nansum(data.day["tx_sum"][:, -9:-2], axis=1)
        base = np.where(btx >= 20, np.nansum(data.day["retries_sum"][:, -9:-2], axis=1) / np.maximum(btx, 1), np.nan)
    base_or = np.clip(np.where(np.isnan(base), 0.05, base), 0.03, 0.9)
    # enough frames that the rise is not chance: z-score against the usual rate, at least 6 retries
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (re - tx * base_or) / np.sqrt(tx * base_or * (1 - base_or))
    fire = (recent >= 0.25) & (re >= 6) & (z >= 5) | (recent >= 0.25) & (base_or >= 0.25) & (tx >= 12)
    hold = recent >= 0.15
    comp_y, comp_b = m["completeness_yesterday"], m["completeness_base"]
    gaps = (comp_y < 0.8) & (comp_b >= 0.95) & (rx_bad >= 3)
    fire |= gaps
    hold |= gaps

    def evidence(i):
        return {"retry_ratio_12h": _r(recent[i], 2), "retry_ratio_usual": _r(base[i], 2), "rx_bad_12h": int(rx_bad[i]),
                "completeness_yesterday": _r(comp_y[i], 2), "rssi_dbm": _r(m["rssi_dbm"][i], 0)}  # fmt: skip

    return Finding(_levels(fire, hold), evidence)


def silent(data, m):
    status = m["status"]
    installed_long_ago = (data.now - data.install_ts) > 86400
    never = (status == "never_seen") & installed_long_ago
    fire = (status == "silent") | never
    hold = fire | (status == "late")

    def evidence(i):
        return {"hours_since_last": _r(m["age_s"][i] / 3600.0, 1), "expected_every_h": _r(m["expected_s"][i] / 3600, 1),
                "battery_soc_pct": _r(m["battery_soc"][i], 0), "power_mode": m["power_mode"][i],
                "gateway": data.gateway[i]}  # fmt: skip

    return Finding(_levels(fire, hold), evidence)


def battery(data, m, covered):
    """battery_weak (the panel charges, the battery does not hold) and low_battery (the whole field is low)."""
    soc_h = data.hour["battery_soc"]
    soc_min = np.nanmin(np.where(np.isnan(soc_h), np.inf, soc_h), axis=1)
    soc_min = np.where(np.isinf(soc_min), np.nan, soc_min)
    mode = m["mode_code"]
    low_now = (mode >= MODES["saver"]) | (soc_min < 25)
    nb_soc, _ = data.neighbour_mean(np.where(np.isnan(m["battery_soc"]), np.nan, np.nanmax(
        np.where(np.isnan(soc_h), -np.inf, soc_h), axis=1)))  # fmt: skip
    peak = np.nanmax(np.where(np.isnan(data.hour["solar_a"]), -np.inf, data.hour["solar_a"]), axis=1)
    peak = np.where(np.isinf(peak), np.nan, peak)
    nb_peak, _ = data.neighbour_mean(peak)
    charging = ~(peak < 0.5 * nb_peak) & (covered == 0)
    field_ok = nb_soc >= 50
    # a battery that no longer holds its charge drains many times faster at night than its neighbours'
    sol = data.hour["solar_a"]
    night = sol < 0.005
    pair = ~np.isnan(soc_h[:, 1:]) & ~np.isnan(soc_h[:, :-1]) & night[:, 1:] & night[:, :-1]
    drain = _mean_last(soc_h[:, :-1] - soc_h[:, 1:], pair, 3)
    nb_drain, _ = data.neighbour_mean(drain)
    drains = (drain >= 3.0) & (drain >= 4.0 * np.maximum(np.nan_to_num(nb_drain, nan=0.5), 0.5))
    weak_fire = (low_now & field_ok | drains) & charging
    weak_hold = (mode >= MODES["saver"]) | (soc_min < 40)
    low_fire = low_now & ~weak_fire & (covered == 0) & ~(peak < 0.5 * nb_peak)
    swing = np.nanmax(np.where(np.isnan(soc_h), -np.inf, soc_h), axis=1) - soc_min

    def evidence(i):
        return {"battery_soc_min_24h": _r(soc_min[i], 0), "daily_swing_pct": _r(swing[i], 0),
                "power_mode": m["power_mode"][i], "solar_peak_a": _r(peak[i], 3),
                "neighbours_solar_peak_a": _r(nb_peak[i], 3), "neighbours_soc_pct": _r(nb_soc[i], 0),
                "night_drain_pct_h": _r(drain[i], 1), "neighbours_night_drain_pct_h": _r(nb_drain[i], 1),
                "days_to_empty": _r(m["days_to_empty"][i], 1)}  # fmt: skip

    return Finding(_levels(weak_fire, weak_hold), evidence), Finding(_levels(low_fire, low_fire), evidence)


def data_gaps(data, m, link):
    comp = m["completeness_yesterday"]
    quiet = (m["status"] == "active") & (link == 0) & (m["survival_share_yesterday"] < 0.25)
    fire = quiet & (comp < 0.85)
    hold = quiet & (comp < 0.95)

    def evidence(i):
        return {"completeness_yesterday": _r(comp[i], 2), "completeness_7d": _r(m["completeness_7d"][i], 2)}

    return Finding(_levels(fire, hold), evidence)


def clock_drift(data, m):
    off = np.abs(m["clock_offset_ms"])
    return Finding(_levels(off > 10000, off > 2000), lambda i: {"clock_offset_ms": _r(m["clock_offset_ms"][i], 0)})


def install_failed(data, m, failed_checks):
    fail = np.array([str(v or "").upper() == "FAIL" for v in data.install_verdict], dtype=bool)
    return Finding(_levels(fail, fail), lambda i: {"failed_checks": failed_checks.get(int(data.ids[i]), [])})


def diagnose(data, m, failed_checks=None):
    """Every rule over the fleet: {cause: Finding}."""
    out = {
        "silent": silent(data, m),
        "panel_covered": panel_covered(data, m),
        "install_failed": install_failed(data, m, failed_checks or {}),
        "failing_link": failing_link(data, m),
        "tilt_changed": tilt_changed(data, m),
        "sensor_out_of_range": sensor_out_of_range(data, m),
        "dirty_lens": dirty_lens(data, m),
        "sensor_shaded": sensor_shaded(data, m),
        "clock_drift": clock_drift(data, m),
    }
    out["sensor_stuck"] = sensor_stuck(data, m, out["sensor_out_of_range"].level > 0)
    out["battery_weak"], out["low_battery"] = battery(data, m, out["panel_covered"].level)
    out["data_gaps"] = data_gaps(data, m, out["failing_link"].level)
    return out
