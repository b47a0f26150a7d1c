"""A simulated USB SDI-12 adapter with soil probes on it, on a real pseudo-terminal.

    sim = Sdi12Sim([SimProbe("1"), SimProbe("2", ready_s=2)], time_scale=0.01).start()
    ser = serial.Serial(sim.slave_path); ...; sim.inject("1", "bad_crc"); ...; sim.stop()

It answers what the adapter passes on from the bus: ``a!``, ``?!``, ``aI!``, ``aAb!``, ``aM!``/
``aMC!`` (then the service request ``a<CR><LF>`` after the measurement), ``aC!``/``aCC!``,
``aD0!``..``aD9!`` (values split at 35 characters after aM, 75 after aC; the CRC appended after
the C variants). Timing follows SDI-12 at 1200 baud (8.33 ms a character, a 12 ms break, the
probe's wait time), all multiplied by ``time_scale`` so tests run fast. Each probe reports a raw
dielectric count, the soil temperature (degC) and the bulk EC (uS/cm), drifting a little over
(simulated) time. ``inject(address, fault, times)`` makes the next ``times`` answers go wrong:

    no_response    the probe stays silent (one command)
    garbage        a data response becomes line noise
    bad_crc        a CRC data response carries a wrong CRC
    wrong_address  a measure response comes from another address
    short_values   a measurement announces n values but delivers n - 1

The relay thread never blocks: commands longer than ``LINE_MAX`` without '!' are dropped, and
at most ``MAX_PENDING`` answers wait to be sent (the oldest dropped: counted in ``stats``).
"""

import math
import os
import pty
import random
import select
import threading
import time
import tty

from gateway.sources.sdi12 import crc_chars

CHAR_S = 10 / 1200  # one 7E1 character at 1200 baud
BREAK_S = 0.012
LINE_MAX = 64
MAX_PENDING = 64
FAULTS = ("no_response", "garbage", "bad_crc", "wrong_address", "short_values")


class SimProbe:
    """One soil probe: address, wait time ``ready_s`` (announced as ttt) and three drifting values."""

    def __init__(self, address, ready_s=1, seed=None, vwc_raw=2200.0, temp_c=16.0, ec_us_cm=450.0):
        self.address = address
        self.ready_s = ready_s
        self.rng = random.Random(seed if seed is not None else ord(address))
        self.base = (vwc_raw, temp_c, ec_us_cm)
        self.measured = []  # values of the last measurement
        self.ready_at = 0.0  # monotonic time its values are ready
        self.crc = False
        self.concurrent = False
        self.measurements = 0

    def sample(self, sim_t):
        day = math.sin(2 * math.pi * sim_t / 86400.0)
        raw, temp, ec = self.base
        return [
            round(raw + 40 * day + self.rng.gauss(0, 2), 1),
            round(temp + 3 * day + self.rng.gauss(0, 0.05), 2),
            round(ec + 10 * day + self.rng.gauss(0, 1), 0),
        ]


def format_value(v):
    """ "+2200.5" -- a sign, at most 7 digits, an optional point."""
    for decimals in (3, 2, 1, 0):
        s = "%+.*f" % (decimals, v)
        if len(s.replace(".", "")) <= 8:
            return s
    raise ValueError("%r does not fit an SDI-12 value" % v)


