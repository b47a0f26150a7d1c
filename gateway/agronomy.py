"""Agronomy maths for the gateway, vectorised: reference ET (FAO-56), humidity, sun, GDD, stress and crop indices.

    et0 = et0_fao56_daily(12.3, 21.5, 63, 84, 2.078, 22.07, 50.8, 100, 187)   # 3.88 mm/day (FAO-56 Example 18)
    zen, az = solar_position(np.datetime64("2026-06-01T12:00"), 50.8, 4.35)   # apparent zenith, azimuth (deg)

Every function takes scalars or NumPy arrays (broadcast together) and returns the same shape; scalars
in give a NumPy float64 (a Python ``float``) out. Units are SI/FAO: degC, %, kPa, m s-1, m,
MJ m-2 per period, mm per period, degrees. A missing measurement (NaN) gives NaN; a bad argument
(an unknown method, a negative height, a latitude beyond +-90, RH below 0 ...) raises
:class:`AgronomyInputError` (a ``ValueError``) that names the argument, what was expected and the value.

Sources (equation numbers are cited in each function):
- FAO-56: Allen, Pereira, Raes & Smith (1998), Crop evapotranspiration, FAO Irrigation and Drainage
  Paper 56, chapters 3-4 (eq. 6-53) and 6 (eq. 56).
- ASCE-EWRI (2005), The ASCE standardized reference evapotranspiration equation (hourly Cd, night fcd).
- Sun: Reda & Andreas (2004), Solar position algorithm for solar radiation applications, NREL/TP-560-34302
  (SPA), with a truncated VSOP87 and Meeus (1998), Astronomical Algorithms, 2nd ed., ch. 12 and 22.
- CWSI: Idso, Jackson, Pinter, Reginato & Hatfield (1981), Agric. Meteorol. 24:45; Idso (1982),
  Agric. Meteorol. 27:59.
- Indices and GDD: as the node's firmware/fieldnode/agro.py (Rouse 1974; Gitelson 2003;
  McMaster & Wilhelm 1997).
"""

import datetime as _dt
import math

import numpy as np

from gateway.errors import GatewayError

K0 = 273.15  # 0 degC in kelvin
GSC_MJ_M2_MIN = 0.0820  # solar constant, FAO-56 eq. 21
ALBEDO = 0.23  # grass reference, FAO-56 eq. 38
LOW_SUN_RAD = 0.3  # sun height below which Rs/Rso is not used (ASCE-EWRI 2005, eq. 45 notes)
_SIGMA_DAY = 4.903e-9  # Stefan-Boltzmann, MJ K-4 m-2 day-1 (FAO-56 eq. 39)
_J2000_UNIX_S = 946728000.0  # 2000-01-01T12:00 UTC (JD 2451545.0) in Unix seconds
_STANDARDS = {"fao56": (0.34, 0.34, _SIGMA_DAY / 24), "asce": (0.24, 0.96, 2.042e-10)}  # Cd day, Cd night, sigma/h


class AgronomyInputError(GatewayError, ValueError):
    """A bad argument: ``name`` (the parameter), ``expected`` (what is allowed) and ``got`` (a bad value)."""

    def __init__(self, name, expected, got=None):
        self.name, self.expected, self.got = name, expected, got
        super().__init__("%s: expected %s, got %r" % (name, expected, got))


def _f(x):
    return np.asarray(x, dtype=np.float64)


def _out(x):
    """0-d arrays -> NumPy float64 scalars; arrays unchanged."""
    return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x


def _reject(name, x, bad, expected):
    """Raise if any element of ``x`` is flagged ``bad`` (NaN compares False, so NaN passes through)."""
    bad = np.asarray(bad)
    if bad.any():
        got = np.broadcast_to(x, bad.shape)[bad].flat[0]
        raise AgronomyInputError(name, expected, float(got) if np.ndim(got) == 0 else got)


def _check_range(name, x, lo=None, hi=None, expected=None):
    x = _f(x)
    bad = np.zeros(x.shape, bool)
    if lo is not None:
        bad |= x < lo
    if hi is not None:
        bad |= x > hi
    _reject(name, x, bad, expected or "a value in [%s, %s]" % (lo, hi))
    return x


def _rh(name, rh_pct):
    """RH in %: below 0 is an error, above 100 (sensor overshoot near saturation) reads 100."""
    rh = _check_range(name, rh_pct, 0.0, None, "relative humidity >= 0 %")
    return np.minimum(rh, 100.0)


# --- humidity -------------------------------------------------------------------------------


def saturation_vapour_pressure_kpa(t_c):
    """e°(T) = 0.6108 exp(17.27 T / (T + 237.3)), kPa, T in degC (FAO-56 eq. 11, Tetens form)."""
    t = _f(t_c)
    return _out(0.6108 * np.exp(17.27 * t / (t + 237.3)))


def vpd_kpa(t_c, rh_pct):
    """Vapour pressure deficit e°(T) - ea with ea = e°(T) RH/100 (FAO-56 eq. 11 and 54), kPa, >= 0."""
    es = _f(saturation_vapour_pressure_kpa(t_c))
    return _out(es * (1.0 - _rh("rh_pct", rh_pct) / 100.0))


