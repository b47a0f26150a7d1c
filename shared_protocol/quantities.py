"""The quantity vocabulary on the wire: compact id, stream name, SI unit, scaling, range.

    q = by_name("air_temperature")   # (8, "air_temperature", "degC", 2, -60.0, 70.0)
    q = by_id(8)                     # the same tuple

A value travels as the integer round(value * 10**decimals); lo..hi bound the physical
value. The id is the 1-based position in TABLE (ids < 24 cost one CBOR byte). The table
is one string, parsed on use, because every object costs heap on the node.
"""

# name:unit:decimals:lo:hi  -- id = position + 1; append only, never reorder.
TABLE = (
    "incident_shortwave:W m-2:0:0:2000,"
    "reflected_shortwave:W m-2:0:0:2000,"
    "incident_par:umol m-2 s-1:0:0:4000,"
    "ndvi:1:3:-1:1,"
    "chlorophyll_index:1:2:-10:50,"
    "canopy_temperature:degC:1:-60:90,"
    "sky_temperature:degC:1:-100:60,"
    "air_temperature:degC:1:-60:70,"
    "relative_humidity:%:1:0:100,"
    "air_pressure:Pa:-1:30000:125000,"
    "canopy_air_temperature_difference:K:1:-40:40,"
    "reflectance_red:1:4:0:2,"
    "reflectance_nir:1:4:0:2,"
    "reflectance_green:1:4:0:2,"
    "reflectance_rededge:1:4:0:2,"
    "dew_point:degC:1:-80:60,"
    "battery_voltage:V:3:0:20,"
    "battery_soc:%:1:0:100,"
    "solar_current:A:3:-5:5,"
    "tilt:deg:1:0:180,"
    "growing_degree_days:K d:2:0:100,"
    "reflectance_blue:1:4:0:2"
)


def _parse(qid, entry):
    p = entry.split(":")
    return (qid, p[0], p[1], int(p[2]), float(p[3]), float(p[4]))


def _entry(i):
    # the i-th (0-based) entry of TABLE, found without splitting the whole table
    pos = 0
    for _ in range(i):
        pos = TABLE.find(",", pos) + 1
        if pos == 0:
            return None
    end = TABLE.find(",", pos)
    return TABLE[pos:] if end < 0 else TABLE[pos:end]


def by_id(qid):
    """The quantity tuple for ``qid``, or None."""
    if not isinstance(qid, int) or isinstance(qid, bool) or qid < 1:
        return None
    entry = _entry(qid - 1)
    return None if entry is None else _parse(qid, entry)


def by_name(name):
    """The quantity tuple for stream name ``name``, or None."""
    if not isinstance(name, str) or not name or "," in name or ":" in name:
        return None
    key = name + ":"
    if TABLE.startswith(key):
        pos = 0
    else:
        pos = TABLE.find("," + key)
        if pos < 0:
            return None
        pos += 1
    i = TABLE.count(",", 0, pos)
    return _parse(i + 1, _entry(i))


def all_quantities():
    """Every quantity tuple, in id order."""
    entries = TABLE.split(",")
    return [_parse(i + 1, entries[i]) for i in range(len(entries))]


# What a node's interval summary carries, in the node's record order (the report's quantity
# set), and which of them also send their interval min/max; the rest travel as means.
INTERVAL_QUANTITIES = (
    "incident_shortwave",
    "ndvi",
    "chlorophyll_index",
    "canopy_temperature",
    "sky_temperature",
    "air_temperature",
    "relative_humidity",
    "air_pressure",
)
RANGED = ("incident_shortwave", "ndvi", "canopy_temperature", "air_temperature")
