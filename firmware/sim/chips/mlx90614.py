"""MLX90614 model at SMBus level: Ta and Tobj1 words with PEC, from the live Truth.

    up = bus.attach(MLX90614Model(truth, role="sky", addr=0x5B))
    down = bus.attach(MLX90614Model(truth, role="canopy"))

Tobj1 is the brightness temperature the sensor sees with its factory emissivity 1.0:
canopy role T_b^4 = e*Tc^4 + (1-e)*Tsky^4 (kelvin; reflected sky), sky role T_b = Tsky.
Ta is the air temperature. 0.02 K/LSB, small noise. EEPROM writes are not modelled.
Faults: ``bad_crc`` (PEC inverted), ``garbage`` (Ta = 0 K, Tobj1 = 0xFFFF error flag,
valid PEC), ``stuck`` (each register repeats its last word).
"""

from sim.i2c import ChipModel
from sim.prng import Prng

_K = 273.15


def _pec(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class MLX90614Model(ChipModel):
    def __init__(self, truth, role="canopy", addr=0x5A, seed=1, noise_k=0.01):
        super().__init__()
        if role not in ("canopy", "sky"):
            raise ValueError("role must be 'canopy' or 'sky'")
        self.truth = truth
        self.role = role
        self.addr = addr
        self.noise_k = noise_k
        self.rng = Prng(seed)
        rid = self.rng.next_u32()
        # EEPROM (command = 0x20 | cell): emissivity 1.0, SMBus address, 64-bit ID
        self.eeprom = {0x24: 0xFFFF, 0x2E: 0xBE00 | addr, 0x3C: rid & 0xFFFF, 0x3D: rid >> 16, 0x3E: 0x1234, 0x3F: 0x9D}
        self.cmd = 0
        self.last = {}

    def brightness_k(self):
        t = self.truth
        if self.role == "sky":
            return t.sky_c + _K
        e = t.emissivity
        return (e * (t.canopy_c + _K) ** 4 + (1.0 - e) * (t.sky_c + _K) ** 4) ** 0.25

    def _word(self, cmd):
        if self.stuck and cmd in self.last:
            return self.last[cmd]
        if cmd == 0x06:
            w = 0 if self.garbage else int((self.truth.air_c + _K + self.rng.gauss(0.0, 0.005)) / 0.02 + 0.5)
        elif cmd == 0x07:
            w = 0xFFFF if self.garbage else int((self.brightness_k() + self.rng.gauss(0.0, self.noise_k)) / 0.02 + 0.5)
        else:
            w = self.eeprom.get(cmd, 0)
        w = min(max(w, 0), 0xFFFF)
        self.last[cmd] = w
        return w

    def on_write(self, data):
        self.cmd = data[0]  # a write-word (len > 1) would program EEPROM: ignored here

    def on_read(self, n):
        w = self._word(self.cmd)
        sa = self.addr << 1
        pec = _pec(bytes([sa, self.cmd, sa | 1, w & 0xFF, w >> 8]))
        if self.bad_crc:
            pec ^= 0xFF
        return (bytes([w & 0xFF, w >> 8, pec]) + b"\xff" * n)[:n]  # bus idles high past the PEC
