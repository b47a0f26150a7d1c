"""Interval statistics on the wire: column-wise, delta-coded, loaded only for reports.

    row = stats_to_wire({"ndvi": {"mean": [...], "min": [...], "max": [...]}}, samples, 32, "report.stats")

Per quantity id, one CBOR array for n intervals:
    n means as scaled integers (the first absolute, the rest as differences from the
    previous non-null mean); then, if the quantity carries its range, n offsets
    mean - min and n offsets max - mean; then, only when some count differs from
    ``samples``, the n counts.
So a row has n (mean only), 2n (mean, count), 3n (mean, min, max) or 4n items. An
interval without data has null in its mean (and min/max) and count 0. A quantity with
no data in any interval is left out of the map. Decoding (the gateway's side: the node only
encodes) is stats_decode.stats_from_wire.
"""

from shared_protocol.catalogue import _err, _is_int, scale
from shared_protocol.quantities import by_name


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
