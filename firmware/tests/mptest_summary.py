"""Streaming statistics and the daily summary: hand-computed values, precision, RTC-memory round trips."""

import gc
import math
from array import array

from fieldnode.errors import NodeError
from fieldnode.summary import DailyStats, StateError, Stats
from sim.prng import Prng

DAILY_KEYS = (
    "date ndvi_midday chlorophyll_midday air_t_min air_t_max air_t_mean canopy_t_min canopy_t_max canopy_t_mean "
    "canopy_air_diff_midday gdd incident_mj_m2 samples rh_min rh_max pressure_mean utc_offset_min"
).split()


def _near(a, b, tol):
    assert a is not None and abs(a - b) <= tol, "%r != %r +- %r" % (a, b, tol)


def _rejects(obj, b):
    try:
        obj.load_bytes(b)
    except StateError as e:
        assert isinstance(e, NodeError)
        return str(e)
    assert False, "expected StateError"


def test_stats_hand_computed_with_negatives_and_none():
    st = Stats(3)
    for v in (2.5, -1.0, None, 4.0, -3.5):
        st.add(0, v)
    st.add(2, -10.0)
    st.add(2, -20.0)
    st.add(2, float("nan"))  # ignored like None
    # (2.5 - 1 + 4 - 3.5) / 4 = 0.5
    assert st.count(0) == 4 and st.mean(0) == 0.5 and st.min(0) == -3.5 and st.max(0) == 4.0
    assert st.count(1) == 0 and st.mean(1) is None and st.min(1) is None and st.max(1) is None
    assert st.count(2) == 2 and st.mean(2) == -15.0 and st.min(2) == -20.0 and st.max(2) == -10.0
    st.reset()
    assert st.count(0) == 0 and st.mean(0) is None and st.max(2) is None
    st.add(1, 7.25)
    assert st.mean(1) == 7.25 and st.min(1) == 7.25 and st.max(1) == 7.25


def test_pressure_mean_of_1440_samples_within_0_1_pa():
    st = Stats(1)
    naive = array("f", [0.0])  # what a plain float32 running sum would give
    ref = 0.0  # double precision on the unix port
    for m in range(1440):
        p = 101325.0 + 250.0 * math.sin(m / 229.0) + 0.37 * (m % 7) - 0.013 * m
        ref += p
        naive[0] = naive[0] + p
        st.add(0, p)
    ref /= 1440
    err = abs(st.mean(0) - ref)
    assert err < 0.01, err  # required: 0.1 Pa
    assert abs(naive[0] / 1440 - ref) > 5 * err  # the relative, compensated sum is what makes the difference


def test_count_saturates_at_uint16():
    st = Stats(1)
    for _ in range(65535):
        st.add(0, 1.0)
    st.add(0, 1000.0)
    assert st.count(0) == 65535 and st.mean(0) == 1.0 and st.max(0) == 1.0


def test_to_bytes_roundtrip_and_resume():
    a = Stats(4)
    b = Stats(4)
    rng = Prng(7)
    for k in range(200):
        a.add(k % 4, rng.uniform(-40.0, 60.0))
        b.add(k % 4, None)
    saved = a.to_bytes()
    b.load_bytes(saved)
    assert b.to_bytes() == saved
    for i in range(4):
        assert (b.count(i), b.mean(i), b.min(i), b.max(i)) == (a.count(i), a.mean(i), a.min(i), a.max(i))
    for k in range(50):  # after a "deep sleep" both go on identically
        v = rng.uniform(-40.0, 60.0)
        a.add(k % 4, v)
        b.add(k % 4, v)
    assert a.to_bytes() == b.to_bytes()
    b.load_bytes(bytearray(saved))  # RTC memory may hand back a bytearray
    assert b.count(0) == 50