def actual_vapour_pressure_daily_kpa(tmin_c, tmax_c, rh_min_pct, rh_max_pct):
    """Daily ea = (e°(Tmin) RHmax/100 + e°(Tmax) RHmin/100) / 2, kPa (FAO-56 eq. 17)."""
    lo = _f(saturation_vapour_pressure_kpa(tmin_c))
    hi = _f(saturation_vapour_pressure_kpa(tmax_c))
    return _out((lo * _rh("rh_max_pct", rh_max_pct) + hi * _rh("rh_min_pct", rh_min_pct)) / 200.0)


def dew_point_c(t_c, rh_pct):
    """Dew point (degC): FAO-56 eq. 11 inverted for ea = e°(T) RH/100, so that eq. 14 gives back ea.

    g = ln(RH/100) + 17.27 T / (T + 237.3); Td = 237.3 g / (17.27 - g). Td <= T always (RH above
    100 reads 100, the result is capped at T against rounding); NaN where RH <= 0 (no dew point).
    The node's firmware uses the Magnus constants of Alduchov & Eskridge (1996) instead
    (17.625, 243.04 degC); the two agree within 0.11 degC over 0..40 degC and RH 20..100 %.
    """
    t = _f(t_c)
    rh = _rh("rh_pct", rh_pct)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.log(rh) - math.log(100.0) + 17.27 * t / (t + 237.3)
        td = np.minimum(237.3 * g / (17.27 - g), t)
    return _out(np.where(rh > 0, td, np.nan))


# --- atmosphere, wind ---------------------------------------------------------------------------


def _pressure_kpa(elevation_m):
    """P = 101.3 ((293 - 0.0065 z) / 293)^5.26 (FAO-56 eq. 7)."""
    return 101.3 * ((293.0 - 0.0065 * _f(elevation_m)) / 293.0) ** 5.26


def _psychrometric_kpa_c(elevation_m):
    """gamma = 0.665e-3 P (FAO-56 eq. 8)."""
    return 0.665e-3 * _pressure_kpa(elevation_m)


def _slope_kpa_c(t_c):
    """Delta = 4098 e°(T) / (T + 237.3)^2 (FAO-56 eq. 13)."""
    t = _f(t_c)
    return 4098.0 * 0.6108 * np.exp(17.27 * t / (t + 237.3)) / (t + 237.3) ** 2


def wind_at_2m(u_ms, height_m):
    """Wind speed at 2 m from a reading at ``height_m``: u2 = uz 4.87 / ln(67.8 z - 5.42) (FAO-56 eq. 47).

    The log profile holds for z > 0.1 m over short grass; a smaller height raises.
    """
    z = _check_range("height_m", height_m, None, None)
    _reject("height_m", z, ~(z > 0.1) & ~np.isnan(z), "a height > 0.1 m (FAO-56 eq. 47 log profile)")
    u = _check_range("u_ms", u_ms, 0.0, None, "a wind speed >= 0 m/s")
    return _out(u * 4.87 / np.log(67.8 * z - 5.42))


# --- radiation geometry -------------------------------------------------------------------------


def _lat_rad(lat_deg):
    return np.radians(_check_range("lat_deg", lat_deg, -90.0, 90.0, "a latitude in [-90, 90] degrees"))


def _doy(doy):
    return _check_range("doy", doy, 1, 366, "a day of year in 1..366")


def _sun_daily(doy):
    """(dr, delta): inverse relative Earth-Sun distance and declination (FAO-56 eq. 23, 24)."""
    x = 2.0 * np.pi * doy / 365.0
    return 1.0 + 0.033 * np.cos(x), 0.409 * np.sin(x - 1.39)


def _sunset_angle(phi, delta):
    """omega_s = arccos(-tan(phi) tan(delta)), clipped for polar day/night (FAO-56 eq. 25)."""
    return np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))


def extraterrestrial_radiation_daily(lat_deg, doy):
    """Ra, MJ m-2 day-1 (FAO-56 eq. 21, with dr eq. 23, delta eq. 24, omega_s eq. 25)."""
    phi, j = _lat_rad(lat_deg), _doy(doy)
    dr, delta = _sun_daily(j)
    ws = _sunset_angle(phi, delta)
    geo = ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws)
    return _out(24 * 60 / np.pi * GSC_MJ_M2_MIN * dr * geo)


def clear_sky_radiation(lat_deg, elevation_m, doy):
    """Clear-sky solar radiation Rso = (0.75 + 2e-5 z) Ra, MJ m-2 day-1 (FAO-56 eq. 37 with Ra eq. 21)."""
    return _out((0.75 + 2e-5 * _f(elevation_m)) * _f(extraterrestrial_radiation_daily(lat_deg, doy)))


def _day_terms_direct(j):
    x = 2.0 * np.pi * j / 365.0
    delta = 0.409 * np.sin(x - 1.39)  # eq. 24
    b = 2.0 * np.pi * (j - 81.0) / 364.0  # eq. 33
    sc = 0.1645 * np.sin(2 * b) - 0.1255 * np.cos(b) - 0.025 * np.sin(b)  # eq. 32, hours
    return 1.0 + 0.033 * np.cos(x), np.sin(delta), np.cos(delta), sc  # dr eq. 23


_DAY_TABLE = np.array(_day_terms_direct(np.arange(367.0))).T.copy()  # row = doy: dr, sin delta, cos delta, Sc


