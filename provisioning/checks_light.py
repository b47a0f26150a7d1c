"""Install checks on the spectral sensors: both answer, the incident light fits the sun, the reflectance fits a field.

    sun = sun_at(snap, when_utc)                  # position and clear-sky irradiance here and now (or None)
    light = Light.from_snapshot(snap, sun)        # incident W m-2, reflectances, NDVI, and what they point to
    check_spectral_sensors(snap); check_incident_light(light); check_reflectance(light)

Physics, and the thresholds that follow from it:

- Incident light. The up-looking CLEAR channel times the unit's calibration (W m-2 per basic count)
  is the global shortwave irradiance G. The gateway's clear-sky model (FAO-56 eq. 37 at an instant,
  gateway.agronomy.clear_sky_ghi_w_m2) at the sun's position (NREL SPA, solar_position) gives G_clear.
  Clouds make G / G_clear anything from ~0.1 (thick overcast) to ~1.4 (sun between bright clouds), so
  a low ratio alone cannot tell shade from cloud. Below 10 deg of sun elevation the model and the
  sensors' cosine response are poor and the light is mostly diffuse: nothing is judged.
- Reflectance. Clouds dim the light on the canopy and on the up-looking sensor alike, so
  reflectance (down / up, per channel, times the unit's cross-calibration) does not change with the
  sky. A shade over the up-looking sensor, or dirt on the down-looking lens, changes it. Crops and
  soils have known reflectances: broadband (CLEAR) 0.05..0.40 (Oke 1987, Boundary Layer Climates,
  table 1.1: crops 0.18..0.25, soils 0.05 wet dark..0.40 dry light); and in the near infrared, for a
  given NDVI, about the mix of two end members, bare soil (red 0.20, NIR 0.27, on the soil line of
  Richardson & Wiegand 1977) and a closed green canopy (red 0.03, NIR 0.50; e.g. Jones & Vaughan
  2010, Remote Sensing of Vegetation, ch. 2). Real canopies of one NDVI spread about +-30 % in NIR, so
  for NDVI >= 0.3 the measured NIR reflectance over that expectation is PASS within 0.65..1.35, WARN
  within 0.5..1.6, FAIL beyond: a lens that lets 40 % less light through warns, 50 % fails; a shade
  taking 30 % of the incident light warns, 40 % fails. Below NDVI 0.3 (soil, stubble) only the broad
  range is known, so only a blocked lens (< 0.03) or strong shading (> 0.45 and < 85 % of clear sky)
  is caught there.
- Swapped sensors: the "reflectance" is then incident / reflected, > 1 in CLEAR, and NDVI flips sign
  (a crop's NIR > red becomes NIR < red): CLEAR reflectance > 1 with NDVI < -0.1. CLEAR reflectance > 1
  with a plant-like or flat spectrum is a shade over the up-looking sensor instead.
"""

import datetime as dt
import math
import time

from provisioning.checks_result import FAIL, PASS, WARN, Result, not_checked

F5, F8, CLEAR, NIR = 4, 7, 8, 9  # AS7341 channels: F5 555 nm (green), F8 680 nm (red), CLEAR, NIR 910 nm
RED, GREEN = F8, F5
SUN_MIN_ELEVATION_DEG = 10.0
DEFAULT_W_PER_COUNT = 32.0  # the firmware's default calibration (fieldnode.config.DEFAULT_SHORTWAVE)
SOIL = (0.20, 0.27)  # (red, NIR) reflectance end members
CANOPY = (0.03, 0.50)
NIR_PASS = (0.65, 1.35)
NIR_WARN = (0.50, 1.60)
BROAD_RANGE = (0.04, 0.45)  # CLEAR reflectance of crops and soils
BLOCKED_BELOW = 0.03
DARK_RATIO = 0.15  # of clear sky: heavy overcast, or the whole node in shadow
BRIGHT_RATIO = 1.5  # of clear sky: more than cloud edges give
SHADE_RATIO = 0.85  # incident below this share of clear sky, with raised reflectance: shade on the up sensor
MIN_UP_BASIC = 0.05  # basic counts: below this the up sensor is in the dark (dawn light)


