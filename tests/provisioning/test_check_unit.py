"""Unit tier: every install check's PASS/WARN/FAIL decision and fix text, from synthetic diagnostics.

Also: point-in-polygon and edge distance, verdict = the worst check, the --json shape, the
onboarding report, and the diagnostics session, link burst, whole run and BLE link against an
in-memory node (no ptys, no processes). The diagnostics below are a real answer of the virtual
node at 11:00 local solar time on 2026-06-01 at 52 N 5 E (clear sky, green crop).
"""

import copy
import json
import re
import time

import pytest

from provisioning.check import CHECKS, CheckOptions, InstallCheck, run_check
from provisioning.checks_geo import Boundary, SiteError, load_site
from provisioning.checks_light import (
    Light,
    Sun,
    check_incident_light,
    check_reflectance,
    check_spectral_sensors,
    expected_nir,
    sun_at,
)
from provisioning.checks_link import Burst, check_key, check_link, check_upstream, run_burst
from provisioning.checks_node import (
    check_clock,
    check_config,
    check_firmware,
    check_gnss,
    check_identity,
    check_level,
    check_manifest,
    check_position,
)
from provisioning.checks_result import FAIL, PASS, WARN, CheckError, Result, as_json, verdict, worst
from provisioning.checks_sensors import (
    check_air,
    check_battery,
    check_canopy_temperature,
    check_sky_temperature,
    check_solar_charging,
)
from provisioning.checks_session import ITEMS, DiagSession, NoAnswer, Snapshot
from provisioning.checks_transport import FrameLink
from provisioning.checks_upstream import GatewayView, onboarding_report, save_report
from provisioning.errors import ProvisioningError
from shared_protocol import Deframer, decode_frame, encode_frame

DEV = 253624321
KEY = bytes(range(32))
T_MS = 1780310245914  # 2026-06-01 10:37:25 UTC: 11:00 local solar time at 5 E
GOOD = {
    "identity": {"hw": "virtual", "uid": "f1e101005eed", "name": "virtual-1", "reason": None, "device_id": DEV,
                 "provisioned": True},
    "firmware": {"version": "0.1.0", "uptime_s": 0, "free_heap": 325024, "reset_cause": "power_on"},
    "config": {"lat": 52.0, "lon": 5.0, "name": "virtual-1", "alt_m": 10.0, "reason": None, "sample_s": 60,
               "device_id": DEV, "emissivity": 0.98, "report_min": 5, "provisioned": True, "summary_min": 5,
               "spectral_cal": [0.9295, 1.0489, 1.0081, 1.0808, 0.9492, 1.0165, 0.9383, 0.9742, 1.0446, 0.9446],
               "saver_below_pct": 30.0, "survival_below_pct": 12.0, "shortwave_w_m2_per_count": 30.969},
    "tilt": {"tilt_deg": 0.05},
    "gnss": {"fix": True, "lat": 52.00003, "lon": 4.999992, "utc": 1780310245, "hdop": 0.9, "sats": 9, "alt_m": 10.0,
             "bad_checksum": 0},
    "sensors": {"air_c": 16.4, "rh_pct": 44.1, "ir_sky_c": -6.31, "ir_canopy_c": 18.63, "pressure_pa": 102407.0,
                "spectral_up": [5.93, 11.1, 15.14, 17.44, 19.84, 19.44, 19.95, 21.61, 28.02, 5.85],
                "spectral_down": [0.19, 0.37, 0.61, 1.06, 2.06, 1.42, 1.16, 1.03, 5.81, 2.92]},
    "power": {"mode": "full", "soc_pct": 80.0, "solar_a": 0.357, "battery_v": 4.018},
    "link": {"failed": 0, "rx_bad": 0, "retries": 0, "rx_frames": 3, "tx_frames": 10, "acked_frames": 1},
    "clock": {"synced": True, "time_ms": T_MS, "offset_ms": 0},
    "log": {"corrupt": 0, "dropped": 0, "pending": 0, "fill_pct": 0},
    "faults": [],
}  # fmt: skip
SUN = Sun(32.0, 844.0, T_MS / 1000, "52.0000, 5.0000 (GNSS), 10:37 UTC")
FIELD = Boundary([(51.9991, 4.9985), (51.9991, 5.0015), (52.0009, 5.0015), (52.0009, 4.9985)], "north")


