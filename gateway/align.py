"""Alignment: readings from every source onto one UTC grid, with per-quantity rules and gaps.

    al = Aligner(grid_s=900, rules={"precipitation": "sum"}, lateness_s=7200)
    al.add_series("node-7", "node", "ndvi", [t0, t0 + 900], 900, [0.71, 0.72], [0.70, 0.71], [0.72, 0.73], [15, 15])
    al.add("sdi12-north", "probe-1", "soil_water_content", 0.31, t, "m3 m-3")
    rows = al.take()                     # columns of aligned rows (gateway.stream.READING_FIELDS)

A cell is [ts, ts + grid_s) in UTC. A summary (a span with n samples, mean, min, max) lands in
the cell that holds its midpoint; a summary that covers its whole cell is final at once (the
node's 15-minute summaries on a 15-minute grid: the common case, done column by column). All
else waits in an open cell until the source has moved ``lateness_s`` past it (or ``flush(now)``
finds it that old by the clock), then goes out with PARTIAL if its data cover less than the cell.
A cell missing between two a series delivered is sent as a GAP row (value null); data that
arrive for a cell already sent go out again as a revision (rev + 1, LATE).

Rules: mean (sample-weighted), sum (of values; summaries contribute mean x n), last, min, max.
"""

import numpy as np

from gateway.stream import DEFAULT_RULES, GAP, LATE, PARTIAL, RULES, UNITS, rows_from_columns

MAX_GAP_ROWS = 7 * 96  # gap rows per series and jump; a longer silence is marked by its first week
RUN_FIELDS = ("source", "sensor", "quantity", "unit", "rule", "flags", "rev", "count")
VALUE_FIELDS = ("ts", "value", "min", "max", "n")


_DTYPES = {"ts": np.int64, "value": np.float64, "min": np.float64, "max": np.float64, "n": np.int64}


def _empty():
    return {"runs": {f: [] for f in RUN_FIELDS}, **{f: [] for f in VALUE_FIELDS}}


def _seal(cols, chunks):
    """Move the Python lists of per-reading values into a numpy chunk (None -> NaN)."""
    if cols["ts"]:
        chunks.append({f: np.array(cols[f], dtype=_DTYPES[f]) for f in VALUE_FIELDS})
        for f in VALUE_FIELDS:
            cols[f] = []


class _Series:
    __slots__ = ("al", "idx", "sent", "unit", "rule")

    def __init__(self, al, idx, unit, rule):
        self.al = al
        self.idx = idx  # index into the aligner's arrays (the column fast path reads them in bulk)
        self.sent = {}  # cell start -> rev, for cells within the lateness window
        self.unit = unit
        self.rule = rule

    @property
    def last(self):
        """Start of the newest cell sent (epoch s), or None."""
        v = self.al.last_arr[self.idx]
        return None if v != v else int(v)

    @last.setter
    def last(self, v):
        self.al.last_arr[self.idx] = np.nan if v is None else v


class _Cell:
    __slots__ = ("n", "wsum", "vsum", "vmin", "vmax", "last_ts", "last_v", "covered", "flags")

    def __init__(self):
        self.n = 0
        self.wsum = 0.0
        self.vsum = 0.0
        self.vmin = None
        self.vmax = None
        self.last_ts = None
        self.last_v = None
        self.covered = 0.0
        self.flags = 0


