"""BLE advertisements (RuuviTags) heard by a bleak scanner: decoded, deduplicated, handed in as readings.

    src = make_source(cfg.sources[0], ctx)              # bleak's platform backend (BlueZ on the gateway)
    src = make_source(scfg, ctx, backend=SimScanner)    # any BaseBleakScanner subclass: a fake in tests

Nothing is connected to: the source listens to advertisements. A decoder, found in ``DECODERS`` by the
advertisement's manufacturer id (or service data UUID), turns the payload into values; a RuuviTag
repeats each measurement in several advertisements, so a measurement sequence already seen from that
tag is counted as a duplicate and dropped. Only configured tags (by MAC) are kept unless
``all_ruuvi = true``. A payload that cannot be decoded is counted by kind and logged, never guessed
at. Tags cannot hold data, so when the engine is saturated advertisements are dropped (counted).
"""

import asyncio
import importlib
import logging
import re
import struct
from dataclasses import dataclass

from bleak import BleakScanner
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakError

from gateway.config import SourceConfig
from gateway.sources.base import Intake, Source
from gateway.stream import OUT_OF_RANGE, UNITS

log = logging.getLogger("fieldline.gateway.ble")

RUUVI_MANUFACTURER_ID = 0x0499
_DF5 = struct.Struct(">BhHHhhhHBH6s")  # 24 bytes, all fields MSB first
_DF5_NA = {"temperature": -0x8000, "humidity": 0xFFFF, "pressure": 0xFFFF, "acc": -0x8000, "movement": 0xFF,
           "sequence": 0xFFFF, "battery": 0x7FF, "tx": 0x1F}  # fmt: skip
_MAC = re.compile(r"([0-9A-Fa-f]{2})([:-]?)([0-9A-Fa-f]{2})(\2[0-9A-Fa-f]{2}){4}\Z")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
_BACKEND = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*\Z")
_OPTION_KEYS = ("kind", "name", "backend", "backend_args", "adapter", "all_ruuvi", "stale_s", "retry_s", "tags")
_TAG_KEYS = ("mac", "name", "decoder")
# decoded field -> (stream quantity, highest physical value or None)
QUANTITIES = {
    "temperature_c": ("air_temperature", None),
    "humidity_pct": ("relative_humidity", 100.0),
    "pressure_pa": ("air_pressure", None),
    "battery_v": ("battery_voltage", None),
}


# ---- decoders ----


class DecodeError(ValueError):
    """A payload a decoder cannot read: ``kind`` ("length", "format"), what was expected and got."""

    def __init__(self, kind, expected, got):
        self.kind, self.expected, self.got = kind, expected, got
        super().__init__("undecodable advertisement (%s): expected %s, got %s" % (kind, expected, got))


def decode_ruuvi_df5(payload):
    """RuuviTag data format 5 (RAWv2), the 24 bytes after the manufacturer id 0x0499 -> dict.

    Units: temperature_c, humidity_pct, pressure_pa, acceleration_mg (x, y, z), battery_v,
    tx_power_dbm; counters movement_counter, measurement_sequence; mac "CB:B8:33:4C:88:4F" (upper
    case, colon-separated). A field the tag marks as not available is None (each axis on its own).
    """
    payload = bytes(payload)
    if len(payload) != _DF5.size:
        raise DecodeError("length", "%d bytes for Ruuvi data format 5" % _DF5.size, "%d bytes" % len(payload))
    fmt, temp, hum, pres, ax, ay, az, power, movement, seq, mac = _DF5.unpack(payload)
    if fmt != 5:
        raise DecodeError("format", "Ruuvi data format 5 (first byte 0x05)", "0x%02x" % fmt)
    na = _DF5_NA
    battery, tx = power >> 5, power & 0x1F
    return {
        "data_format": 5,
        "temperature_c": None if temp == na["temperature"] else round(temp * 0.005, 3),
        "humidity_pct": None if hum == na["humidity"] else round(hum * 0.0025, 4),
        "pressure_pa": None if pres == na["pressure"] else pres + 50000,
        "acceleration_mg": tuple(None if a == na["acc"] else a for a in (ax, ay, az)),
        "battery_v": None if battery == na["battery"] else (battery + 1600) / 1000,
        "tx_power_dbm": None if tx == na["tx"] else tx * 2 - 40,
        "movement_counter": None if movement == na["movement"] else movement,
        "measurement_sequence": None if seq == na["sequence"] else seq,
        "mac": None if mac == b"\xff" * 6 else ":".join("%02X" % b for b in mac),
    }


