"""TI INA219 monitor on the solar charge path: signed charge current (A) and bus voltage (V).

    mon = INA219(i2c, shunt_ohm=0.1, max_current_a=1.0).init()
    amps, volts = mon.read()        # or mon.current_a(), mon.bus_voltage_v()

Calibration (datasheet): Current_LSB = max_current_a / 32768 rounded up to a whole uA,
Cal = trunc(0.04096 / (Current_LSB x R)) with bit 0 clear; the LSB used for conversion is
recomputed from the truncated Cal, so truncation costs no accuracy. PGA: the smallest shunt
range (40/80/160/320 mV) that holds R x max_current_a. 16 V bus range, 12-bit x 128 averaging
on both ADCs (68 ms each, smooths charger PWM ripple), continuous mode (about 1 mA).

Each read first checks that CALIBRATION still holds our value (a brown-out resets it to 0
and CURRENT then reads 0): if not it reconfigures and counts ``resets``. BUS_V carries CNVR
(new conversion) and OVF (current/power math overflow -> RangeError). Reading POWER clears
CNVR, so a chip whose ADC has stopped shows CNVR = 0 for longer than a conversion cycle:
StuckError. Zero current at night is a legitimate constant and trips nothing.
"""

import math

from micropython import const

from fieldnode.drivers import Chip
from fieldnode.errors import ConfigError, RangeError, StuckError

_CONFIG = const(0x00)
_BUS = const(0x02)  # bits 15:3 x 4 mV, bit1 CNVR, bit0 OVF
_POWER = const(0x03)
_CURRENT = const(0x04)
_CAL = const(0x05)
_CNVR = const(0x02)
_OVF = const(0x01)
_ADC_128X_CONT = const(0x07FF)  # BADC = SADC = 12-bit x 128, MODE 7 (shunt + bus, continuous)
_POLLS = const(32)
_POLL_MS = const(5)  # 32 x 5 ms > one cycle of 2 x 68.1 ms


def _calibration(shunt_ohm, max_current_a):
    """(CALIBRATION, CONFIG, Current_LSB in A) for a shunt and a full-scale current."""
    lsb_ua = max(1, math.ceil(max_current_a * 1e6 / 32768 - 1e-6))
    cal = int(0.04096 / (lsb_ua * 1e-6 * shunt_ohm) + 0.001)  # + 0.001: float rounding
    if not 2 <= cal <= 0xFFFE:
        raise ConfigError("ina219: Cal %d out of 2..65534 for %.4f ohm, %.3f A" % (cal, shunt_ohm, max_current_a))
    cal &= 0xFFFE  # bit 0 does not exist
    v_max = shunt_ohm * max_current_a
    for pg in range(4):
        if 0.04 * (1 << pg) >= v_max - 1e-9:
            return cal, (pg << 11) | _ADC_128X_CONT, 0.04096 / (cal * shunt_ohm)
    raise ConfigError("ina219: %.0f mV across the shunt exceeds the 320 mV range" % (v_max * 1000))


class INA219(Chip):
    addr = 0x40
    shunt_ohm = 0.1
    max_current_a = 1.0
    resets = 0
    _cal, config, current_lsb_a = _calibration(0.1, 1.0)  # the defaults'; __init__ overrides if they differ
    calibration = staticmethod(_calibration)

    def __init__(self, i2c, addr=0x40, name="ina219", sleep_ms=None, shunt_ohm=0.1, max_current_a=1.0):
        Chip.__init__(self, i2c, addr, name, sleep_ms)
        if shunt_ohm != self.shunt_ohm or max_current_a != self.max_current_a:
            self.shunt_ohm = shunt_ohm
            self.max_current_a = max_current_a
            self._cal, self.config, self.current_lsb_a = _calibration(shunt_ohm, max_current_a)

    def _put(self, reg, val):
        b2 = self._b2
        b2[0] = val >> 8
        b2[1] = val & 0xFF
        self._io(reg, b2, True)

    def init(self):
        self._put(_CONFIG, self.config)
        self._put(_CAL, self._cal)
        return self

    def read(self):
        """(current_a, bus_voltage_v) from one conversion; current > 0 charges the battery."""
        if self._word(_CAL) != self._cal:
            self.resets += 1
            self.init()
        for _ in range(_POLLS):
            bus = self._word(_BUS)
            if bus & _CNVR:
                break
            self._sleep(_POLL_MS)
        else:
            raise StuckError(self.name, "no new conversion in %d ms (CNVR stays 0): ADC stopped" % (_POLLS * _POLL_MS))
        if bus & _OVF:
            limit = 32767 * self.current_lsb_a
            raise RangeError(self.name, "math overflow (OVF): current beyond +-%.2f A or power too high" % limit)
        volts = self._range("bus V", (bus >> 3) * 0.004, 0, 26)  # 26 V: absolute maximum of the bus pin
        raw = self._word(_CURRENT)
        self._word(_POWER)  # clears CNVR: the next read waits for a fresh conversion
        return (raw - 0x10000 if raw & 0x8000 else raw) * self.current_lsb_a, volts

    def current_a(self):
        return self.read()[0]

    def bus_voltage_v(self):
        return self.read()[1]