def test_corrupted_bytes_rejected_and_state_kept():
    st = Stats(2)
    st.add(0, 1.5)
    good = st.to_bytes()
    st.add(1, -4.0)
    kept = st.to_bytes()
    for k in range(len(good)):
        bad = bytearray(good)
        bad[k] ^= 0x10
        _rejects(st, bad)
    assert "bytes" in _rejects(st, good[:-1]) and "bytes" in _rejects(st, b"") and "bytes" in _rejects(st, None)
    bad = bytearray(good)
    bad[10] ^= 0x01  # one bit of a float
    assert "CRC" in _rejects(st, bad)
    rng = Prng(3)
    noise = bytearray(len(good))  # power-on garbage of the right length
    for k in range(len(noise)):
        noise[k] = rng.next_u32() & 0xFF
    _rejects(st, noise)
    _rejects(st, bytes(len(good)))
    msg = _rejects(st, DailyStats().to_bytes()[: len(good)])
    assert "magic" in msg, msg
    assert st.to_bytes() == kept  # a rejected load changes nothing


def test_wrong_quantity_count_rejected():
    b = Stats(2).to_bytes()
    msg = _rejects(Stats(3), b)
    assert "bytes" in msg, msg


def test_size_is_fixed():
    st = Stats(8)
    n0 = len(st.to_bytes())
    for k in range(1440):
        st.add(k % 8, k * 0.5)
    assert len(st.to_bytes()) == n0 == st.size == 184
    d = DailyStats()
    n0 = len(d.to_bytes())
    for k in range(300):
        d.add_sample(k * 60, 12.0, 20.0, 50.0, 101325.0, 21.0, 500.0, 0.7, 2.0, 60)
    assert len(d.to_bytes()) == n0 == d.size == 194


def test_heap_footprint():
    gc.collect()
    before = gc.mem_free()
    st = Stats(8)
    gc.collect()
    used = before - gc.mem_free()
    assert used < 512, used  # 384 bytes on the 64-bit unix port
    gc.collect()
    before = gc.mem_free()
    day = DailyStats()
    gc.collect()
    used = before - gc.mem_free()
    assert used < 1024, used  # 672 bytes on the 64-bit unix port
    assert st.nq == 8 and day.samples == 0


def _air(m):
    """Piecewise linear: 8.0 degC at 00:00, 22.0 at 14:00 (minute 840), back towards 8 at midnight."""
    return 8.0 + 14.0 * m / 840.0 if m <= 840 else 8.0 + 14.0 * (1440 - m) / 600.0


def _feed(day, m0, m1, ref):
    """Feed minutes m0..m1-1 of a synthetic day (UTC = local = solar time); ref collects double sums."""
    for m in range(m0, m1):
        h = m / 60.0
        air = _air(m)
        sw = 1000.0 * math.sin(math.pi * (m - 360) / 720.0) if 360 <= m <= 1080 else 0.0
        if 660 <= m < 690:
            sw = 100.0  # a thick cloud: below the 150 W m-2 threshold
        lit_midday = 600 <= m < 840 and sw >= 150.0
        if lit_midday:
            canopy, ndvi, ci = air - 1.5, 0.8, 3.0
        else:
            canopy, ndvi, ci = air + 2.0, (0.1 if sw == 100.0 else 0.3), 1.0
        if m % 7 == 0:
            ndvi = None
        p = None if m % 11 == 0 else 101300.0 + 0.37 * m
        rh = 95.0 - 50.0 * (air - 8.0) / 14.0
        if p is not None:
            ref["p"] += p
            ref["np"] += 1
        ref["air"] += air
        ref["canopy"] += canopy
        day.add_sample(20255 * 86400 + 60 * m, h, air, rh, p, canopy, sw, ndvi, ci, 60)


def _ref():
    return {"p": 0.0, "np": 0, "air": 0.0, "canopy": 0.0}


