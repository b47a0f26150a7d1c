"""The store's schema as numbered migrations, applied in order, each in its own transaction.

    version = migrate(backend)             # brings any older database to LATEST; returns the version
    migrate(backend, target=1)             # (tests) stop at an old version

``schema_version`` holds one row per applied step (version, name, applied_at). A database newer than
this code (a version above LATEST) is refused rather than guessed at. A step is a list of SQL
statements (portable SQL with the backend's DDL tokens) and/or a function(backend) for data work,
e.g. filling a new table from an old one. Never edit a released step: add the next one.

Tables (see docs/csm-guide.md "The store"):
  batches            one row per stored batch: its idempotency key, gateway, when, counts
  rejected_batches   bad batches kept for inspection (reason, raw payload)
  devices            device -> kind, customer, field, gateway, firmware, install verdict, location
  series, readings   aligned readings; a reading's key is (series: source, sensor, quantity, unit,
                     rule, grid_s) + ts + rev
  health             node_health and gateway_health records, one column per field
  health_day         per device and UTC day: the health rollup the fleet view reads (step 2)
  daily              node_daily and field_daily records (key: the record's key)
  onboarding         onboarding_report records (device, verdict, checks)
  records            every other record kind (hello, logs, gateway alerts, ...), as JSON
  alerts             alert history: opened, last firing, closed, evidence, delivery
"""

import time

from upstream import rollup
from upstream.errors import StoreError

_V1 = [
    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {bigint} NOT NULL)",
    "CREATE TABLE batches (batch TEXT PRIMARY KEY, gateway TEXT, received_at {real} NOT NULL, via TEXT,"
    " readings INTEGER NOT NULL, records INTEGER NOT NULL, duplicates INTEGER NOT NULL)",
    "CREATE TABLE rejected_batches (id {id}, received_at {real} NOT NULL, via TEXT, batch TEXT,"
    " reason TEXT NOT NULL, payload {blob})",
    "CREATE TABLE devices (id {id}, device TEXT NOT NULL UNIQUE, kind TEXT, customer TEXT, field TEXT,"
    " assigned_by TEXT, gateway TEXT, firmware TEXT, hw TEXT, install_verdict TEXT, install_ts {bigint},"
    " install_tilt_deg {real}, lat {real}, lon {real}, first_seen {bigint}, last_seen {bigint})",
    "CREATE TABLE series (id {id}, source TEXT NOT NULL, sensor TEXT NOT NULL, quantity TEXT NOT NULL,"
    " unit TEXT NOT NULL, rule TEXT NOT NULL, grid_s INTEGER NOT NULL, device_id {bigint},"
    " UNIQUE (source, sensor, quantity, unit, rule, grid_s))",
    "CREATE TABLE readings (series_id {bigint} NOT NULL, ts {bigint} NOT NULL, rev INTEGER NOT NULL,"
    " value {real}, vmin {real}, vmax {real}, n INTEGER, flags INTEGER NOT NULL, batch TEXT,"
    " PRIMARY KEY (series_id, ts, rev))",
    "CREATE INDEX readings_ts ON readings (ts)",
    "CREATE TABLE health (device_id {bigint} NOT NULL, kind TEXT NOT NULL, ts {bigint} NOT NULL,"
    " battery_v {real}, battery_soc {real}, solar_a {real}, power_mode TEXT, reset_cause TEXT, uptime_h {real},"
    " free_heap_kb {real}, log_fill_pct {real}, tx_frames {real}, acked_frames {real}, retries {real},"
    " rx_bad {real}, rssi_dbm {real}, faults TEXT, tilt_deg {real}, clock_offset_ms {real}, log_pending {real},"
    " gateway TEXT, extra TEXT, PRIMARY KEY (ts, device_id, kind)){without_rowid}",
    "CREATE INDEX health_device ON health (device_id, ts)",
    "CREATE TABLE daily (id {id}, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, device_id {bigint},"
    " field TEXT, day INTEGER NOT NULL, ndvi_midday {real}, incident_mj_m2 {real}, intervals {real},"
    " air_t_min {real}, air_t_max {real}, canopy_t_min {real}, canopy_t_max {real}, et0_mm {real},"
    " etc_mm {real}, gdd {real}, cwsi {real}, body TEXT NOT NULL)",
    "CREATE INDEX daily_day ON daily (day, kind)",
    "CREATE TABLE onboarding (id {id}, key TEXT NOT NULL UNIQUE, device_id {bigint} NOT NULL, ts {bigint},"
    " verdict TEXT, checks TEXT, body TEXT NOT NULL)",
    "CREATE TABLE records (id {id}, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, device_id {bigint},"
    " ts {bigint}, body TEXT NOT NULL)",
    "CREATE INDEX records_kind ON records (kind, ts)",
    "CREATE TABLE alerts (id {id}, device_id {bigint} NOT NULL, cause TEXT NOT NULL, severity {real},"
    " opened_at {bigint} NOT NULL, last_firing_at {bigint} NOT NULL, closed_at {bigint}, evidence TEXT,"
    " action TEXT, notified_open INTEGER NOT NULL, notified_close INTEGER NOT NULL)",
    "CREATE INDEX alerts_open ON alerts (closed_at, device_id)",
]

_V2 = [
    "CREATE TABLE health_day (device_id {bigint} NOT NULL, day INTEGER NOT NULL, %s,"
    " PRIMARY KEY (day, device_id)){without_rowid}"
    % ", ".join("%s %s" % (c, "TEXT" if c in rollup.TEXT else "{real}") for c in rollup.NAMES)
]

_V3 = [
    "CREATE VIEW reading_rows AS SELECT s.source, s.sensor, s.quantity, s.unit, r.ts, r.value, r.vmin AS min,"
    " r.vmax AS max, r.n, r.flags, s.rule, r.rev, s.grid_s, r.batch"
    " FROM readings r JOIN series s ON s.id = r.series_id",
    "CREATE INDEX alerts_device ON alerts (device_id, cause)",
    "CREATE INDEX series_device ON series (device_id, quantity)",
]


def _backfill_health_day(backend):
    """Step 2's data work: the day rollup of every health record already stored."""
    rollup.rebuild(backend)


# (version, name, statements, function or None)
MIGRATIONS = (
    (1, "base tables", _V1, None),
    (2, "health_day rollup (filled from health)", _V2, _backfill_health_day),
    (3, "reading_rows view, alert and series indexes", _V3, None),
)
LATEST = MIGRATIONS[-1][0]


def current_version(backend):
    """The database's schema version (0: empty)."""
    if "schema_version" not in backend.table_names():
        return 0
    rows = backend.execute("SELECT MAX(version) FROM schema_version")
    return int(rows[0][0] or 0)


def migrate(backend, target=None):
    """Apply the missing steps up to ``target`` (default LATEST); return the version reached."""
    target = LATEST if target is None else target
    have = current_version(backend)
    if have > LATEST:
        raise StoreError(
            "store %s has schema version %d, newer than this fieldline (%d): upgrade fieldline"
            % (getattr(backend, "url", "?"), have, LATEST)
        )
    for version, name, statements, fn in MIGRATIONS:
        if version <= have or version > target:
            continue
        try:
            with backend.transaction():
                for sql in statements:
                    backend.execute(backend.ddl(sql))
                if fn is not None:
                    fn(backend)
                backend.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, int(time.time())),
                )
        except StoreError:
            raise
        except Exception as e:
            raise StoreError("store migration %d (%s) failed: %s" % (version, name, e)) from e
        have = version
    return have