def snap(errors=None, at_offset_s=0.0, **changes):
    """A Snapshot of GOOD with items changed: snap(tilt={"tilt_deg": 7.8}, sensors__air_c=30.0)."""
    items = copy.deepcopy(GOOD)
    for k, v in changes.items():
        if "__" in k:
            item, field = k.split("__")
            items[item][field] = v
        elif v is None:
            items.pop(k)
        else:
            items[k] = v
    at = T_MS / 1000 + at_offset_s
    return Snapshot(items, errors, {k: at for k in items})


def spectral(shade=0.0, dirt=0.0, scale=1.0, swap=False):
    up = [x * (1 - shade) * scale for x in GOOD["sensors"]["spectral_up"]]
    down = [x * (1 - dirt) * scale for x in GOOD["sensors"]["spectral_down"]]
    return (down, up) if swap else (up, down)


def light(shade=0.0, dirt=0.0, scale=1.0, swap=False, sun=SUN):
    up, down = spectral(shade, dirt, scale, swap)
    return Light.from_snapshot(snap(sensors__spectral_up=up, sensors__spectral_down=down), sun)


# ---- results, verdict, JSON ----


def test_verdict_is_the_worst_check():
    r = lambda s: Result("x", s, "-", "-", "" if s == PASS else "fix it")  # noqa: E731
    assert verdict([r(PASS), r(PASS)]) == PASS
    assert verdict([r(PASS), r(WARN), r(PASS)]) == WARN
    assert verdict([r(WARN), r(FAIL), r(PASS)]) == FAIL
    assert worst([]) == FAIL  # nothing shown to work


def test_json_has_exactly_verdict_and_checks_with_five_fields():
    doc = as_json([Result("level", FAIL, "7.8 deg", "<= 2 deg", "The pole leans 7.8 deg")])
    check = {"name": "level", "status": "FAIL", "measured": "7.8 deg", "expected": "<= 2 deg",
             "fix": "The pole leans 7.8 deg"}  # fmt: skip
    assert doc == {"verdict": "FAIL", "checks": [check]}
    assert json.loads(json.dumps(doc)) == doc


def test_a_result_needs_a_known_status_and_a_fix_unless_it_passed():
    with pytest.raises(ValueError):
        Result("x", "OK", "-", "-")
    with pytest.raises(ValueError):
        Result("x", WARN, "-", "-")
    assert Result("x", PASS, "-", "-").fix == ""
    assert issubclass(CheckError, ProvisioningError)


# ---- the field boundary ----


def test_point_in_polygon_and_distance_to_the_edge():
    assert FIELD.contains(52.0, 5.0)
    assert FIELD.edge_distance_m(52.0, 5.0) == pytest.approx(100.0, rel=0.02)
    assert not FIELD.contains(52.002, 5.0) and FIELD.edge_distance_m(52.002, 5.0) == pytest.approx(122, rel=0.05)
    # an L-shaped field: the notch is outside although inside the bounding box
    ell = Boundary([(0, 0), (0, 0.002), (0.001, 0.002), (0.001, 0.001), (0.002, 0.001), (0.002, 0)])
    assert ell.contains(0.0005, 0.0015) and ell.contains(0.0015, 0.0005)
    assert not ell.contains(0.0015, 0.0015)
    ring = Boundary(FIELD.corners + [FIELD.corners[0]])  # a closed ring is the same field
    assert len(ring.corners) == 4 and ring.contains(52.0, 5.0)
    with pytest.raises(SiteError):
        Boundary([(52.0, 5.0), (52.1, 5.0)])
    with pytest.raises(SiteError):
        Boundary([(95.0, 5.0), (52.1, 5.0), (52.1, 5.1)])


def test_site_files_in_toml_and_json(tmp_path):
    toml = tmp_path / "north.toml"
    toml.write_text('name = "north"\nboundary = [[51.9991, 4.9985], [51.9991, 5.0015], [52.0009, 5.0015]]\n')
    site = load_site(str(toml))
    assert site.name == "north" and site.contains(51.9995, 5.0005)
    js = tmp_path / "north.json"
    js.write_text(json.dumps({"boundary": FIELD.corners}))
    assert load_site(str(js)).contains(52.0, 5.0)
    bad = tmp_path / "bad.toml"
    bad.write_text("boundary = 3\n")
    with pytest.raises(SiteError, match="boundary = \\[\\[lat, lon\\]"):
        load_site(str(bad))
    with pytest.raises(SiteError, match="missing.toml"):
        load_site(str(tmp_path / "missing.toml"))


