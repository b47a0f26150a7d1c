"""Simulated RuuviTags and a fake bleak scanner backend that replays their advertisements (no radio).

    field = SimField([SimRuuviTag("CB:B8:33:4C:88:4F", seed=1)], start=clock(), corrupt_fraction=0.05)
    src = make_source(scfg, ctx, backend=SimScanner, backend_args={"field": field, "clock": clock})

``SimScanner`` is a real ``bleak.backends.scanner.BaseBleakScanner``: ``BleakScanner(backend=SimScanner)``
builds it exactly as it builds the BlueZ one, and it hands the detection callbacks genuine
``BLEDevice``/``AdvertisementData`` objects. It replays a ``script`` of (delay_s, address,
AdvertisementData) and/or polls a ``SimField`` on ``clock`` (the gateway's clock, or a
"paced:START,WALL0,SPEED" spec from the config's backend_args), emitting every advertisement due
since the last poll. Each tag advertises every measurement ``adverts_per_measurement`` times (the
same measurement sequence), values follow the day, and a fraction of advertisements is corrupted
(truncated, or an unknown format byte), deterministically from the seed.
"""

import asyncio
import math
import random
import time

from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

RUUVI_MANUFACTURER_ID = 0x0499
DAY_S = 86400.0


def encode_ruuvi_df5(temperature_c=None, humidity_pct=None, pressure_pa=None, acceleration_mg=(None,) * 3,
                     battery_v=None, tx_power_dbm=None, movement_counter=None, measurement_sequence=None,
                     mac=None):  # fmt: skip
    """The 24-byte RuuviTag data format 5 payload; None encodes the format's "not available"."""

    def i16(v, scale):
        return 0x8000 if v is None else round(v / scale) & 0xFFFF

    battery = 2047 if battery_v is None else round(battery_v * 1000) - 1600
    tx = 31 if tx_power_dbm is None else (tx_power_dbm + 40) // 2
    out = bytearray([5])
    out += i16(temperature_c, 0.005).to_bytes(2, "big")
    out += (0xFFFF if humidity_pct is None else round(humidity_pct / 0.0025)).to_bytes(2, "big")
    out += (0xFFFF if pressure_pa is None else round(pressure_pa) - 50000).to_bytes(2, "big")
    for a in acceleration_mg:
        out += i16(a, 1).to_bytes(2, "big")
    out += ((battery << 5) | tx).to_bytes(2, "big")
    out.append(255 if movement_counter is None else movement_counter & 0xFF)
    out += (0xFFFF if measurement_sequence is None else measurement_sequence % 65535).to_bytes(2, "big")
    out += b"\xff" * 6 if mac is None else bytes.fromhex(mac.replace(":", ""))
    return bytes(out)


def advertisement(payload, rssi=-70, local_name=None, manufacturer_id=RUUVI_MANUFACTURER_ID):
    """A bleak AdvertisementData carrying ``payload`` as manufacturer data."""
    return AdvertisementData(local_name=local_name, manufacturer_data={manufacturer_id: payload}, service_data={},
                             service_uuids=[], tx_power=None, rssi=rssi, platform_data=())  # fmt: skip