class Aligner:
    def __init__(self, grid_s=900, rules=None, lateness_s=7200):
        if grid_s <= 0 or 86400 % grid_s:
            raise ValueError("grid_s must divide a day, got %r" % (grid_s,))
        self.grid_s = grid_s
        self.rules = dict(DEFAULT_RULES)
        self.rules.update(rules or {})
        for q, r in self.rules.items():
            if r not in RULES:
                raise ValueError("rule for %s must be one of %s, got %r" % (q, ", ".join(RULES), r))
        self.lateness_s = lateness_s
        self.series = {}  # (source, sensor, quantity) -> _Series
        self.last_arr = np.full(64, np.nan)  # series index -> newest cell sent (NaN: none yet)
        self.fast_arr = np.zeros(64, dtype=bool)  # series index -> its rule takes a summary's mean as is
        self.rule_list = []  # series index -> rule
        self.node_sid = {}  # (source, quantity id) -> series index, for gateway.columns
        self.by_source = {}  # source -> [series keys]
        self.by_source_idx = {}  # source -> [series indexes], same order
        self.open = {}  # (source, sensor, quantity, cell) -> _Cell
        self.watermark = {}  # source -> newest data time seen
        self.dirty = set()  # sources whose state changed since pop_dirty()
        self.cols = _empty()
        self.chunks = []  # numpy chunks of per-reading values, in order, before the lists in cols
        self.rows_out = 0
        self.gap_rows = 0
        self.revisions = 0

    # ---- input ----
    def _series(self, key, unit):
        s = self.series.get(key)
        if s is None:
            idx = len(self.rule_list)
            if idx >= len(self.last_arr):
                self.last_arr = np.concatenate([self.last_arr, np.full(len(self.last_arr), np.nan)])
                self.fast_arr = np.concatenate([self.fast_arr, np.zeros(len(self.fast_arr), dtype=bool)])
            rule = self.rules.get(key[2], "mean")
            s = self.series[key] = _Series(self, idx, unit or UNITS.get(key[2], "1"), rule)
            self.rule_list.append(rule)
            self.fast_arr[idx] = rule in ("mean", "last")
            self.by_source.setdefault(key[0], []).append(key)
            self.by_source_idx.setdefault(key[0], []).append(idx)
        return s

    def node_series(self, source, qid, name):
        """Series index of a node quantity (created on first use)."""
        k = (source, qid)
        i = self.node_sid.get(k)
        if i is None:
            i = self.node_sid[k] = self._series((source, "node", name), None).idx
        return i

    def add_series(self, source, sensor, quantity, starts, span_s, means, mins, maxs, counts, flags=0, unit=None):
        """Summaries of one quantity over consecutive spans (lists; a None mean is no data)."""
        key = (source, sensor, quantity)
        s = self._series(key, unit)
        g = self.grid_s
        if span_s == g and s.rule in ("mean", "last"):
            cells = [((t + span_s / 2) // g) * g for t in starts]
            if all(c == t for c, t in zip(cells, starts, strict=True)) and None not in means and self._fresh(s, cells):
                self._emit_columns(key, s, cells, means, mins or means, maxs or means, counts, flags)
                self._advance(source, starts[-1] + span_s)
                return
        for i in range(len(starts)):
            if means[i] is None:
                continue
            self._add_one(
                key,
                s,
                starts[i],
                span_s,
                means[i],
                mins[i] if mins else means[i],
                maxs[i] if maxs else means[i],
                counts[i],
                flags,
            )
        if starts:
            self._advance(source, starts[-1] + span_s)

    def add(self, source, sensor, quantity, value, ts, unit=None, flags=0):
        """One instantaneous reading."""
        key = (source, sensor, quantity)
        s = self._series(key, unit)
        self._add_one(key, s, ts, 0, value, value, value, 1, flags)
        self._advance(source, ts)

    def _fresh(self, s, cells):
        # the column fast path: strictly increasing, after everything sent, no gap before the first
        prev = s.last
        for c in cells:
            if prev is not None and c != prev + self.grid_s:
                return False
            prev = c
        return True

    def _add_one(self, key, s, ts, span_s, mean, vmin, vmax, n, flags):
        g = self.grid_s
        cell = ((ts + span_s / 2) // g) * g
        ck = key + (cell,)
        c = self.open.get(ck)
        if c is None:
            c = self.open[ck] = _Cell()
        w = n if n else 1
        c.n += n
        c.wsum += w
        c.vsum += mean * w
        c.vmin = vmin if c.vmin is None or vmin < c.vmin else c.vmin
        c.vmax = vmax if c.vmax is None or vmax > c.vmax else c.vmax
        if c.last_ts is None or ts >= c.last_ts:
            c.last_ts, c.last_v = ts, mean
        c.covered += span_s
        c.flags |= flags
        if span_s and c.covered >= g:
            self._close(ck, c)

    def claim(self, source, sensor, quantity, first, n, span_s, unit=None):
        """The column fast path's test: ``n`` summaries of one grid cell each, from grid-aligned
        ``first``, continuing the series (no gap, nothing sent there yet) and a rule that takes a
        summary's mean as is. If so the series advances and the rule is returned (the caller adds
        the rows with append_columns), else None (use add_series)."""
        g = self.grid_s
        if span_s != g or first % g:
            return None
        key = (source, sensor, quantity)
        s = self.series.get(key)
        if s is None:
            s = self._series(key, unit)
        if s.rule not in ("mean", "last") or (s.last is not None and s.last + g != first):
            return None
        s.last = first + (n - 1) * g
        end = s.last + g
        if end > self.watermark.get(source, 0):
            self.watermark[source] = end
        self.dirty.add(source)
        return s.rule

    def series_for(self, source, sensor, quantity, unit=None):
        """The series state of (source, sensor, quantity) (created on first use): .last, .rule."""
        s = self.series.get((source, sensor, quantity))
        return s if s is not None else self._series((source, sensor, quantity), unit)

    def append_columns(self, c):
        """Runs the caller aligned itself (gateway.columns): per run lists source, quantity, flags,
        rule, count (sensor "node", unit from the quantity, rev 0); per reading lists ts (cell start,
        epoch s), value, min, max, n."""
        runs = self.cols["runs"]
        k = len(c["source"])
        runs["source"].extend(c["source"])
        runs["sensor"].extend(["node"] * k)
        runs["quantity"].extend(c["quantity"])
        runs["unit"].extend([UNITS.get(q, "1") for q in c["quantity"]])
        for f in ("rule", "flags", "count"):
            runs[f].extend(c[f])
        runs["rev"].extend([0] * k)
        _seal(self.cols, self.chunks)
        self.chunks.append({f: np.asarray(c[f], dtype=_DTYPES[f]) for f in VALUE_FIELDS})
        self.rows_out += len(c["ts"])

    def pop_dirty(self):
        d = self.dirty
        self.dirty = set()
        return d

    def _advance(self, source, t):
        self.dirty.add(source)
        if t > self.watermark.get(source, 0):
            self.watermark[source] = t

    # ---- output ----
    def _emit_columns(self, key, s, cells, means, mins, maxs, counts, flags):
        cols = self.cols
        m = len(cells)
        if s.last is not None and cells[0] > s.last + self.grid_s:
            self._gaps(key, s, s.last + self.grid_s, cells[0])
        self._run(key, s.unit, s.rule, flags, 0, m)
        cols["ts"].extend(cells)
        cols["value"].extend(means)
        cols["min"].extend(mins)
        cols["max"].extend(maxs)
        cols["n"].extend(counts)
        self.rows_out += m
        s.last = cells[-1]
        self._remember(s, cells, 0)

    def _remember(self, s, cells, rev):
        sent = s.sent
        for c in cells:
            sent[c] = rev
        if len(sent) > 4 * (self.lateness_s // self.grid_s + 8):
            horizon = s.last - self.lateness_s - self.grid_s
            for c in [c for c in sent if c < horizon]:
                del sent[c]

    def _run(self, key, unit, rule, flags, rev, count):
        runs = self.cols["runs"]
        src = runs["source"]
        i = len(src) - 1
        if (
            i >= 0
            and src[i] == key[0]
            and runs["sensor"][i] == key[1]
            and runs["quantity"][i] == key[2]
            and runs["flags"][i] == flags
            and runs["rev"][i] == rev
            and runs["rule"][i] == rule
        ):
            runs["count"][i] += count  # the same series goes on: one run
            return
        for f, v in zip(RUN_FIELDS, (key[0], key[1], key[2], unit, rule, flags, rev, count), strict=True):
            runs[f].append(v)

    def _row(self, key, s, cell, value, vmin, vmax, n, flags, rev):
        self._run(key, s.unit, s.rule, flags, rev, 1)
        cols = self.cols
        cols["ts"].append(cell)
        cols["value"].append(value)
        cols["min"].append(vmin)
        cols["max"].append(vmax)
        cols["n"].append(n)
        self.rows_out += 1

    def _gaps(self, key, s, first, end):
        g = self.grid_s
        cells = []
        c = first
        while c < end and len(cells) < MAX_GAP_ROWS:
            cells.append(c)
            c += g
        for c in cells:
            self._row(key, s, c, None, None, None, 0, GAP, 0)
        self.gap_rows += len(cells)
        self._remember(s, cells, -1)  # -1: sent as a gap

    def _close(self, ck, c):
        del self.open[ck]
        self.dirty.add(ck[0])
        key, cell = ck[:3], ck[3]
        s = self.series[key]
        rule = s.rule
        if rule == "mean":
            value = c.vsum / c.wsum if c.wsum else None
        elif rule == "sum":
            value = c.vsum
        elif rule == "last":
            value = c.last_v
        elif rule == "min":
            value = c.vmin
        else:
            value = c.vmax
        flags = c.flags
        if c.covered < self.grid_s and c.covered:
            flags |= PARTIAL
        prev = s.sent.get(cell)
        rev = 0
        if prev is not None or (s.last is not None and cell <= s.last):
            # a cell already sent (as data or as a gap), or one behind the series: a revision
            rev = (prev + 1) if prev is not None and prev >= 0 else 1
            flags |= LATE
            self.revisions += 1
        elif s.last is not None and cell > s.last + self.grid_s:
            self._gaps(key, s, s.last + self.grid_s, cell)
        self._row(key, s, cell, value, c.vmin, c.vmax, c.n, flags, rev)
        if s.last is None or cell > s.last:
            s.last = cell
        self._remember(s, [cell], rev)

    def flush(self, now=None):
        """Close open cells whose source moved ``lateness_s`` past them, or (``now``) that old by the clock."""
        g = self.grid_s
        due = []
        for ck in self.open:
            end = ck[3] + g
            wm = self.watermark.get(ck[0], 0)
            if end + self.lateness_s <= wm or (now is not None and end + self.lateness_s <= now):
                due.append(ck)
        due.sort(key=lambda k: k[3])
        for ck in due:
            self._close(ck, self.open[ck])
        return len(due)

    def close_all(self):
        """Close every open cell now (shutdown with nothing to lose: their inputs are stored raw)."""
        for ck in sorted(self.open, key=lambda k: k[3]):
            self._close(ck, self.open[ck])

    # ---- persistence: the store writes a source's snapshot with every intake of that source ----
    def snapshot(self, source):
        """JSON-able state of ``source``'s series (newest cell sent) and open cells."""
        keys = self.by_source.get(source, ())
        idx = self.by_source_idx.get(source, ())
        lasts = self.last_arr[idx].tolist() if idx else []
        last = {"%s|%s" % (k[1], k[2]): int(v) for k, v in zip(keys, lasts, strict=True) if v == v}
        cells = [
            [k[1], k[2], k[3], c.n, c.wsum, c.vsum, c.vmin, c.vmax, c.last_ts, c.last_v, c.covered, c.flags]
            for k, c in (self.open.items() if self.open else ())
            if k[0] == source
        ]
        units = {
            "%s|%s" % (k[1], k[2]): self.series[k].unit for k in keys if self.series[k].unit != UNITS.get(k[2], "1")
        }
        snap = {"last": last, "open": cells, "wm": self.watermark.get(source)}
        if units:
            snap["units"] = units
        return snap

    def restore(self, source, snap):
        """Inverse of snapshot (after a restart, before any new data of ``source``)."""
        for sk, unit in snap.get("units", {}).items():
            sensor, quantity = sk.split("|", 1)
            self._series((source, sensor, quantity), unit)
        for sk, last in snap.get("last", {}).items():
            sensor, quantity = sk.split("|", 1)
            self._series((source, sensor, quantity), None).last = last
        for sensor, quantity, cell, *vals in snap.get("open", []):
            self._series((source, sensor, quantity), None)
            c = self.open[(source, sensor, quantity, cell)] = _Cell()
            c.n, c.wsum, c.vsum, c.vmin, c.vmax, c.last_ts, c.last_v, c.covered, c.flags = vals
        if snap.get("wm"):
            self.watermark[source] = snap["wm"]

    def take(self):
        """The aligned rows produced since the last take (and clear them): {"runs": {RUN_FIELDS:
        lists, one entry per run of consecutive readings of one series}, VALUE_FIELDS: numpy arrays,
        one entry per reading (ts: cell start, epoch s, int64; value/min/max float64, NaN = none;
        n int64)}. gateway.stream documents the format."""
        out = self.cols
        _seal(out, self.chunks)
        for f in VALUE_FIELDS:
            parts = [c[f] for c in self.chunks]
            out[f] = np.concatenate(parts) if parts else np.zeros(0, dtype=_DTYPES[f])
        self.cols = _empty()
        self.chunks = []
        return out


def rows_of(cols):
    """take()'s columns -> row dicts with every field of gateway.stream.READING_FIELDS (ts ISO text)."""
    return rows_from_columns(cols)