# ---- identity, firmware, manifest, config ----


def test_identity():
    assert check_identity(snap()).status == PASS
    r = check_identity(snap(), expected_id=42)
    assert r.status == FAIL and "device %d, not the expected 42" % DEV in r.fix
    assert check_identity(snap(identity=None)).status == FAIL


def test_firmware_and_a_bad_last_reset():
    assert check_firmware(snap()).status == PASS
    r = check_firmware(snap(firmware__reset_cause="brownout"))
    assert r.status == WARN and "brown-out" in r.fix and "battery" in r.fix


def test_manifest_optional_matching_or_not():
    r = check_manifest(snap())
    assert r.status == WARN and r.measured == "not checked" and "--manifest" in r.fix
    assert check_manifest(snap(), {"fw_version": "0.1.0", "device_id": DEV}).status == PASS
    assert check_manifest(snap(), {"format": 1, "firmware": {"version": "0.1.0"}}).status == PASS
    r = check_manifest(snap(), {"fw_version": "0.2.0"})
    assert r.status == FAIL and "runs firmware 0.1.0 but the manifest says 0.2.0" in r.fix
    r = check_manifest(snap(), {"fw_version": "0.1.0", "device_id": 7})
    assert r.status == FAIL and "manifest is for device 7" in r.fix


def test_config_provisioned_valid_and_for_this_field():
    assert check_config(snap()).status == PASS
    r = check_config(snap(identity__provisioned=False, identity__reason="config: no file /flash/config.json"))
    assert r.status == FAIL and "no file /flash/config.json" in r.fix and "provision" in r.fix
    r = check_config(snap(config__lat=52.1))  # 11 km north of where the GNSS puts it
    assert r.status == WARN and "11.1 km" in r.fix and "another field" in r.fix


# ---- clock ----


def test_clock_synced_within_tolerance():
    assert check_clock(snap()).status == PASS
    assert check_clock(snap(at_offset_s=-2.0)).status == PASS  # the node 2 s ahead
    r = check_clock(snap(at_offset_s=-30.0))
    assert r.status == WARN and "30.0 s ahead of UTC" in r.fix
    r = check_clock(snap(at_offset_s=120.0))
    assert r.status == FAIL and "2 min 00 s behind UTC" in r.fix and "gateway's clock" in r.fix


def test_clock_not_synced_fails_and_a_big_past_correction_warns():
    r = check_clock(snap(clock__synced=False))
    assert r.status == FAIL and "not synced its clock" in r.fix
    r = check_clock(snap(clock__offset_ms=-3600000))
    assert r.status == WARN and "1 h 00 min ahead before the gateway corrected it" in r.fix and "local time" in r.fix
    r = check_clock(snap(clock__offset_ms=90000))
    assert r.status == WARN and "behind" in r.fix and "local time" not in r.fix


# ---- level, GNSS, position ----


@pytest.mark.parametrize("deg,status", [(0.05, PASS), (2.0, PASS), (3.5, WARN), (5.0, WARN), (7.8, FAIL)])
def test_level(deg, status):
    r = check_level(snap(tilt={"tilt_deg": deg}))
    assert r.status == status and r.measured == "%.1f deg" % deg
    if status != PASS:
        assert r.fix == "The pole leans %.1f deg; re-level it to under 2 deg using the bubble on the mount" % deg


def test_level_without_an_accelerometer():
    r = check_level(snap(tilt=None, errors={"tilt": "accelerometer: no ACK at 0x18"}))
    assert r.status == FAIL and "no ACK at 0x18" in r.fix


def test_gnss():
    assert check_gnss(snap()).status == PASS
    r = check_gnss(snap(gnss={"fix": False, "sats": 0}))
    assert r.status == FAIL and "no position fix" in r.fix and "open sky" in r.fix
    assert check_gnss(snap(gnss={"present": False})).status == FAIL
    assert check_gnss(snap(gnss__hdop=8.0)).status == WARN


