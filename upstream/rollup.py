"""The health_day rollup: per device and UTC day, the sums, extremes and last values of its node_health.

    part = partials(cols)                   # health columns (numpy) -> one partial row per record
    merge_into(backend, part)               # add to what health_day holds (inside the batch's transaction)

The fleet view reads 30 rows per device instead of 720 hourly records, and every figure it needs
stays exact: counts and sums (means, least squares), minima and maxima, the values of the day's
last record. Rolling up is associative, so partial rows from each batch merge with the stored row
of the same (device, day) by the same reduction (``reduce``): late and out-of-order data are fine.
Only records that were new to the store are rolled up (duplicates are dropped before).
"""

import numpy as np

DAY = 86400
MODES = {"full": 0, "saver": 1, "survival": 2}
MODE_NAMES = {v: k for k, v in MODES.items()}
RESETS_OF_NOTE = ("watchdog", "brownout", "hard")
# (column, how partial rows combine)
SPEC = (
    ("n", "sum"), ("ts_first", "min"), ("ts_last", "max"),
    ("soc_sum", "sum"), ("soc_n", "sum"), ("soc_min", "min"), ("soc_max", "max"), ("soc_last", "last"),
    ("v_min", "min"), ("v_last", "last"),
    ("solar_max", "max"), ("solar_sum", "sum"), ("solar_n", "sum"),
    ("tx_sum", "sum"), ("retries_sum", "sum"), ("rx_bad_sum", "sum"), ("rssi_last", "last"),
    ("tilt_sum", "sum"), ("tilt_n", "sum"), ("tilt_min", "min"), ("tilt_max", "max"), ("tilt_last", "last"),
    ("clock_last", "last"), ("clock_absmax", "max"),
    ("mode_last", "last"), ("saver_n", "sum"), ("survival_n", "sum"),
    ("faults_n", "sum"), ("faults_last", "last"), ("resets_n", "sum"),
    ("heap_min", "min"), ("log_fill_max", "max"),
)  # fmt: skip
NAMES = tuple(c for c, _ in SPEC)
TEXT = ("faults_last",)
_OPS = dict(SPEC)


def _f(cols, name, n):
    a = cols.get(name)
    if a is None:
        return np.full(n, np.nan)
    return np.asarray(a, dtype=float)


def _codes(values, table):
    """Object array of names -> float codes (NaN for None/unknown)."""
    out = np.full(len(values), np.nan)
    values = np.asarray(values, dtype=object)
    for name, code in table.items():
        out[values == name] = code
    return out


def partials(cols):
    """Health columns (dict of arrays: device_id, ts, battery_soc, ...) -> (device, day, partial columns)."""
    ts = np.asarray(cols["ts"], dtype=np.int64)
    n = len(ts)
    dev = np.asarray(cols["device_id"], dtype=np.int64)
    soc, volt, solar = _f(cols, "battery_soc", n), _f(cols, "battery_v", n), _f(cols, "solar_a", n)
    tilt, clock = _f(cols, "tilt_deg", n), _f(cols, "clock_offset_ms", n)
    mode = _codes(cols.get("power_mode", [None] * n), MODES)
    faults = np.asarray(cols.get("faults", [None] * n), dtype=object)
    has_faults = np.array([bool(f) for f in faults], dtype=float) if n < 50000 else (faults != None).astype(float)  # noqa: E711
    resets = np.zeros(n)
    rc = np.asarray(cols.get("reset_cause", [None] * n), dtype=object)
    for r in RESETS_OF_NOTE:
        resets += rc == r
    z = lambda a: np.where(np.isnan(a), 0.0, a)
    ok = lambda a: (~np.isnan(a)).astype(float)
    p = {
        "n": np.ones(n), "ts_first": ts.astype(float), "ts_last": ts.astype(float),
        "soc_sum": z(soc), "soc_n": ok(soc), "soc_min": soc, "soc_max": soc, "soc_last": soc,
        "v_min": volt, "v_last": volt,
        "solar_max": solar, "solar_sum": z(solar), "solar_n": ok(solar),
        "tx_sum": z(_f(cols, "tx_frames", n)), "retries_sum": z(_f(cols, "retries", n)),
        "rx_bad_sum": z(_f(cols, "rx_bad", n)), "rssi_last": _f(cols, "rssi_dbm", n),
        "tilt_sum": z(tilt), "tilt_n": ok(tilt), "tilt_min": tilt, "tilt_max": tilt, "tilt_last": tilt,
        "clock_last": clock, "clock_absmax": np.abs(clock),
        "mode_last": mode, "saver_n": (mode == 1).astype(float), "survival_n": (mode == 2).astype(float),
        "faults_n": has_faults, "faults_last": np.where(has_faults > 0, faults, None), "resets_n": resets,
        "heap_min": _f(cols, "free_heap_kb", n), "log_fill_max": _f(cols, "log_fill_pct", n),
    }  # fmt: skip
    return dev, ts // DAY, p


