"""Register-level model of the ST LIS3DH accelerometer for the simulated I2C bus.

    acc = bus.attach(LIS3DHModel(truth))      # reads truth.accel_g (x, y, z in g)
    truth.accel_g = (0.0, math.sin(t), math.cos(t))

Registers 0x00..0x7F (0x40+ unused, read 0): WHO_AM_I 0x0F = 0x33, CTRL_REG1 (reset 0x07), CTRL_REG4, CTRL_REG5
(BOOT self-clears), STATUS 0x27 (ZYXDA while ODR > 0), OUT_X_L..OUT_Z_H 0x28..0x2D. The
sub-address pointer auto-increments only when bit 7 of the sub-address is set; without it
every byte of a burst comes from the same register. Read-only registers ignore writes.

A read transaction that starts at OUT_X_L takes a new sample of Truth: counts = a / sensitivity
for the mode set in CTRL_REG1 (LPen) and CTRL_REG4 (HR, FS), clipped to the mode's bit width,
left-justified in int16 LE, plus ~``noise_g`` rms noise. With ODR = 0 (power-down) STATUS
reads 0 and the outputs keep their last values.
Faults: ``nack`` (SimI2C), ``stuck`` (output frozen), ``garbage`` (all axes at +full scale).
"""

import struct

from sim.i2c import ChipModel
from sim.prng import Prng

# sensitivity in g per digit, rows: high-resolution, normal, low-power; columns: FS 2, 4, 8, 16 g
_SENS = ((0.001, 0.002, 0.004, 0.012), (0.004, 0.008, 0.016, 0.048), (0.016, 0.032, 0.064, 0.192))
_SHIFT = (4, 6, 8)


def _writable(reg):
    return 0x1E <= reg <= 0x26 or reg in (0x2E, 0x30) or (0x32 <= reg <= 0x3F and reg not in (0x35, 0x39))


class LIS3DHModel(ChipModel):
    def __init__(self, truth, addr=0x18, seed=1, noise_g=0.002):
        super().__init__()
        self.truth = truth
        self.addr = addr
        self.noise_g = noise_g
        self.samples = 0
        self._rng = Prng(seed)
        self.regs = bytearray(0x80)
        self.regs[0x0F] = 0x33
        self.regs[0x20] = 0x07
        self.regs[0x1E] = 0x10
        self._ptr = 0
        self._inc = False

    def _mode(self):
        if self.regs[0x20] & 0x08:
            return 2  # low-power
        return 0 if self.regs[0x23] & 0x08 else 1

    def _sample(self):
        mode = self._mode()
        sens = _SENS[mode][(self.regs[0x23] >> 4) & 3]
        shift = _SHIFT[mode]
        top = (1 << (15 - shift)) - 1
        for i in range(3):
            if self.garbage:
                c = top
            else:
                c = int(round((self.truth.accel_g[i] + self._rng.gauss(0.0, self.noise_g)) / sens))
                c = max(-top - 1, min(top, c))
            struct.pack_into("<h", self.regs, 0x28 + 2 * i, c << shift)
        self.samples += 1

    def on_write(self, data):
        self._ptr = data[0] & 0x7F
        self._inc = bool(data[0] & 0x80)
        for b in data[1:]:
            if _writable(self._ptr):
                self.regs[self._ptr] = b & 0x7F if self._ptr == 0x24 else b  # BOOT self-clears
            if self._inc:
                self._ptr = (self._ptr + 1) & 0x7F

    def on_read(self, n):
        ptr = self._ptr
        if ptr == 0x28 and self.regs[0x20] >> 4 and not self.stuck:
            self._sample()
        out = bytearray(n)
        for i in range(n):
            if ptr == 0x27:
                out[i] = 0x0F if self.regs[0x20] >> 4 else 0x00
            else:
                out[i] = self.regs[ptr]
            if self._inc:
                ptr = (ptr + 1) & 0x7F
        self._ptr = ptr
        return bytes(out)
