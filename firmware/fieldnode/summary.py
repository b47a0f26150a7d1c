"""Streaming statistics in O(1) memory that survive deep sleep in RTC memory.

    st = Stats(3); st.add(0, 21.4); st.add(0, None); st.mean(0)      # None is ignored
    rtc.memory(st.to_bytes()); ...wake...; st.load_bytes(rtc.memory())  # StateError if garbage

Stats keeps, per quantity, float32 ref (the first value), sum of (value - ref), a Kahan
compensation term, min and max, plus a uint16 count; nothing grows with the number of samples.
Precision: float32 (the ESP32-S3 port computes in float32 too) has a 24-bit mantissa, so a plain
float32 sum of 1440 pressures near 101325 Pa (1.46e8, spacing 16 Pa) would be off by tens of Pa
in the sum and ~0.1-1 Pa in the mean. Summing deviations from the first value keeps the terms
small, and Kahan compensation (the rounding of each stored sum is carried into the next add)
keeps the error of the mean near one float32 step of the values themselves (0.008 Pa at 101 kPa,
2e-6 K at 20 degC) for any count. Counts saturate at 65535 (later samples are ignored: the mean
of the first 65535 is kept). None and NaN are ignored.

Serialised state (little-endian, like both targets' arrays, fixed size for a given nq):
    magic u16 | version u8 | nq u8 | nq x 5 float32 | nq x uint16 | crc32 u32 (of all before it)
Stats(8) is 4 + 8 x 22 + 4 = 184 bytes; DailyStats is 194 bytes. ESP32 RTC user memory
(machine.RTC().memory) holds 2048 bytes. load_bytes() validates length, magic, version, size
and CRC before touching any state and raises StateError (a NodeError) naming what was wrong:
garbage after a power-on or a firmware with another layout is rejected, never half-loaded. The
caller catches it and starts from reset() (expected once after every power-on).

DailyStats adds the day's agronomic summary on top (see its docstring).
"""

import binascii
import struct
from array import array

from micropython import const

from fieldnode.agro import growing_degree_days
from fieldnode.errors import NodeError

_VERSION = const(1)
_STATS_MAGIC = const(0x5453)  # bytes "ST"
_DAILY_MAGIC = const(0x5344)  # bytes "DS"
_MAX_COUNT = const(65535)
_F = const(5)  # floats per quantity: ref, sum of (value - ref), Kahan compensation, min, max


class StateError(NodeError):
    """Saved statistics failed the length/magic/version/CRC check (power-on garbage, other firmware)."""


def _check(b, magic, size, what):
    """Raise StateError unless ``b`` is a ``size``-byte record of ``magic`` with a valid CRC32."""
    if b is None or len(b) != size:
        raise StateError("%s: %s bytes, expected %d" % (what, "no" if b is None else len(b), size))
    m, v = struct.unpack_from("<HB", b, 0)
    if m != magic or v != _VERSION:
        raise StateError("%s: magic 0x%04x version %d, expected 0x%04x version %d" % (what, m, v, magic, _VERSION))
    got = struct.unpack_from("<I", b, size - 4)[0]
    want = binascii.crc32(memoryview(b)[: size - 4])
    if got != want:
        raise StateError("%s: CRC 0x%08x, expected 0x%08x" % (what, got, want))


def _sealed(parts):
    """Concatenate ``parts`` and append their CRC32."""
    body = b"".join(parts)
    return body + struct.pack("<I", binascii.crc32(body))