def _day_terms(doy):
    """(dr, sin delta, cos delta, Sc) of day numbers; a long array of whole days is looked up in a table."""
    j = np.asarray(doy, dtype=np.float64)
    if j.size > 366:
        with np.errstate(invalid="ignore"):
            ji = j.astype(np.intp)
        if np.array_equal(ji, j):  # whole days (NaN never equals)
            return tuple(_DAY_TABLE.take(ji, axis=0).T)
    return _day_terms_direct(j)


def _hour_geometry(phi, lon_deg, doy, hour_mid_utc):
    """(dr, sin delta, cos delta, omega, omega_s) of a period's midpoint, clock time UTC (FAO-56 eq. 23-25, 31-33)."""
    dr, sin_d, cos_d, sc = _day_terms(doy)
    # eq. 31 with Lz = 0 (UTC) and Lm = -lon (FAO counts degrees west): t + lon/15 + Sc - 12 hours
    w = np.pi / 12.0 * (_f(hour_mid_utc) + _f(lon_deg) / 15.0 + sc - 12.0)
    w = w - 2 * np.pi * np.floor((w + np.pi) / (2 * np.pi))  # to [-pi, pi)
    ws = np.arccos(np.clip(-np.tan(phi) * sin_d / cos_d, -1.0, 1.0))  # eq. 25
    return dr, sin_d, cos_d, w, ws


def extraterrestrial_radiation_hourly(lat_deg, lon_deg, doy, hour_mid_utc, period_h=1.0):
    """Ra of a period of ``period_h`` hours centred on ``hour_mid_utc`` (UTC), MJ m-2 per period.

    FAO-56 eq. 28 with omega from eq. 31 (Sc eq. 32-33), omega1/omega2 eq. 29-30; ends beyond
    sunset/sunrise are moved to +-omega_s (FAO-56 p. 48), so a period with the sun down gives 0.
    """
    phi = _lat_rad(lat_deg)
    t1 = _check_range("period_h", period_h, 0.0, 24.0, "a period of (0, 24] hours")
    return _out(_ra_hourly(phi, *_hour_geometry(phi, lon_deg, _doy(doy), hour_mid_utc), t1))


def _ra_hourly(phi, dr, sin_d, cos_d, w, ws, t1=1.0):
    half = np.pi * t1 / 24.0
    w1 = np.minimum(np.maximum(w - half, -ws), ws)
    w2 = np.minimum(np.maximum(w + half, -ws), ws)
    polar_day = ws >= np.pi - 1e-12  # the sun never sets: no clipping (the integrand is periodic)
    if np.any(polar_day):
        w1 = np.where(polar_day, w - half, w1)
        w2 = np.where(polar_day, w + half, w2)
    geo = (w2 - w1) * (np.sin(phi) * sin_d) + (np.cos(phi) * cos_d) * (np.sin(w2) - np.sin(w1))
    return np.maximum(12 * 60 / np.pi * GSC_MJ_M2_MIN * dr * geo, 0.0)


def clear_sky_ghi_w_m2(zenith_deg, doy, elevation_m=0.0):
    """Instantaneous clear-sky global horizontal irradiance, W m-2: (0.75 + 2e-5 z) Gsc dr cos(zenith).

    FAO-56 eq. 37 applied at an instant (as ASCE-EWRI 2005 eq. 47 applies it per hour), with
    Gsc = 0.0820 MJ m-2 min-1 = 1367 W m-2 and dr eq. 23; 0 with the sun below the horizon.
    Meant for plausibility checks of the node's shortwave reading, not for solar engineering.
    """
    dr, _ = _sun_daily(_doy(doy))
    cosz = np.maximum(np.cos(np.radians(_f(zenith_deg))), 0.0)
    return _out((0.75 + 2e-5 * _f(elevation_m)) * GSC_MJ_M2_MIN * 1e6 / 60 * dr * cosz)


# --- reference evapotranspiration -----------------------------------------------------------------


def _daily_terms(tmin_c, tmax_c, rh_min_pct, rh_max_pct, u2_ms, rs_mj_m2, lat_deg, elevation_m, doy):
    tmin, tmax = _f(tmin_c), _f(tmax_c)
    _reject("tmin_c", tmin, tmin > tmax, "tmin_c <= tmax_c")
    u2 = _check_range("u2_ms", u2_ms, 0.0, None, "a wind speed >= 0 m/s")
    rs = np.maximum(_f(rs_mj_m2), 0.0)  # a pyranometer's small negative night offset reads 0
    z = _f(elevation_m)
    tmean = (tmin + tmax) / 2.0  # eq. 9
    es = (_f(saturation_vapour_pressure_kpa(tmin)) + _f(saturation_vapour_pressure_kpa(tmax))) / 2.0  # eq. 12
    ea = _f(actual_vapour_pressure_daily_kpa(tmin, tmax, rh_min_pct, rh_max_pct))  # eq. 17
    ra = _f(extraterrestrial_radiation_daily(lat_deg, doy))  # eq. 21
    rso = (0.75 + 2e-5 * z) * ra  # eq. 37
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.clip(np.where(rso > 0, rs / rso, 1.0), 0.3, 1.0)  # eq. 39: Rs/Rso <= 1 (>= 0.3: overcast)
    rnl = (
        _SIGMA_DAY
        * ((tmax + 273.16) ** 4 + (tmin + 273.16) ** 4)
        / 2.0
        * (0.34 - 0.14 * np.sqrt(ea))
        * (1.35 * ratio - 0.35)
    )  # eq. 39
    rn = (1.0 - ALBEDO) * rs - rnl  # eq. 38, 40
    return {
        "tmean": tmean,
        "es": es,
        "ea": ea,
        "delta": _slope_kpa_c(tmean),  # eq. 13 at Tmean
        "gamma": _psychrometric_kpa_c(z),  # eq. 7, 8
        "ra": ra,
        "rso": rso,
        "rnl": rnl,
        "rn": rn,
        "u2": u2,
    }


