"""What the fleet view reads from the store, as numpy matrices indexed [device, time].

    data = FleetData.load(store, now)      # 4 queries + the devices table; no Python loop per row
    data.day["soc_sum"][i, -2]             # yesterday's rollup of device i; data.hour["solar_a"][i, -1]: last hour

- ``day``: the health_day rollup of the last DETAIL_DAYS UTC days (column -1 is today, partial);
- ``hour``: solar current and charge of the last 24 h, one column per hour (column -1: the hour up to ``now``),
  and ``link``: the link counters summed over the last LINK_HOURS (by the database);
- ``daily``: node_daily values of the last 14 complete days (column -1: yesterday);
- ``read``: readings of the last 24 h per hour for the quantities the diagnoses use, and ``flagged``,
  the count of cells flagged out_of_range or sensor_fault;
- ``field_idx``: a dense field number per device (a device without a field is alone in its own).
Reads are numeric matrices (Backend.matrix: one conversion, no per-row Python). Only node devices are
loaded. Everything is cut at ``now`` except the day rollup's last column, which
holds the whole of today's records (evaluate with ``now`` at or after the newest data).
"""

import numpy as np

HOUR = 3600
DAY = 86400
DAILY_DAYS = 14
READ_QUANTITIES = ("incident_shortwave", "ndvi", "air_temperature", "canopy_temperature")
HOUR_COLUMNS = ("solar_a", "battery_soc")
LINK_HOURS = 12  # the link's recent window (sums in SQL)
DETAIL_DAYS = 10  # day-by-day detail: the rules look back at most 9 days of health (14 of daily values)
DAY_COLUMNS = (
    "n",
    "ts_first",
    "ts_last",
    "soc_sum",
    "soc_n",
    "soc_last",
    "mode_last",
    "survival_n",
    "solar_max",
    "tx_sum",
    "retries_sum",
    "rx_bad_sum",
    "rssi_last",
    "tilt_sum",
    "tilt_n",
    "tilt_last",
    "clock_last",
)
DAILY_COLUMNS = ("ndvi_midday", "incident_mj_m2", "intervals", "air_t_min", "air_t_max", "canopy_t_min",
                 "canopy_t_max")  # fmt: skip
FLAGGED = 64 | 32  # out_of_range | sensor_fault (gateway/stream.py)


def _f(col):
    return np.asarray(col, dtype=float)


