"""A batch document as the store wants it: validated, readings as columns, records sorted by table.

    batch = parse_payload(payload, key="gw-1:42")     # BadBatch names the field or item that is wrong
    batch.readings["ts"], batch.health["battery_soc"], batch.daily[0]["ndvi_midday"], ...

The document is the gateway's (gateway/stream.py): CBOR (or JSON) with run-length ``runs`` and
typed-array columns of aligned readings, plus ``records``. Readings stay columns (numpy), never a
dict per row: ingest handles hundreds of thousands a second. Records go by ``kind``:
node_health/gateway_health -> health columns; node_daily/field_daily -> daily rows;
onboarding_report -> onboarding rows; everything else -> generic records (JSON). Every record needs
a ``kind`` and a device (``source`` or ``device``); its ``key`` is kept (or made from source, kind
and ts, the gateway's own recipe).
"""

import calendar
import datetime as dt
import json
import time
from dataclasses import dataclass, field

import cbor2
import numpy as np

from gateway.stream import _TAG_DTYPE, _TYPED, RUN_FIELDS, load_batch
from upstream.errors import BadBatch

HEALTH_KINDS = ("node_health", "gateway_health")
DAILY_KINDS = ("node_daily", "field_daily")
ONBOARDING = "onboarding_report"
HEALTH_FIELDS = ("battery_v", "battery_soc", "solar_a", "uptime_h", "free_heap_kb", "log_fill_pct", "tilt_deg",
                 "clock_offset_ms", "log_pending")  # fmt: skip
LINK_FIELDS = ("tx_frames", "acked_frames", "retries", "rx_bad", "rssi_dbm")
HEALTH_TEXT = ("power_mode", "reset_cause", "faults", "gateway", "extra")
HEALTH_COLUMNS = ("device", "kind", "ts") + HEALTH_FIELDS + LINK_FIELDS + HEALTH_TEXT
_HEALTH_KNOWN = set(HEALTH_FIELDS) | {"power_mode", "reset_cause", "faults", "link", "kind", "source", "device",
                                      "ts", "key", "via", "time", "gateway"}  # fmt: skip
DAILY_VALUES = ("ndvi_midday", "incident_mj_m2", "intervals", "air_t_min", "air_t_max", "canopy_t_min",
                "canopy_t_max", "et0_mm", "etc_mm", "gdd", "cwsi")  # fmt: skip
MAX_READINGS = 5_000_000


@dataclass
class ParsedBatch:
    """One batch, ready for Store.ingest. ``readings``: runs + columns (see ``readings_columns``)."""

    key: str
    gateway: str | None
    grid_s: int
    readings: dict = field(default_factory=dict)
    health: dict = field(default_factory=dict)  # HEALTH_COLUMNS -> list
    daily: list = field(default_factory=list)
    onboarding: list = field(default_factory=list)
    records: list = field(default_factory=list)
    assignments: dict = field(default_factory=dict)  # device -> {"customer":..., "field":..., ...} from records
    fresh: bool = False  # bulk loads whose records are known to be new: skip the per-record duplicate check

    @property
    def reading_count(self):
        return len(self.readings.get("ts", ()))

    @property
    def record_count(self):
        return len(self.health.get("ts", ())) + len(self.daily) + len(self.onboarding) + len(self.records)


def parse_iso(text, where):
    """ISO 8601 UTC text (or epoch seconds) -> int epoch seconds; BadBatch naming ``where`` otherwise."""
    if isinstance(text, bool):
        raise BadBatch("%s: expected ISO 8601 UTC time or epoch seconds, got %r" % (where, text))
    if isinstance(text, int | float):
        return int(text)
    if isinstance(text, str):
        try:
            return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            try:
                t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                pass
            else:
                if t.tzinfo is None:
                    t = t.replace(tzinfo=dt.UTC)
                return int(t.timestamp())
    raise BadBatch("%s: expected ISO 8601 UTC time or epoch seconds, got %r" % (where, text))


def device_name(rec, where):
    """The device a record is about: its ``source``, else its ``device`` (an int id -> "node-<id>")."""
    src = rec.get("source")
    if isinstance(src, str) and src:
        return src
    d = rec.get("device")
    if isinstance(d, int) and not isinstance(d, bool):
        return "node-%d" % d
    if isinstance(d, str) and d:
        return d
    raise BadBatch("%s: no device (a 'source' or 'device' field)" % where)


def parse_payload(payload, key=None):
    """CBOR or JSON bytes -> ParsedBatch. ``key``: the Idempotency-Key, which must match the document's."""
    if not isinstance(payload, bytes | bytearray | memoryview) or not payload:
        raise BadBatch("empty body: expected a CBOR or JSON batch document", key)
    try:
        doc = _load(bytes(payload))
    except Exception as e:  # noqa: BLE001 - whatever the decoder says, the body is not a batch
        raise BadBatch("not a batch document (CBOR or JSON): %s" % (str(e) or type(e).__name__), key) from None
    return parse_document(doc, key)


