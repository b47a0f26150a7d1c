"""All of the node's sensors behind one call: read what answers, flag what does not.

    sensors = Sensors(board)
    s = sensors.read(spectral=True)     # a Sample; None fields for sensors that failed
    sensors.faults                      # names of failed sensors (catalogue FAULTS words)

A failed sensor is retried (re-initialised) on the next read; its last error is kept for
diagnostics. Nothing here allocates per read beyond the floats the drivers return.
"""

from array import array

from micropython import const

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


# index of each driver in Sensors.devs
_UP = const(0)
_DOWN = const(1)
_CANOPY = const(2)
_SKY = const(3)
_TH = const(4)
_BARO = const(5)
_ACC = const(6)
_GAUGE = const(7)
_SOLAR = const(8)


class Sensors:
    gnss = None  # no receiver on this board
    reads = failures = 0
    _ready = 0  # bit i set: devs[i] initialised since its last failure

    def __init__(self, board):
        b, sl = board, board.sleep_ms
        self.devs = (
            AS7341(b.bus_up, name="spectral_up", sleep_ms=sl),
            AS7341(b.bus_down, name="spectral_down", sleep_ms=sl),
            MLX90614(b.bus_down, 0x5A, name="ir_canopy", sleep_ms=sl),
            MLX90614(b.bus_up, 0x5B, name="ir_sky", sleep_ms=sl),
            SHT4x(b.bus_up, name="air_th", sleep_ms=sl),
            BMP390(b.bus_up, name="air_pressure", sleep_ms=sl),
            LIS3DH(b.bus_up, name="accelerometer", sleep_ms=sl),
            MAX17048(b.bus_up, name="fuel_gauge", sleep_ms=sl),
            INA219(b.bus_up, name="solar", sleep_ms=sl),
        )
        if b.gnss_uart is not None:
            self.gnss = GNSS(b.gnss_uart, ticks_ms=b.ticks_ms)
        self.sample = Sample()
        self.faults = set()
        self.errors = {}  # sensor name -> last error text (diagnostics)

    def _one(self, i, fn, needs_init, arg=None):
        """``fn(devs[i])`` (or ``fn(devs[i], arg)``), initialising it first if ``needs_init``;
        None if it failed (the fault and its text are recorded; it re-initialises next time)."""
        dev = self.devs[i]
        try:
            if needs_init and not self._ready >> i & 1:
                dev.init()
                self._ready |= 1 << i
            v = fn(dev) if arg is None else fn(dev, arg)
            self.faults.discard(dev.name)
            return v
        except SensorError as e:
            self.failures += 1
            self.faults.add(dev.name)
            self.errors[dev.name] = str(e)
            self._ready &= ~(1 << i)
            return None

    def read(self, spectral=True, climate=True):
        """One sample of every sensor asked for; returns the Sample (fields None where failed)."""
        s = self.sample
        self.reads += 1
        s.spectral_ok = False
        s.ir_canopy_c = s.ir_sky_c = s.air_c = s.rh_pct = s.pressure_pa = None
        s.tilt_deg = s.battery_v = s.soc_pct = s.solar_a = None
        if spectral:
            ok = self._one(_UP, AS7341.read_basic, True, s.up) is not None
            s.spectral_ok = self._one(_DOWN, AS7341.read_basic, True, s.down) is not None and ok
            s.ir_canopy_c = self._one(_CANOPY, MLX90614.object_c, False)
            s.ir_sky_c = self._one(_SKY, MLX90614.object_c, False)
        if climate:
            th = self._one(_TH, SHT4x.measure, False)
            if th:
                s.air_c, s.rh_pct = th
            pt = self._one(_BARO, BMP390.measure, True)
            if pt:
                s.pressure_pa = pt[0]
        self.read_power()
        return s

    def read_power(self):
        s = self.sample
        s.battery_v = self._one(_GAUGE, MAX17048.voltage_v, True)
        s.soc_pct = self._one(_GAUGE, MAX17048.soc_pct, True)
        s.solar_a = self._one(_SOLAR, INA219.current_a, True)
        return s

    def read_tilt(self):
        v = self._one(_ACC, LIS3DH.tilt_deg, True)
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
