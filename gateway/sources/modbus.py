"""Modbus RTU sensors (anemometers, vanes, pyranometers ...) on an RS-485 bus, polled with pymodbus.

    src = make_source(cfg.sources[0], ctx)   # kind = "modbus": register maps come from the config
    await src.start()                        # every interval_s: FC 3/4 reads -> Intake readings

One source owns one serial port (one bus) and polls its devices one request at a time. Register
maps come only from the configuration (vendors differ): each register names its function code,
address, type (int16, uint16, int32, uint32, float32), word order, scale, offset, quantity and an
optional lo..hi range (outside it: OUT_OF_RANGE). Contiguous registers of one device and function
are read in one request. A request that fails is counted by kind -- timeout (no answer), crc (an
answer with a bad checksum), exception_<code> (the device refused) or garbage (bytes that are not
a frame for us) -- and retried ``retries`` times with a short backoff; a device whose poll still
fails is polled again after an exponential backoff (interval_s x 2^(failures-1), at most
backoff_max_s), so a dead slave costs the bus little and never stalls the others.
"""

import asyncio
import logging
import math
import struct
from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException

from gateway.config import BAUDRATES, SourceConfig
from gateway.sources.base import Intake, Source
from gateway.stream import OUT_OF_RANGE, SUSPECT, UNITS

log = logging.getLogger("fieldline.gateway.modbus")

TYPES = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}  # type -> registers
FUNCTIONS = (3, 4)  # read holding registers, read input registers
WORD_ORDERS = ("big", "little")
PARITIES = ("N", "E", "O")
MAX_REGISTERS = 125  # per FC 3/4 request (Modbus over Serial Line V1.02)
RETRY_DELAY_S = 0.05  # first pause before a retry; doubles per attempt
POLL_CHECK_S = 0.25  # how often the poll loop looks at the clock
_SOURCE_KEYS = ("kind", "name", "port", "baudrate", "parity", "stopbits", "reopen_s", "interval_s", "timeout_s",
                "retries", "backoff_max_s", "devices")  # fmt: skip
_DEVICE_KEYS = ("slave", "sensor", "registers")
_REGISTER_KEYS = ("function", "address", "type", "word_order", "scale", "offset", "quantity", "unit", "lo", "hi")


@dataclass(frozen=True)
class Register:
    function: int
    address: int
    type: str
    word_order: str
    scale: float
    offset: float
    quantity: str
    unit: str
    lo: float | None = None
    hi: float | None = None

    @property
    def count(self):
        return TYPES[self.type]


@dataclass(frozen=True)
class Device:
    slave: int
    sensor: str
    registers: tuple  # Register, ...


# ---- decoding ----


def decode_words(words, type_, word_order="big"):
    """The number in Modbus register ``words`` (big-endian 16-bit each) as ``type_``; 32-bit types
    take two words, the first the most significant unless ``word_order`` is "little"."""
    if TYPES[type_] == 1:
        return struct.unpack(">h" if type_ == "int16" else ">H", struct.pack(">H", words[0]))[0]
    hi, lo = (words[0], words[1]) if word_order == "big" else (words[1], words[0])
    raw = struct.pack(">HH", hi, lo)
    return struct.unpack({"int32": ">i", "uint32": ">I", "float32": ">f"}[type_], raw)[0]


def register_value(reg, words):
    """(value in the quantity's unit, flags) of ``reg`` read as ``words``."""
    value = decode_words(words, reg.type, reg.word_order) * reg.scale + reg.offset
    flags = 0
    if (reg.lo is not None and value < reg.lo) or (reg.hi is not None and value > reg.hi):
        flags |= OUT_OF_RANGE
    return value, flags


