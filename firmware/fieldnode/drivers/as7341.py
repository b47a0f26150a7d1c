"""ams AS7341 11-channel spectral sensor: 10 bands as gain- and time-independent "basic counts".

    spec = AS7341(i2c).init()
    spec.read_basic(out)        # out: 10 floats, F1..F8 = 0..7, CLEAR = 8, NIR = 9

Basic counts = raw / (gain x t_int[ms]) (ams app-note convention), so a reading does not
depend on the gain or integration time in use. A full read is two integrations: the SMUX
routes F1-F4 + CLEAR + NIR, then F5-F8 + CLEAR + NIR, onto the six ADCs (the reference byte
strings); CLEAR and NIR are the mean of both. Auto-gain (``auto_gain``, on by default): a
saturated reading steps AGAIN down 4x and measures again; a reading whose peak is below 1/8
of full scale steps AGAIN up so the peak lands near half scale; at most ``_TRIES``
measurements per call, after which ``saturated`` tells the caller the values are clipped.
"""

from micropython import const

from fieldnode.drivers import Chip
from fieldnode.errors import NotReadyError, RangeError

_ENABLE = const(0x80)  # bit0 PON, bit1 SP_EN, bit4 SMUXEN (self-clearing)
_ATIME = const(0x81)
_ID = const(0x92)  # bits 7:2 = 0b001001
_ASTATUS = const(0x94)  # reading it latches the 12 data bytes that follow
_STATUS2 = const(0xA3)  # bit6 AVALID, bit4 ASAT_DIGITAL, bit3 ASAT_ANALOG
_CFG0 = const(0xA9)  # bit4 REG_BANK, bit5 LOW_POWER
_CFG1 = const(0xAA)  # AGAIN bits 4:0
_CFG6 = const(0xAF)  # SMUX_CMD bits 4:3
_ASTEP = const(0xCA)  # 16-bit LE
_PON = const(0x01)
_SP_EN = const(0x02)
_SMUXEN = const(0x10)
_AVALID = const(0x40)
_ASAT = const(0x18)
_SMUX_WRITE = const(0x10)  # CFG6: SMUX_CMD = 2, RAM -> SMUX
_ID_BITS = const(0x09)
_MAX_CODE = const(10)  # AGAIN 10 = 512x
_TRIES = const(5)  # measurements per read_basic while auto-ranging
_POLLS = const(20)  # status polls before NotReadyError
_POLL_MS = const(5)
_DARK_RAW = const(100)  # peaks below this are darkness: the stuck guard ignores them

# SMUX RAM 0x00..0x13 (ams reference): ADC0..5 = F1 F2 F3 F4 CLEAR NIR, then F5 F6 F7 F8 CLEAR NIR
_SMUX = (
    b"\x30\x01\x00\x00\x00\x42\x00\x00\x50\x00\x00\x00\x20\x04\x00\x30\x01\x50\x00\x06",
    b"\x00\x00\x00\x40\x02\x00\x10\x03\x50\x10\x03\x00\x00\x00\x24\x00\x00\x50\x00\x06",
)
_CHANNEL = b"\x00\x01\x02\x03\x08\x09\x04\x05\x06\x07\x08\x09"  # ADC k of half h -> band index
_RAW = [0] * 10  # raw counts of the read in progress (CLEAR, NIR: sum of both halves), shared by all


