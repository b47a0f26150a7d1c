"""Append-only, CRC-checked, ack-gated record log on littlefs, bounded as a ring of segment files.

    log = FlashLog("/log", max_bytes=128000, segment_bytes=4000)
    seq = log.append(KIND, frame); for seq, kind, payload in log.pending(8): send(...); log.ack(seq)

Files under root: segments "<seq of their first record, 8 hex>.seg" holding records
    magic u16 | kind u8 | version u8 | length u16 | seq u32 | crc32 u32 | payload
(little-endian; the CRC covers the 10 header bytes before it and the payload), and state files
"<name>.st" (int64 + crc32) replaced through "<name>.tmp" + rename (littlefs already commits a
rewritten file atomically on close; the rename keeps state atomic on file systems that do not).
``kind`` is a u8 (0..255); payloads are at most MAX_PAYLOAD bytes.

Durability: append() returns only after closing the file, and littlefs commits a file atomically on
close, so a record whose append() returned survives a power cut at any later instant. A record leaves
the log only when acknowledged: ack(seq) persists "acked up to seq" (so nothing acked is resent after
a reboot) and deletes segments whose records are all acked. Records that fail the magic/length/CRC
checks are never returned: the reader counts them in ``corrupt`` and resynchronises on the next magic.
Ring: at most max_bytes // segment_bytes segments; starting one more drops the oldest even when it
holds unacked records (bounded flash beats blocking) and adds them to ``dropped`` (persisted before
the delete, so a cut in between can over-count one segment, never under-count).
State names "acked" and "dropped" are the log's own; see ReservedCounter for the frame counter.
"""

import binascii
import errno
import os
import struct

from micropython import const

_MAGIC = const(0x4C46)  # bytes "FL"
_M0 = const(0x46)
_M1 = const(0x4C)
_VERSION = const(1)
_HDR = "<HBBHII"
_HDR_LEN = const(14)
_CRC_AT = const(10)
_CHUNK = const(64)
MAX_PAYLOAD = const(1024)


