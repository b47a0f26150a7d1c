"""The node's configuration: a JSON file on flash written by provisioning, validated key by key.

    try: cfg = config.load("/flash/config.json")
    except ConfigError as e: cfg = config.unprovisioned(machine.unique_id(), str(e))

Every key is described once in _FIELDS (dotted key, section, name, attribute, kind, lo, hi, default);
load(), get() and apply_set() all work from that table, so a value the gateway sets is checked by
exactly the rules a provisioned file is. Errors are ConfigError with the dotted key in the message
and in ``err.key`` (None when the whole file is at fault). Numbers are never bools; integers are
never floats. Unknown keys (top-level or inside a section) are refused by name. The file is parsed
straight from the stream (json.load), never held as text; MicroPython's parser shrugs at a missing
comma, but truncated or unbalanced text is reported as corrupt. apply_set() refuses "device_id" and "key":
those are set by provisioning only. An unprovisioned config has lat/lon None (no fake location).
"""

import binascii
import errno
import json
import os

from fieldnode.errors import ConfigError

DEFAULT_PATH = "/flash/config.json"
# W m-2 of global shortwave per AS7341 CLEAR basic count (counts / (gain x ms)): the reference unit
# reads ~31 basic counts on CLEAR in 1000 W m-2 of sun; per-unit calibration replaces it.
DEFAULT_SHORTWAVE = 32.0
SUMMARY_CHOICES = (5, 10, 15, 20, 30, 60)
READ_ONLY = ("device_id", "key")

_REQ = object()  # default of a required key
_UNIT_CAL = (1.0,) * 10
# dotted key, section (None: top level), name in section, attribute, kind, lo, hi, default
_FIELDS = (
    ("device_id", None, "device_id", "device_id", "int", 1, 0xFFFFFFFF, _REQ),
    ("key", None, "key", "key", "hexkey", 32, 32, _REQ),
    ("name", None, "name", "name", "str", 0, 32, ""),
    ("site.lat", "site", "lat", "lat", "num", -90, 90, _REQ),
    ("site.lon", "site", "lon", "lon", "num", -180, 180, _REQ),
    ("site.alt_m", "site", "alt_m", "alt_m", "num", -500, 9000, 0.0),
    ("site.utc_offset_min", "site", "utc_offset_min", "utc_offset_min", "int", -840, 840, 0),
    ("intervals.sample_s", "intervals", "sample_s", "sample_s", "int", 10, 3600, 60),
    ("intervals.summary_min", "intervals", "summary_min", "summary_min", "choice", SUMMARY_CHOICES, None, 15),
    ("intervals.report_min", "intervals", "report_min", "report_min", "int", 1, 1440, 60),
    ("intervals.health_min", "intervals", "health_min", "health_min", "int", 15, 1440, 60),
    ("calibration.spectral", "calibration", "spectral", "spectral_cal", "cal10", 0.2, 5, _UNIT_CAL),
    (
        "calibration.shortwave_w_m2_per_count",
        "calibration",
        "shortwave_w_m2_per_count",
        "shortwave_w_m2_per_count",
        "pos",
        0,
        1e6,
        DEFAULT_SHORTWAVE,
    ),
    ("calibration.emissivity", "calibration", "emissivity", "emissivity", "num", 0.9, 1.0, 0.98),
    ("calibration.tilt_offset_deg", "calibration", "tilt_offset_deg", "tilt_offset_deg", "num", 0, 10, 0.0),
    ("gdd.base_c", "gdd", "base_c", "gdd_base_c", "num", -10, 30, 10.0),
    ("gdd.cap_c", "gdd", "cap_c", "gdd_cap_c", "num", -10, 50, 30.0),
    ("power.saver_below_pct", "power", "saver_below_pct", "saver_below_pct", "num", 0, 100, 30.0),
    ("power.saver_above_pct", "power", "saver_above_pct", "saver_above_pct", "num", 0, 100, 40.0),
    ("power.survival_below_pct", "power", "survival_below_pct", "survival_below_pct", "num", 0, 100, 12.0),
    ("power.survival_above_pct", "power", "survival_above_pct", "survival_above_pct", "num", 0, 100, 20.0),
)
_SECTIONS = ("site", "intervals", "calibration", "gdd", "power")


class Config:
    """All settings as attributes (cfg.sample_s, cfg.key bytes, cfg.spectral_cal list, ...)."""

    def __init__(self, values, provisioned=True, reason=None):
        for f in _FIELDS:
            setattr(self, f[3], values[f[3]])
        self.provisioned = provisioned
        self.reason = reason  # why the node is unprovisioned (None when provisioned)


