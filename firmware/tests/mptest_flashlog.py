# FlashLog on a real littlefs (vfs.VfsLfs2) over the virtual flash image: roundtrip, persistence,
# ring drops, corruption, atomic state, and a power-cut campaign. Runs inside MicroPython.
import os
import time

from fieldnode.boards.virtual.flash import FileBlockDev, PowerCut, mount, umount
from fieldnode.flashlog import FlashLog, ReservedCounter
from sim.powercut import Campaign, payload_for

_MP = "/fltest"
_ROOT = _MP + "/log"


def _image():
    return "/tmp/fieldline_flashlog_%d.img" % time.ticks_us()


def _remove(path):
    for p in (path, path + ".ghost"):
        try:
            os.remove(p)
        except OSError:
            pass


class _Flash:
    """A fresh formatted image mounted at _MP; reboot() remounts it with a new device."""

    def __init__(self, block_size=512, block_count=64):
        self.path = _image()
        self.geometry = (block_size, block_count)
        self.dev = FileBlockDev(self.path, block_size, block_count)
        mount(self.dev, _MP, mkfs=True)

    def reboot(self):
        umount(_MP, self.dev)
        self.dev = FileBlockDev(self.path, *self.geometry)
        mount(self.dev, _MP, mkfs=False)

    def close(self):
        umount(_MP, self.dev)
        _remove(self.path)


def _log(**kw):
    kw.setdefault("max_bytes", 2400)
    kw.setdefault("segment_bytes", 480)
    return FlashLog(_ROOT, **kw)


def _fill(log, n, first=1):
    for seq in range(first, first + n):
        assert log.append(1 + seq % 5, payload_for(seq)) == seq


def _pending_seqs(log, max_n=None):
    out = []
    for seq, kind, payload in log.pending(max_n):
        assert kind == 1 + seq % 5 and payload == payload_for(seq), "record %d damaged" % seq
        out.append(seq)
    return out


def test_append_pending_ack_roundtrip():
    fl = _Flash()
    try:
        log = _log()
        assert log.count_pending == 0 and list(log.pending()) == []
        _fill(log, 20)
        assert log.count_pending == 20
        assert _pending_seqs(log, 5) == [1, 2, 3, 4, 5]
        log.ack(5)
        assert _pending_seqs(log) == list(range(6, 21))
        log.ack(999)  # beyond the last record: clamps
        assert log.acked == 20 and log.count_pending == 0 and _pending_seqs(log) == []
        assert log.append(3, b"") == 21  # empty payloads are records too
        assert [(s, k, bytes(p)) for s, k, p in log.pending()] == [(21, 3, b"")]
        assert len(os.listdir(_ROOT)) <= 3  # fully acked segments are gone (+ state files)
    finally:
        fl.close()


def test_persists_across_remount_and_acks_stick():
    fl = _Flash()
    try:
        log = _log()
        _fill(log, 30)
        log.ack(12)
        fl.reboot()
        log = _log()
        assert log.next_seq == 31 and log.acked == 12
        assert _pending_seqs(log) == list(range(13, 31))
        _fill(log, 5, first=31)
        log.ack(35)
        fl.reboot()
        log = _log()
        assert log.count_pending == 0 and _pending_seqs(log) == []
        assert log.append(1, b"x") == 36  # seq keeps climbing even with every segment acked
    finally:
        fl.close()


def test_ring_drops_oldest_and_counts_it():
    fl = _Flash()
    try:
        log = _log(max_bytes=1440, segment_bytes=480)  # 3 segments
        assert log.max_segments == 3
        _fill(log, 200)
        assert log.dropped > 0
        seqs = _pending_seqs(log)
        assert seqs[-1] == 200 and seqs == list(range(seqs[0], 201))
        assert seqs[0] - 1 == log.dropped  # every record not pending was counted as dropped
        assert log.count_pending == len(seqs)
        assert 50 <= log.fill_pct() <= 100 and log.bytes_used <= log.max_bytes
        fl.reboot()
        log = _log(max_bytes=1440, segment_bytes=480)
        assert log.dropped == seqs[0] - 1  # persisted for the health record
        assert _pending_seqs(log) == seqs
    finally:
        fl.close()


def _segment_files():
    return sorted(n for n in os.listdir(_ROOT) if n.endswith(".seg"))


