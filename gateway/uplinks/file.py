"""FileUplink: the embedded default sink, one batch per line of a local JSON Lines file.

    up = FileUplink("/var/lib/fieldline/upstream.jsonl", max_mb=64)
    await up.start(); await up.send(batch)      # returns once the line is written and fsynced

Each batch document (CBOR from the outbox, or JSON) is written as one line of compact JSON
(``gateway.stream.to_json``) plus a newline, by one ``os.write`` loop on an O_APPEND descriptor,
then ``os.fsync``ed (``fsync = false`` skips that) before ``send`` returns. A failed write is cut
back off the file, so a line is either whole or absent; a torn last line left by a power cut is
closed with a newline when the file is opened. With ``max_mb`` > 0, a batch that would take the
file past that size first renames it to ``<path>.1`` (replacing the previous one) and starts a new
file. JSON conversion, writes and fsync run in a worker thread, one batch at a time.
"""

import asyncio
import os

import cbor2

from gateway.stream import to_json
from gateway.uplinks import UplinkStats, check_backoff, check_bool, check_number, log
from gateway.uplinks.base import Uplink

_MB = 1024 * 1024


class FileUplink(Uplink):
    """Append batches to ``path`` as JSON Lines; see the module doc."""

    kind = "file"
    max_inflight = 1
    OPTIONS = ("path", "fsync", "max_mb")
    REQUIRED = {"path": "the path of the JSON Lines file batches are appended to"}

    def __init__(self, path, fsync=True, max_mb=0.0, backoff_min_s=1.0, backoff_max_s=60.0):
        self.path = os.fspath(path)
        self.backoff_min_s, self.backoff_max_s = check_backoff(backoff_min_s, backoff_max_s)
        self.fsync = check_bool(fsync, "fsync")
        self.max_bytes = int(check_number(max_mb, "max_mb") * _MB)
        self._fd = None
        self._size = 0
        self._lock = asyncio.Lock()
        self._stats = UplinkStats(self.kind)

    async def start(self):
        """Open the file (creating its folder); a failure is recorded and retried by ``send``."""
        async with self._lock:
            try:
                await asyncio.to_thread(self._open)
            except OSError as e:
                self._stats.note_error("cannot open %s: %s" % (self.path, e))

    async def send(self, batch):
        async with self._lock:
            try:
                await asyncio.to_thread(self._append_batch, batch.payload)
            except OSError as e:
                raise self._stats.failed(batch, "cannot append to %s: %s" % (self.path, e)) from e
            except (ValueError, cbor2.CBORError) as e:
                raise self._stats.failed(batch, "payload is not a batch document, not written: %s" % e) from e
        self._stats.ok()

    async def stop(self):
        async with self._lock:
            self._close()

    def state(self):
        return self._stats.as_dict(self._fd is not None, path=self.path, size_bytes=self._size)

    # ---- blocking file work (runs in a worker thread, one at a time) ----

    def _open(self):
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self._size = os.fstat(fd).st_size
            self._close_torn_line(fd)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def _close_torn_line(self, fd):
        """A last line without its newline (power cut mid-write) gets one, so the next line stands alone."""
        if self._size == 0:
            return
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            last = f.read(1)
        if last != b"\n":
            log.warning("file uplink: %s ended in a torn line; closing it with a newline", self.path)
            self._write_all(fd, b"\n")
            self._size += 1

    def _append_batch(self, payload):
        line = to_json(payload).rstrip(b"\r\n")
        if b"\n" in line:
            raise ValueError("a JSON document spread over several lines")
        self._append(line + b"\n")

    def _append(self, line):
        if self._fd is None:
            self._open()
        if self.max_bytes and self._size and self._size + len(line) > self.max_bytes:
            self._rotate()
        start = self._size
        try:
            self._write_all(self._fd, line)
            if self.fsync:
                os.fsync(self._fd)
        except OSError:
            self._cut_back(start)
            raise
        self._size = start + len(line)

    def _rotate(self):
        self._close()
        os.replace(self.path, self.path + ".1")
        self._fsync_folder()
        self._open()
        log.info("file uplink: rotated %s to %s.1", self.path, self.path)

    def _fsync_folder(self):
        """Make the rename itself durable (POSIX: the directory entry lives in the folder)."""
        if not self.fsync:
            return
        fd = os.open(os.path.dirname(self.path) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _cut_back(self, size):
        """Remove a partly written line; if even that fails, reopen later (which closes the torn line)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, size)
        except OSError as e:
            log.warning("file uplink: cannot cut a partial line off %s (%s); reopening it", self.path, e)
            self._close()

    def _close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def _write_all(fd, data):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
