"""What the node sent, read the way a bench engineer asks: intervals, health, the field model's truth.

iv = intervals(bench.of_type("report"))         # [(start epoch s, samples)] in arrival order
fw_version()                                     # FW_VERSION from firmware/fieldnode/__init__.py
worst = worst_interval_error(reports, seed=1, quantity="air_temperature")   # virtual boards only
"""

import os
import re
import sys

from tools.paths import FIRMWARE_DIR

POWER_ON_CAUSES = ("power_on", "hard")  # a relay (power_on) or the EN pin (hard, on some chips power_on)


def fw_version():
    with open(os.path.join(FIRMWARE_DIR, "fieldnode", "__init__.py")) as f:
        return re.search(r'FW_VERSION = "([^"]+)"', f.read()).group(1)


def intervals(reports):
    """(start, samples, interval_min) of every interval summary in ``reports``, in arrival order."""
    out = []
    for m in reports:
        for j, n in enumerate(m["samples"]):
            out.append((m["start"] + 60 * m["interval_min"] * j, n, m["interval_min"]))
    return out


def health_records(messages):
    """Every health record (alone or riding on a report), oldest first; a riding one gets its report's end time."""
    hs = []
    for m in messages:
        if m["type"] == "report" and "health" in m:
            h = dict(m["health"])
            h.setdefault("time", m["start"] + 60 * m["interval_min"] * len(m["samples"]))
            hs.append(h)
        elif m["type"] == "health":
            hs.append(dict(m))
    for h in hs:
        h.setdefault("faults", [])
        h.setdefault("clock_offset_ms", 0)
    return sorted(hs, key=lambda h: h["time"])


def field_model(seed, lat=52.0, lon=5.0, alt_m=10.0):
    """The virtual field's model on CPython (the same code the virtual node's chips read)."""
    if FIRMWARE_DIR not in sys.path:
        sys.path.insert(0, FIRMWARE_DIR)
    from sim.field import FieldModel
    from sim.truth import Truth

    return FieldModel(lat, lon, alt_m, seed), Truth()


def worst_interval_error(reports, seed, attr="air_c", quantity="air_temperature", limit=None):
    """Worst |interval mean - truth mean over the interval's minutes| of ``quantity`` (virtual boards)."""
    fm, truth = field_model(seed)
    worst, n = 0.0, 0
    for m in reports[:limit]:
        means = m["stats"].get(quantity, {}).get("mean", [])
        step = 60 * m["interval_min"]
        for j, mean in enumerate(means):
            if mean is None:
                continue
            start = m["start"] + step * j
            vals = []
            for i in range(step // 60):
                fm.update(truth, start + 60 * i)
                vals.append(getattr(truth, attr))
            worst = max(worst, abs(mean - sum(vals) / len(vals)))
            n += 1
    return worst, n
