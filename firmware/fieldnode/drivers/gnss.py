"""NMEA 0183 GNSS receiver on a UART: fix, position and UTC time from GGA and RMC.

    gps = GNSS(uart)                 # machine.UART-like: any(), readinto(buf, n) or read(n)
    gps.poll(); if gps.fix: print(gps.lat, gps.lon, gps.utc_epoch)

``poll`` consumes what the UART holds into one bounded line buffer (80 characters from '$'
to the checksum; 82 with CR LF). A '$' always starts a new sentence, so garbage and cut-off
lines resynchronise on the next one. Counted, never parsed: ``overlong`` lines, ``dropped``
lines (cut off by a '$' or holding non-printable bytes), ``bad_checksum`` (missing or wrong
``*hh``), ``malformed`` (checksum right, fields unparseable). ``sentences`` counts sentences
with a good checksum. GGA and RMC are parsed from any talker (GP, GN, GL, GA, BD ...), by
field index, tolerating extra fields; other sentence types are counted and ignored.

GGA: ``quality`` (0 = no fix), ``sats``, ``hdop``, and with a fix ``lat``/``lon`` (decimal
degrees, S and W negative) and ``alt_m`` (above MSL). RMC with status A: ``utc_epoch``
(Unix seconds from date + time, computed here, independent of the port's epoch; fraction of
a second dropped; two-digit years 80..99 are 19xx) and ``utc_tick_ms``, the tick when it was
parsed. RMC status V or GGA quality 0 clear ``fix``; ``lat``/``lon``/``alt_m`` then keep the
last fixed position (None before the first).
"""

import time

from micropython import const

_MAXLEN = const(80)
_MAXF = const(20)  # fields indexed; later ones are ignored
_NF = const(21)  # _f[_NF]: fields in the current sentence
_ST = const(22)  # _f[_ST]: framing state (0 hunting '$', 1 in a sentence, 2 skipping an overlong line)
_N = const(23)  # _f[_N]: characters in _line
_DEC = const(24)  # _f[_DEC]: digits after the point in the field _digits parsed last
_DOLLAR = const(0x24)
_STAR = const(0x2A)
_COMMA = const(0x2C)
_DOT = const(0x2E)
_CR = const(0x0D)
_LF = const(0x0A)


def days_from_civil(y, m, d):
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