class Sun:
    """The sun at the site: ``zenith_deg``, ``elevation_deg``, ``clear_sky_w_m2``, ``when_utc`` (epoch s), ``where``."""

    def __init__(self, zenith_deg, clear_sky_w_m2, when_utc, where):
        self.zenith_deg, self.clear_sky_w_m2, self.when_utc, self.where = zenith_deg, clear_sky_w_m2, when_utc, where
        self.elevation_deg = 90.0 - zenith_deg

    @property
    def up(self):
        return self.elevation_deg >= SUN_MIN_ELEVATION_DEG


def site_of(snap):
    """(lat, lon, elevation m, "GNSS" or "config") of the node, or None when neither knows it."""
    g, c = snap.get("gnss") or {}, snap.get("config") or {}
    if g.get("fix") and g.get("lat") is not None:
        return g["lat"], g["lon"], g.get("alt_m") or c.get("alt_m") or 0.0, "GNSS"
    if c.get("lat") is not None and c.get("lon") is not None:
        return c["lat"], c["lon"], c.get("alt_m") or 0.0, "config"
    return None


def sun_at(snap, when_utc):
    """The Sun over the node at ``when_utc`` (epoch s), or None without a position."""
    from gateway import agronomy

    site = site_of(snap)
    if site is None:
        return None
    lat, lon, elev, src = site
    when = dt.datetime.fromtimestamp(when_utc, dt.UTC)
    zen, _ = agronomy.solar_position(when, lat, lon, elevation_m=max(0.0, elev))
    ghi = agronomy.clear_sky_ghi_w_m2(zen, when.timetuple().tm_yday, max(0.0, elev))
    where = "%.4f, %.4f (%s), %s UTC" % (lat, lon, src, time.strftime("%H:%M", time.gmtime(when_utc)))
    return Sun(float(zen), float(ghi), when_utc, where)


def expected_nir(ndvi):
    """NIR reflectance of the soil/canopy mix whose NDVI is ``ndvi`` (end members SOIL, CANOPY)."""
    (rs, ns), (rc, nc) = SOIL, CANOPY
    # NDVI(f) = (ns - rs + f (nc - ns - rc + rs)) / (ns + rs + f (nc + rc - ns - rs)); solve for f
    a, b = ns - rs, nc - ns - rc + rs
    c, d = ns + rs, nc + rc - ns - rs
    f = (ndvi * c - a) / (b - ndvi * d)
    f = max(0.0, min(1.0, f))
    return ns + f * (nc - ns)


class Light:
    """What the spectral sensors say, and what it points to (``verdict``: see ``_classify``)."""

    def __init__(self, up, down, cal, w_per_count, sun):
        self.up, self.down, self.sun = up, down, sun
        self.incident_w_m2 = max(0.0, up[CLEAR] * w_per_count)
        self.refl = [d / u * k if u >= MIN_UP_BASIC else None for u, d, k in zip(up, down, cal, strict=True)]
        r, n = self.refl[RED], self.refl[NIR]
        self.ndvi = (n - r) / (n + r) if r is not None and n is not None and n + r > 0 else None
        self.broad = self.refl[CLEAR]
        self.nir_ratio = None
        if self.ndvi is not None and self.ndvi >= 0.3:
            self.nir_ratio = n / expected_nir(self.ndvi)
        self.ratio = self.incident_w_m2 / sun.clear_sky_w_m2 if sun is not None and sun.clear_sky_w_m2 > 0 else None
        self.verdict = self._classify()

    @classmethod
    def from_snapshot(cls, snap, sun):
        """None when a spectral sensor did not answer (see check_spectral_sensors)."""
        s, c = snap.get("sensors") or {}, snap.get("config") or {}
        up, down = s.get("spectral_up"), s.get("spectral_down")
        if not up or not down or len(up) != 10 or len(down) != 10:
            return None
        cal = c.get("spectral_cal") or [1.0] * 10
        return cls(up, down, cal, c.get("shortwave_w_m2_per_count") or DEFAULT_W_PER_COUNT, sun)

    def _classify(self):
        """One of: "no_sun", "dark_up" (the up sensor sees no light), "swapped", "shaded", "ok"."""
        if self.sun is None or not self.sun.up:
            return "no_sun"
        if self.broad is None:
            return "dark_up"
        if self.broad > 1.0:
            return "swapped" if self.ndvi is not None and self.ndvi < -0.1 else "shaded"
        dim = self.ratio is not None and self.ratio < SHADE_RATIO
        if dim and self.nir_ratio is not None and self.nir_ratio > NIR_PASS[1]:
            return "shaded"
        if dim and self.nir_ratio is None and self.broad > BROAD_RANGE[1]:
            return "shaded"
        return "ok"

    def shade_fraction(self):
        """Share of the incident light the shade takes (from how much the reflectance is raised)."""
        if self.nir_ratio is not None and self.broad <= 1.0:
            return max(0.0, 1.0 - 1.0 / self.nir_ratio)
        return max(0.0, 1.0 - 0.25 / self.broad)  # 0.25: a typical crop's broadband reflectance

    def describe_reflectance(self):
        fmt = lambda v: "-" if v is None else "%.2f" % v  # noqa: E731
        return "broadband %s, NIR %s, red %s, NDVI %s" % (fmt(self.broad), fmt(self.refl[NIR]), fmt(self.refl[RED]),
                                                          fmt(self.ndvi))  # fmt: skip


