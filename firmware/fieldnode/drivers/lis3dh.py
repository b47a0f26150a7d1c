"""ST LIS3DH 3-axis accelerometer: the gravity vector in g and the pole's tilt from vertical.

    acc = LIS3DH(i2c).init()
    x, y, z = acc.read_g(); tilt = acc.tilt_deg()      # tilt of the z axis from vertical

Set-up (reference init): WHO_AM_I 0x33, BOOT, CTRL_REG1 = ODR | XYZ on (LPen = 0), CTRL_REG4 =
BDU | HR | +-2 g: 12-bit left-justified samples, 1 mg per digit. The six output bytes are read
in one burst from OUT_X_L with bit 7 of the sub-address set (auto-increment). ``tilt_deg``
averages a few samples and refuses (RangeError) when |a| is far from 1 g: the node is moving
or the chip is broken, and the angle would be meaningless. Zero-g offset (up to +-40 mg on a
real part, ~2 deg) is not calibrated here.
"""

import math
import struct
import time

from micropython import const

from fieldnode.errors import BusError, NotReadyError, RangeError, Stuck

_WHO_AM_I = const(0x0F)
_CTRL_REG1 = const(0x20)  # ODR 7:4, LPen 3, Zen Yen Xen 2:0
_CTRL_REG4 = const(0x23)  # BDU 7, FS 5:4, HR 3
_CTRL_REG5 = const(0x24)  # BOOT 7
_STATUS = const(0x27)  # ZYXDA bit 3
_OUT_X_L = const(0x28)
_AUTO_INC = const(0x80)
_ID = const(0x33)
_XYZ_ON = const(0x07)
_BDU_HR_2G = const(0x88)
_ZYXDA = const(0x08)
_POLLS = const(20)
_MG = 0.001  # g per digit, HR +-2 g
_G_MIN = 0.5  # |a| outside this band: not static, tilt refused
_G_MAX = 1.5


class LIS3DH:
    def __init__(self, i2c, addr=0x18, name="lis3dh", sleep_ms=None, odr=5, samples=4):
        self.i2c = i2c
        self.addr = addr
        self.name = name
        self._sleep = sleep_ms or time.sleep_ms
        self.odr = odr  # CTRL_REG1 ODR code: 5 = 100 Hz
        self.samples = samples
        self._buf = bytearray(6)
        self._b1 = bytearray(1)
        self._stuck = Stuck(name, limit=20)  # HR noise (~2 mg rms) makes 20 equal samples impossible

    def _bus_error(self):
        return BusError(self.name, "no ACK at 0x%02x (absent, unpowered or cable pulled)" % self.addr)

    def _r(self, reg):
        try:
            self.i2c.readfrom_mem_into(self.addr, reg, self._b1)
        except OSError:
            raise self._bus_error() from None
        return self._b1[0]

    def _w(self, reg, val):
        self._b1[0] = val
        try:
            self.i2c.writeto_mem(self.addr, reg, self._b1)
        except OSError:
            raise self._bus_error() from None

    def init(self):
        who = self._r(_WHO_AM_I)
        if who != _ID:
            raise RangeError(self.name, "WHO_AM_I 0x%02x at 0x0f, expected 0x33 (wrong chip?)" % who)
        self._w(_CTRL_REG5, 0x80)  # BOOT: reload trimming
        self._sleep(10)
        self._w(_CTRL_REG1, (self.odr << 4) | _XYZ_ON)
        self._w(_CTRL_REG4, _BDU_HR_2G)
        return self

    def power_down(self):
        """ODR 0: ~0.5 uA. ``init()`` wakes it again."""
        self._w(_CTRL_REG1, _XYZ_ON)

    def read_g(self):
        """One sample (x, y, z) in g; waits for ZYXDA (NotReadyError if it never rises)."""
        for _ in range(_POLLS):
            if self._r(_STATUS) & _ZYXDA:
                break
            self._sleep(2)
        else:
            raise NotReadyError(self.name, "no new sample after %d polls (powered down? ODR %d)" % (_POLLS, self.odr))
        try:
            self.i2c.readfrom_mem_into(self.addr, _OUT_X_L | _AUTO_INC, self._buf)
        except OSError:
            raise self._bus_error() from None
        self._stuck.check(bytes(self._buf))
        x, y, z = struct.unpack_from("<hhh", self._buf)
        return (x >> 4) * _MG, (y >> 4) * _MG, (z >> 4) * _MG

    def tilt_deg(self):
        """Angle of the z axis from vertical, degrees, from ``samples`` averaged static readings."""
        sx = sy = sz = 0.0
        for _ in range(self.samples):
            x, y, z = self.read_g()
            sx += x
            sy += y
            sz += z
        n = self.samples
        g = math.sqrt(sx * sx + sy * sy + sz * sz) / n
        if not _G_MIN <= g <= _G_MAX:
            raise RangeError(self.name, "|a| = %.3f g, expected %.1f..%.1f g when static" % (g, _G_MIN, _G_MAX))
        c = sz / n / g
        return math.degrees(math.acos(max(-1.0, min(1.0, c))))
