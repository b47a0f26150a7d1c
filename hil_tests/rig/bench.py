"""What a test holds: the board, its link peer, the relay and attenuator, checks that explain themselves.

    def test_x(bench):
        hello = bench.expect("hello", timeout_s=60)
        bench.check(hello["fw_version"] == "0.1.0", "the firmware version in the hello", "0.1.0", hello)
        items = bench.diag(["identity", "firmware"])

Every failed check raises BenchFailure with what was expected, what was received, and where the
full device log is (pytest-embedded's raw serial log, the decoded frames, a virtual node's console).
Timeouts are in wall-clock seconds; a virtual board runs its world as fast as it can, a real one in
real time, so a test waits for *events* (a message, the end of the node's run), never for a fixed time.
"""

import json
import time

SIM_S_PER_WALL_S = 3000.0  # a virtual node at speed 0 covers a simulated hour in ~1 s: timeouts scale from this


class BenchFailure(AssertionError):
    """A device test failed: what was expected, what was received, where the logs are."""


class Bench:
    def __init__(self, target, board, peer, dut, relay=None, attenuator=None, logdir=None, window=None,
                 figures=None):  # fmt: skip
        self.target = target
        self.board = board
        self.peer = peer
        self.dut = dut
        self.relay = relay
        self.attenuator = attenuator
        self.logdir = logdir
        self.window = window or {}
        self._figures = figures if figures is not None else {}
        self._req_id = 0

    @property
    def is_virtual(self):
        return self.board.is_virtual

    # ---- failures that explain themselves ----
    def logs(self):
        paths = ["device log (raw serial, pytest-embedded): %s" % getattr(self.dut, "logfile", "-"),
                 "decoded frames: %s" % self.peer.frames_log]  # fmt: skip
        if self.board.console_log:
            paths.append("node console: %s" % self.board.console_log)
        return "\n".join(paths)

    def fail(self, what, expected, received):
        raise BenchFailure("%s\n  expected: %s\n  received: %s\n%s" % (what, expected, _short(received), self.logs()))

    def check(self, ok, what, expected, received):
        if not ok:
            self.fail(what, expected, received)

    def figure(self, name, value):
        """A figure for the run's summary (campaign figures: see rig/results.py)."""
        self._figures[name] = value

    # ---- the link ----
    @property
    def messages(self):
        return self.peer.messages

    def of_type(self, name):
        return self.peer.of_type(name)

    def expect(self, mtype, timeout_s, where=None, what=None):
        """The first message of ``mtype`` (matching ``where(msg)``) received, waiting up to ``timeout_s``."""

        def found():
            return next((m for m in self.peer.of_type(mtype) if where is None or where(m)), None)

        if not self.peer.wait(lambda: found() is not None, timeout_s):
            seen = [m["type"] for m in self.peer.messages[-20:]]
            self.fail(what or "no %s message from the node within %.0f s" % (mtype, timeout_s),
                      "a %s message%s" % (mtype, "" if where is None else " matching the test's condition"),
                      "%d messages, the last types %s; link errors %s" % (len(self.peer.messages), seen,
                                                                           self.peer.errors))  # fmt: skip
        return found()

    def diag(self, items=(), timeout_s=None):
        """Ask the node for diagnostics ``items`` (all when empty); returns {item: value} once every item came.
        The node answers when it next listens (after a report or health record)."""
        self._req_id += 1
        rid = self._req_id
        self.peer.request({"type": "diag_request", "req_id": rid, "items": list(items)})
        timeout_s = timeout_s or self.listen_timeout_s()
        got, errors = {}, {}

        def complete():
            for r in self.peer.of_type("diag_response"):
                if r.get("req_id") == rid:
                    got.update(r.get("items") or {})
                    errors.update(r.get("errors") or {})
            want = set(items) if items else {"identity", "firmware", "clock", "log"}
            return want <= set(got) | set(errors)

        if not self.peer.wait(complete, timeout_s):
            self.fail("the node did not answer diagnostics request %d within %.0f s" % (rid, timeout_s),
                      "items %s" % (list(items) or "all"), "items %s, errors %s" % (sorted(got), errors))  # fmt: skip
        if errors:
            self.fail("the node answered diagnostics with errors", "no errors", errors)
        return got

    def listen_timeout_s(self):
        """How long a request may wait for the node to listen: its report period, in wall time."""
        if self.is_virtual:
            return 30.0
        return float(self.window.get("listen_s", 600))

    # ---- the run ----
    def run_to_end(self, timeout_s=None):
        """A virtual board: wait until the node reached the end of its window (and exited);
        a real board: listen for the window's ``real_s`` seconds."""
        if self.is_virtual:
            b = self.board
            timeout_s = timeout_s or 60 + (b.until - b.start_epoch) / SIM_S_PER_WALL_S * 8
            if not b.wait_done(timeout_s):
                self.fail("the virtual node did not finish its window in %.0f s" % timeout_s,
                          "the node exits at %d" % b.until, "world time %s" % b.sim_now())  # fmt: skip
            self.peer.pump(0.3)  # the last frames
            rc = b.node.returncode
            self.check(rc == 0, "the virtual node's exit status", 0, "%s; console tail: %s" % (
                rc, b.node.text()[-1500:]))  # fmt: skip
        else:
            time.sleep(float(self.window.get("real_s", 900)))

    def wait_sim(self, seconds, timeout_s=None):
        """Let ``seconds`` of the node's time pass: a virtual board's world clock, a real board's wall clock.
        False when a virtual node ended (or ``timeout_s`` ran out) first."""
        if not self.is_virtual:
            time.sleep(seconds)
            return True
        b = self.board
        end = b.sim_now() + seconds
        deadline = time.monotonic() + (timeout_s or 60 + seconds / SIM_S_PER_WALL_S * 8)
        while b.sim_now() < end:
            if b.done() or time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def reset(self):
        """Reset the node: a virtual board is power-cycled; a real one's EN line is pulsed through the USB
        bridge's RTS (the auto-reset circuit of ESP32 DevKit boards), or power-cycled when a relay is given."""
        if self.is_virtual or self.relay is not None:
            self.power_cycle()
            return
        port = self.dut.serial.proc
        port.dtr = False  # IO0 high: boot the firmware, not the ROM loader
        port.rts = True  # EN low: in reset
        time.sleep(0.2)
        port.rts = False

    def power_cycle(self, off_s=None):
        """Cut the board's power and restore it (the relay; a virtual board's process killed and restarted)."""
        if self.relay is None:
            import pytest

            pytest.skip("needs a power relay: pass --relay-cmd (see docs/bench-rig.md)")
        if off_s is None:
            self.relay.cycle()
        else:
            self.relay.cycle(off_s)


def _short(v, limit=1500):
    try:
        s = v if isinstance(v, str) else json.dumps(v, default=repr, sort_keys=True)
    except (TypeError, ValueError):
        s = repr(v)
    return s if len(s) <= limit else s[:limit] + "... (%d chars)" % len(s)
