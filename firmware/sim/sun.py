"""Sun and sky for the field model: calendar, solar position, clear-sky irradiance, spectrum, clouds.

    cos_z, solar_h, dec = position(t_epoch, 52.0, 5.0)
    ghi = clear_sky_ghi(cos_z) * (1 - 0.75 * cloud_opacity(seed, t_epoch, day_clouds(seed, day)[0]))

Pure functions of UTC epoch seconds (1970 epoch; plain arithmetic, so the port's own epoch
does not matter). Sources:
- Solar position: the Astronomical Almanac's low-precision formulae for the Sun (as
  published by the USNO, "Approximate solar coordinates"; ~0.01 deg for 1950-2050):
  n = days from J2000.0, mean longitude L = 280.460 + 0.9856474 n, mean anomaly
  g = 357.528 + 0.9856003 n, ecliptic longitude lam = L + 1.915 sin g + 0.020 sin 2g,
  obliquity eps = 23.439 - 4e-7 n, declination dec = asin(sin eps sin lam), right ascension
  RA = atan2(cos eps sin lam, cos lam), equation of time E = L - RA (4 min per degree).
  Hour angle from apparent solar time; cos(zenith) = sin(lat) sin(dec) + cos(lat) cos(dec)
  cos(hour angle). No refraction.
- Clear-sky global horizontal irradiance: Haurwitz (1945), GHI = 1098 cos z exp(-0.059 / cos z)
  (the form used by pvlib.clearsky.haurwitz; Reno, Hansen & Stein, SAND2012-2389). It gives
  ~900 W m-2 at 52 N on the June solstice, close to measured clear-sky noon maxima there.
- Spectrum: ASTM G173-03 global (AM1.5G, 1000 W m-2) averaged over +-10 nm around each AS7341
  channel (CLEAR: an effective mean over the photodiode's broad 400-1000 nm response), scaled
  linearly with the global irradiance. Cloud-induced colour shifts are ignored.
- Calendar: days-since-epoch to civil date after H. Hinnant's "civil_from_days".
- Clouds: per day a class from a hash of (seed, day) and a slow "weather regime" noise: clear
  (cloud fraction cf = 0), partly cloudy (cf 0.2..0.7) or overcast (cf 0.85..1). Each 5-minute
  slot is covered when hash(slot) < cf, with opacity 0.6..1; the caller scales GHI by
  1 - 0.75 opacity, so a thick overcast passes 25 % (Kasten & Czeplak 1980: G/Gclear =
  1 - 0.75 N^3.4). Rain falls on 60 % of overcast and 15 % of partly cloudy days.
- Randomness is counter-based (hash of seed, index, channel; lowbias32 finaliser by C. Wellons),
  not a PRNG stream: a day's weather never depends on which days were asked for before.
"""

import math

try:
    from micropython import const
except ImportError:  # CPython: the bench may import the field model to compute its reference values

    def const(x):
        return x


_RAD = math.pi / 180.0
_J2000_DAY = 10957  # 2000-01-01 is day 10957 after 1970-01-01; J2000.0 is its noon
# W m-2 nm-1 per 1000 W m-2 of global irradiance, in units of 0.01, for F1..F8 (415..680 nm), CLEAR,
# NIR (910 nm); bytes keep the table small
_SPECTRUM_PER_KW = bytes((119, 139, 160, 150, 153, 145, 141, 139, 130, 69))
SLOT_S = const(300)  # passing clouds change every 5 minutes
# hash channels 0..15 are this module's; callers use 16 and up
_CH_TYPE = const(0)
_CH_CF = const(1)
_CH_RAIN = const(2)
_CH_REGIME = const(3)
_CH_SLOT = const(4)
_CH_OPAC = const(5)


