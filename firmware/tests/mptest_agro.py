"""Agronomic maths against published values and hand-derived numbers."""

from fieldnode import agro
from sim import sun


def _near(a, b, tol):
    assert a is not None and abs(a - b) <= tol, "%r != %r +- %r" % (a, b, tol)


def test_reflectance_divides_and_calibrates():
    down = [1.0, 2.0, 3.0, 0.5, 0.0, 4.0, 1.0, 2.0, 6.0, 9.0]
    up = [10.0, 10.0, 10.0, 0.01, 10.0, 8.0, None, 10.0, 30.0, 20.0]
    cal = [1.0, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 1.0, 1.2]
    out = [0.0] * 10
    assert agro.reflectance(down, up, cal, out) is out
    _near(out[0], 0.1, 1e-12)
    _near(out[1], 0.22, 1e-12)
    assert out[3] is None  # 0.01 basic counts: too dark to divide
    assert out[4] == 0.0
    assert out[6] is None  # up sensor value missing
    _near(out[7], 0.18, 1e-12)
    _near(out[9], 0.54, 1e-12)
    agro.reflectance(down, up, None, out, min_up=0.001)
    _near(out[3], 50.0, 1e-9)


def test_ndvi_examples():
    _near(agro.ndvi(0.05, 0.45), 0.8, 1e-12)  # (0.45 - 0.05) / 0.5
    _near(agro.ndvi(0.1, 0.1), 0.0, 1e-12)
    _near(agro.ndvi(0.3, 0.1), -0.5, 1e-12)  # water/soil-like: red above NIR
    assert agro.ndvi(None, 0.4) is None and agro.ndvi(0.1, None) is None
    assert agro.ndvi(0.0, 0.0) is None and agro.ndvi(-0.01, 0.4) is None


def test_chlorophyll_index_examples():
    _near(agro.chlorophyll_index(0.45, 0.1), 3.5, 1e-12)  # 0.45 / 0.1 - 1
    _near(agro.chlorophyll_index(0.2, 0.2), 0.0, 1e-12)
    assert agro.chlorophyll_index(0.4, 0.0) is None and agro.chlorophyll_index(None, 0.1) is None


def test_canopy_temperature_emissivity_one_is_brightness():
    for tb in (-15.0, 0.0, 24.3, 41.7):
        _near(agro.canopy_temperature_c(tb, -20.0, 1.0), tb, 1e-9)


def test_canopy_temperature_recovers_known_canopy():
    """Tc = 25 degC = 298.15 K, Tsky = -20 degC = 253.15 K, e = 0.98, by hand:
    298.15^4 = 7.902040564e9 K^4, 253.15^4 = 4.106877292e9 K^4,
    Tb^4 = 0.98 x 7.902040564e9 + 0.02 x 4.106877292e9 = 7.743999753e9 + 0.082137546e9 = 7.826137298e9,
    Tb = 297.43143 K = 24.28143 degC: the sensor at emissivity 1 reads 0.72 K cold.
    """
    _near(agro.canopy_temperature_c(24.28143, -20.0, 0.98), 25.0, 0.01)
    _near(agro.canopy_temperature_c(24.28143, -20.0), 25.0, 0.01)  # 0.98 is the default
    # a cold sky correction grows with emissivity deficit: e = 0.95 reads further from Tb
    assert agro.canopy_temperature_c(24.28143, -20.0, 0.95) > 25.0
    assert agro.canopy_temperature_c(None, -20.0) is None and agro.canopy_temperature_c(20.0, None) is None


def test_canopy_temperature_inverts_the_sim_model():
    for tc, sky, e in ((30.0, -35.0, 0.97), (5.0, 2.0, 0.99), (-5.0, -40.0, 0.98)):
        k = agro.K0
        tb = (e * (tc + k) ** 4 + (1 - e) * (sky + k) ** 4) ** 0.25 - k
        _near(agro.canopy_temperature_c(tb, sky, e), tc, 1e-6)


def test_dew_point_published_values():
    _near(agro.dew_point_c(20.0, 50.0), 9.3, 0.05)  # psychrometric tables: 9.3 degC
    _near(agro.dew_point_c(30.0, 80.0), 26.2, 0.05)  # 26.2 degC
    _near(agro.dew_point_c(25.0, 100.0), 25.0, 1e-9)  # saturated air: dew point = air temperature
    _near(agro.dew_point_c(0.0, 50.0), -9.2, 0.05)  # over water, 0 degC / 50 %
    assert agro.dew_point_c(20.0, 0.0) is None and agro.dew_point_c(None, 50.0) is None


def test_gdd_modified_method():
    _near(agro.growing_degree_days(8.0, 28.0, 10.0, 30.0), 9.0, 1e-12)  # tmin raised to 10: (10+28)/2-10
    _near(agro.growing_degree_days(15.0, 35.0, 10.0, 30.0), 12.5, 1e-12)  # tmax capped: (15+30)/2-10
    _near(agro.growing_degree_days(15.0, 35.0, 10.0), 15.0, 1e-12)  # no cap: (15+35)/2-10
    _near(agro.growing_degree_days(2.0, 9.0, 10.0, 30.0), 0.0, 1e-12)  # cold day: never negative
    _near(agro.growing_degree_days(32.0, 38.0, 10.0, 30.0), 20.0, 1e-12)  # both capped
    assert agro.growing_degree_days(None, 20.0, 10.0) is None


def test_day_of_year_and_local_date():
    assert agro.day_of_year(0) == 1  # 1970-01-01
    assert agro.day_of_year(19783) == 61  # 2024-03-01, leap year
    assert agro.day_of_year(20088) == 366  # 2024-12-31
    assert agro.day_of_year(20089) == 1  # 2025-01-01
    t = 20255 * 86400 + 23 * 3600  # 2025-06-16 23:00 UTC
    assert agro.local_date_days(t, 0) == 20255
    assert agro.local_date_days(t, 120) == 20256  # 01:00 on the 17th at UTC+2
    assert agro.local_date_days(20255 * 86400 + 3600, -300) == 20254  # 20:00 on the 15th at UTC-5


def test_solar_hour_equation_of_time():
    # 2024-11-03 12:00 UTC on the Greenwich meridian: the equation of time is near its +16.4 min maximum
    _near(agro.solar_hour(1730635200, 0.0), 12.0 + 16.4 / 60.0, 0.5 / 60.0)
    # 2025-02-11 12:00 UTC: near its -14.2 min minimum; 90 E adds 6 h
    _near(agro.solar_hour(1739275200, 90.0), 18.0 - 14.2 / 60.0, 0.5 / 60.0)
    # every 3rd day of 2025 against the Astronomical Almanac formulae of the simulator, within 1 min
    worst = 0.0
    for d in range(20089, 20089 + 365, 3):
        for h in (0, 7, 12, 19):
            t = d * 86400 + h * 3600
            diff = (agro.solar_hour(t, 5.0) - sun.position(t, 52.0, 5.0)[1] + 12.0) % 24.0 - 12.0
            worst = max(worst, abs(diff))
    assert worst < 1.0 / 60.0, worst * 60.0
    h = agro.solar_hour(20255 * 86400 + 23 * 3600 + 1800, 60.0)  # wraps past midnight
    assert 0.0 <= h < 24.0 and abs(h - 3.5) < 0.1


def test_shortwave():
    _near(agro.shortwave_w_m2(31.2, 32.05), 999.96, 1e-9)
    assert agro.shortwave_w_m2(-0.01, 32.0) == 0.0
    assert agro.shortwave_w_m2(None, 32.0) is None