class _Invalid(Exception):
    """A value broke its rule; the message says what was expected (the caller adds the key)."""


def _error(key, msg, path=None):
    text = "%s: %s" % (key, msg) if key else msg
    e = ConfigError("config %s: %s" % (path, text) if path else text)
    e.key = key
    return e


def _short(v):
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _is_num(v):
    t = type(v)
    return t is int or t is float


def _check(f, v):
    """The value of field ``f`` normalised, or raise _Invalid saying what was expected."""
    kind, lo, hi = f[4], f[5], f[6]
    if kind == "int" or kind == "choice":
        if type(v) is not int:
            raise _Invalid("expected an integer, got %s" % _short(v))
        if kind == "choice" and v not in lo:
            raise _Invalid("expected one of %s, got %d" % (", ".join(str(c) for c in lo), v))
        if kind == "int" and not lo <= v <= hi:
            raise _Invalid("expected an integer %d..%d, got %d" % (lo, hi, v))
        return v
    if kind == "num" or kind == "pos":
        if not _is_num(v):
            raise _Invalid("expected a number, got %s" % _short(v))
        if kind == "pos" and not lo < v <= hi:
            raise _Invalid("expected a number > 0 (at most %g), got %s" % (hi, _short(v)))
        if kind == "num" and not lo <= v <= hi:
            raise _Invalid("expected a number %s..%s, got %s" % (lo, hi, _short(v)))
        return float(v)
    if kind == "str":
        if type(v) is not str or len(v) > hi:
            raise _Invalid("expected a string of at most %d characters, got %s" % (hi, _short(v)))
        return v
    if kind == "hexkey":
        if type(v) is not str or len(v) != 2 * lo:
            raise _Invalid("expected %d hex characters (%d-byte HMAC key)" % (2 * lo, lo))
        try:
            return binascii.unhexlify(v)
        except ValueError:
            raise _Invalid("expected %d hex characters (%d-byte HMAC key), found a non-hex character" % (2 * lo, lo))
    # cal10: 10 factors F1..F8, CLEAR, NIR
    if type(v) not in (list, tuple) or len(v) != 10:
        raise _Invalid("expected a list of 10 numbers (F1..F8, CLEAR, NIR), got %s" % _short(v))
    for i in range(10):
        if not _is_num(v[i]) or not lo <= v[i] <= hi:
            raise _Invalid("item %d: expected a number %s..%s, got %s" % (i, lo, hi, _short(v[i])))
    return [float(x) for x in v]


def _cross(vals):
    """Rules between keys on attribute dict ``vals``: None, or (keys involved, message)."""
    rep, summ = vals["report_min"], vals["summary_min"]
    if rep % summ:
        msg = "report_min %d is not a multiple of summary_min %d" % (rep, summ)
        return ("intervals.report_min", "intervals.summary_min"), msg
    if vals["gdd_cap_c"] < vals["gdd_base_c"]:
        return ("gdd.cap_c", "gdd.base_c"), "cap_c %s is below base_c %s" % (vals["gdd_cap_c"], vals["gdd_base_c"])
    sb, sa = vals["survival_below_pct"], vals["survival_above_pct"]
    vb, va = vals["saver_below_pct"], vals["saver_above_pct"]
    if not (sb < sa <= vb < va):
        return (
            ("power.survival_below_pct", "power.survival_above_pct", "power.saver_below_pct", "power.saver_above_pct"),
            "expected survival_below < survival_above <= saver_below < saver_above, got %s, %s, %s, %s"
            % (sb, sa, vb, va),
        )
    return None


def _values(doc, path):
    """Attribute dict from a parsed document, or raise ConfigError (the first problem found)."""
    if type(doc) is not dict:
        raise _error(None, "expected a JSON object at the top level", path)
    unknown = [k for k in doc if k not in _SECTIONS and k not in ("device_id", "key", "name")]
    for sec in _SECTIONS:
        if sec not in doc:
            continue
        s = doc[sec]
        if type(s) is not dict:
            raise _error(sec, "expected an object", path)
        for k in s:
            if _field(sec + "." + k) is None:
                unknown.append(sec + "." + k)
    if unknown:
        unknown.sort()
        raise _error(None, "unknown keys: %s" % ", ".join(unknown), path)
    vals = {}
    for f in _FIELDS:
        src = doc if f[1] is None else doc.get(f[1]) or {}
        if f[2] in src:
            try:
                vals[f[3]] = _check(f, src[f[2]])
            except _Invalid as e:
                raise _error(f[0], str(e), path)
        elif f[7] is _REQ:
            raise _error(f[0], "missing (required)", path)
        else:
            vals[f[3]] = list(f[7]) if type(f[7]) is tuple else f[7]
    bad = _cross(vals)
    if bad:
        raise _error(bad[0][0], bad[1], path)
    return vals


