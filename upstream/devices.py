"""Import the device -> customer/field mapping (and location, install tilt) from a CSV or TOML file.

    n = import_devices(store, "devices.csv")      # DevicesFileError names the file, line and column

CSV: a header line, then one device per line; columns (only ``device`` is required):
    device,customer,field,gateway,lat,lon,install_tilt_deg
    node-1007,Hillside Farms,North block,gw-hillside,45.51,9.20,1.5
TOML: ``[[devices]]`` tables with the same keys. ``device`` is the stream's source name
("node-1007"); a bare number means that node. An import is authoritative: records that carry a
customer or field later do not override it (upstream/store.py).
"""

import csv
import tomllib

from upstream.errors import DevicesFileError

TEXT = ("customer", "field", "gateway")
NUMBERS = ("lat", "lon", "install_tilt_deg")
COLUMNS = ("device",) + TEXT + NUMBERS


def _device(value, path, line):
    v = str(value).strip() if value is not None else ""
    if not v:
        raise DevicesFileError(path, line, "device: expected a device name like node-1007")
    return "node-%d" % int(v) if v.isdigit() else v


def _row(raw, path, line):
    unknown = sorted(set(raw) - set(COLUMNS))
    if unknown:
        raise DevicesFileError(path, line, "unknown column(s) %s; expected some of %s" % (unknown, ", ".join(COLUMNS)))
    out = {"device": _device(raw.get("device"), path, line)}
    for k in TEXT:
        v = raw.get(k)
        if v is not None and str(v).strip():
            out[k] = str(v).strip()
    for k in NUMBERS:
        v = raw.get(k)
        if v is None or (isinstance(v, str) and not v.strip()):
            continue
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise DevicesFileError(path, line, "%s: expected a number, got %r" % (k, v)) from None
    if "lat" in out and not -90 <= out["lat"] <= 90:
        raise DevicesFileError(path, line, "lat: expected -90..90, got %r" % out["lat"])
    if "lon" in out and not -180 <= out["lon"] <= 180:
        raise DevicesFileError(path, line, "lon: expected -180..180, got %r" % out["lon"])
    return out


def read_devices(path):
    """The file's rows as dicts (validated), without touching a store."""
    path = str(path)
    try:
        if path.endswith(".toml"):
            with open(path, "rb") as f:
                doc = tomllib.load(f)
            tables = doc.get("devices")
            if not isinstance(tables, list):
                raise DevicesFileError(path, None, "expected [[devices]] tables")
            return [_row(t, path, "devices[%d]" % i) for i, t in enumerate(tables)]
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "device" not in [c.strip() for c in reader.fieldnames]:
                raise DevicesFileError(path, 1, "expected a header line naming at least the column 'device'")
            return [_row({k.strip(): v for k, v in r.items() if k is not None}, path, reader.line_num)
                    for r in reader]  # fmt: skip
    except OSError as e:
        raise DevicesFileError(path, None, "cannot read: %s" % e.strerror) from None
    except tomllib.TOMLDecodeError as e:
        raise DevicesFileError(path, None, "not valid TOML: %s" % e) from None


def import_devices(store, path):
    """Assign every device of the file (creating unknown ones) in one transaction; returns the count."""
    rows = read_devices(path)
    with store.transaction():
        for r in rows:
            fields = {k: v for k, v in r.items() if k != "device"}
            store.device_ids([r["device"]])
            if "install_tilt_deg" in fields or fields:
                store.assign(r["device"], "import", **fields)
    return len(rows)
