"""Install checks on the climate and infrared sensors and on power: air, canopy and sky temperature, solar, battery.

    check_air(snap); check_canopy_temperature(snap, sun); check_sky_temperature(snap, light)
    check_solar_charging(snap, light); check_battery(snap)

Physics, and the thresholds that follow from it:

- Air: temperature -40..60 degC, humidity 0..100 % (105 allowed: sensors overshoot near saturation),
  pressure within 6 kPa of the ICAO standard atmosphere at the node's elevation (weather moves it
  about +-5 kPa at most: 950..1050 hPa at sea level).
- Canopy: the down-looking IR thermometer gives the brightness temperature; corrected for emissivity
  and reflected sky (gateway.agronomy.canopy_temperature_c) it is the canopy temperature Tc. In sun, a
  transpiring crop sits below the air at most by the non-water-stressed baseline of Idso (1982),
  dT = 0.51 - 1.92 VPD (K, kPa; alfalfa, among the coolest), a stressed crop up to ~5 K above, dry
  soil in full sun up to ~15 K above: PASS from min(-8, baseline - 3) to +15 K, WARN 4 K (below) or
  10 K (above) further, FAIL beyond: colder means it sees sky (turned up, or swapped with the sky
  sensor), hotter means it sees the pole, the mount or a cable. At night or in low sun a canopy is
  within a few K of the air (radiative cooling): PASS -8..+4 K, WARN -12..+10 K.
- Sky: a clear sky's brightness temperature in the 8-14 um window is 15-30 K below the air (Idso &
  Jackson 1969; Jones 2014, ch. 9), a cloud base only a few K. Under a clear sky (the incident light
  >= 70 % of the clear-sky model) the sky sensor must read >= 8 K below the air (WARN when less: part
  of its view is blocked), and never warmer than the canopy (FAIL: it is not looking at the sky).
  In any weather a sky warmer than the canopy by more than 2 K is a WARN, and canopy < air - 8 K with
  sky > air - 3 K is the two IR sensors swapped (FAIL).
- Solar: ``solar_a`` is the net current into the battery. The node draws ~13 mA (50 mW at 3.9 V);
  any panel in >= 150 W m-2 of sun gives several times that (the reference 2 W panel: ~65 mA at
  150 W m-2, ~400 mA in full sun), so in daylight a net <= 0 means no charge at all (FAIL: covered,
  shaded, unplugged, facing away from the sun) and < 20 mA a weak one (WARN). A battery above 97 %
  tapers its charge to ~0: not judged. Below 150 W m-2 (or the sun below 10 deg) nothing is judged.
- Battery: below the node's own power.saver_below_pct it samples and reports less (WARN), below
  power.survival_below_pct it only sends health (FAIL): charge or swap the battery before leaving.
"""

from provisioning.checks_result import FAIL, PASS, WARN, Result, not_checked

AIR_RANGE_C = (-40.0, 60.0)
PRESSURE_TOLERANCE_PA = 6000.0
DAY_DT_UPPER = 15.0
NIGHT_DT = (-8.0, 4.0)
CLEAR_SKY_RATIO = 0.7
CLEAR_SKY_DEPRESSION_K = 8.0
SOLAR_MIN_W_M2 = 150.0
CHARGE_PASS_A = 0.020
FULL_SOC_PCT = 97.0


def standard_pressure_pa(elevation_m):
    """ICAO standard atmosphere: 101325 (1 - 2.25577e-5 h)^5.25588 Pa."""
    return 101325.0 * (1.0 - 2.25577e-5 * elevation_m) ** 5.25588


def _sensor_missing(name, snap, what, where, expected):
    s = snap.get("sensors") or {}
    return Result(name, FAIL, "no reading (%s)" % (s.get(what + "_error") or snap.why_missing("sensors")), expected,
                  "The %s does not answer: check its cable and connector, then check again" % where)  # fmt: skip