def test_position_in_the_field():
    r = check_position(snap())
    assert r.status == WARN and r.measured == "not checked" and "--boundary" in r.fix
    assert check_position(snap(), FIELD).status == PASS
    r = check_position(snap(gnss__lat=52.00095), FIELD)  # 5.6 m north of the edge: within the GNSS error
    assert r.status == WARN and "outside" in r.fix
    r = check_position(snap(gnss__lat=52.02), FIELD)
    assert r.status == FAIL and "2.1 km outside the field 'north'" in r.fix
    assert check_position(snap(gnss={"fix": False}), FIELD).status == WARN


# ---- spectral ----


def test_sun_at_the_node_from_the_gateway_models():
    sun = sun_at(snap(), T_MS / 1000)
    assert sun.zenith_deg == pytest.approx(32.0, abs=0.5) and sun.clear_sky_w_m2 == pytest.approx(845, abs=10)
    assert "GNSS" in sun.where
    assert sun_at(snap(gnss={"fix": False}), T_MS / 1000).where.endswith("(config), 10:37 UTC")
    assert sun_at(snap(gnss={"fix": False}, config__lat=None), T_MS / 1000) is None


def test_expected_nir_between_soil_and_canopy():
    assert expected_nir(0.0) == pytest.approx(0.27)
    assert expected_nir(0.9) == pytest.approx(0.50)
    assert expected_nir(0.3) < expected_nir(0.6) < expected_nir(0.8)


def test_spectral_sensors_answer():
    assert check_spectral_sensors(snap()).status == PASS
    r = check_spectral_sensors(snap(sensors__spectral_up=None, sensors__spectral_up_error="spectral_up: no ACK"))
    assert r.status == FAIL and "up-looking" in r.fix and "no ACK" in r.measured


def test_correct_light_passes():
    lt = light()
    assert lt.verdict == "ok" and lt.ratio == pytest.approx(1.03, abs=0.02) and lt.ndvi == pytest.approx(0.82, abs=0.01)
    assert check_incident_light(lt).status == PASS and check_reflectance(lt).status == PASS


@pytest.mark.parametrize("shade,status", [(0.3, WARN), (0.5, FAIL), (0.9, FAIL)])
def test_shade_over_the_up_sensor(shade, status):
    lt = light(shade=shade)
    r = check_incident_light(lt)
    assert lt.verdict == "shaded" and r.status == status and "shades the up-looking spectral sensor" in r.fix
    share = int(re.search(r"about (\d+) % less light", r.fix).group(1))  # estimated from the raised reflectance
    assert abs(share - 100 * shade) <= 5 or shade > 0.8
    assert check_reflectance(lt).status == WARN and "shaded" in check_reflectance(lt).fix


def test_swapped_sensors():
    lt = light(swap=True)
    r = check_incident_light(lt)
    assert lt.verdict == "swapped" and r.status == FAIL and "swapped" in r.fix
    assert check_reflectance(lt).status == WARN


@pytest.mark.parametrize("dirt,status", [(0.2, PASS), (0.4, WARN), (0.6, FAIL), (0.99, FAIL)])
def test_dirty_or_blocked_down_lens(dirt, status):
    lt = light(dirt=dirt)
    r = check_reflectance(lt)
    assert r.status == status and check_incident_light(lt).status == PASS
    if status != PASS:
        assert "lens" in r.fix and "down-looking" in r.fix
    if dirt == 0.99:
        assert "cap" in r.fix


def test_light_needs_the_sun():
    low = Sun(85.0, 70.0, T_MS / 1000, "dusk")
    lt = light(sun=low)
    for r in (check_incident_light(lt), check_reflectance(lt)):
        assert r.status == WARN and r.measured == "not checked" and "daylight" in (r.fix + check_incident_light(lt).fix)


def test_overcast_bright_and_covered():
    dark = light(scale=0.1)  # a heavy overcast: both sensors see 10 %
    assert check_incident_light(dark).status == WARN and check_reflectance(dark).status == PASS
    bright = light(scale=1.7)
    assert check_incident_light(bright).status == WARN and "clear sky gives" in check_incident_light(bright).fix
    covered = light(shade=1.0)
    r = check_incident_light(covered)
    assert covered.verdict == "dark_up" and r.status == FAIL and "cap" in r.fix
    assert check_incident_light(None).status == WARN and check_reflectance(None).status == WARN


# ---- air, infrared, power ----