_RUUVI_FORMATS = {5: decode_ruuvi_df5}


def decode_ruuvi(payload):
    """Any Ruuvi manufacturer payload whose format (byte 0) has a decoder; DecodeError otherwise."""
    if not payload:
        raise DecodeError("length", "a Ruuvi payload (format byte first)", "0 bytes")
    decode = _RUUVI_FORMATS.get(payload[0])
    if decode is None:
        supported = ", ".join(str(f) for f in _RUUVI_FORMATS)
        raise DecodeError("format", "a Ruuvi data format in (%s)" % supported, "format %d" % payload[0])
    return decode(payload)


@dataclass(frozen=True)
class Decoder:
    """Where a decoder's payload sits in an advertisement (manufacturer id or service data UUID)."""

    name: str
    decode: object  # bytes -> dict, raises DecodeError
    manufacturer_id: int | None = None
    service_uuid: str | None = None

    def payload(self, adv):
        """The bytes this decoder reads from ``adv`` (a bleak AdvertisementData), or None."""
        if self.manufacturer_id is not None and self.manufacturer_id in adv.manufacturer_data:
            return adv.manufacturer_data[self.manufacturer_id]
        if self.service_uuid is not None:
            return adv.service_data.get(self.service_uuid)
        return None


DECODERS = {d.name: d for d in (Decoder("ruuvi", decode_ruuvi, manufacturer_id=RUUVI_MANUFACTURER_ID),)}


def find_decoder(adv, decoders=DECODERS):
    """(decoder, payload) for the first decoder whose key is in ``adv``, or (None, None)."""
    for dec in decoders.values():
        payload = dec.payload(adv)
        if payload is not None:
            return dec, payload
    return None, None


def normalise_mac(text):
    """'cb-b8-33-4c-88-4f' / 'cbb8334c884f' -> 'CB:B8:33:4C:88:4F'; None if it is not a MAC."""
    if not isinstance(text, str) or not _MAC.match(text):
        return None
    hexdigits = re.sub("[:-]", "", text).upper()
    return ":".join(hexdigits[i : i + 2] for i in range(0, 12, 2))


# ---- config ----


