"""Asking a node about itself over a FrameLink: diagnostics requests, round trips, and what it sends anyway.

    s = DiagSession(link, device_id=None, keyring=registry.keyring, clock=time.time)
    s.discover(wait_s=90)                         # the node's device id, from the first frame it sends
    snap = s.snapshot(wait_s=90)                  # every diagnostics item: snap.items, snap.errors, snap.item_at
    rtt = s.round_trip(["clock"], timeout_s=2.0)  # seconds, or None (lost)

Requests are keyless diag_requests (the firmware answers diagnostics without a key, before and after
provisioning), so the check never uses the gateway's frame counters: a keyed frame from the check
would move the node's replay window and lock the gateway out. The node answers each item in its own
frame as soon as it has it; ``snapshot`` asks again for the items still missing (lost frames).
Everything else the node sends on the link (reports, health, time requests, hellos) is kept in
``keyed``: (type, verdict) where verdict is "ok" (authenticates with the registry's key, ``keyring``:
device id -> key), "bad" (it does not) or "unknown" (no key to try), the passive proof that node and
registry hold the same key.
A node listens only at some wakes: a request waits on the link until it does, so every wait here
is a real deadline the caller chooses.
"""

import time

from gateway.cbor_codec import install as _use_cbor2
from provisioning.checks_result import CheckError
from shared_protocol import Deframer, ProtocolError, catalogue, decode_frame, encode_frame
from shared_protocol.frame import parse_header, unframe

_use_cbor2()  # decode as the gateway does
ITEMS = ("identity", "firmware", "config", "tilt", "gnss", "sensors", "power", "link", "clock", "log", "faults")
_DIAG_RESPONSE = "diag_response"


class NoAnswer(CheckError):
    """The node did not answer in time; the message says what was received meanwhile."""


class Snapshot:
    """A node's diagnostics: ``items`` {item: value}, ``errors`` {item: text} (what the node said went
    wrong), ``item_at`` {item: reference clock when its answer arrived}, ``missing`` (never answered)."""

    def __init__(self, items, errors=None, item_at=None, missing=()):
        self.items, self.errors, self.missing = items, dict(errors or {}), tuple(missing)
        self.item_at = dict(item_at or {})

    @property
    def at(self):
        """The reference time of the answers (the earliest arrival)."""
        return min(self.item_at.values()) if self.item_at else None

    def get(self, item, default=None):
        return self.items.get(item, default)

    def why_missing(self, item):
        """The node's error text for ``item``, or why it is not there."""
        if item in self.errors:
            return self.errors[item]
        return "no answer for it" if item in self.missing else "not asked"