def et0_fao56_daily(tmin_c, tmax_c, rh_min_pct, rh_max_pct, u2_ms, rs_mj_m2, lat_deg, elevation_m, doy):
    """Grass reference ET0, mm/day: FAO-56 Penman-Monteith (eq. 6) with measured solar radiation, G = 0.

    ``tmin_c``/``tmax_c`` daily extremes (degC); ``rh_min_pct``/``rh_max_pct`` daily extremes (%);
    ``u2_ms`` mean wind at 2 m (m/s; see :func:`wind_at_2m`); ``rs_mj_m2`` measured global solar
    radiation (MJ m-2 day-1, = W m-2 x 0.0864); ``lat_deg`` (north +); ``elevation_m``; ``doy`` 1..366.
    es from Tmin/Tmax (eq. 11-12), ea from RHmax/RHmin (eq. 17), Delta at Tmean (eq. 9, 13), P and
    gamma from elevation (eq. 7-8), Ra (eq. 21-25), Rso (eq. 37), Rn = 0.77 Rs - Rnl (eq. 38-40, with
    Rs/Rso limited to 0.3..1). G = 0 for a day (eq. 42). The result is not clipped: a negative value
    is net condensation (dew) on the reference surface.
    """
    d = _daily_terms(tmin_c, tmax_c, rh_min_pct, rh_max_pct, u2_ms, rs_mj_m2, lat_deg, elevation_m, doy)
    num = 0.408 * d["delta"] * d["rn"] + d["gamma"] * 900.0 / (d["tmean"] + 273.0) * d["u2"] * (d["es"] - d["ea"])
    return _out(num / (d["delta"] + d["gamma"] * (1.0 + 0.34 * d["u2"])))


def _epoch_seconds(when, name="when_utc"):
    """Unix seconds (float64 array; NaN for NaT) of an aware datetime, datetime64 (UTC), or an array of them."""

    def one(x):
        if isinstance(x, _dt.datetime):
            if x.tzinfo is None or x.utcoffset() is None:
                raise AgronomyInputError(name, "a timezone-aware datetime (or numpy datetime64 in UTC)", x)
            return x.timestamp()
        if isinstance(x, np.datetime64):
            return np.nan if np.isnat(x) else (x - np.datetime64(0, "s")) / np.timedelta64(1, "s")
        raise AgronomyInputError(name, "a timezone-aware datetime or numpy datetime64 (UTC)", x)

    if isinstance(when, _dt.datetime):
        return np.float64(one(when))
    a = np.asarray(when)
    if a.dtype.kind == "M":
        ns = a.astype("datetime64[ns]")
        s = (ns - np.datetime64(0, "ns")).astype(np.int64) / 1e9
        return np.where(np.isnat(ns), np.nan, s)
    if a.dtype == object:
        return np.array([one(x) for x in a.ravel()], dtype=np.float64).reshape(a.shape)
    raise AgronomyInputError(name, "a timezone-aware datetime or numpy datetime64 (UTC), or an array of them", a.dtype)


def _doy_hour(seconds):
    """(day of year 1..366, UTC hour) of Unix seconds; NaN stays NaN."""
    ok = np.isfinite(seconds)
    days = np.floor(np.where(ok, seconds, 0.0) / 86400.0)
    lo, hi = (days.min(), days.max()) if days.size else (0.0, 0.0)
    if hi - lo < 800:  # a few years: day of year from a table of the days spanned
        span = np.arange(lo, hi + 1).astype("int64").astype("datetime64[D]")
        table = (span - span.astype("datetime64[Y]")).astype(np.int64) + 1.0
        doy = table[(days - lo).astype(np.intp)]
    else:
        d64 = days.astype("int64").astype("datetime64[D]")
        doy = (d64 - d64.astype("datetime64[Y]")).astype(np.int64) + 1.0
    hour = (seconds - days * 86400.0) / 3600.0
    return np.where(ok, doy, np.nan), np.where(ok, hour, np.nan)


def _carry_forward(day_ratio, fallback):
    """Along the last axis, each NaN takes the last finite value before it; ``fallback`` before any."""
    n = day_ratio.shape[-1]
    idx = np.where(np.isfinite(day_ratio), np.arange(n), -1)
    idx = np.maximum.accumulate(idx, axis=-1)
    carried = np.take_along_axis(day_ratio, np.maximum(idx, 0), axis=-1)
    return np.where(idx >= 0, carried, fallback)


