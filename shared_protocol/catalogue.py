"""The message catalogue: compact integer keys on the wire, named fields in memory.

    payload = to_wire(REPORT, {"start": 1750000000, "interval_min": 15, ...})
    fields = from_wire(REPORT, payload)     # SchemaError names the bad field

A schema is one string (every object costs heap on the node): comma-separated fields,
the CBOR map key of a field is its position. A field is ``name:spec``; a trailing ``!``
marks it required. Specs:

    u[max]           unsigned int (default max 2**32-1); U = 64-bit unsigned
    i<min>/<max>     signed int
    f<dec>/<lo>/<hi> fixed point: wire int = round(value * 10**dec), value in lo..hi
    t<n> / y<n>      text of at most n UTF-8 bytes / bytes of at most n
    b                bool
    e<TABLE>         enum: wire = index into TABLES[TABLE]
    g<TABLE>         flags: wire = bit mask over TABLES[TABLE]
    l<n>/<spec>      list of at most n items of <spec>
    s<SCHEMA>        nested map with schema SCHEMAS_BY_NAME[SCHEMA]
    q<n>             interval statistics for at most n intervals (needs ``samples``)
    m<n>             map of at most n text keys to plain values (config, diagnostics)

Interval statistics travel column-wise per quantity: delta-coded means, then min and
max as offsets below/above the mean, then (only if they differ from ``samples``) counts.
See docs/protocol.md.
"""

from shared_protocol.compat import const
from shared_protocol.errors import SchemaError

HELLO = const(1)
REPORT = const(2)
DAILY = const(3)
HEALTH = const(4)
ACK = const(5)
TIME_SYNC = const(6)
CONFIG_GET = const(7)
CONFIG_SET = const(8)
CONFIG = const(9)
DIAG_REQUEST = const(10)
DIAG_RESPONSE = const(11)
LOG = const(12)

TABLES = {
    "RESET": "power_on hard watchdog deepsleep soft brownout unknown",
    "POWER": "full saver survival",
    "LEVEL": "debug info warning error",
    "FAULTS": (
        "spectral_up spectral_down ir_canopy ir_sky air_th air_pressure accelerometer "
        "gnss fuel_gauge flash clock_unsynced config"
    ),
}

_LINK = "tx_frames:u,acked_frames:u,retries:u,rx_bad:u,rssi_dbm:i-150/20"
_HEALTH = (
    "time:u,battery_v:f3/0/20,battery_soc:f0/0/100,solar_a:f3/-5/5,power_mode:ePOWER,"
    "reset_cause:eRESET,uptime_h:u,free_heap_kb:u,log_fill_pct:u100,link:sLINK,faults:gFAULTS,"
    "tilt_deg:f1/0/180,clock_offset_ms:i-2147483648/2147483647,log_pending:u"
)
_DAILY = (
    "date:u100000!,ndvi_midday:f3/-1/1,chlorophyll_midday:f2/-10/50,air_t_min:f2/-60/70,"
    "air_t_max:f2/-60/70,air_t_mean:f2/-60/70,canopy_t_min:f2/-60/90,canopy_t_max:f2/-60/90,"
    "canopy_t_mean:f2/-60/90,canopy_air_diff_midday:f2/-40/40,gdd:f2/0/100,incident_mj_m2:f2/0/60,"
    "samples:u100000,intervals:u1000,rh_min:f1/0/100,rh_max:f1/0/100,"
    "pressure_mean:f-1/30000/125000,utc_offset_min:i-840/840"
)

# type id: (name, schema)
SCHEMAS = {
    HELLO: (
        "hello",
        "fw_version:t24!,hw:t24!,provisioned:b!,mpy_version:u65535,reset_cause:eRESET,uid:y16,uptime_s:u,time:u",
    ),
    REPORT: (
        "report",
        "start:u!,interval_min:u1440!,samples:l32/u65535!,stats:q32!,health:sHEALTH,daily:sDAILY",
    ),
    DAILY: ("daily", _DAILY),
    HEALTH: ("health", _HEALTH),
    ACK: ("ack", "counters:l32/u!,rejected:l32/u"),
    TIME_SYNC: ("time_sync", "t1_ms:U!,t2_ms:U,t3_ms:U"),
    CONFIG_GET: ("config_get", "keys:l32/t32"),
    CONFIG_SET: ("config_set", "values:m32!"),
    CONFIG: ("config", "values:m32!,errors:m32"),
    DIAG_REQUEST: ("diag_request", "req_id:u65535!,items:l16/t16!"),
    DIAG_RESPONSE: ("diag_response", "req_id:u65535!,items:m32!,errors:m32"),
    LOG: ("log", "time:u!,level:eLEVEL!,text:t160!"),
}
SCHEMAS_BY_NAME = {"LINK": _LINK, "HEALTH": _HEALTH, "DAILY": _DAILY}

