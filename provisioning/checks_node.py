"""Install checks on what the node says about itself: identity, firmware, manifest, config, clock, level, GNSS, place.

    r = check_level(snap)                 # snap: a checks_session.Snapshot of the node's diagnostics
    r = check_position(snap, Boundary.parse("52.001,4.998;..."))

Each function takes the node's diagnostics (and what the installer gave) and returns one Result.
Thresholds, and why:

- level: the up-looking sensors are horizontal only if the pole is. A tilt t changes the
  irradiance on the sensor by cos(z - t) / cos(z) for a sun at zenith z in the tilt's direction: at
  z = 40 deg, 2 deg tilt is +3 %, 5 deg +7 %, 7.8 deg +11 % (and the down-looking footprint slides
  off the plot). PASS <= 2 deg (within the spectral calibration's own ~3 %), WARN <= 5 deg, FAIL beyond.
- clock: samples are stamped to the minute and summarised per 15 min; a node within 5 s of UTC is
  right, within 60 s still usable (WARN), further off it files samples in the wrong interval (FAIL).
  A node that has not synced with the gateway has never been checked against anyone (FAIL). A past
  correction of more than 60 s means the clock was set wrong at provisioning: a whole number of
  hours is the classic clock-in-local-time mistake (WARN: the records before the sync are misdated).
- position: the GNSS is good to a few metres (HDOP x ~5 m); a node within max(10 m, 10 x HDOP) of
  the boundary counts as on it (WARN if just outside), further outside is the wrong field (FAIL).
  A configured site more than 2 km from the GNSS position was provisioned for another field (WARN:
  the node's solar time and midday window come from the configured site).
"""

import math

from provisioning.checks_result import FAIL, PASS, WARN, Result, not_checked

LEVEL_PASS_DEG = 2.0
LEVEL_WARN_DEG = 5.0
CLOCK_PASS_S = 5.0
CLOCK_WARN_S = 60.0
CLOCK_CORRECTION_WARN_S = 60.0
SITE_MISMATCH_M = 2000.0
BAD_RESETS = ("watchdog", "brownout")


def _missing(name, snap, item, what):
    return Result(name, FAIL, "no answer", what,
                  "The node did not report its %s (%s); check again, and if it persists the firmware is at fault: "
                  "re-flash it (fieldline provision)" % (item, snap.why_missing(item)))  # fmt: skip


def check_identity(snap, expected_id=None):
    ident = snap.get("identity")
    if ident is None:
        return _missing("identity", snap, "identity", "the node's device id")
    dev = ident.get("device_id")
    measured = "device %s %r (hw %s, uid %s)" % (dev, ident.get("name", ""), ident.get("hw"), ident.get("uid"))
    if expected_id is not None and dev != expected_id:
        return Result(
            "identity",
            FAIL,
            measured,
            "device %d" % expected_id,
            "This is device %s, not the expected %d: you are connected to another node, or the node carries "
            "another node's config; check the label and re-provision if needed" % (dev, expected_id),
        )
    return Result("identity", PASS, measured, "device %d" % expected_id if expected_id is not None else "a device id")


def check_firmware(snap):
    fw = snap.get("firmware")
    if fw is None:
        return _missing("firmware", snap, "firmware", "a firmware version")
    cause = fw.get("reset_cause")
    measured = "%s (last reset: %s, up %s s, %s KB free heap)" % (
        fw.get("version"),
        cause,
        fw.get("uptime_s"),
        (fw.get("free_heap") or 0) // 1024,
    )
    if cause in BAD_RESETS:
        what = "its watchdog (the firmware hung)" if cause == "watchdog" else "a brown-out (the supply voltage sagged)"
        return Result("firmware", WARN, measured, "a normal reset (power on, deep sleep)",
                      "The node last restarted from %s; check the battery and solar cable connections, and if it keeps "
                      "happening replace the node" % what)  # fmt: skip
    return Result("firmware", PASS, measured, "a firmware version and a normal reset")


def manifest_version(manifest):
    """The firmware version a provisioning manifest names: fw_version, version or firmware.version."""
    if not isinstance(manifest, dict):
        return None
    fw = manifest.get("firmware")
    return (
        manifest.get("fw_version") or manifest.get("version") or (fw.get("version") if isinstance(fw, dict) else None)
    )


