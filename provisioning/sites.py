"""Where each node stands: the host-side site record kept next to the gateway's device registry.

    book = SiteBook.beside("devices.toml")          # devices.sites.json in the same folder
    book.put(0x0F1E0003, {"customer": "acme", "field": "north", "lat": 52.1, ...}); book.save()
    poly = parse_boundary("52.10,5.10;52.10,5.20;52.20,5.20")     # [(lat, lon), ...]

The node's config holds only what the node needs (id, key, position); the customer, the field
and its boundary are the fleet's business and live here, one JSON object per device id. The file
holds no key material. Boundaries come as "lat,lon;lat,lon;..." or a file: GeoJSON (a Polygon,
a Feature or the first polygon of a FeatureCollection; GeoJSON orders lon, lat) or text with one
"lat,lon" per line (# comments). BadInput names the vertex or line at fault.
"""

import json
import os
import tempfile

from provisioning.errors import BadInput


class SiteBook:
    def __init__(self, path, devices=None):
        self.path = path
        self.devices = devices or {}

    @classmethod
    def beside(cls, registry_path):
        stem = os.path.splitext(os.path.abspath(registry_path))[0]
        return cls.load(stem + ".sites.json")

    @classmethod
    def load(cls, path):
        try:
            with open(path) as f:
                doc = json.load(f)
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as e:
            raise BadInput(
                "site record %s is unreadable (%s): expected the JSON file provisioning writes" % (path, e),
                "restore it from a backup, or move it away to start a new one",
            ) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("devices"), dict):
            raise BadInput('site record %s: expected an object with "devices"' % path)
        return cls(path, doc["devices"])

    def get(self, device_id):
        return self.devices.get(str(device_id))

    def put(self, device_id, record):
        """Store ``record`` for ``device_id``; True when it changed."""
        old = self.devices.get(str(device_id))
        if old == record:
            return False
        self.devices[str(device_id)] = record
        return True

    def save(self):
        folder = os.path.dirname(self.path) or "."
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".sites.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"version": 1, "devices": self.devices}, f, indent=1, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def _vertex(text, where):
    parts = text.replace(",", " ").split()
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError:
        raise BadInput('--boundary %s %r: expected "lat,lon" in decimal degrees' % (where, text.strip())) from None
    check_position(lat, lon, "--boundary " + where)
    return lat, lon


def check_position(lat, lon, what="--lat/--lon"):
    if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
        raise BadInput("%s %g, %g: expected latitude -90..90 and longitude -180..180 (decimal degrees)"
                       % (what, lat, lon))  # fmt: skip


def parse_boundary(spec):
    """[(lat, lon), ...] of a field boundary given as text or a file (see the module doc)."""
    if os.path.isfile(spec):
        with open(spec) as f:
            text = f.read()
        if text.lstrip().startswith("{"):
            poly = _geojson(text, spec)
        else:
            poly = []
            for n, line in enumerate(text.splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if line:
                    poly.append(_vertex(line, "%s line %d" % (spec, n)))
    else:
        items = [s for s in spec.split(";") if s.strip()]
        poly = [_vertex(s, "vertex %d" % (i + 1)) for i, s in enumerate(items)]
    if len(poly) > 1 and poly[0] == poly[-1]:
        poly = poly[:-1]  # closed ring: the last vertex repeats the first
    if len(set(poly)) < 3 or abs(_area(poly)) < 1e-12:
        raise BadInput("--boundary: %d distinct vertices enclosing no area: expected a polygon of at least 3 "
                       "corners of the field (lat,lon;lat,lon;lat,lon)" % len(set(poly)))  # fmt: skip
    return poly


def _geojson(text, path):
    try:
        doc = json.loads(text)
        if doc.get("type") == "FeatureCollection":
            doc = next(f for f in doc["features"] if f["geometry"]["type"] in ("Polygon", "MultiPolygon"))
        if doc.get("type") == "Feature":
            doc = doc["geometry"]
        rings = doc["coordinates"] if doc["type"] == "Polygon" else doc["coordinates"][0]
        return [_vertex("%s,%s" % (c[1], c[0]), "%s vertex %d" % (path, i + 1)) for i, c in enumerate(rings[0])]
    except (ValueError, KeyError, TypeError, IndexError, StopIteration, AttributeError):
        raise BadInput("--boundary %s: expected a GeoJSON Polygon (or a Feature/FeatureCollection holding one)"
                       % path) from None  # fmt: skip


def _area(poly):
    return sum(a[1] * b[0] - b[1] * a[0] for a, b in zip(poly, poly[1:] + poly[:1], strict=True)) / 2.0


def inside(lat, lon, poly):
    """Is (lat, lon) inside the polygon (ray casting on lon/lat; fine for a field's size)?"""
    hit = False
    for (ya, xa), (yb, xb) in zip(poly, poly[1:] + poly[:1], strict=True):
        if (ya > lat) != (yb > lat) and lon < xa + (lat - ya) * (xb - xa) / (yb - ya):
            hit = not hit
    return hit