def check_air(snap, elevation_m=0.0):
    s = snap.get("sensors")
    expected = "air %g..%g degC, RH 0..100 %%, pressure +-%g kPa of %.0f hPa" % (
        AIR_RANGE_C + (PRESSURE_TOLERANCE_PA / 1000, standard_pressure_pa(elevation_m) / 100)
    )
    if s is None:
        return Result("air", FAIL, "no answer", expected, "The node did not report its sensors; check again")
    if s.get("air_c") is None or s.get("rh_pct") is None:
        return _sensor_missing("air", snap, "air_th", "air temperature and humidity sensor (in the radiation shield)",
                               expected)  # fmt: skip
    if s.get("pressure_pa") is None:
        return _sensor_missing("air", snap, "air_pressure", "air pressure sensor", expected)
    t, rh, p = s["air_c"], s["rh_pct"], s["pressure_pa"]
    measured = "%.1f degC, %.0f %% RH, %.0f hPa" % (t, rh, p / 100)
    if not AIR_RANGE_C[0] <= t <= AIR_RANGE_C[1] or not 0 <= rh <= 105:
        return Result("air", FAIL, measured, expected,
                      "The air temperature/humidity sensor reads impossible values: it is faulty or wet inside; dry or "
                      "replace it")  # fmt: skip
    if abs(p - standard_pressure_pa(elevation_m)) > PRESSURE_TOLERANCE_PA:
        return Result("air", FAIL, measured, expected,
                      "The pressure sensor reads %.0f hPa where about %.0f hPa is expected at %.0f m: it is faulty "
                      "(or the node's elevation is wrong in its config)" % (p / 100, standard_pressure_pa(elevation_m)
                                                                            / 100, elevation_m))  # fmt: skip
    return Result("air", PASS, measured, expected)


def canopy_temperature(snap):
    """(canopy degC, air degC) from the diagnostics, or None where a reading is missing."""
    from gateway import agronomy

    s, c = snap.get("sensors") or {}, snap.get("config") or {}
    tb, sky, air = s.get("ir_canopy_c"), s.get("ir_sky_c"), s.get("air_c")
    if tb is None or sky is None:
        return None, air
    tc = float(agronomy.canopy_temperature_c(tb, sky, c.get("emissivity") or 0.98))
    return (None if tc != tc else tc), air


def check_canopy_temperature(snap, sun=None):
    name = "canopy_temperature"
    s = snap.get("sensors") or {}
    if s.get("ir_canopy_c") is None:
        return _sensor_missing(name, snap, "ir_canopy", "down-looking infrared thermometer", "canopy near air")
    tc, air = canopy_temperature(snap)
    if air is None or tc is None:
        return not_checked(name, "The canopy temperature cannot be judged without the air and sky readings (see air, "
                           "sky_temperature)", "canopy near air")  # fmt: skip
    dt = tc - air
    day = sun is not None and sun.up
    if day:
        from gateway import agronomy

        vpd = float(agronomy.vpd_kpa(air, min(100.0, max(0.0, s.get("rh_pct") or 50.0))))
        lo, hi = min(-8.0, 0.51 - 1.92 * vpd - 3.0), DAY_DT_UPPER
        context = "in sun, VPD %.1f kPa" % vpd
    else:
        lo, hi = NIGHT_DT
        context = "without sun"
    measured = "canopy %.1f degC, air %.1f degC: %+.1f K" % (tc, air, dt)
    expected = "%+.0f..%+.0f K from the air (%s)" % (lo, hi, context)
    if lo <= dt <= hi:
        return Result(name, PASS, measured, expected)
    cold = dt < lo
    status = WARN if (lo - 4.0 <= dt if cold else dt <= hi + 10.0) else FAIL
    if cold:
        fix = (
            "The canopy reads %.1f K colder than the air: the down-looking infrared thermometer sees sky (turned up, "
            "or swapped with the sky sensor) or its window is wet; aim it down at the crop and wipe its window"
        )
    else:
        fix = ("The canopy reads %.1f K warmer than the air: the down-looking infrared thermometer sees something hot "
               "(the pole, the mount, a cable) or bare dark soil; aim it at the crop canopy")  # fmt: skip
    return Result(name, status, measured, expected, fix % abs(dt))


def check_sky_temperature(snap, light=None):
    name = "sky_temperature"
    s = snap.get("sensors") or {}
    if s.get("ir_sky_c") is None:
        return _sensor_missing(name, snap, "ir_sky", "up-looking infrared thermometer", "sky colder than canopy")
    sky, tb = s["ir_sky_c"], s.get("ir_canopy_c")
    tc, air = canopy_temperature(snap)
    ref = tc if tc is not None else tb
    if air is None or ref is None:
        return not_checked(name, "The sky temperature cannot be judged without the air and canopy readings (see air, "
                           "canopy_temperature)", "sky colder than canopy")  # fmt: skip
    clear = light is not None and light.verdict == "ok" and light.ratio is not None and light.ratio >= CLEAR_SKY_RATIO
    measured = "sky %.1f degC, canopy %.1f degC, air %.1f degC%s" % (sky, ref, air, " (clear sky)" if clear else "")
    expected = ("sky >= %g K below the air under a clear sky" % CLEAR_SKY_DEPRESSION_K if clear
                else "sky not warmer than the canopy")  # fmt: skip
    if tb is not None and tb < air - 8.0 and sky > air - 3.0:
        return Result(name, FAIL, measured, expected,
                      "The infrared thermometers are swapped: the one looking down reads the cold sky and the one "
                      "looking up reads the warm crop; swap their cables (or mounts)")  # fmt: skip
    not_sky = ("The up-looking infrared thermometer reads %s: it does not see open sky (the mount, a branch, the "
               "housing in its view, or it is tilted); make it look straight up at open sky")  # fmt: skip
    if clear and sky >= ref:
        return Result(name, FAIL, measured, expected, not_sky % "warmer than the canopy under a clear sky")
    if clear and sky > air - CLEAR_SKY_DEPRESSION_K:
        return Result(
            name,
            WARN,
            measured,
            expected,
            not_sky % ("only %.1f K below the air under a clear sky (15-30 K expected)" % (air - sky)),
        )
    if not clear and sky > ref + 2.0:
        return Result(name, WARN, measured, expected, not_sky % "warmer than the canopy")
    return Result(name, PASS, measured, expected)