def check_manifest(snap, manifest=None):
    if manifest is None:
        return not_checked(
            "manifest",
            "No provisioning manifest was given, so the deployed firmware was not compared "
            "with it; pass --manifest (written when the node was deployed)",
            "the deployed version",
        )
    want = manifest_version(manifest)
    fw = snap.get("firmware") or {}
    have = fw.get("version")
    ident = snap.get("identity") or {}
    want_dev = manifest.get("device_id")
    if want is None:
        return not_checked("manifest", "The manifest names no firmware version (fw_version); use the manifest the "
                           "deployment wrote", "the deployed version")  # fmt: skip
    expected = "firmware %s%s" % (want, " on device %s" % want_dev if want_dev is not None else "")
    measured = "firmware %s on device %s" % (have, ident.get("device_id"))
    if have != want:
        return Result("manifest", FAIL, measured, expected,
                      "The node runs firmware %s but the manifest says %s was deployed: the deployment did not "
                      "finish or this is another node; deploy again (fieldline provision)" % (have, want))  # fmt: skip
    if want_dev is not None and ident.get("device_id") != want_dev:
        return Result("manifest", FAIL, measured, expected,
                      "The manifest is for device %s but this node is device %s: use this node's manifest, or you are "
                      "connected to the wrong node" % (want_dev, ident.get("device_id")))  # fmt: skip
    return Result("manifest", PASS, measured, expected)


