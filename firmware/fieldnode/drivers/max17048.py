"""Maxim MAX17048 1-cell fuel gauge: cell voltage, state of charge and charge rate.

    gauge = MAX17048(i2c).init()
    v = gauge.voltage_v(); soc = gauge.soc_pct(); rate = gauge.crate_pct_h()

All registers are 16-bit big-endian. VCELL 78.125 uV/LSB, SOC 1/256 %/LSB, CRATE signed
0.208 %/h per LSB (+ = charging; parts without CRATE read 0xFFFF = -0.208 %/h). ``init``
checks VERSION (0x001x). The gauge updates VCELL every 250 ms (45 s in hibernate), so the
stuck guard allows ``stuck_limit`` identical VCELL readings: read no faster than 1 Hz.
"""

import time

from micropython import const

from fieldnode.errors import BusError, RangeError, Stuck

_VCELL = const(0x02)
_SOC = const(0x04)
_VERSION = const(0x08)
_CRATE = const(0x16)
_V_LSB = 78.125e-6
_CRATE_LSB = 0.208
_V_MIN = 2.0  # a 1-cell Li-ion below this is dead or not a cell
_V_MAX = 4.6
_SOC_MAX = 110.0  # the gauge may report a little above 100 % when full


class MAX17048:
    def __init__(self, i2c, addr=0x36, name="max17048", sleep_ms=None, stuck_limit=60):
        self.i2c = i2c
        self.addr = addr
        self.name = name
        self._sleep = sleep_ms or time.sleep_ms
        self._b2 = bytearray(2)
        self._stuck = Stuck(name, limit=stuck_limit)

    def _word(self, reg):
        try:
            self.i2c.readfrom_mem_into(self.addr, reg, self._b2)
        except OSError:
            raise BusError(self.name, "no ACK at 0x%02x (absent, unpowered or cable pulled)" % self.addr) from None
        return (self._b2[0] << 8) | self._b2[1]

    def init(self):
        ver = self._word(_VERSION)
        if ver & 0xFFF0 != 0x0010:
            raise RangeError(self.name, "VERSION 0x%04x at 0x08, expected 0x001x (wrong chip?)" % ver)
        self.version = ver
        return self

    def voltage_v(self):
        raw = self._word(_VCELL)
        self._stuck.check(raw)
        v = raw * _V_LSB
        if not _V_MIN <= v <= _V_MAX:
            raise RangeError(self.name, "VCELL %.3f V, valid %.1f..%.1f V" % (v, _V_MIN, _V_MAX))
        return v

    def soc_pct(self):
        soc = self._word(_SOC) / 256.0
        if soc > _SOC_MAX:
            raise RangeError(self.name, "SOC %.1f %%, valid 0..%.0f %%" % (soc, _SOC_MAX))
        return soc

    def crate_pct_h(self):
        raw = self._word(_CRATE)
        return (raw - 0x10000 if raw & 0x8000 else raw) * _CRATE_LSB
