"""Register-level model of the TI INA219 current monitor for the simulated I2C bus.

    mon = bus.attach(INA219Model(truth, shunt_ohm=0.1))   # truth.solar_a, truth.battery_v

Registers (16-bit big-endian, a pointer write selects one; longer reads repeat it): CONFIG
0x00 (power-on 0x399F; RST bit 15 restores every register), SHUNT_V 0x01 (10 uV/LSB, clipped
to the PGA range of CONFIG bits 12:11), BUS_V 0x02 (bits 15:3 x 4 mV, CNVR bit 1, OVF bit 0),
POWER 0x03, CURRENT 0x04, CALIBRATION 0x05 (bit 0 reads 0). A conversion runs at the start of
each read transaction in a continuous mode (5..7), or once after a triggered mode (1..3) is
written; it computes the registers the way the chip does:

    CURRENT = trunc(SHUNT_V x CAL / 4096), POWER = trunc(|CURRENT| x BUS / 5000)

with OVF when either overflows (CURRENT is then clipped). CURRENT and POWER stay 0 while CAL
is 0, e.g. after ``power_cycle()`` (a brown-out). Reading POWER clears CNVR; writing a mode
clears it too. Faults: ``nack`` (SimI2C), ``stuck`` (ADC stopped: registers frozen, CNVR
stays 0 once cleared), ``garbage`` (BUS 32.76 V, SHUNT and CURRENT at full scale).
"""

from sim.i2c import ChipModel
from sim.prng import Prng


class INA219Model(ChipModel):
    def __init__(self, truth, addr=0x40, seed=1, shunt_ohm=0.1, noise_shunt_v=5e-6, noise_bus_v=0.002):
        super().__init__()
        self.truth = truth
        self.addr = addr
        self.shunt_ohm = shunt_ohm
        self.noise_shunt_v = noise_shunt_v
        self.noise_bus_v = noise_bus_v
        self.conversions = 0
        self._rng = Prng(seed)
        self.regs = [0] * 6
        self._ptr = 0
        self._trigger = False
        self.power_cycle()

    def power_cycle(self):
        """Power-on / brown-out reset: defaults, calibration lost."""
        self.regs = [0x399F, 0, 0, 0, 0, 0]
        self._trigger = False

    def _convert(self):
        t, r = self.truth, self.regs
        self.conversions += 1
        if self.garbage:
            r[1], r[2], r[4] = 0x7FFF, 0xFFFA, 0x7FFF
            return
        limit = 4000 << ((r[0] >> 11) & 3)
        shunt = int(round((t.solar_a * self.shunt_ohm + self._rng.gauss(0.0, self.noise_shunt_v)) / 1e-5))
        shunt = max(-limit, min(limit, shunt))
        bus = max(0, min(8191, int(round((t.battery_v + self._rng.gauss(0.0, self.noise_bus_v)) / 0.004))))
        mag = (abs(shunt) * r[5]) >> 12
        power = (mag * bus) // 5000
        ovf = mag > 32767 or power > 0xFFFF
        mag = min(mag, 32767)
        r[1] = shunt & 0xFFFF
        r[2] = (bus << 3) | 0x02 | (1 if ovf else 0)
        r[3] = min(power, 0xFFFF)
        r[4] = (-mag if shunt < 0 else mag) & 0xFFFF

    def on_write(self, data):
        self._ptr = data[0] & 0x07
        if len(data) < 3 or self._ptr > 5:
            return
        val = (data[1] << 8) | data[2]
        if self._ptr == 0:
            if val & 0x8000:
                self.power_cycle()
                return
            self.regs[0] = val
            self.regs[2] &= ~0x02  # a new mode clears CNVR
            self._trigger = 1 <= val & 7 <= 3
        elif self._ptr == 5:
            self.regs[5] = val & 0xFFFE

    def on_read(self, n):
        mode = self.regs[0] & 7
        if not self.stuck and (mode >= 5 or self._trigger):
            self._trigger = False
            self._convert()
        val = self.regs[self._ptr] if self._ptr <= 5 else 0
        if self._ptr == 3:
            self.regs[2] &= ~0x02
        out = bytearray(n)
        for i in range(n):
            out[i] = val >> 8 if i % 2 == 0 else val & 0xFF
        return bytes(out)
