"""Sensirion SHT4x air temperature and humidity: high-precision measurement, CRC-checked.

    sht = SHT4x(i2c)                        # 0x44 (SHT4x-A); 0x45/0x46 for -B/-C parts
    t_c, rh_pct = sht.measure()

Command-only protocol: write one command byte, wait, read 6 bytes (T word, CRC, RH word,
CRC). Reading before the conversion ends is NACKed by the chip; we retry a few times,
then raise NotReadyError. RH slightly outside 0..100 % is normal and clamped.
"""

from micropython import const

from fieldnode.drivers import Chip
from fieldnode.errors import CrcError, NotReadyError

_MEASURE_HIGH = const(0xFD)  # T + RH, high repeatability
_SERIAL = const(0x89)
_SOFT_RESET = const(0x94)
_WAIT_HIGH_MS = const(9)  # datasheet max 8.3 ms
_WAIT_SERIAL_MS = const(10)  # as the Sensirion driver
_RETRIES = const(5)  # extra 1 ms polls after the datasheet wait


def crc8(data, start=0, n=2):
    """Sensirion CRC-8 (poly 0x31, init 0xFF) of data[start:start+n]; 0xBEEF -> 0x92."""
    crc = 0xFF
    for i in range(start, start + n):
        crc ^= data[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class SHT4x(Chip):
    addr = 0x44

    def __init__(self, i2c, addr=0x44, name="sht4x", sleep_ms=None, stuck_limit=20):
        Chip.__init__(self, i2c, addr, name, sleep_ms, stuck_limit)

    def _send(self, cmd):
        self._b1[0] = cmd
        self._io(None, self._b1, True)

    def _transact(self, cmd, wait_ms):
        """Send ``cmd``, wait, read the 6-byte answer; returns (word1, word2) after CRC checks."""
        self._send(cmd)
        self._sleep(wait_ms)
        buf = self._b6
        for i in range(_RETRIES + 1):
            try:
                self.i2c.readfrom_into(self.addr, buf)
                break
            except OSError:  # the command was ACKed, so a NACK here means "still converting"
                if i == _RETRIES:
                    raise NotReadyError(
                        self.name, "cmd 0x%02x: no data %d ms after the command" % (cmd, wait_ms + _RETRIES)
                    )
                self._sleep(1)
        for i in (0, 3):
            crc = crc8(buf, i)
            if crc != buf[i + 2]:
                raise CrcError(
                    self.name, "word %d of cmd 0x%02x: expected CRC 0x%02x, got 0x%02x" % (i // 3, cmd, crc, buf[i + 2])
                )
        return (buf[0] << 8) | buf[1], (buf[3] << 8) | buf[4]

    def measure(self):
        """(t_c, rh_pct): one high-precision measurement; RH clamped to 0..100 %."""
        st, srh = self._transact(_MEASURE_HIGH, _WAIT_HIGH_MS)
        t = self._range("temperature degC", -45.0 + 175.0 * st / 65535.0, -40, 125)
        # RH beyond 0..100 by more than 5 % is not physics but a broken reading
        rh = self._range("humidity %", -6.0 + 125.0 * srh / 65535.0, -5, 105)
        self._same((st << 8) ^ srh)  # small int on every port; equal words -> equal key
        return t, min(max(rh, 0.0), 100.0)

    def serial(self):
        """The chip's 32-bit serial number."""
        hi, lo = self._transact(_SERIAL, _WAIT_SERIAL_MS)
        return (hi << 16) | lo

    def reset(self):
        """Soft reset (the chip returns to idle within 1 ms)."""
        self._send(_SOFT_RESET)
        self._sleep(1)
