"""Interval statistics from the wire: the inverse of stats.stats_to_wire (see its module doc).

    stats = stats_from_wire({8: [214, 1, None, 5, 2, 1, None, 1, 2, 2, None, 1]}, [15, 15, 15, 12], 32, "report.stats")

The gateway's side: the node only encodes statistics, so it never loads this module.
"""

from shared_protocol.catalogue import _err, _is_int, unscale
from shared_protocol.quantities import by_id


def stats_from_wire(wire, samples, maxn, where):
    """Inverse of stats_to_wire; every structural fault is a SchemaError."""
    if not isinstance(wire, dict):
        raise _err(where, "expected a map of quantity id -> columns")
    if samples is None:
        raise _err(where, "needs the 'samples' list")
    n = len(samples)
    out = {}
    for qid in wire:
        q = by_id(qid) if _is_int(qid) else None
        if q is None:
            raise _err(where, "unknown quantity id %r" % (qid,))
        _, name, _, dec, lo, hi = q
        w = where + "." + name
        row = wire[qid]
        if not isinstance(row, list) or n == 0 or len(row) % n or not (1 <= len(row) // n <= 4):
            raise _err(w, "expected %d, %d, %d or %d columns for %d intervals" % (n, 2 * n, 3 * n, 4 * n, n))
        k = len(row) // n
        ranged = k >= 3
        has_counts = k in (2, 4)
        means = [None] * n
        mins = [None] * n if ranged else None
        maxs = [None] * n if ranged else None
        counts = [0] * n
        prev = None
        for i in range(n):
            d = row[i]
            lo_off = row[n + i] if ranged else 0
            hi_off = row[2 * n + i] if ranged else 0
            if d is None:
                if ranged and (lo_off is not None or hi_off is not None):
                    raise _err(w, "interval %d has min/max but no mean" % i)
                continue
            if not (_is_int(d) and _is_int(lo_off) and _is_int(hi_off)):
                raise _err(w, "interval %d: expected integers" % i)
            if lo_off < 0 or hi_off < 0:
                raise _err(w, "interval %d: min/max offsets must be >= 0" % i)
            rm = d if prev is None else prev + d
            prev = rm
            wi = w + "[%d]" % i
            means[i] = unscale(rm, dec, lo, hi, wi + ".mean")
            if ranged:
                mins[i] = unscale(rm - lo_off, dec, lo, hi, wi + ".min")
                maxs[i] = unscale(rm + hi_off, dec, lo, hi, wi + ".max")
            if has_counts:
                c = row[(k - 1) * n + i]
                if not _is_int(c) or c < 0 or c > 0xFFFF:
                    raise _err(w, "count[%d] must be an integer 0..65535" % i)
                counts[i] = c
            else:
                counts[i] = samples[i]
        s = {"mean": means, "count": counts}
        if ranged:
            s["min"] = mins
            s["max"] = maxs
        out[name] = s
    return out