def check_solar_charging(snap, light=None, sun=None):
    name = "solar_charging"
    p = snap.get("power")
    expected = "> %.0f mA into the battery in daylight" % (CHARGE_PASS_A * 1000)
    if p is None:
        return Result(
            name,
            FAIL,
            "no answer",
            expected,
            "The node did not report its power state (%s); check again" % snap.why_missing("power"),
        )
    if p.get("solar_a") is None:
        return Result(name, FAIL, "no reading", expected,
                      "The solar current monitor does not answer: check the connection between the panel's charger and "
                      "the node's board")  # fmt: skip
    amps, soc = p["solar_a"], p.get("soc_pct")
    sun_w = (
        light.incident_w_m2
        if light is not None and light.verdict == "ok"
        else (sun.clear_sky_w_m2 if sun is not None else None)
    )
    measured = "%+.0f mA at %s W m-2" % (amps * 1000, "?" if sun_w is None else "%.0f" % sun_w)
    if sun is None or not sun.up or sun_w is None or sun_w < SOLAR_MIN_W_M2:
        return not_checked(
            name,
            "Not judged: too little sun (%s W m-2, %s); check again in daylight"
            % (
                "?" if sun_w is None else "%.0f" % sun_w,
                "sun %.0f deg up" % sun.elevation_deg if sun else "position unknown",
            ),
            expected,
        )
    if soc is not None and soc >= FULL_SOC_PCT and amps > -CHARGE_PASS_A:
        return Result(name, PASS, measured + ", battery full (%.0f %%)" % soc, expected)
    if amps <= 0:
        return Result(name, FAIL, measured, expected,
                      "The solar panel is not charging in %.0f W m-2 of sunlight (the battery discharges): it is "
                      "covered, shaded, unplugged or faces away from the sun; uncover and clean it, check its plug and "
                      "turn it towards the sun (south in the northern hemisphere)" % sun_w)  # fmt: skip
    if amps < CHARGE_PASS_A:
        return Result(name, WARN, measured, expected,
                      "The solar panel charges only weakly (%.0f mA in %.0f W m-2): it is partly shaded, dirty or "
                      "badly oriented; clean it and turn it towards the sun" % (amps * 1000, sun_w))  # fmt: skip
    return Result(name, PASS, measured, expected)


def check_battery(snap):
    p, c = snap.get("power"), snap.get("config") or {}
    saver, survival = c.get("saver_below_pct", 30.0), c.get("survival_below_pct", 12.0)
    expected = ">= %.0f %% (the node saves power below it)" % saver
    if p is None or p.get("soc_pct") is None:
        return Result("battery", FAIL, "no reading", expected,
                      "The battery gauge does not answer (%s): check the battery connector inside the housing"
                      % (snap.why_missing("power") if p is None else "no state of charge"))  # fmt: skip
    soc, volts, mode = p["soc_pct"], p.get("battery_v"), p.get("mode")
    measured = "%.0f %%, %s V, power mode %s" % (soc, "?" if volts is None else "%.2f" % volts, mode)
    if soc < survival:
        return Result("battery", FAIL, measured, expected,
                      "The battery is at %.0f %%: the node will only send its health until it recovers (no "
                      "measurements); charge or swap the battery before leaving" % soc)  # fmt: skip
    if soc < saver or mode not in (None, "full"):
        return Result("battery", WARN, measured, expected,
                      "The battery is at %.0f %% (power mode %s): the node samples and reports less until the sun "
                      "recharges it; charge or swap the battery if you can" % (soc, mode))  # fmt: skip
    return Result("battery", PASS, measured, expected)
