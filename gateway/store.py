"""The gateway's durable store: one SQLite file in WAL mode.

    st = Store("data/gateway.db", max_bytes=512 << 20, uplinks=2)
    st.write(frames, keys, payload_for, items, state)     # one transaction; then ack the nodes
    for b in st.pending(uplink=0, limit=64): ...; st.acked(0, [b.seq])

Tables: ``frames`` (every authenticated node frame, as received: the raw summaries), ``records``
(deduplication keys: per source and kind, blocks [start, end) of record start times stored --
a report's run of interval summaries is one block), ``outbox`` (upstream
batches, oldest first; a row leaves only when every uplink acknowledged it: ``pending`` holds
one bit per uplink) and ``state`` (small values that must survive a restart: replay windows,
the gateway's frame counter, clock models). Each intake is written in one transaction before
anything is acknowledged or forwarded. Disk use is bounded: when the file would pass
``max_bytes``, raw frames already forwarded are pruned oldest first; when that is not enough the
write raises OutboxFull (intake stops, the nodes keep their data in flash: nothing is dropped).
"""

import json
import os
import sqlite3
import time

from gateway.errors import OutboxFull, StoreError
from gateway.uplinks.base import Batch

_SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (id INTEGER PRIMARY KEY, source TEXT NOT NULL, device INTEGER NOT NULL,
    counter INTEGER NOT NULL, rx REAL NOT NULL, wire BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records (source TEXT NOT NULL, kind INTEGER NOT NULL, start INTEGER NOT NULL,
    end INTEGER NOT NULL, frame INTEGER, PRIMARY KEY (source, kind, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, created REAL NOT NULL, items INTEGER NOT NULL,
    pending INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""
KIND_INTERVAL, KIND_DAILY, KIND_HEALTH = 1, 2, 3
RESERVE_BYTES = 256 << 10  # beyond max_bytes, only for the gateway's own health and alert records


class Store:
    def __init__(self, path, max_bytes=512 << 20, alert_fraction=0.8, uplinks=1):
        self.path = path
        self.max_bytes = max_bytes
        self.alert_fraction = alert_fraction
        self.all_uplinks = (1 << max(1, uplinks)) - 1
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit -- the gateway acknowledges a node only after the
            # commit, so a commit must survive a power cut too (NORMAL survives only a process kill)
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA wal_autocheckpoint=4000")  # 16 MB of WAL between checkpoints
            self.db.executescript(_SCHEMA)
            self._page = self.db.execute("PRAGMA page_size").fetchone()[0]
            row = self.db.execute("SELECT max(seq) FROM outbox").fetchone()
            self.next_frame = (self.db.execute("SELECT coalesce(max(id), 0) FROM frames").fetchone()[0]) + 1
            st = self.db.execute("SELECT v FROM state WHERE k = 'outbox.next_seq'").fetchone()
        except sqlite3.DatabaseError as e:
            raise StoreError("cannot open the gateway store %s: %s" % (path, e)) from e
        self.next_seq = max((row[0] or 0) + 1, int(st[0]) if st else 1)
        self.pruned_frames = 0
        self.refusals = 0
        self._recent = {}  # (source, kind) -> set of recent starts: dedup without a query
        self._top = {}  # (source, kind) -> highest start stored

    # ---- size ----
    def disk_bytes(self):
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        wal = self.path + "-wal"
        return (pages - free) * self._page + (os.path.getsize(wal) if os.path.exists(wal) else 0)

    def fill(self):
        return self.disk_bytes() / float(self.max_bytes)

    def alert(self):
        return self.fill() >= self.alert_fraction

    def _truncate_wal(self):
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.OperationalError:  # busy: a reader holds it; measured again next time
            pass

    def ensure_room(self, need, reserve=False):
        """Make room for ``need`` more bytes (pruning old raw frames) or raise OutboxFull.
        ``reserve``: may go RESERVE_BYTES past the bound (the gateway's own alerts must get out)."""
        self._make_room(need - (RESERVE_BYTES if reserve else 0))

    def _make_room(self, need):
        if self.disk_bytes() + need <= self.max_bytes:
            return
        self._truncate_wal()  # pages already in the database file need not be counted twice
        if self.disk_bytes() + need <= self.max_bytes:
            return
        # raw frames whose records are stored (and so forwarded or queued) go first, oldest first
        while self.disk_bytes() + need > self.max_bytes:
            ids = self.db.execute("SELECT id FROM frames ORDER BY id LIMIT 1000").fetchall()
            if not ids:
                break
            self.db.execute("DELETE FROM frames WHERE id <= ?", (ids[-1][0],))
            self.pruned_frames += len(ids)
        self._truncate_wal()
        if self.disk_bytes() + need > self.max_bytes:
            self.refusals += 1
            raise OutboxFull(
                "store %s holds %d bytes of %d allowed (outbox.max_mb): intake paused until upstream drains it"
                % (self.path, self.disk_bytes(), self.max_bytes)
            )

    # ---- dedup ----
    def new_starts(self, source, kind, starts):
        """The subset of ``starts`` not stored yet for (source, kind) (in order)."""
        rk = (source, kind)
        recent = self._recent.get(rk)
        if recent is None:
            recent = self._recent[rk] = set()
            row = self.db.execute("SELECT max(end) FROM records WHERE source = ? AND kind = ?", rk).fetchone()
            self._top[rk] = row[0] - 1 if row[0] is not None else -1  # every stored start is <= this
        unknown = [s for s in starts if s not in recent]
        if not unknown:
            return []
        if min(unknown) > self._top[rk]:  # beyond everything stored: new without asking the database
            return unknown
        lo, hi = min(unknown), max(unknown)
        blocks = self.db.execute(
            "SELECT start, end FROM records WHERE source = ? AND kind = ? AND start <= ? AND end > ?",
            (source, kind, hi, lo),
        ).fetchall()
        have = {s for s in unknown if any(b0 <= s < b1 for b0, b1 in blocks)}
        if len(recent) > 20000:
            recent.clear()
        recent.update(have)
        return [s for s in unknown if s not in have]

    def take_new(self, source, kind, starts):
        """new_starts() and mark() in one: the starts not stored yet, now counted as taken."""
        new = self.new_starts(source, kind, starts)
        if new:
            self._recent[(source, kind)].update(new)
            top = self._top[(source, kind)]
            m = max(new)
            if m > top:
                self._top[(source, kind)] = m
        return new

    def mark(self, source, kind, starts):
        """Remember (in memory) keys about to be written, so a duplicate in the same intake is caught."""
        self._recent.setdefault((source, kind), set()).update(starts)
        if starts:
            self._top[(source, kind)] = max(self._top.get((source, kind), -1), max(starts))

    def forget(self, source, kind, starts):
        """Undo mark() for an intake that was not written."""
        recent = self._recent.get((source, kind))
        if recent is not None:
            recent.difference_update(starts)

    # ---- one intake, one transaction ----
    def write(self, frames=(), keys=(), payload_for=None, items=0, state=None):
        """Store an intake atomically.

        ``frames``: (source, device, counter, rx, wire) rows; ``keys``: (source, kind, start, end,
        frame index into ``frames`` or None) blocks of record start times [start, end);
        ``payload_for(seq)`` -> bytes builds the outbox batch (None: nothing to forward); ``state``:
        {key: JSON-able} to persist. Returns the outbox seq or None. Call ensure_room() first: the
        disk bound is checked there.
        """
        payload = payload_for(self.next_seq) if payload_for is not None else None
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                ids = []
                if frames:
                    first = self.next_frame
                    ids = list(range(first, first + len(frames)))
                    db.executemany(
                        "INSERT INTO frames (id, source, device, counter, rx, wire) VALUES (?,?,?,?,?,?)",
                        [(i, *f) for i, f in zip(ids, frames, strict=True)],
                    )
                if keys:
                    db.executemany(
                        "INSERT OR IGNORE INTO records (source, kind, start, end, frame) VALUES (?,?,?,?,?)",
                        [(k[0], k[1], k[2], k[3], ids[k[4]] if k[4] is not None and ids else None) for k in keys],
                    )
                seq = None
                if payload is not None:
                    seq = self.next_seq
                    db.execute(
                        "INSERT INTO outbox (seq, created, items, pending, payload) VALUES (?,?,?,?,?)",
                        (seq, time.time(), items, self.all_uplinks, payload),
                    )
                    db.execute("INSERT OR REPLACE INTO state (k, v) VALUES ('outbox.next_seq', ?)", (str(seq + 1),))
                if state:
                    db.executemany(
                        "INSERT OR REPLACE INTO state (k, v) VALUES (?, ?)",
                        [(k, json.dumps(v, separators=(",", ":"))) for k, v in state.items()],
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if frames:
                self.next_frame = ids[-1] + 1
            if seq is not None:
                self.next_seq = seq + 1  # only once committed: a failed write leaves no hole
        except sqlite3.DatabaseError as e:
            raise StoreError("writing to the gateway store %s failed: %s" % (self.path, e)) from e
        return seq

    # ---- state ----
    def get_state(self, key, default=None):
        row = self.db.execute("SELECT v FROM state WHERE k = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def put_state(self, values):
        self.write(state=values)

    # ---- outbox ----
    def pending(self, uplink=0, limit=64, after=0, gateway_id="gw"):
        """Oldest batches not yet acknowledged by ``uplink`` (seq > ``after``)."""
        bit = 1 << uplink
        rows = self.db.execute(
            "SELECT seq, items, payload FROM outbox WHERE pending & ? AND seq > ? ORDER BY seq LIMIT ?",
            (bit, after, limit),
        ).fetchall()
        return [Batch(seq=r[0], key="%s:%d" % (gateway_id, r[0]), payload=r[2], count=r[1]) for r in rows]

    def acked(self, uplink, seqs):
        """``uplink`` acknowledged ``seqs``: clear its bit; rows every uplink acknowledged leave."""
        if not seqs:
            return
        bit = 1 << uplink
        marks = ",".join("?" * len(seqs))
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("UPDATE outbox SET pending = pending & ~? WHERE seq IN (%s)" % marks, (bit, *seqs))
            db.execute("DELETE FROM outbox WHERE pending = 0 AND seq IN (%s)" % marks, tuple(seqs))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def depth(self):
        """(batches, items, oldest created epoch s or None) waiting in the outbox."""
        r = self.db.execute("SELECT count(*), coalesce(sum(items), 0), min(created) FROM outbox").fetchone()
        return r[0], r[1], r[2]

    def counts(self):
        f = self.db.execute("SELECT count(*) FROM frames").fetchone()[0]
        k = self.db.execute("SELECT count(*) FROM records").fetchone()[0]
        return {"frames": f, "records": k}

    def close(self):
        try:
            self.db.close()
        except sqlite3.Error:
            pass
