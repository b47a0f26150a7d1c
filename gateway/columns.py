"""Interval statistics of many reports decoded and aligned at once (numpy), for the hot path.

    rows = RawRows(aligner)
    rows.add(j, source, flags, starts, span_s, samples, stats_raw, qflags)   # one per report (after dedup)
    bad = rows.decode_align(aligner)        # indexes j whose values broke the catalogue's rules

A report's statistics travel column-wise (shared_protocol.stats): per quantity, delta-coded
scaled means, then min/max offsets, then counts. Rows of the same shape (n intervals, k
columns) from a whole intake batch are stacked into one int64 matrix and decoded in a few
numpy operations with exactly the catalogue's arithmetic (``raw / 10**dec``, or
``float(raw * 10**-dec)``) and its checks (integers only, offsets >= 0, values within the
quantity's range with one step of slack, counts 0..65535). A row with a null (an interval
without data), a non-integer or anything else irregular is decoded one by one instead
(gateway.wire.stats_of rules). Decoded rows whose intervals are grid cells that continue their
series go straight into the aligner's columns; the others take Aligner.add_series.
"""

from itertools import chain

import numpy as np

from gateway.wire import _Q, _Slow, _stats

_QIDS = sorted(_Q)
_NQ = max(_QIDS) + 1
_NAME = np.empty(_NQ, dtype=object)
_DIVF = np.ones(_NQ)
_MULI = np.ones(_NQ, dtype=np.int64)
_LO = np.zeros(_NQ)
_HI = np.zeros(_NQ)
for _qid, (_name, _div, _mul, _lo, _hi) in _Q.items():
    _NAME[_qid] = _name
    if _div is not None:
        _DIVF[_qid] = float(_div)
    else:
        _MULI[_qid] = _mul
    _LO[_qid] = _lo
    _HI[_qid] = _hi
_INT = {int}
_RAW_LIMIT = 1 << 40  # |wire integers| below this cannot overflow int64 in a 32-interval cumsum
_FAST_RULES = ("mean", "last")


