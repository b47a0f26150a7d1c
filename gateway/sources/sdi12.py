"""SDI-12 soil probes behind a USB SDI-12 adapter: ASCII commands out, CR LF lines back.

    src = make_source(SourceConfig(kind="sdi12", name="soil", port="/dev/ttyUSB1", options=opts), ctx)
    await src.start()        # every interval_s: aM!/aC! (+CRC), aD0!.. -> Intake readings -> ctx.submit

The adapter does the line work (break, 1200 baud 7E1, timing); this module speaks the SDI-12 v1.4
command set through it. Each poll runs in a worker thread (``asyncio.to_thread``) so a probe that
does not answer never blocks the event loop: concurrent probes (``aC!``) are started first, then
the others are measured one by one (``aM!``, waiting ``ttt`` s or for the service request), then
the concurrent ones are read. A failed measurement is retried ``retries`` times with a doubling
pause; a probe whose poll failed is polled again after ``retry_s`` (doubling, up to interval_s).
Errors are counted by kind: no_response, garbage, bad_crc, wrong_address, short_values.
"""

import asyncio
import logging
import math
import re
import threading
import time

import serial

from gateway.config import BAUDRATES, SourceConfig
from gateway.errors import SourceError
from gateway.sources.base import Intake, Source
from gateway.stream import OUT_OF_RANGE, SUSPECT, UNITS

log = logging.getLogger("fieldline.gateway.sdi12")

ADDRESSES = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ERROR_KINDS = ("no_response", "garbage", "bad_crc", "wrong_address", "short_values")
FRAMINGS = {"7E1": (serial.SEVENBITS, serial.PARITY_EVEN), "8N1": (serial.EIGHTBITS, serial.PARITY_NONE)}
LINE_MAX = 128  # bytes: longer than any SDI-12 response (address + 75 value chars + CRC + CR LF)
_VALUE = re.compile(r"[+-][0-9.]*")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
_PROBE_KEYS = ("address", "sensor", "concurrent", "crc", "values")
_VALUE_KEYS = ("index", "quantity", "unit", "scale", "offset", "coeffs", "lo", "hi")


class Sdi12Error(SourceError):
    """A probe's answer was missing or wrong; ``kind`` is one of ERROR_KINDS, ``received`` the raw line."""

    def __init__(self, kind, message, received=None):
        self.kind, self.received = kind, received
        super().__init__("%s: %s%s" % (kind, message, "" if received is None else " (received %r)" % received))


class Sdi12FormatError(Sdi12Error, ValueError):
    """A response that breaks the SDI-12 format (kind "garbage")."""

    def __init__(self, message, received=None):
        super().__init__("garbage", message, received)


# ---- the wire format ----


def crc16(data):
    """SDI-12 CRC: CRC-16/ARC (reflected 0xA001, init 0) over ``data`` (bytes or ASCII str)."""
    crc = 0
    for b in data.encode("ascii") if isinstance(data, str) else data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def crc_chars(data):
    """The three ASCII characters SDI-12 appends for ``data``'s CRC ("0+3.14" -> "OqZ")."""
    crc = crc16(data)
    return "".join(chr(0x40 | c) for c in (crc >> 12, (crc >> 6) & 0x3F, crc & 0x3F))


def strip_crc(line):
    """``line`` (CR LF removed) without its CRC; Sdi12Error "bad_crc" when it does not match."""
    if len(line) < 4 or line[-3:] != crc_chars(line[:-3]):
        raise Sdi12Error("bad_crc", "CRC does not match", line)
    return line[:-3]


def parse_values(response):
    """[1.23, -4.5, 6.0] from "a+1.23-4.5+6" (trailing CR LF, and an unchecked CRC, are tolerated).

    Each value: a sign, 1-7 digits, at most one decimal point. Raises Sdi12FormatError naming the fault.
    """
    line = response.rstrip("\r\n")
    if not line or line[0] not in ADDRESSES:
        raise Sdi12FormatError("a data response starts with an address 0-9 A-Z a-z", response)
    body = line[1:]
    if len(body) >= 3 and all(0x40 <= ord(c) <= 0x7F for c in body[-3:]):
        body = body[:-3]  # a CRC: the caller checks it with strip_crc
    values, pos = [], 0
    for m in _VALUE.finditer(body):
        if m.start() != pos:
            raise Sdi12FormatError("unexpected %r at offset %d" % (body[pos : m.start()], pos + 1), response)
        tok, pos = m.group(), m.end()
        digits = tok[1:].replace(".", "", 1)
        if not digits.isdigit() or len(digits) > 7:
            raise Sdi12FormatError("value %r needs a sign, 1-7 digits and at most one '.'" % tok, response)
        values.append(float(tok))
    if pos != len(body):
        raise Sdi12FormatError("unexpected %r at offset %d" % (body[pos:], pos + 1), response)
    return values


