"""sim.field / sim.sun: the deterministic world behind the virtual node's Truth (runs in MicroPython)."""

import math

from sim import sun
from sim.field import FieldModel
from sim.truth import GREEN, NIR, RED, Truth

EQUINOX = 1710892800  # 2024-03-20 00:00 UTC
SOLSTICE = 1718928000  # 2024-06-21 00:00 UTC (doy 173)
SOWING = 1712620800  # 2024-04-09 00:00 UTC (doy 100, the default sowing day)
DAY = 86400
ATTRS = (
    "t",
    "sun_zenith_deg",
    "incident_w_m2",
    "incident_band",
    "canopy_band",
    "reflectance",
    "lens_transmission",
    "swap_spectral",
    "ndvi",
    "chlorophyll_index",
    "canopy_c",
    "sky_c",
    "emissivity",
    "air_c",
    "rh_pct",
    "pressure_pa",
    "tilt_deg",
    "accel_g",
    "battery_v",
    "soc_pct",
    "solar_a",
    "lat",
    "lon",
    "alt_m",
    "gnss_fix",
)


def _noon(day_t, lon=5.0, lat=52.0):
    """UTC epoch seconds of apparent solar noon on the UTC day starting at day_t."""
    h = sun.position(day_t + 43200, lat, lon)[1]
    return day_t + 43200 + int((12.0 - h) * 3600)


_SCRATCH = Truth()  # one Truth reused: a fresh one per call fragments the 64K heap


def _at(model, t, tr=_SCRATCH):
    model.update(tr, t)
    return tr


def _clear_day(model, start, n=40, want_stress=None):
    for k in range(n):
        d = model.truth_day(start + k * DAY)
        if d["clear"] and (want_stress is None or want_stress(d["water_stress"])):
            return start + k * DAY
    assert False, "no matching clear day in %d days" % n


def _snapshot(tr):
    out = []
    for a in ATTRS:
        v = getattr(tr, a)
        out.append(list(v) if isinstance(v, list) else v)
    return out


def test_same_seed_same_world():
    a, b, c = FieldModel(seed=3), FieldModel(seed=3), FieldModel(seed=4)
    ta, tb, tc = Truth(), Truth(), Truth()
    differs = False
    for k in range(0, 3 * DAY, 600):
        a.update(ta, SOLSTICE + k)
        b.update(tb, SOLSTICE + k)
        c.update(tc, SOLSTICE + k)
        assert _snapshot(ta) == _snapshot(tb), k
        differs = differs or ta.air_c != tc.air_c
    assert differs, "seed 4 gave the same weather as seed 3"


def test_day_does_not_depend_on_call_order():
    fresh = FieldModel(seed=9)
    ref = fresh.truth_day(SOLSTICE + 10 * DAY)
    used = FieldModel(seed=9)
    tr = Truth()
    for k in range(0, 12 * DAY, 3600):
        used.update(tr, SOLSTICE + k)
    assert used.truth_day(SOLSTICE + 10 * DAY) == ref
    # a later instant first, then an earlier one: the same values as in time order
    x, y = FieldModel(seed=9), FieldModel(seed=9)
    t1, t2 = SOLSTICE + 5 * DAY + 40000, SOLSTICE + 2 * DAY + 50000
    x1, x2 = _at(x, t1).air_c, _at(x, t2).air_c
    assert (_at(y, t2).air_c, _at(y, t1).air_c) == (x2, x1)


def test_sun_zenith_at_equinox_noon_is_latitude():
    for lat, lon in ((52.0, 5.0), (-33.9, 18.4), (0.0, -60.0)):
        best = 180.0
        for m in range(-90, 91):
            cos_z = sun.position(_noon(EQUINOX, lon, lat) + 60 * m, lat, lon)[0]
            best = min(best, math.acos(cos_z) * 180.0 / math.pi)
        assert abs(best - abs(lat)) < 1.0, (lat, best)
    tr = _at(FieldModel(), _noon(EQUINOX) - 43200)  # local midnight: the sun 90 - 52 deg below the horizon
    assert abs(tr.sun_zenith_deg - (180.0 - 52.0)) < 1.0, tr.sun_zenith_deg
    assert tr.incident_w_m2 == 0.0 and max(tr.incident_band) == 0.0 and max(tr.canopy_band) == 0.0


