"""SHT4x model: command-only protocol, 6-byte answers with Sensirion CRC-8, from the live Truth.

    sht = bus.attach(SHT4xModel(truth, clock=board.clock_ms))   # clock optional
    # driver writes 0xFD, waits >= 8.3 ms, reads 6 bytes

The measurement samples truth.air_c / truth.rh_pct when the command is written. A read
with no result pending (nothing asked, already read, or still converting when ``clock``
is given) is NACKed: OSError(ENODEV), as the real chip does. Unknown commands are NACKed.
Faults: ``bad_crc`` (both CRCs inverted), ``garbage`` (0xFFFF words = 130 degC / 119 %RH,
valid CRC), ``stuck`` (repeats the last raw words).
"""

import struct

from sim.i2c import ENODEV, ChipModel
from sim.prng import Prng

# command: (conversion time ms, T noise degC, RH noise %) -- datasheet max times
_MEASURE = {0xFD: (8.3, 0.01, 0.02), 0xF6: (4.5, 0.025, 0.05), 0xE0: (1.6, 0.05, 0.1)}
_SERIAL = 0x89
_RESET = 0x94


def crc8(b0, b1):
    crc = 0xFF
    for b in (b0, b1):
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _word(x):
    return min(max(int(x + 0.5), 0), 0xFFFF)


class SHT4xModel(ChipModel):
    def __init__(self, truth, addr=0x44, seed=1, clock=None):
        super().__init__()
        self.truth = truth
        self.addr = addr
        self.clock = clock  # callable -> ms; None: results are ready at once
        self.rng = Prng(seed)
        self.serial = self.rng.next_u32()
        self.result = None
        self.ready_at = 0.0
        self.last = None

    def _now(self):
        return self.clock() if self.clock else 0.0

    def _sample(self, t_noise, rh_noise):
        if self.stuck and self.last:
            return self.last
        if self.garbage:
            return 0xFFFF, 0xFFFF
        t = self.truth.air_c + self.rng.gauss(0.0, t_noise)
        rh = self.truth.rh_pct + self.rng.gauss(0.0, rh_noise)
        self.last = (_word((t + 45.0) * 65535.0 / 175.0), _word((rh + 6.0) * 65535.0 / 125.0))
        return self.last

    def on_write(self, data):
        cmd = data[0]
        if cmd in _MEASURE:
            wait_ms, t_noise, rh_noise = _MEASURE[cmd]
            w1, w2 = self._sample(t_noise, rh_noise)
        elif cmd == _SERIAL:
            wait_ms, w1, w2 = 1.0, self.serial >> 16, self.serial & 0xFFFF
        elif cmd == _RESET:
            self.result = None
            return
        else:
            raise OSError(ENODEV)
        out = bytearray(6)
        struct.pack_into(">HBHB", out, 0, w1, crc8(w1 >> 8, w1 & 0xFF), w2, crc8(w2 >> 8, w2 & 0xFF))
        if self.bad_crc:
            out[2] ^= 0xFF
            out[5] ^= 0xFF
        self.result = bytes(out)
        self.ready_at = self._now() + wait_ms

    def on_read(self, n):
        if self.result is None or self._now() < self.ready_at:
            raise OSError(ENODEV)
        out, self.result = self.result, None  # a result is read once
        return out[:n]