def test_daily_synthetic_day_and_midday_window():
    day = DailyStats()
    ref = _ref()
    _feed(day, 0, 1440, ref)
    out = day.finish(20255, 10.0, 30.0, 0)
    assert sorted(out) == sorted(DAILY_KEYS), sorted(out)
    assert out["date"] == 20255 and out["samples"] == 1440 and out["utc_offset_min"] == 0
    # midday: solar 10:00 <= h < 14:00 and >= 150 W m-2 -> minutes 600..839 minus the cloud 660..689
    _near(out["ndvi_midday"], 0.8, 1e-6)  # 0.3 outside, 0.1 under the cloud: excluded
    _near(out["chlorophyll_midday"], 3.0, 1e-6)
    _near(out["canopy_air_diff_midday"], -1.5, 1e-5)
    assert day.stats.count(4) == 210 - 30  # NDVI: 210 lit midday samples, every 7th minute None
    assert day.stats.count(5) == 210 and day.stats.count(6) == 210
    _near(out["air_t_min"], 8.0, 1e-6)
    _near(out["air_t_max"], 22.0, 1e-6)
    _near(out["air_t_mean"], ref["air"] / 1440, 1e-4)
    _near(out["canopy_t_min"], 10.0, 1e-6)  # air + 2 at 00:00
    _near(out["canopy_t_max"], 24.0, 1e-6)  # air + 2 at 14:00: h = 14.0 is outside the window
    _near(out["canopy_t_mean"], ref["canopy"] / 1440, 1e-4)
    _near(out["rh_min"], 45.0, 1e-5)
    _near(out["rh_max"], 95.0, 1e-5)
    _near(out["pressure_mean"], ref["p"] / ref["np"], 0.01)
    # GDD, base 10 / cap 30: tmin 8 -> 10, (10 + 22) / 2 - 10 = 6
    _near(out["gdd"], 6.0, 1e-5)
    # energy: 60 s x (1000 sum_{k=0..720} sin(pi k / 720) = 1000 cot(pi / 1440) = 458365.5)
    # = 27.5019 MJ, minus the cloud: 60 x sum over 660..689 of (1000 sin(...) - 100)
    cloud = sum(1000.0 * math.sin(math.pi * (m - 360) / 720.0) - 100.0 for m in range(660, 690)) * 60e-6
    _near(out["incident_mj_m2"], 27.5019 - cloud, 0.001)
    assert day.first_t == 20255 * 86400 and day.last_t == 20255 * 86400 + 1439 * 60


def test_daily_survives_deep_sleep_mid_day():
    whole = DailyStats()
    _feed(whole, 0, 1440, _ref())
    part = DailyStats()
    _feed(part, 0, 700, _ref())
    saved = part.to_bytes()
    woken = DailyStats()
    woken.add_sample(1, 12.0, 99.0, 1.0, 1.0, 99.0, 999.0, 1.0, 1.0, 60)  # overwritten by the load
    woken.load_bytes(saved)
    _feed(woken, 700, 1440, _ref())
    assert woken.to_bytes() == whole.to_bytes()
    assert woken.finish(20255, 10.0, 30.0, 60) == whole.finish(20255, 10.0, 30.0, 60)


def test_daily_corrupt_state_rejected():
    day = DailyStats()
    day.add_sample(100, 12.0, 20.0, 50.0, 101325.0, 21.0, 500.0, 0.7, 2.0, 60)
    good = day.to_bytes()
    for k in (0, 2, 3, 10, 100, len(good) - 20, len(good) - 1):
        bad = bytearray(good)
        bad[k] ^= 0x01
        _rejects(day, bad)
    _rejects(day, good[:-4])
    _rejects(day, Stats(7).to_bytes())
    assert day.to_bytes() == good


def test_daily_empty_and_night_only():
    day = DailyStats()
    assert day.finish(20000) == {"date": 20000, "samples": 0}
    assert day.first_t is None and day.last_t is None
    for m in range(0, 300, 10):  # before dawn: no light, no NDVI
        day.add_sample(m * 60, m / 60.0, -2.0 - m / 100.0, 90.0, None, None, 0.0, None, None, 600)
    out = day.finish(20000, 10.0, None, -300)
    assert sorted(out) == sorted(
        "date samples air_t_min air_t_max air_t_mean gdd incident_mj_m2 rh_min rh_max utc_offset_min".split()
    ), sorted(out)
    assert out["gdd"] == 0.0 and out["incident_mj_m2"] == 0.0 and out["samples"] == 30
    _near(out["air_t_min"], -4.9, 1e-6)
    day.reset()
    assert day.finish(20001) == {"date": 20001, "samples": 0}