def et0_fao56_hourly(
    t_c,
    rh_pct,
    u2_ms,
    rs_mj_m2,
    lat_deg,
    lon_deg,
    elevation_m,
    when_utc=None,
    *,
    doy=None,
    hour_mid_utc=None,
    rs_rso_night=0.8,
    carry_daytime_ratio=False,
    standard="fao56",
):
    """Grass reference ET0 of one hour, mm/hour: FAO-56 Penman-Monteith for hourly steps (eq. 53).

    Inputs per hour: ``t_c`` mean air temperature (degC), ``rh_pct`` mean RH (%), ``u2_ms`` mean wind
    at 2 m (m/s), ``rs_mj_m2`` global solar radiation of the hour (MJ m-2 h-1 = W m-2 x 0.0036);
    the site: ``lat_deg`` (north +), ``lon_deg`` (east +), ``elevation_m``. The hour: ``when_utc``,
    its *midpoint* (an aware datetime or datetime64 in UTC, or an array of them, e.g. 14:30 for the
    14-15 h period), or else ``doy`` (1..366) and ``hour_mid_utc`` (0..24).

    es = e°(T) (eq. 11), ea = e°(T) RH/100 (eq. 54), Delta (eq. 13), P, gamma (eq. 7-8), Ra of the hour
    (eq. 28-33, clock time in UTC so Lz = 0), Rso = (0.75 + 2e-5 z) Ra (eq. 37), Rn = 0.77 Rs - Rnl
    (eq. 38-40 with sigma per hour), G = 0.1 Rn in daylight and 0.5 Rn at night (eq. 45-46; "night" =
    Rn < 0, the ASCE-EWRI 2005 rule, which also decides Cd below).

    Night-time Rs/Rso (eq. 39 needs a cloudiness with no sun): where the sun at the hour's midpoint is
    lower than 0.3 rad (17.2 deg; ASCE-EWRI 2005, below it Rs/Rso is unreliable) the ratio is
    ``rs_rso_night`` (FAO-56 p. 75: about 0.4-0.6 in humid and 0.7-0.8 in arid climates; 0.3 =
    total overcast; Example 19 uses 0.8; a scalar or an array broadcast with the inputs). With
    ``carry_daytime_ratio=True`` the inputs must be time-ordered along their last axis: a low-sun
    hour then takes Rs/Rso of the last hour before it with the sun above 0.3 rad, i.e. from about
    1-3 h before sunset (FAO-56 p. 75), and ``rs_rso_night`` only before the first such hour.
    Measured Rs/Rso is limited to 0.3..1 (eq. 39; ASCE-EWRI 2005 eq. 45).

    ``standard``: "fao56" (Cd = 0.34 day and night, sigma = 4.903e-9/24) or "asce" (ASCE-EWRI 2005
    short reference: Cd = 0.24 when Rn >= 0 and 0.96 when Rn < 0, sigma = 2.042e-10). The result is
    not clipped: a negative hour is dew.
    """
    if standard not in _STANDARDS:
        raise AgronomyInputError("standard", "one of %s" % ", ".join(sorted(_STANDARDS)), standard)
    cd_day, cd_night, sigma = _STANDARDS[standard]
    if (when_utc is None) == (doy is None or hour_mid_utc is None):
        raise AgronomyInputError("when_utc", "either when_utc or both doy= and hour_mid_utc=", when_utc)
    if when_utc is not None:
        doy, hour_mid_utc = _doy_hour(_epoch_seconds(when_utc))
    else:
        hour_mid_utc = _check_range("hour_mid_utc", hour_mid_utc, 0.0, 24.0, "an hour in [0, 24]")
    t = _f(t_c)
    rh = _rh("rh_pct", rh_pct)
    u2 = _check_range("u2_ms", u2_ms, 0.0, None, "a wind speed >= 0 m/s")
    rs = np.maximum(_f(rs_mj_m2), 0.0)
    z = _f(elevation_m)
    night_ratio = _check_range("rs_rso_night", rs_rso_night, 0.3, 1.0, "an Rs/Rso ratio in [0.3, 1]")
    phi = _lat_rad(lat_deg)
    dr, sin_d, cos_d, w, ws = _hour_geometry(phi, lon_deg, _doy(doy), hour_mid_utc)
    rso = (0.75 + 2e-5 * z) * _ra_hourly(phi, dr, sin_d, cos_d, w, ws)  # eq. 28, 37
    sin_beta = np.sin(phi) * sin_d + np.cos(phi) * cos_d * np.cos(w)  # sun height at the midpoint
    with np.errstate(divide="ignore", invalid="ignore"):
        measured = np.clip(rs / rso, 0.3, 1.0)
    sun_up = sin_beta >= math.sin(LOW_SUN_RAD)
    if carry_daytime_ratio:
        shape = np.broadcast_shapes(t.shape, rh.shape, u2.shape, rs.shape, z.shape, sin_beta.shape, night_ratio.shape)
        if not shape:
            raise AgronomyInputError("carry_daytime_ratio", "time-ordered arrays (last axis = hours)", "scalars")
        measured = np.broadcast_to(np.where(sun_up, measured, np.nan), shape)
        ratio = _carry_forward(measured, np.broadcast_to(night_ratio, shape))
    else:
        ratio = np.where(sun_up, measured, night_ratio)
    ratio = np.where(np.isnan(sin_beta), np.nan, ratio)  # no time (NaT), no sun height: NaN
    es = _f(saturation_vapour_pressure_kpa(t))
    ea = es * rh / 100.0
    tk2 = (t + 273.16) * (t + 273.16)
    rnl = sigma * tk2 * tk2 * (0.34 - 0.14 * np.sqrt(ea)) * (1.35 * ratio - 0.35)  # eq. 39 per hour
    rn = (1.0 - ALBEDO) * rs - rnl
    night = rn < 0
    g = np.where(night, 0.5, 0.1) * rn  # eq. 45, 46
    cd = np.where(night, cd_night, cd_day)
    delta_s, gamma = 4098.0 * es / ((t + 237.3) * (t + 237.3)), _psychrometric_kpa_c(z)  # eq. 13, 7-8
    num = 0.408 * delta_s * (rn - g) + gamma * 37.0 / (t + 273.0) * u2 * (es - ea)
    return _out(num / (delta_s + gamma * (1.0 + cd * u2)))