def _load(payload):
    """JSON, or CBOR with the typed-array columns kept as numpy arrays (no Python object per value)."""
    if payload[:1] == b"{":
        return load_batch(payload)
    doc = cbor2.loads(payload)
    cols = doc.get("readings") if isinstance(doc, dict) else None
    if isinstance(cols, dict):
        for f, _tag, _dt in _TYPED:
            v = cols.get(f)
            if isinstance(v, cbor2.CBORTag):
                if v.tag not in _TAG_DTYPE or not isinstance(v.value, bytes):
                    raise ValueError("column %s: unexpected CBOR tag %r" % (f, v.tag))
                cols[f] = np.frombuffer(v.value, dtype=_TAG_DTYPE[v.tag]).astype(float)
    return doc


def parse_document(doc, key=None):
    if not isinstance(doc, dict):
        raise BadBatch("not a batch document: expected a map, got %s" % type(doc).__name__, key)
    batch = doc.get("batch")
    if not isinstance(batch, str) or not batch:
        raise BadBatch("'batch': expected the batch's idempotency key (text)", key)
    if key is not None and key != batch:
        raise BadBatch("Idempotency-Key %r does not match the document's batch %r" % (key, batch), key)
    if doc.get("v") != 1:
        raise BadBatch("'v': expected document version 1, got %r" % (doc.get("v"),), batch)
    grid_s = doc.get("grid_s")
    if not isinstance(grid_s, int) or isinstance(grid_s, bool) or grid_s <= 0:
        raise BadBatch("'grid_s': expected a positive integer, got %r" % (grid_s,), batch)
    gateway = doc.get("gateway")
    out = ParsedBatch(batch, gateway if isinstance(gateway, str) else None, grid_s)
    try:
        out.readings = readings_columns(doc.get("readings") or {})
        records = doc.get("records") or []
        if not isinstance(records, list):
            raise BadBatch("'records': expected a list")
        sort_records(out, records)
    except BadBatch as e:
        raise BadBatch(e.reason, batch) from None
    return out


def readings_columns(cols):
    """The document's reading columns -> {"runs": {...}, "series": [(source, sensor, quantity, unit, rule)],
    "run_of": run index per reading, "ts", "value", "min", "max", "n", "flags", "rev"} (numpy)."""
    if not cols:
        return {}
    if not isinstance(cols, dict) or "runs" not in cols:
        raise BadBatch("'readings': expected {'runs': {...}, 'ts': [...], ...}")
    runs = cols["runs"]
    if not isinstance(runs, dict):
        raise BadBatch("'readings.runs': expected a map of columns")
    for f in RUN_FIELDS:
        if not isinstance(runs.get(f), list):
            raise BadBatch("'readings.runs.%s': expected a list" % f)
    nruns = len(runs["count"])
    for f in RUN_FIELDS:
        if len(runs[f]) != nruns:
            raise BadBatch("'readings.runs.%s': %d entries, expected %d (one per run)" % (f, len(runs[f]), nruns))
    for f in ("source", "sensor", "quantity", "unit", "rule"):
        for i, v in enumerate(runs[f]):
            if not isinstance(v, str) or not v:
                raise BadBatch("'readings.runs.%s[%d]': expected text, got %r" % (f, i, v))
    for f in ("flags", "rev", "count"):
        for i, v in enumerate(runs[f]):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise BadBatch("'readings.runs.%s[%d]': expected an integer >= 0, got %r" % (f, i, v))
    counts = np.asarray(runs["count"], dtype=np.int64)
    total = int(counts.sum()) if nruns else 0
    if total > MAX_READINGS:
        raise BadBatch("'readings': %d readings, more than %d in one batch" % (total, MAX_READINGS))
    out = {"runs": runs, "run_of": np.repeat(np.arange(nruns), counts)}
    for f in ("ts", "value", "min", "max", "n"):
        col = cols.get(f)
        if col is None or len(col) != total:
            raise BadBatch("'readings.%s': %s entries, expected %d (the runs' counts add up to that)"
                           % (f, "no" if col is None else len(col), total))  # fmt: skip
        try:
            a = np.asarray(col, dtype=float)
        except (TypeError, ValueError):
            raise BadBatch("'readings.%s': expected numbers (or null)" % f) from None
        out[f] = a
    if np.isnan(out["ts"]).any() or (out["ts"] < 0).any():
        raise BadBatch("'readings.ts': expected epoch seconds >= 0 for every reading")
    out["ts"] = out["ts"].astype(np.int64)
    out["flags"] = np.asarray(runs["flags"], dtype=np.int64)[out["run_of"]]
    out["rev"] = np.asarray(runs["rev"], dtype=np.int64)[out["run_of"]]
    return out


