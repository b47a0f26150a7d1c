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

from micropython import const

from fieldnode.drivers import Chip
from fieldnode.errors import NotReadyError, RangeError

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


class LIS3DH(Chip):
    addr = 0x18
    odr = 5  # CTRL_REG1 ODR code: 5 = 100 Hz
    samples = 4

    def __init__(self, i2c, addr=0x18, name="lis3dh", sleep_ms=None, odr=5, samples=4):
        Chip.__init__(self, i2c, addr, name, sleep_ms)  # stuck at 20: HR noise (~2 mg rms) never repeats so long
        self._opt("odr", odr)
        self._opt("samples", samples)

    def init(self):
        who = self._reg(_WHO_AM_I)
        if who != _ID:
            raise RangeError(self.name, "WHO_AM_I 0x%02x at 0x0f, expected 0x33 (wrong chip?)" % who)
        self._reg(_CTRL_REG5, 0x80)  # BOOT: reload trimming
        self._sleep(10)
        self._reg(_CTRL_REG1, (self.odr << 4) | _XYZ_ON)
        self._reg(_CTRL_REG4, _BDU_HR_2G)
        return self

    def power_down(self):
        """ODR 0: ~0.5 uA. ``init()`` wakes it again."""
        self._reg(_CTRL_REG1, _XYZ_ON)

    def read_g(self):
        """One sample (x, y, z) in g (HR +-2 g: 1 mg per digit); waits for ZYXDA (NotReadyError if it never rises)."""
        for _ in range(_POLLS):
            if self._reg(_STATUS) & _ZYXDA:
                break
            self._sleep(2)
        else:
            raise NotReadyError(self.name, "no new sample after %d polls (powered down? ODR %d)" % (_POLLS, self.odr))
        buf = self._io(_OUT_X_L | _AUTO_INC, self._b6)
        self._same(int.from_bytes(buf, "little"))  # the 6 bytes as one int: no object kept per driver
        x, y, z = struct.unpack_from("<hhh", buf)
        return (x >> 4) / 1000, (y >> 4) / 1000, (z >> 4) / 1000

    def tilt_deg(self):
        """Angle of the z axis from vertical, degrees, from ``samples`` averaged static readings;
        RangeError unless |a| is within 0.5..1.5 g (not static, or broken)."""
        sx = sy = sz = 0.0
        for _ in range(self.samples):
            x, y, z = self.read_g()
            sx += x
            sy += y
            sz += z
        n = self.samples
        g = self._range("acceleration |a| (g)", math.sqrt(sx * sx + sy * sy + sz * sz) / n, 0.5, 1.5)
        return math.degrees(math.acos(max(-1.0, min(1.0, sz / n / g))))