class FleetData:
    def __init__(self, now, window_days):
        self.now = int(now)
        self.window_days = int(window_days)
        self.today = self.now // DAY
        self.day0 = self.today - self.window_days + 1

    @classmethod
    def load(cls, store, now, window_days=30):
        self = cls(now, window_days)
        b = store.backend
        self._devices(store)
        self._days(b)
        self._hours(b)
        self._daily(b)
        self._readings(b)
        return self

    def _devices(self, store):
        d = store.devices()
        node = np.array([k == "node" for k in d["kind"]], dtype=bool)
        keep = np.flatnonzero(node)
        self.ids = np.asarray(d["id"], dtype=np.int64)[keep]
        self.n = len(self.ids)
        take = lambda name: np.asarray(d[name], dtype=object)[keep]
        self.names = take("device")
        self.customer = np.array([c or "(no customer)" for c in take("customer")], dtype=object)
        fields = np.array([f or "" for f in take("field")], dtype=object)
        self.field = fields
        self.gateway = take("gateway")
        self.firmware = take("firmware")
        self.install_verdict = take("install_verdict")
        self.install_tilt = _f(take("install_tilt_deg"))
        self.install_ts = _f(take("install_ts"))
        self.lat = _f(take("lat"))
        self.first_seen = _f(take("first_seen"))
        # dense field numbers; devices without a field each get their own
        keyed = np.where(fields == "", np.char.add("\0", self.names.astype(str)) if self.n else fields, fields)
        _, self.field_idx = np.unique(keyed.astype(str), return_inverse=True) if self.n else (None, np.zeros(0, int))
        self.field_idx = np.asarray(self.field_idx, dtype=np.int64).reshape(-1)
        self.n_fields = int(self.field_idx.max()) + 1 if self.n else 0
        self.alone = np.bincount(self.field_idx, minlength=self.n_fields)[self.field_idx] == 1  # no field neighbours
        self.pos = np.full(int(self.ids.max()) + 1 if self.n else 1, -1, dtype=np.int64)
        self.pos[self.ids] = np.arange(self.n)

    def _index(self, dev_ids):
        """Positions of device ids in this fleet (-1: not a node)."""
        dev_ids = np.asarray(dev_ids, dtype=np.int64)
        ok = dev_ids < len(self.pos)
        out = np.full(len(dev_ids), -1, dtype=np.int64)
        out[ok] = self.pos[dev_ids[ok]]
        return out

    def _days(self, b):
        """The detail matrices of the last DETAIL_DAYS days, and 30-day (window) aggregates per device in SQL."""
        cols = DAY_COLUMNS
        shape = (self.n, DETAIL_DAYS)
        d0 = self.today - DETAIL_DAYS + 1
        m = b.matrix("SELECT device_id, day, %s FROM health_day WHERE day >= ? AND day <= ?" % ", ".join(cols),
                     (d0, self.today), 2 + len(cols))  # fmt: skip
        i = self._index(m[:, 0].astype(np.int64))
        ok = i >= 0
        i, j = i[ok], m[ok, 1].astype(np.int64) - d0
        self.day = {}
        for k, name in enumerate(cols):
            a = np.full(shape, np.nan)
            a[i, j] = m[ok, 2 + k]
            self.day[name] = a
        self.day["n"] = np.nan_to_num(self.day["n"])
        faults = np.full(shape, None, dtype=object)
        for dev, day, words in b.execute(
            "SELECT device_id, day, faults_last FROM health_day"
            " WHERE day >= ? AND day <= ? AND faults_last IS NOT NULL",
            (d0, self.today),
        ):
            k = self._index([dev])[0]
            if k >= 0:
                faults[k, day - d0] = words
        self.day["faults_last"] = faults

    def _hours(self, b):
        m = b.matrix(
            "SELECT device_id, ts, %s FROM health WHERE kind = 'node_health' AND ts > ? AND ts <= ?"
            % ", ".join(HOUR_COLUMNS),
            (self.now - DAY, self.now),
            2 + len(HOUR_COLUMNS),
        )
        i = self._index(m[:, 0].astype(np.int64))
        ok = i >= 0
        m = m[ok]
        i = i[ok]
        order = np.argsort(m[:, 1], kind="stable")  # the later record wins a shared slot
        m, i = m[order], i[order]
        slot = 23 - (self.now - m[:, 1].astype(np.int64)) // HOUR  # 23: the hour that ends at now
        self.hour = {}
        for k, name in enumerate(HOUR_COLUMNS):
            a = np.full((self.n, 24), np.nan)
            a[i, slot] = m[:, 2 + k]
            self.hour[name] = a
        link = b.matrix(
            "SELECT device_id, SUM(tx_frames), SUM(retries), SUM(rx_bad) FROM health WHERE kind = 'node_health'"
            " AND ts > ? AND ts <= ? GROUP BY device_id",
            (self.now - LINK_HOURS * HOUR, self.now),
            4,
        )
        i = self._index(link[:, 0].astype(np.int64))
        ok = i >= 0
        self.link = {}
        for k, name in enumerate(("tx_frames", "retries", "rx_bad")):
            a = np.zeros(self.n)
            a[i[ok]] = np.nan_to_num(link[ok, 1 + k])
            self.link[name] = a

    def _daily(self, b):
        """NDVI of the last DAILY_DAYS complete days; the other daily values of the last 7 (all the rules use)."""
        d0 = self.today - DAILY_DAYS
        self.daily = {}
        self.daily_present = np.zeros((self.n, DAILY_DAYS), dtype=bool)
        for names, first in ((("ndvi_midday",), d0), (DAILY_COLUMNS[1:], self.today - 7)):
            m = b.matrix(
                "SELECT device_id, day, %s FROM daily WHERE kind = 'node_daily' AND day >= ? AND day < ?"
                % ", ".join(names),
                (first, self.today),
                2 + len(names),
            )
            i = self._index(m[:, 0].astype(np.int64))
            ok = i >= 0
            i, j = i[ok], m[ok, 1].astype(np.int64) - d0
            for k, name in enumerate(names):
                a = np.full((self.n, DAILY_DAYS), np.nan)
                a[i, j] = m[ok, 2 + k]
                self.daily[name] = a
            if first != d0:
                self.daily_present[i, j] = True

    def _readings(self, b):
        cols = b.columns(
            "SELECT s.device_id, s.quantity, r.ts, r.value, r.flags FROM readings r JOIN series s ON s.id = r.series_id"
            " WHERE r.ts > ? AND r.ts <= ? AND s.quantity IN (%s)" % ",".join("?" * len(READ_QUANTITIES)),
            (self.now - DAY - HOUR, self.now - HOUR, *READ_QUANTITIES),  # cells that ended by now
            n=5,
        )
        i = self._index(np.asarray(cols[0], dtype=np.int64)) if cols[0] else np.zeros(0, np.int64)
        ok = i >= 0
        q = np.asarray(cols[1], dtype=object)[ok]
        ts = np.asarray(cols[2], dtype=np.int64)[ok]
        val = _f(cols[3])[ok] if len(cols[3]) else np.zeros(0)
        flags = np.asarray(cols[4], dtype=np.int64)[ok]
        i = i[ok]
        slot = 23 - (self.now - HOUR - ts) // HOUR
        flagged = (flags & FLAGGED) != 0
        self.read = {}
        for name in READ_QUANTITIES:
            m = (q == name) & ~flagged & ~np.isnan(val)
            s = np.zeros((self.n, 24))
            c = np.zeros((self.n, 24))
            np.add.at(s, (i[m], slot[m]), val[m])
            np.add.at(c, (i[m], slot[m]), 1)
            with np.errstate(invalid="ignore"):
                self.read[name] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
        self.flagged = np.bincount(i[flagged], minlength=self.n).astype(float)
        self.flagged_quantities = {}
        for k in np.flatnonzero(flagged).tolist():
            self.flagged_quantities.setdefault(int(i[k]), set()).add(q[k])

    # ---- helpers for the rules ----
    def neighbour_mean(self, values, min_others=1):
        """Mean of the other devices of the same field, per column (NaN where fewer than ``min_others`` others
        have data); returns (mean, count of others)."""
        v = np.asarray(values, dtype=float)
        flat = v.ndim == 1
        if flat:
            v = v[:, None]
        ok = ~np.isnan(v)
        z = np.where(ok, v, 0.0)
        s = np.zeros((self.n_fields, v.shape[1]))
        c = np.zeros((self.n_fields, v.shape[1]))
        np.add.at(s, self.field_idx, z)
        np.add.at(c, self.field_idx, ok)
        others = c[self.field_idx] - ok
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(others >= min_others, (s[self.field_idx] - z) / np.maximum(others, 1), np.nan)
        if flat:
            return mean[:, 0], others[:, 0]
        return mean, others