def _field(key):
    for f in _FIELDS:
        if f[0] == key:
            return f
    return None


def load(path=DEFAULT_PATH):
    """Read and validate the config file; raises ConfigError naming the file and the key."""
    try:
        size = os.stat(path)[6]
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise _error(None, "missing (node not provisioned)", path)
        raise _error(None, "unreadable (OSError %s)" % e.errno, path)
    if size == 0:
        raise _error(None, "empty file (provisioning interrupted?)", path)
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except OSError as e:
        raise _error(None, "unreadable (OSError %s)" % e.errno, path)
    except (ValueError, UnicodeError) as e:
        raise _error(None, "corrupt JSON (%s)" % e, path)
    return Config(_values(doc, path))


def unprovisioned(uid_bytes, reason):
    """Safe defaults, no key, device_id = crc32 of the board uid (never 0); keeps ``reason``."""
    vals = {}
    for f in _FIELDS:
        d = f[7]
        vals[f[3]] = None if d is _REQ else (list(d) if type(d) is tuple else d)
    vals["device_id"] = binascii.crc32(bytes(uid_bytes)) & 0xFFFFFFFF or 0xFFFFFFFF
    return Config(vals, provisioned=False, reason=reason)


def get(cfg, keys=None):
    """Flat dict dotted key -> value for ``keys`` (all when empty/None; a section name selects its
    keys). Never the HMAC key; unknown keys are left out."""
    out = {}
    for f in _FIELDS:
        if f[0] == "key" or (keys and f[0] not in keys and f[1] not in keys):
            continue
        v = getattr(cfg, f[3])
        out[f[0]] = list(v) if type(v) is list else v
    return out


def _document(vals):
    doc = {}
    for sec in _SECTIONS:
        doc[sec] = {}
    for f in _FIELDS:
        v = vals[f[3]]
        if f[4] == "hexkey":
            v = binascii.hexlify(v).decode()
        if f[1] is None:
            doc[f[2]] = v
        else:
            doc[f[1]][f[2]] = v
    return doc


def save(cfg, path=DEFAULT_PATH):
    """Write ``cfg`` as JSON atomically: "<path>.tmp" then rename over ``path``."""
    if not cfg.provisioned:
        raise ConfigError("config %s: an unprovisioned config has no key to save" % path)
    _write({f[3]: getattr(cfg, f[3]) for f in _FIELDS}, path)


def _write(vals, path):
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as fh:
            json.dump(_document(vals), fh)
        os.rename(tmp, path)  # atomic on littlefs and POSIX: the old file or the new, never half
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def apply_set(cfg, values, path=DEFAULT_PATH):
    """The gateway's config_set: all of ``values`` (dotted key -> value) or none of them.

    Returns (applied, errors): applied maps each key to its stored (normalised) value when every
    value passed and the file was written; otherwise applied is {} and errors maps key -> message.
    """
    errors = {}
    if not cfg.provisioned:
        for k in values:
            errors[k] = "node is not provisioned"
        return {}, errors
    vals = {f[3]: getattr(cfg, f[3]) for f in _FIELDS}
    applied = {}
    for k, v in values.items():
        f = _field(k)
        if f is None:
            errors[k] = "unknown key"
        elif k in READ_ONLY:
            errors[k] = "read-only (set by provisioning)"
        else:
            try:
                vals[f[3]] = applied[k] = _check(f, v)
            except _Invalid as e:
                errors[k] = str(e)
    if not errors:
        bad = _cross(vals)
        if bad:
            named = [k for k in bad[0] if k in values] or [bad[0][0]]
            for k in named:
                errors[k] = bad[1]
    if not errors and applied:
        try:
            _write(vals, path)
        except OSError as e:
            for k in values:
                errors[k] = "not saved (OSError %s)" % e.errno
    if errors:
        return {}, errors
    for k, v in applied.items():
        setattr(cfg, _field(k)[3], v)
    return applied, errors