class DiagSession:
    def __init__(self, link, device_id=None, keyring=None, clock=time.time, frame_limit=5000):
        self.link = link
        self.device_id = device_id
        self.keyring = keyring  # the gateway registry's keys (id -> bytes), or None
        self.clock = clock  # the reference UTC clock (the laptop's; the world's in the virtual field)
        self.deframer = Deframer()
        self.counter = 1  # keyless frames are outside the replay window: any counter will do
        self.req_id = int(time.monotonic() * 1000) & 0x7FFF  # distinct from a previous run's late answers
        self.answers = {}  # req_id -> [(monotonic time, message), ...]
        self.keyed = []  # (type, "ok" | "bad" | "unknown") of the node's authenticated frames
        self.received = []  # (type, auth) of every frame, for error messages (bounded)
        self.bad_frames = 0  # undecodable frames (damaged on the link)
        self.sent = 0
        self._frame_limit = frame_limit

    # ---- receiving ----
    def pump(self, timeout_s):
        """Read and sort what arrives within ``timeout_s`` (returns as soon as something did)."""
        data = self.link.read(timeout_s)
        now = time.monotonic()
        for wire in self.deframer.feed(data):
            self._frame(wire, now)
        return bool(data)

    def _frame(self, wire, now):
        try:
            raw = unframe(wire)
            _, tid, flags, dev, _ = parse_header(raw)
        except ProtocolError:
            self.bad_frames += 1
            return
        if self.device_id is not None and dev != self.device_id:
            return  # another node on a shared bus
        keyed = not flags & 1  # FLAG_CRC: keyless
        known = keyed and self.keyring is not None and self.keyring.get(dev) is not None
        try:
            m = decode_frame(wire, {dev: self.keyring[dev]} if known else {})
        except ProtocolError as e:
            if keyed and e.kind == "auth":
                t = catalogue.lookup(tid)
                name = t[1] if t else "type %d" % tid
                self.keyed.append((name, "bad" if known else "unknown"))
                self._note("%s/%s" % (name, "BAD TAG" if known else "unverified"), dev)
            else:
                self.bad_frames += 1
            return
        self._note("%s/%s" % (m["type"], m["auth"]), dev)
        if keyed:
            self.keyed.append((m["type"], "ok"))
        elif m["type"] == _DIAG_RESPONSE:
            self.answers.setdefault(m["req_id"], []).append((now, m))

    def _note(self, what, dev):
        if self.device_id is None:
            self.device_id = dev  # the first node heard on the link is the one to check
        if len(self.received) < self._frame_limit:
            self.received.append(what)

    def heard(self):
        """What the node sent so far, for messages: "hello/hmac x1, diag_response/crc x11"."""
        counts = {}
        for w in self.received:
            counts[w] = counts.get(w, 0) + 1
        return ", ".join("%s x%d" % kv for kv in counts.items()) or "nothing"

    # ---- asking ----
    def discover(self, wait_s):
        """The node's device id: given, or from the first frame it sends within ``wait_s``."""
        end = time.monotonic() + wait_s
        while self.device_id is None:
            left = end - time.monotonic()
            if left <= 0:
                raise NoAnswer(
                    "no frame from a node on %s within %.0f s (bad bytes: %d); pass --device-id, check the "
                    "cable and that the node is powered" % (self.link.target, wait_s, self.bad_frames)
                )
            self.pump(min(left, 0.5))
        return self.device_id

    def send_request(self, items):
        """Send one keyless diag_request; returns its req_id."""
        self.req_id = (self.req_id + 1) & 0xFFFF
        msg = {"type": "diag_request", "device_id": self.device_id, "counter": self.counter,
               "req_id": self.req_id, "items": list(items)}  # fmt: skip
        self.counter += 1
        self.link.write(encode_frame(msg, None))
        self.sent += 1
        return self.req_id

    def _wait_answer(self, req_id, deadline):
        while not self.answers.get(req_id):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.05))
        return True

    def snapshot(self, wait_s, items=ITEMS, retry_s=2.0):
        """Every item of ``items`` the node answers within ``wait_s``. The items still missing are asked
        for again after ``retry_s`` without a new answer frame (a lost request or lost answers; a node
        that is asleep answers the requests waiting for it when it next listens)."""
        end = time.monotonic() + wait_s
        got, errors, item_at, rids = {}, {}, {}, []
        last = -retry_s - 1.0  # monotonic time of the last request sent or answer frame received
        while True:
            want = [i for i in items if i not in got and i not in errors]
            now = time.monotonic()
            if not want or now >= end:
                break
            if now - last >= retry_s:
                rids.append(self.send_request(want))
                last = now
            before = sum(len(self.answers.get(r, ())) for r in rids)
            self.pump(min(0.05, max(0.0, end - now)))
            if sum(len(self.answers.get(r, ())) for r in rids) != before:
                last = time.monotonic()
                at = self.clock()
                for r in rids:
                    for _, m in self.answers.get(r, ()):
                        for k, v in (m.get("items") or {}).items():
                            if k not in got:
                                got[k], item_at[k] = v, at
                        errors.update(m.get("errors") or {})
        if not got and not errors:
            raise NoAnswer("the node (device %s) did not answer a diagnostics request within %.0f s; it sent: %s"
                           % (self.device_id, wait_s, self.heard()))  # fmt: skip
        return Snapshot(got, errors, item_at, [i for i in items if i not in got and i not in errors])

    def round_trip(self, items, timeout_s):
        """Seconds from request to the first answer frame, or None if none came within ``timeout_s``."""
        rid = self.send_request(items)
        t0 = time.monotonic()
        if self._wait_answer(rid, t0 + timeout_s):
            return self.answers[rid][0][0] - t0
        return None

    def late_answers(self, req_ids):
        """Which of ``req_ids`` were answered after all (after their round trip timed out)."""
        return [r for r in req_ids if self.answers.get(r)]
