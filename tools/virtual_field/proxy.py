"""A pseudo-terminal proxy between a node and the gateway that damages whole frames on purpose.

    with FrameProxy(fault_rate=0.2, seed=3) as proxy:         # the node opens proxy.node_path
        gateway = serial.Serial(proxy.gateway_path, timeout=1)  # frames arrive, some damaged: proxy.stats

Two raw pty pairs: A (the node's side) and B (the gateway's side). A background thread relays
bytes between the two masters: "up" is node -> gateway, "down" is gateway -> node. In the
directions listed in ``directions`` the stream is cut into frames at 0x00 and each frame, with
probability ``fault_rate``, suffers one fault from ``faults``:

    drop       the frame vanishes
    corrupt    1-3 of its non-delimiter bytes get bits flipped (never to 0x00: it ends where it did)
    duplicate  it is sent twice
    reorder    it is held back and sent after the next frame; the frame that overtakes it travels
               unharmed, so every swap is a clean pair

A complete frame goes out as soon as its delimiter arrives. A partial frame, and a frame held
for reordering, go out after ``idle_flush_s`` without new bytes in that direction (the rest of
a partial frame sent that way then passes unharmed when its delimiter comes). Each
direction has its own ``random.Random`` (from ``seed`` and the direction's name), so the same
seed and the same input give the same damage however the two streams interleave.

The proxy keeps both slave fds open itself: either side may close and reopen its path (a node
restarting, a gateway killed and restarted) without the pty vanishing or the masters reporting
EIO. Bytes for a side that is not reading pile up first in the kernel's pty queue (pyserial
flushes that on open, as a real port would lose them), then in the proxy, up to
``buffer_limit`` bytes per direction; beyond that the oldest whole frames are dropped and
counted in ``overflow_bytes_<direction>``. The relay thread never blocks on a write.

An optional installer port (``installer=True``: ``proxy.installer_path``, a third raw pty) is a tap at
the gateway's end of the link, where an installer's check tool sits: whole frames written to it join
the "down" stream towards the node (between the gateway's frames, never inside one, and through the
same faults), and every byte the gateway is sent from the node (after the "up" faults) is copied to
it. So a check run there measures the link the gateway has. Its backlog is bounded like the others
(``overflow_bytes_installer``); ``frames_installer`` counts the frames it injected.

``on_up`` and ``on_down`` (optional) are called with no arguments whenever bytes from the node (from the
gateway) arrive, before they are relayed: the demo's field clock follows the nodes' talk (tools/demo_field.py).

``stats`` counts frames read per direction (``frames_up``, ``frames_down``), faults by kind
(``drop`` ... ``reorder``, plus ``reorder_flushed``: held frames that no successor released),
``paused_bytes_<direction>`` (discarded between ``pause(direction)`` and ``resume(direction)``)
and overflow bytes; ``events`` lists each fault as (direction, frame number from 0, kind).
"""

import os
import random
import select
import threading
import time
from collections import deque

from tools.virtual_field.peer import PtyLink

FAULTS = ("drop", "corrupt", "duplicate", "reorder")
DIRECTIONS = ("up", "down")
_DELIM = b"\x00"
_READ_SIZE = 4096
_TICK_S = 0.05  # select timeout: how often idle flushes and stop() are noticed


class _Lane:
    """One direction: frames read from ``src`` (a master), damaged or not, queued for ``dst``."""

    def __init__(self, name, src, dst, faulty, rng):
        self.name = name
        self.src = src
        self.dst = dst
        self.faulty = faulty  # cut into frames and roll for faults; otherwise bytes pass as read
        self.rng = rng
        self.partial = bytearray()  # bytes of a frame whose delimiter has not arrived
        self.head_sent = False  # the idle flush already forwarded the start of the partial frame
        self.in_frame = False  # pass-through lanes: a non-delimiter byte seen since the last 0x00
        self.held = None  # a frame held back by a reorder fault
        self.out = bytearray()  # waiting for ``dst`` to accept it
        self.last_rx_s = 0.0
        self.paused = False
        self.frame_no = 0


