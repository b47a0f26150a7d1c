"""The node's agronomic maths: reflectance, vegetation indices, canopy temperature, dew point, GDD, solar time.

    refl = [None] * 10; reflectance(down_basic, up_basic, cal, refl)
    v = ndvi(refl[RED], refl[NIR]); tc = canopy_temperature_c(tb_c, sky_c)

Pure functions, SI units (degC, %, W m-2, epoch seconds); an input of None gives None. Channel
indices follow the AS7341: F1..F8 = 0..7, CLEAR = 8, NIR = 9; RED = F8 (680 nm), GREEN = F5
(555 nm). Epoch seconds are split with integer arithmetic first, so float32 ports (ESP32-S3,
where a float near 1.7e9 s is only good to 128 s) lose no time resolution; pass an int.

Sources:
- NDVI = (NIR - red) / (NIR + red): Rouse et al. (1974), NASA SP-351.
- CIgreen = R_nir / R_green - 1: Gitelson, Gritz & Merzlyak (2003), J. Plant Physiol. 160:271.
- Canopy temperature: a radiometer set to emissivity 1 reports the brightness temperature Tb of
  the radiance it receives, e Tc^4 + (1 - e) Tsky^4 (grey body emission plus reflected sky, with
  the up-looking sensor's Tsky as the sky's brightness temperature; Stefan-Boltzmann, kelvin),
  so Tc = ((Tb^4 - (1 - e) Tsky^4) / e)^(1/4) (e.g. Jones, Plants and Microclimate, 3rd ed.,
  2014, ch. 9; the broadband form of the MLX90614's 8-14 um window is an approximation).
- Dew point: Magnus formula with the Alduchov & Eskridge (1996, J. Appl. Meteor. 35:601)
  constants a = 17.625, b = 243.04 degC (saturation vapour pressure within 0.4 % over
  -40..50 degC): g = ln(RH/100) + a T / (b + T), Td = b g / (a - g).
- Growing degree days, modified method (McMaster & Wilhelm 1997, Agric. For. Meteorol. 87:291,
  "method 2", with the upper cutoff of the 86/50 degF corn method): Tmin and Tmax are each
  clamped to [base, cap], GDD = (Tmin' + Tmax') / 2 - base, never negative.
- Equation of time: Spencer (1971), Search 2(5):172, as given by Iqbal (1983), fractional year
  g = 2 pi / 365 (doy - 1 + (hour - 12) / 24); within 0.9 min of the Astronomical Almanac
  formulae (sim.sun) over a year.
"""

import math

from micropython import const

K0 = 273.15  # 0 degC in kelvin
_DAY_S = const(86400)


def reflectance(down, up, cal, out, min_up=0.05):
    """out[i] = down[i] / up[i] * cal[i] for the 10 channels; None where up[i] < min_up (too dark).

    ``down``: basic counts of the down-looking sensor (light reflected by the canopy); ``up``:
    basic counts of the up-looking sensor (incident light); ``cal``: per-channel cross-calibration
    of the two sensors (up responsivity / down responsivity, e.g. from a white reference panel;
    None = all 1). ``min_up`` 0.05 basic counts is dawn light (~5 W m-2 with typical responsivity).
    """
    for i in range(len(out)):
        d = down[i]
        u = up[i]
        if d is None or u is None or u < min_up:
            out[i] = None
        else:
            out[i] = d / u * (1.0 if cal is None else cal[i])
    return out


def ndvi(red, nir):
    """(nir - red) / (nir + red); None if either is None or negative or their sum is <= 0."""
    if red is None or nir is None or red < 0 or nir < 0:
        return None
    s = nir + red
    if s <= 0:
        return None
    return (nir - red) / s


def chlorophyll_index(nir, green):
    """CIgreen = nir / green - 1 (Gitelson 2003); None if either is None or green <= 0."""
    if nir is None or green is None or green <= 0:
        return None
    return nir / green - 1.0


def canopy_temperature_c(brightness_c, sky_c, emissivity=0.98):
    """Canopy temperature from the brightness temperature seen at emissivity 1 and the sky's.

    None if an input is None or the reading is impossible (Tb^4 <= (1 - e) Tsky^4).
    """
    if brightness_c is None or sky_c is None:
        return None
    if not 0.0 < emissivity <= 1.0:
        raise ValueError("emissivity %r not in (0, 1]" % emissivity)
    tb = brightness_c + K0
    ts = sky_c + K0
    x = (tb * tb * tb * tb - (1.0 - emissivity) * ts * ts * ts * ts) / emissivity
    if x <= 0:
        return None
    return math.sqrt(math.sqrt(x)) - K0


def dew_point_c(t_c, rh_pct):
    """Dew point (degC), Magnus / Alduchov-Eskridge; None if an input is None or rh_pct <= 0."""
    if t_c is None or rh_pct is None or rh_pct <= 0:
        return None
    if rh_pct > 100:
        rh_pct = 100
    # Magnus constants a = 17.625, b = 243.04 degC (Alduchov & Eskridge 1996)
    g = math.log(rh_pct / 100) + 17.625 * t_c / (243.04 + t_c)
    return 243.04 * g / (17.625 - g)


def growing_degree_days(tmin, tmax, base_c, cap_c=None):
    """Degree days (K d) of one day, modified method: clamp to [base, cap], average, minus base."""
    if tmin is None or tmax is None:
        return None
    lo = base_c if tmin < base_c else tmin
    hi = base_c if tmax < base_c else tmax
    if cap_c is not None:
        lo = cap_c if lo > cap_c else lo
        hi = cap_c if hi > cap_c else hi
    return (lo + hi) / 2 - base_c


def day_of_year(days):
    """Day of year 1..366 of ``days`` since 1970-01-01 (proleptic Gregorian; H. Hinnant's civil_from_days)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy_mar = doe - (365 * yoe + yoe // 4 - yoe // 100)  # 0 = 1 March
    if doy_mar >= 306:  # January, February: day of year counts from this civil year's 1 January
        return doy_mar - 305
    y = yoe + era * 400
    leap = 1 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 0
    return doy_mar + 60 + leap


def solar_hour(t_epoch, lon_deg):
    """Local solar time in hours 0..24 (12 = solar noon): UTC hour + lon / 15 + equation of time.

    The longitude term alone gives local mean solar time; the equation of time (apparent minus
    mean solar time, Spencer 1971, -14.3..+16.4 min over the year) makes it the apparent (true)
    solar time, whose noon is when the sun is highest. ``lon_deg`` east positive.
    """
    t = int(t_epoch)
    day = t // _DAY_S
    hour = (t - day * _DAY_S) / 3600
    g = 2 * math.pi / 365 * (day_of_year(day) - 1 + (hour - 12) / 24)
    eot_min = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    return (hour + lon_deg / 15 + eot_min / 60) % 24


def local_date_days(t_epoch, utc_offset_min=0):
    """Days since 1970-01-01 of the local civil date at ``t_epoch`` (UTC offset in minutes, east +)."""
    return (int(t_epoch) + int(utc_offset_min) * 60) // _DAY_S


def shortwave_w_m2(clear_basic, w_per_count):
    """Incident shortwave (W m-2) from the up-looking CLEAR channel (basic counts); negatives read 0.

    ``w_per_count`` comes from a calibration against a pyranometer (the simulator's default unit
    gives ~32 W m-2 per basic count: 1.30 W m-2 nm-1 per 1000 W m-2 at 24 counts per W m-2 nm-1).
    """
    if clear_basic is None or w_per_count is None:
        return None
    w = clear_basic * w_per_count
    return w if w > 0 else 0.0