def test_day_of_year():
    for t, doy in (
        (EQUINOX, 80),
        (SOLSTICE, 173),
        (SOWING, 100),
        (1705276800, 15),
        (1735603200, 366),
        (1735689600, 1),
        (951782400, 60),
    ):
        assert sun.day_of_year(t // DAY) == doy, (t, doy)


def test_clear_summer_noon_irradiance_and_spectrum():
    m = FieldModel(seed=1)
    day = _clear_day(m, SOLSTICE - 10 * DAY)
    tr = _at(m, _noon(day))
    # Haurwitz gives ~900 W m-2 at 52 N around the solstice (measured clear-sky noon maxima there: 850-950)
    assert 880.0 <= tr.incident_w_m2 <= 1100.0, tr.incident_w_m2
    assert 1.3 <= tr.incident_band[4] <= 1.7, tr.incident_band  # 555 nm
    assert tr.incident_band == tr.canopy_band
    assert tr.incident_band[NIR] < tr.incident_band[4] and tr.incident_band[0] < tr.incident_band[2]
    assert abs(tr.incident_w_m2 - sun.clear_sky_ghi(math.cos(tr.sun_zenith_deg * math.pi / 180.0))) < 1e-6
    assert 28.0 < tr.sun_zenith_deg < 33.0


def test_clouds_dim_the_sun():
    m = FieldModel(seed=1)
    tr = Truth()
    clear = overcast = 0
    for k in range(30):
        d = m.truth_day(SOLSTICE + k * DAY)
        clear += d["clear"]
        if d["cloud_fraction"] >= 0.85:
            overcast += 1
            m.update(tr, _noon(SOLSTICE + k * DAY))
            clear_ghi = sun.clear_sky_ghi(math.cos(tr.sun_zenith_deg * math.pi / 180.0))
            assert tr.incident_w_m2 < 0.6 * clear_ghi, (k, tr.incident_w_m2)
            assert -8.0 < tr.sky_c - tr.air_c < -2.0, tr.sky_c - tr.air_c
        elif d["clear"]:
            m.update(tr, _noon(SOLSTICE + k * DAY))
            assert -31.0 < tr.sky_c - tr.air_c < -19.0, tr.sky_c - tr.air_c
    assert clear >= 3 and overcast >= 3, (clear, overcast)


def test_ndvi_follows_the_season():
    m = FieldModel(seed=2, sowing_doy=100, season_days=120)
    sowing = _at(m, _noon(SOWING)).ndvi
    peak = _at(m, _noon(SOWING + 72 * DAY)).ndvi
    late = _at(m, _noon(SOWING + 115 * DAY)).ndvi
    after = _at(m, _noon(SOWING + 130 * DAY)).ndvi
    assert sowing < 0.3, sowing
    assert peak > 0.75, peak
    assert late < peak - 0.2 and late > sowing, late
    assert after < 0.3, after
    assert abs(m.truth_day(SOWING + 72 * DAY)["ndvi_midday"] - peak) < 0.01
    senescent = _at(m, _noon(SOWING + 115 * DAY)).reflectance[RED]
    assert senescent > _at(m, _noon(SOWING + 72 * DAY)).reflectance[RED] * 2  # yellowing canopy: more red


def test_ndvi_and_ci_consistent_with_reflectance():
    m = FieldModel(seed=5)
    tr = Truth()
    for k in range(0, 150 * DAY, 7 * DAY + 3917):
        m.update(tr, SOWING - 10 * DAY + k)
        r = tr.reflectance
        assert all(0.0 < x < 1.0 for x in r)
        assert abs(tr.ndvi - (r[NIR] - r[RED]) / (r[NIR] + r[RED])) < 1e-12
        assert abs(tr.chlorophyll_index - (r[NIR] / r[GREEN] - 1.0)) < 1e-12


def test_weather_is_plausible():
    m = FieldModel(seed=6)
    tr = Truth()
    p_lo, p_hi = 1e9, 0.0
    for k in range(0, 30 * DAY, 1200):
        m.update(tr, SOLSTICE + k)
        assert 5.0 <= tr.rh_pct <= 100.0, tr.rh_pct
        assert -5.0 < tr.air_c < 40.0, tr.air_c
        assert tr.sky_c < tr.air_c - 2.0
        assert tr.air_c - 4.0 < tr.canopy_c < tr.air_c + 10.0
        assert tr.emissivity == 0.98 and tr.lat == 52.0 and tr.lon == 5.0 and tr.alt_m == 10.0
        p_lo, p_hi = min(p_lo, tr.pressure_pa), max(p_hi, tr.pressure_pa)
    assert 98500.0 < p_lo < p_hi < 103500.0 and p_hi - p_lo > 300.0, (p_lo, p_hi)
    high = _at(FieldModel(seed=6, alt_m=1500.0), SOLSTICE).pressure_pa
    assert 82000.0 < high < 87500.0, high


def test_air_temperature_diurnal_cycle_on_a_clear_day():
    m = FieldModel(seed=1)
    day = _clear_day(m, SOLSTICE)
    noon = _noon(day)
    tr = Truth()
    lo, hi, t_lo, t_hi, rh_at_lo = 1e9, -1e9, 0, 0, 0.0
    for k in range(-12 * 60, 12 * 60, 10):
        m.update(tr, noon + 60 * k)
        if tr.air_c < lo:
            lo, t_lo, rh_at_lo = tr.air_c, k / 60.0 + 12.0, tr.rh_pct
        if tr.air_c > hi:
            hi, t_hi = tr.air_c, k / 60.0 + 12.0
    assert 3.0 <= t_lo <= 5.5, t_lo  # sunrise at 52 N in June: ~03:50 solar time
    assert 14.0 <= t_hi <= 16.0, t_hi
    assert 8.0 < hi - lo < 14.0, (lo, hi)
    d = m.truth_day(day)
    assert d["air_c_min"] <= d["air_c_mean"] <= d["air_c_max"] and abs(d["air_c_max"] - hi) < 0.2
    assert rh_at_lo > 70.0


def test_canopy_warms_under_water_stress():
    m = FieldModel(seed=1)
    wet = _clear_day(m, SOLSTICE - 5 * DAY, want_stress=lambda s: s <= 0.1)
    dry = _clear_day(m, SOLSTICE - 5 * DAY, want_stress=lambda s: s >= 0.8)
    t_wet = _at(m, _noon(wet))
    dt_wet = t_wet.canopy_c - t_wet.air_c
    t_dry = _at(m, _noon(dry))
    assert dt_wet < 0.0 < t_dry.canopy_c - t_dry.air_c, (dt_wet, t_dry.canopy_c - t_dry.air_c)
    night = _at(m, _noon(dry) + 12 * 3600)
    assert night.air_c - 3.0 < night.canopy_c <= night.air_c
    assert m.truth_day(dry)["canopy_minus_air_daylight_mean"] > m.truth_day(wet)["canopy_minus_air_daylight_mean"]


def test_faults_have_their_effect():
    ref, m = FieldModel(seed=7), FieldModel(seed=7)
    day = _clear_day(ref, SOLSTICE)
    t = _noon(day)
    base = _at(ref, t, Truth())
    assert base.tilt_deg == 0.0 and base.accel_g == (0.0, 0.0, 1.0) and base.gnss_fix and not base.swap_spectral
    m.set_fault("tilt_deg", 25.0)
    m.set_fault("shade_up", 0.4)
    m.set_fault("lens_dirt", 0.3)
    m.set_fault("gnss_nofix", 1)
    m.set_fault("swap_spectral", True)
    for name in ("clock_offset_s", "clock_drift_ppm", "sensor_nack", "stuck", "powercut_at_write"):
        m.set_fault(name, 5)
        assert m.faults[name] == 5
    tr = _at(m, t, Truth())
    ax, ay, az = tr.accel_g
    assert tr.tilt_deg == 25.0 and abs(math.acos(az) * 180.0 / math.pi - 25.0) < 1e-9
    assert abs(ax * ax + ay * ay + az * az - 1.0) < 1e-12
    assert tr.canopy_band == base.canopy_band
    assert all(abs(tr.incident_band[i] - 0.6 * base.canopy_band[i]) < 1e-12 for i in range(10))
    assert abs(tr.lens_transmission - 0.7) < 1e-12 and tr.reflectance == base.reflectance
    assert tr.gnss_fix is False and tr.swap_spectral is True
    # board-side knobs (clock, nack, stuck, power cut) change nothing in the world
    assert (tr.air_c, tr.canopy_c, tr.soc_pct) == (base.air_c, base.canopy_c, base.soc_pct)
    for name in ("tilt_deg", "shade_up", "lens_dirt", "gnss_nofix", "swap_spectral"):
        m.set_fault(name, 0)
    tr = _at(m, t + 60)
    assert tr.accel_g == (0.0, 0.0, 1.0) and tr.incident_band == tr.canopy_band and tr.gnss_fix


def test_solar_covered_and_forced_soc():
    m = FieldModel(seed=7)
    t = _noon(_clear_day(m, SOLSTICE))
    m.set_fault("battery_soc", 50)
    assert _at(m, t).solar_a > 0.2
    m.set_fault("solar_covered", 1)
    m.set_load_w(0.4)
    tr = Truth()
    m.update(tr, t + 60)
    soc0 = tr.soc_pct
    assert tr.solar_a < 0.0 and abs(tr.solar_a + 0.4 / 3.8) < 0.01, tr.solar_a
    m.update(tr, t + 7200)
    assert tr.soc_pct < soc0
    m.set_fault("battery_soc", 5)
    low = _at(m, t + 7260)
    assert abs(low.soc_pct - 5.0) < 0.1 and low.battery_v < 3.4, (low.soc_pct, low.battery_v)


def test_battery_charges_by_day_and_discharges_at_night():
    m = FieldModel(seed=1)
    day = _clear_day(m, SOLSTICE)
    m.set_load_w(0.3)
    m.set_fault("battery_soc", 30)
    tr = Truth()
    noon = _noon(day)
    m.update(tr, noon - 3 * 3600)
    soc_morning, v_morning = tr.soc_pct, tr.battery_v
    peak_a = 0.0
    for k in range(1, 6 * 60 + 1):
        m.update(tr, noon - 3 * 3600 + 60 * k)
        peak_a = max(peak_a, tr.solar_a)
        assert 3.0 <= tr.battery_v <= 4.2
    assert tr.soc_pct > soc_morning + 10.0 and tr.battery_v > v_morning
    assert 0.3 < peak_a < 0.5, peak_a  # 0.85 * 2 W * ~0.9 / ~3.7 V - load
    m.update(tr, noon + 10 * 3600)  # one long step: integrated in 5-min sub-steps
    soc_evening = tr.soc_pct
    for k in range(1, 4 * 60 + 1):
        m.update(tr, noon + 10 * 3600 + 60 * k)
        assert tr.solar_a < 0.0 and 3.0 <= tr.battery_v <= 4.2
    assert tr.soc_pct < soc_evening
    expect = 0.3 / 3.8 * 4.0 / 3.0 * 100.0  # % lost in 4 h at ~3.8 V
    assert abs((soc_evening - tr.soc_pct) - expect) < 0.15 * expect


def test_long_step_matches_fine_steps():
    a, b = FieldModel(seed=2), FieldModel(seed=2)
    for x in (a, b):
        x.set_fault("battery_soc", 40)
        x.set_load_w(0.2)
    ta, tb = Truth(), Truth()
    a.update(ta, SOLSTICE)
    b.update(tb, SOLSTICE)
    for k in range(1, 24 * 60 + 1):
        a.update(ta, SOLSTICE + 60 * k)
    b.update(tb, SOLSTICE + DAY)
    assert abs(ta.soc_pct - tb.soc_pct) < 1.0, (ta.soc_pct, tb.soc_pct)


def test_battery_voltage_limits():
    m = FieldModel()
    for soc, lo, hi in ((0, 3.0, 3.0), (50, 3.7, 3.9), (100, 4.15, 4.2)):
        m.set_fault("battery_soc", soc)
        tr = _at(m, _noon(EQUINOX) - 43200)
        assert lo <= tr.battery_v <= hi, (soc, tr.battery_v)


def test_bad_fault_names_and_values():
    m = FieldModel()
    try:
        m.set_fault("lightning", 1)
        assert False, "expected ValueError"
    except ValueError as e:
        assert "lightning" in str(e) and "shade_up" in str(e) and "powercut_at_write" in str(e), str(e)
    for name, value in (("shade_up", 1.5), ("lens_dirt", -0.1), ("battery_soc", 101)):
        try:
            m.set_fault(name, value)
            assert False, "expected ValueError for %s=%r" % (name, value)
        except ValueError as e:
            assert name in str(e)