def parse_measure(response, address, concurrent):
    """(ready_s, count) from a measure response "atttn" (aM!) or "atttnn" (aC!)."""
    n = 6 if concurrent else 5
    if len(response) != n or not response[1:].isdigit():
        raise Sdi12FormatError("a measure response 'a%s'" % ("tttnn" if concurrent else "tttn"), response)
    check_address(response, address)
    return int(response[1:4]), int(response[4:])


def check_address(response, address):
    if response[:1] != address:
        raise Sdi12Error("wrong_address", "expected an answer from %r" % address, response)


# ---- the adapter (blocking: runs in a worker thread) ----


class Sdi12Bus:
    """One command out, one CR LF line back, through an open pyserial port (or a fake with read/write)."""

    def __init__(self, ser, timeout_s=1.0, time_scale=1.0, abort=None):
        self.ser = ser
        self.timeout_s = timeout_s
        self.time_scale = time_scale  # multiplies announced waits and backoff (simulated probes in tests)
        self.abort = abort or threading.Event()
        self.buf = b""

    def command(self, cmd, timeout_s=None):
        """Send ``cmd`` ("0M!"); its response line without CR LF; Sdi12Error on silence or garbage."""
        self.buf = b""
        self.ser.reset_input_buffer()
        self.ser.write(cmd.encode("ascii"))
        while True:
            line = self.read_line(self.timeout_s if timeout_s is None else timeout_s)
            if line is None:
                raise Sdi12Error("no_response", "no answer to %s within %.2f s" % (cmd, self.timeout_s))
            if line != cmd:  # some adapters echo the command
                return line

    def read_line(self, timeout_s):
        """The next line (str, CR LF removed) or None after ``timeout_s`` of waiting."""
        deadline = time.monotonic() + timeout_s
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.abort.is_set():
                return None
            self.buf += self.ser.read(max(1, self.ser.in_waiting))  # the port's timeout is short (0.05 s)
            if len(self.buf) > LINE_MAX:
                raw, self.buf = self.buf, b""
                raise Sdi12FormatError("no CR LF within %d bytes" % LINE_MAX, raw[:LINE_MAX])
        raw, self.buf = self.buf.split(b"\r\n", 1)
        try:
            line = raw.decode("ascii")
        except UnicodeDecodeError:
            raise Sdi12FormatError("non-ASCII bytes", raw) from None
        if not line.isprintable():
            raise Sdi12FormatError("control characters", line)
        return line

    def sleep(self, seconds):
        self.abort.wait(seconds * self.time_scale)


def identify(bus, address):
    """The aI! line: version, vendor, model, sensor version, ... (address checked)."""
    line = bus.command(address + "I!")
    check_address(line, address)
    return line[1:]


def query_address(bus):
    """The address of the only probe on the bus (?!)."""
    line = bus.command("?!")
    if len(line) != 1 or line not in ADDRESSES:
        raise Sdi12FormatError("an address", line)
    return line


def change_address(bus, old, new):
    """aAb!: the probe at ``old`` answers from ``new``."""
    line = bus.command("%sA%s!" % (old, new))
    check_address(line, new)


def start_measurement(bus, address, concurrent, crc):
    """Send aM!/aMC!/aC!/aCC!; (ready_s, count) as announced."""
    cmd = address + ("C" if concurrent else "M") + ("C" if crc else "") + "!"
    return parse_measure(bus.command(cmd), address, concurrent)


def wait_service_request(bus, address, ready_s):
    """Wait up to ready_s (scaled) for the service request "a" that ends an aM! early."""
    if ready_s <= 0:
        return
    line = bus.read_line(ready_s * bus.time_scale + bus.timeout_s)
    if line is not None:
        check_address(line, address)