def plan_requests(registers):
    """[(function, start, count, [Register, ...]), ...]: adjacent registers of one function in one
    read of at most MAX_REGISTERS (gaps are never read: some devices refuse unmapped addresses)."""
    out = []
    for reg in sorted(registers, key=lambda r: (r.function, r.address)):
        if out:
            fc, start, count, regs = out[-1]
            if fc == reg.function and start + count == reg.address and count + reg.count <= MAX_REGISTERS:
                out[-1] = (fc, start, count + reg.count, regs + [reg])
                continue
        out.append((reg.function, reg.address, reg.count, [reg]))
    return out


def classify_failure(received, slave, function, count):
    """Why a request got no usable answer, from the raw bytes seen meanwhile: "timeout" (nothing),
    "crc" (our slave's frame of the right length whose checksum fails) or "garbage" (anything else)."""
    if not received:
        return "timeout"
    for buf in received:
        for fc, size in ((function, 5 + 2 * count), (function | 0x80, 5)):
            if len(buf) >= size and buf[0] == slave and buf[1] == fc and crc16(buf[:size]) != 0:
                return "crc"
    return "garbage"


def crc16(data):
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF); 0 over a whole valid frame."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


# ---- configuration ----


def check_config(t):
    """SourceConfig of a kind = "modbus" [[sources]] table; ConfigError (file, line, key) on a mistake."""
    t.only(_SOURCE_KEYS)
    name = t.text("name", expected="a name of 1-64 characters from A-Z a-z 0-9 . _ -")
    interval_s = t.number("interval_s", 60.0, 0.1, 86400.0)
    timeout_s = t.number("timeout_s", 1.0, 0.01, 30.0)
    options = {
        "parity": t.text("parity", "N", choices=PARITIES),
        "stopbits": t.integer("stopbits", 1, choices=(1, 2)),
        "interval_s": interval_s,
        "timeout_s": timeout_s,
        "retries": t.integer("retries", 2, 0, 10),
        "backoff_max_s": t.number("backoff_max_s", max(600.0, interval_s), interval_s, 86400.0,
                                  expected="a number in %g..86400 (at least interval_s)" % interval_s),
    }  # fmt: skip
    devices = t.tables("devices")
    if not devices:
        t.fail("devices", "at least one [[sources.devices]] table (slave, sensor, registers)")
    slaves, sensors = {}, {}
    parsed = []
    for i, d in enumerate(devices):
        dev = _device(d)
        if dev.slave in slaves:
            d.fail("slave", "a slave id unique on this bus (devices[%d] has it)" % slaves[dev.slave], dev.slave)
        if dev.sensor in sensors:
            d.fail(
                "sensor", "a sensor name unique in this source (devices[%d] has it)" % sensors[dev.sensor], dev.sensor
            )
        slaves[dev.slave], sensors[dev.sensor] = i, i
        parsed.append(dev)
    options["devices"] = tuple(parsed)
    return SourceConfig(
        kind="modbus",
        name=name,
        port=t.text("port", expected="a serial device path or pyserial URL"),
        baudrate=t.integer("baudrate", 9600, choices=BAUDRATES),
        reopen_s=t.number("reopen_s", SourceConfig.reopen_s, 0.1, 60.0),
        options=options,
    )


def _device(d):
    d.only(_DEVICE_KEYS)
    slave = d.integer("slave", lo=1, hi=247)
    sensor = d.text("sensor", expected="a sensor name of 1-64 characters from A-Z a-z 0-9 . _ -")
    tables = d.tables("registers")
    if not tables:
        d.fail("registers", "at least one [[sources.devices.registers]] table")
    regs = []
    for r in tables:
        reg = _register(r)
        for other in regs:
            if other.quantity == reg.quantity:
                r.fail("quantity", "a quantity not read twice from one device", reg.quantity)
            if other.function == reg.function and (
                other.address < reg.address + reg.count and reg.address < other.address + other.count
            ):
                r.fail("address", "a register that does not overlap %s at %d (FC %d)"
                       % (other.quantity, other.address, other.function), reg.address)  # fmt: skip
        regs.append(reg)
    return Device(slave, sensor, tuple(regs))