class Stats:
    """count/mean/min/max of ``nq`` quantities (0 <= nq <= 255), fed one value at a time."""

    def __init__(self, nq):
        if not 0 < nq < 256:
            raise ValueError("nq %d not in 1..255" % nq)
        self.nq = nq
        self.size = 8 + nq * (4 * _F + 2)  # bytes of to_bytes()
        self._f = array("f", bytes(4 * _F * nq))
        self._n = array("H", bytes(2 * nq))

    def reset(self):
        f = self._f
        for k in range(len(f)):
            f[k] = 0.0
        for k in range(self.nq):
            self._n[k] = 0

    def add(self, i, value):
        """Add one value of quantity ``i``; None and NaN are ignored."""
        if value is None or value != value:
            return
        n = self._n[i]
        if n >= _MAX_COUNT:
            return
        f = self._f
        o = i * _F
        if n == 0:
            f[o] = value
            f[o + 1] = value - f[o]  # what float32 rounding of ref lost
            f[o + 2] = 0.0
            f[o + 3] = value
            f[o + 4] = value
        else:
            y = (value - f[o]) - f[o + 2]
            s = f[o + 1]
            f[o + 1] = s + y
            f[o + 2] = (f[o + 1] - s) - y  # rounding of the stored sum, taken off the next term
            if value < f[o + 3]:
                f[o + 3] = value
            if value > f[o + 4]:
                f[o + 4] = value
        self._n[i] = n + 1

    def count(self, i):
        return self._n[i]

    def mean(self, i):
        n = self._n[i]
        if not n:
            return None
        o = i * _F
        return self._f[o] + (self._f[o + 1] - self._f[o + 2]) / n

    def min(self, i):
        return self._f[i * _F + 3] if self._n[i] else None

    def max(self, i):
        return self._f[i * _F + 4] if self._n[i] else None

    def to_bytes(self):
        """The state as ``self.size`` bytes (see the module doc)."""
        return _sealed((struct.pack("<HBB", _STATS_MAGIC, _VERSION, self.nq), bytes(self._f), bytes(self._n)))

    def load_bytes(self, b):
        """Restore from to_bytes() output; StateError (state untouched) if ``b`` is not valid."""
        _check(b, _STATS_MAGIC, self.size, "stats")  # the size tells nq apart
        f = self._f
        for k in range(len(f)):
            f[k] = struct.unpack_from("<f", b, 4 + 4 * k)[0]
        o = 4 + 4 * len(f)
        for k in range(self.nq):
            self._n[k] = struct.unpack_from("<H", b, o + 2 * k)[0]


# DailyStats quantities (indices into its Stats)
_AIR = const(0)
_CANOPY = const(1)
_RH = const(2)
_PRESSURE = const(3)
_NDVI = const(4)  # midday only
_CI = const(5)  # midday only
_DIFF = const(6)  # canopy - air, midday only
_NQ = const(7)
_DAILY = (
    "date samples ndvi_midday chlorophyll_midday air_t_min air_t_max air_t_mean canopy_t_min canopy_t_max "
    "canopy_t_mean canopy_air_diff_midday gdd incident_mj_m2 rh_min rh_max pressure_mean utc_offset_min"
)