def distance_m(lat1, lon1, lat2, lon2):
    """Great-circle distance (haversine, mean Earth radius 6371 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371000.0 * math.asin(math.sqrt(min(1.0, a)))


def check_config(snap):
    ident, cfg = snap.get("identity") or {}, snap.get("config")
    if ident.get("provisioned") is False:
        return Result("config", FAIL, "not provisioned: %s" % (ident.get("reason") or "no valid config"),
                      "a valid config (provisioned)",
                      "The node has no valid configuration (%s): it measures nothing; provision it "
                      "(fieldline provision) and check again" % (ident.get("reason") or "no config file"))  # fmt: skip
    if cfg is None:
        return _missing("config", snap, "configuration", "a valid config (provisioned)")
    lat, lon = cfg.get("lat"), cfg.get("lon")
    measured = "provisioned; site %s, %s; sample %s s, summary %s min, report %s min" % (
        _fmt(lat, "%.5f"),
        _fmt(lon, "%.5f"),
        cfg.get("sample_s"),
        cfg.get("summary_min"),
        cfg.get("report_min"),
    )
    if lat is None or lon is None:
        return Result(
            "config",
            FAIL,
            measured,
            "a site position",
            "The config has no site position: provision the node with this field's site",
        )
    g = snap.get("gnss") or {}
    if g.get("fix") and g.get("lat") is not None:
        d = distance_m(lat, lon, g["lat"], g["lon"])
        if d > SITE_MISMATCH_M:
            return Result("config", WARN, measured + "; GNSS %.1f km away" % (d / 1000), "site within 2 km of the node",
                          "The configured site is %.1f km from where the node is: it was provisioned for another field "
                          "(its solar time and midday readings use the configured site); re-provision it with this "
                          "field's site" % (d / 1000))  # fmt: skip
    return Result("config", PASS, measured, "a valid config (provisioned)")


def _fmt(v, f):
    return "-" if v is None else f % v


def _duration(s):
    s = abs(s)
    if s >= 3600:
        return "%d h %02d min" % (s // 3600, s % 3600 // 60)
    return "%d min %02d s" % (s // 60, s % 60) if s >= 60 else "%.1f s" % s


def check_clock(snap):
    c = snap.get("clock")
    if c is None or c.get("time_ms") is None:
        return _missing("clock", snap, "clock", "synced, within 5 s of UTC")
    ref = snap.item_at.get("clock")
    off_s = c["time_ms"] / 1000.0 - ref
    corr_s = (c.get("offset_ms") or 0) / 1000.0
    side = "ahead of" if off_s > 0 else "behind"
    measured = "%+.1f s from UTC, %s (last correction %+.1f s)" % (off_s, "synced" if c.get("synced") else "NOT synced",
                                                                     corr_s)  # fmt: skip
    expected = "synced, within %g s of UTC (warns within %g s)" % (CLOCK_PASS_S, CLOCK_WARN_S)
    if not c.get("synced"):
        return Result("clock", FAIL, measured, expected,
                      "The node has not synced its clock with the gateway (%s %s UTC): the gateway does not answer its "
                      "time requests; fix the link or key first (see link, key, upstream), then check again"
                      % (_duration(off_s), side))  # fmt: skip
    if abs(off_s) > CLOCK_WARN_S:
        return Result("clock", FAIL, measured, expected,
                      "The node's clock is %s %s UTC although it synced with the gateway: the gateway's clock is wrong "
                      "(set in local time, or no NTP); set the gateway's clock to UTC (NTP), then check again"
                      % (_duration(off_s), side))  # fmt: skip
    if abs(off_s) > CLOCK_PASS_S:
        return Result("clock", WARN, measured, expected,
                      "The node's clock is %s %s UTC: check that the gateway keeps its time with NTP (and that this "
                      "computer's clock is right)" % (_duration(off_s), side))  # fmt: skip
    if abs(corr_s) > CLOCK_CORRECTION_WARN_S:
        hours = abs(corr_s) / 3600.0
        zone = (
            " (a whole %d h: it was set in local time instead of UTC)" % round(hours)
            if (hours >= 0.9 and abs(hours - round(hours)) < 0.02)
            else ""
        )
        return Result("clock", WARN, measured, "no large correction at sync",
                      "The node's clock was %s %s before the gateway corrected it%s: records it stored before the "
                      "sync carry the wrong time; provision nodes with the clock in UTC"
                      % (_duration(corr_s), "behind" if corr_s > 0 else "ahead", zone))  # fmt: skip
    return Result("clock", PASS, measured, expected)


def check_level(snap):
    t = snap.get("tilt")
    if t is None or t.get("tilt_deg") is None:
        return Result("level", FAIL, "no answer", "<= %g deg" % LEVEL_PASS_DEG,
                      "The accelerometer does not answer (%s): the node cannot tell if it is level; check again, and "
                      "replace the node if it persists" % snap.why_missing("tilt"))  # fmt: skip
    deg = float(t["tilt_deg"])
    measured, expected = "%.1f deg" % deg, "<= %g deg (warns up to %g deg)" % (LEVEL_PASS_DEG, LEVEL_WARN_DEG)
    if deg <= LEVEL_PASS_DEG:
        return Result("level", PASS, measured, expected)
    fix = "The pole leans %.1f deg; re-level it to under %g deg using the bubble on the mount" % (deg, LEVEL_PASS_DEG)
    return Result("level", WARN if deg <= LEVEL_WARN_DEG else FAIL, measured, expected, fix)


def check_gnss(snap):
    g = snap.get("gnss")
    if g is None:
        return _missing("gnss", snap, "GNSS state", "a position fix")
    if g.get("present") is False:
        return Result("gnss", FAIL, "no GNSS receiver answers", "a position fix",
                      "The GNSS receiver does not answer: check its cable inside the node's housing; without it the "
                      "node's position cannot be checked")  # fmt: skip
    sats, hdop = g.get("sats"), g.get("hdop")
    if not g.get("fix"):
        return Result("gnss", FAIL, "no fix (%s satellites)" % (sats if sats is not None else "?"), "a position fix",
                      "The GNSS has no position fix: make sure its antenna on top of the node has open sky (nothing "
                      "metal above it, its cable plugged in), wait 2 minutes and check again")  # fmt: skip
    measured = "fix, %s satellites, HDOP %s" % (sats, hdop)
    if hdop is not None and hdop > 5:
        return Result("gnss", WARN, measured, "a fix with HDOP <= 5",
                      "The GNSS fix is poor (HDOP %.1f): part of the sky is blocked over the antenna; move obstacles "
                      "away from it or wait for a better fix" % hdop)  # fmt: skip
    return Result("gnss", PASS, measured, "a position fix")


def check_position(snap, boundary=None):
    if boundary is None:
        return not_checked("position", "No field boundary was given, so the node's position was not compared with "
                           "the field; pass --boundary or --site", "inside the field")  # fmt: skip
    g = snap.get("gnss") or {}
    if not g.get("fix") or g.get("lat") is None:
        return not_checked(
            "position",
            "The position cannot be checked without a GNSS fix (see gnss)",
            "inside the " + boundary.describe(),
        )
    lat, lon = g["lat"], g["lon"]
    inside = boundary.contains(lat, lon)
    edge = boundary.edge_distance_m(lat, lon)
    tol = max(10.0, 10.0 * (g.get("hdop") or 1.0))
    where = "%.5f, %.5f: %s, %.0f m from the edge" % (lat, lon, "inside" if inside else "OUTSIDE", edge)
    expected = "inside the " + boundary.describe()
    if inside:
        return Result("position", PASS, where, expected)
    if edge <= tol:
        return Result("position", WARN, where, expected,
                      "The node stands %.0f m outside the %s, within the GNSS error: move it a few metres into the "
                      "field, or correct the boundary" % (edge, boundary.describe()))  # fmt: skip
    return Result("position", FAIL, where, expected,
                  "The node is %s outside the %s: it is in the wrong field, or the boundary given is not this field's; "
                  "move the node or use the right site file" % (_distance(edge), boundary.describe()))  # fmt: skip


def _distance(m):
    return "%.1f km" % (m / 1000) if m >= 1000 else "%.0f m" % m