# --- crop: degree days, canopy, stress, indices, Kc ---------------------------------------------------


def growing_degree_days(tmin_c, tmax_c, base_c, cap_c=None, method="average"):
    """Degree days (K d) of one day.

    ``method="average"`` (McMaster & Wilhelm 1997, method 1): Tmean = (Tmin + Tmax)/2, capped at
    ``cap_c`` if given, GDD = max(Tmean - base, 0).
    ``method="modified"`` (McMaster & Wilhelm 1997, method 2, with the upper cutoff of the 86/50 degF
    corn method): Tmin and Tmax are each clamped to [base, cap], GDD = (Tmin' + Tmax')/2 - base, never
    negative -- the same as the node's firmware/fieldnode/agro.py growing_degree_days.
    """
    if method not in ("average", "modified"):
        raise AgronomyInputError("method", '"average" or "modified"', method)
    tmin, tmax, base = _f(tmin_c), _f(tmax_c), _f(base_c)
    cap = None if cap_c is None else _f(cap_c)
    if cap is not None:
        _reject("cap_c", cap, ~(cap > base) & ~np.isnan(cap) & ~np.isnan(base), "cap_c above base_c")
    if method == "average":
        mean = (tmin + tmax) / 2.0
        if cap is not None:
            mean = np.minimum(mean, cap)
        return _out(np.maximum(mean - base, 0.0))
    lo = np.maximum(tmin, base)
    hi = np.maximum(tmax, base)
    if cap is not None:
        lo, hi = np.minimum(lo, cap), np.minimum(hi, cap)
    return _out((lo + hi) / 2.0 - base)


def canopy_temperature_c(brightness_c, sky_c, emissivity=0.98):
    """Canopy temperature from an IR brightness temperature (read at emissivity 1) and the sky's, degC.

    Tc = ((Tb^4 - (1 - e) Tsky^4) / e)^(1/4) in kelvin: grey-body emission plus reflected sky
    (Stefan-Boltzmann; Jones, Plants and Microclimate, 3rd ed. 2014, ch. 9), as the node's
    firmware/fieldnode/agro.py. NaN where the reading is impossible (Tb^4 <= (1 - e) Tsky^4).
    """
    e = _f(emissivity)
    _reject("emissivity", e, ~((e > 0) & (e <= 1)), "an emissivity in (0, 1]")
    tb, ts = _f(brightness_c) + K0, _f(sky_c) + K0
    x = (tb**4 - (1.0 - e) * ts**4) / e
    with np.errstate(invalid="ignore"):
        return _out(np.where(x > 0, np.sqrt(np.sqrt(np.where(x > 0, x, 1.0))) - K0, np.nan))


def cwsi_empirical(canopy_c, air_c, vpd_kpa, lower_a, lower_b, upper):
    """Crop water stress index, empirical (Idso et al. 1981; Idso 1982), 0 (no stress) .. 1.

    dT = Tc - Ta; non-water-stressed baseline dT_ll = lower_a + lower_b VPD (degC, kPa; e.g. Idso 1982:
    alfalfa 0.51 - 1.92 VPD); non-transpiring upper limit dT_ul = ``upper`` (degC, a constant here);
    CWSI = (dT - dT_ll) / (dT_ul - dT_ll), clipped to 0..1. NaN where an input is NaN or dT_ul <= dT_ll.
    """
    dt = _f(canopy_c) - _f(air_c)
    ll = _f(lower_a) + _f(lower_b) * _f(vpd_kpa)
    span = _f(upper) - ll
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(span > 0, (dt - ll) / span, np.nan)
    return _out(np.clip(c, 0.0, 1.0))


def ndvi(red_reflectance, nir_reflectance):
    """NDVI = (NIR - red) / (NIR + red) (Rouse et al. 1974); NaN if either is negative or the sum <= 0."""
    red, nir = _f(red_reflectance), _f(nir_reflectance)
    s = nir + red
    ok = (red >= 0) & (nir >= 0) & (s > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(ok, (nir - red) / np.where(ok, s, 1.0), np.nan))


def chlorophyll_index(nir_reflectance, green_reflectance):
    """CIgreen = NIR / green - 1 (Gitelson, Gritz & Merzlyak 2003); NaN where green <= 0."""
    nir, green = _f(nir_reflectance), _f(green_reflectance)
    ok = green > 0
    with np.errstate(over="ignore"):
        return _out(np.where(ok, nir / np.where(ok, green, 1.0) - 1.0, np.nan))