def check_config(t):
    """Validate a ``kind = "ble"`` [[sources]] table (a gateway.config.TableReader) -> SourceConfig."""
    t.only(_OPTION_KEYS)
    name = t.text("name", expected="a name of 1-64 characters from A-Z a-z 0-9 . _ -", pattern=_NAME)
    backend = t.text("backend", "bleak", '"bleak" (the platform backend) or "module:Class" (a BaseBleakScanner)')
    if backend != "bleak":
        if not _BACKEND.match(backend):
            t.fail("backend", '"bleak" or "module:Class" naming a BaseBleakScanner subclass', backend)
        try:
            load_backend(backend)
        except (ImportError, AttributeError, TypeError) as e:
            t.fail("backend", "an importable BaseBleakScanner subclass (%s)" % e, backend)
    backend_args = t.table("backend_args").data
    if backend_args and backend == "bleak":
        t.fail("backend_args", 'backend_args only with a custom backend (backend = "module:Class")')
    options = {
        "backend": backend,
        "backend_args": dict(backend_args),
        "adapter": t.text("adapter", None, 'a Bluetooth adapter name such as "hci0"'),
        "all_ruuvi": t.flag("all_ruuvi", False),
        "stale_s": t.number("stale_s", 300.0, 1.0, 86400.0),
        "retry_s": t.number("retry_s", 10.0, 0.01, 3600.0),
        "tags": {},
    }
    names = {}
    for i, tt in enumerate(t.tables("tags")):
        tt.only(_TAG_KEYS)
        raw = tt.text("mac", expected='a MAC address such as "CB:B8:33:4C:88:4F"')
        mac = normalise_mac(raw)
        if mac is None:
            tt.fail("mac", 'a MAC address such as "CB:B8:33:4C:88:4F" (6 hex byte pairs)', raw)
        if mac in options["tags"]:
            tt.fail("mac", "a MAC not already listed (tags[%d] has it)" % options["tags"][mac]["index"], raw)
        tag_name = tt.text("name", mac, "a name of 1-64 characters from A-Z a-z 0-9 . _ -", pattern=_NAME)
        if tag_name in names:
            tt.fail("name", "a name unique among tags (tags[%d] has it)" % names[tag_name], tag_name)
        names[tag_name] = i
        decoder = tt.text("decoder", "ruuvi", choices=tuple(DECODERS))
        options["tags"][mac] = {"index": i, "name": tag_name, "decoder": decoder}
    if not options["tags"] and not options["all_ruuvi"]:
        t.fail("tags", "at least one [[sources.tags]] entry, or all_ruuvi = true")
    return SourceConfig(kind="ble", name=name, options=options)


def load_backend(spec):
    """'package.module:Class' -> the class, which must subclass bleak's BaseBleakScanner."""
    module, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, BaseBleakScanner)):
        raise TypeError("%s is not a BaseBleakScanner subclass" % spec)
    return cls


def make_source(scfg, ctx, backend=None, backend_args=None):
    """The BleSource for ``scfg``; ``backend`` (a BaseBleakScanner subclass) overrides the configured one."""
    return BleSource(scfg, ctx, backend=backend, backend_args=backend_args)


# ---- the source ----


class _Tag:
    __slots__ = ("name", "decoder", "rssi_dbm", "last_seen", "sequence", "payload", "stale", "decoded")

    def __init__(self, name, decoder=None):
        self.name, self.decoder = name, decoder
        self.rssi_dbm = self.last_seen = self.sequence = self.payload = None
        self.stale = False
        self.decoded = 0


