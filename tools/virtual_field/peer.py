"""The CPython end of a node link on a pseudo-terminal: deframe, authenticate, ack, answer time sync.

    link = PtyLink()                              # link.slave_path goes to the node
    peer = NodePeer(link, {dev_id: key})
    peer.pump(timeout_s=1.0)                      # handles what arrived; peer.messages grows

The gateway's node source (issue 4) does the same job for production; this peer is the
harness side of demos and sim-tier tests, with every error kept for inspection.
"""

import os
import pty
import select
import time
import tty

from gateway.cbor_codec import install as _use_cbor2
from shared_protocol import Deframer, ProtocolError, ReplayGuard, decode_frame, encode_frame

_use_cbor2()  # CPython decodes as the gateway does: with cbor2

GATEWAY_ID = 0


class PtyLink:
    """A pseudo-terminal pair in raw mode: the node opens ``slave_path``, we keep the master."""

    def __init__(self):
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.slave_path = os.ttyname(self._slave)
        self.rx_bytes = 0  # everything the node sent: the uplink volume

    def read(self, timeout_s):
        if not select.select([self.master], [], [], timeout_s)[0]:
            return b""
        try:
            data = os.read(self.master, 4096)
        except OSError:  # the node side closed: EIO on the master
            return b""
        self.rx_bytes += len(data)
        return data

    def write(self, data):
        os.write(self.master, data)

    def close(self):
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


class NodePeer:
    """Receives frames from nodes; acks what asks for it; answers time sync; records everything."""

    def __init__(self, link, keyring, clock=time.time, keep=100000):
        self.link = link
        self.keyring = keyring
        self.clock = clock
        self.deframer = Deframer()
        self.guard = ReplayGuard()
        self.messages = []
        self.errors = {}
        self.keep = keep
        self.counter = 1
        self.sent = 0
        self.queued = []  # (message, keyless) sent to the node right after its next report: it listens then

    def pump(self, timeout_s=0.1):
        """Read what is waiting (up to ``timeout_s``) and handle it; returns new messages."""
        new = []
        chunk = self.link.read(timeout_s)
        for wire in self.deframer.feed(chunk):
            try:
                msg = decode_frame(wire, self.keyring, self.guard)
            except ProtocolError as e:
                self.errors[e.kind] = self.errors.get(e.kind, 0) + 1
                continue
            msg["rx_time"] = self.clock()
            self._answer(msg)
            new.append(msg)
        self.messages.extend(new)
        del self.messages[: max(0, len(self.messages) - self.keep)]
        return new

    def _answer(self, msg):
        dev = msg["device_id"]
        key = self.keyring.get(dev)
        if msg.get("ack_req") and msg.get("auth") == "hmac":
            self.send({"type": "ack", "device_id": dev, "counters": [msg["counter"]]}, key)
        if msg["type"] == "time_sync" and msg.get("t2_ms") is None:
            now_ms = int(self.clock() * 1000)
            reply = {"type": "time_sync", "device_id": dev, "t1_ms": msg["t1_ms"], "t2_ms": now_ms, "t3_ms": now_ms}
            self.send(reply, key)
        if self.queued and msg["type"] in ("report", "health", "hello"):
            req, keyless = self.queued.pop(0)  # one per wake: the node listens briefly
            self.send(dict(req, device_id=dev), None if keyless else key)

    def request(self, message, keyless=False):
        """Queue a request (diag_request, config_get/set) for when the node is next awake."""
        self.queued.append((message, keyless))

    def send(self, message, key):
        message = dict(message)
        message.setdefault("counter", self.counter)
        self.counter += 1
        self.link.write(encode_frame(message, key))
        self.sent += 1

    def of_type(self, name):
        return [m for m in self.messages if m["type"] == name]