def sort_records(out, records):
    health = {c: [] for c in HEALTH_COLUMNS}
    for i, rec in enumerate(records):
        where = "records[%d]" % i
        if not isinstance(rec, dict):
            raise BadBatch("%s: expected a map, got %s" % (where, type(rec).__name__))
        kind = rec.get("kind")
        if not isinstance(kind, str) or not kind:
            raise BadBatch("%s: no 'kind'" % where)
        dev = device_name(rec, where)
        ts = parse_iso(rec["ts"], where + ".ts") if rec.get("ts") is not None else None
        key = rec.get("key")
        if not isinstance(key, str) or not key:
            if ts is None:
                raise BadBatch("%s: neither a 'key' nor a 'ts' to make one" % where)
            key = "%s/%s/%s" % (dev, kind, rec["ts"])
        assign = {k: rec[k] for k in ("customer", "field") if isinstance(rec.get(k), str) and rec[k]}
        if kind == ONBOARDING:
            assign.update({k: float(rec[k]) for k in ("lat", "lon") if _is_num(rec.get(k))})
        if assign:
            out.assignments.setdefault(dev, {}).update(assign)
        if kind in HEALTH_KINDS:
            if ts is None:
                raise BadBatch("%s: a %s record needs 'ts'" % (where, kind))
            _health_row(health, rec, kind, dev, ts, out.gateway, where)
        elif kind in DAILY_KINDS:
            out.daily.append(_daily_row(rec, kind, dev, ts, key, where))
        elif kind == ONBOARDING:
            out.onboarding.append(_onboarding_row(rec, dev, ts, key, where))
        else:
            out.records.append({"key": key, "kind": kind, "device": dev, "ts": ts, "body": _json(rec, where)})
    out.health = health


def _is_num(v):
    return isinstance(v, int | float) and not isinstance(v, bool)


def _num(rec, name, where):
    v = rec.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise BadBatch("%s.%s: expected a number, got %r" % (where, name, v))
    return float(v)


def _health_row(h, rec, kind, dev, ts, gateway, where):
    h["device"].append(dev)
    h["kind"].append(kind)
    h["ts"].append(ts)
    node = kind == "node_health"
    for f in HEALTH_FIELDS:
        h[f].append(_num(rec, f, where) if node else None)
    link = rec.get("link") if node else None
    if link is not None and not isinstance(link, dict):
        raise BadBatch("%s.link: expected a map of link counters" % where)
    for f in LINK_FIELDS:
        h[f].append(_num(link, f, where + ".link") if link else None)
    for f in ("power_mode", "reset_cause"):
        v = rec.get(f) if node else None
        h[f].append(v if isinstance(v, str) else None)
    faults = rec.get("faults") if node else None
    if faults is not None and not isinstance(faults, list | tuple):
        raise BadBatch("%s.faults: expected a list of fault names" % where)
    h["faults"].append(",".join(str(f) for f in faults) if faults else None)
    h["gateway"].append(gateway)
    extra = {k: v for k, v in rec.items() if k not in _HEALTH_KNOWN} if node else dict(rec)
    h["extra"].append(_json(extra, where) if extra else None)


def _daily_row(rec, kind, dev, ts, key, where):
    date = rec.get("date")
    if isinstance(date, int) and not isinstance(date, bool):
        day = date
    elif isinstance(date, str):
        try:
            day = (dt.date.fromisoformat(date) - dt.date(1970, 1, 1)).days
        except ValueError:
            raise BadBatch("%s.date: expected YYYY-MM-DD, got %r" % (where, date)) from None
    elif ts is not None:
        day = ts // 86400
    else:
        raise BadBatch("%s: a %s record needs 'date' or 'ts'" % (where, kind))
    row = {"key": key, "kind": kind, "device": dev, "day": day, "body": _json(rec, where)}
    row["field"] = rec.get("field") if isinstance(rec.get("field"), str) else None
    for f in DAILY_VALUES:
        row[f] = _num(rec, f, where)
    return row


def _onboarding_row(rec, dev, ts, key, where):
    verdict = rec.get("verdict")
    if verdict is not None and not isinstance(verdict, str):
        raise BadBatch("%s.verdict: expected text (e.g. PASS or FAIL), got %r" % (where, verdict))
    checks = rec.get("checks")
    if checks is not None and not isinstance(checks, list):
        raise BadBatch("%s.checks: expected a list" % where)
    tilt = None
    for c in checks or ():  # the install check's level (tilt) check: {"name", "measured" or "value", ...}
        if isinstance(c, dict) and c.get("name") in ("tilt", "tilt_deg", "level"):
            v = c.get("measured", c.get("value"))
            if isinstance(v, dict):
                v = v.get("tilt_deg")
            if _is_num(v):
                tilt = float(v)
    if isinstance(rec.get("tilt_deg"), int | float):
        tilt = float(rec["tilt_deg"])
    return {"key": key, "device": dev, "ts": ts, "verdict": verdict.upper() if verdict else None,
            "checks": _json(checks or [], where), "body": _json(rec, where), "tilt_deg": tilt}  # fmt: skip


def _json(obj, where):
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_plain)
    except (TypeError, ValueError) as e:
        raise BadBatch("%s: cannot be stored as JSON: %s" % (where, e)) from None


def _plain(v):
    if isinstance(v, bytes | bytearray):
        return v.hex()
    raise TypeError("%s is not JSON-able" % type(v).__name__)