def _poke(name, offset, data):
    with open(_ROOT + "/" + name, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_corrupt_record_is_skipped_and_counted():
    fl = _Flash()
    try:
        log = _log()
        _fill(log, 10)  # one segment, records of 14 + (1 + 37 * seq % 60) bytes
        seg = _segment_files()[0]
        rec1 = 14 + len(payload_for(1))
        rec2 = 14 + len(payload_for(2))
        _poke(seg, rec1 + 20, b"\x00\xff")  # payload of record 2
        _poke(seg, rec1 + rec2 + 3, b"\x99")  # version byte of record 3's header
        log = _log()
        seqs = _pending_seqs(log)
        assert seqs == [1] + list(range(4, 11)), seqs  # resynchronised after the damage
        assert log.corrupt == 1  # one damaged region (records 2 and 3 adjoin)
        _pending_seqs(log)
        assert log.corrupt == 1  # reading it again does not count it again
        _fill(log, 2, first=11)
        assert _pending_seqs(log)[-2:] == [11, 12]
    finally:
        fl.close()


def test_torn_tail_starts_a_new_segment():
    fl = _Flash()
    try:
        log = _log()
        _fill(log, 3)
        seg = _segment_files()[0]
        with open(_ROOT + "/" + seg, "ab") as f:
            f.write(b"FL\x01\x01\x50\x00")  # half a header, as a non-atomic file system could leave
        log = _log()
        assert log.next_seq == 4
        _fill(log, 3, first=4)
        assert len(_segment_files()) == 2  # nothing appended after the junk
        assert _pending_seqs(log) == [1, 2, 3, 4, 5, 6]
        assert log.corrupt == 1
    finally:
        fl.close()


def test_state_is_atomic_and_counter_never_goes_back():
    fl = _Flash()
    try:
        log = _log()
        assert log.state_get("boots", 7) == 7
        log.state_set("boots", 1)
        log.state_set("boots", 2)
        assert log.state_get("boots") == 2
        fc = ReservedCounter(log, "fcnt", block=16)
        got = [fc.next() for _ in range(20)]
        assert got == list(range(20))
        fl.reboot()
        log = _log()
        assert log.state_get("boots") == 2
        fc = ReservedCounter(log, "fcnt", block=16)
        assert fc.next() == 32  # resumes above every value reserved before the reset
        with open(_ROOT + "/boots.st", "r+b") as f:
            f.write(b"\x05")
        assert log.state_get("boots", -1) == -1 and log.corrupt == 1  # bad CRC: default, counted
        assert not [n for n in os.listdir(_ROOT) if n.endswith(".tmp")]
    finally:
        fl.close()


def test_blockdev_protocol_erase_and_torn_cut():
    path = _image()
    try:
        dev = FileBlockDev(path, block_size=256, block_count=8, powercut_at_write=2, tear_seed=3)
        assert os.stat(path)[6] == 2048
        assert dev.ioctl(4, 0) == 8 and dev.ioctl(5, 0) == 256 and dev.ioctl(1, 0) == 0
        buf = bytearray(256)
        dev.readblocks(1, buf)
        assert buf == b"\xff" * 256  # created erased
        dev.writeblocks(1, b"\x11" * 64, 32)
        dev.readblocks(1, buf)
        assert buf[:32] == b"\xff" * 32 and buf[32:96] == b"\x11" * 64 and buf[96] == 0xFF
        assert dev.ioctl(6, 1) == 0 and dev.erases == 1
        dev.readblocks(1, buf)
        assert buf == b"\xff" * 256
        cut = None
        try:
            dev.writeblocks(2, b"\x22" * 96, 0)
        except PowerCut as e:
            cut = e
        assert cut is not None, "expected PowerCut"
        assert not isinstance(cut, Exception)  # firmware's `except Exception` cannot swallow it
        n, off, k, asked = dev.torn
        assert (n, off, asked) == (2, 0, 96) and 0 <= k < 96
        dev.writeblocks(3, b"\x33" * 32, 0)  # the dying firmware writes on ...
        dev.power_off()
        with open(path, "rb") as f:
            img = f.read()
        assert img[512 : 512 + k] == b"\x22" * k and img[512 + k : 768] == b"\xff" * (256 - k)
        assert img[768:1024] == b"\xff" * 256  # ... but nothing after the cut reached the image
        dev.readblocks(0, buf)  # powered off: ignored, no error
        assert dev.writes == 3 and dev.reads == 3
    finally:
        _remove(path)


def test_powercut_campaign():
    path = _image()
    c = Campaign(path, seed=7)
    t0 = time.ticks_ms()
    try:
        trials, lost = c.run(200)
    finally:
        umount(c.mount_point)
        _remove(path)
    ms = time.ticks_diff(time.ticks_ms(), t0)
    print("powercut campaign: %s, %d ms/trial" % (c.report(), ms // max(1, c.trials)))
    assert trials == 200 and lost == 0, c.report()
    assert c.dropped > 0 and c.torn > 150  # the ring really dropped, the cuts really tore writes
    assert c.corrupt == 0  # littlefs never exposes a half-written record
