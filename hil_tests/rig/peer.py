"""The gateway's end of the node link, over pytest-embedded's serial DUT: read frames, ack, answer time sync.

    peer = DutPeer(dut, keyring, clock=SimClock(state_dir), frames_log="logs/t/frames.jsonl")
    peer.start()            # a thread pumps the link: acks go out within milliseconds, as a gateway's would
    peer.request({"type": "diag_request", "req_id": 1, "items": []}); ...; peer.stop()

The bytes come from the serial service (``dut.expect``: its redirect thread reads the port, the
listener writes the raw stream to ``dut.logfile``, pexpect reads it back) and go out with
``dut.write``: the same path on a real board's /dev/ttyUSB0 and on a virtual board's pty.
Everything else is tools.virtual_field.peer.NodePeer (deframe, authenticate, replay guard, ack,
time sync, queued requests). Every decoded message and every rejected frame is appended to
``frames_log`` as one JSON line, the human-readable twin of the raw ``dut.logfile``.
"""

import json
import re
import threading
import time

import pexpect

from tools.virtual_field.peer import NodePeer

_FRAME = re.compile(rb"[^\x00]*\x00")  # one COBS frame with its delimiter (a lone 0x00 resyncs)
_SPIN_S = 0.005  # pexpect polls the log file; 5 ms between polls instead of 0.1 ms keeps a core free


class DutLink:
    """NodePeer's link interface (read/write) on a pytest-embedded dut."""

    def __init__(self, dut):
        self.dut = dut
        self.rx_bytes = 0
        dut.pexpect_proc.delayafterread = _SPIN_S

    def read(self, timeout_s):
        try:
            m = self.dut.expect(_FRAME, timeout=timeout_s)
        except (pexpect.TIMEOUT, pexpect.EOF):
            return b""
        data = m.group(0)
        self.rx_bytes += len(data)
        return data

    def write(self, data):
        self.dut.write(bytes(data))


class DutPeer(NodePeer):
    """NodePeer over a dut, pumped by a background thread, logging every message as JSON."""

    def __init__(self, dut, keyring, clock=time.time, frames_log=None, counter0=None):
        super().__init__(DutLink(dut), keyring, clock=clock)
        # our frame counters start at the wall clock: above anything an earlier run sent the board,
        # so its replay guard accepts them without a reset
        self.counter = counter0 if counter0 is not None else int(time.time())
        self.frames_log = frames_log
        self._log = open(frames_log, "a") if frames_log else None
        self._thread = None
        self._stopping = threading.Event()
        self.error = None
        self.changed = threading.Condition()

    def pump(self, timeout_s=0.1):
        errors = dict(self.errors)
        new = super().pump(timeout_s)
        if self._log is not None:
            for m in new:
                self._log.write(json.dumps(m, default=_jsonable, sort_keys=True) + "\n")
            for kind, n in self.errors.items():
                if n != errors.get(kind, 0):
                    self._log.write(json.dumps({"rejected": kind, "count": n}) + "\n")
            self._log.flush()
        if new:
            with self.changed:
                self.changed.notify_all()
        return new

    def start(self):
        self._thread = threading.Thread(target=self._run, name="dut-peer", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        try:
            while not self._stopping.is_set():
                self.pump(0.05)
        except Exception as e:  # kept and raised by stop(): a dead pump must not pass unnoticed
            self.error = e

    def stop(self):
        if self._thread is not None:
            self._stopping.set()
            self._thread.join(5)
            self._thread = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.error is not None:
            raise RuntimeError("the link pump failed") from self.error

    def wait(self, predicate, timeout_s):
        """Block until ``predicate()`` is true (re-checked on every new message) or ``timeout_s`` passed."""
        end = time.monotonic() + timeout_s
        with self.changed:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0 or self.error is not None:
                    return False
                self.changed.wait(min(left, 0.2))
        return True


def _jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return repr(v)
