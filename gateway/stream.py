"""The one timestamped stream: readings, quantity units and aggregation rules, quality flags,
and the upstream batch document.

    r = reading("node-7", "node", "air_temperature", 21.4, 1750000500.0, span_s=900, n=15, vmin=21.2, vmax=21.6)
    doc = batch_document("gw-1", 42, 900, columns, records)   # CBOR bytes, one outbox row

A reading is a plain tuple (the pipeline moves hundreds of thousands a second):
    (source, sensor, quantity, value, unit, ts, flags, span_s, n, vmin, vmax)
``ts`` is UTC epoch seconds: the instant of an instantaneous reading (span_s 0), or the start
of the span a summary covers (span_s > 0, with n samples, min and max). ``flags`` is a bit
set of FLAGS. Values are SI (or SI-accepted) in the quantity's unit (UNITS).

An aligned row (what goes upstream; batches carry them as run-length columns) has the fields
    source, sensor, quantity, unit, ts, value, min, max, n, flags, rule, rev
with ``ts`` the grid cell's start as ISO 8601 UTC text; ``rev`` 0, or 1, 2 ... when late data
revised a cell already sent. Its idempotency key is (source, sensor, quantity, ts, rule, rev)
within the batch's grid_s. Records (raw node summaries, health, daily) are dicts with a "key".
"""

import calendar
import json
import math
import time

import cbor2
import numpy as np

from shared_protocol.quantities import all_quantities

# ---- quality flags: bits, one meaning each; names travel in every batch as a legend ----
GAP = 1  # no data for this cell (value null)
PARTIAL = 2  # the cell's data cover less than the whole cell
LATE = 4  # arrived after the cell was sent: a revision (rev > 0)
CLOCK_CORRECTED = 8  # the source's clock offset/drift was corrected by more than 1 s
CLOCK_UNSYNCED = 16  # the source's clock was never synchronised: timestamps are its own
SENSOR_FAULT = 32  # the source reported a fault on the sensor behind this value
OUT_OF_RANGE = 64  # outside the quantity's physical range: kept, flagged
SUSPECT = 128  # the source marked it doubtful (e.g. a probe's own status)
FLAGS = {
    "gap": GAP,
    "partial": PARTIAL,
    "late": LATE,
    "clock_corrected": CLOCK_CORRECTED,
    "clock_unsynced": CLOCK_UNSYNCED,
    "sensor_fault": SENSOR_FAULT,
    "out_of_range": OUT_OF_RANGE,
    "suspect": SUSPECT,
}


def flag_names(bits):
    """['gap', ...] for a flag bit set."""
    return [name for name, bit in FLAGS.items() if bits & bit]


# ---- quantities: unit and default aggregation rule ----
UNITS = {q[1]: q[2] for q in all_quantities()}
UNITS.update(
    {
        "soil_temperature": "degC",
        "soil_water_content": "m3 m-3",
        "soil_bulk_ec": "S m-1",
        "wind_speed": "m s-1",
        "wind_direction": "deg",
        "precipitation": "mm",
        "vapour_pressure_deficit": "kPa",
        "et0": "mm",
        "etc": "mm",
        "cwsi": "1",
        "crop_coefficient": "1",
        "rssi": "dBm",
    }
)
RULES = ("mean", "sum", "last", "min", "max")
DEFAULT_RULES = {
    "precipitation": "sum",
    "et0": "sum",
    "etc": "sum",
    "growing_degree_days": "last",
    "battery_soc": "last",
}

READING_FIELDS = ("source", "sensor", "quantity", "unit", "ts", "value", "min", "max", "n", "flags", "rule", "rev")
RUN_FIELDS = ("source", "sensor", "quantity", "unit", "rule", "flags", "rev", "count")


def reading(source, sensor, quantity, value, ts, flags=0, span_s=0, n=1, vmin=None, vmax=None, unit=None):
    """A reading tuple (see the module doc); ``unit`` defaults to the quantity's SI unit."""
    return (source, sensor, quantity, value, unit or UNITS.get(quantity, "1"), float(ts), flags, span_s, n, vmin, vmax)


_ISO = {}


def iso(ts):
    """UTC epoch seconds -> 'YYYY-MM-DDTHH:MM:SSZ' (cached: grid times repeat)."""
    s = _ISO.get(ts)
    if s is None:
        if len(_ISO) > 100000:
            _ISO.clear()
        s = _ISO[ts] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    return s


def readings_from_rows(rows):
    """Row lists (READING_FIELDS order, ts epoch s or ISO) -> the batch's run-length columns."""
    runs = {f: [] for f in RUN_FIELDS}
    cols = {"runs": runs, "ts": [], "value": [], "min": [], "max": [], "n": []}
    for r in rows:
        d = dict(zip(READING_FIELDS, r, strict=True))
        for f in RUN_FIELDS:
            runs[f].append(1 if f == "count" else d[f])
        ts = d["ts"]
        cols["ts"].append(ts if isinstance(ts, int | float) else parse_iso(ts))
        for f in ("value", "min", "max", "n"):
            cols[f].append(d[f])
    return cols