class BleSource(Source):
    kind = "ble"

    def __init__(self, scfg, ctx, backend=None, backend_args=None):
        super().__init__(scfg.name, ctx)
        opt = scfg.options
        self.cfg = scfg
        self.all_ruuvi = opt.get("all_ruuvi", False)
        self.stale_s = opt.get("stale_s", 300.0)
        self.retry_s = opt.get("retry_s", 10.0)
        self.tags = {mac: _Tag(t["name"], DECODERS[t["decoder"]]) for mac, t in opt.get("tags", {}).items()}
        if backend is None and opt.get("backend", "bleak") != "bleak":
            backend = load_backend(opt["backend"])
        kwargs = dict(opt.get("backend_args", {}))
        kwargs.update(backend_args or {})
        if opt.get("adapter"):
            kwargs["bluez"] = {"adapter": opt["adapter"]}
        self.scanner = BleakScanner(detection_callback=self._on_advertisement, backend=backend, **kwargs)
        self.scanning = False
        self.started_at = None
        self.last_rx = None
        self.counts = {"adverts": 0, "decoded": 0, "duplicates": 0, "unknown_ignored": 0, "other_ignored": 0,
                       "dropped_saturated": 0, "start_failures": 0}  # fmt: skip
        self.undecodable = {}
        self._task = None
        self._stopping = False

    async def start(self):
        self._stopping = False
        self.started_at = self.ctx.now()
        self._spawn(self._keep_scanning())

    async def stop(self):
        self._stopping = True
        await self._cancel()
        if self.scanning:
            self.scanning = False
            try:
                await self.scanner.stop()
            except (BleakError, OSError) as e:
                log.warning("source %s: stopping the scanner: %s", self.name, e)

    async def _keep_scanning(self):
        """Start the scanner; if the adapter is absent or busy, retry every retry_s (start never raises)."""
        while not self._stopping and not self.scanning:
            try:
                await self.scanner.start()
                self.scanning = True
                log.info("source %s: scanning (%s)", self.name, self.scanner.backend_id)
            except (BleakError, OSError) as e:
                self.counts["start_failures"] += 1
                log.warning("source %s: cannot start scanning (retry in %gs): %s", self.name, self.retry_s, e)
                await asyncio.sleep(self.retry_s)

    # ---- advertisements ----
    def _on_advertisement(self, device, adv):
        """bleak's detection callback: one advertisement from ``device`` (BLEDevice, AdvertisementData)."""
        self.counts["adverts"] += 1
        address = (device.address or "").upper()
        tag = self.tags.get(address)
        if tag is not None:
            dec, payload = tag.decoder, tag.decoder.payload(adv)
        else:
            dec, payload = find_decoder(adv)
        if payload is None:
            self.counts["other_ignored"] += 1
            return
        try:
            values = dec.decode(payload)
        except DecodeError as e:
            self.undecodable[e.kind] = self.undecodable.get(e.kind, 0) + 1
            self.ctx.count_rejected("ble_" + e.kind)
            log.info("source %s: %s from %s: %s", self.name, dec.name, address, e)
            return
        mac = values.get("mac") or address  # the payload's MAC: on macOS device.address is a UUID
        if tag is None:
            tag = self.tags.get(mac)
        if tag is None:
            if not self.all_ruuvi:
                self.counts["unknown_ignored"] += 1
                return
            tag = self.tags[mac] = _Tag(mac, dec)
        self._accept(tag, mac, adv, payload, values)

    def _accept(self, tag, mac, adv, payload, values):
        now = self.ctx.now()
        tag.rssi_dbm, tag.last_seen, self.last_rx = adv.rssi, now, now
        if tag.stale:
            tag.stale = False
            log.info("source %s: tag %s (%s) heard again", self.name, tag.name, mac)
        seq = values.get("measurement_sequence")
        if (seq is not None and seq == tag.sequence) or (seq is None and payload == tag.payload):
            self.counts["duplicates"] += 1
            return
        tag.sequence, tag.payload = seq, payload
        if self.ctx.saturated():
            self.counts["dropped_saturated"] += 1
            return
        readings = []
        for field, (quantity, highest) in QUANTITIES.items():
            v = values.get(field)
            if v is not None:
                flags = OUT_OF_RANGE if highest is not None and v > highest else 0
                readings.append((tag.name, quantity, float(v), now, UNITS[quantity], flags))
        tag.decoded += 1
        self.counts["decoded"] += 1
        if readings:
            self.ctx.submit(Intake(self.name, readings=readings))

    def health(self):
        now = self.ctx.now()
        tags = {}
        for mac, tag in self.tags.items():
            since = tag.last_seen if tag.last_seen is not None else self.started_at
            stale = since is not None and now - since > self.stale_s
            if stale and not tag.stale:
                log.warning("source %s: tag %s (%s) silent for %.0f s", self.name, tag.name, mac, now - since)
            tag.stale = stale
            tags[mac] = {"name": tag.name, "rssi_dbm": tag.rssi_dbm, "last_seen": tag.last_seen, "stale": stale,
                         "sequence": tag.sequence, "decoded": tag.decoded}  # fmt: skip
        return {
            "kind": self.kind,
            "name": self.name,
            "connected": self.scanning,
            "backend": str(self.scanner.backend_id),
            "last_rx": self.last_rx,
            **self.counts,
            "undecodable": dict(self.undecodable),
            "stale": sorted(t["name"] for t in tags.values() if t["stale"]),
            "tags": tags,
        }