def day_of_year(days):
    """Day of year (1..366) of a count of days since 1970-01-01 (proleptic Gregorian)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy_mar = doe - (365 * yoe + yoe // 4 - yoe // 100)  # 0 = March 1st
    if doy_mar >= 306:  # January or February of the next civil year
        return doy_mar - 305
    y = yoe + era * 400  # civil year of this March..December
    leap = 1 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 0
    return doy_mar + 60 + leap


def position(t_epoch, lat_deg, lon_deg):
    """(cos zenith, apparent solar time in hours 0..24, declination in radians) at t_epoch."""
    day = t_epoch // 86400
    sec = t_epoch - day * 86400
    n = (day - _J2000_DAY) + sec / 86400.0 - 0.5
    mean_lon = (280.460 + 0.9856474 * n) % 360.0
    g = ((357.528 + 0.9856003 * n) % 360.0) * _RAD
    lam = (mean_lon + 1.915 * math.sin(g) + 0.020 * math.sin(2.0 * g)) * _RAD
    eps = (23.439 - 4e-7 * n) * _RAD
    sin_lam = math.sin(lam)
    dec = math.asin(math.sin(eps) * sin_lam)
    ra = math.atan2(math.cos(eps) * sin_lam, math.cos(lam)) / _RAD
    eot_deg = (mean_lon - ra + 180.0) % 360.0 - 180.0
    solar_h = (sec / 3600.0 + (lon_deg + eot_deg) / 15.0) % 24.0
    lat = lat_deg * _RAD
    hour_angle = (solar_h - 12.0) * 15.0 * _RAD
    cos_z = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(hour_angle)
    return cos_z, solar_h, dec


def sunrise_hour(lat_deg, dec):
    """Apparent solar time of sunrise (hours), clamped to 2..10 for polar day and night."""
    x = -math.tan(lat_deg * _RAD) * math.tan(dec)
    x = 1.0 if x > 1.0 else (-1.0 if x < -1.0 else x)
    h = 12.0 - math.acos(x) / _RAD / 15.0
    return 2.0 if h < 2.0 else (10.0 if h > 10.0 else h)


def clear_sky_ghi(cos_z):
    """Haurwitz clear-sky global horizontal irradiance (W m-2); 0 with the sun down."""
    if cos_z <= 0.01:
        return 0.0
    return 1098.0 * cos_z * math.exp(-0.059 / cos_z)


def fill_spectrum(bands, ghi_w_m2):
    """Write the spectral irradiance per channel (W m-2 nm-1) for ``ghi_w_m2`` into ``bands``."""
    k = ghi_w_m2 * 1e-5
    for i in range(10):
        bands[i] = _SPECTRUM_PER_KW[i] * k


def _mix(x):
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def hash01(seed, k, ch):
    """Uniform [0, 1) from (seed, index k, channel ch): the same inputs always give the same value."""
    return _mix(_mix((seed * 0x27D4EB2D + ch * 0x9E3779B1) & 0xFFFFFFFF) ^ (k & 0xFFFFFFFF)) / 4294967296.0


def gauss(seed, k, ch):
    """Roughly normal, sd 1, bounded to +-2.45 (sum of two uniforms)."""
    return (hash01(seed, k, ch) + hash01(seed, k, ch + 64) - 1.0) * 2.449


def noise(seed, x, ch):
    """Smooth value noise: unit-variance knots at integer x, smoothstep in between."""
    k = int(math.floor(x))
    a = gauss(seed, k, ch)
    return a + (gauss(seed, k + 1, ch) - a) * smooth(x - k)


def smooth(u):
    """Smoothstep of u clamped to 0..1."""
    u = 0.0 if u < 0.0 else (1.0 if u > 1.0 else u)
    return u * u * (3.0 - 2.0 * u)


def day_clouds(seed, day):
    """(cloud fraction 0..1, rain) of day number ``day``."""
    u = hash01(seed, day, _CH_TYPE) + 0.12 * noise(seed, day / 3.0, _CH_REGIME)
    if u < 0.35:
        cf = 0.0
    elif u < 0.75:
        cf = 0.2 + 0.5 * hash01(seed, day, _CH_CF)
    else:
        cf = 0.85 + 0.15 * hash01(seed, day, _CH_CF)
    r = hash01(seed, day, _CH_RAIN)
    return cf, (r < 0.6) if cf >= 0.85 else (cf > 0.0 and r < 0.15)


def cloud_opacity(seed, t_epoch, cf):
    """Opacity (0 clear .. 1) of the cloud over the sun in the 5-minute slot holding t_epoch."""
    if cf <= 0.0:
        return 0.0
    slot = int(t_epoch // SLOT_S)
    if hash01(seed, slot, _CH_SLOT) >= cf:
        return 0.0
    return 0.6 + 0.4 * hash01(seed, slot, _CH_OPAC)