class SimRuuviTag:
    """One RuuviTag on a post: a measurement every ``measure_every_s``, advertised several times."""

    def __init__(self, mac, seed=1, measure_every_s=5.0, adverts_per_measurement=4, rssi_dbm=-70,
                 mean_temp_c=18.0, battery_v=3.0):  # fmt: skip
        self.mac, self.seed = mac.upper(), seed
        self.measure_every_s, self.adverts_per_measurement = measure_every_s, adverts_per_measurement
        self.rssi_dbm, self.mean_temp_c, self.battery_v = rssi_dbm, mean_temp_c, battery_v
        self.offset_s = (seed * 0.37) % measure_every_s  # tags are not in step
        self.silent = []  # (from, until) epoch spans with no advertisements (tag out of range, flat battery)

    def values(self, t, seq):
        """The measurement the tag takes at ``t`` (its sequence number ``seq``)."""
        day = 2 * math.pi * (t % DAY_S) / DAY_S
        rnd = random.Random(self.seed * 1000003 + seq)
        temp = self.mean_temp_c - 6 * math.cos(day - 0.6) + rnd.gauss(0, 0.05)
        return {
            "temperature_c": temp,
            "humidity_pct": min(100.0, max(5.0, 70 + 20 * math.cos(day - 0.6) + rnd.gauss(0, 0.3))),
            "pressure_pa": 101325 + 300 * math.sin(t / 40000.0) + rnd.gauss(0, 3),
            "acceleration_mg": (rnd.randint(-8, 8), rnd.randint(-8, 8), 1000 + rnd.randint(-8, 8)),
            "battery_v": self.battery_v - 0.05 * (temp < 0),
            "tx_power_dbm": 4,
            "movement_counter": (seq // 500) % 255,
            "measurement_sequence": seq,
            "mac": self.mac,
        }

    def adverts_between(self, t0, t1):
        """(t, rssi, payload) for every advertisement in (t0, t1]."""
        step = self.measure_every_s / self.adverts_per_measurement
        k = max(0, math.floor((t0 - self.offset_s) / self.measure_every_s))
        out = []
        while True:
            tm = self.offset_s + k * self.measure_every_s
            if tm > t1:
                return out
            payload = None
            for j in range(self.adverts_per_measurement):
                t = tm + j * step
                if t0 < t <= t1 and not any(a <= t < b for a, b in self.silent):
                    if payload is None:
                        payload = encode_ruuvi_df5(**self.values(tm, k % 65535))
                    rssi = self.rssi_dbm + random.Random(k * 31 + j + self.seed).randint(-4, 4)
                    out.append((t, rssi, payload))
            k += 1


class SimField:
    """The tags one gateway hears; ``adverts_between`` corrupts ``corrupt_fraction`` of them."""

    def __init__(self, tags, corrupt_fraction=0.0, seed=7):
        self.tags = list(tags)
        self.corrupt_fraction, self.seed = corrupt_fraction, seed
        self.corrupted = 0

    @classmethod
    def generated(cls, tags=2, seed=1, corrupt_fraction=0.0, **tag_kw):
        macs = ["C0:FF:EE:%02X:%02X:%02X" % (seed & 0xFF, i >> 8, i & 0xFF) for i in range(1, tags + 1)]
        return cls([SimRuuviTag(m, seed=seed + i, **tag_kw) for i, m in enumerate(macs)], corrupt_fraction, seed)

    def adverts_between(self, t0, t1):
        """[(t, address, AdvertisementData)] in time order for (t0, t1]."""
        out = []
        for tag in self.tags:
            for t, rssi, payload in tag.adverts_between(t0, t1):
                rnd = random.Random("%d/%s/%d" % (self.seed, tag.mac, round(t * 1000)))  # str seeds are stable
                if self.corrupt_fraction and rnd.random() < self.corrupt_fraction:
                    self.corrupted += 1
                    payload = payload[: rnd.randint(1, 20)] if rnd.random() < 0.5 else b"\x07" + payload[1:]
                out.append((t, tag.mac, advertisement(payload, rssi)))
        out.sort(key=lambda e: e[0])
        return out


class SimScanner(BaseBleakScanner):
    """A fake bleak backend: pass it as ``BleakScanner(backend=SimScanner, field=..., clock=...)``.

    ``fail_starts``: the first n start() calls raise BleakError (an adapter that is not there yet).
    """

    def __init__(self, detection_callback, service_uuids, scanning_mode="active", *, bluez=None, cb=None,
                 field=None, clock=None, script=(), poll_s=0.05, fail_starts=0, tags=None, seed=1,
                 corrupt_fraction=0.0, **kwargs):  # fmt: skip
        super().__init__(detection_callback, service_uuids)
        if field is None and tags:  # from a config's backend_args: tags = 2, seed = 1, ...
            field = SimField.generated(tags, seed, corrupt_fraction, **kwargs)
        if isinstance(clock, str):
            from tools.virtual_field.node import PacedClock

            clock = PacedClock.parse(clock)
        self.field, self.clock = field, clock or time.time
        self.script, self.poll_s, self.fail_starts = list(script), poll_s, fail_starts
        self.emitted = 0
        self.starts = 0
        self._task = None

    async def start(self):
        self.starts += 1
        if self.fail_starts > 0:
            self.fail_starts -= 1
            raise BleakError("simulated: Bluetooth adapter not available")
        self.seen_devices = {}
        self._task = asyncio.create_task(self._replay())

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def emit(self, address, adv):
        """Deliver one advertisement as a radio backend would: update seen_devices, call the callbacks."""
        device = self.create_or_update_device(address, address, adv.local_name, None, adv)
        if self.is_allowed_uuid(adv.service_uuids):
            self.emitted += 1
            self.call_detection_callbacks(device, adv)

    async def _replay(self):
        for delay_s, address, adv in self.script:
            await asyncio.sleep(delay_s)
            self.emit(address, adv)
        if self.field is None:
            return
        last = self.clock()
        while True:
            await asyncio.sleep(self.poll_s)
            now = self.clock()
            for _, address, adv in self.field.adverts_between(last, now):
                self.emit(address, adv)
            last = max(last, now)
