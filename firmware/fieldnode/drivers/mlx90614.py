"""Melexis MLX90614 IR thermometer over SMBus: object and ambient temperature in degC.

    ir = MLX90614(i2c)                      # 0x5A; every word is PEC-checked
    canopy_c = ir.object_c(); die_c = ir.ambient_c()

Each read is a SMBus read-word: command, repeated start, LSB, MSB, PEC. The PEC is
CRC-8 (poly 0x07, init 0) over SA+W, command, SA+R, LSB, MSB, so it needs our address.
Temperatures are 0.02 K/LSB; bit 15 set is the chip's error flag, not a temperature.
"""

from micropython import const

from fieldnode.drivers import Chip
from fieldnode.errors import CrcError, RangeError

_TA = const(0x06)  # RAM: ambient (die) temperature
_TOBJ1 = const(0x07)  # RAM: object temperature, zone 1
_EMISSIVITY = const(0x24)  # EEPROM 0x04: ke = round(65535 * emissivity)


def smbus_pec(data):
    """SMBus PEC (CRC-8, poly 0x07, init 0, no reflection) of a byte sequence, e.g.
    smbus_pec(b"\\xb4\\x07\\xb5\\xd2\\x3a") == 0x30."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class MLX90614(Chip):
    addr = 0x5A
    stuck_limit = 50
    _buf = bytearray(3)  # LSB, MSB, PEC; shared scratch (see fieldnode.drivers)

    def __init__(self, i2c, addr=0x5A, name="mlx90614", sleep_ms=None, stuck_limit=50):
        Chip.__init__(self, i2c, addr, name, sleep_ms, stuck_limit)

    def read_word(self, cmd):
        """One PEC-checked SMBus read-word of RAM/EEPROM ``cmd``; returns the 16-bit value."""
        buf = self._io(cmd, self._buf)
        sa = self.addr << 1
        crc = smbus_pec((sa, cmd, sa | 1, buf[0], buf[1]))
        if crc != buf[2]:
            raise CrcError(self.name, "PEC of cmd 0x%02x: expected 0x%02x, got 0x%02x" % (cmd, crc, buf[2]))
        return buf[0] | (buf[1] << 8)

    def probe(self):
        """True if a chip answers Ta with a valid PEC (there is no ID register)."""
        self.read_word(_TA)
        return True

    def _temp_c(self, cmd, lo, hi):
        raw = self.read_word(cmd)
        if raw & 0x8000:
            raise RangeError(self.name, "error flag set in cmd 0x%02x (raw 0x%04x)" % (cmd, raw))
        return raw, self._range("cmd 0x%02x: degC" % cmd, raw * 0.02 - 273.15, lo, hi)

    def object_c(self):
        """Object (Tobj1) temperature in degC, as the chip computes it with its emissivity."""
        raw, t = self._temp_c(_TOBJ1, -70, 382.2)  # 0x7FFF x 0.02 K
        # only the object channel is guarded: it is noisy, so a frozen word means a frozen chip;
        # Ta is a quiet die temperature that legitimately repeats for minutes
        self._same(raw)
        return t

    def ambient_c(self):
        """Sensor die (ambient) temperature in degC (the chip's Ta calibration range)."""
        return self._temp_c(_TA, -40, 125)[1]

    def emissivity(self):
        """The emissivity setting in EEPROM (0.1..1.0; factory 1.0)."""
        return self.read_word(_EMISSIVITY) / 65535.0