def check_spectral_sensors(snap):
    s = snap.get("sensors")
    if s is None:
        return Result(
            "spectral_sensors",
            FAIL,
            "no answer",
            "both spectral sensors answer",
            "The node did not report its sensors (%s); check again" % snap.why_missing("sensors"),
        )
    bad = []
    for name, where in (("spectral_up", "up-looking (on top)"), ("spectral_down", "down-looking (under the arm)")):
        v = s.get(name)
        if not v or len(v) != 10 or any(x is None or (isinstance(x, float) and math.isnan(x)) for x in v):
            bad.append((where, s.get(name + "_error") or "no reading"))
    if bad:
        return Result("spectral_sensors", FAIL, "; ".join("%s: %s" % b for b in bad), "both spectral sensors answer",
                      "The %s spectral sensor does not answer: check its cable and connector, then check again"
                      % " and the ".join(b[0] for b in bad))  # fmt: skip
    return Result("spectral_sensors", PASS, "both answer (CLEAR up %.2f, down %.2f basic counts)"
                  % (s["spectral_up"][CLEAR], s["spectral_down"][CLEAR]), "both spectral sensors answer")  # fmt: skip


def check_incident_light(light, sun=None):
    name = "incident_light"
    if light is None:
        return not_checked(name, "The incident light cannot be judged without both spectral sensors (see "
                           "spectral_sensors)", "close to a clear sky's irradiance")  # fmt: skip
    sun = sun or light.sun
    if light.verdict == "no_sun":
        why = (
            "the node's position is unknown (no GNSS fix, no site in the config)"
            if sun is None
            else ("the sun is only %.0f deg up" % sun.elevation_deg)
        )
        return not_checked(name, "Not judged: %s; run the check again in daylight (sun above %g deg)"
                           % (why, SUN_MIN_ELEVATION_DEG), "sun above %g deg" % SUN_MIN_ELEVATION_DEG)  # fmt: skip
    pct = 100.0 * light.ratio
    measured = "%.0f W m-2 = %.0f %% of a clear sky (%.0f W m-2, sun %.0f deg up at %s)" % (
        light.incident_w_m2,
        pct,
        sun.clear_sky_w_m2,
        sun.elevation_deg,
        sun.where,
    )
    expected = "%.0f..%.0f %% of a clear sky, reflectance of a crop or soil" % (100 * DARK_RATIO, 100 * BRIGHT_RATIO)
    if light.verdict == "dark_up":
        return Result(name, FAIL, measured, expected,
                      "The up-looking spectral sensor sees no light with the sun %.0f deg up: it is covered (a "
                      "protective cap left on?) or faces down; uncover it and make sure it looks at the open sky"
                      % sun.elevation_deg)  # fmt: skip
    if light.verdict == "swapped":
        return Result(
            name,
            FAIL,
            measured + "; reflected light %.1f x incident" % light.broad,
            expected,
            "The up- and down-looking spectral sensors are swapped: the one looking down reads more light "
            "than the one looking up; swap their cables (or mounts) so the sensor on top looks at the sky",
        )
    if light.verdict == "shaded":
        share = light.shade_fraction()
        severe = light.broad > 0.6 or (light.nir_ratio or 0) > NIR_WARN[1]
        return Result(name, FAIL if severe else WARN, measured + "; " + light.describe_reflectance(), expected,
                      "Something shades the up-looking spectral sensor (it gets about %.0f %% less light than the crop "
                      "below it): remove what is over or beside it (leaves, the mount, a cable), or move the node so "
                      "the sensor on top sees open sky" % (100 * share))  # fmt: skip
    if light.ratio < DARK_RATIO:
        return Result(
            name,
            WARN,
            measured,
            expected,
            "Very little light for the sun's height: a heavy overcast, or something shades the whole node; "
            "if the sky is not that dark, look for what casts a shadow on it, or check again when brighter",
        )
    if light.ratio > BRIGHT_RATIO:
        return Result(name, WARN, measured, expected,
                      "More light than a clear sky gives: something bright reflects onto the up-looking sensor (a "
                      "white wall, a glasshouse, the mount) or its calibration is wrong; check the surroundings and "
                      "the calibration (fieldline provision)")  # fmt: skip
    return Result(name, PASS, measured, expected)


