"""The node's configuration: a JSON file on flash written by provisioning, validated key by key.

    try: cfg = config.load("/flash/config.json")
    except ConfigError as e: cfg = config.unprovisioned(machine.unique_id(), str(e))

Every key is described once in _T (one string: every object costs heap on the node); load(),
get() and apply_set() all work from that table, so a value the gateway sets is checked by
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

from micropython import const

from fieldnode.errors import ConfigError

DEFAULT_PATH = "/flash/config.json"
# W m-2 of global shortwave per AS7341 CLEAR basic count (counts / (gain x ms)): the reference unit
# reads ~31 basic counts on CLEAR in 1000 W m-2 of sun; per-unit calibration replaces it.
DEFAULT_SHORTWAVE = 32.0

# ";<dotted key> <attribute, - = the name after the dot> <kind> <lo> <hi> <default, ! = required>".
# Kinds: i integer lo..hi; c integer, one of lo (a/b/c); n number lo..hi (stored as float); p number
# in (0, hi]; s text of at most hi characters (default ""); k hex HMAC key of lo bytes; l list of
# 10 numbers lo..hi (F1..F8, CLEAR, NIR; default 10 x default). Values travel as a list in this order.
_T = (
    ";device_id - i 1 4294967295 !;key - k 32 32 !;name - s 0 32 -"
    ";site.lat - n -90 90 !;site.lon - n -180 180 !;site.alt_m - n -500 9000 0"
    ";site.utc_offset_min - i -840 840 0;intervals.sample_s - i 10 3600 60"
    ";intervals.summary_min - c 5/10/15/20/30/60 - 15;intervals.report_min - i 1 1440 60"
    ";intervals.health_min - i 15 1440 60;calibration.spectral spectral_cal l 0.2 5 1"
    ";calibration.shortwave_w_m2_per_count - p 0 1e6 32;calibration.emissivity - n 0.9 1.0 0.98"
    ";calibration.tilt_offset_deg - n 0 10 0;gdd.base_c gdd_base_c n -10 30 10;gdd.cap_c gdd_cap_c n -10 50 30"
    ";power.saver_below_pct - n 0 100 30;power.saver_above_pct - n 0 100 40"
    ";power.survival_below_pct - n 0 100 12;power.survival_above_pct - n 0 100 20"
)


# positions in _T of the fields the rules between keys compare
_SUMMARY = const(8)
_REPORT = const(9)
_GDD_BASE = const(15)
_GDD_CAP = const(16)
_SAVER_BELOW = const(17)
_SAVER_ABOVE = const(18)
_SURVIVAL_BELOW = const(19)
_SURVIVAL_ABOVE = const(20)


class Config:
    """All settings as attributes (cfg.sample_s, cfg.key bytes, cfg.spectral_cal list, ...)."""

    def __init__(self, values, provisioned=True, reason=None):
        for i, r in enumerate(_rows()):
            setattr(self, r[1], values[i])
        self.provisioned = provisioned
        self.reason = reason  # why the node is unprovisioned (None when provisioned)


def _rows():
    """Every field as (dotted key, attribute, kind, lo, hi, default), in table order."""
    for line in _T.split(";")[1:]:
        r = line.split()
        if r[1] == "-":
            r[1] = r[0][r[0].find(".") + 1 :]
        yield r


def _row(key):
    """(position, row) of dotted ``key``, or None."""
    for i, r in enumerate(_rows()):
        if r[0] == key:
            return i, r
    return None


def _default(r):
    kind, d = r[2], r[5]
    if d == "!":
        return None
    if kind == "s":
        return ""
    if kind in "ic":
        return int(d)
    return [float(d)] * 10 if kind == "l" else float(d)


def _error(key, msg, path=None):
    text = "%s: %s" % (key, msg) if key else msg
    e = ConfigError("config %s: %s" % (path, text) if path else text)
    e.key = key
    return e


def _short(v):
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _check(r, v):
    """The value of field row ``r`` normalised; ConfigError saying what was expected otherwise."""
    kind, lo, hi = r[2], r[3], r[4]
    t = type(v)
    if kind == "k":
        n = int(lo)
        m = "expected %d hex characters (%d-byte HMAC key)" % (2 * n, n)
        if t is str and len(v) == 2 * n:
            try:
                return binascii.unhexlify(v)
            except ValueError:
                m += ", found a non-hex character"
        raise ConfigError(m)
    if kind == "s":
        if t is str and len(v) <= int(hi):
            return v
        raise ConfigError("expected a string of at most %s characters, got %s" % (hi, _short(v)))
    if kind == "l":  # 10 factors F1..F8, CLEAR, NIR
        if t is not list and t is not tuple or len(v) != 10:
            raise ConfigError("expected a list of 10 numbers (F1..F8, CLEAR, NIR), got " + _short(v))
        out = []
        for i in range(10):
            try:
                out.append(_check((0, 0, "n", lo, hi), v[i]))
            except ConfigError as e:
                raise ConfigError("item %d: %s" % (i, e))
        return out
    whole = kind in "ic"  # the rest are numbers: i, c integers; n, p stored as floats
    what = "an integer" if whole else "a number"
    if t is int or t is float and not whole:
        if kind == "c":
            if "/%d/" % v in "/" + lo + "/":
                return v
            what = "one of " + lo.replace("/", ", ")
        elif kind == "p":
            if 0 < v <= float(hi):
                return float(v)
            what = "a number > 0 (at most %s)" % hi
        elif float(lo) <= v <= float(hi):
            return v if whole else float(v)
        else:
            what = "%s %s..%s" % (what, lo, hi)
    raise ConfigError("expected %s, got %s" % (what, _short(v)))


def _cross(v):
    """Rules between keys on the value list ``v``: None, or (dotted keys involved, message)."""
    if v[_REPORT] % v[_SUMMARY]:
        return (_REPORT, _SUMMARY), "report_min %d is not a multiple of summary_min %d" % (v[_REPORT], v[_SUMMARY])
    if v[_GDD_CAP] < v[_GDD_BASE]:
        return (_GDD_CAP, _GDD_BASE), "cap_c %s is below base_c %s" % (v[_GDD_CAP], v[_GDD_BASE])
    p = (v[_SURVIVAL_BELOW], v[_SURVIVAL_ABOVE], v[_SAVER_BELOW], v[_SAVER_ABOVE])
    if not (p[0] < p[1] <= p[2] < p[3]):
        msg = "expected survival_below < survival_above <= saver_below < saver_above, got %s, %s, %s, %s" % p
        return (_SURVIVAL_BELOW, _SURVIVAL_ABOVE, _SAVER_BELOW, _SAVER_ABOVE), msg
    return None


def _keys(pos):
    """Dotted keys of the fields at positions ``pos``, in that order."""
    out = list(pos)
    for i, r in enumerate(_rows()):
        if i in pos:
            out[pos.index(i)] = r[0]
    return out


def _values(doc, path):
    """Value list from a parsed document, or raise ConfigError (the first problem found)."""
    if type(doc) is not dict:
        raise _error(None, "expected a JSON object at the top level", path)
    unknown = []
    for k in doc:
        if type(k) is not str or " " in k or ";" in k:
            unknown.append(str(k))
        elif ";%s." % k in _T:  # a section
            s = doc[k]
            if type(s) is not dict:
                raise _error(k, "expected an object", path)
            for n in s:
                if _row(k + "." + n) is None:
                    unknown.append(k + "." + n)
        elif "." in k or ";%s " % k not in _T:
            unknown.append(k)
    if unknown:
        unknown.sort()
        raise _error(None, "unknown keys: " + ", ".join(unknown), path)
    vals = []
    for r in _rows():
        sec, _, name = r[0].rpartition(".")
        src = doc.get(sec) or {} if sec else doc
        if name in src:
            try:
                vals.append(_check(r, src[name]))
            except ConfigError as e:
                raise _error(r[0], str(e), path)
        elif r[5] == "!":
            raise _error(r[0], "missing (required)", path)
        else:
            vals.append(_default(r))
    bad = _cross(vals)
    if bad:
        raise _error(_keys(bad[0])[0], bad[1], path)
    return vals


def load(path=DEFAULT_PATH):
    """Read and validate the config file; raises ConfigError naming the file and the key."""
    try:
        if os.stat(path)[6] == 0:
            raise _error(None, "empty file (provisioning interrupted?)", path)
        with open(path) as fh:
            doc = json.load(fh)
    except OSError as e:
        why = "missing (node not provisioned)" if e.errno == errno.ENOENT else "unreadable (OSError %s)" % e.errno
        raise _error(None, why, path)
    except (ValueError, UnicodeError) as e:
        raise _error(None, "corrupt JSON (%s)" % e, path)
    return Config(_values(doc, path))


def unprovisioned(uid_bytes, reason):
    """Safe defaults, no key, device_id = crc32 of the board uid (never 0); keeps ``reason``."""
    vals = []
    for r in _rows():
        vals.append(_default(r))
    vals[0] = binascii.crc32(bytes(uid_bytes)) & 0xFFFFFFFF or 0xFFFFFFFF  # device_id
    return Config(vals, False, reason)


def get(cfg, keys=None):
    """Flat dict dotted key -> value (see fieldnode.config_edit, loaded only when used)."""
    from fieldnode.config_edit import get as f

    return f(cfg, keys)


def save(cfg, path=DEFAULT_PATH):
    """Write ``cfg`` as JSON atomically (see fieldnode.config_edit)."""
    from fieldnode.config_edit import save as f

    f(cfg, path)


def apply_set(cfg, values, path=DEFAULT_PATH):
    """The gateway's config_set, all or nothing (see fieldnode.config_edit)."""
    from fieldnode.config_edit import apply_set as f

    return f(cfg, values, path)