class GNSS:
    # the node keeps this for its whole life: values start as these class defaults and only what
    # changes becomes an instance attribute; framing state lives in the spare bytes of _f
    name = "gnss"
    fix = False
    quality = sats = 0
    hdop = lat = lon = alt_m = None
    utc_epoch = utc_tick_ms = None
    sentences = bad_checksum = overlong = dropped = malformed = 0

    def __init__(self, uart, name="gnss", ticks_ms=None, chunk=64):
        self.uart = uart
        if name != self.name:
            self.name = name
        self._ticks = ticks_ms or time.ticks_ms
        self._rx = bytearray(chunk)
        self._line = bytearray(_MAXLEN)
        self._f = bytearray(_DEC + 1)  # start offset of each field, then one past the last; then the above

    # -- framing -------------------------------------------------------------
    def poll(self):
        """Consume every byte the UART holds; returns how many good sentences arrived."""
        before = self.sentences
        rx, line, f = self._rx, self._line, self._f
        readinto = getattr(self.uart, "readinto", None)
        while True:
            k = self.uart.any()
            if not k:
                break
            k = min(k, len(rx))
            if readinto:
                k = readinto(rx, k) or 0
            else:
                data = self.uart.read(k) or b""
                k = len(data)
                rx[:k] = data
            if not k:
                break
            state, n = f[_ST], f[_N]
            for i in range(k):
                c = rx[i]
                if c == _DOLLAR:
                    if state == 1:
                        self.dropped += 1
                    line[0] = c
                    state, n = 1, 1
                elif c == _CR or c == _LF:
                    if state == 1:
                        self._sentence(n)
                    state = 0
                elif state == 1:
                    if c < 0x20 or c > 0x7E:
                        self.dropped += 1
                        state = 0
                    elif n >= _MAXLEN:
                        self.overlong += 1
                        state = 2
                    else:
                        line[n] = c
                        n += 1
            f[_ST], f[_N] = state, n
        return self.sentences - before

    def _sentence(self, n):
        line, f = self._line, self._f
        star = n - 3
        if star < 1 or line[star] != _STAR:
            self.bad_checksum += 1
            return
        cs = 0
        for i in range(1, star):
            cs ^= line[i]
        for i in (1, 2):  # hex digits, either case; anything else makes the compare fail
            c = line[star + i] | 0x20  # (no control characters get this far)
            cs ^= (c - 0x30 if 0x30 <= c <= 0x39 else c - 0x57 if 0x61 <= c <= 0x66 else 0x100) << 4 * (2 - i)
        if cs:
            self.bad_checksum += 1
            return
        self.sentences += 1
        f[0], nf = 1, 1
        for i in range(1, star):
            if line[i] == _COMMA and nf < _MAXF:
                f[nf] = i + 1
                nf += 1
        f[nf] = star + 1
        f[_NF] = nf
        if f[1] != 7:  # address field: 2-letter talker + 3-letter type
            return
        try:
            if line[3] == 0x47 and line[4] == 0x47 and line[5] == 0x41:  # GGA
                self._gga()
            elif line[3] == 0x52 and line[4] == 0x4D and line[5] == 0x43:  # RMC
                self._rmc()
        except ValueError:
            self.malformed += 1

    # -- fields ----------------------------------------------------------------
    def _len(self, k):
        """Characters in field k; 0 if it is empty or absent."""
        f = self._f
        return f[k + 1] - 1 - f[k] if k < f[_NF] else 0

    def _digits(self, k):
        """All digits of field k as one integer (a leading '-' negates); ``_scale()`` is then
        10 ** (digits after the point). ValueError if the field is not a plain decimal."""
        f, line = self._f, self._line
        a, b = f[k], f[k + 1] - 1
        neg = line[a] == 0x2D
        if neg:
            a += 1
        v, dec, dot = 0, 0, False
        for i in range(a, b):
            c = line[i]
            if c == _DOT and not dot:
                dot = True
            elif 0x30 <= c <= 0x39:
                v = v * 10 + c - 0x30
                if dot:
                    dec += 1
            else:
                raise ValueError
        f[_DEC] = dec  # < 80: a sentence holds at most 80 characters
        return -v if neg else v

    def _scale(self):
        return 10 ** self._f[_DEC]

    def _num(self, k, whole=False):
        """Field k as a float (``whole``: the integer part, hhmmss.ss -> hhmmss); None if empty."""
        if not self._len(k):
            return None
        v = self._digits(k)
        return v // self._scale() if whole else v / self._scale()

    def _coord(self, k, pos, neg):
        """ddmm.mmmm / dddmm.mmmm in field k, hemisphere in k + 1 -> signed degrees."""
        if not self._len(k) or self._len(k + 1) != 1:
            raise ValueError
        v = self._digits(k)
        scale = self._scale()
        d = v // scale // 100
        if v < 0 or v - d * 100 * scale >= 60 * scale:
            raise ValueError
        deg = d + (v - d * 100 * scale) / (60 * scale)
        c = self._line[self._f[k + 1]]
        if c == neg:
            return -deg
        if c != pos:
            raise ValueError
        return deg

    def _gga(self):
        q = self._num(6, True)
        if q is None:
            raise ValueError
        sats = self._num(7, True)
        hdop = self._num(8)
        if q:
            lat = self._coord(2, 0x4E, 0x53)
            lon = self._coord(4, 0x45, 0x57)
            alt = self._num(9)
            self.lat, self.lon = lat, lon
            if alt is not None:
                self.alt_m = alt
        self.quality = q
        self.fix = q > 0
        self.sats = sats or 0
        self.hdop = hdop

    def _rmc(self):
        if self._len(2) != 1:
            raise ValueError
        if self._line[self._f[2]] != 0x41:  # 'A'; 'V' = void
            self.fix = False
            return
        hms, dmy = self._num(1, True), self._num(9, True)
        if hms is None or dmy is None:
            raise ValueError
        hh, mi, ss = hms // 10000, hms // 100 % 100, hms % 100
        dd, mo, yy = dmy // 10000, dmy // 100 % 100, dmy % 100
        if not (1 <= dd <= 31 and 1 <= mo <= 12 and hh < 24 and mi < 60 and ss <= 60):
            raise ValueError
        lat = self._coord(3, 0x4E, 0x53)
        lon = self._coord(5, 0x45, 0x57)
        days = days_from_civil(yy + (1900 if yy >= 80 else 2000), mo, dd)
        self.utc_epoch = days * 86400 + hh * 3600 + mi * 60 + ss
        self.utc_tick_ms = self._ticks()
        self.lat, self.lon = lat, lon
        self.fix = True

    # -- helpers ---------------------------------------------------------------
    def utc_now(self, now_ms=None):
        """UTC epoch seconds now, from the last valid RMC and the ticks since; None before one."""
        if self.utc_epoch is None:
            return None
        now_ms = self._ticks() if now_ms is None else now_ms
        return self.utc_epoch + time.ticks_diff(now_ms, self.utc_tick_ms) // 1000

    def wait_fix(self, timeout_ms, now_ms_fn=None, sleep_ms=None):
        """Poll until ``fix`` or ``timeout_ms`` passed; returns ``fix``."""
        now = now_ms_fn or self._ticks
        sleep = sleep_ms or time.sleep_ms
        t0 = now()
        while True:
            self.poll()
            if self.fix or time.ticks_diff(now(), t0) >= timeout_ms:
                return self.fix
            sleep(100)
