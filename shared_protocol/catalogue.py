"""The message catalogue: compact integer keys on the wire, named fields in memory.

    tid, name, schema = lookup("report")    # or lookup(2); None if unknown
    payload = fields(schema, {"start": 1750000000, "interval_min": 15, ...}, name, True)
    named = fields(schema, payload, name, False)     # SchemaError names the bad field

The whole catalogue is two strings (every object costs heap on the node), searched on use.
A schema is comma-separated fields, the CBOR map key of a field is its position. A field is
``name:spec``; a trailing ``!`` marks it required. Specs:

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
See docs/protocol.md. SCHEMAS ({id: (name, schema)}), SCHEMAS_BY_NAME, TYPE_NAMES, TYPE_IDS
and TABLES are dicts built when asked for (catalogue_dicts: tools, tests, docs); the node
never loads that code.
"""

from shared_protocol.errors import SchemaError

# ";name schema" per message type, type id = position (1..12); "link" after them is the
# nested LINK schema only. sHEALTH / sDAILY / sLINK name the entry of that name, lower-cased.
_TYPES = (
    ";hello fw_version:t24!,hw:t24!,provisioned:b!,mpy_version:u65535,reset_cause:eRESET,uid:y16,uptime_s:u,time:u"
    ";report start:u!,interval_min:u1440!,samples:l32/u65535!,stats:q32!,health:sHEALTH,daily:sDAILY"
    ";daily date:u100000!,ndvi_midday:f3/-1/1,chlorophyll_midday:f2/-10/50,air_t_min:f2/-60/70,"
    "air_t_max:f2/-60/70,air_t_mean:f2/-60/70,canopy_t_min:f2/-60/90,canopy_t_max:f2/-60/90,"
    "canopy_t_mean:f2/-60/90,canopy_air_diff_midday:f2/-40/40,gdd:f2/0/100,incident_mj_m2:f2/0/60,"
    "samples:u100000,intervals:u1000,rh_min:f1/0/100,rh_max:f1/0/100,"
    "pressure_mean:f-1/30000/125000,utc_offset_min:i-840/840"
    ";health time:u,battery_v:f3/0/20,battery_soc:f0/0/100,solar_a:f3/-5/5,power_mode:ePOWER,"
    "reset_cause:eRESET,uptime_h:u,free_heap_kb:u,log_fill_pct:u100,link:sLINK,faults:gFAULTS,"
    "tilt_deg:f1/0/180,clock_offset_ms:i-2147483648/2147483647,log_pending:u"
    ";ack counters:l32/u!,rejected:l32/u"
    ";time_sync t1_ms:U!,t2_ms:U,t3_ms:U"
    ";config_get keys:l32/t32"
    ";config_set values:m32!"
    ";config values:m32!,errors:m32"
    ";diag_request req_id:u65535!,items:l16/t16!"
    ";diag_response req_id:u65535!,items:m32!,errors:m32"
    ";log time:u!,level:eLEVEL!,text:t160!"
    ";link tx_frames:u,acked_frames:u,retries:u,rx_bad:u,rssi_dbm:i-150/20"
)
_TABLES = (
    ";RESET power_on hard watchdog deepsleep soft brownout unknown"
    ";POWER full saver survival"
    ";LEVEL debug info warning error"
    ";FAULTS spectral_up spectral_down ir_canopy ir_sky air_th air_pressure accelerometer "
    "gnss fuel_gauge flash clock_unsynced config"
)

# Types that may travel with a keyless CRC (before the device has a key): hello, diag_request, diag_response.
KEYLESS = (1, 10, 11)
HEADER_NAMES = ("type", "device_id", "counter", "ack_req", "auth", "extra")


def _find(text, key):
    # the body of entry ";<key> <body>" of ``text``, or None
    if not isinstance(key, str) or " " in key or ";" in key:
        return None
    i = text.find(";" + key + " ")
    if i < 0:
        return None
    i = text.find(" ", i) + 1
    j = text.find(";", i)
    return text[i : j if j > 0 else len(text)]


def lookup(t):
    """(type id, name, schema) of a message type given by id or name, or None if unknown."""
    if isinstance(t, int) and 1 <= t <= 12:
        i = -1
        for _ in range(t):
            i = _TYPES.find(";", i + 1)
        t = _TYPES[i + 1 : _TYPES.find(" ", i)]
    s = _find(_TYPES, t)
    if s is None:
        return None
    tid = _TYPES.count(";", 0, _TYPES.find(";" + t + " ") + 1)
    return (tid, t, s) if tid <= 12 else None


def __getattr__(name):
    # SCHEMAS, SCHEMAS_BY_NAME, TYPE_NAMES, TYPE_IDS, TABLES: dicts for tools and tests (PEP 562)
    from shared_protocol.catalogue_dicts import view

    return view(name)