def kc_from_ndvi(ndvi, kc_min=0.15, kc_max=1.20, ndvi_min=0.15, ndvi_max=0.90):
    """Crop coefficient from NDVI, linear between bare soil and full cover (reflectance-based Kc).

    Kc = kc_min + (kc_max - kc_min) clip((NDVI - ndvi_min) / (ndvi_max - ndvi_min), 0, 1): the linear
    scaling of Bausch & Neale (1987, Trans. ASAE 30:703) and Campos et al. (2010, Agric. Water Manage.
    98:45). Defaults: kc_min 0.15 = FAO-56 Kc of bare soil (Table 17 Kcb,min), kc_max 1.20 = FAO-56
    Kc mid of maize and most field crops (Table 12), NDVI 0.15 bare soil, 0.90 full cover. Other
    published lines are special cases, e.g. Kamble et al. (2013) Kc = 1.457 NDVI - 0.1725 over
    NDVI 0.2..0.9. Empirical: calibrate per crop where possible.
    """
    if not ndvi_max > ndvi_min:
        raise AgronomyInputError("ndvi_max", "ndvi_max > ndvi_min (%r)" % ndvi_min, ndvi_max)
    if not 0 <= kc_min <= kc_max:
        raise AgronomyInputError("kc_max", "0 <= kc_min (%r) <= kc_max" % kc_min, kc_max)
    frac = np.clip((_f(ndvi) - ndvi_min) / (ndvi_max - ndvi_min), 0.0, 1.0)
    return _out(kc_min + (kc_max - kc_min) * frac)


def etc_mm(kc, et0_mm):
    """Crop evapotranspiration ETc = Kc x ET0 (FAO-56 eq. 56), mm per the period of ``et0_mm``."""
    k = _check_range("kc", kc, 0.0, None, "a crop coefficient >= 0")
    return _out(k * _f(et0_mm))


# --- sun position -----------------------------------------------------------------------------------

# Earth's heliocentric longitude L, latitude B (1e-8 rad) and radius R (1e-8 AU): VSOP87 (Bretagnon &
# Francou 1988) as tabulated by Reda & Andreas (2004) Table A4.2, terms A cos(B + C tau); kept here:
# L0 terms with A >= 100, L1 >= 50 and the largest of the others (the rest sum below 0.001 deg).
# fmt: off
_L = (
    (
        (175347046, 0, 0), (3341656, 4.6692568, 6283.07585), (34894, 4.6261, 12566.1517),
        (3497, 2.7441, 5753.3849), (3418, 2.8289, 3.5231), (3136, 3.6277, 77713.7715),
        (2676, 4.4181, 7860.4194), (2343, 6.1352, 3930.2097), (1324, 0.7425, 11506.7698),
        (1273, 2.0371, 529.691), (1199, 1.1096, 1577.3435), (990, 5.233, 5884.927), (902, 2.045, 26.298),
        (857, 3.508, 398.149), (780, 1.179, 5223.694), (753, 2.533, 5507.553), (505, 4.583, 18849.228),
        (492, 4.205, 775.523), (357, 2.92, 0.067), (317, 5.849, 11790.629), (284, 1.899, 796.298),
        (271, 0.315, 10977.079), (243, 0.345, 5486.778), (206, 4.806, 2544.314), (205, 1.869, 5573.143),
        (202, 2.458, 6069.777), (156, 0.833, 213.299), (132, 3.411, 2942.463), (126, 1.083, 20.775),
        (115, 0.645, 0.98), (103, 0.636, 4694.003), (102, 0.976, 15720.839), (102, 4.267, 7.114),
    ),
    (
        (628331966747, 0, 0), (206059, 2.678235, 6283.07585), (4303, 2.6351, 12566.1517), (425, 1.59, 3.523),
        (119, 5.796, 26.298), (109, 2.966, 1577.344), (93, 2.59, 18849.23), (72, 1.14, 529.69),
        (68, 1.87, 398.15), (67, 4.41, 5507.55), (59, 2.89, 5223.69), (56, 2.17, 155.42),
    ),
    ((52919, 0, 0), (8720, 1.0721, 6283.0758), (309, 0.867, 12566.152)),
    ((289, 5.844, 6283.076), (35, 0, 0)),
    ((114, 3.142, 0),),
)
_B = (((280, 3.199, 84334.662), (102, 5.422, 5507.553), (80, 3.88, 5223.69)),)
_R = (
    ((100013989, 0, 0), (1670700, 3.0984635, 6283.07585), (13956, 3.05525, 12566.1517), (3084, 5.1985, 77713.7715)),
    ((103019, 1.10749, 6283.07585), (1721, 1.0644, 12566.1517)),
    ((4359, 5.7846, 6283.0758),),
)
# fmt: on
_L, _B, _R = (tuple(np.array(rows, dtype=np.float64).T[:, :, None] for rows in t) for t in (_L, _B, _R))  # A, B, C
# Delta T = TT - UT (s) at 1900, 1910, ... 2050: IERS / USNO values to 2020, then +1 s per decade (a projection).
_DELTA_T_YEARS = np.arange(1900.0, 2051.0, 10.0)
_DELTA_T_S = np.array([-2.7, 10.4, 21.2, 24.0, 24.3, 29.1, 33.2, 40.2, 50.5, 56.9, 63.8, 66.1, 69.4, 70.0, 71.0, 72.0])


def _vsop(series, tau):
    """Sum of A cos(B + C tau) tau^i over the series' rows i, 1e-8 units -> radians (or AU)."""
    total = 0.0
    for i, (a, b, c) in enumerate(series):
        total = total + (a * np.cos(b + c * tau.reshape(1, -1))).sum(axis=0) * tau.reshape(-1) ** i
    return total.reshape(tau.shape) / 1e8