TYPE_NAMES = {}
TYPE_IDS = {}
for _t in SCHEMAS:
    TYPE_NAMES[_t] = SCHEMAS[_t][0]
    TYPE_IDS[SCHEMAS[_t][0]] = _t

# Types that may travel with a keyless CRC (before the device has a key).
KEYLESS = (HELLO, DIAG_REQUEST, DIAG_RESPONSE)
HEADER_NAMES = ("type", "device_id", "counter", "ack_req", "auth", "extra")
_U32 = 0xFFFFFFFF


def _err(where, msg):
    return SchemaError(where + ": " + msg)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _split(field):
    """'name:spec!' -> (name, spec, required)."""
    i = field.index(":")
    spec = field[i + 1 :]
    req = spec[-1] == "!"
    return field[:i], (spec[:-1] if req else spec), req


def _bounds(spec):
    # (lo, hi) of an integer spec u/U/i, or (dec, lo, hi) of a fixed-point spec f
    c = spec[0]
    if c == "f":
        p = spec[1:].split("/")
        return int(p[0]), float(p[1]), float(p[2])
    if c == "i":
        p = spec[1:].split("/")
        return int(p[0]), int(p[1])
    if len(spec) > 1:
        return 0, int(spec[1:])
    return 0, (0xFFFFFFFF if c == "u" else 0xFFFFFFFFFFFFFFFF)


def describe(spec):
    """Words for what a spec expects, for error messages."""
    c = spec[0]
    if c in "uUi":
        return "an integer %d..%d" % _bounds(spec)
    if c == "f":
        return "a number %r..%r" % _bounds(spec)[1:]
    if c in "ty":
        return "%s of at most %s bytes" % ("text" if c == "t" else "bytes", spec[1:])
    if c == "b":
        return "true or false"
    if c == "e":
        return "one of: " + TABLES[spec[1:]]
    if c == "g":
        return "a list of flags from: " + TABLES[spec[1:]]
    if c == "l":
        return "a list of at most %s items" % spec[1 : spec.index("/")]
    return "a map"