class DailyStats:
    """The day's agronomic summary, fed once per sample, finished once per local day.

        day = DailyStats(); day.add_sample(t, agro.solar_hour(t, lon), air, rh, p, tc, sw, ndvi, ci, 60)
        msg = day.finish(agro.local_date_days(day.last_t, 120), 10.0, 30.0, 120); day.reset()

    Midday window: local solar hour in [midday_start_h, midday_end_h) and incident shortwave
    >= midday_min_w_m2 (a missing incident value is not midday); NDVI, chlorophyll index and
    canopy - air difference (needs both temperatures) are averaged over those samples only.
    Incident energy integrates max(0, W m-2) x sample_s (rectangle rule; samples with either
    None are skipped). ``samples`` counts every add_sample call. finish() does not reset; the
    caller sends the dict, then calls reset(). ``first_t`` / ``last_t`` (epoch s or None) tell
    the caller which day the accumulated samples belong to after a deep sleep. Per-quantity
    counts are uint16 (Stats): sample every 2 s or slower, or a day's tail is left out.
    """

    midday_start_h = 10.0  # defaults in the class: an instance keeps only the ones that differ
    midday_end_h = 14.0
    midday_min_w_m2 = 150.0
    # header, the Stats record, samples, lit samples, first t, last t (u32), energy (2 x f32), CRC32
    size = 4 + (8 + _NQ * (4 * _F + 2)) + 24 + 4

    def __init__(self, midday_start_h=10.0, midday_end_h=14.0, midday_min_w_m2=150.0):
        if midday_start_h != self.midday_start_h:
            self.midday_start_h = midday_start_h
        if midday_end_h != self.midday_end_h:
            self.midday_end_h = midday_end_h
        if midday_min_w_m2 != self.midday_min_w_m2:
            self.midday_min_w_m2 = midday_min_w_m2
        self.stats = Stats(_NQ)
        self._e = array("f", bytes(8))  # incident energy J m-2 and its Kahan term
        self.reset()

    def reset(self):
        self.stats.reset()
        self.samples = self._lit = 0
        self.first_t = self.last_t = None
        self._e[0] = self._e[1] = 0.0

    def add_sample(
        self, t_epoch, local_solar_hour, air_c, rh_pct, pressure_pa, canopy_c, incident_w_m2, ndvi, ci, sample_s
    ):
        if t_epoch is not None:
            self.last_t = int(t_epoch)
            if not self.samples:
                self.first_t = self.last_t
        self.samples += 1
        st = self.stats
        st.add(_AIR, air_c)
        st.add(_CANOPY, canopy_c)
        st.add(_RH, rh_pct)
        st.add(_PRESSURE, pressure_pa)
        if incident_w_m2 is None:
            return
        if sample_s is not None:
            e = self._e
            y = (incident_w_m2 * sample_s if incident_w_m2 > 0 else 0.0) - e[1]
            s = e[0]
            e[0] = s + y
            e[1] = (e[0] - s) - y
            self._lit += 1
        h = local_solar_hour
        if h is None or not (self.midday_start_h <= h < self.midday_end_h) or incident_w_m2 < self.midday_min_w_m2:
            return
        st.add(_NDVI, ndvi)
        st.add(_CI, ci)
        if canopy_c is not None and air_c is not None:
            st.add(_DIFF, canopy_c - air_c)

    def finish(self, date_days, gdd_base_c=10.0, gdd_cap_c=30.0, utc_offset_min=None):
        """The ``daily`` message fields; keys whose value is unknown are left out."""
        st = self.stats
        tmin = st.min(_AIR)
        tmax = st.max(_AIR)
        values = (
            int(date_days),
            self.samples,
            st.mean(_NDVI),
            st.mean(_CI),
            tmin,
            tmax,
            st.mean(_AIR),
            st.min(_CANOPY),
            st.max(_CANOPY),
            st.mean(_CANOPY),
            st.mean(_DIFF),
            growing_degree_days(tmin, tmax, gdd_base_c, gdd_cap_c),
            (self._e[0] - self._e[1]) * 1e-6 if self._lit else None,
            st.min(_RH),
            st.max(_RH),
            st.mean(_PRESSURE),
            utc_offset_min,
        )
        out = {}
        for k, v in zip(_DAILY.split(), values):
            if v is not None:
                out[k] = v
        return out

    def to_bytes(self):
        """The state as ``self.size`` bytes: header, the Stats record, counters/times, energy, CRC32."""
        return _sealed(
            (
                struct.pack("<HBB", _DAILY_MAGIC, _VERSION, _NQ),
                self.stats.to_bytes(),
                struct.pack("<IIII", self.samples, self._lit, self.first_t or 0, self.last_t or 0),
                bytes(self._e),
            )
        )

    def load_bytes(self, b):
        """Restore from to_bytes() output; StateError (state untouched) if ``b`` is not valid."""
        _check(b, _DAILY_MAGIC, self.size, "daily")
        o = 4 + self.stats.size
        self.stats.load_bytes(memoryview(b)[4:o])  # checks its own record before changing anything
        self.samples, self._lit, first, last = struct.unpack_from("<IIII", b, o)
        self.first_t = first if self.samples else None
        self.last_t = last if self.samples else None
        for k in range(2):
            self._e[k] = struct.unpack_from("<f", b, o + 16 + 4 * k)[0]
