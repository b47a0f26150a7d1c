"""Reading and changing a loaded configuration: config_get, config_set, saving the file.

    values = get(cfg, ["intervals"]); applied, errors = apply_set(cfg, {"intervals.sample_s": 120}, path)

Split from fieldnode.config so that booting (which only loads and validates) carries less
code: the node imports this only for the gateway's rare config requests, and drops it again.
"""

import binascii
import json
import os
from array import array

from fieldnode.config import DEFAULT_PATH, _check, _cross, _keys, _row, _rows
from fieldnode.errors import ConfigError


def get(cfg, keys=None):
    """Flat dict dotted key -> value for ``keys`` (all when empty/None; a section name selects its
    keys). Never the HMAC key; unknown keys are left out."""
    out = {}
    for r in _rows():
        if r[0] == "key" or (keys and r[0] not in keys and r[0].rpartition(".")[0] not in keys):
            continue
        out[r[0]] = _plain(getattr(cfg, r[1]))
    return out


def _plain(v):
    """A list for a list or an array('f') (the node keeps calibration unboxed), else ``v``."""
    if type(v) is list or type(v) is array:
        return [round(x, 6) for x in v]
    return v


def _attrs(cfg):
    vals = []
    for r in _rows():
        vals.append(_plain(getattr(cfg, r[1])))
    return vals


def save(cfg, path=DEFAULT_PATH):
    """Write ``cfg`` as JSON atomically: "<path>.tmp" then rename over ``path``."""
    if not cfg.provisioned:
        raise ConfigError("config %s: an unprovisioned config has no key to save" % path)
    _write(_attrs(cfg), path)


def _write(vals, path):
    doc = {}
    for i, r in enumerate(_rows()):
        v = vals[i]
        if r[2] == "k":
            v = binascii.hexlify(v).decode()
        sec, _, name = r[0].rpartition(".")
        if sec:
            if sec not in doc:
                doc[sec] = {}
            doc[sec][name] = v
        else:
            doc[name] = v
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as fh:
            json.dump(doc, fh)
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
    applied = {}
    vals = _attrs(cfg)
    for k in values:
        f = _row(k)
        if not cfg.provisioned:
            errors[k] = "node is not provisioned"
        elif f is None:
            errors[k] = "unknown key"
        elif f[0] < 2:  # device_id, key
            errors[k] = "read-only (set by provisioning)"
        else:
            try:
                vals[f[0]] = applied[k] = _check(f[1], values[k])
            except ConfigError as e:
                errors[k] = str(e)
    if not errors:
        bad = _cross(vals)
        if bad:
            keys = _keys(bad[0])
            for k in [k for k in keys if k in values] or keys[:1]:
                errors[k] = bad[1]
    if not errors and applied:
        try:
            _write(vals, path)
        except OSError as e:
            for k in values:
                errors[k] = "not saved (OSError %s)" % e.errno
    if errors:
        return {}, errors
    for k in applied:
        setattr(cfg, _row(k)[1][1], applied[k])
    return applied, errors