class Sdi12Sim:
    def __init__(self, probes, time_scale=0.01, seed=1):
        self.probes = {p.address: p for p in probes}
        self.time_scale = time_scale
        self.rng = random.Random(seed)
        self.faults = {}  # address -> {fault: remaining}
        self.stats = {"commands": 0, "dropped_input": 0, "dropped_output": 0, **{f: 0 for f in FAULTS}}
        self.log = []  # (command, answer or None), the last MAX_PENDING * 4
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.slave_path = os.ttyname(self._slave)
        self._t0 = time.monotonic()
        self._inbuf = b""
        self._pending = []  # (due monotonic, bytes), sorted by due
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, name="sdi12-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(2.0)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def inject(self, address, fault, times=1):
        if fault not in FAULTS:
            raise ValueError("fault %r: one of %s" % (fault, ", ".join(FAULTS)))
        with self._lock:
            self.faults.setdefault(address, {})[fault] = times

    def sim_time(self):
        """Simulated seconds since start (wall time divided by time_scale)."""
        return (time.monotonic() - self._t0) / self.time_scale

    # ---- the thread ----
    def _run(self):
        while not self._stop.is_set():
            wait = 0.01
            if self._pending:
                wait = max(0.0, min(wait, self._pending[0][0] - time.monotonic()))
            try:
                if select.select([self.master], [], [], wait)[0]:
                    self._feed(os.read(self.master, 1024))
            except OSError:
                pass  # nobody has the slave open: EIO on the master until someone does
            self._send_due()

    def _feed(self, data):
        self._inbuf += data
        while b"!" in self._inbuf:
            raw, self._inbuf = self._inbuf.split(b"!", 1)
            cmd = raw.decode("ascii", "replace").strip() + "!"
            self.stats["commands"] += 1
            # the adapter sends a break, the command at 1200 baud; the probe answers within 15 ms
            at = time.monotonic() + (BREAK_S + len(cmd) * CHAR_S + 0.010) * self.time_scale
            self._pending = [p for p in self._pending if not p[2]]  # a new command aborts a service request
            for delay_s, line, is_srq in self._answer(cmd):
                self._queue(at + delay_s * self.time_scale, line, is_srq)
        if len(self._inbuf) > LINE_MAX:
            self.stats["dropped_input"] += len(self._inbuf)
            self._inbuf = b""

    def _queue(self, due, line, is_srq=False):
        data = line.encode("latin-1") if isinstance(line, str) else line
        self._pending.append((due, data, is_srq))
        self._pending.sort(key=lambda p: p[0])
        while len(self._pending) > MAX_PENDING:
            self._pending.pop(0)
            self.stats["dropped_output"] += 1

    def _send_due(self):
        now = time.monotonic()
        while self._pending and self._pending[0][0] <= now:
            _, data, _ = self._pending.pop(0)
            try:
                os.write(self.master, data)
            except OSError:
                self.stats["dropped_output"] += 1

    def _take_fault(self, address, fault):
        with self._lock:
            left = self.faults.get(address, {}).get(fault, 0)
            if left:
                self.faults[address][fault] = left - 1
                self.stats[fault] += 1
            return bool(left)

    # ---- the probes ----
    def _answer(self, cmd):
        """[(delay_s, line, is_service_request), ...] for one command."""
        if cmd == "?!":
            found = list(self.probes)
            return [(0, (found[0] if len(found) == 1 else "\x7f#") + "\r\n", False)] if found else []
        address, body = cmd[0], cmd[1:-1]
        probe = self.probes.get(address)
        if probe is None or self._take_fault(address, "no_response"):
            self._remember(cmd, None)
            return []
        out = self._command(probe, body)
        self._remember(cmd, out)
        return out

    def _remember(self, cmd, out):
        self.log.append((cmd, out))
        del self.log[: -MAX_PENDING * 4]

    def _command(self, probe, body):
        a = probe.address
        if body == "":
            return [(0, a + "\r\n", False)]
        if body == "I":
            return [(0, a + "14FIELDLINSOIL3X100SN%04d\r\n" % ord(a), False)]
        if len(body) == 2 and body[0] == "A":
            new = body[1]
            if new in self.probes and new != a:
                return []  # that address is taken: the probe keeps its own and stays silent
            del self.probes[a]
            probe.address = new
            self.probes[new] = probe
            return [(0, new + "\r\n", False)]
        if body in ("M", "MC", "C", "CC"):
            return self._measure(probe, concurrent=body[0] == "C", crc=body.endswith("C") and len(body) == 2)
        if len(body) == 2 and body[0] == "D" and body[1].isdigit():
            return self._data(probe, int(body[1]))
        return []  # an unknown command: SDI-12 probes stay silent

    def _measure(self, probe, concurrent, crc):
        probe.measurements += 1
        probe.crc, probe.concurrent = crc, concurrent
        probe.measured = probe.sample(self.sim_time())
        n = len(probe.measured)
        if self._take_fault(probe.address, "short_values"):
            probe.measured = probe.measured[:-1]
        probe.ready_at = time.monotonic() + probe.ready_s * self.time_scale
        who = probe.address
        if self._take_fault(probe.address, "wrong_address"):
            who = next(c for c in "9876543210" if c != probe.address)
        line = who + ("%03d%02d" if concurrent else "%03d%d") % (probe.ready_s, n) + "\r\n"
        out = [(0, line, False)]
        if not concurrent and probe.ready_s:
            out.append((probe.ready_s, probe.address + "\r\n", True))  # the service request
        return out

    def _data(self, probe, i):
        a = probe.address
        values = probe.measured if time.monotonic() >= probe.ready_at else []
        budget = 75 if probe.concurrent else 35
        chunks, cur = [], ""
        for v in values:
            s = format_value(v)
            if len(cur) + len(s) > budget:
                chunks.append(cur)
                cur = ""
            cur += s
        if cur:
            chunks.append(cur)
        line = a + (chunks[i] if i < len(chunks) else "")
        if probe.crc:
            crc = crc_chars(line)
            if self._take_fault(a, "bad_crc"):
                crc = crc[:2] + chr(0x40 | ((ord(crc[2]) + 1) & 0x3F))
            line += crc
        if self._take_fault(a, "garbage"):
            line = a + "".join(self.rng.choice("+-.0123456789xyz") for _ in range(10)) + "#"
        return [(0, line + "\r\n", False)]