def solar_position(when_utc, lat_deg, lon_deg, *, elevation_m=0.0, pressure_hpa=1010.0, temp_c=10.0):
    """(zenith_deg, azimuth_deg) of the sun's centre as seen from the site: apparent, topocentric.

    ``when_utc``: an aware datetime, numpy datetime64 (UTC), or an array/list of them. Zenith 0..180,
    refraction-corrected for ``pressure_hpa``/``temp_c``; azimuth 0..360 eastward from north.
    The method of NREL's SPA (Reda & Andreas 2004), shortened: Earth's heliocentric position from a
    truncated VSOP87 (their eq. 9-12, Table A4.2, terms above 1e-6 rad), geocentric longitude and
    latitude (eq. 13-14); nutation from the four largest terms (Meeus 1998 ch. 22) and aberration
    (eq. 23-24); true obliquity (Meeus eq. 22.2, SPA eq. 24-25); apparent sidereal time (Meeus eq. 12.4
    plus the equation of the equinoxes, SPA eq. 15); right ascension, declination, hour angle
    (eq. 19-22); topocentric parallax for the site's elevation (eq. 26-33); refraction (Bennett form,
    eq. 41-42) while the sun is above -0.83 deg; azimuth (eq. 44-46). Delta T (TT - UT) is
    interpolated from a decade table. Against the full SPA (same Delta T), 50,000 random cases over
    1950-2050: zenith within 0.0005 deg, azimuth within 0.0005 deg / sin(zenith).
    """
    s = _epoch_seconds(when_utc)
    phi = _lat_rad(lat_deg)
    lon = _f(lon_deg)
    d_ut = (s - _J2000_UNIX_S) / 86400.0  # days from J2000.0, UT
    year = 2000.0 + d_ut / 365.25
    d_tt = d_ut + np.interp(np.nan_to_num(year, nan=2000.0), _DELTA_T_YEARS, _DELTA_T_S) / 86400.0
    tau = np.asarray(d_tt / 365250.0)  # Julian ephemeris millennia
    jc = tau * 10.0  # Julian ephemeris centuries
    lam = _vsop(_L, tau) + np.pi  # geocentric longitude (rad)
    beta = -_vsop(_B, tau)
    r_au = _vsop(_R, tau)
    # nutation (Meeus ch. 22, low accuracy: 0.5" in longitude, 0.1" in obliquity)
    om = np.radians(125.04452 - 1934.136261 * jc)
    ls = np.radians(280.4665 + 36000.7698 * jc)
    lm = np.radians(218.3165 + 481267.8813 * jc)
    dpsi = (-17.20 * np.sin(om) - 1.32 * np.sin(2 * ls) - 0.23 * np.sin(2 * lm) + 0.21 * np.sin(2 * om)) / 3600.0
    deps = (9.20 * np.cos(om) + 0.57 * np.cos(2 * ls) + 0.10 * np.cos(2 * lm) - 0.09 * np.cos(2 * om)) / 3600.0
    eps0 = 23.0 + 26.0 / 60.0 + (21.448 - jc * (46.8150 + jc * (0.00059 - jc * 0.001813))) / 3600.0
    eps = np.radians(eps0 + deps)
    lam = lam + np.radians(dpsi - 20.4898 / (3600.0 * r_au))  # apparent longitude
    alpha = np.arctan2(np.sin(lam) * np.cos(eps) - np.tan(beta) * np.sin(eps), np.cos(lam))
    dec = np.arcsin(np.sin(beta) * np.cos(eps) + np.cos(beta) * np.sin(eps) * np.sin(lam))
    jc_ut = d_ut / 36525.0
    gmst = 280.46061837 + 360.98564736629 * d_ut + jc_ut * jc_ut * (0.000387933 - jc_ut / 38710000.0)
    h = np.radians(np.mod(gmst + dpsi * np.cos(eps) + lon, 360.0)) - alpha
    # topocentric parallax (SPA eq. 26-33)
    xi = np.radians(8.794 / (3600.0 * r_au))
    u = np.arctan(0.99664719 * np.tan(phi))
    el = _f(elevation_m) / 6378140.0
    x = np.cos(u) + el * np.cos(phi)
    y = 0.99664719 * np.sin(u) + el * np.sin(phi)
    den = np.cos(dec) - x * np.sin(xi) * np.cos(h)
    d_alpha = np.arctan2(-x * np.sin(xi) * np.sin(h), den)
    dec_t = np.arctan2((np.sin(dec) - y * np.sin(xi)) * np.cos(d_alpha), den)
    h_t = h - d_alpha
    e0 = np.degrees(np.arcsin(np.sin(phi) * np.sin(dec_t) + np.cos(phi) * np.cos(dec_t) * np.cos(h_t)))
    # refraction (SPA eq. 41-42)
    p, tk = _f(pressure_hpa), _f(temp_c)
    with np.errstate(invalid="ignore", divide="ignore"):
        refr = (p / 1010.0) * (283.0 / (273.0 + tk)) * 1.02 / (60.0 * np.tan(np.radians(e0 + 10.3 / (e0 + 5.11))))
    e_app = e0 + np.where(e0 >= -(0.26667 + 0.5667), refr, 0.0)
    zen = 90.0 - e_app
    az = np.degrees(np.arctan2(np.sin(h_t), np.cos(h_t) * np.sin(phi) - np.tan(dec_t) * np.cos(phi)))
    return _out(zen), _out(np.mod(az + 180.0, 360.0))