class FlashLog:
    # the defaults live in the class (the node keeps its log for its whole life): an instance
    # attribute appears only for a size other than the default, or once a value changes
    segment_bytes = 4000
    max_segments = 32
    max_bytes = 128000
    corrupt = 0  # corrupt regions met while reading (this boot)
    _bad_mark = (-1, -1)  # last corrupt position counted: re-reads do not count again
    _resume = (-1, 0)  # (segment, offset): every record before it is acked or junk

    def __init__(self, root="/log", max_bytes=128000, segment_bytes=4000):
        if segment_bytes < _HDR_LEN + 16:
            raise ValueError("segment_bytes %d too small" % segment_bytes)
        self.root = root
        if segment_bytes != self.segment_bytes or max_bytes != self.max_bytes:
            self.segment_bytes = segment_bytes
            self.max_segments = max(2, max_bytes // segment_bytes)
            self.max_bytes = self.max_segments * segment_bytes
        self._hdr = bytearray(_HDR_LEN)
        self._buf = bytearray(_CHUNK)
        self._st = bytearray(12)
        self._segs = []  # first seq of each segment, ascending; bounded by max_segments
        try:
            os.mkdir(root)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise
        self._load()

    # ---- records ----
    def append(self, kind, payload):
        """Store one record; returns its seq once it is committed to flash."""
        n = len(payload)
        if n > MAX_PAYLOAD:
            raise ValueError("record payload %d > %d bytes" % (n, MAX_PAYLOAD))
        segs = self._segs
        if not segs or (self._active_size and self._active_size + _HDR_LEN + n > self.segment_bytes):
            self._gc()
            while len(segs) >= self.max_segments:
                self._drop_oldest()
            segs.append(self.next_seq)  # the file appears with its first record
            self._active_size = 0
        seq = self.next_seq
        hdr = self._hdr
        struct.pack_into(_HDR, hdr, 0, _MAGIC, kind, _VERSION, n, seq, 0)
        crc = binascii.crc32(payload, binascii.crc32(memoryview(hdr)[:_CRC_AT]))
        struct.pack_into("<I", hdr, _CRC_AT, crc)
        for retry in (False, True):
            try:
                with open(self._path(segs[-1], ".seg"), "ab") as f:
                    f.write(hdr)
                    f.write(payload)
                break
            except OSError as e:  # file system full (other files grew): make room once
                if retry or e.errno != errno.ENOSPC or len(segs) < 2:
                    raise
                self._drop_oldest()
        self.next_seq = seq + 1
        self._active_size += _HDR_LEN + n
        return seq

    def pending(self, max_n=None):
        """Yield unacked records (seq, kind, payload) in seq order, one segment file open at a time."""
        acked = self.acked
        start, off = self._resume
        if start not in self._segs:
            start, off = (self._segs[0], 0) if self._segs else (None, 0)
        n = 0
        front = True
        while start is not None:
            try:
                f = open(self._path(start, ".seg"), "rb")
            except OSError:
                f = None  # the newest segment before its first record
            if f is not None:
                with f:
                    for seq, kind, payload, end in self._records(f, start, off, True):
                        if seq <= acked:
                            if front:
                                self._resume = (start, end)
                            continue
                        front = False
                        yield seq, kind, payload
                        n += 1
                        if max_n is not None and n >= max_n:
                            return
            nxt = None  # the next segment after start
            for s in self._segs:
                if s > start and (nxt is None or s < nxt):
                    nxt = s
            start, off = nxt, 0

    def ack(self, seq):
        """The gateway holds every record up to ``seq``: never return them again, free their flash."""
        seq = min(seq, self.next_seq - 1)
        if seq <= self.acked:
            return
        self.state_set("acked", seq)
        self.acked = seq
        self._gc()

    # ---- stats (also ``acked``: highest acked seq, ``next_seq``, ``corrupt``, ``dropped``) ----
    @property
    def count_pending(self):
        if not self._segs:
            return 0
        return max(0, self.next_seq - max(self.acked + 1, self._segs[0]))

    @property
    def bytes_used(self):
        total = 0
        for start in self._segs:
            try:
                total += os.stat(self._path(start, ".seg"))[6]
            except OSError:
                pass
        return total

    def fill_pct(self):
        return self.bytes_used * 100 // self.max_bytes

    # ---- atomic integer state ----
    def state_get(self, name, default=0):
        try:
            with open(self._path(name, ".st"), "rb") as f:
                n = f.readinto(self._st)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            return default
        st = self._st
        if n == 12 and binascii.crc32(memoryview(st)[:8]) == struct.unpack_from("<I", st, 8)[0]:
            return struct.unpack_from("<q", st, 0)[0]
        self.corrupt += 1
        return default

    def state_set(self, name, value):
        st = self._st
        struct.pack_into("<q", st, 0, value)
        struct.pack_into("<I", st, 8, binascii.crc32(memoryview(st)[:8]))
        tmp = self._path(name, ".tmp")
        with open(tmp, "wb") as f:
            f.write(st)
        os.rename(tmp, self._path(name, ".st"))  # atomic on littlefs: old or new, never half

    # ---- internals ----
    def _path(self, key, ext):
        return ("%s/%08x%s" if isinstance(key, int) else "%s/%s%s") % (self.root, key, ext)

    def _load(self):
        for ent in os.ilistdir(self.root):
            name = ent[0]
            if name.endswith(".seg"):
                try:
                    self._segs.append(int(name[:-4], 16))
                except ValueError:
                    pass
            elif name.endswith(".tmp"):  # a state write cut before its rename
                os.remove(self._path(name, ""))
        self._segs.sort()
        self.acked = self.state_get("acked", 0)
        self.dropped = self.state_get("dropped", 0)
        self.next_seq = self.acked + 1
        self._active_size = 0
        if self._segs:
            start = self._segs[-1]
            last, end, size = 0, 0, 0
            with open(self._path(start, ".seg"), "rb") as f:
                for seq, _, _, e in self._records(f, start, 0, False):
                    last, end = seq, e
                size = f.seek(0, 2)
            self.next_seq = max(self.next_seq, start, last + 1)
            self._active_size = size
            if end != size:  # junk after the last good record: never append after it
                self._active_size = self.segment_bytes
                if end == 0:  # nothing but junk: its name would clash with the next segment
                    self.corrupt += 1
                    self._remove(self._segs.pop())
        self._gc()

    def _gc(self):
        segs = self._segs
        while len(segs) > 1 and segs[1] - 1 <= self.acked:
            self._remove(segs.pop(0))

    def _drop_oldest(self):
        segs = self._segs
        lost = segs[1] - max(segs[0], self.acked + 1)
        if lost > 0:
            self.dropped += lost
            self.state_set("dropped", self.dropped)
        self._remove(segs.pop(0))

    def _remove(self, start):
        try:
            os.remove(self._path(start, ".seg"))
        except OSError:
            pass

    def _records(self, f, start, off, read):
        """Yield (seq, kind, payload or None, end offset) of the valid records from ``off``.

        ``read``: return payloads and count corrupt regions (else the CRC is streamed through
        ``_buf`` and nothing is counted)."""
        hdr = self._hdr
        buf = self._buf
        bad = False
        while True:
            f.seek(off)
            got = f.readinto(hdr)
            if not got:
                return
            if got == _HDR_LEN:
                magic, kind, ver, n, seq, crc = struct.unpack_from(_HDR, hdr)
                if magic == _MAGIC and ver == _VERSION and n <= MAX_PAYLOAD:
                    c = binascii.crc32(memoryview(hdr)[:_CRC_AT])
                    payload = None
                    if read:
                        payload = f.read(n)
                        if len(payload) == n:
                            c = binascii.crc32(payload, c)
                    else:
                        mv = memoryview(buf)
                        k = n
                        while k > 0:
                            got = f.readinto(mv[: min(k, _CHUNK)])
                            if not got:
                                break
                            c = binascii.crc32(mv[:got], c)
                            k -= got
                    if c == crc and (len(payload) == n if read else k <= 0):
                        bad = False
                        off += _HDR_LEN + n
                        yield seq, kind, payload, off
                        continue
            if read and not bad and (start, off) > self._bad_mark:
                self.corrupt += 1
                self._bad_mark = (start, off)
            bad = True
            pos = off + 1  # resynchronise on the next magic
            off = -1
            while off < 0:
                f.seek(pos)
                k = f.readinto(buf)
                if not k or k < 2:
                    return
                for i in range(k - 1):
                    if buf[i] == _M0 and buf[i + 1] == _M1:
                        off = pos + i
                        break
                pos += k - 1


class ReservedCounter:
    """A counter no reset ever repeats (the frame counter), persisting once per ``block`` values.

        fc = ReservedCounter(log, "fcnt", block=64)
        n = fc.next()

    After a reset it resumes at the persisted ceiling (``block`` values are reserved in the log's
    state ``name`` before the first is handed out), skipping at most block - 1 unused values.
    """

    def __init__(self, log, name="fcnt", block=64):
        self._log = log
        self._name = name
        self._block = block
        self._next = 0
        self._limit = 0

    def next(self):
        if self._next >= self._limit:
            first = self._log.state_get(self._name, 0)
            self._log.state_set(self._name, first + self._block)  # persisted before any is used
            self._next, self._limit = first, first + self._block
        v = self._next
        self._next = v + 1
        return v
