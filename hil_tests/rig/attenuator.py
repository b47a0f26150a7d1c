"""The link attenuator: frames between the board and the suite dropped, corrupted, duplicated, reordered, or
the link cut for a while. It is tools/virtual_field/proxy.py's FrameProxy, used as it is.

    att = Attenuator(board.proxy)                        # a virtual board already sits behind one
    att = Attenuator.bridged("/dev/ttyUSB0")             # a real board: port <-> bridge <-> proxy; open att.port
    att.set(0.2)                                         # 20 % of frames damaged, both ways, every kind
    att.disconnect(); ...; att.reconnect()               # a long disconnection (bytes discarded and counted)
    att.stats                                            # frames and faults per kind (FrameProxy.stats)

FrameProxy delays only by holding a frame back (reorder) and by pausing; it adds no fixed latency.
A radio link's real attenuator (RF step attenuator between the modem antennas) is described in
docs/bench-rig.md; this one works at the frame level on any serial link.
"""

import os
import select
import threading

import serial

from tools.virtual_field.proxy import DIRECTIONS, FAULTS, FrameProxy


class Attenuator:
    def __init__(self, proxy, bridge=None):
        self.proxy = proxy
        self.bridge = bridge
        self.port = proxy.gateway_path

    @classmethod
    def bridged(cls, port, baud=115200, seed=1):
        """A real board's port relayed through a FrameProxy; the suite opens ``port`` of the result."""
        proxy = FrameProxy(seed=seed, directions=DIRECTIONS).start()
        return cls(proxy, SerialBridge(port, proxy.node_path, baud).start())

    def set(self, rate, faults=FAULTS):
        """Damage ``rate`` of the frames (0 turns faults off), with kinds drawn from ``faults``."""
        self.proxy.faults = tuple(faults)
        self.proxy.fault_rate = float(rate)

    def disconnect(self):
        for d in DIRECTIONS:
            self.proxy.pause(d)

    def reconnect(self):
        for d in DIRECTIONS:
            self.proxy.resume(d)

    @property
    def stats(self):
        return dict(self.proxy.stats)

    def faults_injected(self):
        s = self.proxy.stats
        return sum(s[k] for k in FAULTS)

    def close(self):
        if self.bridge is not None:
            self.bridge.close()
            self.proxy.close()


class SerialBridge:
    """Bytes both ways between a serial port (a real board) and a pty path (the proxy's node side)."""

    def __init__(self, port, pty_path, baud=115200):
        self.board = serial.Serial(port, baud, timeout=0)
        self.pty = serial.Serial(pty_path, timeout=0)
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, name="serial-bridge", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        a, b = self.board.fileno(), self.pty.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.05)
            for src, dst in ((a, self.pty), (b, self.board)):
                if src in ready:
                    try:
                        data = os.read(src, 4096)
                    except OSError:
                        continue  # the board re-enumerating after a power cut: try again
                    if data:
                        dst.write(data)

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self.board.close()
        self.pty.close()