class RawRows:
    def __init__(self, aligner):
        self.aligner = aligner
        self.items = []  # idx -> (j, source, flags, starts, span_s, samples, qflags)
        self.groups = {}  # (n, k) -> ([row], [qid], [item idx], [series index])
        self.irregular = []  # (idx, qid, row)
        self.decoded = []  # (idx, quantity name, stats dict) already decoded (partial resends)
        self._sids = {}  # (source, qid tuple) -> series indexes: one lookup per report, not per row

    def _series(self, source, qids):
        key = (source, qids)
        sids = self._sids.get(key)
        if sids is None:
            ns = self.aligner.node_series
            sids = self._sids[key] = [ns(source, q, _NAME[q]) for q in qids]
        return sids

    def add(self, j, source, flags, starts, span_s, samples, stats_raw, qflags):
        self.items.append((j, source, flags, starts, span_s, samples, qflags))
        idx = len(self.items) - 1
        n = len(starts)
        groups = self.groups
        rows = stats_raw.values()
        lens = set(map(len, rows))
        if len(lens) == 1:  # the usual report: every quantity has the same columns
            key = (n, lens.pop() // n)
            g = groups.get(key)
            if g is None:
                g = groups[key] = ([], [], [], [])
            qids = tuple(stats_raw)
            g[0].extend(rows)
            g[1].extend(qids)
            g[2].extend([idx] * len(qids))
            g[3].extend(self._series(source, qids))
            return
        for qid, row in stats_raw.items():
            key = (n, len(row) // n)
            g = groups.get(key)
            if g is None:
                g = groups[key] = ([], [], [], [])
            g[0].append(row)
            g[1].append(qid)
            g[2].append(idx)
            g[3].append(self._series(source, (qid,))[0])

    def add_decoded(self, j, source, flags, starts, span_s, samples, stats, qflags, sensor="node"):
        """A report's statistics decoded already (e.g. the new part of a partly resent report)."""
        self.items.append((j, source, flags, starts, span_s, samples, qflags))
        idx = len(self.items) - 1
        for name, st in stats.items():
            self.decoded.append((idx, name, st))

    def _shared_series(self):
        """(source, quantity name) of series whose rows are in more than one group or off the bulk
        path: those go one by one, in time order (a series must advance in order)."""
        if len(self.groups) <= 1 and not self.decoded and not self.irregular:
            return set()
        items = self.items
        seen = {}
        shared = set()
        for gi, (_rows, qids, idxs, _sids) in enumerate(self.groups.values()):
            for q, i in zip(qids, idxs, strict=True):
                k = (items[i][1], _NAME[q])
                if seen.setdefault(k, gi) != gi:
                    shared.add(k)
        for idx, _qid, _row in self.irregular:
            shared.add((items[idx][1], _NAME[_qid]))
        for idx, name, _st in self.decoded:
            shared.add((items[idx][1], name))
        return shared

    def decode_align(self, aligner):
        """Decode every row, feed the aligner; returns the set of item indexes ``j`` that were bad."""
        bad = set()
        decoded = []  # (idx, qid, means, mins, maxs, counts) of rows off the fast path
        fast = []  # (n, idx array, qid array, means, mins, maxs, counts matrices)
        for (n, k), (rows, qids, idxs, sids) in self.groups.items():
            ok_rows = self._regular(rows)
            if ok_rows is not None and len(ok_rows) != len(rows):
                for r in range(len(rows)):
                    if r not in ok_rows:
                        self.irregular.append((idxs[r], qids[r], rows[r]))
                sel = sorted(ok_rows)
                rows = [rows[r] for r in sel]
                qids = [qids[r] for r in sel]
                idxs = [idxs[r] for r in sel]
                sids = [sids[r] for r in sel]
            elif ok_rows is None:
                for r in range(len(rows)):
                    self.irregular.append((idxs[r], qids[r], rows[r]))
                continue
            if not rows:
                continue
            res = self._matrix(n, k, rows, qids, idxs, sids)
            if res is None:  # a bad value somewhere: find the rows one by one
                for r in range(len(rows)):
                    self.irregular.append((idxs[r], qids[r], rows[r]))
                continue
            fast.append(res)
        for idx, qid, row in self.irregular:
            item = self.items[idx]
            try:
                s = _stats({qid: row}, item[5])
            except _Slow:
                bad.add(idx)
                continue
            ((name, st),) = s.items()
            decoded.append((idx, name, st))
        decoded.extend(self.decoded)
        bad_j = {self.items[i][0] for i in bad}
        self._emit(aligner, fast, decoded, bad, self._shared_series())
        return bad_j

    @staticmethod
    def _regular(rows):
        """Indexes of rows holding only ints (all of them: returns the full range quickly)."""
        if set(map(type, chain.from_iterable(rows))) == _INT:
            return range(len(rows))
        out = set()
        for r, row in enumerate(rows):
            if set(map(type, row)) == _INT:
                out.add(r)
        return out if out else None

    def _matrix(self, n, k, rows, qids, idxs, sids):
        try:
            a = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=len(rows) * n * k).reshape(
                len(rows), n * k
            )
        except (OverflowError, ValueError):
            return None
        if len(a) and np.abs(a).max() >= _RAW_LIMIT:
            return None  # far outside any quantity's range: the exact (Python int) path decides
        q = np.array(qids)
        raw = np.cumsum(a[:, :n], axis=1)
        div = _DIVF[q][:, None]
        mul = _MULI[q][:, None]
        lo = _LO[q][:, None]
        hi = _HI[q][:, None]
        means = (raw * mul) / div
        if k >= 3:
            off_lo = a[:, n : 2 * n]
            off_hi = a[:, 2 * n : 3 * n]
            if (off_lo < 0).any() or (off_hi < 0).any():
                return None
            mins = ((raw - off_lo) * mul) / div
            maxs = ((raw + off_hi) * mul) / div
            if (mins < lo).any() or (maxs > hi).any():
                return None
        else:
            if (means < lo).any() or (means > hi).any():
                return None
            mins = maxs = None
        if k in (2, 4):
            counts = a[:, (k - 1) * n :]
            if (counts < 0).any() or (counts > 0xFFFF).any():
                return None
        else:
            counts = np.array([self.items[i][5] for i in idxs], dtype=np.int64)
        return n, idxs, qids, sids, means, mins, maxs, counts

    def _emit(self, aligner, fast, decoded, bad, slow_keys):
        items = self.items
        g = aligner.grid_s
        seq = []  # rows that go one by one through add_series, in time order
        for idx, name, st in decoded:
            if idx in bad:
                continue
            seq.append((items[idx][3][0], idx, name, st["mean"], st.get("min"), st.get("max"), st["count"]))
        for n, idxs, qids, sids, means, mins, maxs, counts in fast:
            self._bulk(aligner, g, n, idxs, qids, sids, means, mins, maxs, counts, bad, slow_keys, seq)
        seq.sort(key=lambda r: r[0])
        for _first, idx, name, mean, vmin, vmax, count in seq:
            _j, source, flags, starts, span_s, samples, qflags = items[idx]
            aligner.add_series(
                source, "node", name, starts, span_s, mean, vmin, vmax, count, flags | qflags.get(name, 0)
            )

    def _bulk(self, aligner, g, n, idxs, qids, sids, means, mins, maxs, counts, bad, slow_keys, seq):
        """Rows whose series continue cell by cell go into the aligner's columns at once."""
        items = self.items
        m = len(idxs)
        idx_a = np.array(idxs)
        q_a = np.array(qids)
        names = _NAME[q_a]
        item_src = np.array([it[1] for it in items], dtype=object)
        sid = np.array(sids)
        item_first = np.array([it[3][0] for it in items], dtype=np.float64)
        item_span = np.array([it[4] for it in items], dtype=np.float64)
        firsts = item_first[idx_a]
        ok = aligner.fast_arr[sid] & (item_span[idx_a] == g) & (np.fmod(firsts, g) == 0)
        if bad:
            ok &= ~np.isin(idx_a, list(bad))
        if slow_keys:
            ok &= np.array([(items[i][1], nm) not in slow_keys for i, nm in zip(idxs, names, strict=True)])
        stored = aligner.last_arr[sid]
        order = np.lexsort((firsts, sid))
        f_s, sid_s, ok_s = firsts[order], sid[order], ok[order]
        same = np.zeros(m, dtype=bool)
        same[1:] = sid_s[1:] == sid_s[:-1]
        prev_last = np.empty(m)
        prev_last[1:] = f_s[:-1] + (n - 1) * g
        prev_last[~same] = stored[order][~same]
        cont = np.isnan(prev_last) | (prev_last + g == f_s)
        broken = np.unique(sid_s[~(ok_s & cont)])
        fast = np.zeros(m, dtype=bool)
        fast[order] = ~np.isin(sid_s, broken)
        slow_rows = np.nonzero(~fast)[0].tolist()
        if slow_rows:  # their whole series goes one by one, in time order
            means_l = means.tolist()
            mins_l = mins.tolist() if mins is not None else means_l
            maxs_l = maxs.tolist() if maxs is not None else means_l
            counts_l = counts.tolist()
            for r in slow_rows:
                idx = idxs[r]
                if idx not in bad:
                    seq.append((firsts[r], idx, names[r], means_l[r], mins_l[r], maxs_l[r], counts_l[r]))
        fr = np.nonzero(fast)[0]
        if not len(fr):
            return
        ends = firsts + (n - 1) * g
        np.fmax.at(aligner.last_arr, sid[fr], ends[fr])
        wm = aligner.watermark
        for i in set(idx_a[fr].tolist()):
            src = items[i][1]
            e = items[i][3][0] + n * g
            if e > wm.get(src, 0):
                wm[src] = e
            aligner.dirty.add(src)
        item_flags = np.array([it[2] for it in items], dtype=np.int64)
        row_flags = item_flags[idx_a[fr]]
        if any(items[i][6] for i in set(idx_a[fr].tolist())):  # per-quantity flags (sensor faults)
            row_flags = row_flags.copy()
            for k, r in enumerate(fr.tolist()):
                row_flags[k] |= items[idxs[r]][6].get(names[r], 0)
        cells = (firsts[fr][:, None] + np.arange(n) * g).ravel().astype(np.int64)
        rules = aligner.rule_list
        aligner.append_columns(
            {
                "source": item_src[idx_a[fr]].tolist(),
                "quantity": names[fr].tolist(),
                "flags": row_flags.tolist(),
                "rule": [rules[i] for i in sid[fr].tolist()],
                "count": [n] * len(fr),
                "ts": cells,
                "value": means[fr].ravel(),
                "min": (mins if mins is not None else means)[fr].ravel(),
                "max": (maxs if maxs is not None else means)[fr].ravel(),
                "n": counts[fr].ravel(),
            }
        )