def reduce(dev, day, p):
    """Combine partial rows of the same (device, day); the "last" values follow ts_last."""
    dev, day = np.asarray(dev, dtype=np.int64), np.asarray(day, dtype=np.int64)
    if not len(dev):
        return dev, day, p
    order = np.lexsort((p["ts_last"], day, dev))
    dev, day = dev[order], day[order]
    start = np.flatnonzero(np.r_[True, (dev[1:] != dev[:-1]) | (day[1:] != day[:-1])])
    end = np.r_[start[1:], len(dev)] - 1
    out = {}
    for name, op in SPEC:
        a = np.asarray(p[name])[order]
        if op == "sum":
            out[name] = np.add.reduceat(a, start)
        elif op == "min":
            out[name] = np.fmin.reduceat(a, start)
        elif op == "max":
            out[name] = np.fmax.reduceat(a, start)
        else:
            out[name] = a[end]
    return dev[start], day[start], out


def _rows(dev, day, p):
    cols = [dev.tolist(), day.tolist()]
    for name in NAMES:
        a = p[name]
        if a.dtype == object:
            cols.append(a.tolist())
        else:
            cols.append(np.where(np.isnan(a), None, a).tolist())
    return list(zip(*cols, strict=True))


def load(backend, day0, day1, devices=None):
    """health_day rows with day0 <= day <= day1 (optionally only ``devices``) as (dev, day, columns)."""
    sql = "SELECT device_id, day, %s FROM health_day WHERE day >= ? AND day <= ?" % ", ".join(NAMES)
    params = [int(day0), int(day1)]
    if devices is not None:
        sql += " AND device_id IN (%s)" % ",".join("?" * len(devices))
        params += [int(d) for d in devices]
    cols = backend.columns(sql, params, n=2 + len(NAMES))
    dev = np.asarray(cols[0], dtype=np.int64)
    day = np.asarray(cols[1], dtype=np.int64)
    p = {}
    for name, col in zip(NAMES, cols[2:], strict=True):
        p[name] = np.asarray(col, dtype=object) if name in TEXT else np.asarray(col, dtype=float)
    return dev, day, p


def merge_into(backend, dev, day, part):
    """Reduce ``part`` and merge it with the stored health_day rows of the same keys (in the caller's transaction)."""
    dev, day, part = reduce(dev, day, part)
    if not len(dev):
        return 0
    udev = np.unique(dev)
    old = []
    for i in range(0, len(udev), 2000):
        chunk = udev[i : i + 2000]
        od, oy, op = load(backend, day.min(), day.max(), chunk.tolist())
        if len(od):
            old.append((od, oy, op))
    if old:
        keys = set(zip(dev.tolist(), day.tolist(), strict=True))
        for od, oy, op in old:
            keep = np.array([k in keys for k in zip(od.tolist(), oy.tolist(), strict=True)], dtype=bool)
            if keep.any():
                dev = np.r_[dev, od[keep]]
                day = np.r_[day, oy[keep]]
                part = {k: np.r_[part[k], op[k][keep]] for k in NAMES}
        dev, day, part = reduce(dev, day, part)
    names = ("device_id", "day") + NAMES
    sql = "INSERT INTO health_day (%s) VALUES (%s) ON CONFLICT (day, device_id) DO UPDATE SET %s" % (
        ", ".join(names),
        ", ".join("?" * len(names)),
        ", ".join("%s = excluded.%s" % (c, c) for c in NAMES),
    )
    backend.executemany(sql, _rows(dev, day, part))
    return len(dev)


def rebuild(backend, chunk_days=3):
    """Recompute health_day from every node_health record (migration step 2, repairs)."""
    backend.execute("DELETE FROM health_day")
    rows = backend.execute("SELECT MIN(ts), MAX(ts) FROM health WHERE kind = 'node_health'")
    if not rows or rows[0][0] is None:
        return
    t0, t1 = int(rows[0][0]), int(rows[0][1])
    names = ("device_id", "ts", "battery_v", "battery_soc", "solar_a", "power_mode", "reset_cause",
             "free_heap_kb", "log_fill_pct", "tx_frames", "retries", "rx_bad", "rssi_dbm", "faults",
             "tilt_deg", "clock_offset_ms")  # fmt: skip
    start = t0 - t0 % DAY
    while start <= t1:
        end = start + chunk_days * DAY
        cols = backend.columns(
            "SELECT %s FROM health WHERE kind = 'node_health' AND ts >= ? AND ts < ?" % ", ".join(names),
            (start, end),
            n=len(names),
        )
        if cols[0]:
            c = {}
            for name, col in zip(names, cols, strict=True):
                if name in ("power_mode", "reset_cause", "faults"):
                    c[name] = np.asarray(col, dtype=object)
                elif name in ("device_id", "ts"):
                    c[name] = np.asarray(col, dtype=np.int64)
                else:
                    c[name] = np.asarray([np.nan if v is None else v for v in col], dtype=float)
            merge_into(backend, *partials(c))
        start = end