def _err(where, msg):
    return SchemaError(where + ": " + msg)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def scale(v, dec, lo, hi, where):
    """Physical value -> wire integer, range-checked."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
        raise _err(where, "expected a number %r..%r, got %r" % (lo, hi, v))
    return int(round(v * 10**dec)) if dec >= 0 else int(round(v / 10 ** (-dec)))


def unscale(raw, dec, lo, hi, where):
    """Wire integer -> physical value (float), range-checked with one step of slack."""
    if _is_int(raw):
        v = raw / 10**dec if dec >= 0 else float(raw * 10 ** (-dec))
        step = 10.0 ** (-dec)
        if lo - step <= v <= hi + step:
            return v
    raise _err(where, "expected a scaled integer for %r..%r, got %r" % (lo, hi, raw))


def _plain(v, depth, where, k=None):
    # check a free-form value in place (no copy: CBOR encodes tuple/list and bytearray/bytes alike,
    # and decoded values are plain already); the path ``where``.``k`` is built only for an error
    err = None
    if depth > 4:
        err = "nested deeper than 4 levels"
    elif isinstance(v, (list, tuple, dict)):
        if len(v) > 64:
            err = "longer than 64"
        else:
            w = where if k is None else where + "." + k
            for x in v:
                if isinstance(v, dict):
                    if not isinstance(x, str):
                        raise _err(w, "map key %r is not text" % (x,))
                    _plain(v[x], depth + 1, w, x)
                else:
                    _plain(x, depth + 1, w)
    elif isinstance(v, (str, bytes, bytearray)) and len(v) > 256:
        err = "longer than 256"
    elif not (v is None or isinstance(v, (bool, int, float, str, bytes, bytearray))):
        err = "unsupported value type %s" % type(v).__name__
    if err:
        raise _err(where if k is None else where + "." + k, err)
    return v


def _value(spec, v, where, enc):
    """Convert one value between named form and wire form (enc: True = to wire)."""
    c = spec[0]
    a = spec[1:]
    out = v
    what = "a map"
    if c == "f":
        p = a.split("/")
        return (scale if enc else unscale)(v, int(p[0]), float(p[1]), float(p[2]), where)
    if c in "sm":  # nested schema, plain map
        ok = isinstance(v, dict)
        if ok and c == "s":
            return fields(_find(_TYPES, a.lower()), v, where, enc)
        if ok:
            if len(v) > int(a):
                raise _err(where, "map of %d entries exceeds %s" % (len(v), a))
            return _plain(v, 1, where)
    elif c in "uUi":
        if c == "i":
            lo, hi = a.split("/")
            lo, hi = int(lo), int(hi)
        else:
            lo, hi = 0, int(a) if a else (0xFFFFFFFF if c == "u" else 0xFFFFFFFFFFFFFFFF)
        ok = _is_int(v) and lo <= v <= hi
        what = "an integer %d..%d" % (lo, hi)
    elif c in "ty":
        ok = isinstance(v, str) if c == "t" else isinstance(v, (bytes, bytearray))
        ok = ok and len(v.encode("utf-8") if c == "t" else v) <= int(a)
        if ok and c == "y":
            out = bytes(v)
        what = "%s of at most %s bytes" % ("text" if c == "t" else "bytes", a)
    elif c == "b":
        ok = isinstance(v, bool)
        what = "true or false"
    elif c == "l":
        i = a.index("/")
        ok = isinstance(v, (list, tuple)) and len(v) <= int(a[:i])
        if ok:
            out = []
            for j in range(len(v)):
                out.append(_value(a[i + 1 :], v[j], where + "[%d]" % j, enc))
        what = "a list of at most %s items" % a[:i]
    else:  # e (enum), g (flags)
        what = _find(_TABLES, a)
        names = what.split()
        n = len(names)
        if not enc:
            ok = _is_int(v) and 0 <= v < (n if c == "e" else 1 << n)
            if ok and c == "e":
                out = names[v]
            elif ok:
                out = []
                for i in range(n):
                    if v >> i & 1:
                        out.append(names[i])
        elif c == "e":
            ok = v in names
            if ok:
                out = names.index(v)
        else:
            ok = isinstance(v, (list, tuple))
            out = 0
            for name in v if ok else ():
                if name not in names:
                    ok = False
                    break
                out |= 1 << names.index(name)
    if not ok:
        if c in "eg":
            what = ("one of: " if c == "e" else "a list of flags from: ") + what
        raise _err(where, "expected %s, got %r" % (what, v))
    return out


def fields(schema, src, where, enc):
    """Named fields -> {key: wire value} (``enc``), or the reverse, checked against ``schema``.

    Encoding: an unknown name is a SchemaError (header names are ignored); decoding: unknown
    integer keys are kept under ``extra``, any other key is a SchemaError.
    """
    if not isinstance(src, dict):
        raise _err(where, "expected a CBOR map, got %s" % type(src).__name__)
    fl = schema.split(",")
    n = len(fl)
    out = {}
    names = []
    q = extra = None
    for i in range(n):
        f = fl[i]
        j = f.index(":")
        name, spec = f[:j], f[j + 1 :]
        names.append(name)
        key = name if enc else i
        if (src.get(key) is None) if enc else (key not in src):
            if spec[-1] == "!":
                raise _err(where, "missing required field %r (key %d)" % (name, i))
            continue
        if spec[-1] == "!":
            spec = spec[:-1]
        if spec[0] == "q":
            q = (name, i, int(spec[1:]), src[key])
        else:
            out[i if enc else name] = _value(spec, src[key], where + "." + name, enc)
    for k in src:
        if enc:
            if k not in names and k not in HEADER_NAMES:
                raise _err(where, "unknown field %r" % (k,))
        elif not _is_int(k):
            raise _err(where, "map key %r is not an integer" % (k,))
        elif k < 0 or k >= n:
            if extra is None:
                extra = {}
            extra[k] = src[k]
    if q is not None:  # only reports carry statistics: their code is loaded when one comes by
        name, i, maxn, v = q
        w = where + "." + name
        if enc:
            from shared_protocol.stats import stats_to_wire

            out[i] = stats_to_wire(v, src.get("samples"), maxn, w)
        else:
            from shared_protocol.stats_decode import stats_from_wire

            out[name] = stats_from_wire(v, out.get("samples"), maxn, w)
    if extra is not None:
        out["extra"] = extra
    return out
