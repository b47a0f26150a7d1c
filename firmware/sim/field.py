"""The deterministic field that drives the virtual node's Truth: weather, crop, battery, faults.

    field = FieldModel(lat=52.0, lon=5.0, seed=1, sowing_doy=100, season_days=120)
    field.update(truth, t_epoch)          # once per simulated sample; field.truth_day(t) for the bench

Everything but the battery is a pure function of (seed, UTC epoch seconds): day d's weather
comes from a counter-based hash of (seed, d), never from a PRNG stream, so it does not depend
on call order. Days are local mean solar days (UTC shifted by lon/15 h). Model:
- Sun, clear-sky irradiance, spectrum, clouds and rain: see sim.sun. GHI = clear-sky GHI *
  (1 - 0.75 op) with op the cloud opacity of the 5-minute slot.
- Air temperature: annual mean 29 - 0.36|lat| degC, amplitude 0.15|lat| K, coldest ~20 Jan
  (NH; SH mirrored), lapse 6.5 K/km, plus a smooth 4-day anomaly and a daily one (at 52 N:
  ~0/6 degC in January, ~13/22 degC in July on average, a maritime climate). Diurnal range
  (3 + 9 (1 - cf)) K, times 0.45..1 with the noon sun height and 0.7 on rain days. Tmin at
  sunrise, Tmax at 15:00 solar time, half-cosine between them (Tmax(d-1) -> Tmin(d) -> Tmax(d)
  -> Tmin(d+1)), so it is continuous across days.
- Humidity: dew point Tmin - (1.5..5.5 K), 0.5..1 K on rain days, interpolated between noons;
  RH from the Magnus formula (Alduchov & Eskridge 1996: es = 6.112 exp(17.62 T / (243.12 + T))).
- Pressure: 101325 Pa + 900 Pa slow noise - 600 Pa cf, times the ICAO barometric factor
  (1 - 2.25577e-5 h)^5.25588.
- Sky brightness temperature: air - D, D = 20..30 K clear (per day), 5 K under cloud, mixed by
  0.5 cf + 0.5 (slot covered).
- Crop: cover c = 0.95 smoothstep(x from 0.08 to 0.5) of the season fraction x = days since
  sowing / season_days, green share 1 - 0.85 smoothstep(x from 0.7 to 1); bare soil before
  sowing and after harvest. Reflectance per channel is the linear mix of soil, green canopy and
  senescent canopy spectra, so truth.ndvi and truth.chlorophyll_index follow from it exactly.
- Canopy temperature: air + (GHI/1000) (g (-1.5 + 6 S) + (1 - g) 6) - 0.06 D, g = green cover,
  S = water stress 0..1 (days since the last rain day, (k - 1) / 10), D = sky depression: a
  transpiring crop sits ~1.5 K below air in full sun, a stressed one ~4.5 K above, bare soil
  and dry straw ~6 K above; at night and under cloud it is near or slightly below air.
- Battery: 2 W-peak panel (GHI/1000 * 2 W) through an 85 % charger into a 3.0 Ah Li-ion;
  I = P / V, CV taper above 95 % SOC; load set_load_w() (default 0.05 W) is served first.
  SOC integrates the net current (sub-steps of <= 5 min, each with its own irradiance); V is
  OCV(SOC) (3.00 V at 0 %, 4.18 V at 100 %) + 0.08 ohm * I, clamped to 3.0..4.2 V.
  truth.solar_a is the net current into the battery (negative: discharging).
"""

import math

try:
    from micropython import const
except ImportError:  # CPython: the bench may import the field model to compute its reference values

    def const(x):
        return x


from sim import sun
from sim.truth import Truth

