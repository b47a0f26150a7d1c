"""Sim tier: `fieldline check` end to end on virtual installs: the real firmware behind a frame proxy,
the real gateway process and Mosquitto, the check tool as a user runs it (its CLI, in a subprocess).

One module fixture starts every scenario at once (they are independent installs: in parallel the
whole module takes about as long as its slowest, the lossy link) and collects each one's exit code,
--json output and stderr. A correct install PASSes, through the installer port and through --port
with every input given on the command line (the onboarding report then reaches the upstream); each
fault knob fails or warns on its own check with a fix that names the problem. Faults that do not
interfere share an install. On failure the scenario's stderr (progress, report delivery) is shown.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from provisioning.check import CHECKS
from tools.paths import ROOT
from tools.virtual_field.install import VirtualInstall

pytestmark = pytest.mark.sim
TIMEOUT_S = 150
SCENARIOS = {
    "correct": [],
    "level_gnss_solar_clock": ["tilt_deg=7.8", "gnss_nofix=1", "solar_covered=1", "clock_offset_s=3600"],
    "tilt_warn_and_shade": ["tilt_deg=3.5", "shade_up=0.5"],
    "dirty_lens_and_ir": ["lens_dirt=0.6", "sensor_nack=mlx_canopy"],
    "swapped_over_ble": ["swap_spectral=1"],
    "wrong_key": ["wrong_key=1"],
    "lossy_link": ["link_fault_rate=0.4"],
}


def _cli(args, report_dir):
    cmd = [sys.executable, "-m", "tools.check_cli", "--json", "--report-dir", report_dir] + args
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{scenario: (exit code, JSON document or None, stderr, report dir)}, all run in parallel."""
    tmp = tmp_path_factory.mktemp("install-check")
    procs = {}
    for name, faults in SCENARIOS.items():
        args = ["--virtual"] + [a for f in faults for a in ("--fault", f)]
        if name == "swapped_over_ble":
            args += ["--ble", "F1:E1:01:00:5E:ED"]
        procs[name] = _cli(args, str(tmp / name))
    # the same correct install checked the way an installer does it: a port and every input given
    inst = VirtualInstall(str(tmp / "field"), seed=2).start()
    try:
        manifest = tmp / "manifest.json"
        manifest.write_text(json.dumps(inst.manifest()))
        corners = ";".join("%.6f,%.6f" % c for c in inst.boundary)
        procs["port"] = _cli(["--port", inst.installer_path, "--sim-clock", inst.clock.path, "--registry",
                              inst.registry_path, "--gateway", inst.status_url, "--boundary", corners,
                              "--manifest", str(manifest)], str(tmp / "port"))  # fmt: skip
        out = {}
        t0 = time.monotonic()
        for name, p in procs.items():
            stdout, stderr = p.communicate(timeout=max(1, TIMEOUT_S - (time.monotonic() - t0)))
            doc = json.loads(stdout) if stdout.strip() else None
            out[name] = (p.returncode, doc, stderr, tmp / name)
        end = time.monotonic() + 10
        while not inst.upstream_has(inst.device_id, "onboarding_report") and time.monotonic() < end:
            time.sleep(0.2)
        out["port_upstream"] = [r for r in inst.upstream_records() if r.get("kind") == "onboarding_report"]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        inst.stop()
    return out


def _checks(runs, name):
    code, doc, stderr, _ = runs[name]
    assert doc is not None, "scenario %s printed no JSON (exit %s); stderr:\n%s" % (name, code, stderr[-3000:])
    return {c["name"]: c for c in doc["checks"]}, doc, stderr


def _expect(runs, name, wanted):
    """Each check in ``wanted`` ({name: (statuses, [words in its fix])}) has one of its statuses and fix words."""
    checks, doc, stderr = _checks(runs, name)
    for check, (statuses, words) in wanted.items():
        c = checks[check]
        assert c["status"] in statuses, "%s: %s is %s: %s\nstderr:\n%s" % (name, check, c["status"], c, stderr[-2000:])
        for w in words:
            assert w in c["fix"], "%s: %s fix lacks %r: %s" % (name, check, w, c["fix"])
    return checks, doc


