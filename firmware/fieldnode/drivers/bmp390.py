"""Bosch BMP390 (and BMP388) barometer: forced-mode pressure and temperature, Bosch compensation.

    baro = BMP390(i2c).init()               # 0x77 (SDO high); checks the chip id, reads NVM once
    pa, t_c = baro.measure()

One forced conversion per measure(): write PWR_CTRL, wait the datasheet conversion time,
poll STATUS until both drdy bits are set, burst-read the 6 data bytes (so P and T belong
to the same conversion), then compensate temperature first and pressure with it. The
coefficients and formulas are those of the Bosch BMP3 API in double precision.
"""

import struct
from array import array

from micropython import const

from fieldnode.drivers import Chip
from fieldnode.errors import NotReadyError, RangeError

_CHIP_ID = const(0x00)
_STATUS = const(0x03)  # bit5 drdy_press, bit6 drdy_temp
_DATA = const(0x04)  # PRESS XLSB, LSB, MSB, TEMP XLSB, LSB, MSB
_PWR_CTRL = const(0x1B)
_OSR = const(0x1C)  # bits 2:0 osr_p, 5:3 osr_t
_CONFIG = const(0x1F)  # bits 3:1 IIR coefficient
_NVM_PAR = const(0x31)  # 21 calibration bytes
_FORCED = const(0x13)  # press_en | temp_en | mode 01 (forced)
_DRDY = const(0x60)
_RETRIES = const(5)  # 1 ms STATUS polls after the conversion time


def parse_calibration(nvm):
    """NVM_PAR bytes (0x31..0x45) -> the 14 coefficients of the Bosch API (floating-point form)."""
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11 = struct.unpack_from("<HHbhhbbHHbbhbb", nvm)
    return (
        t1 * 256,  # / 2^-8
        t2 / 1073741824,  # 2^30
        t3 / 281474976710656,  # 2^48
        (p1 - 16384) / 1048576,  # 2^20
        (p2 - 16384) / 536870912,  # 2^29
        p3 / 4294967296,  # 2^32
        p4 / 137438953472,  # 2^37
        p5 * 8,  # / 2^-3
        p6 / 64,
        p7 / 256,
        p8 / 32768,
        p9 / 281474976710656,  # 2^48
        p10 / 281474976710656,  # 2^48
        p11 / 36893488147419103232,  # 2^65
    )


def compensate(cal, p_raw, t_raw):
    """(pa, t_c) from the raw 24-bit ADC values, as bmp3.c compensate_temperature/_pressure."""
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11 = cal
    d = t_raw - t1
    t = d * t2 + d * d * t3
    tt = t * t
    ttt = tt * t
    out1 = p5 + p6 * t + p7 * tt + p8 * ttt
    out2 = p_raw * (p1 + p2 * t + p3 * tt + p4 * ttt)
    pp = float(p_raw) * p_raw
    out3 = pp * (p9 + p10 * t) + pp * p_raw * p11
    return out1 + out2 + out3, t


class BMP390(Chip):
    addr = 0x77
    osr = 3  # (osr_t << 3) | osr_p
    wait_ms = 19  # conversion time of the default oversampling
    cal = None  # the 14 coefficients after init(), array("f"): all exact in float32 (int x 2^k)

    def __init__(self, i2c, addr=0x77, name="bmp390", sleep_ms=None, osr_p=3, osr_t=0, stuck_limit=20):
        """osr_p/osr_t: oversampling codes 0..5 (x1..x32); default x8 / x1, Bosch "standard"."""
        Chip.__init__(self, i2c, addr, name, sleep_ms, stuck_limit)
        self._opt("osr", (osr_t << 3) | osr_p)
        us = 234 + 392 + (1 << osr_p) * 2020 + 163 + (1 << osr_t) * 2020  # datasheet, both enabled
        self._opt("wait_ms", (us + 999) // 1000)

    def init(self):
        """Check the chip id (0x60 BMP390, 0x50 BMP388), read the calibration once, set oversampling."""
        cid = self._reg(_CHIP_ID)
        if cid != 0x60 and cid != 0x50:
            raise RangeError(self.name, "chip id 0x%02x, expected 0x60 (BMP390) or 0x50 (BMP388)" % cid)
        self.cal = array("f", parse_calibration(self._io(_NVM_PAR, bytearray(21))))
        self._reg(_OSR, self.osr)
        self._reg(_CONFIG, 0)  # IIR off: single forced shots minutes apart
        return self

    def measure(self):
        """(pa, t_c) from one forced conversion."""
        if self.cal is None:
            self.init()
        self._reg(_PWR_CTRL, _FORCED)
        self._sleep(self.wait_ms)
        for i in range(_RETRIES + 1):
            if self._reg(_STATUS) & _DRDY == _DRDY:
                break
            if i == _RETRIES:
                raise NotReadyError(self.name, "no drdy %d ms after a forced conversion" % (self.wait_ms + _RETRIES))
            self._sleep(1)
        d = self._io(_DATA, self._b6)
        p_raw = d[0] | (d[1] << 8) | (d[2] << 16)
        t_raw = d[3] | (d[4] << 8) | (d[5] << 16)
        pa, t = compensate(self.cal, p_raw, t_raw)
        self._range("temperature degC", t, -40, 85)
        self._range("pressure Pa", pa, 30000, 125000)
        self._same(p_raw ^ t_raw)  # 24-bit: a small int on every port
        return pa, t
