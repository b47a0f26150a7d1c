"""All of the node's sensors behind one call: read what answers, flag what does not.

    sensors = Sensors(board)
    s = sensors.read(spectral=True)     # a Sample; None fields for sensors that failed
    sensors.faults                      # names of failed sensors (catalogue FAULTS words)

A failed sensor is retried (re-initialised) on the next read; its last error is kept for
diagnostics. Nothing here allocates per read beyond the floats the drivers return.
"""

from array import array

from fieldnode.drivers.as7341 import AS7341
from fieldnode.drivers.bmp390 import BMP390
from fieldnode.drivers.gnss import GNSS
from fieldnode.drivers.ina219 import INA219
from fieldnode.drivers.lis3dh import LIS3DH
from fieldnode.drivers.max17048 import MAX17048
from fieldnode.drivers.mlx90614 import MLX90614
from fieldnode.drivers.sht4x import SHT4x
from fieldnode.errors import SensorError


class Sample:
    def __init__(self):
        self.up = array("f", bytes(40))  # AS7341 basic counts, up-looking (incident); unboxed floats
        self.down = array("f", bytes(40))  # down-looking (reflected)
        self.spectral_ok = False
        self.ir_canopy_c = None  # brightness temperature, down-looking IR
        self.ir_sky_c = None
        self.air_c = None
        self.rh_pct = None
        self.pressure_pa = None
        self.tilt_deg = None
        self.battery_v = None
        self.soc_pct = None
        self.solar_a = None


class Sensors:
    def __init__(self, board):
        b, sl = board, board.sleep_ms
        self.spec_up = AS7341(b.bus_up, name="spectral_up", sleep_ms=sl)
        self.spec_down = AS7341(b.bus_down, name="spectral_down", sleep_ms=sl)
        self.ir_canopy = MLX90614(b.bus_down, 0x5A, name="ir_canopy", sleep_ms=sl)
        self.ir_sky = MLX90614(b.bus_up, 0x5B, name="ir_sky", sleep_ms=sl)
        self.th = SHT4x(b.bus_up, name="air_th", sleep_ms=sl)
        self.baro = BMP390(b.bus_up, name="air_pressure", sleep_ms=sl)
        self.acc = LIS3DH(b.bus_up, name="accelerometer", sleep_ms=sl)
        self.gauge = MAX17048(b.bus_up, name="fuel_gauge", sleep_ms=sl)
        self.solar = INA219(b.bus_up, name="solar", sleep_ms=sl)
        self.gnss = GNSS(b.gnss_uart, ticks_ms=b.ticks_ms) if b.gnss_uart is not None else None
        self.sample = Sample()
        self.faults = set()
        self.errors = {}  # sensor name -> last error text (diagnostics)
        self._ready = set()
        self.reads = 0
        self.failures = 0

    def _fail(self, dev, e):
        self.failures += 1
        self.faults.add(dev.name)
        self.errors[dev.name] = str(e)
        self._ready.discard(dev.name)

    def _ok(self, dev):
        self.faults.discard(dev.name)

    def _init(self, dev):
        if dev.name not in self._ready:
            dev.init()
            self._ready.add(dev.name)

    def read(self, spectral=True, climate=True):
        """One sample of every sensor asked for; returns the Sample (fields None where failed)."""
        s = self.sample
        self.reads += 1
        s.spectral_ok = False
        s.ir_canopy_c = s.ir_sky_c = s.air_c = s.rh_pct = s.pressure_pa = None
        s.tilt_deg = s.battery_v = s.soc_pct = s.solar_a = None
        if spectral:
            ok = 0
            for dev, out in ((self.spec_up, s.up), (self.spec_down, s.down)):
                try:
                    self._init(dev)
                    dev.read_basic(out)
                    self._ok(dev)
                    ok += 1
                except SensorError as e:
                    self._fail(dev, e)
            s.spectral_ok = ok == 2
            s.ir_canopy_c = self._one(self.ir_canopy, self.ir_canopy.object_c, False)
            s.ir_sky_c = self._one(self.ir_sky, self.ir_sky.object_c, False)
        if climate:
            th = self._one(self.th, self.th.measure, False)
            if th:
                s.air_c, s.rh_pct = th
            pt = self._one(self.baro, self.baro.measure, True)
            if pt:
                s.pressure_pa = pt[0]
        self.read_power()
        return s

    def _one(self, dev, fn, needs_init):
        try:
            if needs_init:
                self._init(dev)
            v = fn()
            self._ok(dev)
            return v
        except SensorError as e:
            self._fail(dev, e)
            return None

    def read_power(self):
        s = self.sample
        s.battery_v = self._one(self.gauge, self.gauge.voltage_v, True)
        s.soc_pct = self._one(self.gauge, self.gauge.soc_pct, True)
        s.solar_a = self._one(self.solar, self.solar.current_a, True)
        return s

    def read_tilt(self):
        v = self._one(self.acc, self.acc.tilt_deg, True)
        self.sample.tilt_deg = v
        return v

    def poll_gnss(self):
        """Feed the GNSS parser; returns it (fix, lat, lon, utc_epoch) or None without a receiver."""
        g = self.gnss
        if g is None:
            return None
        before = g.sentences
        g.poll()
        if g.sentences == before and g.utc_epoch is None:
            self.faults.add("gnss")
        elif g.fix:
            self.faults.discard("gnss")
        else:
            self.faults.add("gnss")
        return g