def read_data(bus, address, count, crc):
    """aD0!, aD1!, ... until ``count`` values; (values, short) -- short when the probe ran out."""
    values = []
    for i in range(10):
        line = bus.command("%sD%d!" % (address, i))
        check_address(line, address)
        if crc:
            line = strip_crc(line)
        got = parse_values(line)
        if not got:
            break
        values += got
        if len(values) >= count:
            return values[:count], False
    return values, True


# ---- configuration ----


def check_config(t):
    """The SourceConfig of one kind = "sdi12" [[sources]] table; every mistake via t.fail."""
    t.only(("kind", "name", "port", "baudrate", "framing", "reopen_s", "interval_s", "timeout_s", "retries",
            "retry_s", "crc", "probes"))  # fmt: skip
    interval_s = t.number("interval_s", 300.0, 1.0, 86400.0)
    opts = {
        "interval_s": interval_s,
        "timeout_s": t.number("timeout_s", 1.0, 0.05, 30.0),
        "retries": t.integer("retries", 2, 0, 10),
        "retry_s": t.number("retry_s", 30.0, 0.0, 86400.0),
        "crc": t.flag("crc", False),
        "framing": t.text("framing", "7E1", choices=tuple(FRAMINGS)),
        "probes": [],
    }
    probes = t.tables("probes")
    if not probes:
        t.fail("probes", "at least one [[sources.probes]] table (required)")
    seen = {}
    for i, p in enumerate(probes):
        probe = _check_probe(p, opts["crc"])
        if probe["address"] in seen:
            p.fail("address", "an address unique among probes (probes[%d] has it)" % seen[probe["address"]],
                   probe["address"])  # fmt: skip
        seen[probe["address"]] = i
        opts["probes"].append(probe)
    return SourceConfig(
        kind="sdi12",
        name=t.text("name"),
        port=t.text("port", expected="a serial device path or pyserial URL"),
        baudrate=t.integer("baudrate", 1200, choices=BAUDRATES),
        reopen_s=t.number("reopen_s", 2.0, 0.1, 60.0),
        options=opts,
    )


def _check_probe(p, crc):
    p.only(_PROBE_KEYS)
    address = p.text("address", expected="one character 0-9 A-Z a-z", pattern=re.compile(r"[0-9A-Za-z]\Z"))
    sensor = p.text("sensor", "sdi12-" + address, "a sensor name of 1-64 characters A-Z a-z 0-9 . _ -", _NAME)
    values = p.tables("values")
    if not values:
        p.fail("values", "at least one [[...values]] entry mapping a value index to a quantity (required)")
    out, seen = [], {}
    for j, v in enumerate(values):
        v.only(_VALUE_KEYS)
        index = v.integer("index", lo=0, hi=98)
        if index in seen:
            v.fail("index", "a value index mapped once (values[%d] maps it)" % seen[index], index)
        seen[index] = j
        quantity = v.text("quantity", choices=None, expected="a known quantity (e.g. soil_water_content)")
        if quantity not in UNITS:
            v.fail("quantity", "a known quantity: " + ", ".join(q for q in UNITS if q.startswith("soil")) + ", ...",
                   quantity)  # fmt: skip
        unit = v.text("unit", UNITS[quantity], '"%s" (the unit of %s)' % (UNITS[quantity], quantity))
        if unit != UNITS[quantity]:
            v.fail("unit", '"%s" (the unit of %s)' % (UNITS[quantity], quantity), unit)
        coeffs = v.data.get("coeffs")
        if coeffs is not None and (not isinstance(coeffs, list) or not coeffs or
                                   not all(type(c) in (int, float) and math.isfinite(c) for c in coeffs)):  # fmt: skip
            v.fail("coeffs", "a non-empty list of numbers (c0 + c1*raw + c2*raw^2 ...)", coeffs)
        if coeffs is not None and ("scale" in v.data or "offset" in v.data):
            v.fail("coeffs", "either coeffs or scale/offset, not both")
        lo = v.number("lo", None, -math.inf, expected="a number") if "lo" in v.data else None
        hi = v.number("hi", None, -math.inf, expected="a number") if "hi" in v.data else None
        if lo is not None and hi is not None and hi < lo:
            v.fail("hi", "a number >= lo (%g)" % lo, hi)
        out.append({"index": index, "quantity": quantity, "unit": unit,
                    "scale": v.number("scale", 1.0, -math.inf, expected="a number"),
                    "offset": v.number("offset", 0.0, -math.inf, expected="a number"),
                    "coeffs": [float(c) for c in coeffs] if coeffs else None, "lo": lo, "hi": hi})  # fmt: skip
    return {"address": address, "sensor": sensor, "concurrent": p.flag("concurrent", False),
            "crc": p.flag("crc", crc), "values": out}  # fmt: skip


