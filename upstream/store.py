"""The upstream store: one interface, two backends chosen by URL (SQLite embedded, PostgreSQL).

    store = open_store("sqlite:///var/lib/fieldline/upstream.db")    # or "postgresql://user@host/db"
    result = store.ingest(parse_payload(payload, key))                # one transaction; duplicates dropped

Opening migrates the schema to the latest version (upstream/schema.py). Ingest is idempotent at two
levels: a batch whose key is already in ``batches`` is dropped whole (``IngestResult.duplicate``),
and inside a new batch every reading (key: source, sensor, quantity, unit, rule, grid_s, ts, rev)
and every record (its key; health: device, kind, ts) already stored is skipped and counted, so a
gateway that re-batched after a crash cannot double anything. Each node_health record that is new
is also added to the ``health_day`` rollup in the same transaction (upstream/rollup.py).
Customer and field: a devices import (upstream/devices.py) is authoritative; records that carry
``customer``/``field`` (or a field_daily's ``field``) fill them only where no import said otherwise.
"""

import json
import time
from dataclasses import dataclass

import numpy as np

from upstream import rollup
from upstream.backends import make_backend
from upstream.errors import StoreError
from upstream.normalise import HEALTH_FIELDS, LINK_FIELDS
from upstream.schema import migrate

_NUMERIC = HEALTH_FIELDS + LINK_FIELDS
_HEALTH_DB = ("device_id", "kind", "ts") + _NUMERIC + ("power_mode", "reset_cause", "faults", "gateway", "extra")
_KIND_CODE = {"node_health": 0, "gateway_health": 1}
_DEVICE_FIELDS = ("kind", "customer", "field", "gateway", "firmware", "hw", "install_verdict", "install_ts",
                  "install_tilt_deg", "lat", "lon")  # fmt: skip


@dataclass
class IngestResult:
    batch: str
    duplicate: bool = False
    readings: int = 0
    duplicate_readings: int = 0
    records: int = 0
    duplicate_records: int = 0

    def as_dict(self):
        return dict(self.__dict__)


def open_store(url, migrate_to=None):
    """A Store on ``url`` (schema migrated to the latest version, or ``migrate_to``)."""
    return Store(make_backend(url), migrate_to=migrate_to)


def _none(a):
    """A float array as a list with None for NaN (SQL NULL on both backends)."""
    a = np.asarray(a, dtype=float)
    return np.where(np.isnan(a), None, a).tolist()


def device_kind(name):
    return "gateway" if name.startswith("gateway-") else "node" if name.startswith("node-") else "other"


