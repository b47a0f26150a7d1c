"""Field nodes on a serial port (USB, RS-485, a transparent radio modem; a pty in tests).

    src = NodeSource(SourceConfig(kind="node", name="north", port="/dev/ttyUSB0", ...), ctx)
    await src.start()          # frames in -> Intakes to ctx.submit; acks after they are stored

Every frame is authenticated with its device's key from the registry (``ctx.keyring``) and
checked against the replay window (``ctx.guard``, shared by all node sources: device ids are
global); forged, replayed and malformed frames are dropped and counted by kind. Time sync
requests are answered at once (and feed the clock model); reports, health, daily summaries,
hellos and logs become Intakes, acknowledged only once the engine stored them. A vanished
port (unplugged, node rebooting) is reopened every ``reopen_s``; a half frame at the moment
of a reboot is resynchronised by the 0x00 delimiter. When the engine is saturated the
source stops reading (the node keeps its data and retries), so a chattering port cannot
stall the others.
"""

import asyncio
import logging
import zlib

import serial

from gateway import wire
from gateway.sources.base import Intake, Source
from gateway.store import KIND_DAILY, KIND_HEALTH
from gateway.stream import CLOCK_CORRECTED, CLOCK_UNSYNCED, SENSOR_FAULT, iso
from shared_protocol import ProtocolError, encode_frame
from shared_protocol.errors import AuthError, ReplayError
from shared_protocol.frame import MAX_WIRE

log = logging.getLogger("fieldline.gateway.node")

# node fault flag -> quantities whose values it puts in doubt
FAULT_QUANTITIES = {
    "spectral_up": ("incident_shortwave", "ndvi", "chlorophyll_index", "incident_par"),
    "spectral_down": ("reflected_shortwave", "ndvi", "chlorophyll_index"),
    "ir_canopy": ("canopy_temperature", "canopy_air_temperature_difference"),
    "ir_sky": ("sky_temperature", "canopy_temperature"),
    "air_th": ("air_temperature", "relative_humidity", "dew_point", "canopy_air_temperature_difference"),
    "air_pressure": ("air_pressure",),
    "accelerometer": ("tilt",),
    "fuel_gauge": ("battery_soc", "battery_voltage", "solar_current"),
}
# health fields that are stream quantities too
HEALTH_QUANTITIES = (
    ("battery_v", "battery_voltage"),
    ("battery_soc", "battery_soc"),
    ("solar_a", "solar_current"),
    ("tilt_deg", "tilt"),
)
STORED_TYPES = ("report", "health", "daily", "hello", "log", "diag_response", "config")
READ_MAX = 16384  # bytes per read: a chattering port takes its turn like the others


class FastDeframer:
    """shared_protocol.Deframer's contract (frames split at 0x00, runs longer than MAX_WIRE dropped
    to the next 0x00 and counted in ``oversized``) at C speed: bytes.split, not a loop per byte."""

    def __init__(self, max_wire=MAX_WIRE, oversized=0):
        self.max_wire = max_wire
        self.buf = b""
        self.dropping = False
        self.oversized = oversized

    def feed(self, chunk):
        parts = (self.buf + bytes(chunk)).split(b"\0")
        self.buf = parts.pop()
        frames = []
        for p in parts:
            if self.dropping:
                self.dropping = False  # the oversized run ends at this delimiter
                continue
            if len(p) > self.max_wire:
                self.oversized += 1
            elif p:
                frames.append(p)
        if len(self.buf) > self.max_wire:
            if not self.dropping:
                self.oversized += 1
            self.dropping = True
            self.buf = b""
        return frames


def source_name(device_id):
    """The stream's source name of a node."""
    return "node-%d" % device_id