def test_a_correct_install_passes_with_the_json_shape_and_the_report_upstream(runs):
    code, doc, stderr, report_dir = runs["correct"]
    checks, doc, stderr = _checks(runs, "correct")
    assert doc["verdict"] == "PASS" and code == 0, stderr[-3000:]
    assert list(doc) == ["verdict", "checks"] and [c["name"] for c in doc["checks"]] == list(CHECKS)
    assert all(list(c) == ["name", "status", "measured", "expected", "fix"] for c in doc["checks"])
    assert all(c["status"] == "PASS" and c["fix"] == "" and c["measured"] for c in doc["checks"])
    assert "onboarding report received upstream" in stderr
    (report,) = os.listdir(report_dir)
    with open(os.path.join(report_dir, report)) as f:
        rec = json.load(f)
    assert rec["kind"] == "onboarding_report" and rec["verdict"] == "PASS" and rec["checks"] == doc["checks"]
    assert rec["fw_version"] == "0.1.0" and abs(rec["lat"] - 52.0) < 0.001 and rec["tilt_deg"] < 1
    assert rec["field"] == "virtual field" and rec["source"] == "node-%d" % rec["device"]


def test_a_correct_install_checked_through_a_port_with_every_input_passes_and_reports_upstream(runs):
    code, doc, stderr, _ = runs["port"]
    assert doc is not None and doc["verdict"] == "PASS" and code == 0, stderr[-3000:]
    (rec,) = runs["port_upstream"]
    assert rec["verdict"] == "PASS" and rec["source"] == "node-%d" % rec["device"] and rec["target"].startswith("port")


def test_level_gnss_covered_panel_and_a_clock_set_in_local_time(runs):
    checks, doc = _expect(runs, "level_gnss_solar_clock", {
        "level": (["FAIL"], ["The pole leans 7.", "re-level it to under 2 deg using the bubble on the mount"]),
        "gnss": (["FAIL"], ["no position fix", "open sky"]),
        "position": (["WARN"], ["GNSS fix"]),
        "solar_charging": (["FAIL"], ["not charging", "covered"]),
        "clock": (["WARN"], ["1 h 00 min ahead", "local time"]),
    })  # fmt: skip
    assert doc["verdict"] == "FAIL" and runs["level_gnss_solar_clock"][0] == 4
    assert checks["incident_light"]["status"] == "PASS"  # the sun is judged from the configured site


def test_a_tilt_of_3_5_deg_warns_and_a_shade_over_the_up_sensor_fails(runs):
    checks, _ = _expect(runs, "tilt_warn_and_shade", {
        "level": (["WARN"], ["The pole leans 3.", "under 2 deg"]),
        "incident_light": (["FAIL"], ["shades the up-looking spectral sensor"]),
        "reflectance": (["WARN"], ["shaded"]),
    })  # fmt: skip
    assert checks["solar_charging"]["status"] == "PASS"


def test_a_dirty_down_lens_and_a_dead_canopy_thermometer_fail(runs):
    checks, _ = _expect(runs, "dirty_lens_and_ir", {
        "reflectance": (["FAIL"], ["down-looking spectral sensor", "lens"]),
        "canopy_temperature": (["FAIL"], ["down-looking infrared thermometer does not answer"]),
    })  # fmt: skip
    assert checks["incident_light"]["status"] == "PASS"


def test_swapped_spectral_sensors_fail_over_ble(runs):
    _expect(runs, "swapped_over_ble", {"incident_light": (["FAIL"], ["swapped"])})
    report_dir = runs["swapped_over_ble"][3]
    with open(os.path.join(report_dir, os.listdir(report_dir)[0])) as f:
        assert json.load(f)["target"] == "virtual ble"  # the frames went through the (simulated) BLE link


def test_a_wrong_key_fails_the_key_check(runs):
    checks, doc = _expect(runs, "wrong_key", {
        "key": (["FAIL"], ["another key", "re-provision"]),
        "upstream": (["FAIL"], ["key"]),
        "clock": (["FAIL"], ["not synced"]),
    })  # fmt: skip
    assert checks["level"]["status"] == "PASS" and checks["reflectance"]["status"] == "PASS"


def test_a_lossy_link_fails_or_warns_the_link_check(runs):
    checks, _ = _expect(runs, "lossy_link", {"link": (["FAIL", "WARN"], ["round trips to the node were lost"])})
    assert checks["identity"]["status"] == "PASS" and checks["spectral_sensors"]["status"] == "PASS"