class Store:
    """See the module doc. Not thread-safe: use it from one thread (the receiver's writer)."""

    def __init__(self, backend, migrate_to=None):
        self.backend = backend
        self.url = backend.url
        self.dialect = backend.dialect
        try:
            self.version = migrate(backend, migrate_to)
        except BaseException:
            backend.close()
            raise
        self._devices = {}
        self._series = {}
        for i, name in backend.execute("SELECT id, device FROM devices"):
            self._devices[name] = i

    def close(self):
        self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def transaction(self):
        return self.backend.transaction()

    # ---- identities ----
    def device_ids(self, names):
        """Ids of device names (object array or list), creating the missing ones; returns an int64 array."""
        names = np.asarray(names, dtype=object)
        uniq, inverse = np.unique(names, return_inverse=True)
        missing = [n for n in uniq.tolist() if n not in self._devices]
        if missing:
            with self.backend.transaction():
                self.backend.executemany(
                    "INSERT INTO devices (device, kind) VALUES (?, ?) ON CONFLICT (device) DO NOTHING",
                    [(n, device_kind(n)) for n in missing],
                )
                for i in range(0, len(missing), 500):
                    chunk = missing[i : i + 500]
                    rows = self.backend.execute(
                        "SELECT id, device FROM devices WHERE device IN (%s)" % ",".join("?" * len(chunk)), chunk
                    )
                    for i_, n in rows:
                        self._devices[n] = i_
        ids = np.array([self._devices[n] for n in uniq.tolist()], dtype=np.int64)
        return ids[inverse.reshape(-1)]

    def _series_ids(self, runs, grid_s):
        keys = list(zip(runs["source"], runs["sensor"], runs["quantity"], runs["unit"], runs["rule"], strict=True))
        new = sorted({k for k in keys if (k, grid_s) not in self._series})
        if new:
            dev = self.device_ids([k[0] for k in new])
            self.backend.executemany(
                "INSERT INTO series (source, sensor, quantity, unit, rule, grid_s, device_id) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT (source, sensor, quantity, unit, rule, grid_s) DO NOTHING",
                [(*k, grid_s, int(d)) for k, d in zip(new, dev, strict=True)],
            )
            for k in new:
                rows = self.backend.execute(
                    "SELECT id FROM series WHERE source = ? AND sensor = ? AND quantity = ? AND unit = ? AND rule = ?"
                    " AND grid_s = ?",
                    (*k, grid_s),
                )
                self._series[(k, grid_s)] = rows[0][0]
        return np.array([self._series[(k, grid_s)] for k in keys], dtype=np.int64)

    # ---- ingest ----
    def has_batch(self, key):
        return bool(self.backend.execute("SELECT 1 FROM batches WHERE batch = ?", (key,)))

    def ingest(self, batch, via=None, received_at=None):
        """Store a ParsedBatch in one transaction; a batch already stored is dropped (``duplicate``)."""
        res = IngestResult(batch.key)
        now = time.time() if received_at is None else received_at
        try:
            with self.backend.transaction():
                n = self.backend.executemany(
                    "INSERT INTO batches (batch, gateway, received_at, via, readings, records, duplicates)"
                    " VALUES (?, ?, ?, ?, 0, 0, 0) ON CONFLICT (batch) DO NOTHING",
                    [(batch.key, batch.gateway, now, via)],
                )
                if n == 0:
                    res.duplicate = True
                    return res
                self._write_readings(batch, res)
                self._write_records(batch, res)
                self.backend.execute(
                    "UPDATE batches SET readings = ?, records = ?, duplicates = ? WHERE batch = ?",
                    (res.readings, res.records, res.duplicate_readings + res.duplicate_records, batch.key),
                )
        except StoreError:
            raise
        except Exception as e:
            self._forget_cached_ids()
            raise StoreError("store %s: batch %s not stored: %s" % (self.url, batch.key, e)) from e
        return res

    def _forget_cached_ids(self):
        """After a rollback, ids created inside it are gone: reload the caches."""
        self._devices = {n: i for i, n in self.backend.execute("SELECT id, device FROM devices")}
        self._series = {}

    def reject(self, via, key, reason, payload, received_at=None):
        """Keep a bad batch for inspection (its raw payload, up to 1 MB, and why it was refused)."""
        with self.backend.transaction():
            self.backend.execute(
                "INSERT INTO rejected_batches (received_at, via, batch, reason, payload) VALUES (?, ?, ?, ?, ?)",
                (time.time() if received_at is None else received_at, via, key, reason, bytes(payload[: 1 << 20])),
            )

    def _write_readings(self, batch, res):
        r = batch.readings
        if not r or not len(r["ts"]):
            return
        sids = self._series_ids(r["runs"], batch.grid_s)[r["run_of"]]
        total = len(sids)
        rows = zip(
            sids.tolist(), r["ts"].tolist(), r["rev"].tolist(), _none(r["value"]), _none(r["min"]),
            _none(r["max"]), _none(r["n"]), r["flags"].tolist(), [batch.key] * total, strict=True,
        )  # fmt: skip
        new = self.backend.executemany(
            "INSERT INTO readings (series_id, ts, rev, value, vmin, vmax, n, flags, batch) VALUES (?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (series_id, ts, rev) DO NOTHING",
            rows,
        )
        res.readings += new
        res.duplicate_readings += total - new
        starts = _starts(r["run_of"])
        last = {}
        for run, t in zip(r["run_of"][starts].tolist(), np.maximum.reduceat(r["ts"], starts).tolist(), strict=True):
            src = r["runs"]["source"][run]
            last[src] = max(last.get(src, 0), t)
        self._seen(last, batch.gateway)

    def _write_records(self, batch, res):
        if batch.health and len(batch.health.get("ts", ())):
            new, dup = self.write_health(batch.health, check_duplicates=not batch.fresh, gateway=batch.gateway)
            res.records += new
            res.duplicate_records += dup
        seen = {}
        for rows, fn in ((batch.daily, self._write_daily), (batch.onboarding, self._write_onboarding),
                         (batch.records, self._write_other)):  # fmt: skip
            if rows:
                new = fn(rows)
                res.records += new
                res.duplicate_records += len(rows) - new
                for row in rows:
                    t = row.get("ts") if row.get("ts") is not None else row.get("day", 0) * 86400
                    seen[row["device"]] = max(seen.get(row["device"], 0), t or 0)
        self._seen(seen, batch.gateway)
        for dev, fields in batch.assignments.items():
            self.assign(dev, "record", **fields)
        for row in batch.daily:
            if row["field"]:
                self.assign(row["device"], "record", field=row["field"])

    def write_health(self, cols, check_duplicates=True, gateway=None):
        """Health columns (HEALTH_COLUMNS; ``device`` names or ``device_id``) -> (new, duplicates).

        Runs inside the caller's transaction (or its own). New node_health rows go into health_day too."""
        ts = np.asarray(cols["ts"], dtype=np.int64)
        total = len(ts)
        if not total:
            return 0, 0
        dev = np.asarray(cols["device_id"], dtype=np.int64) if "device_id" in cols else self.device_ids(cols["device"])
        kinds = np.asarray(cols.get("kind", ["node_health"] * total), dtype=object)
        kcode = np.zeros(total, dtype=np.int64)
        kcode[kinds == "gateway_health"] = 1
        key = (dev << 35) | (kcode << 34) | ts
        _, first = np.unique(key, return_index=True)
        keep = np.zeros(total, dtype=bool)
        keep[first] = True
        if check_duplicates:
            keep &= ~self._stored_health(key, dev, ts)
        idx = np.flatnonzero(keep)
        with self.backend.transaction():
            if len(idx):
                self._insert_health(cols, dev, kinds, ts, idx)
                node = idx[kinds[idx] == "node_health"]
                if len(node):
                    sub = {"device_id": dev[node], "ts": ts[node]}
                    for c in _NUMERIC:
                        if c in cols:
                            sub[c] = np.asarray(cols[c], dtype=float)[node]
                    for c in ("power_mode", "reset_cause", "faults"):
                        if c in cols:
                            sub[c] = np.asarray(cols[c], dtype=object)[node]
                    rollup.merge_into(self.backend, *rollup.partials(sub))
                self._seen_ids(dev[idx], ts[idx], cols.get("gateway"), idx, gateway)
        return len(idx), total - len(idx)

    def _stored_health(self, key, dev, ts):
        t0, t1 = int(ts.min()), int(ts.max())
        if not self.backend.execute("SELECT 1 FROM health WHERE ts >= ? AND ts <= ? LIMIT 1", (t0, t1)):
            return np.zeros(len(key), dtype=bool)
        stored = set()
        udev = np.unique(dev).tolist()
        for i in range(0, len(udev), 500):
            chunk = udev[i : i + 500]
            rows = self.backend.execute(
                "SELECT device_id, kind, ts FROM health WHERE ts >= ? AND ts <= ? AND device_id IN (%s)"
                % ",".join("?" * len(chunk)),
                [t0, t1, *chunk],
            )
            stored.update((d << 35) | (_KIND_CODE.get(k, 1) << 34) | t for d, k, t in rows)
        return np.fromiter((k in stored for k in key.tolist()), dtype=bool, count=len(key))

    def _insert_health(self, cols, dev, kinds, ts, idx):
        n = len(idx)
        data = [dev[idx].tolist(), kinds[idx].tolist(), ts[idx].tolist()]
        for c in _NUMERIC:
            data.append(_none(np.asarray(cols[c], dtype=float)[idx]) if c in cols else [None] * n)
        for c in ("power_mode", "reset_cause", "faults", "gateway", "extra"):
            data.append(np.asarray(cols[c], dtype=object)[idx].tolist() if c in cols else [None] * n)
        rows = zip(*data, strict=True)
        if n > 5000:
            self.backend.copy_rows("health", _HEALTH_DB, rows)
        else:
            self.backend.executemany(
                "INSERT INTO health (%s) VALUES (%s) ON CONFLICT (ts, device_id, kind) DO NOTHING"
                % (", ".join(_HEALTH_DB), ", ".join("?" * len(_HEALTH_DB))),
                rows,
            )

    def _write_daily(self, rows):
        ids = self.device_ids([r["device"] for r in rows])
        names = ("key", "kind", "device_id", "field", "day") + DAILY_DB + ("body",)
        data = [tuple(int(i) if c == "device_id" else r.get(c) for c in names) for r, i in zip(rows, ids, strict=True)]
        return self.backend.executemany(
            "INSERT INTO daily (%s) VALUES (%s) ON CONFLICT (key) DO NOTHING"
            % (", ".join(names), ", ".join("?" * len(names))),
            data,
        )

    def _write_onboarding(self, rows):
        ids = self.device_ids([r["device"] for r in rows])
        new = self.backend.executemany(
            "INSERT INTO onboarding (key, device_id, ts, verdict, checks, body) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (key) DO NOTHING",
            [(r["key"], int(i), r["ts"], r["verdict"], r["checks"], r["body"]) for r, i in zip(rows, ids, strict=True)],
        )
        for r, i in zip(rows, ids, strict=True):
            self.backend.execute(
                "UPDATE devices SET install_verdict = ?, install_ts = ?,"
                " install_tilt_deg = COALESCE(?, install_tilt_deg)"
                " WHERE id = ? AND (install_ts IS NULL OR install_ts <= ?)",
                (r["verdict"], r["ts"], r["tilt_deg"], int(i), r["ts"] or 0),
            )
        return new

    def _write_other(self, rows):
        ids = self.device_ids([r["device"] for r in rows])
        new = self.backend.executemany(
            "INSERT INTO records (key, kind, device_id, ts, body) VALUES (?,?,?,?,?) ON CONFLICT (key) DO NOTHING",
            [(r["key"], r["kind"], int(i), r["ts"], r["body"]) for r, i in zip(rows, ids, strict=True)],
        )
        for r, i in zip(rows, ids, strict=True):
            if r["kind"] == "node_hello":
                body = json.loads(r["body"])
                self.backend.execute(
                    "UPDATE devices SET firmware = COALESCE(?, firmware), hw = COALESCE(?, hw) WHERE id = ?",
                    (body.get("fw_version"), body.get("hw"), int(i)),
                )
        return new

    def _seen(self, last_by_name, gateway):
        if not last_by_name:
            return
        names = list(last_by_name)
        ids = self.device_ids(names)
        self._seen_ids(ids, np.array([last_by_name[n] for n in names], dtype=np.int64), None, None, gateway)

    def _seen_ids(self, ids, ts, gateways, idx, gateway=None):
        order = np.lexsort((ts, ids))
        ids, ts = ids[order], ts[order]
        start = _starts(ids)
        end = np.r_[start[1:], len(ids)] - 1
        gw = [gateway] * len(start)
        if gateways is not None and idx is not None:
            g = np.asarray(gateways, dtype=object)[idx][order]
            gw = [x if x is not None else gateway for x in g[end].tolist()]
        tmin = np.minimum.reduceat(ts, start).tolist()
        self.backend.executemany(
            "UPDATE devices SET last_seen = CASE WHEN last_seen IS NULL OR last_seen < ? THEN ? ELSE last_seen END,"
            " first_seen = CASE WHEN first_seen IS NULL OR first_seen > ? THEN ? ELSE first_seen END,"
            " gateway = COALESCE(?, gateway) WHERE id = ?",
            [
                (t1, t1, t0, t0, g, d)
                for d, t0, t1, g in zip(ids[start].tolist(), tmin, ts[end].tolist(), gw, strict=True)
            ],  # fmt: skip
        )

    # ---- devices ----
    def assign(self, device, by, **fields):
        """Set a device's fields (customer, field, lat, ...). ``by="record"`` never overrides an import."""
        fields = {k: v for k, v in fields.items() if k in _DEVICE_FIELDS and v is not None}
        if not fields:
            return
        (i,) = self.device_ids([device]).tolist()
        sets = ", ".join("%s = ?" % k for k in fields)
        if by == "import":
            self.backend.execute("UPDATE devices SET %s, assigned_by = 'import' WHERE id = ?" % sets,
                                 (*fields.values(), i))  # fmt: skip
        else:
            self.backend.execute(
                "UPDATE devices SET %s, assigned_by = COALESCE(assigned_by, 'record') WHERE id = ?"
                " AND (assigned_by IS NULL OR assigned_by = 'record')" % sets,
                (*fields.values(), i),
            )

    def devices(self):
        """Every device as a dict of columns (id, device, kind, customer, field, ...)."""
        names = ("id", "device") + _DEVICE_FIELDS + ("first_seen", "last_seen", "assigned_by")
        cols = self.backend.columns("SELECT %s FROM devices ORDER BY id" % ", ".join(names), n=len(names))
        return dict(zip(names, cols, strict=True))

    def count(self, table):
        return self.backend.execute("SELECT COUNT(*) FROM %s" % table)[0][0]

    def records(self, kind):
        """Generic records of ``kind`` as (device name, ts, JSON body) rows, oldest first."""
        return self.backend.execute(
            "SELECT d.device, r.ts, r.body FROM records r JOIN devices d ON d.id = r.device_id WHERE r.kind = ?"
            " ORDER BY r.ts, r.id",
            (kind,),
        )


DAILY_DB = ("ndvi_midday", "incident_mj_m2", "intervals", "air_t_min", "air_t_max", "canopy_t_min", "canopy_t_max",
            "et0_mm", "etc_mm", "gdd", "cwsi")  # fmt: skip


def _starts(sorted_keys):
    k = np.asarray(sorted_keys)
    if not len(k):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