class NodeSource(Source):
    kind = "node"

    def __init__(self, cfg, ctx):
        super().__init__(cfg.name, ctx)
        self.cfg = cfg
        self.ser = None
        self.deframer = FastDeframer()
        self.loop = None
        self._task = None
        self._stopping = False
        self.connected = False
        self.opens = 0
        self.last_rx = None
        self.rx_bytes = 0
        self.frames = 0
        self.rejected = {}  # error kind -> count (forged, replayed, framing, schema, ...)
        self.acks = 0
        self.ack_failures = 0
        self.time_syncs = 0
        self.paused = False
        self.devices = {}  # device id -> last frame time
        self.faults = {}  # device id -> set of fault words from its last health

    # ---- lifecycle ----
    async def start(self):
        self.loop = asyncio.get_running_loop()
        self._spawn(self._keep_open())

    async def stop(self):
        self._stopping = True
        await self._cancel()
        self._close()

    def health(self):
        return {
            "kind": self.kind,
            "name": self.name,
            "port": self.cfg.port,
            "connected": self.connected,
            "opens": self.opens,
            "last_rx": self.last_rx,
            "rx_bytes": self.rx_bytes,
            "frames": self.frames,
            "rejected": dict(self.rejected),
            "acks": self.acks,
            "ack_failures": self.ack_failures,
            "time_syncs": self.time_syncs,
            "paused": self.paused,
            "devices": {str(d): t for d, t in self.devices.items()},
            "oversized": self.deframer.oversized,
        }

    # ---- the port ----
    async def _keep_open(self):
        while not self._stopping:
            if self.ser is None:
                try:
                    self._open()
                except (serial.SerialException, OSError) as e:
                    log.debug("source %s: cannot open %s: %s", self.name, self.cfg.port, e)
            if self.paused and not self.ctx.saturated():
                self.paused = False
                self._watch(True)
            await asyncio.sleep(self.cfg.reopen_s if self.ser is None else 0.05)

    def _open(self):
        self.ser = serial.serial_for_url(self.cfg.port, baudrate=self.cfg.baudrate, timeout=0, write_timeout=0.5)
        self.opens += 1
        self.connected = True
        self.deframer = FastDeframer(oversized=self.deframer.oversized)  # a half frame from before is garbage
        self._watch(True)
        log.info("source %s: %s open", self.name, self.cfg.port)

    def _watch(self, on):
        if self.ser is None:
            return
        fd = self.ser.fileno()
        if on:
            self.loop.add_reader(fd, self._readable)
        else:
            self.loop.remove_reader(fd)

    def _close(self):
        if self.ser is not None:
            try:
                self.loop.remove_reader(self.ser.fileno())
            except (ValueError, OSError, serial.SerialException):
                pass
            try:
                self.ser.close()
            except (OSError, serial.SerialException):
                pass
        self.ser = None
        self.connected = False

    def _readable(self):
        try:
            data = self.ser.read(min(self.ser.in_waiting or 1, READ_MAX))
            if not data:
                raise serial.SerialException("port returned no data (unplugged?)")
        except (serial.SerialException, OSError) as e:
            log.warning(
                "source %s: %s lost (%s); reopening every %.1f s", self.name, self.cfg.port, e, self.cfg.reopen_s
            )
            self._close()
            return
        self.rx_bytes += len(data)
        now = self.ctx.now()
        before = self.deframer.oversized
        for frame in self.deframer.feed(data):
            self._frame(frame, now)
        for _ in range(self.deframer.oversized - before):
            self._reject("oversized")  # a run longer than any frame: noise, or a foreign device
        if self.ctx.saturated() and not self.paused:
            self.paused = True  # backpressure: the node retries later; nothing is lost
            self._watch(False)

    def _reject(self, kind):
        self.rejected[kind] = self.rejected.get(kind, 0) + 1
        self.ctx.count_rejected(kind)

    # ---- frames ----
    def _frame(self, data, now):
        try:
            msg = wire.decode_fast(data, self.ctx.keyring, self.ctx.guard)
        except ReplayError:
            return self._reject("replayed")
        except AuthError:
            return self._reject("forged")
        except ProtocolError as e:
            return self._reject(e.kind)
        self.frames += 1
        self.last_rx = now
        dev = msg["device_id"]
        self.devices[dev] = now
        t = msg["type"]
        if t == "time_sync":
            if msg.get("t2_ms") is None and msg["auth"] == "hmac":
                self._time_sync(dev, msg, now)
            return None
        if t not in STORED_TYPES or msg["auth"] != "hmac":
            return None  # keyless frames (an unprovisioned node's hello) are not data
        intake = self._intake(msg, data, now)
        intake.done = lambda ok, it=intake, d=dev, c=msg["counter"], a=msg.get("ack_req"): self._stored(ok, it, d, c, a)
        self.ctx.submit(intake)
        return None

    def _time_sync(self, dev, msg, now):
        self.ctx.clocks.observe(dev, msg["t1_ms"], now)
        now_ms = int(self.ctx.now() * 1000)
        self._send(
            {"type": "time_sync", "device_id": dev, "t1_ms": msg["t1_ms"], "t2_ms": now_ms, "t3_ms": now_ms}, dev
        )
        self.time_syncs += 1

    def _stored(self, ok, intake, dev, counter, ack_req):
        if intake.bad:
            self._reject(intake.bad)  # authentic but with a value the wire format forbids: not stored
        elif ok and ack_req:
            self._ack(dev, counter)

    def _ack(self, dev, counter):
        if self._send({"type": "ack", "device_id": dev, "counters": [counter]}, dev):
            self.acks += 1

    def _send(self, message, dev):
        key = self.ctx.keyring.get(dev)
        if key is None or self.ser is None:
            self.ack_failures += 1
            return False
        message["counter"] = self.ctx.next_counter()
        try:
            self.ser.write(encode_frame(message, key))
            return True
        except (serial.SerialException, OSError) as e:
            self.ack_failures += 1
            log.warning("source %s: write to %s failed: %s", self.name, self.cfg.port, e)
            return False

    def _intake(self, msg, data, now):
        dev = msg["device_id"]
        src = source_name(dev)
        t = msg["type"]
        clocks = self.ctx.clocks
        flags = 0 if clocks.synced(dev) else CLOCK_UNSYNCED
        records = []
        block = None
        readings = []
        if t == "report":
            health = msg.get("health")
            daily = msg.get("daily")
        else:
            health = msg if t == "health" else None
            daily = msg if t == "daily" else None
        ref_t = msg.get("start") or (health or {}).get("time") or int(now)
        if health is not None:
            self.faults[dev] = set(health.get("faults") or ())
        faults = self.faults.get(dev)
        if faults and "clock_unsynced" in faults:
            flags |= CLOCK_UNSYNCED
        shift = clocks.shift(dev, ref_t)
        if -1.0 < shift < 1.0:
            shift = 0.0
        else:
            flags |= CLOCK_CORRECTED
        if t == "report":
            span = msg["interval_min"] * 60
            start = msg["start"]
            starts = [start + i * span for i in range(len(msg["samples"]))]
            qflags = {}
            for f in faults or ():
                for q in FAULT_QUANTITIES.get(f, ()):
                    qflags[q] = SENSOR_FAULT
            stats = msg["stats_raw"] if "stats_raw" in msg else msg["stats"]
            block = ("node", starts, span, stats, qflags, shift, msg["samples"])
        if health is not None:
            ht = health.get("time") or ref_t  # a report's health rides on the report: its start names it
            rec = self._record("node_health", src, dev, ht - shift, health)
            records.append((KIND_HEALTH, int(ht), rec))
            for field, q in HEALTH_QUANTITIES:
                v = health.get(field)
                if v is not None:
                    qf = SENSOR_FAULT if any(q in FAULT_QUANTITIES.get(f, ()) for f in faults or ()) else 0
                    readings.append(("node", q, v, ht - shift, None, flags | qf))
        if daily is not None:
            rec = self._record("node_daily", src, dev, daily["date"] * 86400, daily)
            records.append((KIND_DAILY, int(daily["date"]), rec))
        if t in ("hello", "log", "diag_response", "config"):
            rec = self._record("node_" + t, src, dev, msg.get("time") or now, msg)
            records.append((None, None, rec))
        return Intake(src, block, readings, records, (dev, msg["counter"], now, data), flags)

    def _record(self, kind, src, dev, ts, body):
        rec = {
            k: v
            for k, v in body.items()
            if k not in ("type", "device_id", "counter", "ack_req", "auth", "health", "daily", "stats")
        }
        for k, v in list(rec.items()):
            if isinstance(v, bytes):
                rec[k] = v.hex()
        rec.update({"kind": kind, "source": src, "device": dev, "ts": iso(int(ts)), "via": self.name})
        key = "%s/%s/%s" % (src, kind, rec["ts"])
        if kind in ("node_hello", "node_log", "node_diag_response", "node_config"):
            key += "/%08x" % zlib.crc32(repr(sorted(rec.items())).encode())  # a resend keeps its key
        rec["key"] = key
        return rec
