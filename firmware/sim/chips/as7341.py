"""Register-level model of the ams AS7341 spectral sensor for the simulated I2C bus.

    up = bus.attach(AS7341Model(truth, role="up"))     # sees truth.incident_band
    down = AS7341Model(truth, role="down", addr=0x39)  # on its own bus: canopy * reflectance * lens

Registers: ID 0x92 (0x24), ENABLE 0x80 (PON, SP_EN, SMUXEN), ATIME 0x81, ASTATUS 0x94,
data 0x95..0xA0 (6 x 16-bit LE), STATUS2 0xA3 (AVALID, ASAT_DIGITAL), CFG0 0xA9 (REG_BANK:
while set, 0x80+ except CFG0 is unreachable), CFG1 0xAA (AGAIN), CFG6 0xAF (SMUX_CMD),
ASTEP 0xCA/0xCB, SMUX RAM 0x00..0x13. The register pointer auto-increments.

SMUX: the 20 RAM bytes are decoded nibble by nibble against the photodiode map of the
reference (e.g. 0x05 = F2L/F4L); each ADC sums the pixels routed to it, half a band per
left/right pixel (NIR has one pixel). Only SMUX_CMD 2 + SMUXEN copies RAM into the active
SMUX (SMUX_CMD 0, ROM init, disconnects all here); at power-up nothing is connected, so an
unconfigured chip reads dark counts only.

A measurement starts on the rising edge of SP_EN (with PON) and reads Truth at that moment.
AVALID rises after ``ready_polls`` STATUS2 reads (never with ``never_ready``). Reading from
0x94 or 0x95 latches the result into the data registers. Counts per ADC:

    counts = E[band] x responsivity[band] x gain x t_int[ms] x (1 +- 0.3 %) +- 1.5 counts

clipped to 0 (auto-zero: darkness reads 0..5 counts) and to min(65535, (ATIME+1)(ASTEP+1)).
E is spectral irradiance in W m-2 nm-1, so ``responsivity`` is in basic counts per
W m-2 nm-1, i.e. counts / (gain x ms) per W m-2 nm-1. The default table puts full sun
(1.5 W m-2 nm-1 in every band, ~1000 W m-2) at 20-80 % of full scale at 8x / 100 ms
(7 200-28 800 of 36 000) and 10-40 % at 4x / 50 ms (of 18 000); CLEAR is the highest.
``responsivity_for_unit(seed)`` gives a unit with +-5 % per-channel spread.
Faults: ``nack`` (SimI2C), ``stuck`` (results frozen), ``garbage`` (ID 0xFF, random data),
``never_ready`` (AVALID never rises).
"""

from sim.i2c import ChipModel
from sim.prng import Prng

# basic counts per W m-2 nm-1, F1..F8, CLEAR, NIR (silicon: weak in the blue, strong in the red)
RESPONSIVITY = (6.0, 9.0, 11.0, 13.0, 15.0, 16.0, 17.0, 18.0, 24.0, 10.0)
_N = 0xFF
# SMUX address a: band of its low-nibble pixel at 2a, high-nibble pixel at 2a+1 (_N: none/other)
_PIXEL = (
    b"\xff\x02\x00\xff\xff\xff\xff\x07\x05\xff\x01\x03\xff\x04\x06\xff\xff\x08\xff\x04"
    b"\x06\xff\xff\xff\xff\x01\x03\xff\x07\x05\xff\x02\x00\xff\xff\x08\xff\xff\x09\xff"
)


def responsivity_for_unit(seed, spread=0.05):
    """A per-unit responsivity table: the default times 1 +- ``spread`` per channel."""
    rng = Prng(seed)
    return [r * (1.0 + rng.uniform(-spread, spread)) for r in RESPONSIVITY]