def make_source(scfg, ctx):
    return Sdi12Source(scfg, ctx)


# ---- the source ----


class _Probe:
    def __init__(self, opts):
        self.address = opts["address"]
        self.sensor = opts["sensor"]
        self.concurrent = opts["concurrent"]
        self.crc = opts["crc"]
        self.values = opts["values"]
        self.next_due = 0.0
        self.last_good = None
        self.failures = 0  # consecutive failed polls
        self.errors = {}
        self.last_error = None

    def health(self):
        return {"sensor": self.sensor, "concurrent": self.concurrent, "crc": self.crc, "last_good": self.last_good,
                "consecutive_failures": self.failures, "errors": dict(self.errors),
                "last_error": self.last_error}  # fmt: skip


def calibrate(raw, vmap):
    """The quantity's value from a probe's raw value: polynomial ``coeffs`` or scale/offset."""
    if vmap.get("coeffs"):
        return sum(c * raw**k for k, c in enumerate(vmap["coeffs"]))
    return raw * vmap.get("scale", 1.0) + vmap.get("offset", 0.0)


class Sdi12Source(Source):
    kind = "sdi12"

    def __init__(self, cfg, ctx, time_scale=1.0, serial_for_url=serial.serial_for_url):
        super().__init__(cfg.name, ctx)
        self.cfg = cfg
        self.opts = cfg.options
        self.time_scale = time_scale
        self._serial_for_url = serial_for_url
        self.probes = [_Probe(p) for p in self.opts["probes"]]
        self.ser = None
        self.connected = False
        self.opens = 0
        self.polls = 0
        self.readings = 0
        self.errors = {}
        self._abort = threading.Event()
        self._bus_lock = asyncio.Lock()
        self._task = None
        self._inflight = None

    async def start(self):
        self._abort.clear()
        self._spawn(self._run())

    async def stop(self):
        self._abort.set()
        await self._cancel()
        if self._inflight is not None:  # a poll in its thread ends within one timeout (abort is set)
            try:
                await self._inflight
            except (Sdi12Error, serial.SerialException, OSError):
                pass
        self._close()

    def health(self):
        return {"kind": self.kind, "name": self.name, "port": self.cfg.port, "connected": self.connected,
                "opens": self.opens, "polls": self.polls, "readings": self.readings,
                "last_rx": max((p.last_good for p in self.probes if p.last_good), default=None),
                "errors": dict(self.errors), "consecutive_failures": max((p.failures for p in self.probes), default=0),
                "probes": {p.address: p.health() for p in self.probes}}  # fmt: skip

    # ---- bus access from the event loop ----
    async def _on_bus(self, fn, *args):
        async with self._bus_lock:
            self._inflight = asyncio.ensure_future(asyncio.to_thread(self._in_thread, fn, *args))
            return await asyncio.shield(self._inflight)  # a cancelled caller leaves the thread to finish

    def _in_thread(self, fn, *args):
        if self.ser is None:
            fbits, parity = FRAMINGS[self.opts.get("framing", "7E1")]
            self.ser = self._serial_for_url(self.cfg.port, baudrate=self.cfg.baudrate, bytesize=fbits,
                                            parity=parity, timeout=0.05, write_timeout=1.0)  # fmt: skip
            self.opens += 1
            self.connected = True
            log.info("source %s: %s open", self.name, self.cfg.port)
        bus = Sdi12Bus(self.ser, self.opts["timeout_s"], self.time_scale, self._abort)
        try:
            return fn(bus, *args)
        except (serial.SerialException, OSError):
            self._close()
            raise

    def _close(self):
        if self.ser is not None:
            try:
                self.ser.close()
            except (OSError, serial.SerialException):
                pass
        self.ser = None
        self.connected = False

    async def identify(self, address):
        return await self._on_bus(identify, address)

    async def change_address(self, old, new):
        """Readdress the probe at ``old`` to ``new`` (aAb!); its config entry follows."""
        if new not in ADDRESSES or any(p.address == new for p in self.probes):
            raise ValueError("new address %r: one of 0-9 A-Z a-z not used by another probe" % new)
        await self._on_bus(change_address, old, new)
        for p in self.probes:
            if p.address == old:
                p.address = new

    # ---- polling ----
    async def _run(self):
        while True:
            now = self.ctx.now()
            due = [p for p in self.probes if p.next_due <= now]
            if due and not self.ctx.saturated():
                try:
                    outcomes = await self._on_bus(self._poll, due)
                except (serial.SerialException, OSError) as e:
                    log.warning("source %s: %s unavailable (%s); retrying every %.1f s",
                                self.name, self.cfg.port, e, self.cfg.reopen_s)  # fmt: skip
                    await asyncio.sleep(self.cfg.reopen_s)
                    continue
                self._apply(outcomes)
                continue
            wait = min((p.next_due for p in self.probes), default=now + 1) - now
            await asyncio.sleep(min(0.5, max(0.02, wait)))

    def _poll(self, bus, due):
        """In the worker thread: {probe: (values, short, [error, ...])} for every due probe."""
        out = {p: (None, False, []) for p in due}
        started = []
        for p in due:  # concurrent probes first: they measure while the others are addressed
            if p.concurrent:
                try:
                    ready_s, n = start_measurement(bus, p.address, True, p.crc)
                    started.append((p, time.monotonic() + ready_s * bus.time_scale, n))
                except Sdi12Error as e:
                    out[p][2].append(e)
        for p in due:
            if not p.concurrent:
                out[p] = self._measure(bus, p, [])
        for p, ready_at, n in started:
            bus.sleep(max(0.0, ready_at - time.monotonic()) / bus.time_scale)
            try:
                values, short = read_data(bus, p.address, n, p.crc)
                if short:
                    raise Sdi12Error("short_values", "%d of %d values" % (len(values), n))
                out[p] = (values, False, [])
            except Sdi12Error as e:
                out[p] = self._measure(bus, p, [e], first=1)
        for p in due:
            if p.concurrent and not any(p is s[0] for s in started):
                out[p] = self._measure(bus, p, out[p][2], first=1)
        return out

    def _measure(self, bus, p, errors, first=0):
        """Measure ``p`` start to end, retrying with a doubling pause; (values, short, errors)."""
        partial = None
        for attempt in range(first, self.opts["retries"] + 1):
            if attempt:
                bus.sleep(min(0.25 * 2 ** (attempt - 1), 4.0))
            if bus.abort.is_set():
                break
            try:
                ready_s, n = start_measurement(bus, p.address, p.concurrent, p.crc)
                if p.concurrent:
                    bus.sleep(ready_s)
                else:
                    wait_service_request(bus, p.address, ready_s)
                values, short = read_data(bus, p.address, n, p.crc)
                if not short:
                    return values, False, errors
                partial = values
                errors.append(Sdi12Error("short_values", "%d of %d values" % (len(values), n)))
            except Sdi12Error as e:
                errors.append(e)
        if partial:
            return partial, True, errors
        return None, False, errors

    def _apply(self, outcomes):
        now = self.ctx.now()
        interval = self.opts["interval_s"]
        self.polls += 1
        readings = []
        for p, (values, short, errors) in outcomes.items():
            for e in errors:
                p.errors[e.kind] = p.errors.get(e.kind, 0) + 1
                self.errors[e.kind] = self.errors.get(e.kind, 0) + 1
                p.last_error = str(e)
                self.ctx.count_rejected("sdi12_" + e.kind)
            if values is None:
                p.failures += 1
                retry = self.opts["retry_s"] * 2 ** (p.failures - 1)
                p.next_due = now + min(interval, retry)
                log.warning("source %s: probe %s failed %d time(s): %s", self.name, p.address, p.failures,
                            p.last_error)  # fmt: skip
                continue
            p.failures = 0
            p.last_good = now
            p.next_due = (math.floor(now / interval) + 1) * interval
            readings += self._readings(p, values, now, SUSPECT if short else 0)
        if readings:
            self.readings += len(readings)
            self.ctx.submit(Intake(self.name, readings=readings))

    def _readings(self, p, values, ts, flags):
        out = []
        for vm in p.values:
            if vm["index"] >= len(values):
                continue
            v = calibrate(values[vm["index"]], vm)
            f = flags
            if (vm["lo"] is not None and v < vm["lo"]) or (vm["hi"] is not None and v > vm["hi"]):
                f |= OUT_OF_RANGE
            out.append((p.sensor, vm["quantity"], v, ts, vm["unit"], f))
        return out
