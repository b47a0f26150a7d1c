"""Intake -> dedup -> align -> one durable transaction: the gateway's hot path.

    ing = Ingest(store, Aligner(900), "gw-1")
    ok = ing.process(intakes)     # False: the store is full (nothing written); then sources ack

Per call: record keys already stored (a node resending what the gateway stored but whose ack
was lost) are dropped; the interval statistics of all reports are decoded in bulk
(gateway.columns) and aligned; a report with a value the wire format forbids is not stored
(``intake.bad`` says why; the node is not acknowledged); the aligned rows and the new records
become one outbox batch; raw frames, record keys, the batch and the state that must survive a
restart (replay window, aligner series) are written in one SQLite transaction. Only after it
committed does the engine let the sources acknowledge.
"""

from gateway.columns import RawRows
from gateway.errors import OutboxFull
from gateway.store import KIND_DAILY, KIND_INTERVAL
from gateway.stream import batch_document
from gateway.wire import _Slow, _stats


class Ingest:
    def __init__(self, store, aligner, gateway_id, state_fn=None, daily=None):
        self.store = store
        self.daily = daily  # gateway.daily.DailyValues: field_daily records join the node's daily record
        self.aligner = aligner
        self.gateway_id = gateway_id
        self.state_fn = state_fn  # () -> {key: value} persisted with every write (replay window, ...)
        self.duplicates = 0  # records dropped as already stored
        self.bad = 0  # reports refused for a forbidden value
        self.stored_intakes = 0
        self.refused_intakes = 0
        self.batches = 0
        self.rows = 0

    def process(self, intakes, now=None, flush=False, reserve=False):
        """Store ``intakes`` (a list) durably; returns True if written, False if the store was full.
        ``reserve``: may use the store's reserve (the gateway's own health and alerts)."""
        st = self.store
        al = self.aligner
        # room for the raw frames, their aligned rows (a report's wire bytes x ~8) and the records;
        # checked before anything changes, so a refusal leaves no trace
        need = 4096 + sum(8 * len(i.frame[3]) for i in intakes if i.frame)
        need += sum(len(str(r[2])) for i in intakes for r in i.records)
        try:
            st.ensure_room(need, reserve)
        except OutboxFull:
            self.refused_intakes += len(intakes)
            return False
        raw = RawRows(al)
        block_keys = {}  # intake index -> new interval starts
        pre_bad = set()
        for j, it in enumerate(intakes):
            if it.block is not None:
                block_keys[j], broken = self._block(j, it, raw)
                if broken:
                    pre_bad.add(j)
        bad = (raw.decode_align(al) if raw.items else set()) | pre_bad
        frames, keys, records = [], [], []
        days = []  # (source, node_daily record) stored in this call
        for j, it in enumerate(intakes):
            if j in bad:
                it.bad = "schema"
                self.bad += 1
                st.forget(it.source, KIND_INTERVAL, block_keys.get(j, ()))
                continue
            fidx = None
            if it.frame is not None:
                fidx = len(frames)
                dev, counter, rx, wire = it.frame
                frames.append((it.source, dev, counter, rx, wire))
            new = block_keys.get(j)
            if new:  # one key block per run of consecutive new intervals
                span = it.block[2]
                b0 = prev = new[0]
                for s in new[1:]:
                    if s != prev + span:
                        keys.append((it.source, KIND_INTERVAL, b0, prev + span, fidx))
                        b0 = s
                    prev = s
                keys.append((it.source, KIND_INTERVAL, b0, prev + span, fidx))
            for r in it.readings:
                sensor, quantity, value, ts, unit, flags = r
                al.add(it.source, sensor, quantity, value, ts, unit, flags | it.flags)
            for kind, start, rec in it.records:
                if kind is not None:
                    if not st.new_starts(it.source, kind, [start]):
                        self.duplicates += 1
                        continue
                    st.mark(it.source, kind, [start])
                    keys.append((it.source, kind, start, start + 1, fidx))
                    if kind == KIND_DAILY and self.daily is not None:
                        days.append((it.source, rec))
                records.append(rec)
        if flush or now is not None:
            al.flush(now)
        cols = al.take()
        n = len(cols["ts"])  # numpy arrays
        dv = self.daily
        if dv is not None:  # a node's day, once the stream holds all of it (its wind): field_daily records
            dv.observe(cols)
            for source, rec in days:
                dv.queue(source, rec)
            if dv.pending:
                records.extend(dv.ready(now, al.grid_s, al.lateness_s))
        payload_for = None
        if n or records:

            def payload_for(seq):
                return batch_document(self.gateway_id, seq, al.grid_s, cols, records)

        state = {"align." + s: al.snapshot(s) for s in al.pop_dirty()}
        if self.state_fn is not None:
            state.update(self.state_fn())
        if dv is not None and dv.dirty:
            state["agronomy"] = dv.state()
        seq = st.write(frames, keys, payload_for, n + len(records), state)
        if seq is not None:
            self.batches += 1
        self.rows += n
        self.stored_intakes += len(intakes) - len(bad)
        return True

    def _block(self, j, it, raw):
        """Dedup a block's intervals; queue them for decoding and alignment: (new starts, broken?)."""
        st = self.store
        sensor, starts, span_s, stats, qflags, shift_s, samples = it.block
        new = st.take_new(it.source, KIND_INTERVAL, starts)
        if not new:
            self.duplicates += len(starts)
            return [], False
        keep = None
        if len(new) != len(starts):
            self.duplicates += len(starts) - len(new)
            fresh = set(new)
            keep = [i for i, s in enumerate(starts) if s in fresh]
        ts = [t - shift_s for t in starts] if shift_s else starts
        flags = it.flags
        if stats and type(next(iter(stats))) is int:  # undecoded wire rows: decoded in bulk
            if keep is None:
                raw.add(j, it.source, flags, ts, span_s, samples, stats, qflags)
                return new, False
            try:
                stats = _stats(stats, samples)
            except _Slow:
                return new, True
        if keep is not None:
            ts = [ts[i] for i in keep]
            samples = [samples[i] for i in keep]
            stats = {q: {c: [col[i] for i in keep] for c, col in s.items()} for q, s in stats.items()}
        # decoded statistics join the bulk rows: one series is aligned in time order, whatever path
        raw.add_decoded(j, it.source, flags, ts, span_s, samples, stats, qflags, sensor)
        return new, False