_RAD = math.pi / 180.0
CLEAR_CF = 0.1  # a day is "clear" when its cloud fraction is below this
EMISSIVITY = 0.98
# reflectance per channel F1..F8, CLEAR, NIR in units of 1/400 (bytes keep the tables small):
# loam soil, dense green canopy, senescent canopy (yellow leaves and straw: higher red, lower NIR)
_SOIL = bytes((28, 32, 36, 44, 52, 60, 68, 72, 76, 100))
_GREEN = bytes((10, 12, 14, 24, 38, 26, 16, 12, 88, 200))
_SENESCENT = bytes((24, 28, 36, 48, 60, 68, 72, 76, 100, 152))
# Li-ion open-circuit voltage at 0, 10, ..., 100 % SOC, in 10 mV above 3.00 V
_OCV = bytes((0, 55, 65, 71, 76, 80, 85, 92, 99, 108, 118))
PANEL_PEAK_W = 2.0
CHARGER_EFF = 0.85
CAPACITY_AH = 3.0
_R_INT = 0.08
_I_CHARGE_MAX_A = 1.0
_TILT_AZIMUTH = 30.0 * _RAD  # direction the pole leans, in the node's x-y plane
FAULTS = (
    "tilt_deg",
    "shade_up",
    "lens_dirt",
    "solar_covered",
    "gnss_nofix",
    "swap_spectral",
    "battery_soc",
    "clock_offset_s",
    "clock_drift_ppm",
    "sensor_nack",
    "stuck",
    "powercut_at_write",
)
# hash channels of this module (sim.sun uses 0..15)
_CH_TEMP = const(16)
_CH_TEMP2 = const(17)
_CH_DEW = const(18)
_CH_PRES = const(19)
_CH_SKY = const(20)
# fields of a day tuple (FieldModel._day)
_CF = const(0)
_RAIN = const(1)
_TMIN = const(2)
_TMAX = const(3)
_TD = const(4)
_PSEA = const(5)
_SKY = const(6)
_STRESS = const(7)
_SUNRISE = const(8)
_DOY = const(9)


