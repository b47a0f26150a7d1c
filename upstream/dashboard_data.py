"""What the dashboard's pages read from the store: fleet health (cached), a device's history, a field's stream.

    data = DashboardData(store, now=None, refresh_s=60)     # now=None: judged at the wall clock
    fh = data.health(); data.device_history("node-1007", t0, t1); data.field_streams(names, t0, t1)

Not thread-safe, like the Store: the dashboard calls it from its one store thread. Fleet health
(upstream.health.assess) is recomputed at most every ``refresh_s`` seconds; with a fixed ``now`` once.
A field's stream is every series whose source is one of the field's devices: its nodes and the
third-party sources (SDI-12, Modbus, BLE...) assigned to the field in the devices table (a devices
import), plus the sources on the field's gateways that no field was assigned to, so none goes unseen.
"""

import json
import time

import numpy as np

from upstream.diagnoses import CAUSES
from upstream.fleetdata import FLAGGED
from upstream.health import assess, evidence_text

DAY = 86400
HISTORY = ("ts", "battery_soc", "battery_v", "solar_a", "rssi_dbm", "tx_frames", "retries")


class DashboardData:
    def __init__(self, store, now=None, refresh_s=60.0):
        self.store = store
        self.fixed_now = None if now is None else int(now)
        self.refresh_s = float(refresh_s)
        self._fh = None
        self._fh_at = None

    def now(self):
        return self.fixed_now if self.fixed_now is not None else int(time.time())

    def health(self):
        """The FleetHealth of every node (cached for ``refresh_s``)."""
        wall = time.monotonic()
        if self._fh is None or (self.fixed_now is None and wall - self._fh_at >= self.refresh_s):
            self._fh = assess(self.store, now=self.now())
            self._fh_at = wall
        return self._fh

    def _device_id(self, name):
        rows = self.store.backend.execute("SELECT id FROM devices WHERE device = ?", (name,))
        return rows[0][0] if rows else None

    # ---- one device ----
    @staticmethod
    def diagnoses(fh, i):
        """The device's findings (firing first, then holding; most severe first) with evidence and action."""
        out = []
        for cause, f in fh.findings.items():
            level = int(f.level[i])
            if level:
                ev = f.evidence(i)
                out.append({"cause": cause, "title": CAUSES[cause].title, "level": level,
                            "state": "firing" if level == 2 else "holding", "severity": CAUSES[cause].severity,
                            "evidence": ev, "evidence_text": evidence_text(cause, ev),
                            "action": CAUSES[cause].action})  # fmt: skip
        return sorted(out, key=lambda d: (-d["level"], -d["severity"], d["cause"]))

    def device_history(self, name, t0, t1):
        """The device's node_health over (t0, t1] as arrays, plus ``retry_ratio`` per record."""
        dev = self._device_id(name)
        m = self.store.backend.matrix(
            "SELECT %s FROM health WHERE device_id = ? AND kind = 'node_health' AND ts > ? AND ts <= ? ORDER BY ts"
            % ", ".join(HISTORY),
            (dev if dev is not None else -1, int(t0), int(t1)),
            len(HISTORY),
        )
        out = {k: m[:, j] for j, k in enumerate(HISTORY)}
        with np.errstate(all="ignore"):
            out["retry_ratio"] = np.where(out["tx_frames"] > 0, out["retries"] / out["tx_frames"], np.nan)
        return out

    def completeness_days(self, name, day0, day1):
        """Per UTC day in [day0, day1): the share of the expected 15-minute intervals its node_daily holds
        (hours in survival mode expect none, as the fleet view counts); days without a summary but with
        health records count 0, days with neither are left out. Returns (day start ts list, share list)."""
        dev = self._device_id(name)
        if dev is None:
            return [], []
        b = self.store.backend
        daily = dict(b.execute("SELECT day, intervals FROM daily WHERE kind = 'node_daily' AND device_id = ?"
                               " AND day >= ? AND day < ?", (dev, day0, day1)))  # fmt: skip
        seen = {d: (n, s) for d, n, s in b.execute(
            "SELECT day, n, survival_n FROM health_day WHERE device_id = ? AND day >= ? AND day < ?", (dev, day0, day1)
        )}  # fmt: skip
        ts, share = [], []
        for day in range(day0, day1):
            n, surv = seen.get(day, (0, 0))
            expected = 96.0 * (1.0 - min(max((surv or 0) * 6.0 / 24.0, 0.0), 1.0))
            if day in daily and daily[day] is not None and expected > 0:
                v = min(max(daily[day] / expected, 0.0), 1.0)
            elif n:
                v = 0.0
            else:
                continue
            ts.append(day * DAY)
            share.append(v)
        return ts, share

    def onboarding(self, name):
        """The device's onboarding (install check) reports, newest first: ts, verdict, checks (list of dicts)."""
        dev = self._device_id(name)
        rows = self.store.backend.execute(
            "SELECT ts, verdict, checks FROM onboarding WHERE device_id = ? ORDER BY ts DESC, id DESC", (dev,)
        )
        out = []
        for ts, verdict, checks in rows:
            try:
                items = json.loads(checks or "[]")
            except ValueError:
                items = []
            out.append({"ts": ts, "verdict": verdict, "checks": [c for c in items if isinstance(c, dict)]})
        return out

    # ---- one field ----
    def field_devices(self, field):
        """The field's devices (its nodes and assigned sources) and the other sources on its gateways that
        no field was assigned to (third-party sensors, the gateway's own streams).

        Each: {"device", "kind", "customer", "gateway", "assigned": True|False}."""
        b = self.store.backend
        cols = ("device", "kind", "customer", "gateway")
        sql = "SELECT device, kind, customer, gateway FROM devices WHERE "
        rows = [dict(zip(cols, r, strict=True), assigned=True)
                for r in b.execute(sql + "field = ? ORDER BY device", (field,))]  # fmt: skip
        gateways = sorted({r["gateway"] for r in rows if r["gateway"]})
        if gateways:
            unassigned = b.execute(
                sql
                + "kind <> 'node' AND (field IS NULL OR field = '') AND gateway IN (%s) ORDER BY device"
                % ",".join("?" * len(gateways)),
                gateways,
            )
            rows += [dict(zip(cols, r, strict=True), assigned=False) for r in unassigned]
        return rows

    def field_streams(self, sources, t0, t1):
        """Every series of ``sources`` (device names) and its readings in (t0, t1].

        Returns a list of {"source", "sensor", "quantity", "unit", "ts", "values", "flagged", "last_ts"}
        (flagged cells, out_of_range or sensor_fault, are counted and left out of ``values``)."""
        if not sources:
            return []
        b = self.store.backend
        sources = list(sources)
        series = b.execute(
            "SELECT id, source, sensor, quantity, unit FROM series WHERE source IN (%s) ORDER BY source, sensor,"
            " quantity, grid_s" % ",".join("?" * len(sources)),
            sources,
        )
        if not series:
            return []
        ids = [r[0] for r in series]
        marks = ",".join("?" * len(ids))
        last = dict(b.execute("SELECT series_id, MAX(ts) FROM readings WHERE series_id IN (%s) GROUP BY series_id"
                              % marks, ids))  # fmt: skip
        m = b.matrix(
            "SELECT series_id, ts, rev, value, flags FROM readings WHERE series_id IN (%s) AND ts > ? AND ts <= ?"
            " ORDER BY series_id, ts, rev" % marks,
            (*ids, int(t0), int(t1)),
            5,
        )
        out = {}
        for sid, source, sensor, quantity, unit in series:
            key = (source, sensor, quantity, unit)  # several grids of one quantity: one line
            s = out.setdefault(key, {"source": source, "sensor": sensor, "quantity": quantity, "unit": unit,
                                     "ts": [], "values": [], "flagged": 0, "last_ts": None})  # fmt: skip
            if last.get(sid) is not None:
                s["last_ts"] = max(s["last_ts"] or 0, int(last[sid]))
            rows = m[m[:, 0] == sid]
            if not len(rows):
                continue
            flagged = (rows[:, 4].astype(np.int64) & FLAGGED) != 0
            s["flagged"] += int(flagged.sum())
            rows = rows[~flagged]
            ts = rows[:, 1].astype(np.int64)
            keep = np.r_[ts[1:] != ts[:-1], True] if len(ts) else np.zeros(0, dtype=bool)  # the latest rev wins
            s["ts"].extend(ts[keep].tolist())
            s["values"].extend(rows[keep, 3].tolist())
        for s in out.values():
            order = np.argsort(np.asarray(s["ts"]), kind="stable")
            s["ts"] = np.asarray(s["ts"], dtype=float)[order]
            s["values"] = np.asarray(s["values"], dtype=float)[order]
        return list(out.values())