class FrameProxy:
    """Relay node <-> gateway over two raw ptys, injecting frame faults; see the module docstring."""

    def __init__(
        self, faults=None, seed=1, fault_rate=0.0, directions=("up",), idle_flush_s=0.5, buffer_limit=64 * 1024,
        installer=False, on_up=None, on_down=None,
    ):  # fmt: skip
        self.faults = tuple(FAULTS if faults is None else faults)
        unknown = sorted(set(self.faults) - set(FAULTS)) + sorted(set(directions) - set(DIRECTIONS))
        if unknown or not self.faults:
            raise ValueError(
                "faults must be some of %s and directions some of %s; got faults %r, directions %r"
                % (", ".join(FAULTS), ", ".join(DIRECTIONS), self.faults, tuple(directions))
            )
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError("fault_rate must be within 0..1, got %r" % (fault_rate,))
        self.fault_rate = fault_rate
        self.on_up = on_up  # called (no arguments) when bytes from the node arrive, before they are relayed
        self.on_down = on_down  # the same for bytes from the gateway to the node
        self.idle_flush_s = idle_flush_s
        self.buffer_limit = buffer_limit
        self._node_pty = PtyLink()
        self._gateway_pty = PtyLink()
        self.node_path = self._node_pty.slave_path
        self.gateway_path = self._gateway_pty.slave_path
        for link in (self._node_pty, self._gateway_pty):
            os.set_blocking(link.master, False)
        node_fd, gateway_fd = self._node_pty.master, self._gateway_pty.master
        self._lanes = {
            "up": _Lane("up", node_fd, gateway_fd, "up" in directions, random.Random("%s:up" % seed)),
            "down": _Lane("down", gateway_fd, node_fd, "down" in directions, random.Random("%s:down" % seed)),
        }
        self.stats = {"frames_up": 0, "frames_down": 0}
        self.stats.update((kind, 0) for kind in FAULTS)
        self.stats["reorder_flushed"] = 0  # held frames sent by the idle flush, no successor came
        for d in DIRECTIONS:
            self.stats["paused_bytes_" + d] = 0
            self.stats["overflow_bytes_" + d] = 0
        self._installer = self._installer_pty = self.installer_path = None
        self._inject = deque()  # whole frames from the installer port, waiting for a frame boundary going down
        if installer:
            self._installer_pty = PtyLink()
            self.installer_path = self._installer_pty.slave_path
            fd = self._installer_pty.master
            os.set_blocking(fd, False)
            self._installer = _Lane("installer", fd, fd, False, None)  # reads: frames to inject; out: the copy
            self.stats["frames_installer"] = 0
            self.stats["overflow_bytes_installer"] = 0
        self.events = deque(maxlen=100000)  # (direction, frame number from 0, fault kind)
        self.error = None  # what ended the relay thread, if anything did
        self._stopping = threading.Event()
        self._thread = None

    # -- control -------------------------------------------------------------------------------

    def start(self):
        if self._thread is not None:
            raise RuntimeError("the proxy is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="frame-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s=2.0):
        """Stop and join the relay thread; raises what ended it, if it died."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join(timeout_s)
            if thread.is_alive():
                raise RuntimeError("the proxy relay thread did not stop within %.1f s" % timeout_s)
            if self.error is not None:
                raise RuntimeError("the proxy relay thread failed") from self.error

    def close(self):
        try:
            self.stop()
        finally:
            self._node_pty.close()
            self._gateway_pty.close()
            if self._installer_pty is not None:
                self._installer_pty.close()

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def pause(self, direction):
        """Pull the cable one way: bytes in ``direction`` are discarded (and counted) until resume()."""
        self._lane(direction).paused = True

    def resume(self, direction):
        self._lane(direction).paused = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def _lane(self, direction):
        if direction not in self._lanes:
            raise ValueError("direction must be one of %s, got %r" % (", ".join(DIRECTIONS), direction))
        return self._lanes[direction]

    # -- relay thread --------------------------------------------------------------------------

    def _run(self):
        lanes = tuple(self._lanes.values())
        inst = self._installer
        sources = [lane.src for lane in lanes] + ([inst.src] if inst is not None else [])
        try:
            while not self._stopping.is_set():
                waiting = [lane.dst for lane in lanes + ((inst,) if inst is not None else ()) if lane.out]
                readable, _, _ = select.select(sources, waiting, [], _TICK_S)
                now_s = time.monotonic()
                if inst is not None and inst.src in readable:
                    self._receive_installer(inst)
                for lane in lanes:
                    if lane.src in readable:
                        self._receive(lane, now_s)
                    if lane.faulty and now_s - lane.last_rx_s >= self.idle_flush_s:
                        self._idle_flush(lane)
                    if lane.name == "down" and self._inject:
                        self._inject_frames(lane)
                    if lane.out:
                        self._send(lane)
                if inst is not None and inst.out:
                    self._send(inst)
        except Exception as e:  # kept for stop() to raise: a dead relay must not pass unnoticed
            self.error = e

    def _receive(self, lane, now_s):
        try:
            chunk = os.read(lane.src, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        if lane.paused:
            self.stats["paused_bytes_" + lane.name] += len(chunk)
            return
        lane.last_rx_s = now_s
        if lane.name == "up" and self.on_up is not None:
            self.on_up()
        elif lane.name == "down" and self.on_down is not None:
            self.on_down()
        if lane.faulty:
            self._cut(lane, chunk)
        else:
            self._count_passing(lane, chunk)
            self._emit(lane, chunk)

    def _emit(self, lane, data):
        """Queue ``data`` for ``lane``'s destination; what goes up to the gateway is copied to the installer."""
        lane.out += data
        if lane.name == "up" and self._installer is not None:
            self._installer.out += data

    def _receive_installer(self, inst):
        try:
            chunk = os.read(inst.src, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        start = 0
        while (end := chunk.find(_DELIM, start)) >= 0:
            frame = bytes(inst.partial) + chunk[start : end + 1]
            inst.partial.clear()
            start = end + 1
            if len(frame) > 1:  # a lone delimiter is no frame
                self._inject.append(frame)
                self.stats["frames_installer"] += 1
        inst.partial += chunk[start:]
        if len(inst.partial) > self.buffer_limit:  # no delimiter for that long: noise, not a frame
            inst.partial.clear()

    def _inject_frames(self, lane):
        """The installer's frames join the stream towards the node, never inside a frame already started."""
        while self._inject and not (lane.head_sent if lane.faulty else lane.in_frame):
            frame = self._inject.popleft()
            if lane.paused:
                self.stats["paused_bytes_" + lane.name] += len(frame)
            elif lane.faulty:
                self._frame(lane, frame)  # the same faults as the gateway's frames
            else:
                self._count_passing(lane, frame)
                lane.out += frame

    def _count_passing(self, lane, chunk):
        parts = chunk.split(_DELIM)
        for part in parts[:-1]:
            if part or lane.in_frame:
                self.stats["frames_" + lane.name] += 1
            lane.in_frame = False
        lane.in_frame = lane.in_frame or bool(parts[-1])

    def _cut(self, lane, chunk):
        start = 0
        while True:
            end = chunk.find(_DELIM, start)
            if end < 0:
                lane.partial += chunk[start:]
                return
            frame = bytes(lane.partial) + chunk[start : end + 1]
            lane.partial.clear()
            start = end + 1
            self._frame(lane, frame)

    def _frame(self, lane, frame):
        tail = lane.head_sent  # the rest of a frame whose head the idle flush already sent
        lane.head_sent = False
        if len(frame) == 1 and not tail:  # a lone delimiter (resync): not a frame, nothing to damage
            self._emit(lane, frame)
            return
        self.stats["frames_" + lane.name] += 1
        number = lane.frame_no
        lane.frame_no += 1
        kind = self._roll(lane.rng)  # rolled for every frame, harmed or not: fewer ways for timing to shift draws
        if lane.held is not None:  # this frame overtakes the held one, unharmed
            self._emit(lane, frame + lane.held)
            lane.held = None
            return
        if kind is None or tail:  # a tail is no longer a whole frame: it passes as it is
            self._emit(lane, frame)
            return
        self.stats[kind] += 1
        self.events.append((lane.name, number, kind))
        if kind == "corrupt":
            self._emit(lane, _corrupt(lane.rng, frame))
        elif kind == "duplicate":
            self._emit(lane, frame + frame)
        elif kind == "reorder":
            lane.held = frame

    def _roll(self, rng):
        if self.fault_rate <= 0.0 or rng.random() >= self.fault_rate:
            return None
        return rng.choice(self.faults)

    def _idle_flush(self, lane):
        if lane.held is not None:
            self._emit(lane, lane.held)
            lane.held = None
            self.stats["reorder_flushed"] += 1
        if lane.partial:
            self._emit(lane, lane.partial)
            lane.partial.clear()
            lane.head_sent = True

    def _send(self, lane):
        try:
            del lane.out[: os.write(lane.dst, lane.out)]
        except (BlockingIOError, InterruptedError):
            pass  # the reader's side is full (or not open): keep it, bounded below
        excess = len(lane.out) - self.buffer_limit
        if excess > 0:  # drop the oldest whole frames, so what is left starts at a frame
            end = lane.out.find(_DELIM, excess - 1)
            cut = excess if end < 0 else end + 1
            del lane.out[:cut]
            self.stats["overflow_bytes_" + lane.name] += cut


def _corrupt(rng, frame):
    """``frame`` with bits flipped in 1-3 of its non-delimiter bytes, none of them turned into 0x00."""
    damaged = bytearray(frame)
    body_len = len(frame) - 1
    for i in rng.sample(range(body_len), min(body_len, rng.randint(1, 3))):
        mask = rng.randint(1, 255)
        while mask == damaged[i]:  # b ^ b == 0 would end the frame early
            mask = rng.randint(1, 255)
        damaged[i] ^= mask
    return bytes(damaged)