def _register(r):
    r.only(_REGISTER_KEYS)
    function = r.integer("function", 3, choices=FUNCTIONS)
    type_ = r.text("type", "uint16", choices=tuple(TYPES))
    address = r.integer("address", lo=0, hi=65536 - TYPES[type_])
    if "word_order" in r.data and TYPES[type_] == 1:
        r.fail("word_order", "no word_order for a 16-bit type (%s)" % type_, r.data["word_order"])
    word_order = r.text("word_order", "big", choices=WORD_ORDERS)
    anything = "a finite number"
    scale = r.number("scale", 1.0, -math.inf, expected="a finite number other than 0")
    if scale == 0:
        r.fail("scale", "a finite number other than 0", r.data["scale"])
    quantity = r.text("quantity", choices=None, expected="a quantity (e.g. wind_speed)")
    if quantity not in UNITS:
        r.fail("quantity", "a known quantity, one of " + ", ".join(sorted(UNITS)), quantity)
    unit = r.text("unit", UNITS[quantity], expected='"%s" (the unit of %s)' % (UNITS[quantity], quantity))
    if unit != UNITS[quantity]:
        r.fail("unit", '"%s" (the unit of %s; convert with scale and offset)' % (UNITS[quantity], quantity), unit)
    lo = r.number("lo", None, -math.inf, expected=anything) if "lo" in r.data else None
    hi = r.number("hi", None, -math.inf, expected=anything) if "hi" in r.data else None
    if lo is not None and hi is not None and hi <= lo:
        r.fail("hi", "a number above lo (%g)" % lo, hi)
    offset = r.number("offset", 0.0, -math.inf, expected=anything)
    return Register(function, address, type_, word_order, scale, offset, quantity, unit, lo, hi)


def make_source(cfg, ctx):
    return ModbusSource(cfg, ctx)


# ---- the source ----


class _DeviceState:
    def __init__(self, device):
        self.device = device
        self.plan = plan_requests(device.registers)
        self.next_poll = 0.0  # gateway clock (ctx.now())
        self.last_good = None  # ctx time of the last complete poll
        self.consecutive_failures = 0
        self.errors = {}
        self.last_error = None

    def health(self):
        return {
            "sensor": self.device.sensor,
            "last_good": self.last_good,
            "consecutive_failures": self.consecutive_failures,
            "errors": dict(self.errors),
            "last_error": self.last_error,
        }