def scale(v, dec, lo, hi, where):
    """Physical value -> wire integer, range-checked."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
        raise _err(where, "expected a number %r..%r, got %r" % (lo, hi, v))
    return int(round(v * 10**dec)) if dec >= 0 else int(round(v / 10 ** (-dec)))


def unscale(raw, dec, lo, hi, where):
    """Wire integer -> physical value (float), range-checked with one step of slack."""
    v = None
    if _is_int(raw):
        v = raw / 10**dec if dec >= 0 else float(raw * 10 ** (-dec))
        step = 10.0 ** (-dec)
        if not (lo - step <= v <= hi + step):
            v = None
    if v is None:
        raise _err(where, "expected a scaled integer for %r..%r, got %r" % (lo, hi, raw))
    return v


def _plain(v, depth, where):
    if depth > 4:
        raise _err(where, "nested deeper than 4 levels")
    if isinstance(v, (list, tuple)):
        if len(v) > 64:
            raise _err(where, "list longer than 64")
        return [_plain(x, depth + 1, where) for x in v]
    if isinstance(v, dict):
        if len(v) > 64:
            raise _err(where, "map longer than 64")
        out = {}
        for k in v:
            if not isinstance(k, str):
                raise _err(where, "map key %r is not text" % (k,))
            out[k] = _plain(v[k], depth + 1, where + "." + k)
        return out
    if isinstance(v, (str, bytes, bytearray)) and len(v) > 256:
        raise _err(where, "longer than 256")
    if v is None or isinstance(v, (bool, int, float, str, bytes)):
        return v
    if isinstance(v, bytearray):
        return bytes(v)
    raise _err(where, "unsupported value type %s" % type(v).__name__)


def _value(spec, v, where, enc):
    """Convert one value between named form and wire form (enc: True = to wire)."""
    c = spec[0]
    out = v
    if c in "uUi":
        lo, hi = _bounds(spec)
        ok = _is_int(v) and lo <= v <= hi
    elif c == "f":
        dec, lo, hi = _bounds(spec)
        return scale(v, dec, lo, hi, where) if enc else unscale(v, dec, lo, hi, where)
    elif c in "ty":
        ok = isinstance(v, str) if c == "t" else isinstance(v, (bytes, bytearray))
        ok = ok and len(v.encode("utf-8") if c == "t" else v) <= int(spec[1:])
        if ok and c == "y":
            out = bytes(v)
    elif c == "b":
        ok = isinstance(v, bool)
    elif c == "e":
        names = TABLES[spec[1:]].split()
        if enc:
            ok = v in names
            out = names.index(v) if ok else None
        else:
            ok = _is_int(v) and 0 <= v < len(names)
            out = names[v] if ok else None
    elif c == "g":
        names = TABLES[spec[1:]].split()
        if enc:
            ok = isinstance(v, (list, tuple))
            out = 0
            for name in v if ok else ():
                if name not in names:
                    ok = False
                    break
                out |= 1 << names.index(name)
        else:
            ok = _is_int(v) and 0 <= v < (1 << len(names))
            out = [names[i] for i in range(len(names)) if v & (1 << i)] if ok else None
    elif c == "l":
        i = spec.index("/")
        ok = isinstance(v, (list, tuple)) and len(v) <= int(spec[1:i])
        if ok:
            item = spec[i + 1 :]
            out = [_value(item, v[j], where + "[%d]" % j, enc) for j in range(len(v))]
    else:  # s (nested schema) or m (plain map)
        ok = isinstance(v, dict)
        if ok and c == "s":
            schema = SCHEMAS_BY_NAME[spec[1:]]
            return fields_to_wire(schema, v, where) if enc else fields_from_wire(schema, v, where)
        if ok:
            if len(v) > int(spec[1:]):
                raise _err(where, "map of %d entries exceeds %s" % (len(v), spec[1:]))
            return _plain(v, 1, where)
    if not ok:
        raise _err(where, "expected %s, got %r" % (describe(spec), v))
    return out


def fields_to_wire(schema, fields, where):
    """Named fields -> {key: wire value}; an unknown name is a SchemaError."""
    out = {}
    known = []
    key = -1
    for f in schema.split(","):
        key += 1
        name, spec, req = _split(f)
        known.append(name)
        v = fields.get(name)
        if v is not None:
            w = where + "." + name
            if spec[0] == "q":
                from shared_protocol.stats import stats_to_wire  # only reports need it

                out[key] = stats_to_wire(v, fields.get("samples"), int(spec[1:]), w)
            else:
                out[key] = _value(spec, v, w, True)
        elif req:
            raise _err(where, "missing required field %r" % name)
    for name in fields:
        if name not in known and name not in HEADER_NAMES:
            raise _err(where, "unknown field %r" % (name,))
    return out


def fields_from_wire(schema, payload, where):
    """{key: wire value} -> named fields; unknown integer keys are kept under ``extra``."""
    if not isinstance(payload, dict):
        raise _err(where, "expected a CBOR map, got %s" % type(payload).__name__)
    fields = schema.split(",")
    out = {}
    extra = None
    stats = None
    for k in payload:
        if not _is_int(k):
            raise _err(where, "map key %r is not an integer" % (k,))
        if k < 0 or k >= len(fields):
            if extra is None:
                extra = {}
            extra[k] = payload[k]
            continue
        name, spec, req = _split(fields[k])
        if spec[0] == "q":
            stats = (name, spec, payload[k])
        else:
            out[name] = _value(spec, payload[k], where + "." + name, False)
    for key in range(len(fields)):
        name, spec, req = _split(fields[key])
        if req and key not in payload:
            raise _err(where, "missing required field %r (key %d)" % (name, key))
    if stats is not None:
        from shared_protocol.stats import stats_from_wire  # only reports need it

        name, spec, wire = stats
        out[name] = stats_from_wire(wire, out.get("samples"), int(spec[1:]), where + "." + name)
    if extra is not None:
        out["extra"] = extra
    return out


def to_wire(msg_type, fields):
    """Named fields of a ``msg_type`` message -> CBOR-ready payload map."""
    s = SCHEMAS.get(msg_type)
    if s is None:
        raise SchemaError("unknown message type %r" % (msg_type,))
    return fields_to_wire(s[1], fields, s[0])


def from_wire(msg_type, payload):
    """CBOR-decoded payload -> named fields of a ``msg_type`` message."""
    s = SCHEMAS.get(msg_type)
    if s is None:
        raise SchemaError("unknown message type %r" % (msg_type,))
    return fields_from_wire(s[1], payload, s[0])