def test_air():
    assert check_air(snap(), 10.0).status == PASS
    r = check_air(snap(sensors__pressure_pa=80000.0), 10.0)
    assert r.status == FAIL and "pressure sensor" in r.fix
    r = check_air(snap(sensors__air_c=None, sensors__air_th_error="air_th: CRC"))
    assert r.status == FAIL and "humidity" in r.fix and "CRC" in r.measured


def test_canopy_temperature():
    r = check_canopy_temperature(snap(), SUN)
    assert r.status == PASS and "+2.7 K" in r.measured
    r = check_canopy_temperature(snap(sensors__ir_canopy_c=-10.0), SUN)  # it looks at the sky
    assert r.status == FAIL and "colder than the air" in r.fix and "sky" in r.fix
    assert check_canopy_temperature(snap(sensors__ir_canopy_c=36.0), SUN).status == WARN
    r = check_canopy_temperature(snap(sensors__ir_canopy_c=50.0), SUN)
    assert r.status == FAIL and "warmer than the air" in r.fix
    assert check_canopy_temperature(snap(sensors__ir_canopy_c=25.0), None).status == WARN  # +8.6 K without sun
    r = check_canopy_temperature(snap(sensors__ir_canopy_c=None, sensors__ir_canopy_error="ir_canopy: PEC"))
    assert r.status == FAIL and "down-looking infrared thermometer" in r.fix


def test_sky_temperature():
    lt = light()
    assert check_sky_temperature(snap(), lt).status == PASS
    r = check_sky_temperature(snap(sensors__ir_sky_c=22.0), lt)
    assert r.status == FAIL and "does not see open sky" in r.fix
    assert check_sky_temperature(snap(sensors__ir_sky_c=12.0), lt).status == WARN
    r = check_sky_temperature(snap(sensors__ir_sky_c=18.6, sensors__ir_canopy_c=-6.3), lt)
    assert r.status == FAIL and "infrared thermometers are swapped" in r.fix
    assert check_sky_temperature(snap(sensors__ir_sky_c=14.0), None).status == PASS  # cloudy: only vs canopy


def test_solar_charging():
    lt = light()
    assert check_solar_charging(snap(), lt, SUN).status == PASS
    r = check_solar_charging(snap(power__solar_a=-0.012), lt, SUN)
    assert r.status == FAIL and "not charging" in r.fix and "covered" in r.fix
    assert check_solar_charging(snap(power__solar_a=0.01), lt, SUN).status == WARN
    assert check_solar_charging(snap(power__solar_a=0.0, power__soc_pct=99.0), lt, SUN).status == PASS
    night = check_solar_charging(snap(power__solar_a=-0.012), None, Sun(100.0, 0.0, 0, "night"))
    assert night.status == WARN and night.measured == "not checked"


@pytest.mark.parametrize("soc,status", [(80.0, PASS), (25.0, WARN), (8.0, FAIL)])
def test_battery(soc, status):
    r = check_battery(snap(power__soc_pct=soc))
    assert r.status == status and ("%.0f %%" % soc in r.fix if status != PASS else True)


# ---- link, key, upstream ----


def test_link_loss_thresholds_and_late_answers():
    assert check_link(Burst([0.01] * 10), GOOD["link"]).status == PASS
    assert check_link(Burst([0.01] * 9 + [None], late=1)).status == PASS  # answered at the next window: not lost
    r = check_link(Burst([0.01] * 8 + [None] * 2))
    assert r.status == WARN and "2 of 10 round trips" in r.fix
    r = check_link(Burst([0.01] * 5 + [None] * 5))
    assert r.status == FAIL and "5 of 10 round trips to the node were lost (50 %)" in r.fix and "antenna" in r.fix
    r = check_link(Burst([0.01] * 10), dict(GOOD["link"], rssi_dbm=-105))
    assert r.status == WARN and "-105 dBm" in r.fix
    assert check_link(Burst([])).status == WARN


def test_key():
    assert check_key([("report", "ok")], True).status == PASS
    assert check_key([], False, node_link={"acked_frames": 3}).status == PASS  # acks prove the shared key
    r = check_key([("report", "bad"), ("health", "bad")], True, True)
    assert r.status == FAIL and "another key" in r.fix and "re-provision" in r.fix
    assert check_key([("report", "bad")], True).status == WARN
    assert check_key([("report", "ok")], True, in_registry=False).status == FAIL
    view = GatewayView({"rejected_frames": {"forged": 6}}, DEV)
    assert check_key([], False, None, view, {"acked_frames": 0, "failed": 2}).status == FAIL
    r = check_key([], False)
    assert r.status == WARN and r.measured == "not checked"


