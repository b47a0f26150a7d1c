"""The node's end of the link: frames out over the UART, acks and requests in.

    link = Link(board.uart, cfg.device_id, cfg.key, counter, on_request)
    ok = link.deliver({"type": "report", ...})     # stop-and-wait: sent, retried, acked?
    link.listen(300)                                # answer time/config/diagnostics requests

Every frame the gateway sends must carry the device's HMAC (keyless only for diagnostics
requests before provisioning) and a counter the replay guard has not seen. Waiting uses
the UART's real-time ``wait``: the gateway answers in milliseconds whatever the sim speed.
"""

from micropython import const

from shared_protocol import Deframer, ProtocolError, ReplayGuard, decode_frame, encode_frame
from shared_protocol import stats as _stats  # noqa: F401  loaded at boot: a lazy import mid-run meets a fragmented heap

_ACK_TIMEOUT_MS = const(400)
_ATTEMPTS = const(3)


class Link:
    def __init__(self, uart, device_id, key, counter, on_request=None, clock_ms=None):
        self.uart = uart
        self.device_id = device_id
        self.key = key
        self.keyring = {device_id: key} if key else {}
        self.counter = counter
        self.on_request = on_request
        self.clock_ms = clock_ms
        self.guard = ReplayGuard()
        self.deframer = Deframer()
        self._rx = bytearray(128)
        self._acked = 0  # highest counter the gateway acked in this exchange
        self._time_reply = None
        self.tx_frames = self.acked_frames = self.retries = self.rx_bad = self.rx_frames = 0
        self.failed = 0  # deliveries that ran out of attempts
        self._requests = []  # requests waiting for listen(); at most 4
        self.dropped_requests = 0
        self.replies_lost = 0
        self.last_error = None

    # ---- sending ----
    def send(self, msg, ack_req=False, keyless=False):
        msg["device_id"] = self.device_id
        msg["counter"] = c = self.counter.next()
        if ack_req:
            msg["ack_req"] = True
        wire = encode_frame(msg, None if keyless or not self.key else self.key)
        self.uart.write(wire)
        self.tx_frames += 1
        return c

    def deliver(self, msg, attempts=_ATTEMPTS, timeout_ms=_ACK_TIMEOUT_MS):
        """Send ``msg`` until the gateway acks it (``attempts`` tries, doubling the wait). True if acked."""
        first = None
        for i in range(attempts):
            if i:
                self.retries += 1
            c = self.send(msg, ack_req=True)
            if first is None:
                first = c  # an ack for any attempt of this message means it arrived
            if self._wait(lambda: self._acked >= first, timeout_ms << i):
                self.acked_frames += 1
                return True
        self.failed += 1
        return False

    def sync_time(self, timeout_ms=_ACK_TIMEOUT_MS):
        """NTP-style exchange; returns the clock correction in ms (or None without an answer)."""
        if self.clock_ms is None:
            return None
        self._time_reply = None
        t1 = self.clock_ms()
        self.send({"type": "time_sync", "t1_ms": t1})
        for i in range(_ATTEMPTS):
            if self._wait(lambda: self._time_reply is not None, timeout_ms << i):
                r = self._time_reply
                if r["t1_ms"] != t1 or r.get("t2_ms") is None:
                    return None
                t4 = self.clock_ms()
                return ((r["t2_ms"] - t1) + (r.get("t3_ms", r["t2_ms"]) - t4)) // 2
        return None

    # ---- receiving ----
    def listen(self, ms):
        """Answer the requests that came in, then any arriving within ``ms`` real milliseconds of the last."""
        self._serve()
        for _ in range(8):  # a chattering gateway cannot keep the node awake for ever
            if not self._wait(lambda: bool(self._requests), ms):
                return
            self._serve()

    def _wait(self, done, ms):
        if done():
            return True
        if self.uart is None:
            return False
        step = 20 if ms > 20 else ms
        waited = 0
        while waited < ms:
            if self.uart.wait(step):
                self.poll()
                if done():
                    return True
            else:
                waited += step
        return done()

    def poll(self):
        n = self.uart.readinto(self._rx)
        if not n:
            return
        for wire in self.deframer.feed(memoryview(self._rx)[:n]):
            try:
                m = decode_frame(wire, self.keyring, self.guard)
            except ProtocolError as e:
                self.rx_bad += 1
                self.last_error = "%s: %s" % (e.kind, e)
                continue
            if m["device_id"] != self.device_id:
                continue  # another node's traffic on a shared bus (RS-485, radio modem)
            self.rx_frames += 1
            self._handle(m)

    def _handle(self, m):
        t = m["type"]
        if t == "ack":
            if m["auth"] == "hmac":
                for c in m["counters"]:
                    if c > self._acked:
                        self._acked = c
        elif t == "time_sync":
            if m["auth"] == "hmac":
                self._time_reply = m
        elif self.on_request is not None:
            if m["auth"] != "hmac" and t != "diag_request":
                self.rx_bad += 1  # only diagnostics may come keyless
                return
            if len(self._requests) < 4:
                self._requests.append(m)  # answered in listen(): not while a report is in flight
            else:
                self.dropped_requests += 1

    def _serve(self):
        while self._requests:
            m = self._requests.pop(0)
            reply = self.on_request(m)
            if reply is not None:
                self._reply(reply, m["type"] == "diag_request" and m["auth"] != "hmac")
            m = reply = None

    def _reply(self, reply, keyless):
        """Send a reply; one too big for a frame is split by items (diagnostics). Never raises:
        a reply that cannot be encoded is replaced by one naming the problem, or counted."""
        try:
            self.send(reply, keyless=keyless)
            return
        except ProtocolError as e:
            self.last_error = "reply not sent: %s" % e
            items = reply.get("items")
        if isinstance(items, dict) and len(items) > 1:
            names = list(items)
            half = len(names) // 2
            for part in (names[:half], names[half:]):
                sub = {"type": reply["type"], "req_id": reply["req_id"], "items": {}}
                for k in part:
                    sub["items"][k] = items[k]
                self._reply(sub, keyless)
            if reply.get("errors"):
                self._reply({"type": reply["type"], "req_id": reply["req_id"], "items": {},
                             "errors": reply["errors"]}, keyless)
            return
        body = "items" if "req_id" in reply else "values"
        err = {"type": reply["type"], body: {}, "errors": {"reply": self.last_error[:120]}}
        if "req_id" in reply:
            err["req_id"] = reply["req_id"]
        try:
            self.send(err, keyless=keyless)
        except ProtocolError:
            self.replies_lost += 1

    def stats(self):
        return {"tx_frames": self.tx_frames, "acked_frames": self.acked_frames, "retries": self.retries,
                "rx_bad": self.rx_bad}

    def state(self):
        """Replay-guard top of the gateway's counters (kept across deep sleep)."""
        return self.guard.state().get(self.device_id, -1)

    def restore(self, top):
        if top >= 0:
            self.guard.restore({self.device_id: top})
