"""A simulated NMEA 0183 GNSS receiver behind a machine.UART-like object.

    uart = GNSSUart(truth)              # truth.lat, lon, alt_m, gnss_fix, t
    gps = GNSS(uart); truth.t += 1; gps.poll()

Each new second of sim time queues one GGA + RMC pair with real checksums, for that second
only: a jump of many seconds gives one pair, not a backlog. Time advances either through
``tick(t_epoch)`` or lazily when the UART is read and ``truth.t`` changed since the last tick. The receive queue
holds at most ``rxbuf`` bytes; older bytes are dropped (``lost_bytes``), which can leave a
cut-off line at its head. Without a fix (``truth.gnss_fix`` False) GGA has quality 0 and RMC
status V with empty position fields, as u-blox style receivers send them. Position carries
``jitter_m`` rms noise. Faults/knobs: ``corrupt`` (fraction of sentences with one character
changed, so the checksum fails), ``silent`` (no output: dead or unpowered receiver);
``inject(bytes)`` puts raw bytes on the line.
"""

from sim.prng import Prng


def civil_from_days(days):
    """(year, month, day) of a day number counted from 1970-01-01 (H. Hinnant's algorithm)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


def _coord(deg, width, pos, neg):
    """Signed degrees -> ('ddmm.mmmmm', hemisphere) with ``width`` degree digits."""
    u = int(round(abs(deg) * 6000000))  # 1e-5 minutes
    text = ("%02d" if width == 2 else "%03d") % (u // 6000000) + "%02d.%05d" % (u // 100000 % 60, u % 100000)
    return text, neg if deg < 0 else pos


class GNSSUart:
    def __init__(self, truth, seed=1, talker="GN", rxbuf=512):
        self.truth = truth
        self.talker = talker
        self.rxbuf = rxbuf
        self.corrupt = 0.0
        self.silent = False
        self.sats = 9
        self.hdop = 0.9
        self.geoid_m = 47.0
        self.jitter_m = 1.5
        self.corrupted = 0
        self.lost_bytes = 0
        self.written = b""
        self._rng = Prng(seed)
        self._q = bytearray()
        self._second = None
        self._seen_t = None  # truth.t at the last lazy or explicit tick

    # -- receiver ----------------------------------------------------------------
    def tick(self, t_epoch):
        self._seen_t = int(self.truth.t)
        s = int(t_epoch)
        if s == self._second:
            return
        self._second = s
        if self.silent:
            return
        t = self.truth
        hms = "%02d%02d%02d.00" % (s // 3600 % 24, s // 60 % 60, s % 60)
        y, m, d = civil_from_days(s // 86400)
        dmy = "%02d%02d%02d" % (d, m, y % 100)
        if t.gnss_fix:
            j = self.jitter_m / 111320.0
            lat, ns = _coord(t.lat + self._rng.gauss(0.0, j), 2, "N", "S")
            lon, ew = _coord(t.lon + self._rng.gauss(0.0, j), 3, "E", "W")
            tail = "%02d,%.1f,%.1f,M,%.1f,M,," % (self.sats, self.hdop, t.alt_m, self.geoid_m)
            gga = [hms, lat, ns, lon, ew, "1", tail]
            rmc = [hms, "A", lat, ns, lon, ew, "0.010", "", dmy, "", "", "A"]
        else:
            gga = [hms, "", "", "", "", "0", "00", "99.99", "", "", "", "", "", ""]
            rmc = [hms, "V", "", "", "", "", "", "", dmy, "", "", "N"]
        self._send("GGA", gga)
        self._send("RMC", rmc)

    def _send(self, kind, fields):
        body = ",".join([self.talker + kind] + fields)
        cs = 0
        for ch in body:
            cs ^= ord(ch)
        if self.corrupt and self._rng.random() < self.corrupt:
            i = 1 + self._rng.next_u32() % (len(body) - 1)
            body = body[:i] + ("7" if body[i] != "7" else "3") + body[i + 1 :]
            self.corrupted += 1
        self.inject(("$%s*%02X\r\n" % (body, cs)).encode())

    def inject(self, data):
        self._q.extend(data)
        over = len(self._q) - self.rxbuf
        if over > 0:
            self.lost_bytes += over
            self._q = self._q[over:]

    # -- machine.UART API ----------------------------------------------------------
    def _sync(self):
        if int(self.truth.t) != self._seen_t:
            self.tick(self.truth.t)

    def any(self):
        self._sync()
        return len(self._q)

    def read(self, n=-1):
        self._sync()
        if not self._q:
            return None
        n = len(self._q) if n is None or n < 0 else n
        out = bytes(self._q[:n])
        self._q = self._q[n:]
        return out

    def readinto(self, buf, nbytes=None):
        data = self.read(len(buf) if nbytes is None else min(nbytes, len(buf)))
        if data is None:
            return None
        buf[: len(data)] = data
        return len(data)

    def write(self, data):
        self.written = bytes(data)
        return len(data)