class FieldModel:
    def __init__(self, lat=52.0, lon=5.0, alt_m=10.0, seed=1, sowing_doy=100, season_days=120):
        self.lat, self.lon, self.alt_m, self.seed = lat, lon, alt_m, seed
        self.sowing_doy, self.season_days = sowing_doy, season_days
        self._off_s = lon * 240.0  # local mean solar time - UTC, in seconds
        self._t_annual = 29.0 - 0.36 * abs(lat) - 0.0065 * alt_m
        self._t_amp = (0.15 if lat >= 0 else -0.15) * abs(lat)
        self._p_factor = (1.0 - 2.25577e-5 * alt_m) ** 5.25588
        self._cache = {}
        self._scratch = None
        self.faults = {}
        for name in FAULTS:
            if name != "battery_soc":
                self.faults[name] = 0
        self._accel = (0.0, 0.0, 1.0)
        self.load_w = 0.05
        self.soc = 80.0
        self._t_last = None

    # ---- public API
    def update(self, truth, t_epoch):
        """Fill every Truth attribute for UTC epoch seconds ``t_epoch`` (battery integrates from the last call)."""
        ghi = self._fill(truth, t_epoch)
        self._battery(truth, t_epoch, ghi)
        f = self.faults
        k = 1.0 - f["shade_up"]
        for i in range(10):
            truth.incident_band[i] = truth.canopy_band[i] * k
        truth.lens_transmission = 1.0 - f["lens_dirt"]
        truth.swap_spectral = bool(f["swap_spectral"])
        truth.gnss_fix = not f["gnss_nofix"]
        truth.tilt_deg = float(f["tilt_deg"])
        truth.accel_g = self._accel

    def set_load_w(self, w):
        self.load_w = float(w)

    def set_fault(self, name, value):
        """Set one fault knob (0 / False clears it). Board-side knobs are only stored in ``self.faults``."""
        if name not in FAULTS:
            raise ValueError("unknown fault %r; known faults: %s" % (name, ", ".join(sorted(FAULTS))))
        lo, hi = {"tilt_deg": (0, 180), "shade_up": (0, 1), "lens_dirt": (0, 1), "battery_soc": (0, 100)}.get(
            name, (None, None)
        )
        if lo is not None and not lo <= value <= hi:
            raise ValueError("fault %s=%r out of range %s..%s" % (name, value, lo, hi))
        if name == "battery_soc":
            self.soc = float(value)  # an action, not a standing condition
            return
        self.faults[name] = value
        if name == "tilt_deg":
            s = math.sin(value * _RAD)
            self._accel = (s * math.cos(_TILT_AZIMUTH), s * math.sin(_TILT_AZIMUTH), math.cos(value * _RAD))

    def truth_day(self, t_epoch):
        """Reference values for the UTC day holding ``t_epoch`` (fault-free, battery untouched).

        Keys: ndvi_midday, ci_midday (means over 10:00-14:00 apparent solar time), clear (cloud fraction
        < CLEAR_CF), cloud_fraction, rain, water_stress, canopy_c_daylight_mean and
        canopy_minus_air_daylight_mean (sun above the horizon), air_c_min, air_c_max, air_c_mean.
        """
        if self._scratch is None:
            self._scratch = Truth()
        tr = self._scratch
        t0 = int(t_epoch // 86400) * 86400
        lo, hi, s_air, n_air, s_can, s_dt, n_can = 1e9, -1e9, 0.0, 0, 0.0, 0.0, 0
        for k in range(86400 // sun.SLOT_S):
            self._fill(tr, t0 + k * sun.SLOT_S + sun.SLOT_S // 2)
            a = tr.air_c
            lo, hi, s_air, n_air = min(lo, a), max(hi, a), s_air + a, n_air + 1
            if tr.sun_zenith_deg < 90.0:
                s_can, s_dt, n_can = s_can + tr.canopy_c, s_dt + tr.canopy_c - a, n_can + 1
        solar_h = sun.position(t0 + 43200, self.lat, self.lon)[1]
        noon = t0 + 43200 + int((((12.0 - solar_h) + 12.0) % 24.0 - 12.0) * 3600.0)
        s_ndvi, s_ci, n = 0.0, 0.0, 0
        for t in range(noon - 7200, noon + 7201, sun.SLOT_S):
            self._fill(tr, t)
            s_ndvi, s_ci, n = s_ndvi + tr.ndvi, s_ci + tr.chlorophyll_index, n + 1
        day = self._day(int((noon + self._off_s) // 86400))
        n_can = n_can or 1
        return {
            "ndvi_midday": s_ndvi / n,
            "ci_midday": s_ci / n,
            "clear": day[_CF] < CLEAR_CF,
            "cloud_fraction": day[_CF],
            "rain": day[_RAIN],
            "water_stress": day[_STRESS],
            "canopy_c_daylight_mean": s_can / n_can,
            "canopy_minus_air_daylight_mean": s_dt / n_can,
            "air_c_min": lo,
            "air_c_max": hi,
            "air_c_mean": s_air / n_air,
        }

    # ---- the world without faults
    def _fill(self, truth, t):
        """Fill the fault-free environment at t; returns the global horizontal irradiance (W m-2)."""
        cos_z = sun.position(t, self.lat, self.lon)[0]
        tt = t + self._off_s
        sd = int(tt // 86400)
        s = (tt - sd * 86400) / 3600.0  # local mean solar hour
        day = self._day(sd)
        op = sun.cloud_opacity(self.seed, t, day[_CF])
        ghi = sun.clear_sky_ghi(cos_z) * (1.0 - 0.75 * op)
        truth.t = t
        truth.sun_zenith_deg = math.acos(max(-1.0, min(1.0, cos_z))) / _RAD
        truth.incident_w_m2 = ghi
        sun.fill_spectrum(truth.canopy_band, ghi)
        g, b = self._cover(day[_DOY] + s / 24.0)
        soil = 1.0 - g - b
        r = truth.reflectance
        for i in range(10):
            r[i] = (soil * _SOIL[i] + g * _GREEN[i] + b * _SENESCENT[i]) * 0.0025
        truth.ndvi = (r[9] - r[7]) / (r[9] + r[7])
        truth.chlorophyll_index = r[9] / r[4] - 1.0
        air = self._air_c(sd, s)
        td = min(air, self._noon_lerp(sd, s, _TD))
        truth.air_c = air
        truth.rh_pct = 100.0 * math.exp(17.62 * td / (243.12 + td) - 17.62 * air / (243.12 + air))
        truth.pressure_pa = self._noon_lerp(sd, s, _PSEA) * self._p_factor
        cloud_ir = 0.5 * day[_CF] + (0.5 if op > 0.0 else 0.0)
        depr = day[_SKY] * (1.0 - cloud_ir) + 5.0 * cloud_ir
        truth.sky_c = air - depr
        truth.canopy_c = air + ghi / 1000.0 * (g * (-1.5 + 6.0 * day[_STRESS]) + (1.0 - g) * 6.0) - 0.06 * depr
        truth.emissivity = EMISSIVITY
        truth.lat, truth.lon, truth.alt_m = self.lat, self.lon, self.alt_m
        return ghi

    def _ghi(self, t):
        day = self._day(int((t + self._off_s) // 86400))
        return sun.clear_sky_ghi(sun.position(t, self.lat, self.lon)[0]) * (
            1.0 - 0.75 * sun.cloud_opacity(self.seed, t, day[_CF])
        )

    def _cover(self, doy_f):
        """(green, senescent) fractional cover on fractional day of year ``doy_f``."""
        das = (doy_f - self.sowing_doy) % 365.0
        if das > self.season_days:
            return 0.0, 0.0
        x = das / self.season_days
        c = 0.95 * sun.smooth((x - 0.08) / 0.42)
        green = 1.0 - 0.85 * sun.smooth((x - 0.7) / 0.3)
        return c * green, c * (1.0 - green)

    def _air_c(self, sd, s):
        today = self._day(sd)
        sr = today[_SUNRISE]
        if s < sr:
            a, b, f = self._day(sd - 1)[_TMAX], today[_TMIN], (s + 9.0) / (sr + 9.0)
        elif s < 15.0:
            a, b, f = today[_TMIN], today[_TMAX], (s - sr) / (15.0 - sr)
        else:
            nxt = self._day(sd + 1)
            a, b, f = today[_TMAX], nxt[_TMIN], (s - 15.0) / (nxt[_SUNRISE] + 9.0)
        return a + (b - a) * (0.5 - 0.5 * math.cos(math.pi * f))

    def _noon_lerp(self, sd, s, i):
        if s < 12.0:
            a, b, f = self._day(sd - 1)[i], self._day(sd)[i], (s + 12.0) / 24.0
        else:
            a, b, f = self._day(sd)[i], self._day(sd + 1)[i], (s - 12.0) / 24.0
        return a + (b - a) * f

    def _day(self, d):
        """The parameters of solar day d (tuple indexed by _CF, _RAIN, ...), cached for d - 1 .. d + 1."""
        p = self._cache.get(d)
        if p is not None:
            return p
        if len(self._cache) > 3:  # keep d's neighbours only: each day tuple costs ~0.5 KB of heap
            for k in [k for k in self._cache if k < d - 1 or k > d + 1]:
                del self._cache[k]
        seed = self.seed
        cf, rain = sun.day_clouds(seed, d)
        doy = sun.day_of_year(d)
        dec = sun.position(d * 86400 + 43200 - self._off_s, self.lat, self.lon)[2]
        season = self._t_annual - self._t_amp * math.cos(2.0 * math.pi * (doy - 20) / 365.25)
        tmean = season + 2.5 * sun.noise(seed, d / 4.0, _CH_TEMP) + 0.8 * sun.gauss(seed, d, _CH_TEMP2)
        # diurnal range: less sun at noon (winter, high latitude) and rain shrink it
        sun_noon = math.cos(self.lat * _RAD - dec) / math.cos(max(0.0, abs(self.lat) - 23.44) * _RAD)
        dtr = (3.0 + 9.0 * (1.0 - cf)) * (0.45 + 0.55 * max(0.0, sun_noon)) * (0.7 if rain else 1.0)
        tmin = tmean - 0.5 * dtr
        h = sun.hash01(seed, d, _CH_DEW)
        td = tmin - ((0.5 + 0.5 * h) if rain else (1.5 + 4.0 * h))
        p_sea = 101325.0 + 900.0 * sun.noise(seed, d / 3.0, _CH_PRES) - 600.0 * cf
        k = 0
        while k < 14 and not sun.day_clouds(seed, d - k)[1]:
            k += 1
        stress = 0.0 if k <= 1 else min(1.0, (k - 1) / 10.0)
        p = (
            cf,
            rain,
            tmin,
            tmin + dtr,
            td,
            p_sea,
            20.0 + 10.0 * sun.hash01(seed, d, _CH_SKY),
            stress,
            sun.sunrise_hour(self.lat, dec),
            doy,
        )
        self._cache[d] = p
        return p

    # ---- battery
    def _net_a(self, ghi):
        v = self._ocv()
        avail = 0.0 if self.faults["solar_covered"] else CHARGER_EFF * PANEL_PEAK_W * ghi / 1000.0 / v
        surplus = avail - self.load_w / v
        if surplus <= 0.0:
            return surplus
        cap = _I_CHARGE_MAX_A if self.soc < 95.0 else _I_CHARGE_MAX_A * (100.0 - self.soc) / 5.0
        return surplus if surplus < cap else cap

    def _battery(self, truth, t, ghi):
        last, self._t_last = self._t_last, t
        if last is not None and t > last:
            n = int(math.ceil((t - last) / sun.SLOT_S))  # sub-steps of <= 5 min
            step = (t - last) / n
            for i in range(1, n):
                self._charge(self._net_a(self._ghi(last + i * step)), step)
            self._charge(self._net_a(ghi), step)
        net = self._net_a(ghi)
        truth.soc_pct = self.soc
        truth.solar_a = net
        truth.battery_v = max(3.0, min(4.2, self._ocv() + net * _R_INT))

    def _charge(self, net_a, dt_s):
        soc = self.soc + net_a * dt_s / 36.0 / CAPACITY_AH  # % = A * s / 3600 / Ah * 100
        self.soc = 0.0 if soc < 0.0 else (100.0 if soc > 100.0 else soc)

    def _ocv(self):
        x = self.soc / 10.0
        i = int(x)
        if i >= 10:
            return 3.0 + _OCV[10] * 0.01
        return 3.0 + (_OCV[i] + (_OCV[i + 1] - _OCV[i]) * (x - i)) * 0.01
