"""Interval statistics on the wire: column-wise, delta-coded, loaded only for reports.

    row = stats_to_wire({"ndvi": {"mean": [...], "min": [...], "max": [...]}}, samples, 32, "report.stats")

Per quantity id, one CBOR array for n intervals:
    n means as scaled integers (the first absolute, the rest as differences from the
    previous non-null mean); then, if the quantity carries its range, n offsets
    mean - min and n offsets max - mean; then, only when some count differs from
    ``samples``, the n counts.
So a row has n (mean only), 2n (mean, count), 3n (mean, min, max) or 4n items. An
interval without data has null in its mean (and min/max) and count 0. A quantity with
no data in any interval is left out of the map.
"""

from shared_protocol.catalogue import _err, _is_int, scale, unscale
from shared_protocol.quantities import by_id, by_name


def _col(s, col, n, w):
    c = s.get(col)
    if c is not None and (not isinstance(c, (list, tuple)) or len(c) != n):
        raise _err(w, "%r must be a list of %d values" % (col, n))
    return c


def stats_to_wire(stats, samples, maxn, where):
    """{quantity: {mean[, min, max][, count]}} -> {qid: row} (see the module doc)."""
    if not isinstance(stats, dict):
        raise _err(where, "expected a map of quantity -> statistics")
    if not isinstance(samples, (list, tuple)):
        raise _err(where, "needs the 'samples' list")
    n = len(samples)
    if n > maxn:
        raise _err(where, "%d intervals exceed %d" % (n, maxn))
    out = {}
    for name in stats:
        q = by_name(name)
        w = where + "." + str(name)
        if q is None:
            raise _err(w, "unknown quantity")
        qid, _, _, dec, lo, hi = q
        s = stats[name]
        if not isinstance(s, dict):
            raise _err(w, "expected a map with mean (and min, max, count)")
        means = _col(s, "mean", n, w)
        mins = _col(s, "min", n, w)
        maxs = _col(s, "max", n, w)
        counts = _col(s, "count", n, w)
        if means is None or (mins is None) != (maxs is None):
            raise _err(w, "needs 'mean', and 'min' and 'max' together")
        ranged = mins is not None
        row = [None] * ((3 if ranged else 1) * n)
        prev = None
        need_counts = False
        for i in range(n):
            if means[i] is None:
                continue
            wi = w + "[%d]" % i
            rm = scale(means[i], dec, lo, hi, wi + ".mean")
            row[i] = rm if prev is None else rm - prev
            prev = rm
            if ranged:
                rmn = scale(mins[i], dec, lo, hi, wi + ".min")
                rmx = scale(maxs[i], dec, lo, hi, wi + ".max")
                if rmn > rm or rmx < rm:
                    raise _err(wi, "expected min <= mean <= max")
                row[n + i] = rm - rmn
                row[2 * n + i] = rmx - rm
            if counts is not None and counts[i] != samples[i]:
                need_counts = True
        if prev is None:
            continue  # no data at all: leave the quantity out
        if need_counts:
            for i in range(n):
                c = counts[i] if means[i] is not None else 0
                if not _is_int(c) or c < 0 or c > 0xFFFF:
                    raise _err(w, "count[%d] must be an integer 0..65535" % i)
                row.append(c)
        out[qid] = row
    return out


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