def _view(seen=True, batches=0, connected=True, forged=0):
    return GatewayView({"gateway": "gw-1", "sources": [{"devices": {str(DEV): 1.0} if seen else {}}],
                        "outbox": {"batches": batches, "oldest_age_s": 30.0 if batches else 0.0},
                        "uplinks": [{"kind": "mqtt", "connected": connected}], "rejected_frames": {"forged": forged}},
                       DEV)  # fmt: skip


def test_upstream():
    r = check_upstream(GOOD["link"], GOOD["log"])
    assert r.status == WARN and r.measured == "not checked" and "--gateway" in r.fix
    assert check_upstream(GOOD["link"], GOOD["log"], gateway_error="timed out").status == WARN
    assert check_upstream(GOOD["link"], GOOD["log"], _view()).status == PASS
    r = check_upstream(GOOD["link"], GOOD["log"], _view(seen=False, forged=4))
    assert r.status == FAIL and "4 forged" in r.fix
    r = check_upstream(dict(GOOD["link"], acked_frames=0), GOOD["log"], _view())
    assert r.status == FAIL and "key" in r.fix
    r = check_upstream(GOOD["link"], GOOD["log"], _view(batches=3, connected=False))
    assert r.status == WARN and "uplink down" in r.fix
    assert check_upstream(GOOD["link"], GOOD["log"], _view(), seen_upstream=False).status == WARN


# ---- the onboarding report ----


def test_onboarding_report_is_a_stream_record(tmp_path):
    results = [Result("level", FAIL, "7.8 deg", "<= 2 deg", "The pole leans 7.8 deg"), Result("gnss", PASS, "fix", "-")]
    rec = onboarding_report(results, DEV, T_MS / 1000, "port /dev/ttyUSB0", {"fw_version": "0.1.0"})
    assert rec["kind"] == "onboarding_report" and rec["source"] == "node-%d" % DEV and rec["device"] == DEV
    assert rec["ts"] == "2026-06-01T10:37:25Z" and rec["key"] == "node-%d/onboarding_report/2026-06-01T10:37:25Z" % DEV
    assert rec["verdict"] == FAIL and rec["checks"] == as_json(results)["checks"] and rec["fw_version"] == "0.1.0"
    path = save_report(rec, str(tmp_path / "reports"))
    with open(path) as f:
        assert json.load(f) == rec


# ---- against an in-memory node ----


class FakeNode(FrameLink):
    """A node on an in-memory link: answers keyless diag_requests item by item (``drop``: indexes of the
    frames it sends that get lost; ``late_s``: answers held back that long, as a node asleep)."""

    target = "fake"

    def __init__(self, items=GOOD, drop=(), late_s=0.0, key=KEY, hello=True):
        self.items, self.drop, self.late_s, self.key = items, set(drop), late_s, key
        self.deframer = Deframer()
        self.out = []  # (release time, bytes)
        self.sent = self.counter = 0
        self.requests = []
        if hello:
            self._send({"type": "hello", "fw_version": "0.1.0", "hw": "virtual", "provisioned": True}, key)

    def _send(self, msg, key=None):
        self.counter += 1
        wire = encode_frame(dict(msg, device_id=DEV, counter=self.counter), key)
        if self.sent not in self.drop:
            self.out.append((time.monotonic() + self.late_s, wire))
        self.sent += 1

    def write(self, data):
        for wire in self.deframer.feed(data):
            m = decode_frame(wire, {})
            self.requests.append(m)
            if m["device_id"] != DEV:
                continue
            for name in m["items"] or ITEMS:
                self._send({"type": "diag_response", "req_id": m["req_id"], "items": {name: self.items[name]}})

    def read(self, timeout_s):
        now = time.monotonic()
        ready = [w for t, w in self.out if t <= now]
        if not ready:
            time.sleep(min(timeout_s, 0.005))
            return b""
        self.out = [(t, w) for t, w in self.out if t > now]
        return b"".join(ready)

    def close(self):
        pass


