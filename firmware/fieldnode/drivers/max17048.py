"""Maxim MAX17048 1-cell fuel gauge: cell voltage, state of charge and charge rate.

    gauge = MAX17048(i2c).init()
    v = gauge.voltage_v(); soc = gauge.soc_pct(); rate = gauge.crate_pct_h()

All registers are 16-bit big-endian. VCELL 78.125 uV/LSB, SOC 1/256 %/LSB, CRATE signed
0.208 %/h per LSB (+ = charging; parts without CRATE read 0xFFFF = -0.208 %/h). ``init``
checks VERSION (0x001x). The gauge updates VCELL every 250 ms (45 s in hibernate), so the
stuck guard allows ``stuck_limit`` identical VCELL readings: read no faster than 1 Hz.
"""

from micropython import const

from fieldnode.drivers import Chip
from fieldnode.errors import RangeError

_VCELL = const(0x02)
_SOC = const(0x04)
_VERSION = const(0x08)
_CRATE = const(0x16)


class MAX17048(Chip):
    addr = 0x36
    stuck_limit = 60

    def __init__(self, i2c, addr=0x36, name="max17048", sleep_ms=None, stuck_limit=60):
        Chip.__init__(self, i2c, addr, name, sleep_ms, stuck_limit)

    def init(self):
        ver = self._word(_VERSION)
        if ver & 0xFFF0 != 0x0010:
            raise RangeError(self.name, "VERSION 0x%04x at 0x08, expected 0x001x (wrong chip?)" % ver)
        self.version = ver
        return self

    def voltage_v(self):
        """Cell voltage; a 1-cell Li-ion outside 2.0..4.6 V is dead or not a cell (RangeError)."""
        raw = self._word(_VCELL)
        self._same(raw)
        return self._range("VCELL V", raw * 78.125e-6, 2.0, 4.6)

    def soc_pct(self):
        """State of charge; the gauge may report a little above 100 % when full (up to 110 %)."""
        return self._range("SOC %", self._word(_SOC) / 256.0, 0, 110)

    def crate_pct_h(self):
        raw = self._word(_CRATE)
        return (raw - 0x10000 if raw & 0x8000 else raw) * 0.208