class ModbusSource(Source):
    kind = "modbus"

    def __init__(self, cfg, ctx, client_factory=AsyncModbusSerialClient):
        super().__init__(cfg.name, ctx)
        self.cfg = cfg
        self.opt = cfg.options
        self.client_factory = client_factory
        self.client = None
        self.devices = [_DeviceState(d) for d in self.opt["devices"]]
        self.errors = {}
        self.polls = 0
        self.requests = 0
        self.opens = 0
        self.last_rx = None
        self._received = []
        self._task = None
        self._stopping = False

    async def start(self):
        self._spawn(self._run())

    async def stop(self):
        self._stopping = True
        await self._cancel()
        self._close()

    def health(self):
        return {
            "kind": self.kind,
            "name": self.name,
            "port": self.cfg.port,
            "connected": bool(self.client is not None and self.client.connected),
            "opens": self.opens,
            "last_rx": self.last_rx,
            "polls": self.polls,
            "requests": self.requests,
            "errors": dict(self.errors),
            "devices": {str(s.device.slave): s.health() for s in self.devices},
        }

    # ---- the bus ----
    async def _run(self):
        loop = asyncio.get_running_loop()
        while not self._stopping:
            if self.client is None or not self.client.connected:
                if not await self._open():
                    await asyncio.sleep(self.cfg.reopen_s)
                    continue
            if self.ctx.saturated():
                await asyncio.sleep(0.5)  # backpressure: instantaneous readings can wait a little
                continue
            for st in sorted(self.devices, key=lambda s: s.next_poll):
                if st.next_poll <= self.ctx.now() and self.client.connected:
                    await self._poll(st, loop)
            # polls are due by the gateway's clock (UTC; simulated in the virtual field): look often
            wait = min(s.next_poll for s in self.devices) - self.ctx.now()
            await asyncio.sleep(min(max(wait, 0.0), POLL_CHECK_S))

    async def _open(self):
        self._close()
        self.client = self.client_factory(
            self.cfg.port,
            baudrate=self.cfg.baudrate,
            parity=self.opt["parity"],
            stopbits=self.opt["stopbits"],
            timeout=self.opt["timeout_s"],
            retries=0,  # retried here, so that every failure is counted by kind
            reconnect_delay=0,  # reopened here, every reopen_s
            trace_packet=self._trace,
        )
        try:
            ok = await self.client.connect()
        except (ModbusException, OSError) as e:
            ok = False
            log.debug("source %s: cannot open %s: %s", self.name, self.cfg.port, e)
        if ok:
            self.opens += 1
            log.info("source %s: %s open", self.name, self.cfg.port)
        return ok

    def _close(self):
        if self.client is not None:
            self.client.close()
        self.client = None

    def _trace(self, sending, data):
        if not sending and data:
            self._received.append(bytes(data))
        return data

    # ---- polling ----
    async def _poll(self, st, loop):
        self.polls += 1
        readings, failed = [], False
        for fc, start, count, regs in st.plan:
            words = await self._read(st, fc, start, count)
            if words is None:
                failed = True
                continue
            now = self.ctx.now()
            for reg in regs:
                off = reg.address - start
                value, flags = register_value(reg, words[off : off + reg.count])
                if not math.isfinite(value):
                    self._count(st, "non_finite")  # a float32 NaN/inf: the device says it has no value
                    continue
                readings.append([st.device.sensor, reg.quantity, value, now, reg.unit, flags])
        if failed:
            st.consecutive_failures += 1
            for r in readings:
                r[5] |= SUSPECT  # the device misbehaved in this very poll
            factor = 2 ** min(st.consecutive_failures - 1, 20)
            st.next_poll = self.ctx.now() + min(self.opt["interval_s"] * factor, self.opt["backoff_max_s"])
        else:
            st.consecutive_failures = 0
            st.last_good = self.ctx.now()
            st.next_poll = max(st.next_poll + self.opt["interval_s"], self.ctx.now())
        if readings:
            self.ctx.submit(Intake(self.name, readings=[tuple(r) for r in readings]))

    async def _read(self, st, fc, start, count):
        """The ``count`` words at ``start`` of FC ``fc``, or None after 1 + retries failed attempts."""
        slave = st.device.slave
        call = self.client.read_holding_registers if fc == 3 else self.client.read_input_registers
        for attempt in range(self.opt["retries"] + 1):
            if attempt:
                await asyncio.sleep(RETRY_DELAY_S * 2 ** (attempt - 1))
            if not self.client.connected:
                return None
            self._received = []
            self.requests += 1
            try:
                rsp = await call(start, count=count, device_id=slave)
            except ConnectionException as e:
                log.warning("source %s: %s lost (%s)", self.name, self.cfg.port, e)
                return None
            except ModbusException:
                self._count(st, classify_failure(self._received, slave, fc, count))
                continue
            if rsp.isError():
                self._count(st, "exception_%d" % rsp.exception_code)
                continue
            if len(rsp.registers) != count:
                self._count(st, "garbage")
                continue
            self.last_rx = self.ctx.now()
            return rsp.registers
        return None

    def _count(self, st, kind):
        st.errors[kind] = st.errors.get(kind, 0) + 1
        st.last_error = kind
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.ctx.count_rejected("modbus_" + kind)
        log.debug("source %s: slave %d: %s", self.name, st.device.slave, kind)