def test_session_finds_the_node_asks_again_for_lost_items_and_checks_its_key():
    node = FakeNode(drop={3, 7})  # two answers lost on the way
    s = DiagSession(node, keyring={DEV: KEY}, clock=lambda: T_MS / 1000)
    assert s.discover(1.0) == DEV and s.keyed == [("hello", "ok")]
    got = s.snapshot(2.0, retry_s=0.05)
    assert set(got.items) == set(ITEMS) and not got.missing and len(node.requests) == 2
    assert node.requests[1]["items"] == ["config", "power"]  # only what was lost (frame 0 was the hello)
    assert s.round_trip(["clock"], 0.5) < 0.5
    wrong = DiagSession(FakeNode(key=bytes(32)), keyring={DEV: KEY})
    wrong.discover(1.0)
    assert wrong.keyed == [("hello", "bad")] and wrong.heard() == "hello/BAD TAG x1"


def test_session_without_an_answer_says_what_it_heard():
    class Deaf(FakeNode):
        def write(self, data):
            pass

    s = DiagSession(Deaf(), DEV)
    with pytest.raises(NoAnswer, match="hello/unverified x1"):
        s.pump(0.01)
        s.snapshot(0.2, retry_s=0.05)
    with pytest.raises(NoAnswer, match="no frame from a node"):
        DiagSession(Deaf(hello=False)).discover(0.1)


def test_burst_counts_lost_round_trips_but_not_late_ones():
    lossy = FakeNode(drop={2, 4, 5})  # answers of round trips 3, 5 and 6 lost (frame 0 is the hello)
    b = run_burst(DiagSession(lossy, DEV), 10, timeout_s=0.1, window_s=0.3)
    assert (b.sent, b.lost, b.late) == (10, 3, 0)
    sleepy = FakeNode(late_s=0.15)  # every answer comes after the round trip's timeout
    b = run_burst(DiagSession(sleepy, DEV), 4, timeout_s=0.05, window_s=1.0)
    assert (b.lost, b.late) == (0, 4)


def test_a_whole_check_against_the_in_memory_node():
    heard = []

    class Hear:
        def step(self, text):
            heard.append(text)

        def tick(self, done, total):
            pass

        def result(self, r):
            heard.append(r.name)

    o = CheckOptions(boundary=FIELD, manifest={"fw_version": "0.1.0"}, keyring={DEV: KEY},
                     clock=lambda: T_MS / 1000, wait_s=2.0, retry_s=0.05, rt_timeout_s=0.2, window_s=0.5)  # fmt: skip
    run = InstallCheck(FakeNode(), o, Hear())
    results = run.run()
    assert [r.name for r in results] == list(CHECKS) and run.device_id == DEV
    assert {r.name: r.status for r in results if r.status != PASS} == {"upstream": WARN}  # no gateway given
    assert [h for h in heard if h in CHECKS] == list(CHECKS) and heard[0].startswith("listening for the node")
    assert run.facts() == {"fw_version": "0.1.0", "lat": 52.00003, "lon": 4.999992, "alt_m": 10.0, "tilt_deg": 0.05,
                           "field": "north"}  # fmt: skip
    deaf = run_check(FakeNode(drop=range(1000)), CheckOptions(device_id=DEV, wait_s=0.2, retry_s=0.05))
    assert [(r.name, r.status) for r in deaf] == [("node", FAIL)] and "does not answer" in deaf[0].fix


def test_ble_link_carries_the_frames_in_mtu_sized_chunks():
    from provisioning.checks_transport import BleLink
    from tools.virtual_field.ble_nus import SimNusClient

    node = FakeNode()
    writes = []
    orig = node.write
    node.write = lambda data: (writes.append(len(data)), orig(data))
    addr = "C0:FF:EE:00:00:01"
    with BleLink(addr, backend=SimNusClient, backend_kwargs={"links": {addr: node}}, timeout_s=5) as link:
        s = DiagSession(link, DEV, clock=lambda: T_MS / 1000)
        got = s.snapshot(3.0, retry_s=0.5)
    assert set(got.items) == set(ITEMS) and max(writes) <= 20
    with pytest.raises(CheckError, match="C0:FF:EE:00:00:02"):
        BleLink("C0:FF:EE:00:00:02", backend=SimNusClient, backend_kwargs={"links": {addr: node}}, timeout_s=5)