class AS7341(Chip):
    addr = 0x39
    auto_gain = True
    saturated = False
    atime = 35
    astep = 999
    _buf = bytearray(13)  # ASTATUS + 6 x 16-bit LE; shared scratch (see fieldnode.drivers)
    gain = property(lambda self: (1 << self._code) / 2)  # 0.5 .. 512, follows every change

    def __init__(self, i2c, addr=0x39, name="as7341", sleep_ms=None, gain=8, atime=35, astep=999):
        Chip.__init__(self, i2c, addr, name, sleep_ms)
        self.set_gain(gain, False)
        self._opt("atime", atime)
        self._opt("astep", astep)

    def _wait(self, reg, mask, want, what):
        """Poll ``reg`` until ``reg & mask == want``; returns the last value read."""
        for _ in range(_POLLS):
            v = self._reg(reg)
            if v & mask == want:
                return v
            self._sleep(_POLL_MS)
        raise NotReadyError(
            self.name, "%s not reached after %d polls (%.1f ms integration)" % (what, _POLLS, self.integration_ms())
        )

    # -- configuration -----------------------------------------------------
    def init(self):
        chip_id = self._reg(_ID)
        if chip_id >> 2 != _ID_BITS:
            raise RangeError(self.name, "ID 0x%02x at 0x92, expected bits 7:2 = 0x09 (0x24)" % chip_id)
        self._reg(_CFG0, 0)  # register bank 0x80+, normal power
        self._reg(_ENABLE, 0)  # no soft reset: power down, then PON
        self._reg(_ENABLE, _PON)
        self.set_integration(self.atime, self.astep)
        self._use(self._code)
        return self

    def _use(self, code, write=True):
        self._code = code
        if write:
            self._reg(_CFG1, code)

    def set_gain(self, gain, write=True):
        for code in range(_MAX_CODE + 1):
            if (1 << code) == gain * 2:
                return self._use(code, write)
        raise ValueError("gain %r not one of 0.5, 1, 2 ... 512" % gain)

    def set_integration(self, atime, astep):
        """t_int = (atime + 1) x (astep + 1) x 2.78 us; full scale = min(65535, steps)."""
        if not (0 <= atime <= 255 and 0 <= astep <= 65534):
            raise ValueError("atime 0..255, astep 0..65534, got %r, %r" % (atime, astep))
        self._opt("atime", atime)
        self._opt("astep", astep)
        self._reg(_ATIME, atime)
        b2 = self._b2
        b2[0] = astep & 0xFF
        b2[1] = astep >> 8
        self._io(_ASTEP, b2, True)

    def integration_ms(self):
        return (self.atime + 1) * (self.astep + 1) * 2.78 / 1000  # 2.78 us per step

    def full_scale(self):
        return min(65535, (self.atime + 1) * (self.astep + 1))

    # -- measurement -------------------------------------------------------
    def _measure_half(self, h, fs, peak):
        """Measure half ``h`` into ``_RAW``; returns max(peak, the largest ADC count)."""
        buf = self._buf
        self._reg(_CFG6, _SMUX_WRITE)
        self._io(0, _SMUX[h], True)
        self._reg(_ENABLE, _PON | _SMUXEN)
        self._wait(_ENABLE, _SMUXEN, 0, "SMUXEN clear")
        self._reg(_ENABLE, _PON | _SP_EN)
        self._sleep(int(self.integration_ms()) + 1)
        st2 = self._wait(_STATUS2, _AVALID, _AVALID, "AVALID")
        self._io(_ASTATUS, buf)
        self._reg(_ENABLE, _PON)
        if st2 & _ASAT or buf[0] & 0x80:
            self.saturated = True
        raw = _RAW
        for k in range(6):
            v = buf[1 + 2 * k] | buf[2 + 2 * k] << 8
            if v > fs:
                raise RangeError(
                    self.name,
                    "ADC%d = %d above full scale %d (ATIME %d, ASTEP %d)" % (k, v, fs, self.atime, self.astep),
                )
            if v >= fs:
                self.saturated = True
            if v > peak:
                peak = v
            ch = _CHANNEL[6 * h + k]
            raw[ch] = raw[ch] + v if h and ch >= 8 else v
        return peak

    def read_basic(self, out):
        """Fill ``out[0..9]`` with basic counts; auto-ranges the gain when ``auto_gain``."""
        for i in range(_TRIES):
            last = not self.auto_gain or i == _TRIES - 1  # the data must match the gain in use
            fs = self.full_scale()
            self.saturated = False
            peak = self._measure_half(0, fs, 0)
            if last or not (self.saturated and self._code):  # no second half if we re-range anyway
                peak = self._measure_half(1, fs, peak)
            code = self._code
            if last:
                break
            if self.saturated:
                if code == 0:
                    break
                code = max(0, code - 2)
            elif peak * 8 < fs and code < _MAX_CODE:
                p = peak
                while code < _MAX_CODE and p * 4 <= fs:
                    p *= 2
                    code += 1
            else:
                break
            self._use(code)
        if peak >= _DARK_RAW:  # darkness reads constant legitimately
            self._same(tuple(_RAW))
        scale = 1.0 / (self.gain * self.integration_ms())
        raw = _RAW
        for i in range(10):
            out[i] = raw[i] * scale / (2 if i > 7 else 1)
        return out
