"""Register-level model of the Maxim MAX17048 fuel gauge for the simulated I2C bus.

    gauge = bus.attach(MAX17048Model(truth))   # truth.battery_v, truth.soc_pct, truth.solar_a

16-bit big-endian registers, pointer auto-increments byte by byte. VCELL, SOC and CRATE are
refreshed from Truth at the start of every read (VCELL with ~``noise_v`` rms ADC noise);
CRATE = truth.solar_a / ``capacity_ah`` x 100 %/h. VERSION 0x0012, CONFIG 0x971C, HIBRT 0x8030,
VALRT 0x00FF, VRESET/ID 0x9600, STATUS 0x0100 (RI after power-on). Writing 0x5400 to CMD
(0xFE) resets the registers and NACKs the write, as the chip does.
Faults: ``nack`` (SimI2C), ``stuck`` (VCELL/SOC/CRATE frozen), ``garbage`` (all 0xFFFF).
"""

from sim.i2c import EIO, ChipModel
from sim.prng import Prng

_DEFAULTS = ((0x08, 0x0012), (0x0A, 0x8030), (0x0C, 0x971C), (0x14, 0x00FF), (0x18, 0x9600), (0x1A, 0x0100))
_READ_ONLY = (0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0x16, 0x17)  # VCELL, SOC, VERSION, CRATE


class MAX17048Model(ChipModel):
    def __init__(self, truth, addr=0x36, seed=1, capacity_ah=2.0, noise_v=0.001):
        super().__init__()
        self.truth = truth
        self.addr = addr
        self.capacity_ah = capacity_ah
        self.noise_v = noise_v
        self._rng = Prng(seed)
        self.regs = bytearray(256)
        self._ptr = 0
        self.power_on_reset()

    def power_on_reset(self):
        for i in range(256):
            self.regs[i] = 0
        for reg, val in _DEFAULTS:
            self._set(reg, val)

    def _set(self, reg, val):
        val &= 0xFFFF
        self.regs[reg] = val >> 8
        self.regs[reg + 1] = val & 0xFF

    def _refresh(self):
        t = self.truth
        if self.garbage:
            for reg in (0x02, 0x04, 0x16):
                self._set(reg, 0xFFFF)
            return
        v = t.battery_v + self._rng.gauss(0.0, self.noise_v)
        self._set(0x02, max(0, min(0xFFFF, int(round(v / 78.125e-6)))))
        self._set(0x04, max(0, min(0xFFFF, int(round(t.soc_pct * 256)))))
        crate = int(round(t.solar_a / self.capacity_ah * 100.0 / 0.208))
        self._set(0x16, max(-32768, min(32767, crate)))

    def on_write(self, data):
        self._ptr = data[0]
        if self._ptr == 0xFE and data[1:3] == b"\x54\x00":
            self.power_on_reset()
            raise OSError(EIO)  # the gauge resets before it can ACK
        for b in data[1:]:
            if self._ptr not in _READ_ONLY:
                self.regs[self._ptr] = b
            self._ptr = (self._ptr + 1) & 0xFF

    def on_read(self, n):
        if not self.stuck:
            self._refresh()
        out = bytearray(n)
        for i in range(n):
            out[i] = self.regs[self._ptr]
            self._ptr = (self._ptr + 1) & 0xFF
        return bytes(out)
