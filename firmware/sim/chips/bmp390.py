"""BMP390 model at register level: chip id, NVM calibration, forced/normal conversions, drdy.

    baro = bus.attach(BMP390Model(truth, clock=board.clock_ms))   # clock optional
    # the driver writes PWR_CTRL = 0x13, polls STATUS, reads 0x04..0x09

Raw ADC values are made so that the Bosch compensation of the NVM below maps them back to
truth.air_c / truth.pressure_pa (plus small noise): temperature by the quadratic's root,
pressure by Newton's method on the cubic. The NVM is a real BMP388 dump published with the
elixir-sensors/bmp3xx tests. Reads auto-increment; burst writes are (reg, value) pairs.
Faults: ``garbage`` (raw 0, 0: about -124 degC), ``stuck`` (raw values repeat); this chip
has no CRC, so ``bad_crc`` does nothing.
"""

import struct

from sim.i2c import ChipModel
from sim.prng import Prng

NVM = bytes.fromhex("236b5849f65cffcef42300ea636e79f3f6aa4312c4")
_STATUS, _PWR, _OSR, _INT_STATUS, _EVENT = 0x03, 0x1B, 0x1C, 0x11, 0x10
_WRITABLE = (0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1F)
_SCALE = (8, -30, -48, -20, -29, -32, -37, 3, -6, -8, -15, -48, -48, -65)  # PAR_x = NVM_PAR_x * 2^scale


def _cal(nvm):
    v = list(struct.unpack("<HHbhhbbHHbbhbb", nvm))
    v[3] -= 16384  # P1 and P2 are offset by 2^14
    v[4] -= 16384
    return tuple(v[i] * 2.0 ** _SCALE[i] for i in range(14))


def _u24(x):
    return min(max(int(x + 0.5), 0), 0xFFFFFF)


class BMP390Model(ChipModel):
    def __init__(self, truth, addr=0x77, seed=1, clock=None, nvm=NVM, chip_id=0x60):
        super().__init__()
        self.truth = truth
        self.addr = addr
        self.clock = clock  # callable -> ms; None: conversions finish at once
        self.rng = Prng(seed)
        self.cal = _cal(nvm)
        self.regs = bytearray(128)
        self.regs[0] = chip_id
        self.regs[0x31:0x46] = nvm
        self.ptr = 0
        self.last = None
        self.conversions = 0
        self._reset()

    def _reset(self):
        r = self.regs
        r[0x02:0x30] = bytes(0x2E)
        r[0x06] = r[0x09] = 0x80  # data reset value 0x800000
        r[_STATUS], r[_EVENT], r[0x19], r[_OSR] = 0x10, 0x01, 0x02, 0x02  # cmd_rdy, por_detected
        self.pending = None
        self.ready_at = 0.0

    def _now(self):
        return self.clock() if self.clock else 0.0

    def raw_for(self, pa, t_c):
        """The (p_raw, t_raw) the Bosch compensation maps back to (pa, t_c)."""
        t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11 = self.cal
        t_raw = _u24(t1 + 2.0 * t_c / (t2 + (t2 * t2 + 4.0 * t3 * t_c) ** 0.5))  # root of t3 d^2 + t2 d = t
        d = t_raw - t1
        t = d * t2 + d * d * t3  # what the driver will compute from the integer raw
        o1 = p5 + t * (p6 + t * (p7 + t * p8))
        k = p1 + t * (p2 + t * (p3 + t * p4))
        q = p9 + p10 * t
        r = (pa - o1) / k
        for _ in range(4):
            r -= (o1 + r * (k + r * (q + r * p11)) - pa) / (k + r * (2.0 * q + 3.0 * r * p11))
        return _u24(r), t_raw

    def _start(self):
        osr = self.regs[_OSR]
        op, ot = 1 << (osr & 7), 1 << ((osr >> 3) & 7)
        pwr = self.regs[_PWR]
        us = 234 + (pwr & 1) * (392 + op * 2020) + ((pwr >> 1) & 1) * (163 + ot * 2020)
        if self.stuck and self.last:
            raw = self.last
        elif self.garbage:
            raw = (0, 0)
        else:
            t = self.truth
            pa = t.pressure_pa + self.rng.gauss(0.0, 1.2 / op**0.5)  # noise falls with oversampling
            raw = self.raw_for(pa, t.air_c + self.rng.gauss(0.0, 0.005 / ot**0.5))
        self.last = raw
        self.pending = raw
        self.ready_at = self._now() + us / 1000.0

    def _update(self):
        r = self.regs
        if self.pending and self._now() >= self.ready_at:
            pwr = r[_PWR]
            for bit, reg, val, drdy in ((1, 0x04, self.pending[0], 0x20), (2, 0x07, self.pending[1], 0x40)):
                if pwr & bit:
                    r[reg], r[reg + 1], r[reg + 2] = val & 0xFF, (val >> 8) & 0xFF, val >> 16
                    r[_STATUS] |= drdy
            r[_INT_STATUS] |= 0x08
            self.pending = None
            self.conversions += 1
            if (pwr >> 4) & 3 != 3:
                r[_PWR] = pwr & 0x03  # forced: back to sleep
        if self.pending is None and (r[_PWR] >> 4) & 3 == 3:
            self._start()  # normal mode: convert continuously

    def on_write(self, data):
        self.ptr = data[0]
        for i in range(0, len(data) - 1, 2):
            reg, v = data[i], data[i + 1]
            if reg == 0x7E and v == 0xB6:
                self._reset()
            elif reg in _WRITABLE:
                self.regs[reg] = v
                if reg == _PWR and (v >> 4) & 3 in (1, 2):
                    self._start()

    def on_read(self, n):
        self._update()
        r = self.regs
        out = bytearray(n)
        for i in range(n):
            a = (self.ptr + i) & 0x7F
            out[i] = r[a]
            if 0x04 <= a <= 0x06:
                r[_STATUS] &= ~0x20  # drdy clears when a data register is read
            elif 0x07 <= a <= 0x09:
                r[_STATUS] &= ~0x40
            elif a in (_EVENT, _INT_STATUS):
                r[a] = 0
        self.ptr = (self.ptr + n) & 0x7F
        return bytes(out)
