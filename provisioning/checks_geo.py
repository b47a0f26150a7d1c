"""Field boundaries: is the node's GNSS position inside the customer's field, and how far from its edge?

    field = Boundary([(52.0009, 4.9985), (52.0009, 5.0015), (51.9991, 5.0015), (51.9991, 4.9985)], name="north")
    field.contains(52.0, 5.0), field.edge_distance_m(52.0, 5.0)      # True, ~100.0
    field = load_site("north.toml")      # or .json: name = "north", boundary = [[lat, lon], ...]

(The command line's "lat,lon;lat,lon;..." and boundary files, GeoJSON included, are read by
provisioning.sites.parse_boundary, the same parser provisioning uses.)

A boundary is a simple polygon of (lat, lon) corners in degrees (WGS 84, the GNSS's datum), in
either order, closed implicitly. Inside/outside is the even-odd ray-casting rule on a local
equirectangular projection around the field (x = east metres, y = north metres), exact enough for
fields of a few km (distortion < 0.1 % over 5 km at mid latitudes); fields crossing the 180th
meridian or containing a pole are not supported. Bad input raises SiteError naming what is wrong.
"""

import json
import math
import tomllib

from provisioning.checks_result import CheckError

M_PER_DEG = 111320.0  # metres per degree of latitude (and of longitude at the equator)


class SiteError(CheckError):
    """A boundary or site file that cannot be used; the message names the problem."""


class Boundary:
    def __init__(self, corners, name=""):
        pts = [(float(a), float(b)) for a, b in corners]
        if len(pts) > 1 and pts[0] == pts[-1]:
            pts.pop()  # a closed ring: the last corner repeats the first
        if len(pts) < 3:
            raise SiteError("a field boundary needs at least 3 corners (lat, lon), got %d" % len(pts))
        for lat, lon in pts:
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise SiteError("boundary corner (%s, %s) is not a latitude, longitude in degrees" % (lat, lon))
        self.corners, self.name = pts, name
        self.lat0 = sum(p[0] for p in pts) / len(pts)
        self.lon0 = sum(p[1] for p in pts) / len(pts)
        self._xy = [self._project(lat, lon) for lat, lon in pts]

    def _project(self, lat, lon):
        return ((lon - self.lon0) * M_PER_DEG * math.cos(math.radians(self.lat0)), (lat - self.lat0) * M_PER_DEG)

    def contains(self, lat, lon):
        """Even-odd rule: True when (lat, lon) lies inside the polygon."""
        x, y = self._project(lat, lon)
        inside = False
        pts = self._xy
        j = len(pts) - 1
        for i in range(len(pts)):
            xi, yi = pts[i]
            xj, yj = pts[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside

    def edge_distance_m(self, lat, lon):
        """Distance in metres from (lat, lon) to the nearest edge of the boundary."""
        px, py = self._project(lat, lon)
        best = math.inf
        pts = self._xy
        for i in range(len(pts)):
            (ax, ay), (bx, by) = pts[i - 1], pts[i]
            dx, dy = bx - ax, by - ay
            seg = dx * dx + dy * dy
            t = 0.0 if seg == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / seg))
            best = min(best, math.hypot(px - (ax + t * dx), py - (ay + t * dy)))
        return best

    def describe(self):
        return "field %s" % (repr(self.name) if self.name else "boundary (%d corners)" % len(self.corners))


def load_site(path):
    """A Boundary from a site file: TOML or JSON with ``boundary = [[lat, lon], ...]`` and optional ``name``."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SiteError("site file %s: %s" % (path, e.strerror or e)) from None
    try:
        doc = json.loads(raw) if str(path).endswith(".json") else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise SiteError("site file %s: not valid %s (%s)" % (path, "JSON" if str(path).endswith(".json") else "TOML",
                                                             e)) from None  # fmt: skip
    corners = doc.get("boundary") if isinstance(doc, dict) else None
    if not isinstance(corners, list) or not all(isinstance(c, list | tuple) and len(c) == 2 for c in corners):
        raise SiteError("site file %s: expected boundary = [[lat, lon], ...] (degrees)" % path)
    try:
        return Boundary(corners, str(doc.get("name", "")))
    except (TypeError, ValueError, SiteError) as e:
        raise SiteError("site file %s: %s" % (path, e)) from None