def batch_document(gateway_id, seq, grid_s, readings, records, fmt="cbor"):
    """The upstream document of one outbox row: CBOR bytes (RFC 8949; ``fmt="json"``: JSON bytes).

    {"v": 1, "gateway": id, "batch": "<id>:<seq>", "grid_s": 900, "flag_bits": FLAGS,
     "readings": {"runs": {source, sensor, quantity, unit, rule, flags, rev, count: one entry per
                  run of consecutive readings of one series}, "ts" (cell start, epoch s), "value",
                  "min", "max", "n": one entry per reading},
     "records": [record, ...]}
    ``readings`` may also be a list of rows (READING_FIELDS order). MQTT and HTTP carry the CBOR
    document (content type application/cbor: a third smaller than JSON and several times faster
    to write); the file sink writes it as one JSON line (to_json). parse_batch expands it.
    """
    if isinstance(readings, list):
        readings = readings_from_rows(readings)
    if fmt != "json":
        readings = dict(readings)
        for f, tag, dt in _TYPED:
            readings[f] = cbor2.CBORTag(tag, np.asarray(readings[f], dtype=dt).tobytes())
    else:
        readings = _plain_columns(readings)
    doc = {
        "v": 1,
        "gateway": gateway_id,
        "batch": "%s:%d" % (gateway_id, seq),
        "grid_s": grid_s,
        "flag_bits": FLAGS,
        "readings": readings,
        "records": records,
    }
    if fmt == "json":
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    return cbor2.dumps(doc)


def parse_iso(text):
    """'YYYY-MM-DDTHH:MM:SSZ' -> epoch seconds (int)."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


# per-reading columns travel as RFC 8746 typed arrays, little-endian: ts uint32 (tag 70: epoch
# seconds to 2106), value/min/max float64 (tag 86, NaN = none), n uint16 (tag 69)
_TYPED = (("ts", 70, "<u4"), ("value", 86, "<f8"), ("min", 86, "<f8"), ("max", 86, "<f8"), ("n", 69, "<u2"))
_TAG_DTYPE = {69: "<u2", 70: "<u4", 79: "<i8", 86: "<f8"}


def _plain_columns(readings):
    """Per-reading columns as JSON-able lists (NaN -> None)."""
    out = dict(readings)
    for f, _tag, _dt in _TYPED:
        col = readings[f]
        vals = col.tolist() if hasattr(col, "tolist") else list(col)
        out[f] = [None if isinstance(v, float) and not math.isfinite(v) else v for v in vals]
    return out


def load_batch(payload):
    """A batch document (CBOR or JSON bytes) as a dict; typed arrays become lists (NaN -> None)."""
    if payload[:1] == b"{":
        return json.loads(payload)
    doc = cbor2.loads(payload)
    cols = doc.get("readings", {})
    for f, _tag, _dt in _TYPED:
        v = cols.get(f)
        if isinstance(v, cbor2.CBORTag):
            if v.tag not in _TAG_DTYPE or not isinstance(v.value, bytes):
                raise ValueError("batch %s: column %s: unexpected CBOR tag %r" % (doc.get("batch"), f, v.tag))
            cols[f] = np.frombuffer(v.value, dtype=_TAG_DTYPE[v.tag])
    doc["readings"] = _plain_columns(cols) if cols else cols
    return doc


def to_json(payload):
    """A batch document as one line of compact JSON (bytes, no newline); NaN/inf become null."""
    if payload[:1] == b"{":
        return bytes(payload)
    return json.dumps(load_batch(payload), separators=(",", ":"), allow_nan=False).encode()


def rows_from_columns(cols):
    """Run-length columns (lists or arrays) -> row dicts of READING_FIELDS (ts ISO text, NaN -> None)."""
    cols = _plain_columns(cols)
    runs = cols["runs"]
    total = len(cols["ts"])
    if sum(runs["count"]) != total or any(len(cols[f]) != total for f in ("value", "min", "max", "n")):
        raise ValueError("reading columns do not add up")
    if any(len(runs[f]) != len(runs["count"]) for f in RUN_FIELDS):
        raise ValueError("run columns differ in length")
    rows = []
    i = 0
    ts, value, vmin, vmax, n = cols["ts"], cols["value"], cols["min"], cols["max"], cols["n"]
    for r in range(len(runs["count"])):
        base = {f: runs[f][r] for f in RUN_FIELDS if f != "count"}
        for _ in range(runs["count"][r]):
            row = dict(base)
            row["ts"] = iso(ts[i])
            row["value"], row["min"], row["max"], row["n"] = value[i], vmin[i], vmax[i], n[i]
            rows.append(row)
            i += 1
    return rows


def parse_batch(payload):
    """A batch document (CBOR or JSON bytes) -> (meta dict, readings as dicts of READING_FIELDS with
    ts as ISO text, records). Raises ValueError if the columns do not add up."""
    doc = load_batch(payload)
    try:
        rows = rows_from_columns(doc["readings"])
    except ValueError as e:
        raise ValueError("batch %s: %s" % (doc.get("batch"), e)) from None
    meta = {k: doc[k] for k in ("v", "gateway", "batch", "grid_s")}
    return meta, rows, doc["records"]
