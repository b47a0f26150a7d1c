"""Simulated Modbus RTU slaves on one RS-485 bus: a pseudo-terminal the gateway opens with pyserial.

    bus = ModbusBus(); bus.start()            # bus.path: the slave end of a pty (a "/dev/ttyUSB0")
    bus.inject(2, "crc", count=3); bus.kill(1); bus.revive(1); bus.stop()

Modelled at packet level, the true edge of the device: RTU frames with CRC-16/MODBUS (0xA001),
FC 3 (read holding) and FC 4 (read input) answered, exception 01 for another function and 02
for an address the device does not map; requests for other slave ids or with a bad CRC are
ignored, as a real slave does. Two devices by default (vendor maps as in the DFRobot manuals):

- slave 1, cup anemometer: holding 0 = wind speed x 10 (uint16, m/s);
- slave 2, wind vane: holding 0 = direction x 10 (uint16, deg), input 0-1 = direction (float32,
  big word order).

Faults, per slave, for the next ``count`` requests: "crc" (a good answer with a broken checksum),
"timeout" (no answer), "exception" (code ``code``, default 04 server device failure), "garbage"
(bytes that are no frame); ``kill`` silences a slave until ``revive``. Values vary over time.
Plugs into the virtual farm: ``config_toml()`` gives its [[sources]] table.
"""

import math
import os
import pty
import random
import select
import struct
import threading
import time
import tty

from gateway.sources.modbus import crc16  # noqa: E402  the one CRC-16/MODBUS

FAULTS = ("crc", "timeout", "exception", "garbage")
GARBAGE = bytes((0x00, 0xFF, 0xAA, 0x55, 0x13, 0x37, 0x00))


def rtu_frame(body):
    """``body`` (address, function, data) with its CRC appended low byte first."""
    return body + struct.pack("<H", crc16(body))


class Slave:
    """One device: register tables {address: word} refreshed from a model of ``t`` (seconds)."""

    def __init__(self, slave_id, model):
        self.slave_id = slave_id
        self.model = model  # t -> {(function, address): word}
        self.registers = {}
        self.fixed = {}  # (function, address) -> word pinned by a test
        self.faults = []  # pending faults, oldest first: (kind, code)
        self.dead = False
        self.requests = 0

    def refresh(self, t):
        self.registers = self.model(t)
        self.registers.update(self.fixed)

    def answer(self, function, start, count):
        """The response PDU (function, data) to a read, an exception if it cannot be served."""
        if function not in (3, 4):
            return bytes((function | 0x80, 0x01))
        if not 1 <= count <= 125 or any((function, a) not in self.registers for a in range(start, start + count)):
            return bytes((function | 0x80, 0x02))
        words = [self.registers[(function, a)] for a in range(start, start + count)]
        return bytes((function, 2 * count)) + struct.pack(">%dH" % count, *words)


def anemometer(seed=1):
    rnd = random.Random(seed)

    def model(t):
        gust = rnd.uniform(-0.4, 0.4)
        speed = max(0.0, 3.5 + 2.0 * math.sin(t / 40.0) + gust)
        return {(3, 0): round(speed * 10)}

    return model


def wind_vane(seed=2):
    rnd = random.Random(seed)

    def model(t):
        deg = (225.0 + 60.0 * math.sin(t / 90.0) + rnd.uniform(-5, 5)) % 360.0
        hi, lo = struct.unpack(">HH", struct.pack(">f", deg))
        return {(3, 0): round(deg * 10) % 3600, (4, 0): hi, (4, 1): lo}

    return model


class ModbusBus:
    """The bus: a pty whose far end the gateway opens; a thread plays every slave on it."""

    def __init__(self, slaves=None, clock=time.time, reply_delay_s=0.002, name="wind"):
        if slaves is None:
            slaves = [Slave(1, anemometer()), Slave(2, wind_vane())]
        self.slaves = {s.slave_id: s for s in slaves}
        self.clock = clock
        self.reply_delay_s = reply_delay_s
        self.name = name
        self.master = self.slave_fd = None
        self.path = None
        self.received = b""  # every byte the gateway sent (for failing tests)
        self._thread = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # ---- control ----
    def start(self):
        self.master, self.slave_fd = pty.openpty()
        tty.setraw(self.slave_fd)
        self.path = os.ttyname(self.slave_fd)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="modbus-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(2.0)
        for fd in (self.master, self.slave_fd):
            if fd is not None:
                os.close(fd)
        self.master = self.slave_fd = None

    def inject(self, slave_id, fault, count=1, code=4):
        if fault not in FAULTS:
            raise ValueError("fault must be one of %s, got %r" % (", ".join(FAULTS), fault))
        with self._lock:
            self.slaves[slave_id].faults.extend([(fault, code)] * count)

    def kill(self, slave_id):
        self.slaves[slave_id].dead = True

    def revive(self, slave_id):
        self.slaves[slave_id].dead = False

    def pin(self, slave_id, function, address, word):
        """Fix one register to ``word`` (e.g. an out-of-range value); None releases it."""
        fixed = self.slaves[slave_id].fixed
        if word is None:
            fixed.pop((function, address), None)
        else:
            fixed[(function, address)] = word

    def config_toml(self, interval_s=60):
        """The gateway's [[sources]] table for this bus (for the virtual farm)."""
        return SOURCE_TOML % {"name": self.name, "port": self.path, "interval_s": interval_s}

    # ---- the wire ----
    def _serve(self):
        buf = b""
        while not self._stop.is_set():
            if not select.select([self.master], [], [], 0.05)[0]:
                buf = b""  # a silence (> t3.5) ends any half frame
                continue
            try:
                chunk = os.read(self.master, 256)
            except OSError:
                continue  # no one has the port open
            self.received += chunk
            buf += chunk
            while len(buf) >= 8:
                if crc16(buf[:8]) != 0:
                    buf = buf[1:]  # not a request (noise, or a half one): resynchronise
                    continue
                self._request(buf[:8])
                buf = buf[8:]

    def _request(self, frame):
        slave_id, function, start, count = struct.unpack(">BBHH", frame[:6])
        slave = self.slaves.get(slave_id)
        if slave is None:
            return  # not on this bus
        slave.requests += 1
        with self._lock:
            fault, code = slave.faults.pop(0) if slave.faults else (None, 0)
        if slave.dead or fault == "timeout":
            return
        slave.refresh(self.clock())
        if fault == "garbage":
            return self._write(GARBAGE)
        pdu = bytes((function | 0x80, code)) if fault == "exception" else slave.answer(function, start, count)
        reply = rtu_frame(bytes((slave_id,)) + pdu)
        if fault == "crc":
            reply = reply[:-2] + bytes((reply[-2] ^ 0xFF, reply[-1]))
        self._write(reply)

    def _write(self, data):
        time.sleep(self.reply_delay_s)  # a slave answers after its turnaround time
        try:
            os.write(self.master, data)
        except OSError:
            pass


SOURCE_TOML = """[[sources]]
kind = "modbus"
name = "%(name)s"
port = "%(port)s"
baudrate = 9600
interval_s = %(interval_s)s
timeout_s = 0.3
retries = 1

[[sources.devices]]
slave = 1
sensor = "anemometer"
[[sources.devices.registers]]
function = 3
address = 0
type = "uint16"
scale = 0.1
quantity = "wind_speed"
unit = "m s-1"
lo = 0
hi = 60

[[sources.devices]]
slave = 2
sensor = "vane"
[[sources.devices.registers]]
function = 4
address = 0
type = "float32"
word_order = "big"
quantity = "wind_direction"
lo = 0
hi = 360
"""