class AS7341Model(ChipModel):
    def __init__(self, truth, role="up", addr=0x39, seed=1, responsivity=None):
        super().__init__()
        self.truth = truth
        self.role = role
        self.addr = addr
        self.responsivity = list(responsivity or RESPONSIVITY)
        self.ready_polls = 1  # STATUS2 reads that still show AVALID = 0
        self.never_ready = False
        self.measurements = 0
        self._rng = Prng(seed)
        self.regs = bytearray(256)  # 0x00..0x13 is the SMUX RAM
        self.regs[0x92] = 0x24
        self.regs[0xCA] = 0xE7  # ATIME 0, ASTEP 999
        self.regs[0xCB] = 0x03
        self.regs[0xAA] = 0x09  # AGAIN 256x
        self.smux = bytearray(20)  # active SMUX: nothing connected after power-up
        self._result = bytearray(12)
        self._sat = False
        self._valid = False
        self._polls = 0
        self._ptr = 0
        self._acc = [0.0] * 6

    # -- bus ---------------------------------------------------------------
    def _hidden(self, reg):
        return self.regs[0xA9] & 0x10 and reg >= 0x80 and reg != 0xA9

    def on_write(self, data):
        ptr = data[0]
        for b in data[1:]:
            if not self._hidden(ptr):
                self._write_reg(ptr, b)
            ptr = (ptr + 1) & 0xFF
        self._ptr = ptr

    def _ready(self):
        return self._valid and not self.never_ready and not self._polls

    def on_read(self, n):
        if self._ptr in (0x94, 0x95) and self._ready():
            self.regs[0x95:0xA1] = self._result
        out = bytearray(n)
        for i in range(n):
            out[i] = 0 if self._hidden(self._ptr) else self._read_reg(self._ptr)
            self._ptr = (self._ptr + 1) & 0xFF
        return bytes(out)

    def _write_reg(self, reg, b):
        if reg == 0x80:
            old = self.regs[0x80]
            if b & 0x01 and b & 0x10:  # SMUXEN: run the SMUX command, then self-clear
                cmd = (self.regs[0xAF] >> 3) & 0x03
                if cmd == 2:
                    self.smux[:] = self.regs[0:20]
                elif cmd == 1:
                    self.regs[0:20] = self.smux
                else:
                    self.smux[:] = bytes(20)
                b &= ~0x10
            if b & 0x03 == 0x03 and not old & 0x02:
                self._measure()
        self.regs[reg] = b

    def _read_reg(self, reg):
        if reg == 0x92 and self.garbage:
            return 0xFF
        if reg == 0xA3:
            if self._ready():
                return 0x40 | (0x10 if self._sat else 0)
            if self._polls:
                self._polls -= 1
            return 0
        if reg == 0x94:
            return (0x80 if self._sat else 0) | (self.regs[0xAA] & 0x0F)
        return self.regs[reg]

    # -- physics -----------------------------------------------------------
    def _measure(self):
        self.measurements += 1
        self._valid = True
        self._polls = self.ready_polls
        if self.stuck and self.measurements > 1:
            return
        rng = self._rng
        if self.garbage:
            for i in range(12):
                self._result[i] = rng.next_u32() & 0xFF
            return
        r = self.regs
        steps = (r[0x81] + 1) * ((r[0xCA] | r[0xCB] << 8) + 1)
        fs = min(65535, steps)
        scale = (1 << min(r[0xAA] & 0x1F, 10)) / 2 * steps * 0.00278
        t = self.truth
        up = (self.role == "up") != bool(t.swap_spectral)  # swapped: each sees the other's light
        acc = self._acc
        for k in range(6):
            acc[k] = 0.0
        for a in range(40):
            ch = _PIXEL[a]
            adc = (self.smux[a >> 1] >> (4 * (a & 1))) & 0x0F
            if ch == _N or not 1 <= adc <= 6:
                continue
            e = t.incident_band[ch] if up else t.canopy_band[ch] * t.reflectance[ch] * t.lens_transmission
            acc[adc - 1] += e * self.responsivity[ch] * (1.0 if ch == 9 else 0.5)
        self._sat = False
        for k in range(6):
            c = int(acc[k] * scale * (1.0 + rng.gauss(0.0, 0.003)) + rng.gauss(0.0, 1.5) + 0.5)
            if c < 0:
                c = 0
            elif c >= fs:
                c = fs
                self._sat = True
            self._result[2 * k] = c & 0xFF
            self._result[2 * k + 1] = c >> 8