def check_reflectance(light):
    name = "reflectance"
    if light is None:
        return not_checked(name, "The reflectance cannot be judged without both spectral sensors (see "
                           "spectral_sensors)", "a crop's or soil's reflectance")  # fmt: skip
    expected = "broadband %.2f..%.2f" % BROAD_RANGE
    if light.nir_ratio is not None:
        nir = expected_nir(light.ndvi)
        expected += "; NIR %.2f..%.2f for NDVI %.2f" % (NIR_PASS[0] * nir, NIR_PASS[1] * nir, light.ndvi)
    if light.verdict in ("no_sun", "dark_up", "swapped", "shaded"):
        why = {"no_sun": "there is not enough sun to judge (see incident_light)",
               "dark_up": "the up-looking sensor sees no light (see incident_light)",
               "swapped": "the spectral sensors are swapped (see incident_light)",
               "shaded": "the up-looking sensor is shaded (see incident_light)"}[light.verdict]  # fmt: skip
        return not_checked(name, "Not judged: %s; fix that first and check again" % why, expected)
    measured = light.describe_reflectance()
    if light.nir_ratio is not None:
        measured += " (%.0f %% of a crop of that NDVI)" % (100 * light.nir_ratio)
    dirty = ("The down-looking spectral sensor sees %s less light than any crop or soil reflects: its lens is %s; "
             "clean it with a soft wet cloth (no solvent) and make sure nothing is in its view")  # fmt: skip
    if light.broad < BLOCKED_BELOW:
        return Result(name, FAIL, measured, expected, dirty % ("almost all", "covered (a protective cap left on?) or "
                                                               "caked with mud"))  # fmt: skip
    r = light.nir_ratio
    if r is not None and r < NIR_WARN[0]:
        return Result(name, FAIL, measured, expected, dirty % ("about %.0f %%" % (100 * (1 - r)), "dirty or partly "
                                                               "covered (mud, dust, a spider's web)"))  # fmt: skip
    if r is not None and r < NIR_PASS[0]:
        return Result(name, WARN, measured, expected, dirty % ("about %.0f %%" % (100 * (1 - r)), "probably dirty"))
    if light.broad < BROAD_RANGE[0]:
        return Result(name, WARN, measured, expected, dirty % ("more", "dirty, or it looks at wet dark soil or water"))
    bright = ("The down-looking spectral sensor reads more light than a crop or soil reflects: something bright is in "
              "its view (the mount arm, a label, plastic mulch) or its calibration is wrong; aim it at the crop and "
              "check the calibration (fieldline provision)")  # fmt: skip
    if (r is not None and r > NIR_WARN[1]) or light.broad > 0.6:
        return Result(name, FAIL, measured, expected, bright)
    if (r is not None and r > NIR_PASS[1]) or light.broad > BROAD_RANGE[1]:
        return Result(name, WARN, measured, expected, bright)
    return Result(name, PASS, measured, expected)
