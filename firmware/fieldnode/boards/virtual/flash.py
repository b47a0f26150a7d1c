"""Virtual flash of the unix-port board: a littlefs block device over an image file, with power cuts.

    dev = FileBlockDev("/tmp/node.img", block_size=4096, block_count=64, powercut_at_write=120)
    mp = mount(dev, "/flash")             # VfsLfs2 at /flash; formatted if it will not mount

MicroPython's extended block-device protocol: readblocks/writeblocks take a byte offset inside the
block, ioctl answers ops 1..6 (init, deinit, sync, block count, block size, erase -> 0xFF).

Power cut: the N-th writeblocks call since construction (``powercut_at_write``, settable) writes a
torn prefix of its data - a deterministic byte count in [0, len), not rounded to the prog size - and
raises PowerCut, a BaseException, so the firmware's ``except Exception`` cannot swallow it. From that
instant the image file is frozen: whatever the dying firmware still does while the exception unwinds
(``with`` blocks closing files, littlefs finishing the call) goes to a scratch copy of the image, never
to the image. A reboot is: ``umount(mp, dev)``, then a new FileBlockDev on the same path and ``mount``.
"""

import gc
import os

import vfs
from micropython import const

_INIT = const(1)
_DEINIT = const(2)
_SYNC = const(3)
_BLOCK_COUNT = const(4)
_BLOCK_SIZE = const(5)
_BLOCK_ERASE = const(6)


class PowerCut(BaseException):
    """The supply dropped in the middle of a flash write (simulated)."""


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def _copy(src, dst, buf):
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        while True:
            n = fi.readinto(buf)
            if not n:
                break
            fo.write(buf if n == len(buf) else memoryview(buf)[:n])


class FileBlockDev:
    """Block device over ``path`` (created erased, i.e. 0xFF, when absent or too short)."""

    def __init__(self, path, block_size=4096, block_count=64, powercut_at_write=None, tear_seed=0):
        self.path = path
        self.block_size = block_size
        self.block_count = block_count
        self.powercut_at_write = powercut_at_write  # absolute writeblocks count; None = never
        self.tear_seed = tear_seed
        self.writes = 0
        self.reads = 0
        self.erases = 0
        self.cut = False  # the cut happened: the image is frozen, I/O goes to the scratch copy
        self.torn = None  # (block, offset, bytes written, bytes asked) of the cut write
        self._ff = b"\xff" * block_size
        size = block_size * block_count
        have = max(_size(path), 0)
        if have < size:
            with open(path, "ab") as f:
                f.write(self._ff[: (size - have) % block_size])
                for _ in range((size - have) // block_size):
                    f.write(self._ff)
        self._f = open(path, "r+b")

    def arm(self, after_writes):
        """Cut the power on the ``after_writes``-th write from now (sets ``powercut_at_write``)."""
        self.powercut_at_write = self.writes + after_writes

    def readblocks(self, n, buf, offset=0):
        f = self._f
        if f is None:  # powered off: a stale finaliser gets nothing and allocates nothing
            return
        self.reads += 1
        f.seek(n * self.block_size + offset)
        f.readinto(buf)

    def writeblocks(self, n, buf, offset=0):
        f = self._f
        if f is None:
            return
        self.writes += 1
        f.seek(n * self.block_size + offset)
        if self.writes == self.powercut_at_write and not self.cut:
            try:
                bytearray(1)  # fails with the heap locked: the GC is running finalisers
            except MemoryError:
                self.powercut_at_write += 1  # nothing can be raised there: cut at the next write
            else:
                self._cut(n, offset, buf)
        f.write(buf)

    def ioctl(self, op, arg):
        if op == _BLOCK_COUNT:
            return self.block_count
        if op == _BLOCK_SIZE:
            return self.block_size
        if op == _BLOCK_ERASE:
            if self._f is not None:
                self.erases += 1
                self._f.seek(arg * self.block_size)
                self._f.write(self._ff)
            return 0
        if op == _SYNC:
            if self._f is not None:
                self._f.flush()
            return 0
        if op == _INIT or op == _DEINIT:
            return 0
        return None

    def tear_bytes(self, nbytes):
        """How many bytes of an ``nbytes`` write survive the cut: deterministic, 0 <= k < nbytes."""
        h = (self.writes * 2654435761 + self.tear_seed * 40503 + nbytes * 97) & 0xFFFFFFFF
        return (h >> 11) % nbytes if nbytes else 0

    def _cut(self, n, offset, buf):
        k = self.tear_bytes(len(buf))
        if k:
            self._f.write(memoryview(buf)[:k])
        self.torn = (n, offset, k, len(buf))
        self.cut = True
        self._f.close()
        ghost = self.path + ".ghost"
        _copy(self.path, ghost, bytearray(min(self.block_size, 4096)))
        self._f = open(ghost, "r+b")
        raise PowerCut(
            "power cut at write %d: block %d +%d, %d of %d bytes written" % (self.writes, n, offset, k, len(buf))
        )

    def power_off(self):
        """Release the image (and drop the scratch copy after a cut); later I/O is silently ignored."""
        f, self._f = self._f, None
        if f is not None:
            f.close()
        if self.cut:
            try:
                os.remove(self.path + ".ghost")
            except OSError:
                pass


def mount(dev, mount_point="/flash", mkfs=None, block_size=4096, block_count=64):
    """Mount littlefs v2 on ``dev`` (a FileBlockDev or an image path) at ``mount_point``.

    mkfs: None formats only when the image will not mount, True always formats, False never
    (a mount failure raises OSError: what a power-cut test wants to see). Returns ``mount_point``.
    """
    if isinstance(dev, str):
        dev = FileBlockDev(dev, block_size, block_count)
    if mkfs:
        vfs.VfsLfs2.mkfs(dev)
    try:
        fs = vfs.VfsLfs2(dev, mtime=False)
    except OSError:
        if mkfs is not None:
            raise
        vfs.VfsLfs2.mkfs(dev)
        fs = vfs.VfsLfs2(dev, mtime=False)
    vfs.mount(fs, mount_point)
    return mount_point


def umount(mount_point, dev=None):
    """Unmount; with ``dev``, also power it off (after letting stale files of a cut firmware close)."""
    try:
        vfs.umount(mount_point)
    except OSError:
        pass
    if dev is not None:
        gc.collect()  # finalisers of files left open by the cut run now, against the scratch copy
        dev.power_off()
